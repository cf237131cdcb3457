"""WPA helpers of the monitor-mode capture generators under captures/ (make_wpa2.py,
make_wpa3.py, make_tkip.py, make_wep.py, make_gcmp.py, make_ft.py, make_frag.py): the keys
(PMK from a passphrase, PRF-SHA1 and KDF-SHA256, PTK, PMKID; the FT key hierarchy PMK-R0,
PMK-R1 and their names, the FT PTK), SAE on NIST P-256 (password element by hunting and
pecking, commit, keys, confirm), EAPOL-Key frames of the RSN (2) and WPA (254) key
descriptors with their MIC (HMAC-MD5, HMAC-SHA1-128 or AES-128-CMAC), the RSN element, the
WPA element and the KDEs of their key data, the Mobility Domain, Fast BSS Transition (with
its GTK subelement and MIC) and Timeout Interval elements of FT, RC4 key data encryption
(descriptor version 1), CCMP-128 and CCMP-256, GCMP-128 and GCMP-256, TKIP (encryption and
decryption of an MPDU or of a fragment: the key mixing function, RC4, Michael and the ICV)
and WEP (RC4 keyed by IV || key, the ICV); and, on wlankit.py's Lab, the WPA lab network
the scripts capture (WpaLab: its stations' protected frames with their PNs, TSCs or WEP
IVs, fragmented MSDUs, 4-way and group key handshakes, DNS, NTP and TCP connections, the
self-check of the written frames and the counts of expected.json) and Wireshark's
80211_keys file. Needs the `cryptography` package (AES-CCM, AES-GCM, AES key wrap,
AES-CMAC); MAC addresses are bytes in the crypto (pcapkit.mac) and strings in WpaLab, as in
wlankit.py; keys, frames and elements bytes, SAE scalars integers and elements points (x,
y). Sections: IEEE 802.11-2020 (TKIP: 12.5.2; the WPA element and descriptor type 254 are
those of Wi-Fi Alliance WPA, which followed draft 802.11i).

On import it checks itself against published vectors and stops with an AssertionError
if one fails: PBKDF2, PRF and the pairwise key derivation sample of IEEE 802.11's annex
J; four IEEE 802.11i CCMP test MPDUs; AES key wrap against RFC 3394 4.1; AES-CMAC
against RFC 4493 examples 1 to 4 (through `cryptography`'s CMAC, so the use of it is
checked too); KDF-SHA256 against iwd's unit test vector (one block) and, with SAE,
against the SAE test vector of annex J.10 (IEEE Std 802.11-2020; hostapd's
common_module_tests.c carries it): the password element found by hunting and pecking,
the shared secret, KCK || PMK (KDF-512, two blocks) and the PMKID. For TKIP and WPA:
RC4 against RFC 6229 (the 40-bit key 0102030405, keystream at offsets 0, 16, 240 and
256, so the 256 octets the EAPOL key data encryption discards are checked too);
HMAC-MD5 (the MIC of key descriptor version 1) against RFC 2202 test case 2; Michael
against the six chained vectors of IEEE 802.11i ("" to "Michael", each keyed with the
previous tag; the Linux kernel's crypto/testmgr.h carries them) and against the Michael
MIC of the MSDU of IEEE Std 802.11-2012 M.6.3, the TKIP test MPDU (hostapd's
wlantest/test_vectors.c carries its input and, in a comment, that MIC), which checks
the DA || SA || priority header as tkip_encrypt builds it from a From DS frame; the
TKIP key mixing function (phase 1 TTAK and phase 2 WEP seed) against the eight test
vectors of IEEE Std 802.11i-2004 (TK, TA, IV32, IV16 -> P1K, RC4 key; Fuchsia's
iwlwifi TKIP unit test carries them); and the S-box derived from AES's against its
first entries as the standard tabulates them. For WEP: the WEP encapsulation example of
IEEE Std 802.11-2012 annex M (table M-5, "ARC4 encryption": the 40-bit key "01234", IV
fb 02 9e, an LLC/SNAP + IPv4/UDP MSDU and its ICV 1b d0 b6 04, the ciphertext; public
ARC4 test suites carry it as their "test 6" vector), checking the ICV and the RC4 seed
IV || key; and a round trip of a WEP-104 MPDU that no other key opens. For GCMP and
CCMP-256, the vectors with expected outputs that hostapd's wlantest/test_vectors.c
carries: GCMP test MPDU #2 of IEEE Std 802.11ad-2012 M.11.1 (ciphertext and MIC), the
GCMP-256 test vector of IEEE P802.11ac/D7.0 M.11.1 and its CCMP-256 test vector (M.6.4),
each a whole encrypted MPDU. No published FT key hierarchy vector with expected outputs
was found: make_ft.py's capture is checked by tshark 4.0, which derives the same TKs
(expected.json) from the frames alone.
"""

import hashlib
import hmac
import struct
import zlib

from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM
from cryptography.hazmat.primitives.cmac import CMAC
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

from pcapkit import mac
from wlankit import (BROADCAST, HTTP_RESPONSE, RADIOTAP, SNAP, SNAP_IPV4, Lab,
                     Station as LabStation, TcpConn, ack, dns_lookup, ntp_exchange, radiotap)

# Cipher and AKM suite types of OUI 00-0F-AC (9.4.2.24.2, 9.4.2.24.3); WPA's element uses
# the same numbers for TKIP (2), CCMP (4) and PSK (2) under OUI 00-50-F2.
TKIP, CCMP_128, BIP_CMAC_128 = 2, 4, 6
GCMP_128, GCMP_256, CCMP_256, BIP_GMAC_256 = 8, 9, 10, 12
AKM_PSK, AKM_PSK_SHA256, AKM_SAE = 2, 6, 8
AKM_FT_8021X, AKM_FT_PSK = 3, 4
# RSN capabilities (9.4.2.24.4): management frame protection required and capable.
MFPR, MFPC = 0x0040, 0x0080
# Offsets in an EAPOL frame (802.1X header + key descriptor) with a 16-byte MIC (12.7.2).
IV_AT, MIC_AT, KEY_DATA_AT = 49, 81, 99
# EAPOL-Key descriptor types: RSN (IEEE 802.11) and WPA.
DESC_RSN, DESC_WPA = 2, 254
# LLC/SNAP and EtherType 88-8E (IEEE 802.1X) before an EAPOL frame in a data frame.
SNAP_EAPOL = SNAP + b"\x88\x8e"


# --- keys (12.7.1.2, 12.7.1.3, 12.7.1.6.3, 12.7.1.7.2, Annex J) ---------------------------
def pmk_of(passphrase, ssid):
    """PMK = PBKDF2-HMAC-SHA1(passphrase, SSID, 4096, 256 bits) (J.4.1)."""
    return hashlib.pbkdf2_hmac("sha1", passphrase.encode(), ssid.encode(), 4096, 32)


def prf(key, label, data, n):
    """PRF-(8n): HMAC-SHA1(key, label || 0x00 || data || i), i = 0, 1, ..., truncated."""
    out = b""
    i = 0
    while len(out) < n:
        out += hmac.new(key, label + b"\0" + data + bytes([i]), hashlib.sha1).digest()
        i += 1
    return out[:n]


def kdf_sha256(key, label, context, bits):
    """KDF-SHA-256-bits (12.7.1.7.2): HMAC-SHA256(key, i || label || context || bits),
    i = 1, 2, ... and bits as 16-bit little-endian integers, concatenated, truncated."""
    out = b""
    i = 1
    while len(out) * 8 < bits:
        out += hmac.new(key, struct.pack("<H", i) + label + context + struct.pack("<H", bits),
                        hashlib.sha256).digest()
        i += 1
    return out[:bits // 8]


def ptk_of(pmk, aa, spa, anonce, snonce, akm=AKM_PSK, length=48):
    """The PTK: PRF-384 (AKM 2) or KDF-SHA-256-384 (AKMs 6 and 8) of the PMK, "Pairwise key
    expansion" and min(AA, SPA) || max(AA, SPA) || min(ANonce, SNonce) || max(ANonce,
    SNonce). For CCMP-128 and GCMP-128 (length 48): KCK || KEK || TK. For TKIP (length 64,
    PRF-512, AKM 2 only; 12.7.1.3): KCK 0:16, KEK 16:32, TK 32:48, the Michael key of MSDUs
    from the authenticator to the supplicant 48:56, and of those from the supplicant
    56:64. For GCMP-256 and CCMP-256 (length 64: PRF-512 or KDF-SHA-256-512; the TK's
    length follows the pairwise cipher, 12.7.1.3, table 12-8): KCK 0:16, KEK 16:32, TK
    32:64."""
    data = min(aa, spa) + max(aa, spa) + min(anonce, snonce) + max(anonce, snonce)
    if akm == AKM_PSK:
        return prf(pmk, b"Pairwise key expansion", data, length)
    assert akm in (AKM_PSK_SHA256, AKM_SAE) and length in (48, 64), (akm, length)
    return kdf_sha256(pmk, b"Pairwise key expansion", data, length * 8)


def pmkid_of(pmk, aa, spa, akm=AKM_PSK):
    """PMKID = HMAC-SHA1-128 (AKM 2) or HMAC-SHA256-128 (AKM 6) of the PMK over
    "PMK Name" || AA || SPA (12.7.1.3). SAE's comes from its commit (sae_keys)."""
    digest = {AKM_PSK: hashlib.sha1, AKM_PSK_SHA256: hashlib.sha256}[akm]
    return hmac.new(pmk, b"PMK Name" + aa + spa, digest).digest()[:16]


# --- the FT key hierarchy (12.7.1.7: AKMs 3 and 4, KDF-SHA-256) ---------------------------
def ft_pmk_r0(xxkey, ssid, mdid, r0kh_id, s0kh_id):
    """PMK-R0 and PMKR0Name (12.7.1.7.3): R0-Key-Data = KDF-SHA-256-384(XXKey, "FT-R0",
    SSIDlength || SSID || MDID || R0KHlength || R0KH-ID || S0KH-ID); PMK-R0 its first 256
    bits, PMK-R0Name-Salt the last 128; PMKR0Name = the first 128 bits of SHA-256("FT-R0N"
    || PMK-R0Name-Salt). XXKey: the PSK (FT-PSK) or MSK[32:64] (FT-802.1X); mdid the 2
    octets of the Mobility Domain element; s0kh_id the station's MAC (bytes)."""
    assert len(xxkey) == 32 and len(mdid) == 2 and 1 <= len(r0kh_id) <= 48
    ssid = ssid.encode() if isinstance(ssid, str) else ssid
    data = kdf_sha256(xxkey, b"FT-R0", bytes([len(ssid)]) + ssid + mdid
                      + bytes([len(r0kh_id)]) + r0kh_id + s0kh_id, 384)
    return data[:32], hashlib.sha256(b"FT-R0N" + data[32:48]).digest()[:16]


def ft_pmk_r1(pmk_r0, pmk_r0_name, r1kh_id, s1kh_id):
    """PMK-R1 = KDF-SHA-256-256(PMK-R0, "FT-R1", R1KH-ID || S1KH-ID) and PMKR1Name = the
    first 128 bits of SHA-256("FT-R1N" || PMKR0Name || R1KH-ID || S1KH-ID) (12.7.1.7.4);
    the R1KH-ID a 6-octet MAC, S1KH-ID the station's."""
    assert len(r1kh_id) == 6 and len(s1kh_id) == 6
    return (kdf_sha256(pmk_r0, b"FT-R1", r1kh_id + s1kh_id, 256),
            hashlib.sha256(b"FT-R1N" + pmk_r0_name + r1kh_id + s1kh_id).digest()[:16])


def ft_ptk(pmk_r1, snonce, anonce, bssid, sta, length=48):
    """The PTK of FT (12.7.1.7.5): KDF-SHA-256-(length * 8)(PMK-R1, "FT-PTK", SNonce ||
    ANonce || BSSID || STA-ADDR), in that order (not the min/max one of ptk_of); KCK ||
    KEK || TK."""
    return kdf_sha256(pmk_r1, b"FT-PTK", snonce + anonce + bssid + sta, length * 8)


# --- SAE on group 19 (NIST P-256) (12.4) --------------------------------------------------
P256_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
P256_A = P256_P - 3
P256_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
P256_R = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551   # the order


def ec_add(p, q):
    """The sum of two points of P-256 (affine; None is the point at infinity)."""
    if p is None:
        return q
    if q is None:
        return p
    if p[0] == q[0] and (p[1] + q[1]) % P256_P == 0:
        return None
    if p == q:
        slope = (3 * p[0] * p[0] + P256_A) * pow(2 * p[1], -1, P256_P) % P256_P
    else:
        slope = (q[1] - p[1]) * pow(q[0] - p[0], -1, P256_P) % P256_P
    x = (slope * slope - p[0] - q[0]) % P256_P
    return x, (slope * (p[0] - x) - p[1]) % P256_P


def ec_mul(k, p):
    """k * p by double and add."""
    out = None
    while k:
        if k & 1:
            out = ec_add(out, p)
        p = ec_add(p, p)
        k >>= 1
    return out


def on_curve(p):
    return (p[1] * p[1] - (p[0] ** 3 + P256_A * p[0] + P256_B)) % P256_P == 0


def element_bytes(p):
    """An element as SAE frames carry it: x || y, 32 bytes each, big-endian (12.4.7.2.4)."""
    return p[0].to_bytes(32, "big") + p[1].to_bytes(32, "big")


def sae_pwe(password, mac1, mac2):
    """The password element by hunting and pecking (12.4.4.2.2): for counter = 1, 2, ...,
    pwd-seed = HMAC-SHA256(max(MACs) || min(MACs), password || counter), pwd-value =
    KDF-SHA-256-256(pwd-seed, "SAE Hunting and Pecking", p); the first pwd-value < p that
    is the x of a point gives PWE, y of the parity of pwd-seed's last bit. (hostapd goes
    on to counter 40 for constant time; the result is the same.)"""
    key = max(mac1, mac2) + min(mac1, mac2)
    for counter in range(1, 256):
        seed = hmac.new(key, password + bytes([counter]), hashlib.sha256).digest()
        x = int.from_bytes(kdf_sha256(seed, b"SAE Hunting and Pecking",
                                      P256_P.to_bytes(32, "big"), 256), "big")
        if x >= P256_P:
            continue
        y2 = (x ** 3 + P256_A * x + P256_B) % P256_P
        if pow(y2, (P256_P - 1) // 2, P256_P) != 1:
            continue
        y = pow(y2, (P256_P + 1) // 4, P256_P)       # p = 3 mod 4
        if (y & 1) != (seed[-1] & 1):
            y = P256_P - y
        return x, y
    raise AssertionError("no password element")


def sae_commit(pwe, rand, mask):
    """Commit scalar (rand + mask) mod r and element -(mask * PWE) (12.4.5.3)."""
    scalar = (rand + mask) % P256_R
    assert 1 < scalar < P256_R
    e = ec_mul(mask, pwe)
    return scalar, (e[0], P256_P - e[1])


def sae_keys(pwe, rand, scalar, peer_scalar, peer_element):
    """K = rand * (peer-commit-scalar * PWE + PEER-COMMIT-ELEMENT), keyseed =
    HMAC-SHA256(32 zero octets, K's x), KCK || PMK = KDF-SHA-256-512(keyseed, "SAE KCK
    and PMK", (commit-scalar + peer-commit-scalar) mod r), PMKID = the first 16 octets of
    that sum (12.4.5.4): (KCK, PMK, PMKID)."""
    k = ec_mul(rand, ec_add(ec_mul(peer_scalar, pwe), peer_element))
    keyseed = hmac.new(bytes(32), k[0].to_bytes(32, "big"), hashlib.sha256).digest()
    total = ((scalar + peer_scalar) % P256_R).to_bytes(32, "big")
    keys = kdf_sha256(keyseed, b"SAE KCK and PMK", total, 512)
    return keys[:32], keys[32:], total[:16]


def sae_confirm(kck, send_confirm, scalar, element, peer_scalar, peer_element):
    """Confirm = HMAC-SHA256(KCK, send-confirm (16-bit LE) || commit-scalar ||
    COMMIT-ELEMENT || peer-commit-scalar || PEER-COMMIT-ELEMENT) (12.4.5.5)."""
    return hmac.new(kck, struct.pack("<H", send_confirm) + scalar.to_bytes(32, "big")
                    + element_bytes(element) + peer_scalar.to_bytes(32, "big")
                    + element_bytes(peer_element), hashlib.sha256).digest()


# --- RSN element, KDEs, FT elements, EAPOL-Key (9.4.2.24, 9.4.2.46-48, 12.7.2) ------------
def suite(t):
    return bytes([0x00, 0x0F, 0xAC, t])


def rsn_element(akms, capabilities=0, group_mgmt=None, pairwise=(CCMP_128,), group=CCMP_128,
                pmkids=()):
    """RSN element: version 1, group cipher, pairwise and AKM suite lists, capabilities;
    with pmkids (FT: PMKR0Name or PMKR1Name) or group_mgmt, the PMKID count and list, then
    the group management cipher suite if given."""
    body = struct.pack("<H", 1) + suite(group)
    body += struct.pack("<H", len(pairwise)) + b"".join(suite(s) for s in pairwise)
    body += struct.pack("<H", len(akms)) + b"".join(suite(s) for s in akms)
    body += struct.pack("<H", capabilities)
    if pmkids or group_mgmt is not None:
        body += struct.pack("<H", len(pmkids)) + b"".join(pmkids)
    if group_mgmt is not None:
        body += suite(group_mgmt)
    return bytes([0x30, len(body)]) + body


def mobility_domain_element(mdid, ft_capability=0):
    """The Mobility Domain element (9.4.2.46): 36 03, the MDID (2 octets, as the AP
    configures them) and FT Capability and Policy (bit 0 FT over DS, bit 1 resource
    request protocol)."""
    assert len(mdid) == 2
    return bytes([54, 3]) + mdid + bytes([ft_capability])


def ft_element(mic_count=0, mic=bytes(16), anonce=bytes(32), snonce=bytes(32), r1kh_id=None,
               gtk=None, r0kh_id=None):
    """The Fast BSS Transition element (9.4.2.47): 37, length, MIC Control (2 octets: 0,
    then the element count the MIC covers), MIC (16), ANonce (32), SNonce (32), then the
    subelements given, each id, length, body, in the order of their ids: 1 R1KH-ID (6), 2
    GTK (its body, ft_gtk_subelement), 3 R0KH-ID (1 to 48 octets)."""
    assert len(mic) == 16 and len(anonce) == 32 and len(snonce) == 32
    body = bytes([0, mic_count]) + mic + anonce + snonce
    for sub_id, sub in ((1, r1kh_id), (2, gtk), (3, r0kh_id)):
        if sub is not None:
            body += bytes([sub_id, len(sub)]) + sub
    return bytes([55, len(body)]) + body


def ft_gtk_subelement(kek, key_id, rsc, gtk):
    """The body of the FTE's GTK subelement (9.4.2.47, figure 9-617): Key Info (2 octets,
    the key id in bits 0-1), Key Length (1), RSC (8 octets, little-endian), Wrapped Key:
    the GTK AES-key-wrapped (RFC 3394) under the KEK (12.7.1.7.5, 13.8.5)."""
    assert len(gtk) % 8 == 0 and len(gtk) >= 16
    return (struct.pack("<HB", key_id & 3, len(gtk)) + struct.pack("<Q", rsc)
            + aes_key_wrap(kek, gtk))


def timeout_interval_element(interval_type, value):
    """The Timeout Interval element (9.4.2.48): 38 05, type (1: reassociation deadline in
    TUs, 2: key lifetime in seconds), value (4 octets, little-endian)."""
    return bytes([56, 5, interval_type]) + struct.pack("<I", value)


def ft_mic(kck, sta, ap, seq, rsne, mde, fte):
    """The FTE's MIC (13.8.4, 13.8.5; AKMs 3 and 4): AES-128-CMAC(KCK, STA-MAC || target
    AP's MAC || transaction sequence number (1 octet: 5 in a Reassociation Request, 6 in
    the Response) || RSNE || MDE || the FTE with a zero MIC field), whole elements as the
    frame carries them."""
    zeroed = fte[:4] + bytes(16) + fte[20:]
    return aes_cmac(kck, sta + ap + bytes([seq]) + rsne + mde + zeroed)


def wpa_element(pairwise=(TKIP,), akms=(AKM_PSK,), group=TKIP):
    """The WPA element (Wi-Fi WPA, a vendor-specific element 9.4.2.25): 0xdd, length, OUI
    00-50-F2, type 1, version 1 (16-bit LE), group cipher suite, pairwise and AKM suite
    counts (16-bit LE) and lists, each suite OUI 00-50-F2 then its type; no capabilities
    field (as hostapd writes it)."""
    def wpa_suite(t):
        return bytes([0x00, 0x50, 0xF2, t])
    body = bytes([0x00, 0x50, 0xF2, 1]) + struct.pack("<H", 1) + wpa_suite(group)
    body += struct.pack("<H", len(pairwise)) + b"".join(wpa_suite(s) for s in pairwise)
    body += struct.pack("<H", len(akms)) + b"".join(wpa_suite(s) for s in akms)
    return bytes([0xDD, len(body)]) + body


def kde(data_type, data):
    """A KDE (12.7.2, figure 12-35): 0xdd, length, OUI 00-0F-AC, data type, data."""
    return bytes([0xDD, 4 + len(data)]) + suite(data_type) + data


def pmkid_kde(pmkid):
    return kde(4, pmkid)


def gtk_kde(key_id, gtk):
    """GTK KDE: key id (Tx bit clear), reserved 0, GTK."""
    return kde(1, bytes([key_id, 0]) + gtk)


def igtk_kde(key_id, ipn, igtk):
    """IGTK KDE: key id (16-bit LE), IPN (6 octets, LE), IGTK."""
    return kde(9, struct.pack("<H", key_id) + ipn.to_bytes(6, "little") + igtk)


def pad_key_data(data):
    """Key data padded for AES key wrap (12.7.2 j): 0xdd then zeros to a multiple of 8
    (and at least 16 octets)."""
    data += b"\xdd" + bytes(-(len(data) + 1) % 8)
    while len(data) < 16:
        data += bytes(8)
    return data


def hmac_md5(kck, frame):
    """The MIC of key descriptor version 1 (TKIP): HMAC-MD5(KCK, frame), 16 octets."""
    return hmac.new(kck, frame, hashlib.md5).digest()


def hmac_sha1_128(kck, frame):
    """The MIC of key descriptor version 2: HMAC-SHA1(KCK, frame)[:16]."""
    return hmac.new(kck, frame, hashlib.sha1).digest()[:16]


def aes_cmac(key, data):
    """AES-128-CMAC (RFC 4493), the MIC of key descriptor version 3 and of version 0
    ("AKM-defined") with AKM 8 (SAE)."""
    c = CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()


def eapol_key(version, info, key_len, replay, nonce, key_data=b"", mic_key=None, rsc=0,
              mic=hmac_sha1_128, iv=bytes(16), descriptor=DESC_RSN):
    """An 802.1X EAPOL-Key frame, RSN descriptor (12.7.2) or, with descriptor=DESC_WPA,
    WPA's (the same fields); with mic_key, its MIC computed by `mic` (hmac_md5 for
    descriptor version 1, hmac_sha1_128 for version 2, aes_cmac for versions 0 and 3)
    over the frame with a zero MIC; `iv` is the EAPOL-Key IV field (16 octets)."""
    # type, key information, key length, replay counter, nonce, IV, RSC, reserved, MIC
    assert len(iv) == 16
    body = struct.pack("!BHHQ", descriptor, info, key_len, replay) + nonce + iv \
        + struct.pack("<Q", rsc) + bytes(8) + bytes(16) \
        + struct.pack("!H", len(key_data)) + key_data
    frame = struct.pack("!BBH", version, 3, len(body)) + body
    if mic_key:
        frame = frame[:MIC_AT] + mic(mic_key, frame) + frame[MIC_AT + 16:]
    return frame


def eapol_mic_ok(kck, frame, mic=hmac_sha1_128):
    """Whether the frame's MIC is that of the KCK."""
    zero = frame[:MIC_AT] + bytes(16) + frame[MIC_AT + 16:]
    return hmac.compare_digest(mic(kck, zero), frame[MIC_AT:MIC_AT + 16])


def key_data_of(kek, frame):
    """The unwrapped key data of an EAPOL-Key frame (AES key wrap, RFC 3394)."""
    n = struct.unpack_from("!H", frame, KEY_DATA_AT - 2)[0]
    return aes_key_unwrap(kek, frame[KEY_DATA_AT:KEY_DATA_AT + n])


def rc4(key, data, skip=0):
    """RC4: the key schedule, then `skip` octets of keystream discarded, then data XORed
    with the keystream (encryption and decryption alike)."""
    s, j = list(range(256)), 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) & 0xFF
        s[i], s[j] = s[j], s[i]
    i = j = 0
    out = bytearray()
    for n in range(skip + len(data)):
        i = (i + 1) & 0xFF
        j = (j + s[i]) & 0xFF
        s[i], s[j] = s[j], s[i]
        if n >= skip:
            out.append(data[n - skip] ^ s[(s[i] + s[j]) & 0xFF])
    return bytes(out)


def rc4_key_data(kek, iv, data):
    """Key data of descriptor version 1 encrypted (or decrypted): RC4 keyed by EAPOL-Key IV
    || KEK, the first 256 octets of keystream discarded (12.7.2, Key Data field)."""
    return rc4(iv + kek, data, 256)


def rc4_key_data_of(kek, frame):
    """The decrypted key data of a descriptor version 1 EAPOL-Key frame."""
    n = struct.unpack_from("!H", frame, KEY_DATA_AT - 2)[0]
    return rc4_key_data(kek, frame[IV_AT:IV_AT + 16], frame[KEY_DATA_AT:KEY_DATA_AT + n])


# --- CCMP (12.5.3) and GCMP (12.5.5) ------------------------------------------------------
def header_len(h):
    """Length of the MAC header of a data frame: 24, +6 with A4 (To DS and From DS), +2
    with QoS control, +4 with HT control (Order bit in a QoS data frame)."""
    n = 24 + (6 if h[1] & 0x03 == 0x03 else 0)
    if h[0] & 0x80:
        n += 2 + (4 if h[1] & 0x80 else 0)
    return n


def mpdu_aad(h):
    """The AAD of an MPDU whose MAC header is h, CCMP's and GCMP's alike (12.5.3.3.3,
    12.5.5.3.3), and its priority: frame control with, in a data frame, the subtype bits
    4, 5, 6 masked (not in a management frame), Retry, PwrMgt and MoreData masked,
    Protected set and, with QoS control, Order masked || A1 A2 A3 || sequence control
    reduced to the fragment number || A4 if present || QoS control reduced to the TID,
    0 if present. The priority: that TID, else 0."""
    qos = h[0] & 0x0C == 0x08 and bool(h[0] & 0x80)
    fc0 = h[0] & 0x8F if h[0] & 0x0C == 0x08 else h[0]     # a data frame's subtype masked
    fc1 = (h[1] & ~0x38 & 0xFF) | 0x40         # Retry, PwrMgt, MoreData masked; Protected
    if qos:
        fc1 &= 0x7F                            # Order masked when QoS control is present
    sc = struct.unpack_from("<H", h, 22)[0] & 0x000F     # fragment number only
    aad = bytes([fc0, fc1]) + h[4:22] + struct.pack("<H", sc)
    off = 24
    if h[1] & 0x03 == 0x03:
        aad += h[24:30]
        off = 30
    priority = 0
    if qos:
        priority = h[off] & 0x0F
        aad += bytes([priority, 0])
    return aad, priority


def ccmp_aad_nonce(h, pn):
    """The AAD (mpdu_aad) and the 13-octet nonce of an MPDU whose MAC header is h
    (12.5.3.3.3, 12.5.3.3.4): flags (the priority; bit 4 set in a management frame) ||
    A2 || PN5..PN0, for CCMP-128 and CCMP-256 alike."""
    aad, priority = mpdu_aad(h)
    flags = priority | (0x10 if h[0] & 0x0C == 0 else 0)
    return aad, bytes([flags]) + h[10:16] + pn.to_bytes(6, "big")


def ccmp_header(pn, keyid):
    """CCMP header (12.5.3.2): PN0 PN1 0 (key id << 6 | ExtIV) PN2 PN3 PN4 PN5; GCMP's is
    the same (12.5.5.2)."""
    p = pn.to_bytes(6, "little")
    return bytes([p[0], p[1], 0, (keyid << 6) | 0x20]) + p[2:6]


def ccmp_mic_len(tk):
    """The MIC length of CCMP under a TK: 8 octets for CCMP-128 (16-octet TK), 16 for
    CCMP-256 (32-octet TK) (12.5.3.1)."""
    assert len(tk) in (16, 32), len(tk)
    return 8 if len(tk) == 16 else 16


def ccmp_encrypt(tk, keyid, pn, h, plaintext):
    """CCMP header || AES-CCM (L = 2; M = 8 for CCMP-128, 16 for CCMP-256 with a 32-octet
    TK) ciphertext and MIC of the plaintext under header h."""
    aad, nonce = ccmp_aad_nonce(h, pn)
    return ccmp_header(pn, keyid) + AESCCM(tk, tag_length=ccmp_mic_len(tk)).encrypt(
        nonce, plaintext, aad)


def ccmp_pn(body):
    """The PN of a CCMP MPDU body (from its CCMP header)."""
    return int.from_bytes(body[0:2] + body[4:8], "little")


def ccmp_decrypt(tk, mpdu):
    """The plaintext of a protected MPDU (without FCS); raises if the MIC is wrong."""
    n = header_len(mpdu)
    h, c = mpdu[:n], mpdu[n:]
    assert h[1] & 0x40 and c[3] & 0x20, "not a CCMP frame"
    aad, nonce = ccmp_aad_nonce(h, ccmp_pn(c))
    return AESCCM(tk, tag_length=ccmp_mic_len(tk)).decrypt(nonce, c[8:], aad)


def decrypts(tk, mpdu):
    """Whether a protected MPDU's MIC is right under tk."""
    try:
        ccmp_decrypt(tk, mpdu)
        return True
    except Exception as e:       # cryptography's InvalidTag
        assert type(e).__name__ == "InvalidTag", e
        return False


def gcmp_encrypt(tk, keyid, pn, h, plaintext):
    """GCMP header (the CCMP header's layout) || AES-GCM ciphertext and 16-octet MIC of the
    plaintext under header h (12.5.5): a 16-octet TK for GCMP-128, 32 for GCMP-256; the
    AAD that of CCMP (mpdu_aad); the 12-octet nonce A2 || PN5..PN0 (12.5.5.3.4)."""
    assert len(tk) in (16, 32), len(tk)
    aad, _ = mpdu_aad(h)
    return ccmp_header(pn, keyid) + AESGCM(tk).encrypt(h[10:16] + pn.to_bytes(6, "big"),
                                                       plaintext, aad)


def gcmp_decrypt(tk, mpdu):
    """The plaintext of a GCMP-protected MPDU (without FCS); raises if the MIC is wrong."""
    n = header_len(mpdu)
    h, c = mpdu[:n], mpdu[n:]
    assert h[1] & 0x40 and c[3] & 0x20, "not a GCMP frame"
    aad, _ = mpdu_aad(h)
    return AESGCM(tk).decrypt(h[10:16] + ccmp_pn(c).to_bytes(6, "big"), c[8:], aad)


def gcmp_decrypts(tk, mpdu):
    """Whether a protected MPDU's GCMP MIC is right under tk."""
    try:
        gcmp_decrypt(tk, mpdu)
        return True
    except Exception as e:       # cryptography's InvalidTag
        assert type(e).__name__ == "InvalidTag", e
        return False


# --- TKIP (12.5.2) ------------------------------------------------------------------------
def _xtime(b):
    """b * x in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1 (AES's field)."""
    return ((b << 1) ^ (0x1B if b & 0x80 else 0)) & 0xFF


def _aes_sbox():
    """AES's S-box: the multiplicative inverse in GF(2^8) (0 for 0), then the affine map
    b ^ rotl(b, 1) ^ rotl(b, 2) ^ rotl(b, 3) ^ rotl(b, 4) ^ 0x63 (FIPS 197 5.1.1)."""
    def mul(a, b):
        p = 0
        while b:
            if b & 1:
                p ^= a
            a, b = _xtime(a), b >> 1
        return p
    box = []
    for x in range(256):
        inv = next(y for y in range(256) if mul(x, y) == 1) if x else 0
        rot = [((inv << k) | (inv >> (8 - k))) & 0xFF for k in range(1, 5)]
        box.append(inv ^ rot[0] ^ rot[1] ^ rot[2] ^ rot[3] ^ 0x63)
    return box


# The TKIP S-box (12.5.2.5): for AES's S-box value s of each index, the 16-bit entry
# (2s in GF(2^8)) << 8 | (3s in GF(2^8)).
TKIP_SBOX = [(_xtime(s) << 8) | (_xtime(s) ^ s) for s in _aes_sbox()]


def _tkip_s(v):
    """The S-box of the key mixing function on a 16-bit word: the table entry of its low
    octet XOR the byte-swapped entry of its high octet."""
    hi = TKIP_SBOX[v >> 8]
    return TKIP_SBOX[v & 0xFF] ^ (((hi & 0xFF) << 8) | (hi >> 8))


def _mk16(hi, lo):
    return (hi << 8) | lo


def tkip_phase1(tk, ta, iv32):
    """Phase 1 of the key mixing function (12.5.2.5): TTAK (P1K), five 16-bit words, from
    the TK, the transmitter address and the high 32 bits of the TSC."""
    p = [iv32 & 0xFFFF, iv32 >> 16, _mk16(ta[1], ta[0]), _mk16(ta[3], ta[2]),
         _mk16(ta[5], ta[4])]
    for i in range(8):
        j = 2 * (i & 1)
        p[0] = (p[0] + _tkip_s(p[4] ^ _mk16(tk[1 + j], tk[0 + j]))) & 0xFFFF
        p[1] = (p[1] + _tkip_s(p[0] ^ _mk16(tk[5 + j], tk[4 + j]))) & 0xFFFF
        p[2] = (p[2] + _tkip_s(p[1] ^ _mk16(tk[9 + j], tk[8 + j]))) & 0xFFFF
        p[3] = (p[3] + _tkip_s(p[2] ^ _mk16(tk[13 + j], tk[12 + j]))) & 0xFFFF
        p[4] = (p[4] + _tkip_s(p[3] ^ _mk16(tk[1 + j], tk[0 + j])) + i) & 0xFFFF
    return p


def tkip_phase2(tk, ttak, iv16):
    """Phase 2 (12.5.2.5): the 16-octet WEP seed (RC4 key) of one MPDU from the TTAK, the
    TK and the low 16 bits of the TSC: TSC1, (TSC1 | 0x20) & 0x7f, TSC0, then the mixed
    key."""
    rotr1 = lambda v: ((v >> 1) | (v << 15)) & 0xFFFF   # noqa: E731
    k = [_mk16(tk[2 * i + 1], tk[2 * i]) for i in range(8)]
    p = list(ttak) + [(ttak[4] + iv16) & 0xFFFF]
    for i in range(6):
        p[i] = (p[i] + _tkip_s(p[i - 1] ^ k[i])) & 0xFFFF    # p[-1] is PPK5
    p[0] = (p[0] + rotr1(p[5] ^ k[6])) & 0xFFFF
    p[1] = (p[1] + rotr1(p[0] ^ k[7])) & 0xFFFF
    for i in range(2, 6):
        p[i] = (p[i] + rotr1(p[i - 1])) & 0xFFFF
    seed = bytes([iv16 >> 8, ((iv16 >> 8) | 0x20) & 0x7F, iv16 & 0xFF,
                  ((p[5] ^ k[0]) >> 1) & 0xFF])
    return seed + b"".join(struct.pack("<H", w) for w in p)


def michael(key, data):
    """Michael (12.5.2.3): the 8-octet MIC of data under an 8-octet key. The data is
    padded with 0x5a and 4 to 7 zeros to a multiple of 4 octets, taken as little-endian
    32-bit words M_i; for each, l ^= M_i, then the block function b(l, r); the MIC is
    l || r, little-endian."""
    mask = 0xFFFFFFFF
    rotl = lambda v, n: ((v << n) | (v >> (32 - n))) & mask     # noqa: E731
    l, r = struct.unpack("<II", key)
    data = data + b"\x5a" + bytes(4 + (-(len(data) + 1)) % 4)
    for (m,) in struct.iter_unpack("<I", data):
        l ^= m
        r ^= rotl(l, 17)
        l = (l + r) & mask
        r ^= ((l & 0xFF00FF00) >> 8) | ((l & 0x00FF00FF) << 8)     # XSWAP
        l = (l + r) & mask
        r ^= rotl(l, 3)
        l = (l + r) & mask
        r ^= rotl(l, 30)                                            # ror 2
        l = (l + r) & mask
    return struct.pack("<II", l, r)


def michael_header(h):
    """DA || SA || priority || 0 0 0, the header Michael covers before the MSDU data
    (12.5.2.3): DA and SA from the To DS / From DS bits, priority the QoS TID of a QoS
    data frame (0 otherwise)."""
    a1, a2, a3 = h[4:10], h[10:16], h[16:22]
    ds = h[1] & 0x03
    da, sa = {0: (a1, a2), 1: (a3, a2), 2: (a1, a3), 3: (a3, h[24:30])}[ds]
    priority = h[30 if ds == 3 else 24] & 0x0F if h[0] & 0x80 else 0
    return da + sa + bytes([priority, 0, 0, 0])


def tkip_mic_key(key, h):
    """The Michael key of an MPDU under a 32-octet TKIP key (PTK[32:64] or the GTK: TK ||
    Michael key of the authenticator's MSDUs || Michael key of the supplicant's): the
    authenticator's (AP's: From DS set, To DS clear) [16:24], else [24:32]."""
    return key[16:24] if h[1] & 0x03 == 0x02 else key[24:32]


def tkip_header(tsc, keyid):
    """TKIP IV / extended IV (12.5.2.2): TSC1, WEPSeed[1] = (TSC1 | 0x20) & 0x7f, TSC0,
    key id << 6 | 0x20 (ExtIV), TSC2 TSC3 TSC4 TSC5."""
    t = tsc.to_bytes(6, "little")
    return bytes([t[1], (t[1] | 0x20) & 0x7F, t[0], (keyid << 6) | 0x20]) + t[2:6]


def tkip_michael(key, h, msdu):
    """The Michael MIC of an MSDU (12.5.2.3) sent with MAC header h (of its MPDU, or of
    any of its fragments: DA, SA and priority are theirs alike) under a 32-octet TKIP
    key."""
    return michael(tkip_mic_key(key, h), michael_header(h) + msdu)


def tkip_seal(key, keyid, tsc, h, data):
    """The body of one TKIP MPDU with MAC header h under a 32-octet TKIP key: TKIP header
    || RC4(WEP seed, data || ICV), the WEP seed from phase 1 (TK, TA = A2, IV32 = TSC >>
    16) and phase 2 (IV16 = TSC & 0xffff), the ICV CRC-32 of data, little-endian
    (12.5.2). `data`: the MSDU || its Michael MIC (tkip_encrypt) or, of a fragmented
    MSDU, one fragment of MSDU || MIC, each fragment sealed on its own with its own TSC
    and ICV (12.5.2: the MIC is added to the MSDU before fragmentation)."""
    tk = key[:16]
    plain = data + struct.pack("<I", zlib.crc32(data) & 0xFFFFFFFF)
    seed = tkip_phase2(tk, tkip_phase1(tk, h[10:16], tsc >> 16), tsc & 0xFFFF)
    return tkip_header(tsc, keyid) + rc4(seed, plain)


def tkip_encrypt(key, keyid, tsc, h, msdu):
    """The body of an unfragmented TKIP MPDU with MAC header h, under a 32-octet TKIP key:
    TKIP header || RC4(WEP seed, MSDU || Michael MIC || ICV) (tkip_seal, tkip_michael;
    12.5.2)."""
    return tkip_seal(key, keyid, tsc, h, msdu + tkip_michael(key, h, msdu))


def tkip_tsc(body):
    """The TSC of a TKIP MPDU body (from its TKIP header)."""
    return int.from_bytes(bytes([body[2], body[0]]) + body[4:8], "little")


def tkip_open(key, mpdu):
    """What one TKIP-protected MPDU (without FCS) carries under a 32-octet TKIP key, its
    ICV checked and removed (tkip_seal's `data`: MSDU || MIC, or a fragment of it); raises
    ValueError if its WEP seed octet or ICV is wrong."""
    n = header_len(mpdu)
    h, body = mpdu[:n], mpdu[n:]
    if not (h[1] & 0x40 and body[3] & 0x20) or body[1] != (body[0] | 0x20) & 0x7F:
        raise ValueError("not a TKIP frame")
    tsc, tk = tkip_tsc(body), key[:16]
    seed = tkip_phase2(tk, tkip_phase1(tk, h[10:16], tsc >> 16), tsc & 0xFFFF)
    plain = rc4(seed, body[8:])
    if zlib.crc32(plain[:-4]) & 0xFFFFFFFF != struct.unpack("<I", plain[-4:])[0]:
        raise ValueError("bad ICV")
    return plain[:-4]


def tkip_opens(key, mpdu):
    """Whether a TKIP MPDU's ICV is right under the key (tkip_open): what a fragment of an
    MSDU, whose Michael MIC only the whole MSDU has, can tell of its key."""
    try:
        tkip_open(key, mpdu)
        return True
    except ValueError:
        return False


def tkip_decrypt(key, mpdu):
    """The MSDU of an unfragmented TKIP-protected MPDU (without FCS) under a 32-octet TKIP
    key; raises ValueError if its WEP seed octet, ICV or Michael MIC is wrong."""
    plain = tkip_open(key, mpdu)
    msdu, mic = plain[:-8], plain[-8:]
    if tkip_michael(key, mpdu[:header_len(mpdu)], msdu) != mic:
        raise ValueError("bad Michael MIC")
    return msdu


def tkip_decrypts(key, mpdu):
    """Whether a protected MPDU decrypts under the TKIP key (ICV and Michael right)."""
    try:
        tkip_decrypt(key, mpdu)
        return True
    except ValueError:
        return False


# --- WEP (12.3.2) -------------------------------------------------------------------------
def wep_header(iv, keyid):
    """The WEP IV field (12.3.2.2): the 24-bit IV, most significant octet first (as
    Linux's mac80211 writes its counter), then key id << 6 (ExtIV 0, pad 0)."""
    assert 0 <= iv < 1 << 24 and 0 <= keyid < 4
    return iv.to_bytes(3, "big") + bytes([keyid << 6])


def wep_encrypt(key, keyid, iv, h, msdu):
    """The body of a WEP MPDU (12.3.2.2) under a WEP-40 (5 octets) or WEP-104 (13 octets)
    key with key id `keyid`: IV (3 octets) || key id octet || RC4(IV || key)(MSDU || ICV),
    the ICV CRC-32 of the MSDU, little-endian. WEP covers no part of the MAC header h
    (taken for symmetry with tkip_encrypt and ccmp_encrypt)."""
    assert len(key) in (5, 13), len(key)
    del h
    head = wep_header(iv, keyid)
    icv = struct.pack("<I", zlib.crc32(msdu) & 0xFFFFFFFF)
    return head + rc4(head[:3] + key, msdu + icv)


def wep_iv(body):
    """The 24-bit IV of a WEP MPDU body."""
    return int.from_bytes(body[0:3], "big")


def wep_decrypt(key, mpdu):
    """The MSDU of a WEP-protected MPDU (without FCS); raises ValueError if it is no WEP
    frame (Protected bit clear, ExtIV set) or its ICV is wrong under the key."""
    n = header_len(mpdu)
    h, body = mpdu[:n], mpdu[n:]
    if not h[1] & 0x40 or body[3] & 0x20 or len(body) < 8:
        raise ValueError("not a WEP frame")
    plain = rc4(body[:3] + key, body[4:])
    if zlib.crc32(plain[:-4]) & 0xFFFFFFFF != struct.unpack("<I", plain[-4:])[0]:
        raise ValueError("bad ICV")
    return plain[:-4]


def wep_decrypts(key, mpdu):
    """Whether a protected MPDU decrypts under the WEP key (ICV right)."""
    try:
        wep_decrypt(key, mpdu)
        return True
    except ValueError:
        return False


# --- the WPA lab network (wlankit.Lab) ----------------------------------------------------
class Station(LabStation):
    """A station of a WPA lab (wlankit.Station) and, once its 4-way handshake is written
    (or made up, for a station whose handshake the capture lacks), its pairwise cipher
    ("CCMP" or "TKIP"; or "CCMP-256", "GCMP-128", "GCMP-256") and key (CCMP, GCMP-128: the
    16-octet TK; CCMP-256, GCMP-256: the 32-octet TK; TKIP: the 32 octets TK || Michael
    key of the AP's MSDUs || of the station's, PTK[32:64]), and the frame numbers of that
    handshake; or, in a WEP lab (no handshake), "WEP" and the 5- or 13-octet WEP key."""

    def __init__(self, name, mac_address, ip, ids, aid, dns_port):
        LabStation.__init__(self, name, mac_address, ip, ids, aid, dns_port)
        self.cipher, self.key, self.handshake = None, None, []


class WpaLab(Lab):
    """A WPA lab network (wlankit.Lab) and its protected frames: each transmitter counts
    the PNs (CCMP), TSCs (TKIP) or 24-bit IVs (WEP) of each key from 1 (tsc_next:
    (transmitter, key) -> the next; a script sets one for a station that was sending
    before the capture, or for a WEP transmitter's seeded first IV); the
    protected frames written are kept as (frame number, cipher, key, plaintext, whose:
    a station's name or "group") for the self-check and the counts. The records of
    expected.json: with dns_device each DNS lookup names its station first; with
    request_cipher each request names its station's pairwise cipher (make_tkip.py, whose
    stations differ in it). With frag_threshold (dot11FragmentationThreshold, octets; None:
    no fragmentation), send fragments the MSDUs too long for one MPDU (send_fragments,
    make_frag.py): each fragmented MSDU is kept in `fragmented`, and by the frame of its
    first fragment written in fragments_of; the TSCs (PNs) its transmitter used for frames
    the capture lacks, (transmitter MAC as bytes, key, TSC), in `unseen`."""

    def __init__(self, *args, dns_device=True, request_cipher=False, frag_threshold=None,
                 **kwargs):
        Lab.__init__(self, *args, **kwargs)
        self.dns_device, self.request_cipher = dns_device, request_cipher
        self.tsc_next, self.protected = {}, []
        self.frag_threshold, self.fragmented, self.fragments_of, self.unseen = (
            frag_threshold, [], {}, [])

    def protected_frame(self, flags, a1, a2, a3, plaintext, cipher, key, keyid, qos=None):
        """A protected data frame (the Protected bit set), a QoS data frame with QoS control
        `qos` or, with None, a data frame, TKIP (12.5.2), CCMP (12.5.3; "CCMP" or, with a
        32-octet key, "CCMP-256"), GCMP (12.5.5, "GCMP-128" or "GCMP-256") or WEP (12.3.2,
        cipher "WEP") under the key with key id `keyid` and the transmitter's (A2's) next
        TSC, PN or IV for it; with (cipher, key, plaintext)."""
        h = self.cap.mac_header(0x88 if qos is not None else 0x08, flags | 0x40, a1, a2, a3,
                                qos)
        tsc = self.tsc_next.get((a2, key), 1)
        self.tsc_next[(a2, key)] = tsc + 1
        encrypt = {"TKIP": tkip_encrypt, "WEP": wep_encrypt, "GCMP": gcmp_encrypt}.get(
            cipher.split("-")[0], ccmp_encrypt)
        body = encrypt(key, keyid, tsc, h, plaintext)
        return radiotap(h + body), (cipher, key, plaintext)

    def emit_protected(self, frame_plain, whose, transmitter=None, dt=0.0003):
        """Writes a protected_frame, acknowledged if unicast (`transmitter`: its A2), and
        keeps it for the self-check; its frame number."""
        (data, (cipher, key, plaintext)) = frame_plain
        n = self.cap.emit_acked(data, transmitter, dt) if transmitter else self.cap.emit(data, dt)
        self.protected.append((n, cipher, key, plaintext, whose))
        return n

    def send(self, st, up, payload, qos=0, dt=0.0003, a3=None, snap=SNAP_IPV4, fc_flags=0,
             **odd):
        """The station's packet to the router (`up`) or the router's to the station (A3:
        `a3`, by default the router), behind `snap`, in a data frame protected with the
        station's pairwise key (key id 0), QoS control `qos` (None: a data frame), frame
        control flags `fc_flags` besides To DS / From DS; acknowledged. Its frame number.
        With frag_threshold, an MSDU (TKIP: with its Michael MIC) longer than a fragment's
        payload (fragment_size) goes as fragments (send_fragments; `odd`: its odd cases);
        the frame number of its first fragment written."""
        flags, a1, a2, a3 = self.addresses(st, up, a3 or self.router_mac)
        msdu = snap + payload
        if self.frag_threshold and (len(msdu) + (8 if st.cipher == "TKIP" else 0)
                                    > self.fragment_size(qos)):
            return self.send_fragments(st, flags | fc_flags, a1, a2, a3, msdu, qos, dt, **odd)
        assert not odd, odd
        return self.emit_protected(
            self.protected_frame(flags | fc_flags, a1, a2, a3, msdu, st.cipher,
                                 st.key, 0, qos), st.name, a2, dt)

    def fragment_size(self, qos):
        """The MSDU octets (TKIP: of MSDU || MIC) a fragment carries, all fragments but the
        last: the fragmentation threshold less the MAC header (24 octets, 26
        with QoS control) and the FCS; the security encapsulation (TKIP header and ICV,
        CCMP header and MIC) is not counted, and may take the MPDU beyond it."""
        return self.frag_threshold - (24 if qos is None else 26) - 4

    def send_fragments(self, st, flags, a1, a2, a3, msdu, qos, dt, lost=(), retried=(),
                       pn_skip=None):
        """An MSDU between the station and the AP sent as fragments, each an
        MPDU of its own, acknowledged: a data frame (QoS control `qos`; None: no QoS) with
        frame control flags `flags` (To DS / From DS), the Protected bit and, on every
        fragment but the last, More Fragments (0x04); all with the MSDU's sequence number
        (the transmitter's next) and fragment numbers 0, 1, ...; each fragment_size(qos)
        octets but the last. Each is encrypted on its own under the station's pairwise key
        (key id 0) with the transmitter's next TSC (PN): CCMP and GCMP cut the MSDU, their
        AAD keeping More Fragments and the fragment number (mpdu_aad); TKIP cuts MSDU ||
        Michael MIC (tkip_michael, over the whole MSDU: 12.5.2), each fragment with its
        own ICV (tkip_seal). The duration of each but the last covers its Ack, the next
        fragment at 54 Mb/s and that one's Ack; the last's, its Ack (44 us). The
        clock advances by 0.0002 s after each fragment but the last, by dt after it.
        The odd cases: `lost`, fragment numbers sent (their TSC or PN used, their Ack in
        the capture) that the capture lacks; `retried`, fragment numbers whose Ack the
        capture lacks, sent again with Retry (0x08) set and otherwise identical (Retry is
        masked out of the CCMP and GCMP AAD, TKIP covers no header bit), then acknowledged;
        `pn_skip`, {fragment number: n}: n TSCs (PNs) used by frames not in the capture
        before that fragment's. Kept in `fragmented` (and fragments_of) as a dict: whose
        (the station's name), ta (the transmitter), seq, cipher, key, msdu, data (msdu,
        TKIP: || MIC), pieces, header (the first fragment's MAC header), frames (frame
        numbers, None for a lost fragment), lost, retries (the frames of the copies with
        Retry set), tscs. The frame number of the first fragment written."""
        cipher, key = st.cipher, st.key
        h0 = self.cap.mac_header(0x88 if qos is not None else 0x08, flags | 0x40, a1, a2, a3,
                                 qos)
        size = self.fragment_size(qos)
        data = msdu + (tkip_michael(key, h0, msdu) if cipher == "TKIP" else b"")
        pieces = [data[i:i + size] for i in range(0, len(data), size)]
        assert len(pieces) > 1 and len(pieces) <= 16, len(pieces)
        seal = {"TKIP": tkip_seal, "WEP": wep_encrypt, "GCMP": gcmp_encrypt}.get(
            cipher.split("-")[0], ccmp_encrypt)
        # The security encapsulation's octets: TKIP header and ICV, WEP IV and ICV, GCMP
        # header and MIC, CCMP header and MIC.
        overhead = {"TKIP": 12, "WEP": 8, "GCMP": 24}.get(cipher.split("-")[0])
        overhead = overhead or 8 + ccmp_mic_len(key)
        sc = struct.unpack_from("<H", h0, 22)[0]
        record = {"whose": st.name, "ta": a2, "seq": sc >> 4, "cipher": cipher, "key": key,
                  "msdu": msdu, "data": data, "pieces": pieces, "header": h0, "frames": [],
                  "lost": list(lost), "retries": [], "tscs": []}
        for k, piece in enumerate(pieces):
            more = k < len(pieces) - 1
            duration = 44
            if more:         # Ack, SIFS, the next fragment (20 us preamble + 4 us symbols)
                bits = 16 + 8 * (len(h0) + overhead + len(pieces[k + 1]) + 4) + 6
                duration = 44 + 16 + 20 + 4 * -(-bits // 216) + 44
            h = (bytes([h0[0], h0[1] | (0x04 if more else 0)]) + struct.pack("<H", duration)
                 + h0[4:22] + struct.pack("<H", sc | k) + h0[24:])
            tsc = self.tsc_next.get((a2, key), 1)
            for skipped in range(tsc, tsc + (pn_skip or {}).get(k, 0)):
                self.unseen.append((mac(a2), key, skipped))
                tsc += 1
            self.tsc_next[(a2, key)] = tsc + 1
            record["tscs"].append(tsc)
            body = seal(key, 0, tsc, h, piece)
            step = 0.0002 if more else dt
            if k in lost:
                self.unseen.append((mac(a2), key, tsc))
                self.cap.t += 0.0001
                self.cap.emit(ack(a2), step)
                record["frames"].append(None)
                continue
            if k in retried:
                n = self.cap.emit(radiotap(h + body), 0.0004)
                self.protected.append((n, cipher, key, piece, st.name))
                retry = h[:1] + bytes([h[1] | 0x08]) + h[2:]
                record["retries"].append(self.emit_protected(
                    (radiotap(retry + body), (cipher, key, piece)), st.name, a2, step))
            else:
                n = self.emit_protected((radiotap(h + body), (cipher, key, piece)), st.name,
                                        a2, step)
            record["frames"].append(n)
        self.fragmented.append(record)
        first = next(n for n in record["frames"] if n)
        self.fragments_of[first] = record
        return first

    def group_frame(self, plaintext, cipher, key, keyid, what, qos=None, ap_mac=None):
        """The AP's group-addressed frame (From DS: A1 broadcast, A2 BSSID, A3 the router)
        under a group key, not acknowledged, whose MSDU is no request: a negative (`what`,
        why); `ap_mac`: another AP of the lab's (make_ft.py). Its frame number."""
        n = self.emit_protected(self.protected_frame(0x02, BROADCAST, ap_mac or self.ap_mac,
                                                     self.router_mac, plaintext, cipher, key,
                                                     keyid, qos), "group")
        self.negative(n, None, what)
        return n

    def eapol_frame(self, st, up, eapol):
        """EAPOL between the station and the AP in a QoS data frame, TID 7, unprotected (A3
        the BSSID)."""
        flags, a1, a2, a3 = self.addresses(st, up, self.bss(st))
        return radiotap(self.cap.mac_header(0x88, flags, a1, a2, a3, 0x0007) + SNAP_EAPOL
                        + eapol)

    def handshake(self, st, msgs):
        """The 4-way handshake's four messages (12.7.6), the AP's and the station's in turn,
        each acknowledged; their frame numbers, kept in st.handshake."""
        st.handshake = [self.cap.emit_acked(self.eapol_frame(st, i % 2 == 1, m),
                                            st.mac if i % 2 else self.bss(st), 0.004)
                        for i, m in enumerate(msgs)]
        return st.handshake

    def group_key_handshake(self, st, msgs, contents):
        """The group key handshake's two messages (12.7.7), the AP's then the station's,
        each inside a QoS data frame (TID 7, A3 the BSSID) protected with the station's
        pairwise key, as every EAPOL frame once that key is installed; each a negative
        (decrypted, no IP packet), `contents` telling what each holds. Their frame
        numbers."""
        frames = [self.send(st, up, m, 0x0007, 0.004, self.bss(st), SNAP_EAPOL)
                  for up, m in ((False, msgs[0]), (True, msgs[1]))]
        for n, what in zip(frames, contents):
            self.negative(n, None, "%s-protected QoS data frame (TID 7) of the %s's pairwise "
                          "key holding %s: decrypted, EAPOL-Key: no IP packet, no error"
                          % (st.cipher, st.name, what))
        return frames

    def wpa1_handshake(self, st, pmk, sta_wpa, ap_wpa, rand_bytes):
        """A WPA1 station joins (open system, association with its WPA element `sta_wpa`)
        and runs the WPA 4-way handshake: descriptor 254, version 1, HMAC-MD5 MICs, key
        length 32 in all four as hostapd and wpa_supplicant write WPA's; M3 carries the
        AP's WPA element `ap_wpa` in plain key data, no GTK (make_tkip.py, make_frag.py).
        The nonces come from `rand_bytes`; the station's PTK (PRF-512), KCK, KEK and TKIP
        key (TK || Michael keys) are set. The handshake's frame numbers."""
        self.join(st, sta_wpa)
        anonce, snonce = rand_bytes(32), rand_bytes(32)
        st.ptk = ptk_of(pmk, mac(self.ap_mac), mac(st.mac), anonce, snonce, length=64)
        st.kck, st.kek = st.ptk[0:16], st.ptk[16:32]
        st.cipher, st.key = "TKIP", st.ptk[32:64]
        kck = st.kck
        msgs = [eapol_key(2, 0x0089, 32, 1, anonce, descriptor=DESC_WPA),
                eapol_key(1, 0x0109, 32, 1, snonce, sta_wpa, kck, mic=hmac_md5,
                          descriptor=DESC_WPA),
                eapol_key(2, 0x01C9, 32, 2, anonce, ap_wpa, kck, mic=hmac_md5,
                          descriptor=DESC_WPA),
                eapol_key(1, 0x0109, 32, 2, bytes(32), b"", kck, mic=hmac_md5,
                          descriptor=DESC_WPA)]
        for m in msgs[1:]:
            assert eapol_mic_ok(kck, m, hmac_md5)
        return self.handshake(st, msgs)

    def wpa1_group_key_handshake(self, st, gtk, rand_bytes):
        """The WPA group key handshake of a WPA1 station (make_tkip.py, make_frag.py), both
        messages inside TKIP-protected QoS data frames (TID 7) of its pairwise key:
        message 1 with the 32-octet TKIP GTK (key index 1) RC4-encrypted under Key IV ||
        KEK, key RSC 0 (no group frame sent yet); message 2 the station's answer. The Key
        IV and GNonce come from `rand_bytes`. Its frame numbers and the Key IV."""
        key_iv, gnonce = rand_bytes(16), rand_bytes(32)
        kck = st.kck
        msgs = [eapol_key(2, 0x0391, 32, 3, gnonce, rc4_key_data(st.kek, key_iv, gtk), kck, 0,
                          mic=hmac_md5, iv=key_iv, descriptor=DESC_WPA),
                eapol_key(1, 0x0311, 32, 3, bytes(32), b"", kck, mic=hmac_md5,
                          descriptor=DESC_WPA)]
        for m in msgs:
            assert eapol_mic_ok(kck, m, hmac_md5)
        assert rc4_key_data_of(st.kek, msgs[0]) == gtk
        frames = self.group_key_handshake(
            st, msgs, ("WPA group key message 1 (the AP's: the TKIP GTK, key index 1, "
                       "RC4-encrypted)", "WPA group key message 2 (the %s's)" % st.name))
        return frames, key_iv

    def rsn_handshake_with_tkip_gtk(self, st, pmk, sta_rsn, ap_rsn, gtk, rand_bytes):
        """A WPA2 station of a mixed-mode network joins (open system, association with its
        RSN element `sta_rsn`) and runs the RSN 4-way handshake (make_tkip.py,
        make_frag.py): descriptor 2, version 2, HMAC-SHA1-128 MICs, pairwise CCMP-128; M3
        wraps (AES key wrap) the AP's RSN element `ap_rsn` and a GTK KDE with the 32-octet
        TKIP GTK `gtk` (key id 1), key RSC the TSC of the last group frame sent under it.
        The nonces come from `rand_bytes`; the station's PTK, KCK, KEK, CCMP key, PMKID and
        message 3 (st.m3) are set. The handshake's frame numbers."""
        self.join(st, sta_rsn)
        anonce, snonce = rand_bytes(32), rand_bytes(32)
        aa, spa = mac(self.ap_mac), mac(st.mac)
        st.ptk = ptk_of(pmk, aa, spa, anonce, snonce)
        st.kck, st.kek = st.ptk[0:16], st.ptk[16:32]
        st.cipher, st.key = "CCMP", st.ptk[32:48]
        st.pmkid = pmkid_of(pmk, aa, spa)
        m3_plain = pad_key_data(ap_rsn + gtk_kde(1, gtk))
        rsc = self.tsc_next[(self.ap_mac, gtk)] - 1
        kck = st.kck
        msgs = [eapol_key(2, 0x008A, 16, 1, anonce, pmkid_kde(st.pmkid)),
                eapol_key(1, 0x010A, 0, 1, snonce, sta_rsn, kck),
                eapol_key(2, 0x13CA, 16, 2, anonce, aes_key_wrap(st.kek, m3_plain), kck, rsc),
                eapol_key(1, 0x030A, 0, 2, bytes(32), b"", kck)]
        for m in msgs[1:]:
            assert eapol_mic_ok(kck, m)
        assert key_data_of(st.kek, msgs[2]) == m3_plain
        assert (m3_plain[len(ap_rsn):len(ap_rsn) + 8 + 32]
                == bytes.fromhex("dd26000fac010100") + gtk)
        st.m3 = msgs[2]
        return self.handshake(st, msgs)

    def dns(self, st, txid, name, qos=0):
        """The station's lookup of a tracker (wlankit.dns_lookup, from st.dns_port) and
        the router's answer, in its protected frames (QoS control `qos` both ways, None:
        data frames), recorded in dns_log."""
        address = self.trackers[name]
        got = [self.send(st, up, ip, qos, 0.002)
               for up, ip in dns_lookup(st.ip, self.router_ip, st.dns_port, txid, name,
                                        address)]
        record = {"device": st.name} if self.dns_device else {}
        self.dns_log.append(dict(record, name=name, address=address, query=got[0],
                                 answer=got[1]))

    def ntp(self, st, ident, what, answer=True, qos=0):
        """The NTP request of a station whose key no reader has (wlankit.ntp_exchange) to
        the router and, with `answer`, the answer, in its protected frames (QoS control
        `qos`, None: data frames); IPv4 identification `ident` plus the negatives so far;
        each frame a negative of kind "wlan-protected" (`what`, why)."""
        for up, ip in ntp_exchange(st.ip, self.router_ip, ident + len(self.negatives), answer):
            self.negative(self.send(st, up, ip, qos), "wlan-protected", what)

    def count(self, whose):
        """How many protected frames are a station's (by name) or, "group", group frames."""
        return sum(1 for p in self.protected if p[4] == whose)

    def counts(self, names):
        """The counts of expected.json: the frames decrypted with the capture's keys,
        pairwise (protected_frames: those of the stations `names`, per station in
        pairwise_frames) and group (group_frames), their sum (decrypted_frames); all
        protected frames (all_protected_frames)."""
        pairwise = {name: self.count(name) for name in names}
        group = self.count("group")
        return {"protected_frames": sum(pairwise.values()), "pairwise_frames": pairwise,
                "group_frames": group, "decrypted_frames": sum(pairwise.values()) + group,
                "all_protected_frames": len(self.protected)}

    def check(self, keys, stations):
        """Asserts, frame by frame in the written capture: every FCS; that every protected
        frame, each once, decrypts to its plaintext with its key (TKIP: WEP seed octet,
        ICV and Michael MIC; CCMP, GCMP: MIC; WEP: ICV) and with none of the other keys of
        its cipher in `keys` ((cipher, key) pairs; CCMP and CCMP-256 count as one cipher,
        GCMP-128 and GCMP-256 as another, each key tried as its length says); that each
        transmitter's TSCs (PNs, WEP IVs) under each key run on by one; that each
        request's plaintext carries the identifiers of its device, one of `stations`. The
        TSCs (PNs): (transmitter, key) -> those of its frames, in order.
        For fragmented MSDUs (send_fragments), besides: a TKIP fragment opens to its piece
        of MSDU || MIC with its ICV (tkip_open; its key told by the ICV alone); a copy with
        Retry set repeats the TSC (PN) of the transmitter's frame before it, which the run
        counts once; the TSCs (PNs) of `unseen` fill the run's gaps; each fragmented
        MSDU's frames (check_fragments) carry its sequence number, fragment numbers and
        More Fragments bits, each Retry copy is its original but for that bit, and the
        pieces of an MSDU with no fragment lost make it whole again (TKIP: its Michael
        MIC right); a request's identifiers are looked for in its whole MSDU."""
        self.cap.check_fcs()
        assert len({p[0] for p in self.protected}) == len(self.protected)
        counters = {}
        for n, cipher, key, plaintext, _ in self.protected:
            mpdu = self.cap.frames[n - 1][1][len(RADIOTAP):-4]
            body = mpdu[header_len(mpdu):]
            if cipher == "TKIP" and (mpdu[1] & 0x04 or mpdu[22] & 0x0F):
                assert tkip_open(key, mpdu) == plaintext, n
                opens, counter = tkip_opens, tkip_tsc(body)
            elif cipher == "TKIP":
                assert tkip_decrypt(key, mpdu) == plaintext, n
                opens, counter = tkip_decrypts, tkip_tsc(body)
            elif cipher == "WEP":
                assert wep_decrypt(key, mpdu) == plaintext, n
                opens, counter = wep_decrypts, wep_iv(body)
            elif cipher.startswith("GCMP"):
                assert gcmp_decrypt(key, mpdu) == plaintext, n
                opens, counter = gcmp_decrypts, ccmp_pn(body)
            else:
                assert ccmp_decrypt(key, mpdu) == plaintext, n
                opens, counter = decrypts, ccmp_pn(body)
            family = cipher.split("-")[0]
            assert not any(opens(k, mpdu) for c, k in keys
                           if c.split("-")[0] == family and k != key), n
            if mpdu[1] & 0x08:           # a retried fragment: its original's TSC (PN)
                assert counters[(mpdu[10:16], key)][-1] == counter, n
                continue
            counters.setdefault((mpdu[10:16], key), []).append(counter)
        for (ta, key), got in counters.items():
            run = sorted(got + [c for t, k, c in self.unseen if t == ta and k == key])
            assert got == sorted(got) and run == list(range(run[0], run[0] + len(run))), got
        self.check_fragments()
        ids = {st.name: st.ids for st in stations}
        for r in self.requests:
            plain = (self.fragments_of[r["frame"]]["msdu"] if r["frame"] in self.fragments_of
                     else next(p[3] for p in self.protected if p[0] == r["frame"]))
            assert all(ids[r["device"]][k].encode() in plain for k in r["identifiers"]), r
        return counters

    def check_fragments(self):
        """Asserts, for each fragmented MSDU (send_fragments) in the written capture: its
        fragments carry its sequence number, fragment numbers 0, 1, ... and More Fragments
        on all but the last, the Retry bit only on the retried copies, each otherwise its
        original; each opens, with its TSC (PN), to its piece; with no fragment lost,
        the pieces make MSDU (TKIP: || Michael MIC, which is right)."""
        for rec in self.fragmented:
            opened, last = [], len(rec["pieces"]) - 1
            for k, n in enumerate(rec["frames"]):
                if n is None:
                    continue
                mpdu = self.cap.frames[n - 1][1][len(RADIOTAP):-4]
                assert struct.unpack_from("<H", mpdu, 22)[0] == rec["seq"] << 4 | k, n
                assert mpdu[1] & 0x0C == (0 if k == last else 0x04), n
                body = mpdu[header_len(mpdu):]
                cipher = rec["cipher"].split("-")[0]
                if cipher == "TKIP":
                    piece, tsc = tkip_open(rec["key"], mpdu), tkip_tsc(body)
                elif cipher == "WEP":
                    piece, tsc = wep_decrypt(rec["key"], mpdu), wep_iv(body)
                elif cipher == "GCMP":
                    piece, tsc = gcmp_decrypt(rec["key"], mpdu), ccmp_pn(body)
                else:
                    piece, tsc = ccmp_decrypt(rec["key"], mpdu), ccmp_pn(body)
                assert piece == rec["pieces"][k] and tsc == rec["tscs"][k], n
                opened.append(piece)
            for r in rec["retries"]:
                retry, original = (self.cap.frames[m - 1][1][len(RADIOTAP):-4]
                                   for m in (r, r - 1))
                assert retry[1] == original[1] | 0x08 and not original[1] & 0x08, r
                assert retry[:1] + retry[2:] == original[:1] + original[2:], r
            if not rec["lost"]:
                assert b"".join(opened) == rec["data"]
                if rec["cipher"] == "TKIP":
                    assert tkip_michael(rec["key"], rec["header"], rec["msdu"]) == \
                        rec["data"][-8:]


class Conn(TcpConn):
    """One TCP connection of station `st` to `host` on port 80 (packets: wlankit.TcpConn;
    port and initial numbers: lab.next_tcp) in its protected frames (WpaLab.send): the
    station's with QoS control `up_qos`, the AP's with `down_qos` (None: data frames)."""

    def __init__(self, lab, st, host, up_qos=0, down_qos=0):
        TcpConn.__init__(self, st.ip, host, lab.trackers[host], *lab.next_tcp())
        self.lab, self.st, self.qos = lab, st, {True: up_qos, False: down_qos}

    def send(self, up, flags, payload=b"", dt=0.0004, fc_flags=0, **odd):
        return self.lab.send(self.st, up, self.packet(up, flags, payload), self.qos[up], dt,
                             fc_flags=fc_flags, **odd)

    def exchange(self, method, path, body, identifiers, doze=False, response=HTTP_RESPONSE):
        """The whole connection (TcpConn.exchange, the server answering `response`) with
        the station's identifiers of the types `identifiers` in the request, recorded
        (Lab.record_request); with `doze`, the station's last ACK announces power save (the
        PwrMgt bit, masked out of the CCMP AAD)."""
        frame, at = TcpConn.exchange(self, self.lab.cap, method, path, body,
                                     [self.st.ids[k] for k in identifiers], response,
                                     fc_flags=0x10 if doze else 0)
        fields = {"cipher": self.st.cipher} if self.lab.request_cipher else {}
        self.lab.record_request(self.st, frame, at, self.host, method, path, identifiers,
                                **fields)


def write_80211_keys(path, passphrase, ssid, pmks=(), msks=()):
    """Wireshark's 802.11 keys file (its 80211_keys table), no comments: a line
    "wpa-psk","<64 hex digits>" for each PMK of `pmks`, then "wpa-pwd","<passphrase>:<ssid>"
    (neither has ':' or '%', which Wireshark would write as %3a and %25), then a line
    "msk","<128 hex digits>" for each 64-octet MSK of `msks` (an 802.1X station's)."""
    assert not set(":%") & set(passphrase + ssid)
    with open(path, "w") as f:
        for pmk in pmks:
            f.write('"wpa-psk","%s"\n' % pmk.hex())
        f.write('"wpa-pwd","%s:%s"\n' % (passphrase, ssid))
        for msk in msks:
            assert len(msk) == 64
            f.write('"msk","%s"\n' % msk.hex())


# --- self-check ---------------------------------------------------------------------------
# PBKDF2 and PRF test vectors of IEEE 802.11's annex J, pairwise key derivation sample
# (KCK, KEK, TK).
assert pmk_of("password", "IEEE").hex() == \
    "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"
assert pmk_of("ThisIsAPassword", "ThisIsASSID").hex() == \
    "0dc0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af"
assert prf(b"\x0b" * 20, b"prefix", b"Hi There", 64).hex() == (
    "bcd4c650b30b9684951829e0d75f9d54b862175ed9f00606e17d8da35402ffee"
    "75df78c3d31e0f889f012120c0862beb67753e7439ae242edb8373698356cf5a")
_ptk = ptk_of(bytes.fromhex("0dc0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af"),
              mac("a0:a1:a1:a3:a4:a5"), mac("b0:b1:b2:b3:b4:b5"),
              bytes.fromhex("e0e1e2e3e4e5e6e7e8e9f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405"),
              bytes.fromhex("c0c1c2c3c4c5c6c7c8c9d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5"))
assert _ptk.hex() == ("379f9852d0199236b94e407ce4c00ec8" "47c9edc01c2c6e5b4910caddfb3e51a7"
                      "b2360c79e9710fdd58bea93deaf06599")

# IEEE 802.11i CCMP test MPDUs 1, 2, 6 and 7 (as public test suites carry them), with
# their FCS.
for _tk, _mpdu, _plain in (
        ("c97c1f67ce371185514a8a19f2bdd52f",
         "0848c32c0fd2e128a57c5030f1844408abaea5b8fcba80330ce7002076970"
         "3b5f3d0a2fe9a3dbf2342a643e43246e80c3c04d0197845ce0b16f976231d99f066",
         "f8ba1a55d02f85ae967bb62fb6cda8eb7e78a050"),
        ("8f7a053fa577a5597529272097a603d5",
         "38c06a51ea100c846850eec1762c88deaf2ee9f46a07e0ccea9700a0bacbf331814b6965d05bf2b2ed38"
         "d4beb069fe82714a610b542fbf8da06aa4ae253c4738",
         "83a0634b5ed7627eb9df225e05740342de194117"),
        ("f71eea4e1f58804b9717230ad0614641",
         "8852e11f5af28430fdabbff943b9f9a6ab1d98c7fe7350713d6a89890060a4ec816b9a709b60a39d40b1"
         "dfb612e18b5f114badb6cc86309a8d5c466bbb7186c04e97",
         "abfda22d3a0bfc9cc1fc079363c2fca143e6eb1d"),
        ("1bdb34980e038124a1db1a892bec366a",
         "187981469b50f4fd56f6efec9520169183570c4ccdee20a023e700e07340ec5e12c537ebf3ab584ef1fe"
         "f9a1f3547a8c13b3225a2d0957ecfabe95b9aafa0cc8",
         "98beca86f4b38da20cfdf24724c58eb835665339")):
    _mpdu = bytes.fromhex(_mpdu)
    assert zlib.crc32(_mpdu[:-4]) == struct.unpack("<I", _mpdu[-4:])[0]
    assert ccmp_decrypt(bytes.fromhex(_tk), _mpdu[:-4]) == bytes.fromhex(_plain)

# AES key wrap, RFC 3394 4.1 (128-bit key data, 128-bit KEK).
assert aes_key_wrap(bytes(range(16)), bytes.fromhex("00112233445566778899aabbccddeeff")).hex() \
    == "1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5"

# AES-CMAC, RFC 4493 examples 1 to 4 (messages of 0, 16, 40 and 64 octets).
_k = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
_m = bytes.fromhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
                   "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
for _n, _mac in ((0, "bb1d6929e95937287fa37d129b756746"),
                 (16, "070a16b46b4d4144f79bdd9dd04a287c"),
                 (40, "dfa66747de9ae63030ca32611497c827"),
                 (64, "51f0bebf7e3b9d92fc49741779363cfe")):
    assert aes_cmac(_k, _m[:_n]).hex() == _mac, _n

# KDF-SHA256: iwd's unit test vector (unit/test-kdf-sha256.c, 256 bits, one block).
assert kdf_sha256(b"abc", b"KDF test", b"data", 256).hex() == \
    "9efd6eb02758cb7370a86f8a305375d41f8f21c2e47447f584f7d2291143d4d4"

# SAE test vector of IEEE Std 802.11-2020 annex J.10 (group 19): the local commit
# (group, scalar, element) and rand and mask, the peer's commit; the password element
# from hunting and pecking is the one the local element implies, -(mask^-1 * element);
# the shared secret gives KCK || PMK (KDF-SHA-256-512: two blocks) and the PMKID.
_local = bytes.fromhex(
    "13002e2c0f0db52440ad146d967114ce005ce1eab0aa2c2e5c2871b774f6c2575c65d5ad9e00829707aa36"
    "ba8b859738fc961d08243505f47c035376d7ac4bc8d7b95083bf43827d0fc31ed778dd3671fd21a46d1091"
    "d64b6f9a1e1272621325dbe1")
_peer = bytes.fromhex(
    "1300591b96f3397fb945100848e7b550543b6720d88337ee93fc49fd6df7e08b5223e71b9bb048d3873f20"
    "556953a96c91536fd8ee6ca9b4a68a148b056a909be03e83ae208f60f8ef5537858074db06687032399862"
    "999b511e0a1552a5fea317c2")
_rand = int("992465fd3daa3c60aa6565b7f62a2a7f2e12dd12f198faf4fbed89d7ff1ace94", 16)
_mask = int("9507a90f777a044d6a0830b91ea3d5dd70bece44e1acffb86983b5e1bf9fb322", 16)
_pwe = sae_pwe(b"mekmitasdigoat", mac("4d:3f:2f:ff:e3:87"), mac("a5:d8:aa:95:8e:3c"))
assert on_curve(_pwe)
_scalar, _element = sae_commit(_pwe, _rand, _mask)
assert struct.pack("<H", 19) + _scalar.to_bytes(32, "big") + element_bytes(_element) == _local
_ps = int.from_bytes(_peer[2:34], "big")
_pe = (int.from_bytes(_peer[34:66], "big"), int.from_bytes(_peer[66:98], "big"))
assert on_curve(_pe)
_kck, _pmk, _pmkid = sae_keys(_pwe, _rand, _scalar, _ps, _pe)
assert _kck.hex() == "1e733f6d9bd53256287304338831b09a39406d121017073a5c30db36f36cb81a"
assert _pmk.hex() == "4e4dfab1a2dd8ac1a91790f953faaa452ae5c6873ab75b63605ba663f8a7fe59"
assert _pmkid.hex() == "8747a600eea3f9f22475df58ca1e5498"

# RC4, RFC 6229 section 2: the 40-bit key 0x0102030405, keystream octets at offsets 0,
# 16, 240 and 256 (so also the 256 octets key data encryption discards).
_ks = rc4(bytes([1, 2, 3, 4, 5]), bytes(272))
assert _ks[0:32].hex() == ("b2396305f03dc027ccc3524a0a1118a8"
                           "6982944f18fc82d589c403a47a0d0919")
assert _ks[240:272].hex() == ("28cb1132c96ce286421dcaadb8b69eae"
                              "1cfcf62b03eddb641d77dfcf7f8d8c93")
assert rc4(bytes([1, 2, 3, 4, 5]), bytes(16), 256) == _ks[256:272]

# HMAC-MD5, RFC 2202 section 2, test case 2.
assert hmac_md5(b"Jefe", b"what do ya want for nothing?").hex() == \
    "750c783e6ab0b503eaa86e310a5db738"

# Michael: IEEE 802.11i's test vectors as the Linux kernel's crypto/testmgr.h
# (michael_mic_tv_template) carries them: the messages "", "M", ..., "Michael", the first
# keyed with 8 zero octets and each further one with the previous MIC.
_key = bytes(8)
for _msg, _mic in ((b"", "82925c1ca1d130b8"), (b"M", "434721ca40639b3f"),
                   (b"Mi", "e8f9becae97e5d29"), (b"Mic", "90038fc6cf13c1db"),
                   (b"Mich", "d55e100510128986"), (b"Michael", "0a942b124ecaa546")):
    _key = michael(_key, _msg)
    assert _key.hex() == _mic, _msg

# The TKIP test MPDU of IEEE Std 802.11-2012 M.6.3, as hostapd's wlantest/test_vectors.c
# carries it: a From DS data frame (A1 = DA 02:03:04:05:06:08, A2 = BSSID = A3 = SA
# 02:03:04:05:06:07) with an ICMP echo request, TSC 1, the 32-octet key 12 34 56 78 90
# repeated; its MSDU's Michael MIC (under key[16:24], the authenticator's) is the annex's
# 68 81 a3 f3 d6 48 d0 3c, and its TKIP header 00 20 01 20 00 00 00 00; the MPDU then
# decrypts back.
_key = bytes.fromhex("1234567890" * 6 + "1234")
_h = bytes.fromhex("08422c00" "020304050608" "020304050607" "020304050607" "d002")
_msdu = bytes.fromhex("aaaa030000000800" "450000540000400040 01a555c0a80a02c0a80a01"
                      "08003ab000000000cd4c050000000000".replace(" ", "")) + bytes(range(8, 56))
assert len(_msdu) == 8 + 84        # LLC/SNAP + the IPv4 packet (total length 84)
assert michael(tkip_mic_key(_key, _h), michael_header(_h) + _msdu).hex() == \
    "6881a3f3d648d03c"
_body = tkip_encrypt(_key, 0, 1, _h, _msdu)
assert _body[:8].hex() == "0020012000000000"
assert tkip_decrypt(_key, _h[:1] + bytes([_h[1] | 0x40]) + _h[2:] + _body) == _msdu

# The TKIP key mixing function: the eight test vectors of IEEE Std 802.11i-2004 (TK, TA,
# IV32, IV16 -> phase 1 P1K, phase 2 RC4 key), as Fuchsia's iwlwifi TKIP unit test
# (tkip-test.cc, "TestVectorFromStd") carries them, phase 1 once for the vectors that
# share TK, TA and IV32 (they differ in IV16 only); and the S-box's first entries.
assert TKIP_SBOX[:4] == [0xC6A5, 0xF884, 0xEE99, 0xF68D]
for _tk, _ta, _iv32, _p1k, _phase2 in (
        ("000102030405060708090a0b0c0d0e0f", "102233445566", 0x00000000,
         (0x3DD2, 0x016E, 0x76F4, 0x8697, 0xB2E8),
         ((0x0000, "00200033ea8d2f60ca6d1374234a660b"),
          (0x0001, "00200190ffdc314389a9d9d074fd20aa"))),
        ("63893b250840b8ae0bd0fa7e61d2783e", "64f2eaeddc25", 0x20DCFD43,
         (0x7C67, 0x49D7, 0x9724, 0xB5E9, 0xB4F1),
         ((0xFFFF, "ff7fff93810fc6e58f5dd326251544ce"),)),
        ("63893b250840b8ae0bd0fa7e61d2783e", "64f2eaeddc25", 0x20DCFD44,
         (0x5A5D, 0x73A8, 0xA859, 0x2EC1, 0xDC8B),
         ((0x0000, "002000498ca471fcfbfaa16e3610f005"),)),
        ("983a16ef4facb351aa9ecc271d7309e2", "509c4b1727d9", 0xF0A410FC,
         (0xF2DF, 0xEBB1, 0x88D3, 0x5923, 0xA07C),
         ((0x058C, "05258cf4d85152f4d9af1a64f1d07021"),
          (0x058D, "05258d09f81543b76a596fc2c6738b30"))),
        ("c8adc16a8b4dda3b4dd5b65438359b05", "945e244e4d6e", 0x8B1573B7,
         (0xEFF1, 0x3F38, 0xA364, 0x60A9, 0x76F3),
         ((0x30F8, "3030f8650da073ea614ea8f474ee0319"),
          (0x30F9, "3030f93155ce293437cc76712716ab8f")))):
    _p = tkip_phase1(bytes.fromhex(_tk), bytes.fromhex(_ta), _iv32)
    assert tuple(_p) == _p1k, _tk
    for _iv16, _seed in _phase2:
        assert tkip_phase2(bytes.fromhex(_tk), _p, _iv16).hex() == _seed, _tk

# WEP: the WEP encapsulation example of IEEE Std 802.11-2012 annex M (table M-5, "ARC4
# encryption"; the ARC4 "test 6" vector of public cipher test suites): key "01234" (WEP-40),
# IV fb 02 9e; the MSDU (LLC/SNAP, an IPv4/UDP NetBIOS name query), whose CRC-32 is the
# ICV 1b d0 b6 04; RC4 keyed by IV || key of MSDU || ICV. Then a WEP-104 round trip in a
# To DS data frame (key id 2) that the WEP-40 key does not open.
_key = b"01234"
_msdu = bytes.fromhex(
    "aaaa0300000008004500004e661a00008011be640a0001220affffff00890089003a000080a6011000"
    "01000000000000204543454a4548454346434550464545494546464343414341434143414341414100"
    "00200001")
_body = wep_encrypt(_key, 0, 0xFB029E, b"", _msdu)
assert _body[:4].hex() == "fb029e00"
assert _body[4:].hex() == (
    "f69c5806bd6ce84626bcbefb9474650aad1f7909b0f64d5f58a503a258b7ed22eb0ea64930d3a056a557"
    "42fcce141d485f8aa836dea18df42c5380805ad0c61a5d6f58f41040b24b7d1a693856ed0d4398e7aee3"
    "bf0e2a2ca8f7")
assert rc4(bytes.fromhex("fb029e") + _key, _body[4:])[-4:].hex() == "1bd0b604"
_h = bytes.fromhex("08410000" "020304050607" "020304050608" "020304050609" "1000")
_wep104 = bytes(range(1, 14))
_body = wep_encrypt(_wep104, 2, 0x000102, _h, _msdu)
assert _body[:4].hex() == "00010280" and len(_body) == 4 + len(_msdu) + 4
assert wep_decrypt(_wep104, _h + _body) == _msdu and wep_iv(_body) == 0x000102
assert not wep_decrypts(_key, _h + _body) and not wep_decrypts(_wep104[::-1], _h + _body)

# GCMP and CCMP-256: the test vectors with expected outputs that hostapd's
# wlantest/test_vectors.c carries: GCMP test MPDU #2 of IEEE Std 802.11ad-2012 M.11.1 (a
# QoS data frame, TID 3; its ciphertext and MIC), the GCMP-256 test vector of IEEE
# P802.11ac/D7.0 M.11.1 (the same frame under a 256-bit TK: the whole encrypted MPDU) and
# the CCMP-256 test vector of P802.11ac/D7.0 M.6.4 (the frame of the first 802.11i CCMP
# test MPDU under a 256-bit TK, 16-octet MIC: the whole encrypted MPDU); each decrypts
# back, and not with the key of the other length. (GCMP test MPDU #1 is left out: its
# header, a management frame, has the Protected bit clear, and its published MIC is
# over an AAD that keeps it clear, where 12.5.3.3.3 sets it.)
_h = bytes.fromhex("88480b00" "0fd2e128a57c" "5030f1844408" "5030f1844408" "8033" "0300")
_tk = bytes.fromhex("c97c1f67ce371185514a8a19f2bdd52f")
_body = gcmp_encrypt(_tk, 0, 0x00895F5F2B08, _h, bytes(range(40)))
assert _body.hex() == ("082b00205f5f8900" "60e9700cc4d40ac6d288b201c38f5bf08b807442640a1596e5db"
                       "dad41d1f3623f45d7a12db7afb23" "def619c2a374b6df66ffa53b6c69d79e")
assert gcmp_decrypt(_tk, _h + _body) == bytes(range(40))
_tk256 = _tk + bytes(range(16))
_body = gcmp_encrypt(_tk256, 0, 0x00895F5F2B08, _h, bytes(range(40)))
assert (_h + _body).hex() == (
    "88480b000fd2e128a57c5030f18444085030f184440880330300082b00205f5f8900658343c8b14447d9"
    "211defd46ad89c710c6fc33333236e3997b9176a5a8be779b21266555e70ad79114316859095473d5b1b"
    "d596b3dea3bf")
assert gcmp_decrypt(_tk256, _h + _body) == bytes(range(40))
assert not gcmp_decrypts(_tk, _h + _body)
_h = bytes.fromhex("0848c32c0fd2e128a57c5030f1844408abaea5b8fcba8033")
_plain = bytes.fromhex("f8ba1a55d02f85ae967bb62fb6cda8eb7e78a050")
_body = ccmp_encrypt(_tk256, 0, 0xB5039776E70C, _h, _plain)
assert (_h + _body).hex() == (
    "0848c32c0fd2e128a57c5030f1844408abaea5b8fcba80330ce70020769703b56d155d8832668256d6a9"
    "2b78e11d8e54495dd17480aa56c9492e882b97642f80d50fe97b")
assert ccmp_decrypt(_tk256, _h + _body) == _plain and not decrypts(_tk, _h + _body)

//! Encrypted Client Hello switched off in the DNS answers the relay passes on (as
//! mitmproxy's `strip_ech`). A client that finds an ECH config in a name's HTTPS or
//! SVCB record (RFC 9460 `ech`, RFC 9849) encrypts its real ClientHello and shows only
//! the config's public name: the proxy, which cannot open it, would mint a
//! certificate for the public name, the client would reject ECH and retry without
//! it, and the first attempt would be recorded under the wrong name. A client
//! ignores every ECHConfig whose version it does not know (RFC 9849 §4) and then
//! connects without ECH, showing the real server name at once.
//!
//! The configs are switched off in place: each ECHConfig's version field is
//! overwritten with [`DISABLED_VERSION`], and no byte moves, so the message's
//! compression pointers, lengths and every other record stay valid. The walk is
//! bounded by the message: a name, record or parameter that runs past its end stops
//! it, leaving what was not reached untouched.

use crate::net::dns::{TYPE_HTTPS, TYPE_SVCB};

/// The SvcParamKey of `ech` (RFC 9460 §14.3.2).
const KEY_ECH: u16 = 5;
/// The version written over each ECHConfig's: no draft or RFC version uses it.
pub const DISABLED_VERSION: u16 = 0xfeff;
/// Length of a DNS message header.
const HEADER: usize = 12;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Where the name at `pos` ends: after its root label, or after a compression
/// pointer (which ends a name). `None` when it runs past `msg` or uses a label type
/// that does not exist.
pub(super) fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *msg.get(pos)?;
        match len {
            0 => return Some(pos + 1),
            l if l & 0xc0 == 0xc0 => {
                msg.get(pos + 1)?;
                return Some(pos + 2);
            }
            l if l & 0xc0 != 0 => return None,
            l => pos += 1 + usize::from(l),
        }
    }
}

/// Switches off the ECH configs of every HTTPS and SVCB record of `msg` (all
/// sections); the number of configs switched off.
pub fn disable_ech(msg: &mut [u8]) -> usize {
    let mut disabled = 0;
    let _ = walk_records(msg, &mut disabled);
    disabled
}

fn walk_records(msg: &mut [u8], disabled: &mut usize) -> Option<()> {
    let questions = u16_at(msg, 4)?;
    let records: usize = (6..12)
        .step_by(2)
        .map(|at| u16_at(msg, at).map_or(0, usize::from))
        .sum();
    let mut pos = HEADER;
    for _ in 0..questions {
        // Type and class.
        pos = skip_name(msg, pos)? + 4;
    }
    for _ in 0..records {
        pos = skip_name(msg, pos)?;
        let kind = u16_at(msg, pos)?;
        let len = usize::from(u16_at(msg, pos + 8)?);
        let start = pos + 10;
        let rdata = msg.get_mut(start..start + len)?;
        if kind == TYPE_HTTPS || kind == TYPE_SVCB {
            *disabled += disable_in_rdata(rdata);
        }
        pos = start + len;
    }
    Some(())
}

/// The `ech` parameter of one SVCB/HTTPS record's data: priority, target name
/// (never compressed, RFC 9460 §2.2), then key, length, value triples.
fn disable_in_rdata(rdata: &mut [u8]) -> usize {
    let Some(mut pos) = skip_name(rdata, 2) else {
        return 0;
    };
    let mut disabled = 0;
    while let (Some(key), Some(len)) = (u16_at(rdata, pos), u16_at(rdata, pos + 2)) {
        let start = pos + 4;
        let Some(value) = rdata.get_mut(start..start + usize::from(len)) else {
            break;
        };
        if key == KEY_ECH {
            disabled += disable_config_list(value);
        }
        pos = start + usize::from(len);
    }
    disabled
}

/// An ECHConfigList: its length, then ECHConfigs of version, length and contents.
fn disable_config_list(list: &mut [u8]) -> usize {
    let Some(total) = u16_at(list, 0) else {
        return 0;
    };
    let end = list.len().min(2 + usize::from(total));
    let mut pos = 2;
    let mut disabled = 0;
    while pos + 4 <= end {
        let Some(len) = u16_at(list, pos + 2) else {
            break;
        };
        if let Some(version) = list.get_mut(pos..pos + 2) {
            version.copy_from_slice(&DISABLED_VERSION.to_be_bytes());
            disabled += 1;
        }
        pos += 4 + usize::from(len);
    }
    disabled
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::net::dns;

    /// An ECHConfig (version 0xfe0d) with config id `id` and public name `public`.
    pub(in crate::proxy) fn ech_config(id: u8, public: &str) -> Vec<u8> {
        // HpkeKeyConfig: id, KEM, public key (2 bytes), one cipher suite; then
        // maximum name length, public name, no extensions.
        let mut contents = vec![id, 0x00, 0x20, 0, 2, 0xaa, 0xbb, 0, 4, 0, 1, 0, 1, 0];
        contents.push(public.len() as u8);
        contents.extend_from_slice(public.as_bytes());
        contents.extend_from_slice(&[0, 0]);
        let mut c = vec![0xfe, 0x0d];
        c.extend_from_slice(&(contents.len() as u16).to_be_bytes());
        c.extend(contents);
        c
    }

    /// An answer to an HTTPS query for `name`: one HTTPS record (priority 1, target
    /// ".", alpn h2, the `ech` configs given, ipv6hint), owned by a pointer to the
    /// question, and an A record after it owned by a pointer too.
    pub(in crate::proxy) fn https_answer(name: &str, configs: &[Vec<u8>]) -> Vec<u8> {
        let mut m = dns::test_query(7, &[name]);
        m[2] |= 0x80;
        m[7] = 2;
        // The question's type: HTTPS.
        let qtype = m.len() - 4;
        m[qtype..qtype + 2].copy_from_slice(&TYPE_HTTPS.to_be_bytes());
        let list: Vec<u8> = configs.concat();
        let mut rdata = vec![0, 1, 0];
        rdata.extend_from_slice(&[0, 1, 0, 3, 2, b'h', b'2']);
        let mut ech = (list.len() as u16).to_be_bytes().to_vec();
        ech.extend(list);
        rdata.extend_from_slice(&KEY_ECH.to_be_bytes());
        rdata.extend_from_slice(&(ech.len() as u16).to_be_bytes());
        rdata.extend(ech);
        rdata.extend_from_slice(&[0, 6, 0, 16]);
        rdata.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        m.extend_from_slice(&[0xc0, 12]);
        m.extend_from_slice(&TYPE_HTTPS.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 1, 0x2c]);
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend(rdata);
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4, 192, 0, 2, 1]);
        m
    }

    #[test]
    fn every_config_is_switched_off_and_nothing_moves() {
        let configs = [
            ech_config(1, "cover.example"),
            ech_config(2, "other.example"),
        ];
        let original = https_answer("shop.example", &configs);
        let parsed = dns::parse(&original).unwrap();
        let dns::RecordData::Svcb(svcb) = &parsed.answers[0].data else {
            panic!("{parsed:?}");
        };
        assert_eq!(svcb.ech.len(), 2, "the parser reads both configs");
        let mut m = original.clone();
        assert_eq!(disable_ech(&mut m), 2);
        assert_eq!(m.len(), original.len());
        let changed: Vec<usize> = (0..m.len()).filter(|&i| m[i] != original[i]).collect();
        // 0xfe0d becomes 0xfeff: the low byte of each version field.
        assert_eq!(changed.len(), 2, "{changed:?}");
        // Still a well-formed answer: the address, the other parameters; no config a
        // client (or our parser) would use.
        let after = dns::parse(&m).unwrap();
        assert_eq!(after.answers.len(), 2);
        let dns::RecordData::Svcb(svcb) = &after.answers[0].data else {
            panic!("{after:?}");
        };
        assert!(svcb.ech.is_empty(), "{svcb:?}");
        assert_eq!(
            svcb.hints,
            ["2001:db8::1".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(
            after.answers[1].data,
            dns::RecordData::A([192, 0, 2, 1].into())
        );
        // Done twice: nothing more to do, the same bytes.
        let again = m.clone();
        assert_eq!(disable_ech(&mut m), 2);
        assert_eq!(m, again);
    }

    #[test]
    fn answers_without_ech_and_cut_messages_are_left_alone() {
        let plain = dns::test_query(7, &["shop.example"]);
        let mut m = plain.clone();
        assert_eq!((disable_ech(&mut m), m == plain), (0, true));
        let whole = https_answer("shop.example", &[ech_config(1, "cover.example")]);
        // Cut inside the HTTPS record: its data is not reached.
        for cut in [12, 20, whole.len() - 30, whole.len() - 17] {
            let mut m = whole[..cut].to_vec();
            let before = m.clone();
            assert_eq!(disable_ech(&mut m), 0, "cut at {cut}");
            assert_eq!(m, before);
        }
        // Cut after it: its config is switched off.
        let mut m = whole[..whole.len() - 16].to_vec();
        assert_eq!(disable_ech(&mut m), 1);
    }

    proptest::proptest! {
        /// Any bytes: no panic, and only version fields' bytes change (the length
        /// never does).
        #[test]
        fn any_message_is_walked_safely(
            flips in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()), 0..8),
        ) {
            let mut m = https_answer("shop.example", &[ech_config(1, "cover.example"), ech_config(2, "b.example")]);
            for (i, b) in flips {
                let at = i.index(m.len());
                m[at] = b;
            }
            let before = m.clone();
            let disabled = disable_ech(&mut m);
            proptest::prop_assert_eq!(m.len(), before.len());
            let changed = (0..m.len()).filter(|&i| m[i] != before[i]).count();
            proptest::prop_assert!(changed <= 2 * disabled);
        }
    }
}

#!/usr/bin/env python3
"""Writes captures/tls/early.pcap and early.keylog: a real TLS 1.3 connection that
resumes a session and sends its first request as 0-RTT (early) data, as a phone's
SDK would on its second connection to a tracker.

The `openssl` command plays both ends on 127.0.0.1: `s_server -early_data` and
`s_client`, first once to get a session ticket (not recorded), then with
`-sess_in` and `-early_data` through a relay in this script that records every
chunk it reads from each side. The recorded connection is written as the device of
tls/consentry.toml (192.168.50.23) talking to api.mixpanel.com (203.0.113.77:443),
from 2026-11-28T10:03:50Z, one chunk per 20 ms:

  - the ClientHello (PSK, early_data offered) and, in the 0-RTT record after it,
    `GET /early?imei=<IMEI>` (the early data file);
  - the server's flight (ServerHello, EncryptedExtensions accepting early data,
    Finished), then the client's EndOfEarlyData and Finished;
  - under the 1-RTT keys, `GET /later?android_id=<Android id>` (s_client's input).

Both requests come after the refusal in tls/consentry.toml. What a correct
analyser finds: both identifiers, the IMEI dated and located where its 0-RTT record
was captured, with the ClientHello, not at the server's flight that told the
decryptor how to read it. tshark 4.0 with the key log
(`-o tls.keylog_file:early.keylog -Y http`) shows both requests, the early one in
the ClientHello's frame.

Not deterministic (fresh randoms, keys, ticket and certificate each run): tests read
the committed output. Needs python3 (stdlib only) and the openssl command (1.1.1 or
later). Run: python3 captures/tls/make_early_data.py
"""
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_openssl_tls as tls  # noqa: E402

START = (tls.BASE_SECS + 130) * 1_000_000  # 2026-11-28T10:03:50Z
SERVER = (bytes([203, 0, 113, 77]), 443)
CLIENT = (tls.DEVICE_IP, 51830)
HOST = "api.mixpanel.com"
STEP_US = 20_000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def relay(listener, server_port, chunks):
    """Accepts one client, connects it to the server and records what is read from
    each side, in order, as (from_client, bytes)."""
    client, _ = listener.accept()
    server = socket.create_connection(("127.0.0.1", server_port))
    lock = threading.Lock()

    def pump(src, dst, from_client):
        while True:
            data = src.recv(65536)
            if not data:
                break
            with lock:
                chunks.append((from_client, data))
            dst.sendall(data)
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    up = threading.Thread(target=pump, args=(client, server, True))
    down = threading.Thread(target=pump, args=(server, client, False))
    up.start()
    down.start()
    up.join()
    down.join()
    client.close()
    server.close()


def s_client(port, *args, stdin_data=b"", hold=1.0):
    """Runs s_client against `port`, its input written after `hold` seconds (so the
    session ticket, or the handshake, comes first) and closed `hold` seconds later."""
    proc = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", HOST,
         "-tls1_3", *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(hold)
    proc.stdin.write(stdin_data)
    proc.stdin.flush()
    time.sleep(hold)
    proc.stdin.close()  # s_client closes the connection at the end of its input
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
    return proc.stdout.read().decode(errors="replace")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
        tls.run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                "-days", "30", "-subj", f"/CN={HOST}")
        port = free_port()
        server = subprocess.Popen(
            ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", cert,
             "-key", key, "-tls1_3", "-early_data", "-max_early_data", "16384",
             "-naccept", "2", "-quiet"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(0.5)
        session = os.path.join(tmp, "session.pem")
        s_client(port, "-sess_out", session)
        assert os.path.exists(session), "no session ticket"

        early = os.path.join(tmp, "early.txt")
        with open(early, "wb") as f:
            f.write(f"GET /early?imei={tls.IMEI} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        later = f"GET /later?android_id={tls.ANDROID_ID} HTTP/1.1\r\nHost: {HOST}\r\n\r\n"
        keylog = os.path.join(HERE, "early.keylog")
        if os.path.exists(keylog):
            os.remove(keylog)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        chunks = []
        recorder = threading.Thread(target=relay, args=(listener, port, chunks))
        recorder.start()
        said = s_client(listener.getsockname()[1], "-sess_in", session, "-early_data", early,
                        "-keylogfile", keylog, stdin_data=later.encode())
        recorder.join(timeout=10)
        listener.close()
        server.stdin.close()
        server.wait(timeout=5)
        assert "Early data was accepted" in said, said
        assert "Reused, TLSv1.3" in said, said

    packets = []
    conv = tls.Tcp(CLIENT, SERVER, packets)
    ts = START
    conv.open(ts)
    ts += 1_000
    for from_client, data in chunks:
        conv.data(from_client, data, ts)
        ts += STEP_US
    conv.close(ts)
    tls.write_pcap(os.path.join(HERE, "early.pcap"), packets)
    print(f"early.pcap: {len(chunks)} chunks, {len(packets)} frames")


if __name__ == "__main__":
    main()

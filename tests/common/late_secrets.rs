//! `captures/tls/tls-dsb.pcapng` with its secrets block moved later, for the tests of
//! keys that come after the handshakes they are for.

use std::path::{Path, PathBuf};

/// `tls-dsb.pcapng` with its Decryption Secrets Block moved before the packet whose
/// 0-based index `before` gives from the number of packets (after the last when it
/// gives that number): secrets written late, as PCAPdroid may write them.
pub fn with_late_secrets(before: fn(usize) -> usize) -> (tempfile::TempDir, PathBuf) {
    let bytes =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/tls/tls-dsb.pcapng"))
            .unwrap();
    let mut blocks: Vec<&[u8]> = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        blocks.push(&bytes[at..at + len]);
        at += len;
    }
    let is = |b: &[u8], kind: u32| b[..4] == kind.to_le_bytes();
    let dsb = blocks.iter().position(|b| is(b, 10)).unwrap();
    let secrets = blocks.remove(dsb);
    let packets: Vec<usize> = (0..blocks.len()).filter(|&i| is(blocks[i], 6)).collect();
    let at = packets
        .get(before(packets.len()))
        .copied()
        .unwrap_or(blocks.len());
    blocks.insert(at, secrets);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("late.pcapng");
    std::fs::write(&path, blocks.concat()).unwrap();
    (tmp, path)
}

//! Starting `consentry tap` on the loopback interface for the live tests, with one
//! policy: capturing needs CAP_NET_RAW (root in CI); without it a test fails and says
//! so, unless `CONSENTRY_SKIP_LIVE=1` asks to skip it.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Starts `consentry tap` on `lo` for TCP `port` with `extra` arguments; `None` when
/// live capture is unavailable and `CONSENTRY_SKIP_LIVE` says to skip.
pub fn start_tap(port: u16, case: &Path, extra: &[&std::ffi::OsStr]) -> Option<Child> {
    start_tap_filtered(&format!("tcp port {port}"), case, extra)
}

/// [`start_tap`] with the capture filter `bpf`.
pub fn start_tap_filtered(bpf: &str, case: &Path, extra: &[&std::ffi::OsStr]) -> Option<Child> {
    start_tap_reading_stderr(bpf, case, extra).map(|(child, _)| child)
}

/// What a tap wrote on standard error (its summary, libpcap's drop counters), whole
/// once it has exited.
pub struct TapStderr(mpsc::Receiver<Result<(), String>>);

impl TapStderr {
    /// Everything the tap wrote on standard error; call it after the tap exited.
    pub fn all(self) -> String {
        match self.0.recv_timeout(Duration::from_secs(20)) {
            Ok(Err(lines)) => lines,
            other => panic!("the tap's standard error did not end: {other:?}"),
        }
    }
}

/// [`start_tap_filtered`], keeping what the tap writes on standard error.
pub fn start_tap_reading_stderr(
    bpf: &str,
    case: &Path,
    extra: &[&std::ffi::OsStr],
) -> Option<(Child, TapStderr)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(["tap", "--interface", "lo", "--bpf", bpf])
        .arg("--case")
        .arg(case)
        .args(["--format", "jsonl", "--duration", "30"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start consentry tap");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("capturing on") {
                let _ = tx.send(Ok(()));
            }
            lines.push(line);
        }
        let _ = tx.send(Err(lines.join("\n")));
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(())) => Some((child, TapStderr(rx))),
        Ok(Err(stderr)) => {
            let _ = child.kill();
            let _ = child.wait();
            if std::env::var_os("CONSENTRY_SKIP_LIVE").is_some() {
                eprintln!("skipped: live capture unavailable: {stderr}");
                return None;
            }
            panic!("consentry tap did not start (capturing needs CAP_NET_RAW / root; set CONSENTRY_SKIP_LIVE=1 to skip): {stderr}");
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("consentry tap did not report that it is capturing within 20 s");
        }
    }
}

/// Stops a tap as a user would (SIGINT), checks that it exited cleanly and returns
/// what it printed on standard output.
pub fn interrupt_and_read(child: &mut Child) -> String {
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut stdout)
            .expect("reading the tap's output");
    }
    let status = child.wait().expect("waiting for the tap");
    assert!(
        status.success(),
        "tap exited with {status}; stdout: {stdout}"
    );
    stdout
}

//! The `consentry` binary as a user runs it: exit codes, messages, formats.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "common/piped.rs"]
mod piped;
use piped::run_with_stdin;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_consentry"))
}

fn demo(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures/demo")
        .join(file)
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("running consentry")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn analyze_demo(extra: &[&str]) -> Output {
    let mut cmd = bin();
    cmd.arg("analyze")
        .arg(demo("demo.har"))
        .arg("--case")
        .arg(demo("consentry.toml"));
    cmd.args(extra);
    run(&mut cmd)
}

#[test]
fn demo_table_fits_80_columns() {
    let o = analyze_demo(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("share-before-consent"), "{out}");
    for line in out.lines() {
        assert!(line.chars().count() <= 80, "too wide: {line:?}");
    }
}

/// The table names a receiver whose name carries the data (DNS queries for
/// `<MD5 of the IMEI>.b.metrics-sdk.example` and `<SHA-1 of the advertising
/// id>.t.metrics-sdk.example`) without the labels that carry it, unless `--reveal`.
#[test]
fn the_table_masks_the_labels_of_a_name_that_carry_data() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/rawtcp");
    let table = |extra: &[&str]| {
        let o = run(bin()
            .arg("analyze")
            .arg(root.join("rawtcp.pcap"))
            .arg("--case")
            .arg(root.join("consentry.toml"))
            .args(extra));
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let md5 = "0eaed834a1e6f4b2bf0c024e0013dea1";
    let out = table(&[]);
    let heads: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("metrics-sdk.example · "))
        .collect();
    assert_eq!(heads.len(), 2, "{out}");
    assert!(heads[0].starts_with("•••.b.metrics-sdk.example · unknown third party "));
    assert!(heads[1].starts_with("•••.t.metrics-sdk.example · unknown third party "));
    assert!(!out.contains(md5), "{out}");
    assert!(table(&["--reveal"]).contains(&format!("\n{md5}.b.metrics-sdk.example · ")));
}

#[test]
fn jsonl_is_deterministic_and_per_design() {
    let a = analyze_demo(&["--format", "jsonl"]);
    let b = analyze_demo(&["--format", "jsonl"]);
    assert!(a.status.success(), "{}", stderr(&a));
    assert_eq!(a.stdout, b.stdout);
    let first: serde_json::Value =
        serde_json::from_str(stdout(&a).lines().next().unwrap()).unwrap();
    for key in [
        "id",
        "rule",
        "severity",
        "borderline",
        "at",
        "device",
        "exchange",
        "destination",
        "data",
        "consent",
        "citations",
        "summary",
    ] {
        assert!(first.get(key).is_some(), "missing {key} in {first}");
    }
    for key in ["host", "site", "party", "categories"] {
        assert!(
            first["destination"].get(key).is_some(),
            "missing destination.{key}"
        );
    }
    for key in ["type", "encoding", "where", "confidence", "sensitive"] {
        assert!(first["data"][0].get(key).is_some(), "missing data[].{key}");
    }
    assert!(
        first["data"][0].get("value").is_none(),
        "values only with --reveal"
    );
}

#[test]
fn json_has_summary_and_reveal_shows_values() {
    let o = analyze_demo(&["--format", "json", "--reveal"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(doc["summary"]["exchanges"].as_u64().unwrap() > 0);
    let findings = doc["findings"].as_array().unwrap();
    assert!(findings.iter().any(|f| f["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["value"].is_string())));
}

#[test]
fn fail_on_sets_exit_code_1() {
    let o = analyze_demo(&["--fail-on", "high", "--format", "jsonl"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

#[test]
fn bad_case_file_is_exit_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("consentry.toml");
    std::fs::write(
        &case,
        "[[device]]\nid = \"p\"\n[device.identifiers]\nimei = \"490154203237517\"\n",
    )
    .unwrap();
    let o = run(bin()
        .arg("analyze")
        .arg(demo("demo.har"))
        .arg("--case")
        .arg(&case));
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("consentry.toml:4:") && err.contains("imei"),
        "{err}"
    );
    let o = run(bin().args(["case", "check"]).arg(&case));
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_case_file_or_key_log_over_its_limit_is_refused() {
    // A pipe or a device has no size to check first: the read itself stops.
    let o = run(bin().args(["case", "check", "/dev/zero"]));
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).trim_end(),
        "consentry: error: /dev/zero: case file larger than 16777216 bytes, the limit for this kind of file"
    );
    // A key log's limit (1 GiB) is too much to read in a test; its size on disk is
    // checked before reading.
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("keys.log");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(consentry::cli::keylog::MAX_KEYLOG_BYTES + 1)
        .unwrap();
    let o = analyze_demo(&["--keylog", huge.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("keys.log: larger than 1073741824 bytes"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unreadable_or_unknown_input_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.har");
    std::fs::write(&junk, b"\x00\x01 definitely not a capture").unwrap();
    let o = run(bin()
        .arg("analyze")
        .arg(&junk)
        .arg("--case")
        .arg(demo("consentry.toml")));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("junk.har"), "{}", stderr(&o));
    let o = run(bin()
        .arg("analyze")
        .arg(dir.path().join("missing.har"))
        .arg("--case")
        .arg(demo("consentry.toml")));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing.har"), "{}", stderr(&o));
    // One bad input among good ones: the good one is still analysed, exit 2.
    let o = run(bin()
        .arg("analyze")
        .arg(&junk)
        .arg(demo("demo.har"))
        .arg("--case")
        .arg(demo("consentry.toml")));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stdout(&o).contains("share-before-consent"),
        "{}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("junk.har"), "{}", stderr(&o));
}

#[test]
fn truncated_har_reports_position() {
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.har");
    let full = std::fs::read(demo("demo.har")).unwrap();
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let o = run(bin()
        .arg("analyze")
        .arg(&cut)
        .arg("--case")
        .arg(demo("consentry.toml")));
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("cut.har:") && err.contains("syntax"), "{err}");
    // The findings of the complete entries before the cut are still printed.
    assert!(
        stdout(&o).contains("share-before-consent"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn several_devices_need_device_flag() {
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("c.toml");
    std::fs::write(&case, "[[device]]\nid = \"a\"\n[[device]]\nid = \"b\"\n").unwrap();
    let o = run(bin()
        .arg("analyze")
        .arg(demo("demo.har"))
        .arg("--case")
        .arg(&case));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--device"), "{}", stderr(&o));
    let o = run(bin()
        .arg("analyze")
        .arg(demo("demo.har"))
        .arg("--case")
        .arg(&case)
        .args(["--device", "b"]));
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn case_check_and_signatures_check() {
    let o = run(bin().args(["case", "check"]).arg(demo("consentry.toml")));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("pixel7") && out.contains("OK"), "{out}");
    assert!(
        !out.contains("490154203237518"),
        "values are masked without --reveal"
    );
    let o = run(bin().args(["signatures", "check"]));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("OK"));
}

fn gateway(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures/gateway")
        .join(file)
}

/// A case directory `case` in `dir` made from the gateway capture's case file.
fn gateway_case_in(dir: &Path) -> PathBuf {
    let case = dir.join("case");
    let o = run(bin()
        .arg("init")
        .arg(&case)
        .arg("--from-case")
        .arg(gateway("consentry.toml")));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    case
}

#[test]
fn exchanges_lists_what_a_capture_holds() {
    let o = run(bin()
        .arg("exchanges")
        .arg(gateway("gateway.pcapng"))
        .arg("--case")
        .arg(gateway("consentry.toml")));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("time (UTC)"), "{out}");
    assert!(out.trim_end().ends_with("30 exchanges"), "{out}");
    assert!(out.contains("pixel7     sdk.e.qq.com"), "{out}");
    assert!(out.contains("api16-access-sg.pangle.io      TLS"), "{out}");
    // JSON lines: one exchange each, metadata-only connections flagged.
    let o = run(bin()
        .arg("exchanges")
        .arg(gateway("gateway.pcap"))
        .args(["--format", "jsonl"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 30);
    let metadata = lines.iter().filter(|x| x["metadata_only"] == true).count();
    assert_eq!(metadata, 8);
    // Without a case no device is named.
    assert!(lines.iter().all(|x| x.get("device").is_none()));
    assert!(lines.iter().all(|x| x["evidence"]["locator"]
        .as_str()
        .unwrap()
        .starts_with("frame")));
}

/// `exchanges FILE --since/--until/--host` keeps the exchanges the same filters keep
/// on a case store that ingested the file (its SQL, SQLite's GLOB): the same ids.
#[test]
fn exchange_filters_on_a_file_mean_what_they_mean_on_a_case() {
    let dir = tempfile::tempdir().unwrap();
    let case = gateway_case_in(dir.path());
    let o = run(bin()
        .arg("-C")
        .arg(&case)
        .arg("ingest")
        .arg(gateway("gateway.pcap")));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let ids = |o: &Output| -> Vec<String> {
        assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
        stdout(o)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
            .collect()
    };
    for filter in [
        &["--host", "*.example-shop.com"][..],
        &["--host", "[a-m]*"],
        &["--host", "api?.*"],
        &["--since", "2026-11-28T09:30:03.468200Z"],
        &["--until", "2026-11-28T09:30:03.468200Z"],
        &[
            "--since",
            "2026-11-28T09:30:30Z",
            "--until",
            "2026-11-28T09:31:00Z",
            "--host",
            "*a*",
        ],
    ] {
        let on_file = ids(&run(bin()
            .arg("exchanges")
            .arg(gateway("gateway.pcap"))
            .args(["--format", "jsonl"])
            .args(filter)));
        let on_case = ids(&run(bin()
            .arg("-C")
            .arg(&case)
            .args(["exchanges", "--format", "jsonl"])
            .args(filter)));
        assert!(
            !on_file.is_empty() && on_file.len() < 30,
            "{filter:?}: {on_file:?}"
        );
        let (mut a, mut b) = (on_file.clone(), on_case);
        a.sort();
        b.sort();
        assert_eq!(a, b, "{filter:?}");
    }
}

#[test]
fn a_capture_or_har_on_standard_input_gives_what_the_file_gives() {
    for (file, case) in [
        (gateway("gateway.pcapng"), gateway("consentry.toml")),
        (demo("demo.har"), demo("consentry.toml")),
    ] {
        let analyze = |input: &str| {
            let mut cmd = bin();
            cmd.arg("analyze")
                .arg(input)
                .arg("--case")
                .arg(&case)
                .args(["--format", "jsonl"]);
            cmd
        };
        let from_file = run(&mut analyze(file.to_str().unwrap()));
        assert_eq!(from_file.status.code(), Some(0), "{}", stderr(&from_file));
        let bytes = std::fs::read(&file).unwrap();
        // A capture is read as it comes; a HAR is hashed first, through a temporary copy.
        let from_stdin = run_with_stdin(&mut analyze("-"), bytes.clone());
        assert_eq!(from_stdin.status.code(), Some(0), "{}", stderr(&from_stdin));
        assert!(!stdout(&from_stdin).is_empty());
        assert_eq!(
            stdout(&from_stdin),
            stdout(&from_file),
            "{}",
            file.display()
        );
        let listed = run(bin()
            .arg("exchanges")
            .arg(&file)
            .args(["--format", "jsonl"]));
        let listed_piped =
            run_with_stdin(bin().args(["exchanges", "-", "--format", "jsonl"]), bytes);
        assert_eq!(
            listed_piped.status.code(),
            Some(0),
            "{}",
            stderr(&listed_piped)
        );
        // The same exchanges and ids; only the evidence's file name differs.
        let file_name = format!("\"{}\"", file.display());
        assert_eq!(
            stdout(&listed_piped),
            stdout(&listed).replace(&file_name, "\"/dev/stdin\""),
            "{}",
            file.display()
        );
    }
    // Standard input can be read once.
    let o = run(bin()
        .args(["analyze", "-", "-", "--case"])
        .arg(demo("consentry.toml")));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("`-` (standard input) is given more than once"));
}

#[test]
fn a_stream_cut_short_is_analysed_up_to_the_cut_and_ingested_whole() {
    let full = std::fs::read(gateway("gateway.pcap")).unwrap();
    let o = run_with_stdin(
        bin()
            .args(["analyze", "-", "--case"])
            .arg(gateway("consentry.toml")),
        full[..full.len() * 3 / 4 + 7].to_vec(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/dev/stdin: the capture is cut short at byte"),
        "{}",
        stderr(&o)
    );
    assert!(
        stdout(&o).contains("share-before-consent"),
        "{}",
        stdout(&o)
    );

    let dir = tempfile::tempdir().unwrap();
    let case = gateway_case_in(dir.path());
    // ingest keeps the stream as evidence, as it would the file.
    let ingest =
        |input: Vec<u8>| run_with_stdin(bin().arg("-C").arg(&case).args(["ingest", "-"]), input);
    let o = ingest(full.clone());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let sha = {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(&full);
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let copy = format!("evidence/{}-stdin.pcap", &sha[..16]);
    assert!(
        stdout(&o).contains(&format!("/dev/stdin: ingested as {copy} (SHA-256 {sha})")),
        "{}",
        stdout(&o)
    );
    assert_eq!(std::fs::read(case.join(&copy)).unwrap(), full);
    // Nothing else left in the evidence directory (the case file's copy aside).
    let names: Vec<String> = std::fs::read_dir(case.join("evidence"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with("-consentry.toml"))
        .collect();
    assert_eq!(names, [copy.trim_start_matches("evidence/")]);
    let findings = run(bin()
        .arg("-C")
        .arg(&case)
        .args(["findings", "--format", "jsonl"]));
    assert!(stdout(&findings).contains("share-before-consent"));
    let o = run(bin().arg("verify").arg(&case));
    assert!(o.status.success(), "{}", stdout(&o));
    // The same stream again: already ingested, and its spooled copy removed.
    let o = ingest(full);
    assert!(stdout(&o).contains("already ingested"), "{}", stdout(&o));
    assert_eq!(std::fs::read_dir(case.join("evidence")).unwrap().count(), 2);
}

#[test]
fn capture_cut_short_is_analysed_up_to_the_cut_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.pcap");
    let full = std::fs::read(gateway("gateway.pcap")).unwrap();
    std::fs::write(&cut, &full[..full.len() * 3 / 4 + 7]).unwrap();
    let o = run(bin()
        .arg("analyze")
        .arg(&cut)
        .arg("--case")
        .arg(gateway("consentry.toml")));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("cut.pcap") && err.contains("cut short at byte"),
        "{err}"
    );
    assert!(
        stdout(&o).contains("share-before-consent"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn damaged_capture_block_is_exit_2_with_its_offset_after_the_findings_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("damaged.pcapng");
    let mut data = std::fs::read(gateway("gateway.pcapng")).unwrap();
    // Walk the blocks (little-endian file) to the one that starts past 70 % of the
    // file, and give it an impossible length.
    let mut offset = 0usize;
    while offset < data.len() * 7 / 10 {
        let len = u32::from_le_bytes(data[offset + 4..offset + 8].try_into().unwrap());
        offset += len as usize;
    }
    data[offset + 4..offset + 8].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    std::fs::write(&bad, &data).unwrap();
    let o = run(bin()
        .arg("analyze")
        .arg(&bad)
        .arg("--case")
        .arg(gateway("consentry.toml")));
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("damaged.pcapng"), "{err}");
    assert!(
        err.contains(&offset.to_string()),
        "offset {offset} not named: {err}"
    );
    assert!(
        stdout(&o).contains("share-before-consent"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn gzip_compressed_capture_is_read_like_the_plain_one() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let gz_path = dir.path().join("gateway.pcapng.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&std::fs::read(gateway("gateway.pcapng")).unwrap())
        .unwrap();
    std::fs::write(&gz_path, gz.finish().unwrap()).unwrap();
    let list = |path: &Path| {
        let o = run(bin().arg("exchanges").arg(path).args(["--format", "jsonl"]));
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        stdout(&o)
            .lines()
            .map(|l| {
                // Ids and evidence name the file, which differs.
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("id");
                v.as_object_mut().unwrap().remove("evidence");
                v.to_string()
            })
            .collect::<Vec<_>>()
    };
    let plain = list(&gateway("gateway.pcapng"));
    assert_eq!(plain.len(), 30);
    assert_eq!(list(&gz_path), plain);
}

#[test]
fn direct_io_or_the_page_cache_give_the_same_findings() {
    let analyze = |extra: &[&str]| {
        let o = run(bin()
            .arg("analyze")
            .arg(gateway("gateway.pcap"))
            .arg(gateway("gateway.pcapng"))
            .arg("--case")
            .arg(gateway("consentry.toml"))
            .args(["--format", "jsonl"])
            .args(extra));
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        stdout(&o)
    };
    let direct = analyze(&[]);
    assert!(direct.lines().count() > 10, "{direct}");
    assert_eq!(analyze(&["--no-direct-io"]), direct);
}

fn tunnels(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures/tunnels")
        .join(file)
}

#[test]
fn tunnel_port_reads_vxlan_on_linuxs_port() {
    let analyze = |extra: &[&str]| {
        run(bin()
            .arg("analyze")
            .arg(tunnels("flannel.pcap"))
            .arg("--case")
            .arg(tunnels("consentry.toml"))
            .args(["--format", "jsonl"])
            .args(extra))
    };
    let o = analyze(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    let o = analyze(&["--tunnel-port", "vxlan=4789,8472"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));
    assert!(stdout(&o).contains("\"share-before-consent\""));
    assert!(
        stderr(&o).contains(
            "UDP tunnels read on ports: vxlan 4789,8472, geneve 6081, gtp-u 2152, teredo 3544"
        ),
        "{}",
        stderr(&o)
    );

    // `exchanges` lists the request inside.
    let o = run(bin().arg("exchanges").arg(tunnels("flannel.pcap")).args([
        "--tunnel-port",
        "vxlan=8472",
        "--format",
        "jsonl",
    ]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("\"api16-access-sg.pangle.io\""),
        "{}",
        stdout(&o)
    );

    for (value, want) in [
        ("gre=4754", "gre is not carried in UDP"),
        ("vxlan=4789,x", "\"x\" is no UDP port"),
        ("wireguard=51820", "unknown tunnel"),
    ] {
        let o = analyze(&["--tunnel-port", value]);
        assert_eq!(o.status.code(), Some(2), "{value}");
        assert!(stderr(&o).contains(want), "{value}: {}", stderr(&o));
    }
    let o = analyze(&["--tunnel-port", "vxlan=8472", "--tunnel-port", "vxlan=4789"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("given twice"), "{}", stderr(&o));
}

#[test]
fn tkip_capture_with_its_passphrase_and_a_tkip_tk_from_a_hostapd_log() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/tkip");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    // The stranger's TKIP key as hostapd -d -K prints it: TK and Michael keys, 32 bytes.
    let hex = expected["stations"]["stranger"]["tk_line"]
        .as_str()
        .unwrap();
    let bytes: Vec<&str> = (0..hex.len()).step_by(2).map(|i| &hex[i..i + 2]).collect();
    let log = format!(
        "1795942800.100000: WPA: TK - hexdump(len=32): {}\n",
        bytes.join(" ")
    );
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("hostapd.log");
    std::fs::write(&path, log).unwrap();
    let analyze = |keys: &[&Path]| {
        let mut cmd = bin();
        cmd.arg("analyze")
            .arg(dir.join("tkip.pcap"))
            .arg("--case")
            .arg(dir.join("consentry.toml"))
            .args(["--format", "jsonl"]);
        for k in keys {
            cmd.arg("--wlan-keys").arg(k);
        }
        run(&mut cmd)
    };
    let o = analyze(&[&dir.join("80211_keys")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 4, "{}", stdout(&o));
    assert!(
        stderr(&o).contains("WPA: 2 handshakes with a given key, 44 frames decrypted"),
        "{}",
        stderr(&o)
    );
    let o = analyze(&[&dir.join("80211_keys"), &path]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 4, "{}", stdout(&o));
    assert!(
        stderr(&o).contains("WPA: 2 handshakes with a given key, 47 frames decrypted"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn wlan_keys_from_a_hostapd_debug_log() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/wpa3");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let dump = |title: &str, station: &str| {
        let hex = expected["stations"][station]["pmk"].as_str().unwrap();
        let bytes: Vec<&str> = (0..hex.len()).step_by(2).map(|i| &hex[i..i + 2]).collect();
        format!(
            "1795942800.200000: {title} - hexdump(len=32): {}\n",
            bytes.join(" ")
        )
    };
    // What hostapd -t -d -K writes, with a frame dump longer than any key line, bytes
    // that are not UTF-8 (an SSID as it is) and a key it did not print.
    let mut log = b"random: Trying to read entropy from /dev/random\n".to_vec();
    log.extend(format!("RX frame - hexdump(len=70000): {}\n", "00 ".repeat(70_000)).bytes());
    log.extend(b"wlan0: SSID \xff\xfe lab\n");
    log.extend(dump("SAE: PMK", "phone").bytes());
    log.extend(b"1795942800.300000: WPA: TK - hexdump(len=16): [REMOVED]\n");
    log.extend(dump("WPA: PMK", "tablet").bytes());
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("hostapd.log");
    std::fs::write(&path, log).unwrap();
    let o = run(bin()
        .arg("analyze")
        .arg(dir.join("wpa3.pcap"))
        .arg("--case")
        .arg(dir.join("consentry.toml"))
        .args(["--format", "jsonl", "--wlan-keys"])
        .arg(&path));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 3, "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("WPA: 2 handshakes with a given key, 34 frames decrypted"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "802.11 keys file {}: line 5: 1 keys printed as [REMOVED]",
            path.display()
        )),
        "{err}"
    );
}

#[test]
fn wlan_keys_decrypt_a_wpa2_capture() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/wpa2");
    let analyze = |extra: &[&std::ffi::OsStr]| {
        run(bin()
            .arg("analyze")
            .arg(dir.join("wpa2.pcap"))
            .arg("--case")
            .arg(dir.join("consentry.toml"))
            .args(["--format", "jsonl"])
            .args(extra))
    };
    let keys = dir.join("80211_keys");
    let o = analyze(&["--wlan-keys".as_ref(), keys.as_os_str()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 3, "{}", stdout(&o));
    assert!(
        stderr(&o).contains("WPA: 1 handshakes with a given key, 31 frames decrypted"),
        "{}",
        stderr(&o)
    );
    let o = analyze(&[]);
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), ""));

    // A keys file that cannot be read: exit 2 naming it and the line.
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("keys");
    std::fs::write(&bad, "\"wpa-pwd\",\"short:lab\"\n").unwrap();
    let o = analyze(&["--wlan-keys".as_ref(), bad.as_os_str()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains(&bad.display().to_string()), "{err}");
    assert!(
        err.contains("line 1: a WPA passphrase has 8 to 63 characters, this one 5"),
        "{err}"
    );

    // A Wireshark keys file with the WEP sample's key besides, with colons as
    // Wireshark writes it: both taken, nothing skipped; the WEP capture opens too.
    let wep_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/wep");
    let wep = std::fs::read_to_string(wep_dir.join("80211_keys")).unwrap();
    let wep_hex = wep.trim().rsplit(',').next().unwrap().trim_matches('"');
    let colons: Vec<&str> = (0..wep_hex.len())
        .step_by(2)
        .map(|i| &wep_hex[i..i + 2])
        .collect();
    let mixed = tmp.path().join("80211_keys");
    let wpa2 = std::fs::read_to_string(&keys).unwrap();
    std::fs::write(&mixed, format!("\"wep\",\"{}\"\n{wpa2}", colons.join(":"))).unwrap();
    let o = analyze(&["--wlan-keys".as_ref(), mixed.as_os_str()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 3, "{}", stdout(&o));
    assert!(!stderr(&o).contains("skipped"), "{}", stderr(&o));
    let o = run(bin()
        .arg("analyze")
        .arg(wep_dir.join("wep.pcap"))
        .arg("--case")
        .arg(wep_dir.join("consentry.toml"))
        .args(["--format", "jsonl", "--wlan-keys"])
        .arg(&mixed));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 3, "{}", stdout(&o));
    assert!(
        stderr(&o)
            .contains("WPA: 0 handshakes with a given key, 31 frames decrypted (31 of them WEP)"),
        "{}",
        stderr(&o)
    );
}

/// A HAR entry's body is held up to 64 MiB and the analysis examines 8 MiB of it: an
/// identifier past that is found by the search of the rest, where it is.
#[test]
fn an_identifier_deep_in_a_har_upload_past_what_the_analysis_examines_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let har = dir.path().join("upload.har");
    // 9 MiB of log lines (JSON-safe text), the advertising id at 8.5 MiB.
    let line = "level=info msg=heartbeat seq=0000000\\n";
    let mut text = line.repeat((9 << 20) / line.len());
    // At a line's start, about 8.5 MiB in.
    let at = (8 * 1024 * 1024 + 512 * 1024) / line.len() * line.len();
    let needle = "adid=38400000-8cf0-11bd-b23e-10b96e40000d";
    text.replace_range(at..at + needle.len(), needle);
    let entry = format!(
        r#"{{"log": {{"version": "1.2", "creator": {{"name": "test", "version": "1"}}, "entries": [
 {{"startedDateTime": "2026-11-28T10:15:20.000Z", "time": 5,
  "request": {{"method": "POST", "url": "https://ads.tracker.example/v1/upload", "httpVersion": "http/1.1",
   "headers": [{{"name": "Host", "value": "ads.tracker.example"}}, {{"name": "Content-Type", "value": "text/plain"}}],
   "queryString": [], "cookies": [], "headersSize": -1, "bodySize": {},
   "postData": {{"mimeType": "text/plain", "text": "{text}"}}}},
  "response": {{"status": 200, "statusText": "OK", "httpVersion": "http/1.1", "headers": [], "cookies": [],
   "content": {{"size": 0, "mimeType": "text/plain"}}, "redirectURL": "", "headersSize": -1, "bodySize": 0}},
  "cache": {{}}, "timings": {{"send": 1, "wait": 2, "receive": 2}}}}]}}}}"#,
        text.len()
    );
    std::fs::write(&har, entry).unwrap();
    let o = run(bin()
        .arg("analyze")
        .arg(&har)
        .arg("--case")
        .arg(demo("consentry.toml"))
        .args(["--device", "pixel7", "--format", "jsonl"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    // The escaped `\n` of each line is one byte of the body: the offset in the body
    // is the offset in the text counted that way.
    let offset = at - at / line.len();
    assert!(
        out.contains(&format!(
            r#""type":"advertising_id","encoding":"plain","where":"body-beyond-cap:{}""#,
            offset + "adid=".len()
        )),
        "{out}"
    );
}

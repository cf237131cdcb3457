//! `consentry consent DEVICE DECISION [--purposes a,b]`: marks a consent decision in
//! a running `consentry proxy` through its control API, at the proxy's current time
//! (the proxy stores it). When no proxy listens (connection refused) and a case
//! directory is found (`-C DIR` or upward from the current directory), the decision
//! (`ConsentEvent::manual`, time now or `--at`) is appended to its store directly.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::consent::timeline::ConsentEvent;
use crate::consent::{Decision, Purpose};
use crate::proxy::ca;
use crate::store::CaseDir;
use crate::timestamp::Timestamp;

/// Bytes of the control API's answer read, at most.
const MAX_ANSWER: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DecisionArg {
    Granted,
    Refused,
    Withdrawn,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Device id from the case file.
    pub device: String,
    /// What the user decided.
    #[arg(value_enum)]
    pub decision: DecisionArg,
    /// Purposes the decision covers, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', value_name = "PURPOSES")]
    pub purposes: Vec<String>,
    /// The proxy's control API.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8081")]
    pub control: SocketAddr,
    /// Control token (default: the `control-token` file the proxy wrote in the CA directory).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "CONSENTRY_CONTROL_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// CA directory of the proxy, where its token file is.
    #[arg(long, value_name = "DIR", env = "CONSENTRY_CA_DIR")]
    pub ca_dir: Option<PathBuf>,
    /// When the decision was made (RFC 3339; default: now). Only used when no proxy
    /// runs and the decision goes straight into the case store.
    #[arg(long, value_name = "RFC3339", value_parser = parse_at)]
    pub at: Option<Timestamp>,
}

fn parse_at(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(text).map_err(|e| format!("{e}"))
}

/// Appends the decision to the case store of `dir` (or the one found upward).
fn store_directly(args: &Args, dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let case_dir = CaseDir::locate(dir)?;
    let case = crate::case::load(&case_dir.case_file())?;
    if !case.devices.iter().any(|d| d.id == args.device) {
        anyhow::bail!(
            "device {:?} is not in the case file {}",
            args.device,
            case_dir.case_file().display()
        );
    }
    let mut purposes = Vec::new();
    for p in args
        .purposes
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty() && *p != "all")
    {
        let parsed = Purpose::parse(p).with_context(|| format!("unknown purpose {p:?}"))?;
        if !purposes.contains(&parsed) {
            purposes.push(parsed);
        }
    }
    let event = ConsentEvent::manual(&crate::case::ManualConsent {
        device: args.device.clone(),
        at: args.at.unwrap_or_else(Timestamp::now),
        decision: match args.decision {
            DecisionArg::Granted => Decision::Granted,
            DecisionArg::Refused => Decision::Refused,
            DecisionArg::Withdrawn => Decision::Withdrawn,
        },
        purposes,
        note: Some("consentry consent".to_string()),
    });
    let mut store = super::live_store::LiveStore::open(case_dir, "consent")?;
    store.consent(&event)?;
    store.commit()?;
    println!(
        "stored in the case store of {} (no proxy at the control address): {} {} at {}",
        store.dir.display(),
        event.device,
        event.decision.as_str(),
        event.at
    );
    Ok(ExitCode::SUCCESS)
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub fn run(args: Args, dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let mut s = match TcpStream::connect_timeout(&args.control, Duration::from_secs(5)) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return store_directly(&args, dir).with_context(|| {
                format!(
                    "no proxy at {}; storing the decision directly",
                    args.control
                )
            });
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!("connecting to the proxy's control API at {}", args.control)
            })
        }
    };
    let token = match args.token {
        Some(t) => t,
        None => {
            let dir = match args.ca_dir {
                Some(d) => d,
                None => ca::default_dir()?,
            };
            let path = dir.join(super::proxy::TOKEN_FILE);
            crate::whole_file::read_text(&path, super::seal::MAX_KEY_FILE_BYTES)
                .with_context(|| {
                    format!(
                        "reading the control token {} (is `consentry proxy` running? else give --token)",
                        path.display()
                    )
                })?
                .trim()
                .to_string()
        }
    };
    let decision = match args.decision {
        DecisionArg::Granted => "granted",
        DecisionArg::Refused => "refused",
        DecisionArg::Withdrawn => "withdrawn",
    };
    let target = format!(
        "/consent?device={}&decision={decision}&purposes={}",
        enc(&args.device),
        enc(&args.purposes.join(","))
    );
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .context("setting a timeout")?;
    write!(
        s,
        "POST {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        args.control
    )
    .context("sending to the control API")?;
    let mut answer = Vec::new();
    s.take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .context("reading the control API's answer")?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let ok = head.starts_with("HTTP/1.1 200");
    if ok {
        print!("{body}");
        Ok(ExitCode::SUCCESS)
    } else {
        eprint!("{}", if body.is_empty() { head } else { body });
        if !body.ends_with('\n') {
            eprintln!();
        }
        Ok(ExitCode::from(super::EXIT_USAGE))
    }
}

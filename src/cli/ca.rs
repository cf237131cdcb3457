//! `consentry ca export [--format pem|der]`: prints the proxy's CA certificate (created
//! on first use, like `consentry proxy` does), for installing on a test device or
//! passing to `curl --cacert`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::proxy::ca;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CertFormat {
    Pem,
    Der,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Directory of the CA [default: $XDG_DATA_HOME/consentry or ~/.local/share/consentry].
    #[arg(long, value_name = "DIR", env = "CONSENTRY_CA_DIR")]
    pub ca_dir: Option<PathBuf>,
    /// Encoding of the certificate printed on standard output.
    #[arg(long, value_enum, default_value_t = CertFormat::Pem)]
    pub format: CertFormat,
}

pub fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let dir = match args.ca_dir {
        Some(d) => d,
        None => ca::default_dir()?,
    };
    let ca = ca::Ca::load_or_create(&dir)?;
    if ca.created {
        eprintln!(
            "consentry: created CA in {} (SHA-256 {})",
            dir.display(),
            ca.fingerprint()
        );
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        CertFormat::Pem => out.write_all(ca.cert_pem().as_bytes()),
        CertFormat::Der => out.write_all(ca.cert_der()),
    }
    .and_then(|()| out.flush())
    .context("writing the certificate")?;
    Ok(ExitCode::SUCCESS)
}

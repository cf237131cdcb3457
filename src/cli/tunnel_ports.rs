//! `--tunnel-port KIND=PORTS`: UDP tunnels on other ports than IANA's, for the
//! commands that read captures (`analyze`, `exchanges`, `ingest`, `tap`). Like
//! Suricata's `decoder.vxlan.ports` or Zeek's `Tunnel::vxlan_ports`, a setting
//! replaces the kind's ports.

use anyhow::bail;

use crate::net::tunnel::{TunnelKind, UdpTunnelPorts};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct TunnelPortArgs {
    /// Read a UDP tunnel on these ports instead of its IANA port (vxlan 4789, geneve
    /// 6081, gtp-u 2152, teredo 3544), e.g. `vxlan=4789,8472` for Linux's and
    /// flannel's VXLAN port as well; `KIND=none` reads it nowhere. Once per kind.
    #[arg(long = "tunnel-port", value_name = "KIND=PORTS", value_parser = parse_setting)]
    pub tunnel_port: Vec<PortSetting>,
}

/// One `--tunnel-port` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSetting {
    pub kind: TunnelKind,
    pub ports: Vec<u16>,
}

impl TunnelPortArgs {
    /// The ports these settings give.
    pub fn ports(&self) -> anyhow::Result<UdpTunnelPorts> {
        let mut ports = UdpTunnelPorts::default();
        for (i, setting) in self.tunnel_port.iter().enumerate() {
            if self.tunnel_port[..i].iter().any(|s| s.kind == setting.kind) {
                bail!(
                    "--tunnel-port {} is given twice: list all its ports in one ({}=4789,8472)",
                    setting.kind.name(),
                    setting.kind.name()
                );
            }
            ports.set(setting.kind, &setting.ports)?;
        }
        Ok(ports)
    }
}

/// The ports `settings` give, as [`settings`] writes them (`vxlan=4789,8472`,
/// `teredo=none`): how a stored capture was read.
pub fn from_settings(settings: &[String]) -> anyhow::Result<UdpTunnelPorts> {
    let tunnel_port = settings
        .iter()
        .map(|s| parse_setting(s).map_err(|e| anyhow::anyhow!("tunnel port setting {s:?}: {e}")))
        .collect::<anyhow::Result<_>>()?;
    TunnelPortArgs { tunnel_port }.ports()
}

fn parse_setting(value: &str) -> Result<PortSetting, String> {
    let Some((name, list)) = value.split_once('=') else {
        return Err("expected KIND=PORTS, e.g. vxlan=4789,8472 or teredo=none".into());
    };
    let kind = TunnelKind::from_name(name.trim()).ok_or_else(|| {
        format!("unknown tunnel {name:?} (UDP tunnels: vxlan, geneve, gtp-u, teredo)")
    })?;
    let ports = match list.trim() {
        "none" => Vec::new(),
        "" => {
            return Err(format!(
                "no ports for {name} (write {name}=none to read it nowhere)"
            ))
        }
        list => list
            .split(',')
            .map(|p| {
                p.trim()
                    .parse::<u16>()
                    .map_err(|_| format!("{:?} is no UDP port (1 to 65535)", p.trim()))
            })
            .collect::<Result<_, _>>()?,
    };
    // The setting's own errors (a tunnel UDP does not carry, port 0) now, as clap's.
    UdpTunnelPorts::default()
        .set(kind, &ports)
        .map_err(|e| e.to_string())?;
    Ok(PortSetting { kind, ports })
}

/// How `ports` differ from IANA's, for a run's log; `None` when they do not.
pub fn describe(ports: &UdpTunnelPorts) -> Option<String> {
    if ports.is_default() {
        return None;
    }
    let kinds: Vec<String> = UdpTunnelPorts::kinds()
        .map(|kind| match ports.ports(kind) {
            [] => format!("{} off", kind.name()),
            list => {
                let list: Vec<String> = list.iter().map(u16::to_string).collect();
                format!("{} {}", kind.name(), list.join(","))
            }
        })
        .collect();
    Some(format!("UDP tunnels read on ports: {}", kinds.join(", ")))
}

/// The tunnels whose ports differ from IANA's, each as a `--tunnel-port` value
/// (`vxlan=4789,8472`, `teredo=none`), in a fixed order: what an ingest record keeps.
pub fn settings(ports: &UdpTunnelPorts) -> Vec<String> {
    let iana = UdpTunnelPorts::default();
    UdpTunnelPorts::kinds()
        .filter(|&kind| ports.ports(kind) != iana.ports(kind))
        .map(|kind| match ports.ports(kind) {
            [] => format!("{}=none", kind.name()),
            list => {
                let list: Vec<String> = list.iter().map(u16::to_string).collect();
                format!("{}={}", kind.name(), list.join(","))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(values: &[&str]) -> Result<TunnelPortArgs, String> {
        let tunnel_port = values
            .iter()
            .map(|v| parse_setting(v))
            .collect::<Result<_, _>>()?;
        Ok(TunnelPortArgs { tunnel_port })
    }

    #[test]
    fn settings_replace_a_kinds_ports() {
        let ports = args(&["vxlan=4789, 8472", "gtp-u=none"])
            .unwrap()
            .ports()
            .unwrap();
        assert_eq!(ports.ports(TunnelKind::Vxlan), [4789, 8472]);
        assert!(ports.ports(TunnelKind::GtpU).is_empty());
        assert_eq!(ports.ports(TunnelKind::Teredo), [3544]);
        assert_eq!(
            describe(&ports).unwrap(),
            "UDP tunnels read on ports: vxlan 4789,8472, geneve 6081, gtp-u off, teredo 3544"
        );
        assert_eq!(describe(&args(&[]).unwrap().ports().unwrap()), None);
        assert_eq!(settings(&ports), ["vxlan=4789,8472", "gtp-u=none"]);
        assert_eq!(from_settings(&settings(&ports)).unwrap(), ports);
        assert!(from_settings(&["vxlan=x".into()]).is_err());
        // IANA's port given as the only one: the default, nothing to say.
        let same = args(&["geneve=6081"]).unwrap().ports().unwrap();
        assert_eq!(describe(&same), None);
        assert!(settings(&same).is_empty());
    }

    #[test]
    fn bad_settings_say_what_is_wrong() {
        let cases = [
            ("vxlan", "expected KIND=PORTS"),
            ("wireguard=51820", "unknown tunnel \"wireguard\""),
            ("gre=4754", "gre is not carried in UDP"),
            ("vxlan=", "write vxlan=none"),
            ("vxlan=4789,x", "\"x\" is no UDP port"),
            ("vxlan=70000", "\"70000\" is no UDP port"),
            ("teredo=0", "port 0 cannot carry a tunnel"),
        ];
        for (value, want) in cases {
            let e = parse_setting(value).unwrap_err();
            assert!(e.contains(want), "{value}: {e}");
        }
        let twice = args(&["vxlan=8472", "vxlan=4789"]).unwrap().ports();
        assert!(
            twice.unwrap_err().to_string().contains("given twice"),
            "a second setting of one kind is refused"
        );
    }
}

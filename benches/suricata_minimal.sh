# Shared by benches/compare_pcap.sh and benches/live_compare.sh (sourced, not run):
# the "minimal" Suricata the issue 3 tables compare with.
#
# suricata_minimal_yaml LOGDIR  prints a configuration with alerts to LOGDIR/fast.log
#                               only (no protocol logs, no stats), HTTP, TLS and DNS
#                               parsers on and unlimited stream reassembly depth, so
#                               that a content rule sees identifiers split across
#                               segments.
# needle_rule NEEDLE            prints one content rule matching NEEDLE on the stream.

suricata_minimal_yaml() {
    cat <<EOF
%YAML 1.1
---
vars:
  address-groups:
    HOME_NET: "[10.0.0.0/8,172.16.0.0/12,192.168.0.0/16]"
    EXTERNAL_NET: "any"
  port-groups:
    HTTP_PORTS: "[80,8080]"
default-log-dir: $1
stats:
  enabled: no
outputs:
  - fast:
      enabled: yes
      filename: fast.log
      append: no
logging:
  default-log-level: warning
  outputs:
    - console:
        enabled: yes
app-layer:
  protocols:
    http:
      enabled: yes
    tls:
      enabled: yes
    dns:
      tcp:
        enabled: yes
      udp:
        enabled: yes
stream:
  memcap: 256mb
  reassembly:
    memcap: 512mb
    depth: 0
EOF
}

needle_rule() {
    printf 'alert tcp any any -> any any (msg:"device identifier"; content:"%s"; sid:1000001; rev:1;)\n' "$1"
}

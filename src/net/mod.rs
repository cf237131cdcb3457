//! Network traffic → exchanges: the pcap tap's pure, sans-I/O half.
//!
//! A capture file (or a live interface) yields frames ([`capture`]); each frame is
//! decoded down to a TCP or UDP payload ([`link`], [`ip`], [`packet`], with IPv4
//! defragmentation, and through tunnels: [`tunnel`]; 802.11 in monitor mode:
//! [`wlan`], decrypted by [`wpa`], its fragments reassembled by [`wlan_defrag`]);
//! TCP payloads are put back in
//! order per direction ([`tcp`]);
//! the flow table ([`flow`]) keeps one state per connection and hands the ordered
//! bytes to the application-layer parser picked by content ([`sniff`]): HTTP/1
//! ([`http1`]), HTTP/2 ([`http2`], with [`hpack`]), TLS handshakes ([`tls`]), DNS
//! ([`dns`]) or a SOCKS5 handshake ([`socks`], whose tunnel is read as the connection). A UDP flow's QUIC Initial packets give its server name ([`quic`]); with
//! the key log, its later packets are decrypted ([`quic_conn`]) and read as HTTP/3
//! ([`http3`], with [`qpack`]; the two joined by [`quic_flow`]); Google's older QUIC
//! ([`gquic`]) is named by its CHLO's server name. What comes out is
//! [`Exchange`](crate::exchange::Exchange)s: one per HTTP request, or one
//! metadata-only exchange per connection that could not be read.
//!
//! Nothing here does I/O; `source::pcap` reads files and `source::live` interfaces.

pub mod capture;
pub mod capture_buffer;
pub mod dhcp;
pub mod dns;
pub mod flow;
pub mod gquic;
pub mod held;
pub mod hpack;
pub mod http1;
pub mod http2;
pub mod http3;
pub mod http_dns;
pub mod ip;
pub mod keyed_hash;
pub mod keylog;
pub mod link;
pub mod mdns;
pub mod message_budget;
pub mod packet;
pub mod pcapdroid;
pub mod provisional_id;
pub mod qpack;
pub mod quic;
pub mod quic_conn;
pub mod quic_flow;
pub mod quic_trial;
pub mod sniff;
pub mod socks;
pub mod tail_search;
pub mod tap;
pub mod tap_inputs;
pub mod tcp;
pub mod text;
pub mod tls;
pub mod tls_certificate;
pub mod tls_decrypt;
pub mod tls_fingerprint;
pub mod tunnel;
pub mod unparsed;
pub mod websocket;
pub mod wlan;
pub mod wlan_defrag;
pub mod wpa;

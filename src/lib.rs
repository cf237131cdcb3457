//! consentry: finds personal data in network traffic, knows who receives it and what
//! the user decided about consent, and reports every transmission that broke it.
//!
//! The pipeline, one module per stage:
//! `source` (HAR; pcap/pcapng and live interfaces through `net`: packets, TCP
//! reassembly, HTTP/1, TLS hellos, DNS) → [`exchange::Exchange`] → `decode` (bodies, fields) → `pii`
//! (personal data) + `parties` (receiver) + `consent` (timeline) → `rules` (findings)
//! → `report` (table, JSON; the case report as HTML, Markdown or JSON). The analysis stages are pure: no I/O, no threads.

// The module docs link private items too: they are for the maintainers, who read
// them with `cargo doc --document-private-items`.
#![allow(rustdoc::private_intra_doc_links)]

pub mod allocator;
pub mod case;
pub mod checksum;
pub mod cli;
pub mod consent;
pub mod decode;
pub mod exchange;
pub mod net;
pub mod parties;
pub mod pii;
pub mod proxy;
pub mod report;
pub mod rules;
pub mod source;
pub mod store;
pub mod timestamp;
pub mod whole_file;

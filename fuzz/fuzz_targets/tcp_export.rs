//! Fuzz target `tcp_export`: see [`consentry_fuzz::tcp_export`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::tcp_export(data));

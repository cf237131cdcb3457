//! Fuzz target `quic`: see [`consentry_fuzz::quic`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::quic(data));

//! Fuzz target `tcp`: see [`consentry_fuzz::tcp`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::tcp(data));

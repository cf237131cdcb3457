//! Fuzz target `http1`: see [`consentry_fuzz::http1`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::http1(data));

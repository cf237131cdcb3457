//! Fuzz target `http2`: see [`consentry_fuzz::http2`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::http2(data));

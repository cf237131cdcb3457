//! Fuzz target `http3`: see [`consentry_fuzz::http3`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::http3(data));

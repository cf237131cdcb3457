//! Fuzz target `pii_stream`: see [`consentry_fuzz::pii_stream`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::pii_stream(data));

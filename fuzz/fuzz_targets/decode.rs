//! Fuzz target `decode`: see [`consentry_fuzz::decode`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::decode(data));

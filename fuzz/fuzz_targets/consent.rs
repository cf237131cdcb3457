//! Fuzz target `consent`: see [`consentry_fuzz::consent`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::consent(data));

//! Fuzz target `har`: see [`consentry_fuzz::har`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::har(data));

//! Fuzz target `capture`: see [`consentry_fuzz::capture`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::capture(data));

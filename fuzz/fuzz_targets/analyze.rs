//! Fuzz target `analyze`: see [`consentry_fuzz::analyze`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::analyze(data));

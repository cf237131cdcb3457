//! Fuzz target `case`: see [`consentry_fuzz::case`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::case(data));

//! Fuzz target `pii`: see [`consentry_fuzz::pii`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::pii(data));

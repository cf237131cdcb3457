//! Fuzz target `packet`: see [`consentry_fuzz::packet`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::packet(data));

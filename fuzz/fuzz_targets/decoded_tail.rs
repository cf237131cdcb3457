//! Fuzz target `decoded_tail`: see [`consentry_fuzz::decoded_tail`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::decoded_tail(data));

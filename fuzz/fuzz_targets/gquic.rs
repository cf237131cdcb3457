//! Fuzz target `gquic`: see [`consentry_fuzz::gquic`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::gquic(data));

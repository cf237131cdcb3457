//! Fuzz target `hpack`: see [`consentry_fuzz::hpack`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::hpack(data));

//! Fuzz target `dns`: see [`consentry_fuzz::dns`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::dns(data));

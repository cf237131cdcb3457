//! Fuzz target `tap`: see [`consentry_fuzz::tap`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::tap(data));

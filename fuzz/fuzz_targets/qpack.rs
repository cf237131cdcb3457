//! Fuzz target `qpack`: see [`consentry_fuzz::qpack`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::qpack(data));

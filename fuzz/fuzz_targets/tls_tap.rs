//! Fuzz target `tls_tap`: see [`consentry_fuzz::tls_tap`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::tls_tap(data));

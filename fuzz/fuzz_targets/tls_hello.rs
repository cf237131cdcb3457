//! Fuzz target `tls_hello`: see [`consentry_fuzz::tls_hello`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::tls_hello(data));

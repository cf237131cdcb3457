//! Fuzz target `tls_decrypt`: see [`consentry_fuzz::tls_decrypt`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::tls_decrypt(data));

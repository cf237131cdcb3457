//! Fuzz target `quic_conn`: see [`consentry_fuzz::quic_conn`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    consentry_fuzz::quic_conn(data);
});

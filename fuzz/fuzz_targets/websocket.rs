//! Fuzz target `websocket`: see [`consentry_fuzz::websocket`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::websocket(data));

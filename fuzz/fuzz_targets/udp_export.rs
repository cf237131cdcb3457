//! Fuzz target `udp_export`: see [`consentry_fuzz::udp_export`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| consentry_fuzz::udp_export(data));

//! Fuzz target `capture_chain`: see [`consentry_fuzz::capture_chain`] and fuzz/README.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    consentry_fuzz::capture_chain(data);
});

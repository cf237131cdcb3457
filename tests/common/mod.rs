//! Code shared by integration tests (each test crate uses a part of it). `sample.rs`,
//! the sample captures' expectations, and `counting_alloc.rs`, a counting global
//! allocator, are included by path by the tests that need them.
#![allow(dead_code)]

pub mod browser;
#[cfg(feature = "live")]
pub mod live;
pub mod proxy_harness;

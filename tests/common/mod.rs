//! Code shared by integration tests (each test crate uses a part of it). `sample.rs`,
//! the sample captures' expectations, is included by path by the tests that need it.
#![allow(dead_code)]

pub mod browser;
#[cfg(feature = "live")]
pub mod live;
pub mod proxy_harness;

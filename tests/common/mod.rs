//! Code shared by integration tests (each test crate uses a part of it).
#![allow(dead_code)]

pub mod browser;
#[cfg(feature = "live")]
pub mod live;
pub mod proxy_harness;

//! The sans-IO core: no web-sys, no I/O. Every protocol behaviour lives here and is
//! unit-tested natively with recorded frames and a fake clock.

pub mod error;
pub mod schema;

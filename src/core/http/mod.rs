//! The sans-IO HTTP half: URLs, request bodies, response parsing, auth state, retries.
//! Everything takes and returns strings, bytes and plain structs; the wasm shell does the
//! `fetch`.

pub mod auth;
pub mod driver;
pub mod envelope;
pub mod files;
pub mod retry;
pub mod sql;
pub mod url;

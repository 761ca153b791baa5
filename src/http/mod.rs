//! The HTTP API. `server.rs` is the front (the only code that touches
//! tiny_http); everything else works on our own [`request::Request`] and
//! [`reply::Reply`]: `dispatch` routes and authenticates, `api` and
//! `invoke` handle, `respond` holds the one error → status table.

pub mod api;
pub mod auth;
pub mod dispatch;
pub mod invoke;
pub mod reply;
pub mod request;
pub mod respond;
pub mod router;
pub mod server;

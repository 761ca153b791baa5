//! The HTTP API: a fixed pool of tiny_http worker threads in front of the
//! registry. Routing, authentication, invocation and the status endpoints
//! are separate files; only `server.rs` touches tiny_http.

pub mod api;
pub mod auth;
pub mod invoke;
pub mod reply;
pub mod router;
pub mod server;

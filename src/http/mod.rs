//! The HTTP API. `front/` is our bounded HTTP/1.1 server (the only code
//! that touches sockets); everything else works on our own
//! [`request::Request`] and [`reply::Reply`]: `dispatch` routes,
//! authenticates and admits, `api`, `executions` and `invoke` handle,
//! `respond` holds the one error → status table.

pub mod api;
pub mod auth;
pub mod dispatch;
pub mod events;
pub mod executions;
pub mod front;
pub mod invoke;
pub mod reply;
pub mod request;
pub mod respond;
pub mod route;
pub mod router;
pub mod schedules;
pub mod webhook;

//! Event hooks: an event (`POST /api/events`) reaches the hooks of its
//! type, source and action ([`matching`]); the sync ones run as a chain
//! before the answer ([`chain`]).

pub mod chain;
pub mod event;
pub mod matching;

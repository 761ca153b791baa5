//! Schedules: cron, interval and one-time runs of functions.

pub mod cron;
pub mod plan;
pub mod state;
pub mod when;

//! Schedules: cron, interval and one-time runs of functions.

pub mod cron;
pub mod when;

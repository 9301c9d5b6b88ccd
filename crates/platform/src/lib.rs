//! Foundation shared by every Ticket Gateway service: storage, HTTP plumbing, errors, auth context, metrics.
//!
//! Nothing in here knows about users, events or bookings; services depend on this crate, never the reverse.

pub mod auth;
pub mod bus;
pub mod clock;
pub mod db;
pub mod error_reports;
pub mod failpoint;
pub mod http;
pub mod metrics;
pub mod problem;
pub mod server;
pub mod telemetry;
pub mod testing;
pub mod tls;
pub mod traces;
pub mod validate;

pub use problem::{ApiError, ApiResult};

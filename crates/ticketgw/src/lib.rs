//! The `ticketgw` binary's library: configuration, application assembly and CLI commands.
//! Integration tests drive the same code through [`app::build`].

pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod distributed;
pub mod docs;
pub mod invariants;
pub mod remote;
pub mod targets;
pub mod topology;
pub mod wiring;

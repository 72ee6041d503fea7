//! The subcommands.

pub mod admin;
pub mod serve;
pub mod setup;

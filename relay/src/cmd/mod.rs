//! The subcommands.

pub mod admin;
pub mod banner;
pub mod serve;
pub mod setup;

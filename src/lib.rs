//! Ferrobase: a self-hosted Backend-as-a-Service in one binary, speaking
//! PocketBase's REST API over one SQLite database.
//!
//! The library holds everything; `main.rs` only parses the command line.
//! Integration tests build an [`Application`] from a [`Config`] directly.
#![forbid(unsafe_code)]
#![warn(clippy::await_holding_lock)]

pub mod accounts;
pub mod admin_ui;
pub mod api;
pub mod app;
pub mod auth;
pub mod backend;
pub mod backups;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cron;
pub mod db;
pub mod dbcopy;
pub mod files;
pub mod hooks;
pub mod html;
pub mod lifecycle;
pub mod logs;
pub mod mail;
pub mod maintenance;
pub mod nodes;
pub mod openapi;
#[cfg(test)]
mod pg_testing;
pub mod realtime;
pub mod records;
pub mod replication;
pub mod rules;
pub mod schema;
pub mod search;
pub mod settings;
pub mod sql;
pub mod tls;
pub mod typegen;
pub mod validation;

pub use app::Application;
pub use config::Config;

//! HTTP integration tests: each test starts the real actix application on a
//! random loopback port with its own temporary data dir and speaks HTTP.

mod helpers;

mod access;
mod accounts;
mod admin_ui;
mod auth;
mod auth_bodies;
mod auth_collections;
mod auth_fields;
mod auth_ids;
mod auth_options;
mod backups;
mod bad_input;
mod batch;
mod cli;
mod collections;
mod crons;
mod defaults;
mod field_gaps;
mod files;
mod filters;
mod hooks;
mod hooks_model;
mod http_edges;
mod import;
mod login_guard;
mod logs;
mod matrix;
mod metrics;
mod modifiers;
mod oauth2;
mod persistence;
mod public;
mod query_timeout;
mod ratelimit;
mod realtime;
mod records;
mod rule_paths;
mod settings;
mod settings_encryption;
mod settings_keys;
mod smtp_sink;
mod sql;
mod tls;
mod views;

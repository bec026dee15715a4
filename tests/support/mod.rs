//! Test servers and helpers for the push tests: a git smart-HTTP server, a fake GitHub API, a
//! recording token provider, leak checks. Everything listens on 127.0.0.1 only.
#![allow(dead_code)]

pub mod fake_ci;
pub mod fake_github;
pub mod git_server;
pub mod http;
pub mod leaks;
pub mod model_server;
pub mod provider;
pub mod world;

//! airlock: run coding agents on untrusted input without trusting them.
//!
//! The module layout follows the lifecycle in DESIGN.md: `spec` and `policy` admit a task,
//! `workspace` prepares and diffs the checkout, `sandbox` runs containers, `gate` and `judge`
//! decide each attempt, `artifacts` exports, `runner` ties one task's lifecycle together.

pub mod artifacts;
pub mod daemon;
pub mod egress;
pub mod gate;
pub mod hostgit;
pub mod ids;
pub mod judge;
#[cfg(test)]
mod module_graph_tests;
pub mod nofollow;
pub mod pattern;
pub mod policy;
pub mod push;
pub mod repo_url;
pub mod runner;
pub mod sandbox;
pub mod secrets;
pub mod spec;
pub mod store;
pub mod tomlpath;
pub mod trigger;
pub mod units;
pub mod unixhttp;
pub mod untrusted;
pub mod vocab;
pub mod workspace;

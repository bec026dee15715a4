//! The forge's CI after the push (L3/L4): poll the pushed commit's checks, and on the first
//! failing required job fetch its log, strip what CI adds, and parse it with the gate's parsers.
//!
//! Pure parts (config, payloads, verdict, log cleaning) are plain functions over data; the HTTP
//! half ([`fetch`]) never forwards the token to another host on a redirect.

pub mod config;
pub mod fetch;
pub mod logs;
pub mod round;
pub mod source;
pub mod status;
pub mod wait;

pub use config::{CiConfig, Required};
pub use round::{BaseCi, CiRound, JobLink};
pub use source::MintedCi;
pub use status::{verdict, CiJob, CiVerdict, JobState};
pub use wait::{wait_for_ci, CiOutcome};

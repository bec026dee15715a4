//! The contract's shared vocabulary: reason codes, final states, exit codes. A leaf module: it
//! imports nothing from the crate, so every other module may use it without making a cycle.

mod ended;
mod exit;
mod reason;
mod scope;
mod state;

pub use ended::Ended;
pub use exit::Exit;
pub use reason::Reason;
pub use scope::ScopeVerdict;
pub use state::State;

//! The contract's shared vocabulary: reason codes, final states, exit codes, permission levels. A leaf module: it
//! imports nothing from the crate, so every other module may use it without making a cycle.

mod ended;
mod exit;
mod level;
mod reason;
mod scope;
mod state;

pub use ended::Ended;
pub use exit::Exit;
pub use level::Level;
pub use reason::Reason;
pub use scope::ScopeVerdict;
pub use state::State;

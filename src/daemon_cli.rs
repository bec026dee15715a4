//! CLI commands that talk to (or are) the runner daemon: `daemon`, `submit`, `status`, `logs`,
//! `cancel`, `artifacts`. (Owned by the daemon work; see src/daemon/.)

use clap::Subcommand;

#[derive(Subcommand)]
pub enum Commands {
    /// Run the runner daemon (durable queue, local API, workers).
    Daemon {},
}

pub fn run(cmd: Commands) -> i32 {
    match cmd {
        Commands::Daemon {} => {
            eprintln!("airlock: the daemon is not built yet");
            4
        }
    }
}

//! The `airlock` CLI. Maps every outcome to the contract's exit codes:
//! 0 green · 1 finished, not green · 2 invalid input · 3 refused by policy · 4 runner/engine fault.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use airlock::policy::{self, Policies, Trigger};
use airlock::runner::{self, describe, NotRun, Progress, RunOptions};
use airlock::spec;
use airlock::vocab::Exit;

mod daemon_cli;
mod policy_cmd;

#[derive(Parser)]
#[command(
    name = "airlock",
    version,
    about = "Run coding agents on untrusted input in hardened, ephemeral containers"
)]
struct Cli {
    /// Log format for diagnostics on stderr: text or json.
    #[arg(
        long,
        global = true,
        default_value = "text",
        env = "AIRLOCK_LOG_FORMAT"
    )]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one task in the foreground.
    Run(RunArgs),
    #[command(flatten)]
    Daemon(daemon_cli::Commands),
    /// Show or check the operator's policies.
    Policy {
        #[command(subcommand)]
        command: policy_cmd::PolicyCommand,
        /// Policy directory (default: the embedded policies).
        #[arg(long, global = true, env = "AIRLOCK_POLICIES")]
        policies: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// The task spec (TOML).
    task: PathBuf,
    /// Where `<task-id>/` is written.
    #[arg(long, default_value = "artifacts", env = "AIRLOCK_ARTIFACTS")]
    artifacts: PathBuf,
    /// Print the final summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Policy directory (default: the embedded policies).
    #[arg(long, env = "AIRLOCK_POLICIES")]
    policies: Option<PathBuf>,
    /// airlock's state dir (mirrors, pristine trees, task work dirs).
    #[arg(long, default_value = "/var/lib/airlock", env = "AIRLOCK_STATE_DIR")]
    state_dir: PathBuf,
    /// Keep the task's work dir after it ends.
    #[arg(long)]
    keep: bool,
    /// Progress lines even when stderr is not a terminal.
    #[arg(short, long)]
    verbose: bool,
    /// Mint nothing and push nothing: write the draft PR request to pr.json instead.
    #[arg(long)]
    dry_run: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.log_format);
    let code = match cli.command {
        Command::Run(args) => run(args),
        Command::Daemon(cmd) => daemon_cli::run(cmd),
        Command::Policy { command, policies } => policy_cmd::run(command, policies.as_deref()),
    };
    ExitCode::from(code as u8)
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AIRLOCK_LOG")
        .unwrap_or_else(|_| "warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(airlock::secrets::RedactingStderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Load the policies from `dir` or the embedded defaults.
/// Applies the operator's sandbox uid to this process once it is known not to be a host
/// account.
pub fn load_policies(dir: Option<&std::path::Path>) -> Result<Policies, policy::PolicyError> {
    let p = match dir {
        Some(d) => policy::load_dir(d),
        None => policy::load_embedded(),
    }?;
    p.apply_sandbox_user()?;
    Ok(p)
}

fn run(args: RunArgs) -> i32 {
    let spec = match spec::load(&args.task) {
        Ok(s) => s,
        Err(e) => return fail(Exit::Invalid, &e.to_string()),
    };
    let mut policies = match load_policies(args.policies.as_deref()) {
        Ok(p) => p,
        Err(e) => return fail(Exit::Invalid, &e.to_string()),
    };
    if args.dry_run {
        policies.set_push_dry_run();
    }
    let artifacts = match absolute("--artifacts", &args.artifacts) {
        Ok(a) => a,
        Err(e) => return fail(Exit::Fault, &e),
    };
    // Mount points and container binds need absolute paths; a relative one would fail at the
    // engine and leave mounts behind.
    let state_dir = match absolute("--state-dir", &args.state_dir) {
        Ok(a) => a,
        Err(e) => return fail(Exit::Fault, &e),
    };
    // Both roots must be airlock's own before anything is written under them (#10 item 7).
    let artifacts = match airlock::artifacts::secure_root("--artifacts", &artifacts, 0o755) {
        Ok(a) => a,
        Err(e) => return fail(Exit::Invalid, &e.to_string()),
    };
    let state_dir = match airlock::artifacts::secure_root("--state-dir", &state_dir, 0o755) {
        Ok(a) => a,
        Err(e) => return fail(Exit::Invalid, &e.to_string()),
    };
    let opts = RunOptions {
        artifacts_root: artifacts,
        state_dir,
        keep: args.keep,
        trigger: Trigger::cli(),
        policies,
        session: format!("run-{}", runner::random_hex(6)),
        task_id: None,
        push_gate: None,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(Exit::Fault, &format!("cannot start the async runtime: {e}")),
    };
    rt.block_on(run_async(spec, opts, args.json, args.verbose))
}

async fn run_async(spec: spec::TaskSpec, opts: RunOptions, json: bool, verbose: bool) -> i32 {
    let cancel = CancellationToken::new();
    tokio::spawn(cancel_on_signal(cancel.clone()));
    match runner::run_task(spec, &opts, cancel, Progress::new(verbose)).await {
        Ok(summary) => {
            if json {
                println!(
                    "{}",
                    airlock::untrusted::to_json(&summary, true).unwrap_or_default()
                );
            }
            eprintln!("{}", airlock::artifacts::neutralise(&describe(&summary)));
            summary.state.exit_code()
        }
        Err(e @ (NotRun::Refused(_) | NotRun::Cancelled(_))) => {
            let (code, summary) = match &e {
                NotRun::Refused(s) => (Exit::Refused, s),
                NotRun::Cancelled(s) => (Exit::NotGreen, s),
                _ => return fail(e.exit(), &e.to_string()),
            };
            if json {
                println!(
                    "{}",
                    airlock::untrusted::to_json(summary, true).unwrap_or_default()
                );
            }
            let what = if code == Exit::Refused {
                "refused"
            } else {
                "cancelled"
            };
            fail(
                code,
                &format!(
                    "{what} ({}): {}",
                    summary.reason,
                    summary.message.clone().unwrap_or_default()
                ),
            )
        }
        Err(e) => fail(e.exit(), &e.to_string()),
    }
}

/// SIGINT or SIGTERM cancels the task: its containers are stopped and removed, and the
/// summary says `cancelled`.
async fn cancel_on_signal(cancel: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    eprintln!("airlock: signal received; stopping the task's containers");
    cancel.cancel();
}

fn absolute(flag: &str, p: &std::path::Path) -> Result<PathBuf, String> {
    std::path::absolute(p).map_err(|e| format!("{flag} {}: {e}", p.display()))
}

fn fail(exit: Exit, message: &str) -> i32 {
    eprintln!("airlock: {}", airlock::artifacts::neutralise(message));
    exit.code()
}

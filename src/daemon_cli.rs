//! CLI commands that talk to (or are) the runner daemon: `daemon`, `submit`, `status`, `logs`,
//! `cancel`, `artifacts`, `stats`. Human output by default, `--json` everywhere.
//!
//! Exit codes: 0 done · 1 the task ended not green (`logs -f`), or is not in a state that allows
//! the request (cancel a finished task, the bundle of an unfinished one) · 2 invalid input or no
//! such task · 4 the daemon cannot be reached or failed. `logs -f` exits with the task's own
//! code (0 green · 1 not green · 3 refused · 4 error).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use airlock::daemon::client::{prepare_submission, Client, ClientError, Reply};
use airlock::daemon::config::{DEFAULT_CONFIG, DEFAULT_SOCKET};
use airlock::daemon::table;
use airlock::vocab::{Exit, State};
use clap::Subcommand;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

mod follow;

#[derive(Subcommand)]
pub enum Commands {
    /// Run the runner daemon (durable queue, local API, workers).
    Daemon {
        /// The daemon's config file.
        #[arg(long, default_value = DEFAULT_CONFIG, env = "AIRLOCK_CONFIG")]
        config: PathBuf,
    },
    /// Queue a task with the daemon and print its id.
    Submit {
        /// The task spec (TOML), as for `airlock run`.
        task: PathBuf,
        /// Not accepted: a submission's source is fixed by how it arrives (`api` here);
        /// forge events use the daemon's webhook routes and schedules `[[schedule]]`.
        #[arg(long, hide = true)]
        source: Option<String>,
        /// The author has no write access to the repository.
        #[arg(long)]
        untrusted_author: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// List the daemon's tasks, or show one.
    Status {
        /// A task id (default: list tasks).
        id: Option<String>,
        /// Only tasks in this state (queued, running, green, needs_human, ...).
        #[arg(long)]
        state: Option<String>,
        /// At most this many tasks, newest first.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        conn: Conn,
    },
    /// Print a task's events; with -f, follow them until it ends.
    Logs {
        /// The task id.
        id: String,
        /// Keep printing events until the task ends; exit with its code (0 green, 1 not
        /// green, 3 refused, 4 error).
        #[arg(short, long)]
        follow: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Cancel a queued or running task.
    Cancel {
        /// The task id.
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Per-kind outcomes of finished tasks: green, needs_human, blocked, red flags, scope
    /// stops, median attempts and time, merged vs closed-unmerged pull requests.
    Stats {
        #[command(flatten)]
        conn: Conn,
    },
    /// Download a finished task's artifact bundle (tar.gz).
    Artifacts {
        /// The task id.
        id: String,
        /// Where to write it (default: ./<id>.tar.gz).
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(clap::Args)]
pub struct Conn {
    /// The daemon's API socket.
    #[arg(long, env = "AIRLOCK_SOCKET", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: Commands) -> i32 {
    if let Commands::Daemon { config } = &cmd {
        return airlock::daemon::main(config);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(Exit::Fault, &format!("cannot start the async runtime: {e}")),
    };
    match rt.block_on(client_command(cmd)) {
        Ok(code) => code,
        Err(e) => fail(Exit::Fault, &e.to_string()),
    }
}

async fn client_command(cmd: Commands) -> Result<i32, ClientError> {
    match cmd {
        Commands::Daemon { .. } => Ok(Exit::Ok.code()),
        Commands::Submit {
            task,
            source,
            untrusted_author,
            conn,
        } => match source {
            Some(s) => Ok(fail(
                Exit::Invalid,
                &airlock::daemon::api::source_refused(&s),
            )),
            None => submit(&task, untrusted_author, &conn).await,
        },
        Commands::Status {
            id: Some(id), conn, ..
        } => show(&id, &conn).await,
        Commands::Status {
            id: None,
            state,
            limit,
            conn,
        } => list(state, limit, &conn).await,
        Commands::Logs { id, follow, conn } => logs(&id, follow, &conn).await,
        Commands::Cancel { id, conn } => cancel(&id, &conn).await,
        Commands::Artifacts { id, output, conn } => artifacts(&id, output, &conn).await,
        Commands::Stats { conn } => stats(&conn).await,
    }
}

async fn stats(conn: &Conn) -> Result<i32, ClientError> {
    let reply = client(conn).call(Method::GET, "/v1/stats", None).await?;
    Ok(print_reply(&reply, StatusCode::OK, conn, |v| {
        let kinds: Vec<airlock::daemon::stats::KindStats> =
            serde_json::from_value(v["kinds"].clone()).unwrap_or_default();
        airlock::daemon::stats::render_text(&kinds)
    }))
}

async fn submit(task: &Path, untrusted: bool, conn: &Conn) -> Result<i32, ClientError> {
    let (name, text) = match prepare_submission(task) {
        Ok(v) => v,
        Err(m) => return Ok(fail(Exit::Invalid, &m)),
    };
    let path = format!(
        "/v1/tasks?name={}&author={}",
        airlock::daemon::api::spec_name(Some(&name)),
        if untrusted { "untrusted" } else { "trusted" }
    );
    let reply = client(conn)
        .call(
            Method::POST,
            &path,
            Some(("application/toml", text.into_bytes())),
        )
        .await?;
    Ok(print_reply(&reply, StatusCode::CREATED, conn, |v| {
        format!("{}\n", v["id"].as_str().unwrap_or_default())
    }))
}

/// A reply with the `expected` status is printed as JSON (`--json`) or as `human` renders it
/// (exit 0); any other reply is reported as an error.
fn print_reply(
    reply: &Reply,
    expected: StatusCode,
    conn: &Conn,
    human: impl FnOnce(&Value) -> String,
) -> i32 {
    if reply.status != expected {
        return error_reply(reply);
    }
    let v = reply.json();
    if conn.json {
        println!("{v}");
    } else {
        print!("{}", human(&v));
    }
    Exit::Ok.code()
}

async fn list(state: Option<String>, limit: usize, conn: &Conn) -> Result<i32, ClientError> {
    let mut path = format!("/v1/tasks?limit={limit}");
    if let Some(s) = state {
        path.push_str(&format!("&state={s}"));
    }
    let reply = client(conn).call(Method::GET, &path, None).await?;
    Ok(print_reply(&reply, StatusCode::OK, conn, |v| {
        table::tasks(v["tasks"].as_array().map_or(&[], Vec::as_slice))
    }))
}

async fn show(id: &str, conn: &Conn) -> Result<i32, ClientError> {
    let reply = client(conn)
        .call(Method::GET, &task_path(id, ""), None)
        .await?;
    Ok(print_reply(&reply, StatusCode::OK, conn, table::task))
}

async fn logs(id: &str, follow: bool, conn: &Conn) -> Result<i32, ClientError> {
    let c = client(conn);
    let path = task_path(
        id,
        if follow {
            "/events?follow=1"
        } else {
            "/events"
        },
    );
    let resp = c.send(Method::GET, &path, None).await?;
    if resp.status() != StatusCode::OK {
        let status = resp.status();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Ok(error_reply(&Reply { status, body }));
    }
    let mut pending = Vec::new();
    let json = conn.json;
    // Following in human form: say how far the task got while no event arrives.
    let ui = (follow && !json).then(|| follow::Follow::new(id, std::io::stderr().is_terminal()));
    let ticker = ui.clone().map(|f| {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                every.tick().await;
                f.tick();
            }
        })
    });
    let drained = c
        .drain(resp, |chunk| match &ui {
            Some(f) => f.print(|| print_events(&mut pending, chunk, json, Some(f))),
            None => print_events(&mut pending, chunk, json, None),
        })
        .await;
    if let Some(t) = ticker {
        t.abort();
    }
    if let Some(f) = &ui {
        f.finish();
    }
    drained?;
    if !follow {
        return Ok(Exit::Ok.code());
    }
    let reply = c.call(Method::GET, &task_path(id, ""), None).await?;
    Ok(state_exit_code(
        reply.json()["state"].as_str().unwrap_or(""),
    ))
}

fn print_events(
    pending: &mut Vec<u8>,
    chunk: &[u8],
    json: bool,
    seen: Option<&follow::Follow>,
) -> std::io::Result<()> {
    pending.extend_from_slice(chunk);
    let Some(end) = pending.iter().rposition(|b| *b == b'\n') else {
        return Ok(());
    };
    let rest = pending.split_off(end + 1);
    let done = std::mem::replace(pending, rest);
    let mut out = std::io::stdout().lock();
    for line in done.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        if json {
            out.write_all(line)?;
            out.write_all(b"\n")?;
        } else {
            let v: Value = serde_json::from_slice(line).unwrap_or(Value::Null);
            out.write_all(table::event(&v).as_bytes())?;
            if let Some(f) = seen {
                f.saw(&v);
            }
        }
    }
    out.flush()
}

/// A task's exit code from its state's name; a state that is not final (or not known) is "not
/// green".
fn state_exit_code(state: &str) -> i32 {
    State::parse(state)
        .map_or(Exit::NotGreen, State::exit)
        .code()
}

async fn cancel(id: &str, conn: &Conn) -> Result<i32, ClientError> {
    let reply = client(conn)
        .call(Method::POST, &task_path(id, "/cancel"), None)
        .await?;
    if !matches!(reply.status, StatusCode::OK | StatusCode::ACCEPTED) {
        return Ok(error_reply(&reply));
    }
    let v = reply.json();
    if conn.json {
        println!("{v}");
    } else if reply.status == StatusCode::OK {
        println!("{id}: cancelled (it had not started)");
    } else {
        println!("{id}: cancelling (its containers are being stopped)");
    }
    Ok(Exit::Ok.code())
}

async fn artifacts(id: &str, output: Option<PathBuf>, conn: &Conn) -> Result<i32, ClientError> {
    let c = client(conn);
    let resp = c.send(Method::GET, &task_path(id, "/bundle"), None).await?;
    if resp.status() != StatusCode::OK {
        let status = resp.status();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Ok(error_reply(&Reply { status, body }));
    }
    let out = output.unwrap_or_else(|| PathBuf::from(format!("{}.tar.gz", sanitize(id))));
    let mut file = match tempfile::NamedTempFile::new_in(
        out.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    ) {
        Ok(f) => f,
        Err(e) => return Ok(fail(Exit::Fault, &format!("{}: {e}", out.display()))),
    };
    let mut bytes = 0u64;
    c.drain(resp, |chunk| {
        bytes += chunk.len() as u64;
        file.write_all(chunk)
    })
    .await?;
    if let Err(e) = file.persist(&out) {
        return Ok(fail(Exit::Fault, &format!("{}: {e}", out.display())));
    }
    if conn.json {
        println!("{}", json!({ "id": id, "path": out, "bytes": bytes }));
    } else {
        println!("{}", out.display());
    }
    Ok(Exit::Ok.code())
}

fn client(conn: &Conn) -> Client {
    Client::new(&conn.socket)
}

/// Ids are sent as path segments; anything but the id alphabet is refused by the daemon (404).
fn task_path(id: &str, rest: &str) -> String {
    format!("/v1/tasks/{}{rest}", sanitize(id))
}

fn sanitize(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

/// Print the daemon's error and map its status to an exit code.
fn error_reply(reply: &Reply) -> i32 {
    let exit = match reply.status {
        StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND | StatusCode::PAYLOAD_TOO_LARGE => {
            Exit::Invalid
        }
        StatusCode::CONFLICT => Exit::NotGreen,
        _ => Exit::Fault,
    };
    fail(exit, &reply.error_message())
}

fn fail(exit: Exit, message: &str) -> i32 {
    eprintln!("airlock: {}", airlock::artifacts::neutralise(message));
    exit.code()
}

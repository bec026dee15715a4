//! make bench: the shared queue at scale. A real PostgreSQL cluster (started as the shared-queue
//! tests start it, tests/queue_support) and N simulated runners, N = 1, 10, 100, each with its
//! own `PgStore` (its own pool, its migrations at connect, as `airlock daemon` does) and a fake
//! engine that sleeps instead of starting containers. Each task's lifecycle is the store calls
//! a daemon makes for it: submit (`insert`), `claim`, an event copy, the run (the sleep),
//! a heartbeat (`renew`), a last event copy, the push record and the fenced `finish`.
//!
//! The baseline, in the same run on the same table and database: N bare loops, one plain
//! connection each, claiming with one prepared `UPDATE … WHERE seq = (SELECT … FOR UPDATE SKIP
//! LOCKED)` and finishing with one prepared `UPDATE`, after the same per-task insert and the
//! same sleep; and the same bare loops with a `pg_notify` in the claim and the finish
//! (`bare+NOTIFY`), which isolates what NOTIFY costs (its commits are serialized by a global
//! lock held through the WAL flush).
//!
//! Reports claims/s, claim latency p50/p99, and statements per task lifecycle counted by the
//! server (`pg_stat_statements`, utility statements such as BEGIN/COMMIT included) with
//! `pg_stat_database.xact_commit` (which also counts the implicit transaction of each unnamed
//! prepare outside a transaction block: a round trip), with the ratios to the bare loop. The cluster runs with `fsync=on` (BENCH_FSYNC=off to compare) so commits cost
//! what they cost on a real server.
//!
//! `cargo bench --bench shared_queue` (BENCH_TASK_MS: the fake engine's sleep, default 20;
//! BENCH_TASKS_SCALE: multiplies the task counts, default 1).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark: a panic is a failed run"
)]

#[path = "../tests/queue_support/mod.rs"]
mod queue_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock::artifacts::State;
use airlock::store::pg::{PgSettings, PgStore};
use airlock::store::{End, Lease, LeaseTimes, NewTask, TaskStore};
use airlock::vocab::Reason;
use queue_support::Pg;
use secrecy::SecretString;
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;

fn env_n(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const TIMES: LeaseTimes = LeaseTimes {
    ttl: Duration::from_secs(60),
    heartbeat: Duration::from_secs(15),
    requeues: 2,
};

/// What one run measured.
struct Run {
    tasks: usize,
    wall: Duration,
    /// Every claim that returned a task, in seconds.
    claims: Vec<f64>,
    statements: i64,
    commits: i64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.claims.len() as f64 / self.wall.as_secs_f64()
    }

    fn pct(&self, p: f64) -> f64 {
        let mut v = self.claims.clone();
        v.sort_by(f64::total_cmp);
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v.get(i).copied().unwrap_or(0.0) * 1000.0
    }

    fn per_task(&self, n: i64) -> f64 {
        n as f64 / self.tasks as f64
    }
}

struct Bench {
    pg: Pg,
    settings: PgSettings,
    admin: tokio_postgres::Client,
    task_ms: u64,
}

fn new_task(i: usize, spec: &str) -> NewTask {
    NewTask {
        id: format!("bench-{i:06}"),
        title: format!("bench task {i}"),
        level: "L3".into(),
        source: "bench.toml".into(),
        spec: spec.into(),
        trigger: "api".into(),
        author_trusted: true,
    }
}

fn event(id: &str, n: usize) -> String {
    format!("{{\"task\":\"{id}\",\"seq\":{n},\"event\":\"phase\",\"phase\":\"agent\"}}")
}

impl Bench {
    async fn reset(&self) {
        self.admin
            .batch_execute("TRUNCATE tasks, events; SELECT pg_stat_statements_reset()")
            .await
            .unwrap();
    }

    /// Server-side counts since the last reset: statements (the bench's own admin statements
    /// excluded) and this database's committed transactions.
    async fn counts(&self) -> (i64, i64) {
        let s = self
            .admin
            .query_one(
                "SELECT COALESCE(SUM(calls), 0)::bigint FROM pg_stat_statements \
                 WHERE query NOT ILIKE '%pg_stat%' AND query NOT ILIKE '%TRUNCATE%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let c = self
            .admin
            .query_one(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        (s, c)
    }

    async fn settle_stats(&self) {
        // pg_stat_database is flushed by backends at most once a second (and at exit).
        self.admin
            .batch_execute("SELECT pg_stat_force_next_flush()")
            .await
            .ok();
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }

    /// N runners through airlock's store.
    async fn airlock(&self, n: usize, tasks: usize) -> Run {
        self.reset().await;
        let mut stores = Vec::new();
        for _ in 0..n {
            stores.push(Arc::new(PgStore::connect(&self.settings).await.unwrap()));
        }
        self.settle_stats().await;
        let (s0, c0) = self.counts().await;
        let spec = "title = \"bench\"\nlevel = \"L3\"\n";
        for i in 0..tasks {
            stores[i % n].insert(new_task(i, spec)).await.unwrap();
        }
        let sleep = Duration::from_millis(self.task_ms);
        let start = Instant::now();
        let mut joins = Vec::new();
        for (r, store) in stores.iter().enumerate() {
            let store = store.clone();
            joins.push(tokio::spawn(async move {
                let runner = format!("bench-runner-{r}");
                let mut claims = Vec::new();
                loop {
                    let asked = Instant::now();
                    let got = store.claim(1, runner.clone()).await.unwrap();
                    let Some(task) = got.into_iter().next() else {
                        return claims;
                    };
                    claims.push(asked.elapsed().as_secs_f64());
                    let lease = Lease {
                        id: task.id.clone(),
                        epoch: task.epoch,
                    };
                    let first = (0..3).map(|k| event(&task.id, k)).collect();
                    store.append_events(&lease, first).await.unwrap();
                    tokio::time::sleep(sleep).await;
                    store.renew(&lease).await.unwrap();
                    let last = (3..5).map(|k| event(&task.id, k)).collect();
                    store.append_events(&lease, last).await.unwrap();
                    store.push_started(&lease).await.unwrap();
                    let end = End {
                        state: State::Green,
                        reason: Reason::GatePassed,
                        message: None,
                        summary: Some("{\"state\":\"green\"}".into()),
                    };
                    let prefix = format!("tasks/{}/0-{}", task.id, task.epoch);
                    assert!(store.finish(&lease, end, Some(prefix)).await.unwrap());
                }
            }));
        }
        let mut claims = Vec::new();
        for j in joins {
            claims.extend(j.await.unwrap());
        }
        let wall = start.elapsed();
        drop(stores);
        self.settle_stats().await;
        let (s1, c1) = self.counts().await;
        let done: i64 = self
            .admin
            .query_one("SELECT COUNT(*) FROM tasks WHERE state = 'green'", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(done as usize, tasks, "every task finished once");
        assert_eq!(claims.len(), tasks, "every task claimed once");
        Run {
            tasks,
            wall,
            claims,
            statements: s1 - s0,
            commits: c1 - c0,
        }
    }

    /// N bare `SKIP LOCKED` loops on plain connections, same table, statements prepared once
    /// per connection (as a hand-written loop would).
    /// With `notify`, the claim and the finish each also `pg_notify` (as airlock's writes do,
    /// to wake other runners and event followers): the cost of NOTIFY alone.
    async fn baseline(&self, n: usize, tasks: usize, notify: bool) -> Run {
        self.reset().await;
        let mut loops = Vec::new();
        for _ in 0..n {
            loops.push(Arc::new(Bare::new(self.connect().await, notify).await));
        }
        self.settle_stats().await;
        let (s0, c0) = self.counts().await;
        for i in 0..tasks {
            let t = new_task(i, "title = \"bench\"\n");
            let params: [&(dyn ToSql + Sync); 5] = [&t.id, &t.title, &t.level, &t.source, &t.spec];
            let l = &loops[i % n];
            l.client.execute(&l.insert, &params).await.unwrap();
        }
        let sleep = Duration::from_millis(self.task_ms);
        let start = Instant::now();
        let mut joins = Vec::new();
        for l in &loops {
            let l = l.clone();
            joins.push(tokio::spawn(async move {
                let mut claims = Vec::new();
                loop {
                    let asked = Instant::now();
                    let row = l.client.query_opt(&l.claim, &[]).await.unwrap();
                    let Some(row) = row else { return claims };
                    claims.push(asked.elapsed().as_secs_f64());
                    let id: String = row.get(0);
                    tokio::time::sleep(sleep).await;
                    l.client.query(&l.finish, &[&id]).await.unwrap();
                }
            }));
        }
        let mut claims = Vec::new();
        for j in joins {
            claims.extend(j.await.unwrap());
        }
        let wall = start.elapsed();
        drop(loops);
        self.settle_stats().await;
        let (s1, c1) = self.counts().await;
        assert_eq!(claims.len(), tasks, "every task claimed once");
        Run {
            tasks,
            wall,
            claims,
            statements: s1 - s0,
            commits: c1 - c0,
        }
    }

    async fn connect(&self) -> tokio_postgres::Client {
        connect(&self.pg).await
    }
}

/// One bare loop's connection and statements.
struct Bare {
    client: tokio_postgres::Client,
    insert: tokio_postgres::Statement,
    claim: tokio_postgres::Statement,
    finish: tokio_postgres::Statement,
}

impl Bare {
    async fn new(client: tokio_postgres::Client, notify: bool) -> Bare {
        let returning = match notify {
            true => "RETURNING id, pg_notify('airlock_events', id)::text",
            false => "RETURNING id, ''",
        };
        let insert = client
            .prepare(
                "INSERT INTO tasks(id, title, level, source, spec, state, submitted_at) \
                 VALUES ($1, $2, $3, $4, $5, 'queued', 0)",
            )
            .await
            .unwrap();
        let claim = client
            .prepare(&format!(
                "UPDATE tasks SET state = 'running' WHERE seq = (SELECT seq FROM tasks \
                 WHERE state = 'queued' ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) {returning}"
            ))
            .await
            .unwrap();
        let finish = client
            .prepare(&format!(
                "UPDATE tasks SET state = 'green' WHERE id = $1 {returning}"
            ))
            .await
            .unwrap();
        Bare {
            client,
            insert,
            claim,
            finish,
        }
    }
}

/// A plain connection (no pool, no airlock).
async fn connect(pg: &Pg) -> tokio_postgres::Client {
    let mut config: tokio_postgres::Config = pg.url().parse().unwrap();
    let pw = std::fs::read_to_string(&pg.password_file).unwrap();
    config.password(pw.trim());
    let (client, conn) = config.connect(NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

fn line(label: &str, r: &Run) {
    println!(
        "      {label:<13} {:>7.1} claims/s  claim p50 {:>6.2} ms  p99 {:>7.2} ms  \
         {:>5.1} statements/task  {:>4.1} xact_commit/task",
        r.rate(),
        r.pct(0.5),
        r.pct(0.99),
        r.per_task(r.statements),
        r.per_task(r.commits),
    );
}

fn ratio(label: &str, a: &Run, b: &Run) {
    println!(
        "      {label:<13} claims/s x{:.2}  p50 x{:.2}  p99 x{:.2}  statements x{:.2}",
        a.rate() / b.rate(),
        a.pct(0.5) / b.pct(0.5),
        a.pct(0.99) / b.pct(0.99),
        a.statements as f64 / b.statements as f64,
    );
}

fn report(n: usize, a: &Run, bare: &Run, notify: &Run) {
    println!("N={n:<3} tasks={}", a.tasks);
    line("airlock", a);
    line("bare", bare);
    line("bare+NOTIFY", notify);
    ratio("airlock/bare", a, bare);
    ratio("notify/bare", notify, bare);
}

fn main() {
    let task_ms = env_n("BENCH_TASK_MS", 20) as u64;
    let scale = env_n("BENCH_TASKS_SCALE", 1).max(1);
    let fsync = std::env::var("BENCH_FSYNC").unwrap_or_else(|_| "on".into());
    let pg = Pg::start_with(&format!(
        "-c fsync={fsync} -c max_connections=400 -c shared_preload_libraries=pg_stat_statements \
         -c pg_stat_statements.track=all"
    ));
    pg.sql("CREATE EXTENSION pg_stat_statements");
    let password = std::fs::read_to_string(&pg.password_file).unwrap();
    let settings = PgSettings {
        url: pg.url(),
        password: Some(SecretString::from(password.trim().to_string())),
        times: TIMES,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // The first connect runs the migrations.
        drop(PgStore::connect(&settings).await.unwrap());
        let admin = connect(&pg).await;
        let b = Bench {
            admin,
            pg,
            settings,
            task_ms,
        };
        println!(
            "shared queue: real PostgreSQL (fsync={fsync}), fake engine sleeping {task_ms} ms per task; \
             lifecycle = insert, claim, 2 event copies, 1 heartbeat, push record, finish"
        );
        for (n, tasks) in [(1, 200), (10, 500), (100, 2000)] {
            let tasks = tasks * scale;
            let a = b.airlock(n, tasks).await;
            let bare = b.baseline(n, tasks, false).await;
            let notify = b.baseline(n, tasks, true).await;
            report(n, &a, &bare, &notify);
        }
    });
}

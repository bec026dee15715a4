//! The shared queue in PostgreSQL: many runners, one database (`tokio-postgres` through a
//! `deadpool-postgres` pool).
//!
//! - A claim (`SELECT … FOR UPDATE SKIP LOCKED`, FIFO) sets the runner, a lease expiry on the
//!   **database's** clock (`now() + ttl`) and increments the task's fencing epoch.
//! - Every later write for the task is conditional on `(id, epoch)`, the state `running` and a
//!   live lease ([`queue::FENCE`]); a refused write is [`StoreError::Fenced`].
//! - Every call has a deadline; a connection whose call missed it is discarded, not reused
//!   (a black-holed connection never answers).
//! - Schema migrations are versioned and run at start under an advisory lock ([`schema`]).

mod listen;
mod queue;
mod read;
pub mod schema;
mod store;
mod triggers;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::NoTls;

use super::backend::LeaseTimes;
use super::StoreError;

pub use listen::{listen, CHANNEL_EVENTS, CHANNEL_QUEUE};
pub use queue::lost_message;

/// Connections per runner: the dispatcher, heartbeats, event copies and the API share them.
const POOL_SIZE: usize = 8;

/// How to reach the database. The password never comes from the URL (it would be in argv,
/// process listings and logs): it is read from a 0600 file or `PGPASSWORD`.
#[derive(Clone)]
pub struct PgSettings {
    /// The connection URL (`postgres://user@host/db`, no password).
    pub url: String,
    /// The password, from its 0600 file or `PGPASSWORD`.
    pub password: Option<SecretString>,
    /// Lease lifetimes and heartbeat.
    pub times: LeaseTimes,
}

impl std::fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSettings")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("times", &self.times)
            .finish()
    }
}

/// The pool and the lease settings.
pub struct PgStore {
    pool: Pool,
    config: tokio_postgres::Config,
    times: LeaseTimes,
    deadline: Duration,
}

/// A database call on one pooled connection.
pub(crate) type PgFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

pub(crate) fn pg(op: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    move |source| StoreError::Pg { op, source }
}

impl PgStore {
    /// Connect, run the migrations (under the advisory lock) and build the pool.
    pub async fn connect(s: &PgSettings) -> Result<PgStore, StoreError> {
        let config = client_config(s)?;
        let deadline = call_deadline(s.times);
        schema::migrate(&config, deadline).await?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(deadline))
            .create_timeout(Some(deadline))
            .recycle_timeout(Some(deadline))
            .build()
            .map_err(|e| StoreError::Pool {
                op: "build the connection pool",
                message: e.to_string(),
            })?;
        Ok(PgStore {
            pool,
            config,
            times: s.times,
            deadline,
        })
    }

    /// The connection settings (for the LISTEN connection).
    pub fn client_config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The lease settings this store runs with.
    pub fn times(&self) -> LeaseTimes {
        self.times
    }

    /// Run `f` on a pooled connection within the call deadline. A connection whose call missed
    /// the deadline is taken out of the pool and closed.
    pub(crate) async fn run<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send,
        F: for<'a> FnOnce(&'a mut Object) -> PgFuture<'a, T> + Send,
    {
        let after = self.deadline;
        let mut client = match tokio::time::timeout(after, self.pool.get()).await {
            Err(_) => return Err(StoreError::Timeout { op, after }),
            Ok(Err(e)) => {
                return Err(StoreError::Pool {
                    op,
                    message: e.to_string(),
                })
            }
            Ok(Ok(c)) => c,
        };
        let result = tokio::time::timeout(after, f(&mut client)).await;
        match result {
            Ok(r) => r,
            Err(_) => {
                drop(Object::take(client));
                Err(StoreError::Timeout { op, after })
            }
        }
    }
}

/// Each call's deadline: a quarter of the lease (so a runner cut off notices well before its
/// lease ends), at least a second.
pub fn call_deadline(t: LeaseTimes) -> Duration {
    (t.ttl / 4).max(Duration::from_secs(1))
}

fn client_config(s: &PgSettings) -> Result<tokio_postgres::Config, StoreError> {
    let mut config: tokio_postgres::Config = s.url.parse().map_err(pg("parse [queue] url"))?;
    if let Some(p) = &s.password {
        config.password(p.expose_secret());
    }
    config
        .application_name("airlock")
        .connect_timeout(call_deadline(s.times))
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30));
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_debug_printed() {
        let s = PgSettings {
            url: "postgres://airlock@127.0.0.1:5432/airlock".into(),
            password: Some(SecretString::from("hunter2-hunter2")),
            times: LeaseTimes {
                ttl: Duration::from_secs(60),
                heartbeat: Duration::from_secs(15),
                requeues: 2,
            },
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let config = client_config(&s).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn the_call_deadline_is_a_quarter_of_the_lease() {
        let t = |ttl| LeaseTimes {
            ttl: Duration::from_secs(ttl),
            heartbeat: Duration::from_secs(1),
            requeues: 1,
        };
        assert_eq!(call_deadline(t(60)), Duration::from_secs(15));
        assert_eq!(call_deadline(t(2)), Duration::from_secs(1));
    }
}

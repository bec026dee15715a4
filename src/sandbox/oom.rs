//! Whether the engine OOM-killed a container, robust to the engine's own event order.
//!
//! Docker 20.10 on cgroup v2 records `State.OOMKilled` from containerd's OOM event, which can
//! reach the daemon after the exit event: the state then says `OOMKilled: false` for good, while
//! the daemon still emits an `oom` event for the container. So when a container that airlock did
//! not stop exits with 137 (SIGKILL) and the state says no OOM, we read the engine's `oom`
//! events for that container over a short bounded window and inspect once more. Only engine
//! facts count: never the container's log text.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::query_parameters::EventsOptions;
use futures_util::StreamExt;

use super::{Ended, Engine};

/// How long after the exit we wait for a late `oom` event.
pub(super) const OOM_EVENT_WINDOW: Duration = Duration::from_secs(1);

/// Exit code of a process killed by SIGKILL (what the kernel's OOM killer sends).
const SIGKILL_EXIT: i64 = 137;

/// Whether a run's end needs the late-OOM check: it exited on its own (airlock did not stop
/// it) with 137, and the engine's state does not (yet) say OOM.
pub(super) fn needs_check(ended: Ended, exit_code: Option<i64>, oom_killed: bool) -> bool {
    ended == Ended::Exited && exit_code == Some(SIGKILL_EXIT) && !oom_killed
}

/// An engine timestamp (`<unix seconds>.<nanoseconds>`) for `t`, one second early so clock
/// rounding never drops an event; events are filtered by container id, so the margin is safe.
pub(super) fn engine_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}", d.as_secs().saturating_sub(1), d.subsec_nanos())
}

impl Engine {
    /// Whether the engine emitted an `oom` event for container `id` between `since` and
    /// [`OOM_EVENT_WINDOW`] from now. An engine error here counts as "no event" (logged).
    pub(super) async fn saw_oom_event(&self, id: &str, since: SystemTime) -> bool {
        let until = SystemTime::now() + OOM_EVENT_WINDOW;
        let opts = EventsOptions {
            since: Some(engine_time(since)),
            until: Some(engine_time(until + Duration::from_secs(1))),
            filters: Some(HashMap::from([
                ("type".to_string(), vec!["container".to_string()]),
                ("container".to_string(), vec![id.to_string()]),
                ("event".to_string(), vec!["oom".to_string()]),
            ])),
        };
        let mut events = self.docker().events(Some(opts));
        // The engine closes the stream at `until` (engine_time takes back the extra second);
        // the timeout bounds the wait should it not, with slack for a loaded engine.
        let deadline = tokio::time::Instant::now() + OOM_EVENT_WINDOW + Duration::from_millis(500);
        loop {
            match tokio::time::timeout_at(deadline, events.next()).await {
                Ok(Some(Ok(ev))) if ev.action.as_deref() == Some("oom") => return true,
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(e))) => {
                    tracing::warn!(container = %id, error = %e, "reading oom events failed");
                    return false;
                }
                Ok(None) | Err(_) => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unstopped_sigkill_without_oom_is_checked() {
        assert!(needs_check(Ended::Exited, Some(137), false));
        assert!(!needs_check(Ended::Exited, Some(137), true));
        assert!(!needs_check(Ended::Exited, Some(1), false));
        assert!(!needs_check(Ended::Exited, None, false));
        assert!(!needs_check(Ended::Timeout, Some(137), false));
        assert!(!needs_check(Ended::Cancelled, Some(137), false));
    }

    #[test]
    fn engine_time_is_seconds_dot_nanos_one_second_early() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        assert_eq!(engine_time(t), "1699999999.000000005");
        assert_eq!(engine_time(UNIX_EPOCH), "0.000000000");
    }
}

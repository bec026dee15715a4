//! Container-start durations for `/metrics`: the engine's event stream for this session's
//! containers, `create` to `start` of each. Measured by the engine's clock, outside the runner.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::EventsOptions;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::shared::Shared;
use crate::sandbox::{Engine, LABEL_SESSION};

/// Containers created but not yet started that are remembered; beyond this the oldest are
/// forgotten (a container that never starts must not grow the map).
const MAX_PENDING: usize = 1024;

/// Watch until `stop`; reconnect after a broken stream.
pub async fn watch(engine: Engine, ctx: Arc<Shared>, stop: CancellationToken) {
    let mut pending: HashMap<String, i64> = HashMap::new();
    let mut last_nano = 0i64;
    while !stop.is_cancelled() {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = follow(&engine, &ctx, &mut pending, &mut last_nano) => {}
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Follow the stream; after a reconnect, replay from the last second seen (a replayed event
/// changes nothing: a `create` records the same time, a `start` finds nothing pending).
async fn follow(
    engine: &Engine,
    ctx: &Shared,
    pending: &mut HashMap<String, i64>,
    last_nano: &mut i64,
) {
    let filters = HashMap::from([
        ("type".to_string(), vec!["container".to_string()]),
        (
            "event".to_string(),
            vec!["create".to_string(), "start".to_string()],
        ),
        (
            "label".to_string(),
            vec![format!("{LABEL_SESSION}={}", ctx.session)],
        ),
    ]);
    let since = (*last_nano > 0).then(|| (*last_nano / 1_000_000_000).to_string());
    let opts = EventsOptions {
        since,
        filters: Some(filters),
        ..Default::default()
    };
    let mut stream = engine.docker().events(Some(opts));
    while let Some(item) = stream.next().await {
        let Ok(ev) = item else { return };
        let (Some(action), Some(id), Some(t)) =
            (ev.action, ev.actor.and_then(|a| a.id), ev.time_nano)
        else {
            continue;
        };
        *last_nano = (*last_nano).max(t);
        if let Some(seconds) = observe(pending, &action, id, t) {
            ctx.metrics.container_started(seconds);
        }
    }
}

/// Pure: remember a `create`, or turn a `start` into a duration in seconds.
pub fn observe(
    pending: &mut HashMap<String, i64>,
    action: &str,
    id: String,
    time_nano: i64,
) -> Option<f64> {
    match action {
        "create" => {
            if pending.len() >= MAX_PENDING {
                pending.clear();
            }
            pending.insert(id, time_nano);
            None
        }
        "start" => pending
            .remove(&id)
            .map(|t0| (time_nano - t0).max(0) as f64 / 1e9),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_then_start_is_a_duration() {
        let mut p = HashMap::new();
        assert_eq!(observe(&mut p, "create", "c1".into(), 1_000_000_000), None);
        assert_eq!(observe(&mut p, "start", "c2".into(), 2_000_000_000), None);
        assert_eq!(
            observe(&mut p, "start", "c1".into(), 1_250_000_000),
            Some(0.25)
        );
        assert!(p.is_empty());
    }
}

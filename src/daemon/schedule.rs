//! `[[schedule]]`: tasks started by the clock (source `schedule`, trusted: the operator wrote
//! the template). Cron is evaluated by `croner` in UTC.
//!
//! Each slot that starts a task is recorded with it in one transaction (on a shared queue a
//! unique `(schedule, slot)` row, so runners that all tick start one task per slot), and every
//! schedule remembers when the daemon first saw it, so after a restart the latest slot missed while the
//! daemon was down runs once (not once per missed slot) and a slot that already ran never runs
//! again. The loop only reads the clock; [`Scheduler::tick`] takes `now` and is tested with an
//! injected clock.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::config::triggers::ScheduleRule;
use super::shared::Shared;
use crate::policy::Source;
use crate::spec::Level;
use crate::store::triggers::{fields, Key, Triggered};
use crate::store::{now_ms, rfc3339, NewTask, StoreError, TaskStore};

/// How often the clock is read.
const TICK: Duration = Duration::from_secs(1);

/// The latest slot of `cron` in `(after_ms, now_ms]`, if there is one.
pub fn due(cron: &Cron, after_ms: i64, now_ms: i64) -> Option<i64> {
    let now: DateTime<Utc> = DateTime::from_timestamp_millis(now_ms)?;
    let slot = cron.find_previous_occurrence(&now, true).ok()?;
    let ms = slot.timestamp_millis();
    (ms > after_ms).then_some(ms)
}

/// A task one schedule started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    /// The schedule's name.
    pub schedule: String,
    /// The slot (Unix ms).
    pub slot_ms: i64,
    /// The task it started.
    pub task_id: String,
}

/// Every schedule and the slot after which it next fires.
#[derive(Debug, Clone)]
pub struct Scheduler {
    entries: Vec<(ScheduleRule, i64)>,
    /// operator.toml `[sources] schedule`; `None`: schedules start nothing.
    cap: Option<Level>,
}

impl Scheduler {
    /// Load each schedule's state (first seen, latest slot run) from the store.
    pub async fn load(
        store: &dyn TaskStore,
        rules: &[ScheduleRule],
        cap: Option<Level>,
        now_ms: i64,
    ) -> Result<Scheduler, StoreError> {
        let mut entries = Vec::new();
        for r in rules {
            let (since, last) = store.schedule_state(r.name.clone(), now_ms).await?;
            entries.push((r.clone(), last.map_or(since, |l| l.max(since))));
        }
        Ok(Scheduler { entries, cap })
    }

    /// Start the task of every schedule with a slot due at `now_ms`. On a shared queue every
    /// runner ticks; the store lets one task start per slot.
    pub async fn tick(&mut self, store: &dyn TaskStore, now_ms: i64) -> Vec<Fired> {
        let mut fired = Vec::new();
        for (rule, after) in &mut self.entries {
            let Some(slot) = due(&rule.cron, *after, now_ms) else {
                continue;
            };
            *after = slot;
            match start(store, rule, self.cap, slot).await {
                Ok(Some(task_id)) => fired.push(Fired {
                    schedule: rule.name.clone(),
                    slot_ms: slot,
                    task_id,
                }),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(schedule = %rule.name, error = %e, "cannot start a scheduled task")
                }
            }
        }
        fired
    }
}

async fn start(
    store: &dyn TaskStore,
    rule: &ScheduleRule,
    cap: Option<Level>,
    slot: i64,
) -> Result<Option<String>, String> {
    let Some(cap) = cap else {
        tracing::warn!(schedule = %rule.name, "operator.toml [sources] allows no `schedule` task; slot skipped");
        return Ok(None);
    };
    let level = rule.template.level.min(cap);
    let mut table = rule.template.table.clone();
    table.insert("level".into(), toml::Value::String(level.as_str().into()));
    let text = toml::to_string(&table).map_err(|e| e.to_string())?;
    let spec = crate::spec::parse_str(&text, &rule.template.path).map_err(|e| e.to_string())?;
    let task = NewTask {
        id: crate::runner::new_task_id(),
        title: spec.title.clone(),
        level: level.to_string(),
        source: rule.template.path.display().to_string(),
        spec: text,
        trigger: Source::Schedule.key().into(),
        author_trusted: true,
    };
    let id = task.id.clone();
    let key = Key::Slot {
        schedule: rule.name.clone(),
        slot_ms: slot,
    };
    let detail = json!({ "schedule": rule.name, "cron": rule.cron_text, "slot": rfc3339(slot), "slot_ms": slot, "level": level.as_str() });
    match store
        .insert_triggered(task, key, fields(Source::Schedule.key(), detail))
        .await
        .map_err(|e| e.to_string())?
    {
        Triggered::Inserted => Ok(Some(id)),
        Triggered::SlotTaken { task_id } => {
            tracing::debug!(schedule = %rule.name, slot = %rfc3339(slot), task = %task_id, "slot already started a task");
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// The daemon's schedule loop: a tick per second until `stop`.
pub async fn run(ctx: Arc<Shared>, stop: CancellationToken) {
    if ctx.config.schedules.is_empty() {
        return;
    }
    let cap = ctx
        .policies
        .operator
        .sources
        .get(Source::Schedule.key())
        .copied();
    let mut sched = match Scheduler::load(&*ctx.db, &ctx.config.schedules, cap, now_ms()).await {
        Ok(s) => s,
        Err(e) => return tracing::error!(error = %e, "schedules not started"),
    };
    loop {
        if !ctx.intake_open() {
            return;
        }
        let fired = sched.tick(&*ctx.db, now_ms()).await;
        if !fired.is_empty() {
            ctx.events_stored();
            ctx.wake.notify_one();
        }
        for f in fired {
            tracing::info!(schedule = %f.schedule, slot = %rfc3339(f.slot_ms), task = %f.task_id, "scheduled task queued");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;

//! What went through a task's model proxy: per provider, requests, status counts, bytes up and
//! down, time, and the refused requests (method and path only). Never bodies, never keys.
//! Also the per-task budgets: when one runs out the task ends `model_budget_exhausted`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::config::ModelBudget;

/// Refused requests kept per provider (the rest are only counted).
const MAX_REFUSED_KEPT: usize = 50;
/// Longest path kept for a refused request.
const MAX_PATH_KEPT: usize = 200;

/// One refused request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    /// The request's method.
    pub method: String,
    /// Its path (capped, neutralised).
    pub path: String,
    /// The status airlock answered with.
    pub status: u16,
    /// Why it was refused, as a short code (`bad_body`, `model_budget_exhausted`, ...).
    pub why: String,
}

/// One provider's traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderTraffic {
    /// Requests forwarded upstream.
    pub requests: u64,
    /// Upstream status codes (as text) and how often each came back.
    pub status: BTreeMap<String, u64>,
    /// Request body bytes forwarded upstream.
    pub bytes_up: u64,
    /// Response body bytes returned to the agent.
    pub bytes_down: u64,
    /// Wall time spent in forwarded requests, summed.
    pub time_s: f64,
    /// Requests airlock refused itself (never forwarded).
    pub refused_count: u64,
    /// The first refusals, in order (at most 50 are kept; `refused_count` counts them all).
    pub refused: Vec<Refused>,
}

/// The whole task's model traffic, as written to `summary.json` (`model_traffic`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrafficReport {
    /// Traffic per provider name.
    pub providers: BTreeMap<String, ProviderTraffic>,
    /// The budget that ran out, when one did.
    pub exhausted: Option<String>,
}

#[derive(Default)]
struct Inner {
    report: TrafficReport,
}

/// Shared by every proxy of a task. Cheap to clone.
#[derive(Clone)]
pub struct Traffic {
    inner: Arc<Mutex<Inner>>,
    exhausted: CancellationToken,
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic::new()
    }
}

impl Traffic {
    /// No traffic yet, no budget exhausted.
    pub fn new() -> Traffic {
        Traffic {
            inner: Arc::default(),
            exhausted: CancellationToken::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cancelled when any budget runs out.
    pub fn exhausted_token(&self) -> CancellationToken {
        self.exhausted.clone()
    }

    /// The budget that ran out, if any.
    pub fn exhausted(&self) -> Option<String> {
        self.lock().report.exhausted.clone()
    }

    /// End the task: `why` names the provider and the budget.
    pub fn exhaust(&self, why: String) {
        let mut g = self.lock();
        if g.report.exhausted.is_none() {
            tracing::warn!(reason = %why, "model budget exhausted; ending the task");
            g.report.exhausted = Some(why);
        }
        drop(g);
        self.exhausted.cancel();
    }

    /// A copy of the counts so far.
    pub fn report(&self) -> TrafficReport {
        self.lock().report.clone()
    }

    /// Register `provider` so it shows in the report even with no traffic.
    pub fn register(&self, provider: &str) {
        self.lock()
            .report
            .providers
            .entry(provider.into())
            .or_default();
    }

    /// Count a new forwarded request of `up` bytes against `budget`. `Err` names the budget
    /// that would be exceeded (the request is then not forwarded).
    pub fn begin(&self, provider: &str, budget: &ModelBudget, up: u64) -> Result<(), String> {
        let mut g = self.lock();
        let p = g.report.providers.entry(provider.into()).or_default();
        if p.requests >= budget.requests {
            return Err(format!(
                "model provider `{provider}`: request budget of {} spent",
                budget.requests
            ));
        }
        if p.bytes_up + p.bytes_down + up > budget.total_bytes {
            return Err(over_total(provider, budget));
        }
        p.requests += 1;
        p.bytes_up += up;
        Ok(())
    }

    /// Count `n` response bytes; `Err` when the total budget is exceeded.
    pub fn down(&self, provider: &str, budget: &ModelBudget, n: u64) -> Result<(), String> {
        let mut g = self.lock();
        let p = g.report.providers.entry(provider.into()).or_default();
        p.bytes_down += n;
        if p.bytes_up + p.bytes_down > budget.total_bytes {
            return Err(over_total(provider, budget));
        }
        Ok(())
    }

    /// Record the upstream status of a forwarded request.
    pub fn status(&self, provider: &str, status: u16) {
        let mut g = self.lock();
        let p = g.report.providers.entry(provider.into()).or_default();
        *p.status.entry(status.to_string()).or_default() += 1;
    }

    /// Add the wall time of a finished request.
    pub fn time(&self, provider: &str, d: Duration) {
        let mut g = self.lock();
        let p = g.report.providers.entry(provider.into()).or_default();
        p.time_s = ((p.time_s + d.as_secs_f64()) * 1000.0).round() / 1000.0;
    }

    /// Record a refused request (method and path only; the path is capped and neutralised).
    pub fn refuse(&self, provider: &str, method: &str, path: &str, status: u16, why: &str) {
        let path =
            crate::untrusted::neutralise(&path.chars().take(MAX_PATH_KEPT).collect::<String>());
        let method = crate::untrusted::neutralise(&method.chars().take(16).collect::<String>());
        tracing::warn!(provider, %method, %path, status, why, "model proxy refused a request");
        let mut g = self.lock();
        let p = g.report.providers.entry(provider.into()).or_default();
        p.refused_count += 1;
        if p.refused.len() < MAX_REFUSED_KEPT {
            p.refused.push(Refused {
                method,
                path,
                status,
                why: why.into(),
            });
        }
    }
}

fn over_total(provider: &str, budget: &ModelBudget) -> String {
    format!(
        "model provider `{provider}`: total bytes budget of {} spent",
        crate::units::format_bytes(budget.total_bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_count_and_exhaust() {
        let t = Traffic::new();
        let b = ModelBudget {
            requests: 2,
            total_bytes: 100,
            ..ModelBudget::default()
        };
        assert!(t.begin("a", &b, 10).is_ok());
        assert!(t.down("a", &b, 50).is_ok());
        assert!(t.begin("a", &b, 50).unwrap_err().contains("total bytes"));
        assert!(t.begin("a", &b, 10).is_ok());
        assert!(t
            .begin("a", &b, 1)
            .unwrap_err()
            .contains("request budget of 2"));
        assert!(t.exhausted().is_none());
        t.exhaust("x".into());
        t.exhaust("y".into());
        assert_eq!(t.exhausted().as_deref(), Some("x"));
        assert!(t.exhausted_token().is_cancelled());
        let r = t.report();
        assert_eq!(r.providers["a"].requests, 2);
        assert_eq!(r.providers["a"].bytes_up, 20);
    }

    #[test]
    fn refused_paths_are_capped_and_neutralised() {
        let t = Traffic::new();
        t.refuse(
            "a",
            "GET",
            &format!("/x\u{1b}[31m{}", "y".repeat(500)),
            403,
            "route",
        );
        let r = t.report();
        let p = &r.providers["a"].refused[0];
        assert!(!p.path.contains('\u{1b}'));
        assert!(p.path.len() <= 2 * MAX_PATH_KEPT);
    }
}

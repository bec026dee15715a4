//! After the judge: the task scope beside the level's, the change's risk classification, and
//! the level's option to stop a green high-risk change before it is pushed.

use serde_json::json;

use super::tail::{End, Flow};
use super::task::TaskRun;
use crate::artifacts::State;
use crate::policy::risk::{classify, ChangeFacts};
use crate::policy::{ChangedFile, Risk, RiskLevel, ScopeVerdict, TaskScope};
use crate::vocab::Reason;

/// The reason a green high-risk task stops before pushing.
pub const HIGH_RISK: Reason = Reason::HighRisk;

/// The level's verdict, then the task's own scope: a level `blocked` wins; otherwise a task
/// scope breach (`out_of_scope`, `dependency_change`) is named before a level review rule.
pub(super) fn with_task_scope(
    level: ScopeVerdict,
    ts: &TaskScope,
    files: &[ChangedFile],
) -> ScopeVerdict {
    if matches!(level, ScopeVerdict::Blocked { .. }) {
        return level;
    }
    match crate::policy::task_scope::check(ts, files) {
        ScopeVerdict::Ok => level,
        task => task,
    }
}

/// The paths of the `high` rules that fired (what a `high_risk` stop names).
pub(super) fn high_paths(risk: &Risk) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    for f in risk.rules.iter().filter(|f| f.risk == RiskLevel::High) {
        for p in &f.paths {
            if !paths.contains(p) {
                paths.push(p.clone());
            }
        }
    }
    paths
}

impl TaskRun {
    /// The risk of the last attempt's change under the operator's rules.
    pub(super) fn risk(&self) -> Risk {
        let d = self.history.last_diff();
        classify(
            &self.ctx.adm.risk,
            &ChangeFacts {
                files: &d.files,
                lines: d.insertions + d.deletions,
            },
        )
    }

    /// Tail step `risk`: a green change classified `high` at a level with `stop_high_risk`
    /// stops `needs_human` / `high_risk` instead of being pushed.
    pub(super) fn high_risk_stop(&mut self, end: &End) -> Flow {
        let policy = &self.ctx.adm.policy;
        if end.state != State::Green || !policy.push || !policy.stop_high_risk {
            return Flow::Continue;
        }
        let risk = self.risk();
        if risk.level != RiskLevel::High {
            return Flow::Continue;
        }
        let names: Vec<&str> = risk
            .rules
            .iter()
            .filter(|f| f.risk == RiskLevel::High)
            .map(|f| f.name.as_str())
            .collect();
        self.events.emit(
            "high_risk_stop",
            json!({ "gate_reason": end.reason, "rules": names }),
        );
        self.ctx
            .progress
            .phase("risk", &format!("high ({}): not pushed", names.join(", ")));
        let message = format!(
            "the gate passed, but the change is high risk ({}); {} stops such changes before push",
            names.join(", "),
            policy.level
        );
        Flow::Ends(End::new(State::NeedsHuman, HIGH_RISK, Some(message)))
    }
}

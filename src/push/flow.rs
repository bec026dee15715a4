//! One task's push, start to end: check the ref, mint, push (at most once), propose the draft,
//! revoke. Synchronous and engine-free; the runner calls it after every container is gone.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use secrecy::SecretString;
use serde_json::{json, Value};

use super::config::{PrConfig, Remote};
use super::error::PushError;
use super::forge::{self, Opened, Proposal};
use super::git_push::{self, Target};
use super::mint::{self, Revoked, Scope};
use super::outcome::Pushed;
use super::plan::target_ref;
use super::record::{self, Record, Resume, Stage, RECORD_FORMAT};
use super::token::{rfc3339, Token};
use crate::secrets::Held;

/// Everything about the task the push needs.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    /// The task's id.
    pub task_id: &'a str,
    /// The task's title (the PR's title).
    pub title: &'a str,
    /// The task spec's `repo.url` and `repo.base`.
    pub repo: &'a str,
    /// The branch the PR targets.
    pub base: &'a str,
    /// The branch to push (`agent/...`).
    pub branch: &'a str,
    /// The commit to push.
    pub commit: &'a str,
    /// The host-owned repository holding `commit`.
    pub git_dir: &'a Path,
    /// `evidence.md`, the PR's body.
    pub evidence: &'a str,
    /// A link to the issue, when the task names one.
    pub issue: Option<&'a str>,
    /// `push.json` (the durable record) and `pr.json`.
    pub record: &'a Path,
    /// Where the PR request is written (`pr.json`).
    pub pr_file: &'a Path,
    /// A follow-up push (after CI feedback): the commit this task pushed before, which
    /// `commit` descends from. The branch moves forward (never forced) and the PR is kept.
    pub after: Option<&'a str>,
    /// Set when the task is cancelled: looked at before the token is minted and again before
    /// git pushes, so a cancelled task never pushes (`None`: nothing cancels this push).
    pub cancelled: Option<&'a AtomicBool>,
}

impl Job<'_> {
    /// `Err(Cancelled)` once the task's cancel has fired.
    fn check_cancel(&self) -> Result<(), PushError> {
        match self.cancelled {
            Some(c) if c.load(Ordering::SeqCst) => Err(PushError::Cancelled),
            _ => Ok(()),
        }
    }
}

/// What happened. A failure after the push (the PR, say) leaves `pushed` true.
#[derive(Debug, Default)]
pub struct Report {
    /// The remote has the branch (pushed now or by an earlier run).
    pub pushed: bool,
    /// An earlier run of this task had already pushed it: nothing was pushed now.
    pub earlier: bool,
    /// The PR opened (now or by an earlier run).
    pub pr: Option<Opened>,
    /// What failed, if anything did.
    pub error: Option<PushError>,
}

/// Event sink: `(kind, fields)`, no secrets in either.
pub type Emit<'e> = &'e mut dyn FnMut(&str, Value);

/// Push `job` to `remote`. Every secret minted is added to `held` before it is used.
pub fn run(remote: &Remote, job: &Job, held: &mut Held, now: SystemTime, emit: Emit) -> Report {
    let mut report = Report::default();
    if let Err(e) = mint_and_use(remote, job, held, now, emit, &mut report) {
        report.error = Some(e);
    }
    report
}

/// `refs/heads/<branch>`, or why airlock will not push it.
fn checked_ref(remote: &Remote, job: &Job) -> Result<String, PushError> {
    target_ref(job.branch, job.base, &remote.protected).map_err(|message| PushError::ForbiddenRef {
        branch: job.branch.into(),
        message,
    })
}

fn mint_and_use(
    remote: &Remote,
    job: &Job,
    held: &mut Held,
    now: SystemTime,
    emit: Emit,
    report: &mut Report,
) -> Result<(), PushError> {
    let refname = checked_ref(remote, job)?;
    if done_earlier(remote, job, &refname, report) {
        emit(
            "pushed",
            json!({ "remote": remote.push_url, "ref": refname, "earlier_run": true }),
        );
        return Ok(());
    }
    let scope = Scope {
        task_id: job.task_id,
        repo: job.repo,
        push_url: &remote.push_url,
        refname: &refname,
        access: mint::Access::Write,
    };
    job.check_cancel()?;
    let token = mint::mint(&remote.token, scope, now)?;
    held.add(token.secret());
    let expires_at = rfc3339(token.expires_at);
    emit(
        "token_minted",
        json!({ "provider": token.provider, "expires_at": expires_at, "scope": { "push_url": remote.push_url, "ref": refname } }),
    );
    let session = Session {
        remote,
        job,
        refname: &refname,
        token: &token,
        held,
    };
    // Minting can take a while (a vault, an App installation): a cancel that came meanwhile
    // stops the push before git runs; the token is revoked all the same.
    let result = job
        .check_cancel()
        .and_then(|()| session.push_and_propose(emit, report));
    match mint::revoke(&remote.token, scope, &token, &held.redactor) {
        Revoked::Yes => emit("token_revoked", json!({ "provider": token.provider })),
        Revoked::LeftToExpire => emit("token_left_to_expire", json!({ "expires_at": expires_at })),
        Revoked::Failed(e) => emit("token_revoke_failed", json!({ "error": e })),
    }
    result
}

/// Whether an earlier run of the task pushed and proposed everything: then no token is minted.
fn done_earlier(remote: &Remote, job: &Job, refname: &str, report: &mut Report) -> bool {
    let prev = record::read(job.record);
    match record::resume(prev.as_ref(), &remote.push_url, refname) {
        Resume::Pushed { commit, .. } if job.after == Some(commit.as_str()) => false,
        Resume::Pushed { pr, .. } if remote.pr.is_none() || pr.is_some() => {
            (report.pushed, report.earlier, report.pr) = (true, true, pr);
            true
        }
        _ => false,
    }
}

/// The span during which the token exists.
struct Session<'a> {
    remote: &'a Remote,
    job: &'a Job<'a>,
    refname: &'a str,
    token: &'a Token,
    held: &'a Held,
}

impl Session<'_> {
    fn push_and_propose(&self, emit: Emit, report: &mut Report) -> Result<(), PushError> {
        let mut rec = self.record();
        let earlier = self.push_once(&mut rec)?;
        (report.pushed, report.earlier, report.pr) = (true, earlier, rec.pr.clone());
        rec.stage = Stage::Pushed;
        rec.updated_at = crate::units::now_rfc3339();
        record::write(self.job.record, &rec)?;
        emit(
            "pushed",
            json!({ "remote": self.remote.push_url, "ref": self.refname, "commit": rec.commit, "earlier_run": earlier }),
        );
        let Some(cfg) = &self.remote.pr else {
            return Ok(());
        };
        let pr = match report.pr.clone() {
            Some(pr) => pr,
            None => {
                let opened = propose(cfg, self.job, self.token.secret(), emit)?;
                rec.pr = Some(opened.clone());
                record::write(self.job.record, &rec)?;
                report.pr = Some(opened.clone());
                opened
            }
        };
        let job = self.job;
        write_pr_file(
            job.pr_file,
            &json!({ "forge": cfg.forge, "number": pr.number, "url": pr.url, "draft": true, "branch": job.branch, "base": job.base }),
        )
    }

    fn record(&self) -> Record {
        Record {
            format_version: RECORD_FORMAT,
            task_id: self.job.task_id.into(),
            remote: self.remote.push_url.clone(),
            refname: self.refname.into(),
            commit: self.job.commit.into(),
            stage: Stage::Pushing,
            pr: None,
            updated_at: crate::units::now_rfc3339(),
        }
    }

    /// Push unless an earlier run of the task did (then `rec` takes its commit and PR and this
    /// returns `true`).
    fn push_once(&self, rec: &mut Record) -> Result<bool, PushError> {
        let prev = record::read(self.job.record);
        match record::resume(prev.as_ref(), &self.remote.push_url, self.refname) {
            Resume::Pushed { commit, pr } if self.job.after == Some(commit.as_str()) => {
                // The earlier commit is on the remote: this one goes on top of it.
                rec.pr = pr;
                self.push(rec)
            }
            Resume::Pushed { commit, pr } => {
                (rec.commit, rec.pr) = (commit, pr);
                Ok(true)
            }
            Resume::CheckRemote => match git_push::remote_ref(
                self.job.git_dir,
                self.target(),
                self.token.secret(),
                &self.held.redactor,
            )? {
                Some(found) => {
                    rec.commit = found;
                    Ok(true)
                }
                None => self.push(rec),
            },
            Resume::Fresh => self.push(rec),
        }
    }

    /// Record the intent durably, then push. `Ok(true)` when the remote already had it.
    fn push(&self, rec: &Record) -> Result<bool, PushError> {
        record::write(self.job.record, rec)?;
        let pushed = git_push::push(
            self.job.git_dir,
            self.target(),
            self.token.secret(),
            &self.held.redactor,
        )?;
        Ok(pushed == Pushed::AlreadyThere)
    }

    fn target(&self) -> Target<'_> {
        Target {
            url: &self.remote.push_url,
            refname: self.refname,
            commit: self.job.commit,
            auth_user: &self.remote.auth_user,
        }
    }
}

fn proposal<'a>(job: &'a Job) -> Proposal<'a> {
    Proposal {
        title: job.title,
        branch: job.branch,
        base: job.base,
        evidence: job.evidence,
        task_id: job.task_id,
        issue: job.issue,
    }
}

/// Open the draft and label it. A failed label is reported, not fatal.
fn propose(
    cfg: &PrConfig,
    job: &Job,
    token: &SecretString,
    emit: Emit,
) -> Result<Opened, PushError> {
    let req = forge::open_request(cfg, &proposal(job), token);
    let pr_err = |message: String| PushError::Pr {
        url: req.url.clone(),
        message,
    };
    let resp = req.send().map_err(pr_err)?;
    let opened = forge::parse_opened(cfg.forge, &resp).map_err(pr_err)?;
    emit(
        "pr_opened",
        json!({ "forge": cfg.forge, "number": opened.number, "url": opened.url, "draft": true }),
    );
    if let Some(l) = forge::labels_request(cfg, opened.number, token) {
        match l.send() {
            Ok(r) if r.status / 100 == 2 => emit("pr_labelled", json!({ "labels": cfg.labels })),
            Ok(r) => emit(
                "pr_label_failed",
                json!({ "status": r.status, "message": r.excerpt() }),
            ),
            Err(e) => emit("pr_label_failed", json!({ "message": e })),
        }
    }
    Ok(opened)
}

/// `--dry-run`: no token, no push; `pr.json` holds the exact requests, secrets masked.
pub fn dry_run(remote: &Remote, job: &Job) -> Result<Value, PushError> {
    let refname = checked_ref(remote, job)?;
    let placeholder = SecretString::from("not-minted-in-a-dry-run");
    let requests: Vec<Value> = remote
        .pr
        .iter()
        .flat_map(|cfg| {
            let open = forge::open_request(cfg, &proposal(job), &placeholder).redacted();
            let labels = forge::labels_request(cfg, "{number}", &placeholder).map(|r| r.redacted());
            std::iter::once(open).chain(labels)
        })
        .collect();
    let plan = json!({
        "dry_run": true,
        "push": { "url": remote.push_url, "refspec": format!("{}:{refname}", job.commit), "force": false,
                  "auth": "Authorization: Basic [REDACTED] (http.extraHeader through GIT_CONFIG_* environment)" },
        "token": { "provider": remote.token.provider.name(), "minted": false },
        "requests": requests,
    });
    write_pr_file(job.pr_file, &plan)?;
    Ok(plan)
}

fn write_pr_file(path: &Path, v: &Value) -> Result<(), PushError> {
    let bytes = serde_json::to_vec_pretty(v).unwrap_or_default();
    crate::nofollow::write_atomic(path, &bytes).map_err(|source| PushError::Io {
        op: "write",
        path: path.to_path_buf(),
        source,
    })
}

//! What a git push or ls-remote said, read into an outcome or a clear error. Pure.

use std::process::ExitStatus;

use super::error::PushError;
use super::git_push::Target;

/// git's exit status and its (already redacted, neutralised) output.
#[derive(Debug)]
pub struct GitOutput {
    /// git's exit status.
    pub status: ExitStatus,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
}

/// A push that went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// The remote took the ref now.
    Created,
    /// The remote already had the ref at this commit.
    AlreadyThere,
}

/// Read `git push --porcelain`: one `<flag>\t<from>:<to>\t<summary>` line per ref.
pub fn classify(out: &GitOutput, t: Target) -> Result<Pushed, PushError> {
    let line = out.stdout.lines().find_map(|l| {
        let mut parts = l.splitn(3, '\t');
        let (flag, refs, summary) = (parts.next()?, parts.next()?, parts.next().unwrap_or(""));
        refs.ends_with(&format!(":{}", t.refname))
            .then(|| (flag.chars().next().unwrap_or(' '), summary.to_string()))
    });
    match line {
        Some(('=', _)) if out.status.success() => Ok(Pushed::AlreadyThere),
        Some((' ' | '*', _)) if out.status.success() => Ok(Pushed::Created),
        Some(('!', summary)) => Err(PushError::Rejected {
            url: t.url.into(),
            refname: t.refname.into(),
            message: rejection(&summary, &out.stderr),
        }),
        _ => Err(failure("push", out, t)),
    }
}

/// Why the remote rejected a ref, with what it said (`remote:` lines).
fn rejection(summary: &str, stderr: &str) -> String {
    let said: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("remote: "))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let hint = if summary.contains("non-fast-forward") || summary.contains("fetch first") {
        " (the branch exists at another commit; airlock never forces)"
    } else {
        ""
    };
    let mut m = format!("{}{hint}", summary.trim());
    if !said.is_empty() {
        m.push_str(&format!("; the remote said: {}", said.join(" / ")));
    }
    m
}

/// A run that failed before any ref was updated: authentication, authorisation or transport.
pub fn failure(op: &'static str, out: &GitOutput, t: Target) -> PushError {
    let e = &out.stderr;
    let detail = last_lines(e);
    let url = t.url.to_string();
    if e.contains("error: 401")
        || e.contains("could not read Username")
        || e.contains("Authentication failed")
    {
        PushError::Unauthorized { url, detail }
    } else if e.contains("error: 403") {
        PushError::Forbidden { url, detail }
    } else {
        PushError::Git {
            op,
            url,
            message: detail,
        }
    }
}

/// The last few non-empty lines, short enough for a summary message.
fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let tail = lines[lines.len().saturating_sub(4)..].join(" / ");
    tail.chars().take(600).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::Reason;
    use std::os::unix::process::ExitStatusExt;

    const T: Target = Target {
        url: "https://h/r.git",
        refname: "refs/heads/agent/x",
        commit: "abc",
        auth_user: "u",
    };

    fn out(code: i32, stdout: &str, stderr: &str) -> GitOutput {
        GitOutput {
            status: ExitStatus::from_raw(code << 8),
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn porcelain_lines_are_read() {
        let ok = out(
            0,
            "To https://h/r.git\n*\tabc:refs/heads/agent/x\t[new branch]\nDone\n",
            "",
        );
        assert_eq!(classify(&ok, T).unwrap(), Pushed::Created);
        let same = out(
            0,
            "To https://h/r.git\n=\tabc:refs/heads/agent/x\t[up to date]\nDone\n",
            "",
        );
        assert_eq!(classify(&same, T).unwrap(), Pushed::AlreadyThere);
        let hook = out(
            1,
            "!\tabc:refs/heads/agent/x\t[remote rejected] (pre-receive hook declined)\n",
            "remote: token may not push refs/heads/agent/x\n",
        );
        let e = classify(&hook, T).unwrap_err();
        assert_eq!(e.reason(), Reason::PushRejected);
        assert!(e.to_string().contains("token may not push"), "{e}");
        let nff = out(
            1,
            "!\tabc:refs/heads/agent/x\t[rejected] (fetch first)\n",
            "",
        );
        assert!(classify(&nff, T)
            .unwrap_err()
            .to_string()
            .contains("never forces"));
    }

    #[test]
    fn http_failures_are_named() {
        let e = classify(
            &out(
                128,
                "",
                "fatal: could not read Username for 'https://h': terminal prompts disabled\n",
            ),
            T,
        )
        .unwrap_err();
        assert_eq!(e.reason(), Reason::PushUnauthorized);
        assert!(e.to_string().contains("HTTP 401"));
        let e = classify(&out(128, "", "fatal: unable to access 'https://h/r.git/': The requested URL returned error: 403\n"), T).unwrap_err();
        assert_eq!(e.reason(), Reason::PushForbidden);
        let e = classify(
            &out(
                128,
                "",
                "fatal: unable to access: Could not resolve host: h\n",
            ),
            T,
        )
        .unwrap_err();
        assert_eq!(e.reason(), Reason::PushFailed);
        assert!(e.to_string().contains("Could not resolve host"));
    }
}

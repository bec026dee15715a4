//! A `command` token provider for the tests: prints the token the test chose, and records each
//! call with the number of the task's containers that existed at that moment. Its revoke command
//! records whether it was handed the right token on stdin.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub struct Provider {
    pub dir: PathBuf,
    pub token: String,
}

const MINT: &str = r#"#!/bin/sh
d="$(dirname "$0")"
n=$(docker ps -aq --filter label=airlock.managed=true --filter "label=airlock.task=$AIRLOCK_TASK_ID" | wc -l)
echo "task=$AIRLOCK_TASK_ID ref=$AIRLOCK_PUSH_REF url=$AIRLOCK_PUSH_URL access=$AIRLOCK_TOKEN_ACCESS containers=$n" >> "$d/calls.log"
cat "$d/token.json"
"#;

const REVOKE: &str = r#"#!/bin/sh
d="$(dirname "$0")"
input=$(cat)
tok=$(sed -n 's/.*"token": *"\([^"]*\)".*/\1/p' "$d/token.json")
case "$input" in
  *"\"$tok\""*) echo revoked >> "$d/revokes.log" ;;
  *) echo wrong-token >> "$d/revokes.log" ;;
esac
"#;

impl Provider {
    /// A provider in `dir` that hands out `token`, claimed to expire at `expires_at`.
    pub fn new(dir: &Path, token: &str, expires_at: SystemTime) -> Provider {
        std::fs::create_dir_all(dir).unwrap();
        let out = serde_json::json!({ "token": token, "expires_at": humantime::format_rfc3339_seconds(expires_at).to_string() });
        std::fs::write(dir.join("token.json"), out.to_string()).unwrap();
        for (name, text) in [("mint.sh", MINT), ("revoke.sh", REVOKE)] {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Provider {
            dir: dir.to_path_buf(),
            token: token.into(),
        }
    }

    /// A provider whose command fails.
    pub fn failing(dir: &Path) -> Provider {
        let p = Provider::new(dir, "unused-token-value", SystemTime::now());
        std::fs::write(dir.join("mint.sh"), "#!/bin/sh\necho \"called\" >> \"$(dirname \"$0\")/calls.log\"\necho 'vault: permission denied' >&2\nexit 2\n").unwrap();
        p
    }

    /// `[remote.token]` for this provider.
    pub fn toml(&self) -> String {
        format!(
            "[remote.token]\nprovider = \"command\"\ncommand = [{:?}]\nrevoke_command = [{:?}]\nmax_ttl = \"1h\"\n",
            self.dir.join("mint.sh").display().to_string(),
            self.dir.join("revoke.sh").display().to_string()
        )
    }

    pub fn calls(&self) -> Vec<String> {
        lines(&self.dir.join("calls.log"))
    }

    pub fn revokes(&self) -> Vec<String> {
        lines(&self.dir.join("revokes.log"))
    }
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// A token with characters that URL and base64 encoding both change.
pub fn test_token() -> String {
    format!("airlock-test_{}+/x=", super::fake_github::hex(16))
}

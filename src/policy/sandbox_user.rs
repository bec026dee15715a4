//! `operator.toml` `[sandbox]`: the uid (and gid) every sandbox container runs as.
//!
//! The default is 65532 (distroless's `nonroot`), an id from the range Debian never gives host
//! accounts: a process that escaped the container would hold no host user's files. The first
//! login user's uid (1000) is the usual clash, so a uid that is a host account (or a group's gid)
//! is refused at start, naming the account.

use serde::{Deserialize, Serialize};

use super::files::Ctx;
use super::PolicyError;

pub use crate::sandbox::hardening::DEFAULT_SANDBOX_UID;

/// The sandbox identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SandboxUser {
    /// The uid (and gid) the containers run as.
    pub uid: u32,
}

impl Default for SandboxUser {
    fn default() -> Self {
        SandboxUser {
            uid: DEFAULT_SANDBOX_UID,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSandbox {
    uid: i64,
}

pub(super) fn sandbox_user(c: &Ctx, raw: Option<RawSandbox>) -> Result<SandboxUser, PolicyError> {
    let Some(r) = raw else {
        return Ok(SandboxUser::default());
    };
    // Not root, and below the ids user namespaces hand out (subuid ranges start at 100000 on
    // Debian); 65534 is `nobody`, shared with everything that drops privileges.
    if !(1..100_000).contains(&r.uid) || r.uid == 65534 {
        return Err(c.err(
            "sandbox.uid",
            format!(
                "{} is not accepted; accepted: 1 to 99999 except 65534 (nobody), an id no host \
                 account or group uses (default {DEFAULT_SANDBOX_UID})",
                r.uid
            ),
        ));
    }
    Ok(SandboxUser { uid: r.uid as u32 })
}

impl SandboxUser {
    /// Refuse a uid that is a host account or a gid that is a host group: a container escape
    /// would then own that account's files. `file` is where the setting came from.
    pub fn check_host(&self, file: &str) -> Result<(), PolicyError> {
        let err = |what: String| PolicyError {
            file: file.into(),
            field: Some("sandbox.uid".into()),
            message: format!(
                "{} is {what} on this host; containers would run as it. Set [sandbox] uid to an \
                 id no host account or group uses (default {DEFAULT_SANDBOX_UID})",
                self.uid
            ),
        };
        if let Ok(Some(u)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(self.uid)) {
            return Err(err(format!("the uid of host account `{}`", u.name)));
        }
        if let Ok(Some(g)) = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(self.uid)) {
            return Err(err(format!("the gid of host group `{}`", g.name)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_nobody_and_subuid_ranges_are_refused_with_what_is_accepted() {
        for uid in [0, -1, 65534, 100_000] {
            let e = sandbox_user(
                &Ctx {
                    file: "operator.toml",
                },
                Some(RawSandbox { uid }),
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains("sandbox.uid") && e.contains("accepted"), "{e}");
        }
        let ok = sandbox_user(
            &Ctx {
                file: "operator.toml",
            },
            Some(RawSandbox { uid: 4242 }),
        );
        assert_eq!(ok.unwrap().uid, 4242);
        assert_eq!(
            sandbox_user(
                &Ctx {
                    file: "operator.toml"
                },
                None
            )
            .unwrap(),
            SandboxUser::default()
        );
    }

    #[test]
    fn a_host_account_is_refused_naming_it() {
        // root (uid 0) always exists; the range check refuses it first, so ask the host check
        // directly.
        let e = SandboxUser { uid: 0 }
            .check_host("operator.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("host account `root`"), "{e}");
        // The default is no account on the machines airlock supports.
        SandboxUser::default().check_host("operator.toml").unwrap();
    }
}

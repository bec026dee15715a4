//! Which engine answers: dockerd or Podman's Docker-compatible service. Asked once per process
//! (at [`super::Engine::connect`]); `/info` (runtimes) is asked once and cached.

use bollard::models::SystemVersion;
use serde::{Deserialize, Serialize};

/// The engine implementation behind the Docker API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    /// Docker's dockerd (moby).
    Docker,
    /// Podman's `podman system service` (rootful).
    Podman,
}

impl EngineKind {
    /// `docker` or `podman`.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Docker => "docker",
            EngineKind::Podman => "podman",
        }
    }
}

/// What `/version` said, as recorded in `summary.json` (`engine`) and progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineInfo {
    /// Docker or Podman.
    pub kind: EngineKind,
    /// The engine's own version (e.g. `20.10.24`, `4.3.1`).
    pub version: String,
    /// The Docker API version it serves.
    pub api_version: String,
}

impl std::fmt::Display for EngineInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} (API {})",
            self.kind.as_str(),
            self.version,
            self.api_version
        )
    }
}

/// Podman names its component "Podman Engine"; dockerd names its "Engine".
pub fn classify(v: &SystemVersion) -> EngineInfo {
    let podman = v
        .components
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|c| c.name.to_ascii_lowercase().contains("podman"))
        || v.platform
            .as_ref()
            .is_some_and(|p| p.name.to_ascii_lowercase().contains("podman"));
    EngineInfo {
        kind: if podman {
            EngineKind::Podman
        } else {
            EngineKind::Docker
        },
        version: v.version.clone().unwrap_or_default(),
        api_version: v.api_version.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{SystemVersionComponents, SystemVersionPlatform};

    fn version(component: &str, platform: &str) -> SystemVersion {
        SystemVersion {
            platform: Some(SystemVersionPlatform {
                name: platform.into(),
            }),
            components: Some(vec![SystemVersionComponents {
                name: component.into(),
                version: "1".into(),
                details: None,
            }]),
            version: Some("4.3.1".into()),
            api_version: Some("1.41".into()),
            ..Default::default()
        }
    }

    #[test]
    fn podman_and_docker_are_told_apart_by_their_components() {
        let p = classify(&version("Podman Engine", "linux/amd64/debian-12"));
        assert_eq!(p.kind, EngineKind::Podman);
        assert_eq!(p.to_string(), "podman 4.3.1 (API 1.41)");
        assert_eq!(classify(&version("Engine", "")).kind, EngineKind::Docker);
        assert_eq!(
            classify(&version("Engine", "Docker Engine - Community")).kind,
            EngineKind::Docker
        );
    }
}

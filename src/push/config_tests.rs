use std::path::Path;

use super::*;
use crate::push::parse;

const GOOD: &str = r#"
[[remote]]
repo = "/srv/git/app.git"
push_url = "https://github.com/acme/app.git"
protected = ["main", "release/*"]
[remote.token]
provider = "github_app"
app_id = 42
installation_id = 7
private_key_file = "app.pem"
repository = "app"
[remote.pr]
forge = "github"
project = "acme/app"
labels = ["airlock"]

[[remote]]
repo = "/srv/git/other.git"
push_url = "http://127.0.0.1:9000/other.git"
auth_user = "oauth2"
[remote.token]
provider = "command"
command = ["/usr/local/bin/mint", "other"]
max_ttl = "15m"
"#;

fn field_of(text: &str) -> String {
    let e = parse(text, None).unwrap_err();
    format!("{}: {}", e.field.unwrap_or_default(), e.message)
}

#[test]
fn parses_both_providers() {
    let c = parse(GOOD, Some(Path::new("/etc/airlock"))).unwrap();
    assert!(!c.dry_run);
    let app = c.remote_for("/srv/git/app.git").unwrap();
    assert_eq!(app.auth_user, "x-access-token");
    match &app.token.provider {
        Provider::GithubApp(g) => {
            assert_eq!(g.app_id, "42");
            assert_eq!(g.private_key_file, Path::new("/etc/airlock/app.pem"));
            assert_eq!(g.api_url, GITHUB_API);
        }
        p => panic!("{p:?}"),
    }
    assert_eq!(app.pr.as_ref().unwrap().api_url, GITHUB_API);
    let other = c.remote_for("/srv/git/other.git").unwrap();
    assert_eq!(other.token.max_ttl, Duration::from_secs(900));
    assert!(
        matches!(&other.token.provider, Provider::Command(p) if p.timeout == DEFAULT_PROVIDER_TIMEOUT)
    );
    assert!(c.remote_for("/srv/git/unknown.git").is_none());
    assert!(parse("", None).unwrap().remotes.is_empty());
}

#[test]
fn fails_closed_naming_the_field() {
    let cases = [
        (
            GOOD.replace("protected =", "colour = \"red\"\nprotected ="),
            "colour",
        ),
        (
            GOOD.replace(
                "https://github.com/acme/app.git",
                "https://u:p@github.com/acme/app.git",
            ),
            "remote[0].push_url: ",
        ),
        (
            GOOD.replace(
                "https://github.com/acme/app.git",
                "http://github.com/acme/app.git",
            ),
            "remote[0].push_url",
        ),
        (
            GOOD.replace("provider = \"github_app\"", "provider = \"vault\""),
            "remote[0].token.provider",
        ),
        (
            GOOD.replace("repository = \"app\"", "repository = \"acme/app\""),
            "remote[0].token.repository",
        ),
        (
            GOOD.replace(
                "repository = \"app\"",
                "repository = \"app\"\ncommand = [\"x\"]",
            ),
            "remote[0].token.command",
        ),
        (
            GOOD.replace("installation_id = 7", ""),
            "remote[0].token.installation_id",
        ),
        (
            GOOD.replace(
                "command = [\"/usr/local/bin/mint\", \"other\"]",
                "command = []",
            ),
            "remote[1].token.command",
        ),
        (
            GOOD.replace("max_ttl = \"15m\"", "max_ttl = \"48h\""),
            "remote[1].token.max_ttl",
        ),
        (
            GOOD.replace("forge = \"github\"", "forge = \"bitbucket\""),
            "remote[0].pr.forge",
        ),
        (
            GOOD.replace("project = \"acme/app\"", "project = \"app\""),
            "remote[0].pr.project",
        ),
        (
            GOOD.replace("labels = [\"airlock\"]", "labels = [\"a,b\"]"),
            "remote[0].pr.labels[0]",
        ),
        (
            GOOD.replace("labels = [\"airlock\"]", "head_owner = \"evil:x\""),
            "remote[0].pr.head_owner",
        ),
        (
            GOOD.replace("labels = [\"airlock\"]", "head_owner = \"bot\"")
                .replace(
                    "forge = \"github\"",
                    "forge = \"gitlab\"\napi_url = \"https://gl.example/api/v4\"",
                ),
            "remote[0].pr.head_owner",
        ),
        (
            GOOD.replace("\"release/*\"", "\"refs/heads/x\""),
            "remote[0].protected[1]",
        ),
        (
            GOOD.replace("auth_user = \"oauth2\"", "auth_user = \"a:b\""),
            "remote[1].auth_user",
        ),
        (
            GOOD.replace("/srv/git/other.git", "/srv/git/app.git"),
            "remote[1].repo",
        ),
    ];
    for (text, want) in cases {
        let got = field_of(&text);
        assert!(
            got.starts_with(want) || got.contains(want),
            "want {want}, got {got}"
        );
    }
}

#[test]
fn gitea_and_gitlab_need_an_api_url() {
    let t = GOOD.replace("forge = \"github\"", "forge = \"gitlab\"");
    assert!(field_of(&t).starts_with("remote[0].pr.api_url"));
    let t = t.replace(
        "project = \"acme/app\"",
        "project = \"grp/sub/app\"\napi_url = \"https://gl.example/api/v4/\"",
    );
    let c = parse(&t, None).unwrap();
    let pr = c.remotes[0].pr.as_ref().unwrap();
    assert_eq!(
        (pr.forge, pr.api_url.as_str()),
        (Forge::Gitlab, "https://gl.example/api/v4")
    );
}

#[test]
fn a_fork_owner_names_the_pr_head() {
    let text = GOOD.replace("labels = [\"airlock\"]", "head_owner = \"airlock-bot\"");
    let c = parse(&text, None).unwrap();
    let pr = c.remotes[0].pr.as_ref().unwrap();
    assert_eq!(pr.head_owner.as_deref(), Some("airlock-bot"));
    assert_eq!(
        parse(GOOD, None).unwrap().remotes[0]
            .pr
            .as_ref()
            .unwrap()
            .head_owner,
        None
    );
}

#[test]
fn the_shipped_example_parses() {
    let text = include_str!("../../policies/push.example.toml");
    let c = parse(text, Some(Path::new("/etc/airlock/policies"))).unwrap();
    assert_eq!(c.remotes.len(), 1);
}

use serde_json::Value;

use super::*;
use crate::trigger::{gitea, github, gitlab, Parsed};

fn fixture(name: &str) -> Value {
    let p = format!(
        "{}/tests/fixtures/webhooks/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn event(p: Result<Parsed, String>) -> Event {
    match p.unwrap() {
        Parsed::Event(e) => *e,
        Parsed::Ignored(why) => panic!("ignored: {why}"),
    }
}

const CAPS: Caps = Caps {
    label_max: Some(Level::L4),
    comment_max: Some(Level::L4),
    untrusted_max: Level::L1,
};

fn rule(forge: Forge, repo: &'static str, trusted: &'static [String]) -> Rule<'static> {
    Rule {
        forge,
        repository: repo,
        label: Some("bug"),
        command: Some("/airlock"),
        trusted,
    }
}

#[test]
fn a_github_label_event_plans_the_template_level_for_an_owner() {
    let h: &[(&str, &str)] = &[("X-GitHub-Event", "issues")];
    let e = event(github::parse(h, &fixture("github-issues-labeled.json")));
    let r = rule(Forge::Github, "Codertocat/Hello-World", &[]);
    let p = plan(&r, &e, Level::L3, CAPS).unwrap();
    assert_eq!(
        (p.source, p.level, p.trusted),
        (Source::IssueLabel, Level::L3, true)
    );
    assert_eq!(p.title, "Spelling error in the README file");
    assert_eq!(
        p.issue_url.as_deref(),
        Some("https://github.com/Codertocat/Hello-World/issues/1")
    );
    assert_eq!(p.issue_key, "github:Codertocat/Hello-World#1");
    let other = Rule {
        label: Some("airlock"),
        ..r.clone()
    };
    assert!(plan(&other, &e, Level::L3, CAPS)
        .unwrap_err()
        .contains("airlock"));
    let elsewhere = rule(Forge::Github, "acme/app", &[]);
    assert!(plan(&elsewhere, &e, Level::L3, CAPS).is_err());
}

#[test]
fn untrusted_authors_and_commenters_are_capped() {
    let h: &[(&str, &str)] = &[("X-GitHub-Event", "issues")];
    let mut v = fixture("github-issues-labeled.json");
    v["issue"]["author_association"] = "NONE".into();
    let e = event(github::parse(h, &v));
    let r = rule(Forge::Github, "Codertocat/Hello-World", &[]);
    let p = plan(&r, &e, Level::L3, CAPS).unwrap();
    assert_eq!((p.level, p.trusted), (Level::L1, false));
    let hc: &[(&str, &str)] = &[("X-GitHub-Event", "issue_comment")];
    let mut c = fixture("github-issue_comment-created.json");
    c["comment"]["body"] = "/airlock add a test, cc @octocat".into();
    for (assoc, level) in [
        ("COLLABORATOR", Level::L4),
        ("MEMBER", Level::L4),
        ("CONTRIBUTOR", Level::L1),
        ("NONE", Level::L1),
    ] {
        c["comment"]["author_association"] = assoc.into();
        let p = plan(&r, &event(github::parse(hc, &c)), Level::L4, CAPS).unwrap();
        assert_eq!((p.source, p.level), (Source::Comment, level), "{assoc}");
        assert!(
            p.issue_text.contains("add a test, cc `@octocat`"),
            "{}",
            p.issue_text
        );
    }
    c["comment"]["body"] = "/airlocked".into();
    assert!(plan(&r, &event(github::parse(hc, &c)), Level::L4, CAPS).is_err());
}

#[test]
fn the_source_cap_lowers_the_level_and_a_missing_source_starts_nothing() {
    let h: &[(&str, &str)] = &[("X-GitHub-Event", "issues")];
    let e = event(github::parse(h, &fixture("github-issues-labeled.json")));
    let r = rule(Forge::Github, "Codertocat/Hello-World", &[]);
    let caps = Caps {
        label_max: Some(Level::L2),
        ..CAPS
    };
    assert_eq!(plan(&r, &e, Level::L4, caps).unwrap().level, Level::L2);
    let none = Caps {
        label_max: None,
        ..CAPS
    };
    assert!(plan(&r, &e, Level::L4, none)
        .unwrap_err()
        .contains("[sources]"));
}

#[test]
fn other_github_events_and_pull_request_comments_are_ignored() {
    let v = fixture("github-issues-labeled.json");
    let ping: &[(&str, &str)] = &[("X-GitHub-Event", "ping")];
    assert!(matches!(github::parse(ping, &v), Ok(Parsed::Ignored(_))));
    let mut c = fixture("github-issue_comment-created.json");
    c["issue"]["pull_request"] = serde_json::json!({"url": "x"});
    let hc: &[(&str, &str)] = &[("X-GitHub-Event", "issue_comment")];
    assert!(matches!(github::parse(hc, &c), Ok(Parsed::Ignored(_))));
    let mut edited = fixture("github-issue_comment-created.json");
    edited["action"] = "edited".into();
    assert!(matches!(github::parse(hc, &edited), Ok(Parsed::Ignored(_))));
}

static GITEA_TRUSTED: [String; 0] = [];

#[test]
fn gitea_trust_comes_from_the_operator_list() {
    let h: &[(&str, &str)] = &[("X-Gitea-Event", "issues")];
    let e = event(gitea::parse(
        Forge::Gitea,
        h,
        &fixture("gitea-issues-label_updated.json"),
    ));
    let r = Rule {
        label: Some("airlock"),
        ..rule(Forge::Gitea, "gitea/webhooks", &GITEA_TRUSTED)
    };
    assert_eq!(plan(&r, &e, Level::L3, CAPS).unwrap().level, Level::L1);
    let trusted = vec!["Gitea".to_string()];
    let r = Rule {
        trusted: &trusted,
        ..r
    };
    let p = plan(&r, &e, Level::L3, CAPS).unwrap();
    assert_eq!(
        (p.level, p.issue_key.as_str()),
        (Level::L3, "gitea:gitea/webhooks#1")
    );
    let hc: &[(&str, &str)] = &[("X-Forgejo-Event", "issue_comment")];
    let c = event(gitea::parse(
        Forge::Forgejo,
        hc,
        &fixture("gitea-issue_comment-created.json"),
    ));
    let p = plan(
        &Rule {
            forge: Forge::Forgejo,
            ..r
        },
        &c,
        Level::L3,
        CAPS,
    )
    .unwrap();
    assert_eq!((p.source, p.level), (Source::Comment, Level::L3));
    assert!(p.issue_text.contains("please"));
}

#[test]
fn gitlab_label_additions_and_issue_notes() {
    let h: &[(&str, &str)] = &[("X-Gitlab-Event", "Issue Hook")];
    let e = event(gitlab::parse(h, &fixture("gitlab-issue-hook.json")));
    assert_eq!(
        e.kind,
        Kind::Labeled {
            labels: vec!["Platform".into()]
        }
    );
    assert_eq!(e.issue.author, None, "author 51 is not the acting user 42");
    let trusted = vec!["user1".to_string()];
    let r = Rule {
        label: Some("Platform"),
        ..rule(Forge::Gitlab, "gitlabhq/gitlab-test", &[])
    };
    let r = Rule {
        trusted: &trusted,
        ..r
    };
    assert_eq!(
        plan(&r, &e, Level::L3, CAPS).unwrap().level,
        Level::L1,
        "unknown author"
    );
    let api = Rule {
        label: Some("API"),
        ..r.clone()
    };
    assert!(
        plan(&api, &e, Level::L3, CAPS).is_err(),
        "API was there before"
    );
    let hn: &[(&str, &str)] = &[("X-Gitlab-Event", "Note Hook")];
    let mut n = fixture("gitlab-note-hook-issue.json");
    n["object_attributes"]["note"] = "/airlock go".into();
    let e = event(gitlab::parse(hn, &n));
    let r = Rule {
        repository: "gitlab-org/gitlab-test",
        ..r
    };
    let p = plan(&r, &e, Level::L3, CAPS).unwrap();
    assert_eq!((p.source, p.level), (Source::Comment, Level::L3));
    assert_eq!(
        p.issue_url.as_deref(),
        Some("http://example.com/gitlab-org/gitlab-test/-/issues/17")
    );
}

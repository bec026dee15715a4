//! Table-driven admission: every source × requested level × repo rule × author, plus escalation
//! attempts and loosened limits. Pure: no engine, no files but the embedded policies.

use super::{admit, load_embedded, Policies, RepoRule, Source, Trigger};
use crate::spec::{parse_str, Level, TaskSpec};
use crate::vocab::Reason;

fn spec(level: Level, url: &str, limits: &str) -> TaskSpec {
    let text = format!(
        "title = \"t\"\nlevel = \"{level}\"\n[repo]\nurl = \"{url}\"\nbase = \"main\"\n[issue]\ntext = \"x\"\n[agent]\nimage = \"i\"\ncommand = [\"a\"]\n{}\n{limits}",
        if level >= Level::L2 { "[gate]\ncommands = [[\"g\"]]" } else { "" }
    );
    parse_str(&text, std::path::Path::new("/tmp/t.toml")).unwrap()
}

/// Policies with a repo rule capping `https://git.example/small/*` at L1.
fn policies() -> Policies {
    let mut p = load_embedded().unwrap();
    p.operator.repos.insert(
        0,
        RepoRule {
            pattern: "https://git.example/small/*".into(),
            max_level: Level::L1,
            sources: None,
        },
    );
    // The shipped rule serves only the CLI; these tests name the example host for every source.
    p.operator.repos.push(RepoRule {
        pattern: "https://git.example/**".into(),
        max_level: Level::L4,
        sources: None,
    });
    p
}

/// The expected decision, computed independently of `admit` from the shipped operator.toml.
fn expected(
    p: &Policies,
    source: Source,
    level: Level,
    url: &str,
    trusted: bool,
) -> Result<(), Reason> {
    let source_max = p.operator.sources[source.key()];
    if level > source_max {
        return Err(Reason::LevelAboveSource);
    }
    let repo_max = if url.starts_with("https://git.example/small/") {
        Level::L1
    } else {
        Level::L4
    };
    if level > repo_max {
        return Err(Reason::LevelAboveRepo);
    }
    if !trusted && level > p.operator.untrusted_author_max {
        return Err(Reason::UntrustedAuthor);
    }
    Ok(())
}

#[test]
fn every_source_level_repo_and_author() {
    let p = policies();
    let urls = [
        "https://git.example/big/app.git",
        "https://git.example/small/app.git",
    ];
    let mut cases = 0;
    for source in Source::ALL {
        for level in Level::ALL {
            for url in urls {
                for trusted in [true, false] {
                    let got = admit(
                        &spec(level, url, ""),
                        &p,
                        Trigger {
                            source,
                            author_trusted: trusted,
                        },
                    );
                    let want = expected(&p, source, level, url, trusted);
                    match (&got, want) {
                        (Ok(a), Ok(())) => assert_eq!(a.level, level),
                        (Err(r), Err(code)) => assert_eq!(r.reason, code, "{source:?} {level} {url} trusted={trusted}: {}", r.message),
                        _ => panic!("{source:?} {level} {url} trusted={trusted}: got {got:?}, want {want:?}"),
                    }
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 5 * 5 * 2 * 2);
}

#[test]
fn cli_cannot_start_l4_and_untrusted_authors_are_capped() {
    let p = policies();
    let url = "https://git.example/big/app.git";
    let r = admit(&spec(Level::L4, url, ""), &p, Trigger::cli()).unwrap_err();
    assert_eq!(r.reason, Reason::LevelAboveSource);
    assert!(r.message.contains("operator.toml"), "{}", r.message);
    let untrusted = Trigger {
        source: Source::IssueLabel,
        author_trusted: false,
    };
    assert_eq!(
        admit(&spec(Level::L3, url, ""), &p, untrusted)
            .unwrap_err()
            .reason,
        Reason::UntrustedAuthor
    );
    assert!(admit(&spec(Level::L1, url, ""), &p, untrusted).is_ok());
}

#[test]
fn unknown_repo_is_refused() {
    let mut p = policies();
    p.operator
        .repos
        .retain(|r| r.pattern != "**" && r.pattern != "https://git.example/**");
    let r = admit(
        &spec(Level::L1, "https://elsewhere.example/x.git", ""),
        &p,
        Trigger::cli(),
    )
    .unwrap_err();
    assert_eq!(r.reason, Reason::RepoNotAllowed);
}

#[test]
fn limits_may_only_tighten() {
    let p = policies();
    let url = "https://git.example/big/app.git";
    let ok = admit(
        &spec(
            Level::L2,
            url,
            "[limits]\ntimeout = \"1m\"\nattempts = 2\nmemory = \"64m\"\npids = 10\ncpus = 0.5",
        ),
        &p,
        Trigger::cli(),
    )
    .unwrap();
    assert_eq!(
        (
            ok.limits.timeout.as_secs(),
            ok.limits.attempts,
            ok.limits.memory,
            ok.limits.pids
        ),
        (60, 2, 64 << 20, 10)
    );
    for (field, loose) in [
        ("timeout", "timeout = \"99h\""),
        ("attempts", "attempts = 99"),
        ("memory", "memory = \"64g\""),
        ("pids", "pids = 100000"),
        ("cpus", "cpus = 64.0"),
    ] {
        let r = admit(
            &spec(Level::L2, url, &format!("[limits]\n{loose}")),
            &p,
            Trigger::cli(),
        )
        .unwrap_err();
        assert_eq!(r.reason, Reason::LimitAboveCeiling);
        assert!(
            r.message.contains(&format!("limits.{field}")) && r.message.contains("ceiling"),
            "{}",
            r.message
        );
    }
}

#[test]
fn gate_rules_follow_the_level() {
    let p = policies();
    let url = "https://git.example/big/app.git";
    let mut no_gate = spec(Level::L2, url, "");
    no_gate.gate = None;
    assert_eq!(
        admit(&no_gate, &p, Trigger::cli()).unwrap_err().reason,
        Reason::GateRequired
    );
    let mut l0 = spec(Level::L0, url, "");
    l0.gate = spec(Level::L2, url, "").gate;
    assert_eq!(
        admit(&l0, &p, Trigger::cli()).unwrap_err().reason,
        Reason::GateNotAllowed
    );
    assert!(
        !admit(&spec(Level::L1, url, ""), &p, Trigger::cli())
            .unwrap()
            .run_gate
    );
}

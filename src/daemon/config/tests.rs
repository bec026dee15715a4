use std::path::Path;
use std::time::Duration;

use super::validate::parse_webhook;
use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_str(text, Path::new("/etc/airlock/airlock.toml"))
}

fn field_of(text: &str) -> (Option<String>, String) {
    let e = parse(text).unwrap_err();
    let shown = e.to_string();
    assert!(shown.starts_with("/etc/airlock/airlock.toml: "), "{shown}");
    (e.field, shown)
}

#[test]
fn an_empty_config_gets_the_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.socket, Path::new(DEFAULT_SOCKET));
    assert_eq!(c.state_dir, Path::new(DEFAULT_STATE_DIR));
    assert_eq!(
        c.artifacts_dir,
        Path::new(DEFAULT_STATE_DIR).join("artifacts")
    );
    assert_eq!(c.concurrency, DEFAULT_CONCURRENCY);
    assert!(!c.author_trusted);
    assert!(c.tcp.is_none() && c.policies_dir.is_none());
    assert_eq!(c.shutdown.mode, ShutdownMode::Cancel);
    assert_eq!(c.recovery.sweep, Sweep::All);
    assert!(!c.recovery.requeue_interrupted);
    assert_eq!(c.api, DEFAULT_API);
}

#[test]
fn the_shipped_example_is_valid() {
    let text = include_str!("../../../examples/airlock.toml");
    let c = parse(text).unwrap();
    assert!(c.concurrency >= 1);
}

#[test]
fn a_full_config() {
    let c = parse(
        r#"
socket = "/run/a.sock"
socket_group = "airlock"
state_dir = "/srv/state"
policies_dir = "/etc/airlock/policies"
concurrency = 4
author_trusted = true
[tcp]
listen = "127.0.0.1:7878"
token_file = "/etc/airlock/token"
[retention]
max_age = "7d"
max_tasks = 100
[shutdown]
mode = "drain"
timeout = "2m"
[recovery]
sweep = "owned"
sweep_interval = "15s"
requeue_interrupted = true
[notify]
command = ["/usr/local/bin/notify", "--x"]
webhook = "http://127.0.0.1:9000/hook"
timeout = "5s"
"#,
    )
    .unwrap();
    assert_eq!(c.concurrency, 4);
    assert_eq!(c.artifacts_dir, Path::new("/srv/state/artifacts"));
    assert_eq!(c.tcp.unwrap().listen.port(), 7878);
    assert_eq!(c.retention.max_tasks, Some(100));
    assert_eq!(c.retention.max_age, Some(Duration::from_secs(7 * 86400)));
    assert_eq!(c.shutdown.mode, ShutdownMode::Drain);
    assert_eq!(c.shutdown.timeout, Duration::from_secs(120));
    assert_eq!(c.recovery.sweep, Sweep::Owned);
    assert_eq!(c.recovery.sweep_interval, Some(Duration::from_secs(15)));
    assert_eq!(
        c.notify.webhook.unwrap().to_string(),
        "http://127.0.0.1:9000/hook"
    );
}

#[test]
fn unknown_keys_name_their_table() {
    assert_eq!(field_of("concurency = 2").0.as_deref(), Some("concurency"));
    let (field, _) =
        field_of("[tcp]\nlisten = \"127.0.0.1:1\"\ntoken_file = \"/t\"\ntoken = \"x\"\n");
    assert_eq!(field.as_deref(), Some("tcp.token"));
    let (field, _) = field_of("[notify]\nurl = \"http://x\"\n");
    assert_eq!(field.as_deref(), Some("notify.url"));
}

#[test]
fn bad_values_name_the_field() {
    let cases = [
        ("concurrency = 0", "concurrency"),
        ("concurrency = 1000", "concurrency"),
        ("state_dir = \"relative/dir\"", "state_dir"),
        ("socket = \"airlock.sock\"", "socket"),
        ("socket_group = \"a b\"", "socket_group"),
        (
            "[tcp]\nlisten = \"localhost\"\ntoken_file = \"/t\"",
            "tcp.listen",
        ),
        (
            "[tcp]\nlisten = \"127.0.0.1:1\"\ntoken_file = \"t\"",
            "tcp.token_file",
        ),
        ("[retention]\nmax_tasks = 0", "retention.max_tasks"),
        ("[retention]\nmax_age = \"soon\"", "retention.max_age"),
        ("[shutdown]\nmode = \"later\"", "shutdown.mode"),
        ("[shutdown]\ntimeout = \"2d\"", "shutdown.timeout"),
        ("[recovery]\nsweep = \"some\"", "recovery.sweep"),
        ("[api]\nmax_connections = 0", "api.max_connections"),
        ("[api]\nmax_queued = 0", "api.max_queued"),
        ("[api]\nheader_timeout = \"0s\"", "api.header_timeout"),
        ("[api]\nbody_timeout = \"1h\"", "api.body_timeout"),
        (
            "[api]\nmax_followers = 2\nmax_followers_per_task = 3",
            "api.max_followers_per_task",
        ),
        (
            "[recovery]\nsweep_interval = \"0s\"",
            "recovery.sweep_interval",
        ),
        (
            "[recovery]\nsweep_interval = \"2h\"",
            "recovery.sweep_interval",
        ),
        ("[notify]\ncommand = []", "notify.command"),
        ("[notify]\ncommand = [\"notify-send\"]", "notify.command"),
        (
            "[notify]\nwebhook = \"https://example.org/x\"",
            "notify.webhook",
        ),
    ];
    for (text, field) in cases {
        assert_eq!(field_of(text).0.as_deref(), Some(field), "{text}");
    }
}

#[test]
fn wrong_types_are_errors() {
    let (_, shown) = field_of("concurrency = \"two\"");
    assert!(
        shown.contains("concurrency") || shown.contains("integer"),
        "{shown}"
    );
}

#[test]
fn webhooks() {
    let w = parse_webhook("http://hooks.local").unwrap();
    assert_eq!(
        (w.host.as_str(), w.port, w.path.as_str()),
        ("hooks.local", 80, "/")
    );
    let w = parse_webhook("http://[::1]:8080/a/b?c=d").unwrap();
    assert_eq!(
        (w.host.as_str(), w.port, w.path.as_str()),
        ("::1", 8080, "/a/b?c=d")
    );
    for bad in [
        "http://",
        "http://u:p@h/",
        "http://h:port/",
        "ftp://h/",
        "http://h/a b",
    ] {
        assert!(parse_webhook(bad).is_err(), "{bad}");
    }
}

#[test]
fn tokens_must_be_private_and_long() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("airlock.toml");
    let t = dir.path().join("token");
    std::fs::write(&t, "0123456789abcdef0123\n").unwrap();
    std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = load_token(&t, &cfg).unwrap_err();
    assert!(e.to_string().contains("chmod 600"), "{e}");
    std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o600)).unwrap();
    use secrecy::ExposeSecret;
    assert_eq!(
        load_token(&t, &cfg).unwrap().expose_secret(),
        "0123456789abcdef0123"
    );
    std::fs::write(&t, "short\n").unwrap();
    assert_eq!(
        load_token(&t, &cfg).unwrap_err().field.as_deref(),
        Some("tcp.token_file")
    );
}

#[test]
fn a_top_level_trigger_after_tcp_is_named_trigger_not_tcp_trigger() {
    let text = "[tcp]\nlisten = \"127.0.0.1:1\"\ntoken_file = \"/t\"\n\n[[trigger]]\nforge = \"github\"\nsecret_file = \"/s\"\nrepository = \"o/r\"\ntemplate = \"/t.toml\"\nlable = \"x\"\n";
    let (field, shown) = field_of(text);
    assert_eq!(field.as_deref(), Some("trigger.lable"), "{shown}");
    let (field, shown) = field_of("[tcp]\nlisten = \"127.0.0.1:1\"\ntoken_file = \"/t\"\n\n[[triggers]]\nforge = \"github\"\n");
    assert_eq!(field.as_deref(), Some("triggers"), "{shown}");
}

#[test]
fn a_template_that_is_not_toml_names_the_field_and_shows_the_line() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "0123456789abcdef0123\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let template = dir.path().join("t.toml");
    std::fs::write(&template, "level = \"L1\"\n[repo\nurl = 1\n").unwrap();
    let text = format!(
        "[tcp]\nlisten = \"127.0.0.1:1\"\ntoken_file = \"/t\"\n\n[[trigger]]\nforge = \"github\"\nsecret_file = \"{}\"\nrepository = \"o/r\"\nlabel = \"airlock\"\ntemplate = \"{}\"\n",
        secret.display(),
        template.display()
    );
    let (field, shown) = field_of(&text);
    assert_eq!(field.as_deref(), Some("trigger[0].template"), "{shown}");
    let lines: Vec<&str> = shown.lines().collect();
    let at = lines.iter().position(|l| l.contains("[repo")).unwrap_or(0);
    assert!(at > 0 && lines[at + 1].contains('^'), "{shown}");
}

#[test]
fn toml_errors_keep_the_snippet_and_caret_on_their_own_lines() {
    let (_, shown) = field_of("[retention]\nmax_age = \"1d\"\nbogus = 1\n");
    let lines: Vec<&str> = shown.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("bogus = 1"))
        .unwrap_or(0);
    assert!(at > 0, "{shown}");
    assert!(lines[at + 1].contains('^'), "{shown}");
    assert!(
        !lines[at].contains("unknown field"),
        "folded onto one line: {shown}"
    );
}

#[test]
fn a_shared_queue_gets_lease_defaults_and_refuses_passwords_in_the_url() {
    let c = parse("[queue]\nurl = \"postgres://airlock@127.0.0.1:5432/airlock\"\n").unwrap();
    let q = c.queue.unwrap();
    assert_eq!(
        (q.lease, q.heartbeat),
        (Duration::from_secs(60), Duration::from_secs(15))
    );
    assert_eq!(q.requeues, 2);
    assert!(c.artifacts.is_none());
    let (field, shown) = field_of("[queue]\nurl = \"postgres://airlock:hunter2@db/airlock\"\n");
    assert_eq!(field.as_deref(), Some("queue.url"));
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("password_file"), "{shown}");
    let (field, _) = field_of("[queue]\nurl = \"postgres://a@db/x?password=hunter2\"\n");
    assert_eq!(field.as_deref(), Some("queue.url"));
    let (field, _) = field_of("[queue]\nurl = \"mysql://a@db/x\"\n");
    assert_eq!(field.as_deref(), Some("queue.url"));
    let (field, _) =
        field_of("[queue]\nurl = \"postgres://a@db/x\"\nlease = \"10s\"\nheartbeat = \"5s\"\n");
    assert_eq!(field.as_deref(), Some("queue.heartbeat"));
    let (field, _) = field_of("[queue]\nurl = \"postgres://a@db/x\"\nlease = \"1s\"\n");
    assert_eq!(field.as_deref(), Some("queue.lease"));
    let (field, _) = field_of("[queue]\nurl = \"postgres://a@db/x\"\nbogus = 1\n");
    assert_eq!(field.as_deref(), Some("queue.bogus"));
}

#[test]
fn artifact_stores_are_s3_with_credentials_or_a_shared_dir() {
    let c = parse("[artifacts]\nurl = \"file:///srv/airlock\"\n").unwrap();
    assert_eq!(
        c.artifacts,
        Some(ArtifactStore::File("/srv/airlock".into()))
    );
    let c = parse("[artifacts]\nurl = \"s3://my-bucket/air/lock/\"\nendpoint = \"http://127.0.0.1:9000\"\ncredentials_file = \"/etc/airlock/s3.toml\"\n").unwrap();
    let Some(ArtifactStore::S3(s3)) = c.artifacts else {
        panic!()
    };
    assert_eq!(
        (s3.bucket.as_str(), s3.prefix.as_str(), s3.region.as_str()),
        ("my-bucket", "air/lock", "us-east-1")
    );
    for (text, want) in [
        ("url = \"s3://my-bucket/p\"\n", "artifacts.credentials_file"),
        (
            "url = \"s3://B/p\"\ncredentials_file = \"/c\"\n",
            "artifacts.url",
        ),
        ("url = \"gs://b/p\"\n", "artifacts.url"),
        ("url = \"file://relative\"\n", "artifacts.url"),
        (
            "url = \"s3://bucket/p\"\ncredentials_file = \"/c\"\nendpoint = \"ftp://x\"\n",
            "artifacts.endpoint",
        ),
    ] {
        let (field, _) = field_of(&format!("[artifacts]\n{text}"));
        assert_eq!(field.as_deref(), Some(want), "{text}");
    }
}

//! Task ids, session ids and branch slugs. Ids become container names, paths and branch names,
//! so they are generated from a fixed alphabet and validated when supplied.

/// Random lowercase hex of `n` bytes from the kernel's CSPRNG (`getrandom(2)`, which blocks
/// until the pool is seeded). These values name containers and stand in for model keys, so a
/// predictable one is never returned: a kernel without a random source is a fatal fault.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    if let Err(e) = getrandom::fill(&mut buf) {
        panic!("the kernel's random source (getrandom) failed: {e}; airlock cannot name its containers or keys safely");
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// `YYYYMMDD-HHMMSS-xxxxxx` (UTC): sortable and unique enough for one runner.
pub fn new_task_id() -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let digits: String = now.chars().filter(char::is_ascii_digit).collect();
    format!("{}-{}-{}", &digits[..8], &digits[8..14], random_hex(3))
}

/// Whether `id` is safe as a container name part, a path component and a branch part.
pub fn valid_task_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !id.starts_with('-')
}

/// A branch slug from a title: `[a-z0-9-]`, at most 40 chars, no leading/trailing/double dash.
pub fn slug(title: &str) -> String {
    let mut s = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            s.push(c);
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    let mut s: String = s.chars().take(40).collect();
    while s.ends_with('-') {
        s.pop();
    }
    if s.is_empty() {
        s.push_str("task");
    }
    s
}

/// `agent/<task>-<slug>`.
pub fn branch_name(task_id: &str, title: &str) -> String {
    format!("agent/{task_id}-{}", slug(title))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_safe_and_short() {
        assert_eq!(slug("Add a delete command"), "add-a-delete-command");
        assert_eq!(slug("  ../../etc; rm -rf / `x` "), "etc-rm-rf-x");
        assert_eq!(slug("Ünïcode — only!!"), "n-code-only");
        assert_eq!(slug("!!!"), "task");
        assert!(slug(&"word ".repeat(30)).len() <= 40);
        assert!(!slug(&("a".repeat(39) + " b")).ends_with('-'));
    }

    #[test]
    fn random_hex_is_random() {
        let a = random_hex(16);
        assert_eq!(a.len(), 32);
        assert_ne!(a, "0".repeat(32));
        assert_ne!(a, random_hex(16));
    }

    #[test]
    fn task_ids_are_valid() {
        let id = new_task_id();
        assert!(valid_task_id(&id), "{id}");
        assert!(!valid_task_id("../x"));
        assert!(!valid_task_id("-x"));
    }
}

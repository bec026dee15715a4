//! The evidence's "CI on the forge" section: each wait for the forge's CI on a pushed commit
//! (`summary.ci[]`), with the failing or pending jobs' links and the parsed failures.

use std::fmt::Write;

use super::evidence_md as md;
use crate::artifacts::Summary;
use crate::gate::FailureOrigin;

const FAILURES_SHOWN: usize = 10;
const MESSAGE_CHARS: usize = 120;

/// A link from the forge, shown only when it is a plain https URL (an autolink in `<>`).
fn link(url: &str) -> Option<String> {
    let plain = url.starts_with("https://")
        && url.len() <= 300
        && url
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'*+,;=%".contains(c));
    plain.then(|| format!("<{url}>"))
}

pub fn section(md: &mut String, s: &Summary) {
    if s.ci.is_empty() {
        return;
    }
    let _ = writeln!(md, "## CI on the forge\n");
    for (i, r) in s.ci.iter().enumerate() {
        let commit: String = r.commit.chars().take(12).collect();
        let _ = writeln!(
            md,
            "- wait {}: {} on {} after {}s{}",
            i + 1,
            md::code(&r.result),
            md::code(&commit),
            r.waited_s,
            r.error
                .as_deref()
                .map(|e| format!(" ({})", md::text(&md::clip(e, MESSAGE_CHARS))))
                .unwrap_or_default()
        );
        for j in &r.jobs {
            let url = j.url.as_deref().and_then(link).unwrap_or_default();
            let _ = writeln!(md, "  - job {} {url}", md::code(&j.name));
        }
        for f in r.failures.iter().take(FAILURES_SHOWN) {
            let what = f.test_id.as_deref().unwrap_or(&f.tool);
            let origin = match f.origin {
                Some(FailureOrigin::Preexisting) => {
                    " (pre-existing: the base commit's CI fails it too)"
                }
                _ => "",
            };
            let _ = writeln!(
                md,
                "  - {}: {}{origin}",
                md::code(what),
                md::text(&md::clip(&f.message, MESSAGE_CHARS))
            );
        }
        if r.failures.len() > FAILURES_SHOWN {
            let _ = writeln!(md, "  - … and {} more", r.failures.len() - FAILURES_SHOWN);
        }
    }
    let _ = writeln!(
        md,
        "\nGreen CI is only as strong as what the branch could not change: see the README's \"Green is not proof\".\n"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_https_links_are_shown() {
        assert_eq!(
            link("https://github.com/a/b/runs/4").as_deref(),
            Some("<https://github.com/a/b/runs/4>")
        );
        assert_eq!(link("javascript:alert(1)"), None);
        assert_eq!(link("https://x/<img src=x>"), None);
        assert_eq!(link("https://x/a b"), None);
    }
}

//! Path patterns, one syntax for task specs and policy files (`scope`, protected paths, risk
//! rules, `[[repos]]`): globs where `*` stays within a path segment and `**` crosses them. A
//! leaf.

use globset::{Glob, GlobBuilder, GlobMatcher};

/// Compile a path pattern. `*` stays within one path segment; `**` crosses them.
pub fn compile(pattern: &str) -> Result<GlobMatcher, String> {
    if pattern.trim().is_empty() {
        return Err("empty pattern".into());
    }
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|g: Glob| g.compile_matcher())
        .map_err(|e| format!("`{pattern}` is not a valid pattern: {e}"))
}

//! The evidence's "Model traffic" section: counts only, never bodies, never keys. Every value
//! that came from the sandbox (refused paths and methods) is escaped.

use std::fmt::Write;

use super::evidence_md as md;
use crate::artifacts::Summary;

/// Append the section when the task had model egress.
pub fn section(out: &mut String, s: &Summary) {
    let Some(t) = &s.model_traffic else { return };
    let _ = writeln!(out, "## Model traffic\n");
    let _ = writeln!(
        out,
        "| provider | requests | status | bytes up | bytes down | time | refused |\n|---|---|---|---|---|---|---|"
    );
    for (name, p) in &t.providers {
        let status: Vec<String> = p.status.iter().map(|(c, n)| format!("{c}×{n}")).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.1}s | {} |",
            md::code(name),
            p.requests,
            md::text(&status.join(" ")),
            p.bytes_up,
            p.bytes_down,
            p.time_s,
            p.refused_count
        );
    }
    for (name, p) in &t.providers {
        for r in &p.refused {
            let line = format!("{} {}", r.method, md::clip(&r.path, 120));
            let _ = writeln!(
                out,
                "- refused {}: {} → {} ({})",
                md::code(name),
                md::code(&line),
                r.status,
                md::text(&r.why)
            );
        }
    }
    if let Some(why) = &t.exhausted {
        let _ = writeln!(out, "\n**Budget exhausted:** {}", md::text(why));
    }
    let _ = writeln!(out);
}

//! Human output of the daemon CLI: task tables, task details, event lines. Pure; every string
//! that came from a submitter is neutralised (no terminal escapes reach the operator).

use serde_json::Value;

use crate::artifacts::neutralise;

const TITLE_WIDTH: usize = 48;

fn s(v: &Value) -> String {
    match v {
        Value::String(t) => neutralise(t),
        Value::Null => "-".into(),
        other => neutralise(&other.to_string()),
    }
}

fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut t: String = text.chars().take(width - 1).collect();
    t.push('…');
    t
}

/// `ID  STATE  REASON  LEVEL  SUBMITTED  TITLE`, one task a line.
pub fn tasks(rows: &[Value]) -> String {
    if rows.is_empty() {
        return "no tasks\n".into();
    }
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let state = if r["cancel_requested"] == Value::Bool(true) && r["state"] == "running" {
                "cancelling".into()
            } else {
                s(&r["state"])
            };
            let submitted = s(&r["submitted_at"])
                .chars()
                .take(19)
                .collect::<String>()
                .replace('T', " ");
            [
                s(&r["id"]),
                state,
                s(&r["reason"]),
                s(&r["level"]),
                submitted,
                cut(&s(&r["title"]), TITLE_WIDTH),
            ]
        })
        .collect();
    let header = ["ID", "STATE", "REASON", "LEVEL", "SUBMITTED", "TITLE"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    std::iter::once(&header)
        .chain(&cells)
        .map(|row| line(row, &widths))
        .collect()
}

fn line(row: &[String; 6], widths: &[usize; 6]) -> String {
    let mut out = String::new();
    for (i, (c, w)) in row.iter().zip(widths).enumerate() {
        if i + 1 == row.len() {
            out.push_str(c);
        } else {
            out.push_str(&format!("{c:<w$}  ", w = *w));
        }
    }
    out.trim_end().to_string() + "\n"
}

/// One task in detail, from `GET /v1/tasks/{id}`.
pub fn task(v: &Value) -> String {
    let mut out = String::new();
    for key in [
        "id",
        "title",
        "level",
        "state",
        "reason",
        "message",
        "submitted_at",
        "started_at",
        "finished_at",
    ] {
        if !v[key].is_null() {
            out.push_str(&format!("{key:<13} {}\n", s(&v[key])));
        }
    }
    if v["cancel_requested"] == Value::Bool(true) {
        out.push_str("cancel        requested\n");
    }
    let sum = &v["summary"];
    if sum.is_object() {
        let n = sum["attempts"].as_array().map_or(0, Vec::len);
        out.push_str(&format!("attempts      {n}\n"));
        out.push_str(&format!(
            "files_changed {}\n",
            sum["files_changed"].as_array().map_or(0, Vec::len)
        ));
        out.push_str(&format!("artifacts     {}\n", s(&sum["artifacts"])));
    }
    out
}

/// One event as a log line: `HH:MM:SS.mmm  event  key=value ...`.
pub fn event(v: &Value) -> String {
    let ts = v["ts"].as_str().unwrap_or("");
    let time = ts.get(11..23).unwrap_or(ts);
    let kind = s(&v["event"]);
    let mut out = format!("{time}  {kind:<18}");
    if let Value::Object(map) = v {
        for (k, val) in map {
            if ["ts", "task_id", "event", "seq", "origin"].contains(&k.as_str()) {
                continue;
            }
            let shown = cut(&s(val), 120);
            out.push_str(&format!(" {k}={shown}"));
        }
    }
    out.trim_end().to_string() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_table_lines_up() {
        let rows = [
            json!({"id": "20260101-000000-aaaaaa", "state": "green", "reason": crate::vocab::Reason::GatePassed, "level": "L1", "submitted_at": "2026-01-01T00:00:00.000Z", "title": "short"}),
            json!({"id": "20260101-000001-bbbbbb", "state": "running", "cancel_requested": true, "reason": null, "level": "L2", "submitted_at": "2026-01-01T00:00:01.000Z", "title": "x".repeat(80)}),
        ];
        let t = tasks(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID "));
        assert_eq!(lines[1].find("green"), lines[2].find("cancelling"));
        assert!(lines[2].ends_with('…'));
        assert!(lines[1].contains("2026-01-01 00:00:00"));
    }

    #[test]
    fn escapes_from_submitters_are_neutralised() {
        let rows = [json!({"id": "x", "state": "queued", "title": "evil \u{1b}[2J title"})];
        assert!(!tasks(&rows).contains('\u{1b}'));
        let ev = json!({"ts": "2026-01-01T10:11:12.345Z", "event": "queued", "title": "\u{1b}]0;pwn\u{7}"});
        let line = event(&ev);
        assert!(line.starts_with("10:11:12.345  queued"), "{line}");
        assert!(!line.contains('\u{1b}') && !line.contains('\u{7}'));
    }

    #[test]
    fn no_tasks() {
        assert_eq!(tasks(&[]), "no tasks\n");
    }
}

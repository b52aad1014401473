//! How listings are printed: aligned tables for people (by display width,
//! so Chinese text lines up), JSON Lines for scripts.
//!
//! `--output json` prints one JSON object per line, each an envelope
//! `{"type": TYPE, "data": OBJECT}`: TYPE names the record (`peer`,
//! `pending_peer`, `status`, `audit_entry`, `audit_verdict`, ...) and OBJECT
//! holds its fields with the names the table headers use, in snake_case.
//! Times are milliseconds since the Unix epoch in fields ending in `_ms`.

use std::io::Write;

use unicode_width::UnicodeWidthStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
}

/// A table with a header row; columns are as wide as their widest cell.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let n_columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.width()).collect();
        for row in &self.rows {
            for (idx, cell) in row.iter().enumerate().take(n_columns) {
                widths[idx] = widths[idx].max(cell.width());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &mut dyn Iterator<Item = &str>| {
            let mut text = String::new();
            for (idx, cell) in cells.enumerate() {
                text.push_str(cell);
                if idx + 1 < n_columns {
                    text.push_str(&" ".repeat(widths[idx] - cell.width() + 2));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&mut self.headers.iter().copied());
        for row in &self.rows {
            line(&mut row.iter().map(String::as_str));
        }
        out
    }

    pub fn print(&self) {
        print_out(&self.render());
    }
}

/// One JSON Lines envelope.
pub fn json_line(kind: &str, data: serde_json::Value) {
    let line = serde_json::json!({ "type": kind, "data": data });
    print_out(&format!("{line}\n"));
}

/// Writes to stdout; a closed pipe (`liaisonctl ... | head`) ends quietly.
pub fn print_out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// A time for people: local date and time, or "-" for none.
pub fn time(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        None => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_text_aligns_by_display_width() {
        let mut table = Table::new(&["NODE", "NAME", "STATE"]);
        table.row(vec!["lanzhou".into(), "兰州".into(), "active".into()]);
        table.row(vec!["xian".into(), "西安市".into(), "paused".into()]);
        let text = table.render();
        let columns: Vec<usize> = text
            .lines()
            .map(|l| {
                let idx = l
                    .find("active")
                    .or_else(|| l.find("paused"))
                    .or_else(|| l.find("STATE"))
                    .unwrap();
                l[..idx].width()
            })
            .collect();
        assert!(columns.windows(2).all(|w| w[0] == w[1]), "{text}");
    }
}

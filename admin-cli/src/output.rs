//! How listings are printed: aligned tables for people (by display width,
//! so Chinese text lines up), JSON Lines for scripts.
//!
//! `--output json` prints one JSON object per line, each an envelope
//! `{"type": TYPE, "data": OBJECT}`. TYPE names the record and OBJECT holds
//! its fields, named as in the admin protocol (`proto/liaison/v1/admin.proto`):
//!
//! | TYPE | OBJECT | printed by |
//! |---|---|---|
//! | `status` | `StatusResponse` | `status` |
//! | `peer` | `Peer`, with `auto_accept_branch` (empty: auto-accept off) | `peer add/list/show/pause/resume/retry/policy` |
//! | `pending_peer` | `PendingPeer` | `peer list --pending`, `peer ignore` |
//! | `peer_removed` | `{node_id}` | `peer remove` |
//! | `peer_replication` | `PeerReplication` | `peer status` |
//! | `org` | `Org` | `org add/list` |
//! | `member` | `Member`; `outflow` is an `outflow` object or null, `host_sections` a list of `HostSectionView`, `moved` a `MovedView` (a tombstone's forward pointer) or null | `member add/update/show/list/host-set`, `outflow register/return`, `transfer out` |
//! | `import_problem` | `ImportProblem`: `{line, message}`, one per problem | `member import` |
//! | `import_result` | `{imported, skipped}`, after the problems | `member import` |
//! | `disclosure` | `Disclosure` | `member disclosures` |
//! | `outflow` | `OutflowView` | `outflow list` |
//! | `contact` | `ContactView` | `contact record` |
//! | `contact_status` | `ContactStatusView`; `recent` is a list of `contact` objects | `contact status` |
//! | `activity` | `ActivityView` | `activity record/list` |
//! | `agreement` | `AgreementView`; `terms` and `pending_counter` are `AgreementTerms` objects (`federation.proto`; liaisons as `{name, phone, role}`) or null, `history` a list of `AgreementVersionView` with `signatures` a list of `SignatureView` | `agreement propose/counter/accept/reject/terminate/list/show` |
//! | `transfer` | `TransferView` | `transfer start/list/show/accept/reject/cancel/extend/reissue` (`reissue`: the new transfer) |
//! | `report` | `{report, title_zh, title_en, node_id, node_name, as_of, generated_at_ms, rules, notes}` | `report …` |
//! | `report_table` | `{table, zh, en, columns: [{key, zh, en, kind}], rows, rows_left_out, notes}`, before its rows | `report …` |
//! | `report_row` | `{table, depth, <column key>: value, …}`: text a string, a count an integer, a number a number | `report …` |
//! | `report_definition` | `ReportDefinition`: `{zh, en, meaning}` | `report …` |
//! | `station` | `StationView` | `station add/list/show` |
//! | `station_qr` | `{code, url, file}` | `station qr` |
//! | `reportin` | `ReportinView`; `candidates` a list of `ReportinCandidate` (`reportin show` only) | `reportin list/show/add/confirm/reject` |
//! | `clock` | `DebugClockResponse`: `{now_ms, offset_ms}` | `debug clock` |
//! | `quarantine_entry` | `QuarantineEntry` | `quarantine list/retry` |
//! | `audit_entry` | `AuditEntry` | `audit list` |
//! | `audit_verdict` | `AuditVerifyResponse` | `audit verify` |
//!
//! Empty values stay empty strings (tables and detail views show "-").
//! Times in fields ending in `_ms` are milliseconds since the Unix epoch;
//! other dates and times are strings as the node keeps them (`YYYY-MM-DD`
//! for dates). `member export` writes CSV, not JSON Lines; a report also
//! prints CSV (`--output csv`, `cmd::report` describes it).

use std::io::Write;

use unicode_width::UnicodeWidthStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
}

/// The `--output` flag: every listing prints as a table or JSON Lines
/// ([`Format`]); a report also as CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Output {
    #[default]
    Table,
    Json,
    /// CSV (UTF-8 with a byte-order mark, for Excel): reports only.
    Csv,
}

impl Output {
    /// The format of a listing; CSV is for reports only.
    pub fn listing(self) -> Result<Format, String> {
        match self {
            Output::Table => Ok(Format::Table),
            Output::Json => Ok(Format::Json),
            Output::Csv => Err(
                "--output csv is for `liaisonctl report`: other commands print table or json"
                    .into(),
            ),
        }
    }
}

/// A table with a header row; columns are as wide as their widest cell.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Table {
        Table::with_headers(headers.iter().map(|h| (*h).to_owned()).collect())
    }

    /// A table whose headers are made at run time.
    pub fn with_headers(headers: Vec<String>) -> Table {
        Table {
            headers,
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
        line(&mut self.headers.iter().map(String::as_str));
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
    let line = serde_json::json!({ "type": kind, "data": with_times(data) });
    print_out(&format!("{line}\n"));
}

/// `println!` for `liaisonctl`: writes a line to stdout through
/// [`print_out`], so a closed pipe (`liaisonctl ... | head -1`) ends the
/// program quietly with exit 0 instead of a panic.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::print_out("\n")
    };
    ($($arg:tt)*) => {
        $crate::output::print_out(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// Writes to stdout; a closed pipe (`liaisonctl ... | head`) ends quietly.
pub fn print_out(text: &str) {
    write_out(text.as_bytes());
}

/// Writes bytes to stdout, as [`print_out`] does text.
pub fn write_out(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(bytes)
        .and_then(|_| stdout.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// Writes a note for people to stderr (footers, problems), so stdout stays
/// data; a closed stderr is ignored.
pub fn note(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// A cell or value for people: the text, or "-" when it is empty.
pub fn dash(text: &str) -> String {
    if text.trim().is_empty() {
        "-".into()
    } else {
        text.to_owned()
    }
}

/// One record for people: `label  value` lines, labels padded to one width
/// (by display width), empty values shown as "-". A heading starts a block
/// whose fields are indented under it, after a blank line.
#[derive(Debug, Default)]
pub struct Detail {
    lines: Vec<DetailLine>,
}

#[derive(Debug)]
enum DetailLine {
    Field {
        indent: bool,
        label: String,
        value: String,
    },
    Heading(String),
}

impl Detail {
    pub fn new() -> Detail {
        Detail::default()
    }

    /// Adds `label  value`; under a heading if one was added before.
    pub fn field(&mut self, label: &str, value: impl Into<String>) -> &mut Detail {
        let indent = self
            .lines
            .iter()
            .any(|line| matches!(line, DetailLine::Heading(_)));
        self.lines.push(DetailLine::Field {
            indent,
            label: label.to_owned(),
            value: value.into(),
        });
        self
    }

    /// Starts a block of fields.
    pub fn heading(&mut self, text: impl Into<String>) -> &mut Detail {
        self.lines.push(DetailLine::Heading(text.into()));
        self
    }

    pub fn render(&self) -> String {
        const INDENT: &str = "  ";
        let width = self
            .lines
            .iter()
            .filter_map(|line| match line {
                DetailLine::Field { indent, label, .. } => {
                    Some(label.width() + if *indent { INDENT.len() } else { 0 })
                }
                DetailLine::Heading(_) => None,
            })
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for line in &self.lines {
            match line {
                DetailLine::Heading(text) => {
                    out.push('\n');
                    out.push_str(text);
                    out.push('\n');
                }
                DetailLine::Field {
                    indent,
                    label,
                    value,
                } => {
                    let indent = if *indent { INDENT } else { "" };
                    let pad = width - indent.len() - label.width() + 2;
                    out.push_str(indent);
                    out.push_str(label);
                    out.push_str(&" ".repeat(pad));
                    out.push_str(&dash(value));
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// The zone times are shown in: the node's (`time_zone`), set once the
/// node told it ([`set_zone`]); Asia/Shanghai before that.
static ZONE: std::sync::OnceLock<chrono_tz::Tz> = std::sync::OnceLock::new();

/// Shows every time from now on in `zone` (the node's).
pub fn set_zone(zone: chrono_tz::Tz) {
    let _ = ZONE.set(zone);
}

/// The zone times are shown in (the node's, once it told it).
pub fn zone() -> chrono_tz::Tz {
    ZONE.get()
        .copied()
        .unwrap_or(liaison_types::time::DEFAULT_ZONE)
}

/// A time for people: date and time in the node's zone, marked with its
/// offset (`2026-12-06 16:08:02 +08:00`), or "-" for none.
pub fn time(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t
            .with_timezone(&zone())
            .format("%Y-%m-%d %H:%M:%S %:z")
            .to_string(),
        None => "-".into(),
    }
}

/// A time as JSON carries it: RFC 3339 with the node zone's offset.
pub fn rfc3339(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .filter(|_| ms > 0)
        .map(|t| {
            t.with_timezone(&zone())
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        })
}

/// A wall-clock time a node recorded in its own zone without an offset
/// (a contact's `2026-12-06T16:08:02`), shown as [`time`] shows times:
/// marked with the offset it had then. Text that is not such a time is
/// shown as it is.
pub fn local_time(text: &str) -> String {
    if text.is_empty() {
        return "-".into();
    }
    let parsed = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f"));
    match parsed
        .ok()
        .and_then(|t| t.and_local_timezone(zone()).earliest())
    {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S %:z").to_string(),
        None => text.to_owned(),
    }
}

/// Adds, beside every timestamp in milliseconds of a JSON record (a key
/// ending in `_ms` whose value is a time since 2001, not a duration), the
/// same time in RFC 3339 with the node zone's offset, under the key without
/// `_ms` (`released_at_ms` → `released_at`), so scripts need not convert.
pub fn with_times(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    const SINCE_2001_MS: i64 = 978_307_200_000;
    match value {
        Value::Object(map) => {
            // A record that has its own field of the name keeps it.
            let taken: std::collections::HashSet<String> = map.keys().cloned().collect();
            let mut out = serde_json::Map::new();
            for (key, value) in map {
                let value = with_times(value);
                if let (Some(base), Some(ms)) = (key.strip_suffix("_ms"), value.as_i64()) {
                    if ms >= SINCE_2001_MS && !taken.contains(base) {
                        if let Some(text) = rfc3339(ms) {
                            out.insert(base.to_owned(), Value::String(text));
                        }
                    }
                }
                out.insert(key, value);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(with_times).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_shown_in_one_zone_and_marked() {
        // 2026-12-06 03:53:08 UTC is 11:53:08 in Shanghai.
        let ms = 1_796_529_188_000;
        assert_eq!(time(ms), "2026-12-06 11:53:08 +08:00");
        assert_eq!(
            local_time("2026-12-06T11:53:08"),
            "2026-12-06 11:53:08 +08:00"
        );
        assert_eq!(local_time(""), "-");
        assert_eq!(local_time("not a time"), "not a time");
        let json = with_times(serde_json::json!({
            "released_at_ms": ms, "valid_days": 30, "offset_ms": 3_600_000,
            "nested": [{ "at_ms": ms }], "at": "kept", "at_ms": ms,
        }));
        assert_eq!(json["released_at"], "2026-12-06T11:53:08.000+08:00");
        assert_eq!(json["nested"][0]["at"], "2026-12-06T11:53:08.000+08:00");
        assert_eq!(json["at"], "kept", "a record's own field is kept");
        assert!(json.get("offset").is_none(), "a duration is no time");
    }
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

    #[test]
    fn detail_aligns_labels_and_dashes_empty_values() {
        let mut detail = Detail::new();
        detail.field("name", "张三").field("national id", "");
        detail.heading("outflow (流出)").field("to", "620100");
        assert_eq!(
            detail.render(),
            "name         张三\nnational id  -\n\noutflow (流出)\n  to         620100\n"
        );
    }
}

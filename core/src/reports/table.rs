//! The shape every report has: tables of typed cells with headers in
//! Chinese and English, which `liaisonctl` prints as aligned text, JSON
//! Lines, CSV or an Excel workbook without knowing the report.

use liaison_proto::v1 as pb;

/// A name in Chinese and in English: a table's title, a column's header.
pub(super) type Names = (&'static str, &'static str);

/// What a column holds: how a workbook formats it and how JSON carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Text,
    Count,
    Number,
    /// A number of per cent, rounded to one decimal.
    Percent,
    /// YYYY-MM-DD.
    Date,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Count => "count",
            Kind::Number => "number",
            Kind::Percent => "percent",
            Kind::Date => "date",
        }
    }
}

/// One table of a report.
#[derive(Debug)]
pub(super) struct Table(pb::ReportTable);

impl Table {
    /// A table keyed `key` (its name in JSON), titled in both languages.
    pub(super) fn new(key: &str, zh: &str, en: &str) -> Table {
        Table(pb::ReportTable {
            key: key.into(),
            zh: zh.into(),
            en: en.into(),
            ..Default::default()
        })
    }

    /// Adds a column.
    pub(super) fn col(mut self, key: &str, zh: &str, en: &str, kind: Kind) -> Table {
        self.0.columns.push(pb::ReportColumn {
            key: key.into(),
            zh: zh.into(),
            en: en.into(),
            kind: kind.name().into(),
        });
        self
    }

    /// The usual last columns of a table of counts: members, and their
    /// share of `of` (the table's total).
    pub(super) fn counted(self) -> Table {
        self.col("members", "人数", "members", Kind::Count).col(
            "share_pct",
            "占比(%)",
            "share (%)",
            Kind::Percent,
        )
    }

    /// Adds a row at depth 0.
    pub(super) fn row(&mut self, cells: Vec<pb::ReportCell>) {
        self.row_at(0, cells);
    }

    /// Adds a row at `depth` in a grouping (its first column is indented).
    pub(super) fn row_at(&mut self, depth: u32, cells: Vec<pb::ReportCell>) {
        debug_assert_eq!(
            cells.len(),
            self.0.columns.len(),
            "a row of table {} has as many cells as columns",
            self.0.key
        );
        self.0.rows.push(pb::ReportRow { cells, depth });
    }

    /// Adds a line printed under the table.
    pub(super) fn note(&mut self, text: impl Into<String>) {
        self.0.notes.push(text.into());
    }

    /// Rows a limit left out.
    pub(super) fn left_out(&mut self, n: u64) {
        self.0.rows_left_out = n;
    }

    pub(super) fn rows(&self) -> usize {
        self.0.rows.len()
    }

    pub(super) fn done(self) -> pb::ReportTable {
        self.0
    }
}

pub(super) fn text(value: impl Into<String>) -> pb::ReportCell {
    cell(pb::report_cell::Value::Text(value.into()))
}

pub(super) fn count(value: i64) -> pb::ReportCell {
    cell(pb::report_cell::Value::Count(value))
}

pub(super) fn number(value: f64) -> pb::ReportCell {
    cell(pb::report_cell::Value::Number(
        (value * 100.0).round() / 100.0,
    ))
}

/// `part` of `whole` in per cent, to one decimal (0 of nothing is 0).
pub(super) fn percent(part: i64, whole: i64) -> pb::ReportCell {
    cell(pb::report_cell::Value::Number(share(part, whole)))
}

/// `part` of `whole` in per cent, to one decimal.
pub(super) fn share(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        return 0.0;
    }
    (part as f64 * 1000.0 / whole as f64).round() / 10.0
}

fn cell(value: pb::report_cell::Value) -> pb::ReportCell {
    pb::ReportCell { value: Some(value) }
}

/// A table of counts by one dimension: a row per value (label and
/// count), each with its share of `total`; a note gives the total.
pub(super) fn by_dimension(
    key: &str,
    (zh, en): (&str, &str),
    (column_zh, column_en): (&str, &str),
    rows: &[(String, i64)],
    total: i64,
) -> pb::ReportTable {
    let column = key.strip_prefix("by_").unwrap_or(key);
    let mut table = Table::new(key, zh, en)
        .col(column, column_zh, column_en, Kind::Text)
        .counted();
    for (label, n) in rows {
        table.row(vec![text(label.clone()), count(*n), percent(*n, total)]);
    }
    table.note(format!("合计 total: {total}"));
    table.done()
}

/// A definition of a term the report uses, for its definitions sheet.
pub(super) fn define(zh: &str, en: &str, meaning: &str) -> pb::ReportDefinition {
    pb::ReportDefinition {
        zh: zh.into(),
        en: en.into(),
        meaning: meaning.into(),
    }
}

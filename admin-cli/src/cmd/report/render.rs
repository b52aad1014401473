//! A report as people and scripts read it: aligned text (Chinese text
//! lines up by display width), JSON Lines, CSV.
//!
//! JSON Lines (`--output json`), in this order:
//! - `report`: `{report, title_zh, title_en, node_id, node_name, as_of,
//!   generated_at_ms, generated_at, rules, notes}`;
//! - per table, `report_table`: `{table, zh, en, columns: [{key, zh, en,
//!   kind}], rows, rows_left_out, notes}`, then its rows, each a
//!   `report_row`: `{table, depth, <column key>: value, …}` (text a string,
//!   a count an integer, a number or percent a number, an empty cell null);
//! - `report_definition`: `{zh, en, meaning}`, one per term.
//!
//! CSV (`--output csv`, UTF-8 with a byte-order mark so Excel reads the
//! Chinese): the title, the date and the counting rule, then each table:
//! its title, its headers in Chinese, in English, its rows, its notes, and
//! a blank line.

use liaison_proto::v1 as pb;
use liaisonctl::output::{self, json_line, Table};
use serde_json::{json, Map, Value};

use super::Failure;

/// A cell as text for people: counts as they are, numbers with at most
/// two decimals (percents with one), empty cells as "-".
pub(super) fn cell_text(cell: &pb::ReportCell, kind: &str) -> String {
    match &cell.value {
        Some(pb::report_cell::Value::Text(t)) => output::dash(t),
        Some(pb::report_cell::Value::Count(n)) => n.to_string(),
        Some(pb::report_cell::Value::Number(x)) if kind == "percent" => format!("{x:.1}"),
        Some(pb::report_cell::Value::Number(x)) => {
            let text = format!("{x:.2}");
            text.trim_end_matches('0').trim_end_matches('.').to_owned()
        }
        None => "-".into(),
    }
}

/// A cell as JSON: text a string, a count an integer, a number a number.
pub(super) fn cell_json(cell: &pb::ReportCell) -> Value {
    match &cell.value {
        Some(pb::report_cell::Value::Text(t)) => Value::String(t.clone()),
        Some(pb::report_cell::Value::Count(n)) => json!(n),
        Some(pb::report_cell::Value::Number(x)) => json!(x),
        None => Value::Null,
    }
}

/// The heading of a report: who counted what, when, by which rule.
pub(super) fn heading(r: &pb::ReportResponse) -> String {
    let node = if r.node_name.is_empty() || r.node_name == r.node_id {
        r.node_id.clone()
    } else {
        format!("{} ({})", r.node_name, r.node_id)
    };
    format!(
        "{node} · {} {} · 截至 as of {}",
        r.title_zh, r.title_en, r.as_of
    )
}

/// The report as text: heading, rules, notes, then each table with its
/// title, headers in Chinese and English, rows (grouped rows indented) and
/// the lines under it.
pub(super) fn text(r: &pb::ReportResponse) -> String {
    let mut out = String::new();
    out.push_str(&heading(r));
    out.push('\n');
    for rule in &r.rules {
        out.push_str(&format!("计数规则 counting rule: {rule}\n"));
    }
    for note in &r.notes {
        out.push_str(&format!("注 note: {note}\n"));
    }
    for t in &r.tables {
        out.push_str(&format!("\n【{}】 {}\n", t.zh, t.en));
        let mut table = Table::with_headers(t.columns.iter().map(|c| c.zh.clone()).collect());
        table.row(t.columns.iter().map(|c| c.en.clone()).collect());
        for row in &t.rows {
            let cells = row
                .cells
                .iter()
                .zip(&t.columns)
                .enumerate()
                .map(|(idx, (cell, column))| {
                    let text = cell_text(cell, &column.kind);
                    if idx == 0 {
                        format!("{}{text}", "  ".repeat(row.depth as usize))
                    } else {
                        text
                    }
                })
                .collect();
            table.row(cells);
        }
        if t.rows.is_empty() {
            table.row(vec!["(无 none)".into()]);
        }
        out.push_str(&table.render());
        if t.rows_left_out > 0 {
            out.push_str(&format!(
                "… 另有 {} 行 {} more rows: `--limit 0` lists all, `--xlsx FILE` writes them\n",
                t.rows_left_out, t.rows_left_out
            ));
        }
        for note in &t.notes {
            out.push_str(note);
            out.push('\n');
        }
    }
    out
}

/// The report as JSON Lines (see the module's doc).
pub(super) fn json(r: &pb::ReportResponse) {
    json_line(
        "report",
        json!({
            "report": r.report, "title_zh": r.title_zh, "title_en": r.title_en,
            "node_id": r.node_id, "node_name": r.node_name, "as_of": r.as_of,
            "generated_at_ms": r.generated_at_ms, "rules": r.rules, "notes": r.notes,
        }),
    );
    for t in &r.tables {
        json_line(
            "report_table",
            json!({
                "table": t.key, "zh": t.zh, "en": t.en,
                "columns": t.columns.iter().map(|c| json!({
                    "key": c.key, "zh": c.zh, "en": c.en, "kind": c.kind,
                })).collect::<Vec<_>>(),
                "rows": t.rows.len(), "rows_left_out": t.rows_left_out, "notes": t.notes,
            }),
        );
        for row in &t.rows {
            let mut data = Map::new();
            data.insert("table".into(), Value::String(t.key.clone()));
            data.insert("depth".into(), json!(row.depth));
            for (column, cell) in t.columns.iter().zip(&row.cells) {
                data.insert(column.key.clone(), cell_json(cell));
            }
            json_line("report_row", Value::Object(data));
        }
    }
    for d in &r.definitions {
        json_line(
            "report_definition",
            json!({ "zh": d.zh, "en": d.en, "meaning": d.meaning }),
        );
    }
}

/// The report as CSV (see the module's doc).
pub(super) fn csv(r: &pb::ReportResponse) -> Result<Vec<u8>, Failure> {
    let mut out = Vec::from("\u{feff}".as_bytes());
    {
        let mut writer = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(&mut out);
        let mut write = |record: Vec<String>| {
            writer
                .write_record(&record)
                .map_err(|e| Failure::Other(anyhow::anyhow!("cannot write CSV: {e}")))
        };
        write(vec![heading(r)])?;
        for rule in &r.rules {
            write(vec!["计数规则 counting rule".into(), rule.clone()])?;
        }
        for note in &r.notes {
            write(vec!["注 note".into(), note.clone()])?;
        }
        for t in &r.tables {
            write(vec![])?;
            write(vec![format!("【{}】 {}", t.zh, t.en)])?;
            write(t.columns.iter().map(|c| c.zh.clone()).collect())?;
            write(t.columns.iter().map(|c| c.en.clone()).collect())?;
            for row in &t.rows {
                write(
                    row.cells
                        .iter()
                        .map(|cell| match &cell.value {
                            Some(pb::report_cell::Value::Text(t)) => t.clone(),
                            Some(pb::report_cell::Value::Count(n)) => n.to_string(),
                            Some(pb::report_cell::Value::Number(x)) => x.to_string(),
                            None => String::new(),
                        })
                        .collect(),
                )?;
            }
            if t.rows_left_out > 0 {
                write(vec![format!(
                    "… {} more rows (--limit 0 lists all)",
                    t.rows_left_out
                )])?;
            }
            for note in &t.notes {
                write(vec![note.clone()])?;
            }
        }
        writer
            .flush()
            .map_err(|e| Failure::Other(anyhow::anyhow!("cannot write CSV: {e}")))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;
    use unicode_width::UnicodeWidthStr;

    #[test]
    fn text_aligns_chinese_columns_and_indents_the_grouping() {
        let text = text(&sample());
        assert!(text.starts_with(
            "平凉 (pingliang) · 流出党员统计 Members away (outflow) · 截至 as of 2026-12-06\n"
        ));
        let lines: Vec<&str> = text.lines().collect();
        let at = |needle: &str| lines.iter().position(|l| l.contains(needle)).unwrap();
        // The members column starts at one display width in every row.
        let header = lines[at("代码")];
        let column = |line: &str, value: &str| line[..line.find(value).unwrap()].width();
        let start = column(header, "人数");
        assert_eq!(column(lines[at("  兰州市")], "2264"), start);
        assert_eq!(column(lines[at("    城关区")], "700"), start);
        let english = lines.iter().find(|l| l.starts_with("place")).unwrap();
        assert_eq!(column(english, "members"), start);
        assert!(text.contains("5 more rows"));
        assert!(text.contains("合计 total: 7074"));
    }

    #[test]
    fn csv_has_a_bom_headers_in_both_languages_and_numbers_as_numbers() {
        let bytes = csv(&sample()).unwrap();
        assert!(bytes.starts_with("\u{feff}".as_bytes()));
        let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
        let records: Vec<csv::StringRecord> = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes())
            .records()
            .map(Result::unwrap)
            .collect();
        let at = records
            .iter()
            .position(|r| r.get(0) == Some("【按去向地】 By destination"))
            .unwrap();
        assert_eq!(&records[at + 1], vec!["地区", "代码", "人数", "占比(%)"]);
        assert_eq!(
            &records[at + 2],
            vec!["place", "code", "members", "share (%)"]
        );
        assert_eq!(&records[at + 3], vec!["甘肃省", "620000", "3000", "42.4"]);
    }

    #[test]
    fn json_cells_keep_their_types() {
        let row = &sample().tables[1].rows[1];
        assert_eq!(cell_json(&row.cells[0]), json!("兰州市"));
        assert_eq!(cell_json(&row.cells[2]), json!(2264));
        assert_eq!(cell_json(&row.cells[3]), json!(32.0));
        assert_eq!(cell_text(&row.cells[3], "percent"), "32.0");
        let x = pb::ReportCell {
            value: Some(pb::report_cell::Value::Number(8.5)),
        };
        assert_eq!(cell_text(&x, "number"), "8.5");
    }
}

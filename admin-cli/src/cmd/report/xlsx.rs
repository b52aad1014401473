//! A report as an Excel workbook (rust_xlsxwriter): a sheet per table,
//! each under a title row that names the node, the report, the date and
//! the counting rule; headers in Chinese with English below; counts and
//! numbers as numbers; and a last sheet of definitions.

use std::collections::HashSet;

use liaison_proto::v1 as pb;
use rust_xlsxwriter::{Color, DocProperties, Format, FormatAlign, Workbook, Worksheet, XlsxError};
use unicode_width::UnicodeWidthStr;

use super::render::heading;
use super::Failure;

/// The first row of data on a table's sheet (below the title and the two
/// header rows).
pub(super) const FIRST_DATA_ROW: u32 = 3;

/// The name of the definitions sheet.
pub(super) const DEFINITIONS: &str = "定义 Definitions";

/// The workbook's bytes.
pub(super) fn workbook(r: &pb::ReportResponse) -> Result<Vec<u8>, Failure> {
    build(r).map_err(|e| Failure::Other(anyhow::anyhow!("cannot make the workbook: {e}")))
}

fn build(r: &pb::ReportResponse) -> Result<Vec<u8>, XlsxError> {
    let mut book = Workbook::new();
    book.set_properties(
        &DocProperties::new()
            .set_title(heading(r))
            .set_author(format!("liaisonctl ({})", r.node_id))
            .set_comment(r.rules.join("\n")),
    );
    let mut names = HashSet::new();
    for t in &r.tables {
        let sheet = book.add_worksheet();
        sheet.set_name(sheet_name(&t.zh, &mut names))?;
        table_sheet(sheet, r, t)?;
    }
    let sheet = book.add_worksheet();
    sheet.set_name(DEFINITIONS)?;
    definitions_sheet(sheet, r)?;
    book.save_to_buffer()
}

/// A sheet name Excel takes: at most 31 characters, none of `[]:*?/\`,
/// unique in the workbook.
pub(super) fn sheet_name(title: &str, taken: &mut HashSet<String>) -> String {
    let clean: String = title
        .chars()
        .map(|c| if "[]:*?/\\".contains(c) { '_' } else { c })
        .take(28)
        .collect();
    let clean = clean.trim_matches('\'').to_owned();
    let mut name = clean.clone();
    let mut n = 2;
    while !taken.insert(name.clone()) {
        name = format!("{clean} {n}");
        n += 1;
    }
    name
}

fn title_format() -> Format {
    Format::new()
        .set_bold()
        .set_text_wrap()
        .set_align(FormatAlign::Top)
        .set_font_size(12)
}

fn table_sheet(
    sheet: &mut Worksheet,
    r: &pb::ReportResponse,
    t: &pb::ReportTable,
) -> Result<(), XlsxError> {
    let last_col = t.columns.len().max(1) as u16 - 1;
    let title = format!(
        "{} · {} {}\n计数规则 counting rule: {}",
        heading(r),
        t.zh,
        t.en,
        r.rules.join(" ")
    );
    if last_col > 0 {
        sheet.merge_range(0, 0, 0, last_col, &title, &title_format())?;
    } else {
        sheet.write_string_with_format(0, 0, &title, &title_format())?;
    }
    sheet.set_row_height(0, 15.0 * (2.0 + (title.chars().count() / 120) as f64))?;
    let zh = Format::new()
        .set_bold()
        .set_background_color(Color::RGB(0xDDEBF7));
    let en = Format::new()
        .set_italic()
        .set_font_color(Color::RGB(0x595959))
        .set_background_color(Color::RGB(0xDDEBF7));
    let mut widths: Vec<usize> = Vec::new();
    for (col, column) in t.columns.iter().enumerate() {
        sheet.write_string_with_format(1, col as u16, &column.zh, &zh)?;
        sheet.write_string_with_format(2, col as u16, &column.en, &en)?;
        widths.push(column.zh.width().max(column.en.width()));
    }
    let counts = Format::new().set_num_format("#,##0");
    let numbers = Format::new().set_num_format("0.0#");
    let percents = Format::new().set_num_format("0.0");
    for (idx, row) in t.rows.iter().enumerate() {
        let at = FIRST_DATA_ROW + idx as u32;
        for (col, (cell, column)) in row.cells.iter().zip(&t.columns).enumerate() {
            let c = col as u16;
            match &cell.value {
                Some(pb::report_cell::Value::Text(text)) => {
                    if col == 0 && row.depth > 0 {
                        let indent = Format::new().set_indent(row.depth.min(15) as u8);
                        sheet.write_string_with_format(at, c, text, &indent)?;
                    } else {
                        sheet.write_string(at, c, text)?;
                    }
                    widths[col] = widths[col].max(text.width() + 2 * row.depth as usize);
                }
                Some(pb::report_cell::Value::Count(n)) => {
                    sheet.write_number_with_format(at, c, *n as f64, &counts)?;
                }
                Some(pb::report_cell::Value::Number(x)) => {
                    let format = if column.kind == "percent" {
                        &percents
                    } else {
                        &numbers
                    };
                    sheet.write_number_with_format(at, c, *x, format)?;
                }
                None => {}
            }
        }
    }
    let mut below = FIRST_DATA_ROW + t.rows.len() as u32 + 1;
    if t.rows_left_out > 0 {
        sheet.write_string(
            below,
            0,
            format!(
                "… 另有 {} 行未列出 {} more rows: `--limit 0` lists all",
                t.rows_left_out, t.rows_left_out
            ),
        )?;
        below += 1;
    }
    for note in &t.notes {
        sheet.write_string(below, 0, note)?;
        below += 1;
    }
    for (col, width) in widths.iter().enumerate() {
        sheet.set_column_width(col as u16, (*width).clamp(6, 60) as f64 * 1.1 + 2.0)?;
    }
    sheet.set_freeze_panes(FIRST_DATA_ROW, 0)?;
    Ok(())
}

fn definitions_sheet(sheet: &mut Worksheet, r: &pb::ReportResponse) -> Result<(), XlsxError> {
    sheet.merge_range(0, 0, 0, 2, &heading(r), &title_format())?;
    let bold = Format::new().set_bold();
    let wrap = Format::new().set_text_wrap().set_align(FormatAlign::Top);
    sheet.write_string_with_format(1, 0, "术语", &bold)?;
    sheet.write_string_with_format(1, 1, "term", &bold)?;
    sheet.write_string_with_format(1, 2, "含义 meaning", &bold)?;
    let mut at = 2;
    for d in &r.definitions {
        sheet.write_string(at, 0, &d.zh)?;
        sheet.write_string(at, 1, &d.en)?;
        sheet.write_string_with_format(at, 2, &d.meaning, &wrap)?;
        at += 1;
    }
    at += 1;
    let line =
        |sheet: &mut Worksheet, at: &mut u32, label: &str, text: &str| -> Result<(), XlsxError> {
            sheet.write_string_with_format(*at, 0, label, &bold)?;
            sheet.write_string_with_format(*at, 2, text, &wrap)?;
            *at += 1;
            Ok(())
        };
    for rule in &r.rules {
        line(sheet, &mut at, "计数规则 counting rule", rule)?;
    }
    for note in &r.notes {
        line(sheet, &mut at, "注 note", note)?;
    }
    line(
        sheet,
        &mut at,
        "节点 node",
        &format!("{} ({})", r.node_name, r.node_id),
    )?;
    line(sheet, &mut at, "截至 as of", &r.as_of)?;
    line(
        sheet,
        &mut at,
        "生成时间 generated at",
        &liaisonctl::output::time(r.generated_at_ms),
    )?;
    sheet.set_column_width(0, 24)?;
    sheet.set_column_width(1, 28)?;
    sheet.set_column_width(2, 90)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;
    use calamine::{Data, Reader, Xlsx};

    #[test]
    fn the_workbook_reads_back_with_a_sheet_per_table_and_numbers_as_numbers() {
        let bytes = workbook(&sample()).unwrap();
        let mut book: Xlsx<_> =
            calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(
            book.sheet_names(),
            vec!["总体", "按去向地", "名单", DEFINITIONS]
        );
        let range = book.worksheet_range("按去向地").unwrap();
        let title = range.get_value((0, 0)).unwrap().to_string();
        assert!(
            title.contains("平凉 (pingliang)") && title.contains("2026-12-06"),
            "{title}"
        );
        assert!(title.contains("组织关系所在地"), "{title}");
        assert_eq!(range.get_value((1, 2)), Some(&Data::String("人数".into())));
        assert_eq!(
            range.get_value((2, 2)),
            Some(&Data::String("members".into()))
        );
        assert_eq!(
            range.get_value((4, 0)),
            Some(&Data::String("兰州市".into()))
        );
        assert_eq!(range.get_value((4, 2)), Some(&Data::Float(2264.0)));
        assert_eq!(range.get_value((4, 3)), Some(&Data::Float(32.0)));
        let definitions = book.worksheet_range(DEFINITIONS).unwrap();
        assert_eq!(
            definitions.get_value((2, 0)),
            Some(&Data::String("流出党员".into()))
        );
    }

    #[test]
    fn sheet_names_are_short_clean_and_unique() {
        let mut taken = HashSet::new();
        assert_eq!(sheet_name("按去向地", &mut taken), "按去向地");
        assert_eq!(sheet_name("按去向地", &mut taken), "按去向地 2");
        assert_eq!(sheet_name("a/b:c", &mut taken), "a_b_c");
        let long = "经".repeat(40);
        assert_eq!(sheet_name(&long, &mut taken).chars().count(), 28);
    }
}

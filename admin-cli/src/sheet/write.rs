//! The workbooks `liaisonctl` writes: the roster (`member export --xlsx`)
//! and the template to fill in (`member template`), each with a sheet
//! that explains the columns.
//!
//! The roster's sheet is written in rust_xlsxwriter's constant-memory mode
//! (row after row through a temporary file, strings inline), so a roster
//! of any size costs one row of memory beyond the rows the node sent.

use std::io::{Seek, Write};

use chrono::NaiveDate;
use liaison_types::places::{self, Level};
use liaison_types::sheet::{columns, Column, Kind, MEMBER_COLUMNS};
use rust_xlsxwriter::{
    Color, DataValidation, DataValidationErrorStyle, Format, Formula, Note, Workbook, Worksheet,
    XlsxError,
};
use unicode_width::UnicodeWidthStr;

/// The roster's sheet, the sheet that explains its columns, and the
/// template's hidden sheet of the lists its drop-downs offer.
pub const ROSTER_SHEET: &str = "花名册";
pub const EXPLAIN_SHEET: &str = "说明";
pub const LISTS_SHEET: &str = "选项";

/// How many rows of the template offer the drop-down lists.
pub const TEMPLATE_ROWS: u32 = 10_000;

/// The headers a roster is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Headers {
    /// 姓名, 性别, … (as offices write them).
    Chinese,
    /// name, gender, … (the columns' English names).
    English,
}

impl Headers {
    pub fn of(self, column: &Column) -> &'static str {
        match self {
            Headers::Chinese => column.header,
            Headers::English => column.key,
        }
    }
}

struct Formats {
    header: Format,
    required: Format,
    date: Format,
    text: Format,
    example: Format,
    example_date: Format,
    wrap: Format,
}

impl Formats {
    fn new() -> Formats {
        let header = Format::new()
            .set_bold()
            .set_background_color(Color::RGB(0xDDEBF7))
            .set_border(rust_xlsxwriter::FormatBorder::Thin);
        Formats {
            required: header.clone().set_font_color(Color::RGB(0xC00000)),
            header,
            date: Format::new().set_num_format("yyyy-mm-dd"),
            text: Format::new().set_num_format("@"),
            example: Format::new()
                .set_italic()
                .set_font_color(Color::Gray)
                .set_num_format("@"),
            example_date: Format::new()
                .set_italic()
                .set_font_color(Color::Gray)
                .set_num_format("yyyy-mm-dd"),
            wrap: Format::new().set_text_wrap(),
        }
    }
}

fn xlsx(e: XlsxError) -> anyhow::Error {
    anyhow::anyhow!("cannot write the workbook: {e}")
}

/// A column's width for its widest text: CJK characters count two.
fn width_of(text: &str) -> f64 {
    (text.width() as f64 + 2.0).clamp(6.0, 60.0)
}

/// A date as the roster stores it, `YYYY-MM-DD`.
fn date_of(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// Writes the roster: `rows` one per member with one text per column of
/// [`MEMBER_COLUMNS`], as the CSV export has them. ID numbers and phones
/// are text cells (a spreadsheet would turn them into numbers and drop
/// digits), dates are date cells, the header row stays in view and each
/// column is as wide as its widest cell; a second sheet explains the
/// columns.
pub fn roster(
    out: impl Write + Seek + Send,
    headers: Headers,
    rows: &[Vec<String>],
) -> anyhow::Result<()> {
    let formats = Formats::new();
    let mut workbook = Workbook::new();
    let sheet = workbook
        .add_worksheet_with_constant_memory()
        .map_err(xlsx)?;
    sheet.set_name(ROSTER_SHEET).map_err(xlsx)?;
    for (idx, column) in MEMBER_COLUMNS.iter().enumerate() {
        let col = idx as u16;
        let widest = rows
            .iter()
            .filter_map(|row| row.get(idx))
            .map(|cell| width_of(cell))
            .fold(width_of(headers.of(column)), f64::max);
        sheet.set_column_width(col, widest).map_err(xlsx)?;
        if matches!(column.kind, Kind::IdNumber | Kind::Digits) {
            sheet.set_column_format(col, &formats.text).map_err(xlsx)?;
        }
        sheet
            .write_string_with_format(0, col, headers.of(column), &formats.header)
            .map_err(xlsx)?;
    }
    sheet.set_freeze_panes(1, 0).map_err(xlsx)?;
    for (row_idx, row) in rows.iter().enumerate() {
        let at = row_idx as u32 + 1;
        for (idx, (column, text)) in MEMBER_COLUMNS.iter().zip(row).enumerate() {
            let col = idx as u16;
            if text.is_empty() {
                continue;
            }
            match (column.kind, date_of(text)) {
                (Kind::Date, Some(date)) => {
                    sheet
                        .write_date_with_format(at, col, date, &formats.date)
                        .map_err(xlsx)?;
                }
                (Kind::IdNumber | Kind::Digits, _) => {
                    sheet
                        .write_string_with_format(at, col, text, &formats.text)
                        .map_err(xlsx)?;
                }
                _ => {
                    sheet.write_string(at, col, text).map_err(xlsx)?;
                }
            }
        }
    }
    explain(workbook.add_worksheet(), headers, &formats)?;
    workbook.save_to_writer(out).map_err(xlsx)
}

/// Writes the template: the roster's header, an example row (which an
/// import passes over while it is left as it is), and drop-down lists
/// for the columns of a few values, the home branches (`branches`, the
/// node's organizations by full name) and the destination provinces.
pub fn template(out: impl Write + Seek + Send, branches: &[String]) -> anyhow::Result<()> {
    let formats = Formats::new();
    let mut workbook = Workbook::new();
    let provinces: Vec<&str> = places::divisions()
        .places()
        .iter()
        .filter(|p| p.level == Level::Province)
        .map(|p| p.name)
        .collect();
    let lists: [(&str, Vec<&str>); 4] = [
        ("home_branch", branches.iter().map(String::as_str).collect()),
        ("destination_place", provinces),
        ("occupation", columns::OCCUPATIONS.to_vec()),
        ("direction", columns::DIRECTIONS.to_vec()),
    ];
    let sheet = workbook.add_worksheet();
    sheet.set_name(ROSTER_SHEET).map_err(xlsx)?;
    for (idx, column) in MEMBER_COLUMNS.iter().enumerate() {
        let col = idx as u16;
        let header_format = if column.required {
            &formats.required
        } else {
            &formats.header
        };
        sheet
            .write_string_with_format(0, col, column.header, header_format)
            .map_err(xlsx)?;
        sheet
            .set_column_width(col, width_of(column.header).max(width_of(column.example)))
            .map_err(xlsx)?;
        match column.kind {
            Kind::Date => sheet.set_column_format(col, &formats.date),
            _ => sheet.set_column_format(col, &formats.text),
        }
        .map_err(xlsx)?;
        match (column.kind, date_of(column.example)) {
            (Kind::Date, Some(date)) => sheet
                .write_date_with_format(1, col, date, &formats.example_date)
                .map(drop),
            _ if column.example.is_empty() => Ok(()),
            _ => sheet
                .write_string_with_format(1, col, column.example, &formats.example)
                .map(drop),
        }
        .map_err(xlsx)?;
        let listed = lists
            .iter()
            .position(|(key, _)| *key == column.key)
            .map(|at| (at, &lists[at].1));
        let validation = match (column.kind, listed) {
            (_, Some((_, values))) if values.is_empty() => None,
            (_, Some((at, values))) => {
                let letter = liaison_types::sheet::letters(at);
                let range = format!(
                    "='{LISTS_SHEET}'!${letter}$2:${letter}${}",
                    values.len() + 1
                );
                let strict = column.kind == Kind::Org;
                Some(offer(
                    DataValidation::new().allow_list_formula(Formula::new(range)),
                    strict,
                ))
            }
            (Kind::Choice(values), None) => Some(offer(
                DataValidation::new()
                    .allow_list_strings(values)
                    .map_err(xlsx)?,
                true,
            )),
            (Kind::Suggested(values), None) => Some(offer(
                DataValidation::new()
                    .allow_list_strings(values)
                    .map_err(xlsx)?,
                false,
            )),
            (Kind::YesNo, None) => Some(offer(
                DataValidation::new()
                    .allow_list_strings(&columns::YES_NO)
                    .map_err(xlsx)?,
                true,
            )),
            _ => None,
        };
        if let Some(validation) = validation {
            sheet
                .add_data_validation(1, col, TEMPLATE_ROWS, col, &validation)
                .map_err(xlsx)?;
        }
    }
    let name_col = MEMBER_COLUMNS
        .iter()
        .position(|c| c.key == "name")
        .unwrap_or(0) as u16;
    sheet
        .insert_note(
            1,
            name_col,
            &Note::new("示例行：原样保留时导入会跳过它；填写时可覆盖或删除。红色列名为新党员必填项，各列说明见“说明”工作表。")
                .set_author("liaisonctl"),
        )
        .map_err(xlsx)?;
    sheet.set_freeze_panes(1, 0).map_err(xlsx)?;
    explain(workbook.add_worksheet(), Headers::Chinese, &formats)?;
    let hidden = workbook.add_worksheet();
    hidden.set_name(LISTS_SHEET).map_err(xlsx)?;
    for (at, (key, values)) in lists.iter().enumerate() {
        let header = columns::by_key(&MEMBER_COLUMNS, key).map_or(*key, |c| c.header);
        hidden
            .write_string_with_format(0, at as u16, header, &formats.header)
            .map_err(xlsx)?;
        for (row, value) in values.iter().enumerate() {
            hidden
                .write_string(row as u32 + 1, at as u16, *value)
                .map_err(xlsx)?;
        }
        let widest = values
            .iter()
            .map(|v| width_of(v))
            .fold(width_of(header), f64::max);
        hidden.set_column_width(at as u16, widest).map_err(xlsx)?;
    }
    hidden.set_hidden(true);
    workbook.save_to_writer(out).map_err(xlsx)
}

/// A drop-down list that refuses other values (`strict`) or only says
/// what is usual.
fn offer(validation: DataValidation, strict: bool) -> DataValidation {
    validation.set_error_style(if strict {
        DataValidationErrorStyle::Stop
    } else {
        DataValidationErrorStyle::Information
    })
}

/// The sheet that explains each column: its header, its English name,
/// whether a new member needs it, what goes in it, an example, and the
/// values it takes.
fn explain(sheet: &mut Worksheet, headers: Headers, formats: &Formats) -> anyhow::Result<()> {
    sheet.set_name(EXPLAIN_SHEET).map_err(xlsx)?;
    let titles = ["列名", "英文列名", "新党员必填", "说明", "示例", "可选值"];
    for (col, title) in titles.iter().enumerate() {
        sheet
            .write_string_with_format(0, col as u16, *title, &formats.header)
            .map_err(xlsx)?;
    }
    for (idx, column) in MEMBER_COLUMNS.iter().enumerate() {
        let row = idx as u32 + 1;
        let values = match column.kind {
            Kind::Choice(values) | Kind::Suggested(values) => values.join("、"),
            Kind::YesNo => columns::YES_NO.join("、"),
            _ => String::new(),
        };
        let cells = [
            headers.of(column),
            column.key,
            if column.required { "是" } else { "" },
            column.note,
            column.example,
            &values,
        ];
        for (col, text) in cells.iter().enumerate() {
            sheet
                .write_string_with_format(row, col as u16, *text, &formats.wrap)
                .map_err(xlsx)?;
        }
    }
    let notes_at = MEMBER_COLUMNS.len() as u32 + 2;
    let notes = [
        "第一行为表头。表头上方的标题行、空行导入时跳过；本表没有的列（如 序号、备注）导入时忽略，并列出提示。",
        "日期可写 2026-03-01、2026/3/1、2026年3月1日，或设为日期格式的单元格。",
        "公民身份号码须为文本格式：设为数字的号码只保留15位，导入时会被拒绝。",
        "导入新党员：liaisonctl member import 文件名；按公民身份号码更新已有党员：liaisonctl member import --update 文件名（先加 --dry-run 查看改动）。",
    ];
    for (idx, note) in notes.iter().enumerate() {
        sheet
            .write_string(notes_at + idx as u32, 0, *note)
            .map_err(xlsx)?;
    }
    for (col, width) in [12.0, 18.0, 10.0, 60.0, 22.0, 40.0].iter().enumerate() {
        sheet.set_column_width(col as u16, *width).map_err(xlsx)?;
    }
    sheet.set_freeze_panes(1, 0).map_err(xlsx)?;
    Ok(())
}

//! Rosters as offices keep them: spreadsheets with a title above the
//! header, columns of their own (序号, 备注), dates typed three ways, and
//! CSV files saved by Chinese Excel in GBK.
//!
//! A file is read as rows of [`Cell`]s (a [`RowSource`]: [`csv`] here, the
//! `.xlsx` reader in `liaisonctl`); [`Header::find`] finds the header row
//! among the first rows and which columns of a table ([`columns`]) it
//! holds, and [`Header::read`] turns each row below into one text per
//! column, the form the node checks, naming every cell that cannot be read
//! (an ID number a spreadsheet turned into a number).
//!
//! Nothing here checks a value against the records: the node does, and
//! names the row and column of every problem.

pub mod columns;
pub mod csv;

use chrono::{NaiveDate, NaiveDateTime};

pub use columns::{Column, Kind, MEMBER_COLUMNS, ORG_COLUMNS};

/// How many rows above the header are looked through (a title, a date, a
/// unit, blank rows).
pub const HEADER_ROWS_MAX: u64 = 30;

/// One cell as the file has it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
    /// A cell formatted as a date (or date and time).
    Date(NaiveDateTime),
    Bool(bool),
    /// A formula's error (`#VALUE!`, `#REF!`).
    Error(String),
}

/// One row of a sheet.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The row's number as a spreadsheet shows it: 1 is the first.
    pub number: u64,
    pub cells: Vec<Cell>,
}

impl Row {
    fn is_blank(&self) -> bool {
        self.cells.iter().all(|cell| match cell {
            Cell::Empty => true,
            Cell::Text(text) => text.trim().is_empty(),
            _ => false,
        })
    }
}

/// A sheet read row after row, so that a file of any size is never held
/// whole.
pub trait RowSource {
    /// The next row that has a cell, or none at the end.
    fn next_row(&mut self) -> Result<Option<Row>, SheetError>;
}

/// Why a file cannot be read as a table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SheetError {
    /// The file itself: not a workbook, broken, or not text in the
    /// encoding it started in.
    #[error("{0}")]
    Read(String),
    #[error("{0}")]
    NoHeader(String),
    #[error("row {row}: the columns {first} and {second} both are `{column}`: keep one and delete the other")]
    Duplicate {
        row: u64,
        column: &'static str,
        first: String,
        second: String,
    },
}

/// A column the header row holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Where it is in a row (0 is column A).
    pub at: usize,
    pub column: &'static Column,
    /// Its header as the file writes it.
    pub header: String,
}

/// A header cell that names no column, which the rows' cells below are
/// ignored for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    pub at: usize,
    pub header: String,
}

impl std::fmt::Display for Unknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.header, letters(self.at))
    }
}

/// The header row of a sheet, and what its columns are.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// The header's row number.
    pub row: u64,
    pub columns: Vec<Found>,
    pub unknown: Vec<Unknown>,
    /// How many rows with something in them were above it (a title).
    pub skipped: u64,
}

/// One row below the header, read: one text per found column, in their
/// order, and the cells that could not be read, by column index, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub number: u64,
    pub cells: Vec<String>,
    pub problems: Vec<(usize, String)>,
}

impl Header {
    /// Reads rows until the header: the first row in which at least two
    /// cells name columns of `table`. Rows above it (a title, merged
    /// across the columns; a unit and date line; blank rows) are skipped;
    /// a column named twice is refused.
    pub fn find(
        source: &mut dyn RowSource,
        table: &'static [Column],
    ) -> Result<Header, SheetError> {
        let mut skipped = 0;
        let mut scanned = 0;
        while let Some(row) = source.next_row()? {
            scanned += 1;
            if row.is_blank() {
                continue;
            }
            if let Some(header) = Header::of(&row, table)? {
                return Ok(Header { skipped, ..header });
            }
            skipped += 1;
            if scanned >= HEADER_ROWS_MAX {
                break;
            }
        }
        let some: Vec<&str> = table
            .iter()
            .filter(|c| c.required)
            .map(|c| c.header)
            .collect();
        Err(SheetError::NoHeader(if scanned == 0 {
            "the file has no rows".into()
        } else {
            format!(
                "no header row in the first {scanned} rows: the header names the columns, e.g. {} (`liaisonctl member template` writes a sheet to start from)",
                some.join(", ")
            )
        }))
    }

    fn of(row: &Row, table: &'static [Column]) -> Result<Option<Header>, SheetError> {
        let mut columns: Vec<Found> = Vec::new();
        let mut unknown = Vec::new();
        for (at, cell) in row.cells.iter().enumerate() {
            let header = match cell {
                Cell::Empty => continue,
                Cell::Text(text) if text.trim().is_empty() => continue,
                Cell::Text(text) => text.trim().to_owned(),
                other => display(other),
            };
            match table.iter().find(|c| c.is_named(&header)) {
                Some(column) => {
                    if let Some(first) = columns.iter().find(|f| f.column.key == column.key) {
                        return Err(SheetError::Duplicate {
                            row: row.number,
                            column: column.header,
                            first: format!("{} ({})", first.header, letters(first.at)),
                            second: format!("{header} ({})", letters(at)),
                        });
                    }
                    columns.push(Found { at, column, header });
                }
                None => unknown.push(Unknown { at, header }),
            }
        }
        if columns.len() < 2 {
            return Ok(None);
        }
        Ok(Some(Header {
            row: row.number,
            columns,
            unknown,
            skipped: 0,
        }))
    }

    /// Whether the table's column `key` is among the found ones.
    pub fn has(&self, key: &str) -> bool {
        self.columns.iter().any(|f| f.column.key == key)
    }

    /// The next row below the header with something in a known column,
    /// read; blank rows are passed over.
    pub fn next(&self, source: &mut dyn RowSource) -> Result<Option<Read>, SheetError> {
        while let Some(row) = source.next_row()? {
            let read = self.read(&row);
            if read.cells.iter().any(|c| !c.is_empty()) || !read.problems.is_empty() {
                return Ok(Some(read));
            }
        }
        Ok(None)
    }

    /// A row's cells under the found columns, as text (see [`text_of`]).
    pub fn read(&self, row: &Row) -> Read {
        let mut read = Read {
            number: row.number,
            cells: Vec::with_capacity(self.columns.len()),
            problems: Vec::new(),
        };
        for (idx, found) in self.columns.iter().enumerate() {
            let cell = row.cells.get(found.at).unwrap_or(&Cell::Empty);
            match text_of(found.column.kind, cell) {
                Ok(text) => read.cells.push(text),
                Err(problem) => {
                    read.cells.push(String::new());
                    read.problems.push((idx, problem));
                }
            }
        }
        read
    }
}

/// A column's letters as a spreadsheet names it: 0 is A, 26 is AA.
pub fn letters(at: usize) -> String {
    let mut at = at + 1;
    let mut name = Vec::new();
    while at > 0 {
        let rem = (at - 1) % 26;
        name.push(b'A' + rem as u8);
        at = (at - 1) / 26;
    }
    name.reverse();
    String::from_utf8(name).unwrap_or_default()
}

/// A number as a person typed it: an integer without a decimal point.
fn number_text(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// Any cell as text, for a header or a column of text.
fn display(cell: &Cell) -> String {
    match cell {
        Cell::Empty => String::new(),
        Cell::Text(text) => text.trim().to_owned(),
        Cell::Number(value) => number_text(*value),
        Cell::Date(at) if at.time() == chrono::NaiveTime::MIN => at.date().to_string(),
        Cell::Date(at) => at.to_string(),
        Cell::Bool(true) => "是".into(),
        Cell::Bool(false) => "否".into(),
        Cell::Error(error) => error.clone(),
    }
}

/// Whether text is a number in scientific notation, as a spreadsheet shows
/// a long number (`6.20881E+17`).
fn is_scientific(text: &str) -> bool {
    let text = text.trim();
    let Some((mantissa, exponent)) = text.split_once(['e', 'E']) else {
        return false;
    };
    let exponent = exponent.strip_prefix('+').unwrap_or(exponent);
    !mantissa.is_empty()
        && mantissa.chars().all(|c| c.is_ascii_digit() || c == '.')
        && !exponent.is_empty()
        && exponent.chars().all(|c| c.is_ascii_digit())
}

/// The fix for an ID number that a spreadsheet turned into a number.
const ID_AS_TEXT: &str =
    "format the ID column as text (设置单元格格式 → 文本), type the numbers again, and save";

/// A cell as the text a column of `kind` takes: a date cell as
/// `YYYY-MM-DD`, a number without a decimal point, yes and no as 是 and
/// 否. Refused: an ID number stored as a number (a spreadsheet keeps 15
/// digits of the 18, so the last ones are lost), a number in a date column
/// that is no date, a formula's error.
pub fn text_of(kind: Kind, cell: &Cell) -> Result<String, String> {
    match (kind, cell) {
        (Kind::IdNumber, Cell::Number(value)) => Err(format!(
            "the ID number is stored as a number ({}), which keeps only 15 digits: {ID_AS_TEXT}",
            number_text(*value)
        )),
        (Kind::IdNumber, Cell::Text(text)) if is_scientific(text) => Err(format!(
            "the ID number was saved as a number ({}) and lost its last digits: {ID_AS_TEXT}",
            text.trim()
        )),
        (Kind::IdNumber, Cell::Date(_)) => Err(format!(
            "the ID number is formatted as a date: {ID_AS_TEXT}"
        )),
        (Kind::Date, Cell::Date(at)) => Ok(at.date().to_string()),
        (Kind::Date, Cell::Number(value)) if !(1e7..1e8).contains(value) => Err(format!(
            "{} is a number, not a date: format the column as a date, or type the date as 2026-03-01",
            number_text(*value)
        )),
        (Kind::YesNo, Cell::Bool(value)) => Ok(if *value { "是" } else { "否" }.into()),
        (_, Cell::Error(error)) => Err(format!(
            "the cell shows the error {error}: fix its formula, or type the value"
        )),
        (_, cell) => Ok(display(cell)),
    }
}

/// A date cell's value as a date, for readers that get dates as text
/// (`2026-03-01T00:00:00`).
pub fn date_of_iso(text: &str) -> Option<NaiveDateTime> {
    let date = NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()?;
    Some(date.and_time(chrono::NaiveTime::MIN))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rows(std::vec::IntoIter<Row>);

    impl RowSource for Rows {
        fn next_row(&mut self) -> Result<Option<Row>, SheetError> {
            Ok(self.0.next())
        }
    }

    fn rows(rows: Vec<Vec<Cell>>) -> Rows {
        Rows(
            rows.into_iter()
                .enumerate()
                .map(|(idx, cells)| Row {
                    number: idx as u64 + 1,
                    cells,
                })
                .collect::<Vec<_>>()
                .into_iter(),
        )
    }

    fn t(text: &str) -> Cell {
        Cell::Text(text.into())
    }

    #[test]
    fn the_header_is_found_below_a_title_and_unknown_columns_are_listed() {
        let mut source = rows(vec![
            vec![t("平凉市崆峒区流动党员花名册"), Cell::Empty, Cell::Empty],
            vec![],
            vec![t("填报单位：崆峒区委组织部")],
            vec![t("序号"), t("姓　名"), t("性别"), t("出生日期"), t("备注")],
            vec![
                Cell::Number(1.0),
                t("王宇"),
                t("男"),
                Cell::Date(date_of_iso("1990-05-17").unwrap()),
                t(""),
            ],
            vec![],
            vec![Cell::Number(2.0), t("李娜"), t("女"), t("1991/3/1")],
        ]);
        let header = Header::find(&mut source, &MEMBER_COLUMNS).unwrap();
        assert_eq!(header.row, 4);
        assert_eq!(header.skipped, 2, "the title and the unit line");
        let keys: Vec<&str> = header.columns.iter().map(|f| f.column.key).collect();
        assert_eq!(keys, ["name", "gender", "birth_date"]);
        assert_eq!(header.columns[0].header, "姓　名");
        let unknown: Vec<String> = header.unknown.iter().map(|u| u.to_string()).collect();
        assert_eq!(unknown, ["序号 (A)", "备注 (E)"]);
        let first = header.next(&mut source).unwrap().unwrap();
        assert_eq!(first.number, 5);
        assert_eq!(first.cells, ["王宇", "男", "1990-05-17"]);
        let second = header.next(&mut source).unwrap().unwrap();
        assert_eq!((second.number, second.cells[2].as_str()), (7, "1991/3/1"));
        assert_eq!(header.next(&mut source).unwrap(), None);
    }

    #[test]
    fn a_sheet_without_a_header_or_with_a_column_twice_is_refused() {
        let none = Header::find(&mut rows(vec![vec![t("a"), t("b")]; 40]), &MEMBER_COLUMNS);
        assert!(
            matches!(&none, Err(SheetError::NoHeader(m)) if m.contains("first 30 rows") && m.contains("姓名")),
            "{none:?}"
        );
        let empty = Header::find(&mut rows(vec![]), &MEMBER_COLUMNS);
        assert!(matches!(&empty, Err(SheetError::NoHeader(m)) if m.contains("no rows")));
        let twice = Header::find(
            &mut rows(vec![vec![t("姓名"), t("性别"), t("name")]]),
            &MEMBER_COLUMNS,
        )
        .unwrap_err();
        assert_eq!(
            twice.to_string(),
            "row 1: the columns 姓名 (A) and name (C) both are `姓名`: keep one and delete the other"
        );
    }

    #[test]
    fn cells_read_as_their_column_takes_them() {
        let date = Cell::Date(date_of_iso("2026-03-01").unwrap());
        assert_eq!(text_of(Kind::Date, &date).unwrap(), "2026-03-01");
        assert_eq!(text_of(Kind::Text, &date).unwrap(), "2026-03-01");
        assert_eq!(
            text_of(Kind::Date, &t(" 2026年3月1日 ")).unwrap(),
            "2026年3月1日"
        );
        assert_eq!(
            text_of(Kind::Date, &Cell::Number(20260301.0)).unwrap(),
            "20260301"
        );
        assert!(text_of(Kind::Date, &Cell::Number(46082.0))
            .unwrap_err()
            .contains("not a date"));
        assert_eq!(
            text_of(Kind::Digits, &Cell::Number(13800000000.0)).unwrap(),
            "13800000000"
        );
        assert_eq!(text_of(Kind::Text, &Cell::Number(1.5)).unwrap(), "1.5");
        assert_eq!(text_of(Kind::YesNo, &Cell::Bool(true)).unwrap(), "是");
        assert!(text_of(Kind::Text, &Cell::Error("#REF!".into()))
            .unwrap_err()
            .contains("#REF!"));
        for id in [
            Cell::Number(620802199005170000.0),
            t("6.20881E+17"),
            t("6.20802E17"),
        ] {
            let why = text_of(Kind::IdNumber, &id).unwrap_err();
            assert!(why.contains("format the ID column as text"), "{why}");
        }
        assert_eq!(
            text_of(Kind::IdNumber, &t("62080219900517001x")).unwrap(),
            "62080219900517001x"
        );
    }

    #[test]
    fn column_letters() {
        let names: Vec<String> = [0, 1, 25, 26, 27, 51, 52, 701, 702].map(letters).to_vec();
        assert_eq!(names, ["A", "B", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA"]);
    }
}

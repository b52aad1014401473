//! Workbooks read with calamine: an `.xlsx` cell by cell as its XML is
//! unzipped (the reader keeps the workbook's shared strings and styles in
//! memory, and one row of cells), an `.xls` sheet whole (the format holds
//! at most 65,536 rows).

use std::io::{Read, Seek};

use calamine::{Data, DataRef, ExcelDateTime, Reader, SheetType, SheetVisible, Xls, Xlsx};
use liaison_types::sheet::{self, Cell, Row, RowSource, SheetError};

use super::Format;

/// The most columns a row is read to (Excel's own limit): a cell beyond
/// is not in any table.
const COLUMNS_MAX: u32 = 16_384;

pub(super) fn read_xlsx<RS: Read + Seek, T>(
    input: RS,
    sheet: Option<&str>,
    read: impl FnOnce(&Format, &mut dyn RowSource) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut workbook = damage_is_an_error(|| Xlsx::new(input))?.map_err(|e| {
        SheetError::Read(format!(
            "the file is not an Excel workbook that can be read ({e}): open it in the spreadsheet and save it again as .xlsx (or as CSV)"
        ))
    })?;
    let name = pick(workbook.sheets_metadata(), sheet)?;
    let cells = damage_is_an_error(|| workbook.worksheet_cells_reader(&name))?
        .map_err(|e| SheetError::Read(format!("sheet {name} cannot be read: {e}")))?;
    let mut rows = XlsxRows {
        cells,
        pending: None,
        ended: false,
    };
    read(&Format::Workbook { sheet: name }, &mut rows)
}

pub(super) fn read_xls<RS: Read + Seek, T>(
    input: RS,
    sheet: Option<&str>,
    read: impl FnOnce(&Format, &mut dyn RowSource) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut workbook = damage_is_an_error(|| Xls::new(input))?.map_err(|e| {
        SheetError::Read(format!(
            "the file is not an Excel workbook that can be read ({e}): open it in the spreadsheet and save it again as .xlsx (or as CSV)"
        ))
    })?;
    let name = pick(workbook.sheets_metadata(), sheet)?;
    let range = damage_is_an_error(|| workbook.worksheet_range(&name))?
        .map_err(|e| SheetError::Read(format!("sheet {name} cannot be read: {e}")))?;
    let (top, left) = range.start().unwrap_or((0, 0));
    let mut rows = range.rows().enumerate().map(|(idx, cells)| {
        let mut row = vec![Cell::Empty; left as usize];
        row.extend(cells.iter().map(cell_of_data));
        Row {
            number: u64::from(top) + idx as u64 + 1,
            cells: row,
        }
    });
    let mut source = XlsRows(&mut rows);
    read(&Format::Workbook { sheet: name }, &mut source)
}

/// The sheet to read: the one named, or the first visible worksheet.
fn pick(sheets: &[calamine::Sheet], wanted: Option<&str>) -> Result<String, SheetError> {
    let mut worksheets = sheets.iter().filter(|s| s.typ == SheetType::WorkSheet);
    let found = match wanted {
        Some(name) => worksheets.find(|s| s.name == name),
        None => worksheets.find(|s| s.visible == SheetVisible::Visible),
    };
    match (found, wanted) {
        (Some(sheet), _) => Ok(sheet.name.clone()),
        (None, Some(name)) => {
            let names: Vec<&str> = sheets.iter().map(|s| s.name.as_str()).collect();
            Err(SheetError::Read(format!(
                "the workbook has no sheet `{name}`: its sheets are {}",
                names.join(", ")
            )))
        }
        (None, None) => Err(SheetError::Read(
            "the workbook has no visible worksheet to read".into(),
        )),
    }
}

/// An `.xlsx` sheet's rows, gathered from its cells in the order of the
/// file.
struct XlsxRows<'a, RS: Read + Seek> {
    cells: calamine::XlsxCellReader<'a, RS>,
    /// The first cell of the next row, read while finding this row's end.
    pending: Option<calamine::Cell<DataRef<'a>>>,
    /// The sheet's cells have ended (the reader must not be asked again).
    ended: bool,
}

impl<'a, RS: Read + Seek> XlsxRows<'a, RS> {
    fn next_cell(&mut self) -> Result<Option<calamine::Cell<DataRef<'a>>>, SheetError> {
        if self.ended {
            return Ok(None);
        }
        let cells = &mut self.cells;
        let cell = match damage_is_an_error(|| cells.next_cell()) {
            Ok(cell) => cell,
            Err(e) => {
                self.ended = true;
                return Err(e);
            }
        }
        .map_err(|e| SheetError::Read(format!("the sheet cannot be read: {e}")))?;
        self.ended = cell.is_none();
        Ok(cell)
    }
}

/// Runs one of calamine's steps over the file's bytes. Some damaged files
/// make it panic (an arithmetic overflow in a cell reference, say): that
/// is a file that cannot be read, refused as any such file is, and the
/// command changes nothing. The panic's own message is not printed: the
/// operator reads the refusal only.
fn damage_is_an_error<T>(step: impl FnOnce() -> T) -> Result<T, SheetError> {
    quiet_panics::install();
    let _quiet = quiet_panics::Quiet::on();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)).map_err(|_| {
        SheetError::Read(
            "the workbook is damaged and cannot be read: open it in the spreadsheet and save it again as .xlsx (or as CSV)"
                .into(),
        )
    })
}

/// A panic hook that stays silent on a thread while it reads a workbook,
/// and hands every other panic to the hook that was there before.
mod quiet_panics {
    use std::cell::Cell;
    use std::sync::Once;

    thread_local! {
        static QUIET: Cell<bool> = const { Cell::new(false) };
    }

    pub(super) fn install() {
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let before = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if !QUIET.with(Cell::get) {
                    before(info);
                }
            }));
        });
    }

    /// Silences this thread's panics until dropped.
    pub(super) struct Quiet(bool);

    impl Quiet {
        pub(super) fn on() -> Self {
            Quiet(QUIET.with(|q| q.replace(true)))
        }
    }

    impl Drop for Quiet {
        fn drop(&mut self) {
            QUIET.with(|q| q.set(self.0));
        }
    }
}

impl<RS: Read + Seek> RowSource for XlsxRows<'_, RS> {
    fn next_row(&mut self) -> Result<Option<Row>, SheetError> {
        let first = match self.pending.take() {
            Some(cell) => cell,
            None => match self.next_cell()? {
                Some(cell) => cell,
                None => return Ok(None),
            },
        };
        let row_idx = first.get_position().0;
        let mut row = Vec::new();
        put(&mut row, &first);
        loop {
            match self.next_cell()? {
                Some(cell) if cell.get_position().0 == row_idx => put(&mut row, &cell),
                Some(cell) => {
                    self.pending = Some(cell);
                    break;
                }
                None => break,
            }
        }
        Ok(Some(Row {
            number: u64::from(row_idx) + 1,
            cells: row,
        }))
    }
}

fn put(row: &mut Vec<Cell>, cell: &calamine::Cell<DataRef<'_>>) {
    let column = cell.get_position().1;
    let value = cell_of_ref(cell.get_value());
    if column >= COLUMNS_MAX || value == Cell::Empty {
        return;
    }
    let column = column as usize;
    if row.len() <= column {
        row.resize(column + 1, Cell::Empty);
    }
    row[column] = value;
}

/// An `.xls` sheet's rows.
struct XlsRows<'r, I: Iterator<Item = Row>>(&'r mut I);

impl<I: Iterator<Item = Row>> RowSource for XlsRows<'_, I> {
    fn next_row(&mut self) -> Result<Option<Row>, SheetError> {
        Ok(self.0.next())
    }
}

fn date_cell(at: &ExcelDateTime) -> Cell {
    match at.as_datetime() {
        Some(at) if at_is_date(at) => Cell::Date(at),
        _ => Cell::Number(at.as_f64()),
    }
}

/// Whether a date cell holds a date (not a duration or a bare time).
fn at_is_date(at: chrono::NaiveDateTime) -> bool {
    chrono::Datelike::year(&at) > 1900
}

fn cell_of_ref(value: &DataRef<'_>) -> Cell {
    match value {
        DataRef::Empty => Cell::Empty,
        DataRef::String(text) => Cell::Text(text.clone()),
        DataRef::SharedString(text) => Cell::Text((*text).to_owned()),
        DataRef::Int(value) => Cell::Number(*value as f64),
        DataRef::Float(value) => Cell::Number(*value),
        DataRef::Bool(value) => Cell::Bool(*value),
        DataRef::DateTime(at) if at.is_datetime() => date_cell(at),
        DataRef::DateTime(at) => Cell::Number(at.as_f64()),
        DataRef::DateTimeIso(text) => {
            sheet::date_of_iso(text).map_or_else(|| Cell::Text(text.clone()), Cell::Date)
        }
        DataRef::DurationIso(text) => Cell::Text(text.clone()),
        DataRef::Error(error) => Cell::Error(error.to_string()),
    }
}

fn cell_of_data(value: &Data) -> Cell {
    match value {
        Data::Empty => Cell::Empty,
        Data::String(text) => Cell::Text(text.clone()),
        Data::Int(value) => Cell::Number(*value as f64),
        Data::Float(value) => Cell::Number(*value),
        Data::Bool(value) => Cell::Bool(*value),
        Data::DateTime(at) if at.is_datetime() => date_cell(at),
        Data::DateTime(at) => Cell::Number(at.as_f64()),
        Data::DateTimeIso(text) => {
            sheet::date_of_iso(text).map_or_else(|| Cell::Text(text.clone()), Cell::Date)
        }
        Data::DurationIso(text) => Cell::Text(text.clone()),
        Data::Error(error) => Cell::Error(error.to_string()),
    }
}

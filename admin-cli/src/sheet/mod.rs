//! Spreadsheets on the operator's side: reading the file an import names
//! (an `.xlsx` workbook, an `.xls` of older Excel, or CSV in the encodings
//! offices save: `liaison_types::sheet::csv`) as rows, and writing the
//! workbooks `member export --xlsx` and `member template` make ([`write`]).
//!
//! `liaisonctl` reads the file, not the node: the node takes the rows as
//! text (a date cell as `YYYY-MM-DD`) and checks them, and never opens a
//! file an operator was sent, so a broken or hostile workbook can cost
//! this process at most.

pub mod send;
pub mod write;
mod xlsx;

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
use std::path::Path;

use anyhow::Context as _;
use liaison_types::sheet::csv::{CsvSource, TextEncoding};
use liaison_types::sheet::{RowSource, SheetError};

/// What a file was read as, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// An Excel workbook (`.xlsx` or `.xls`), and the sheet read.
    Workbook {
        sheet: String,
    },
    Csv {
        encoding: TextEncoding,
    },
}

impl Format {
    /// The sheet's name as problems are prefixed with (`sheet 花名册, `);
    /// nothing for a CSV file, which has one.
    pub fn sheet_prefix(&self) -> String {
        match self {
            Format::Workbook { sheet } => format!("sheet {sheet}, "),
            Format::Csv { .. } => String::new(),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Format::Workbook { sheet } => write!(f, "workbook, sheet {sheet}"),
            Format::Csv { encoding } => write!(f, "CSV in {encoding}"),
        }
    }
}

/// The start of a zip archive (an `.xlsx`) and of an OLE compound file
/// (an `.xls` of Excel 97–2003).
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
const OLE_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0";

/// Opens `path` (`-` for stdin) and hands `read` its rows: of the sheet
/// named `sheet` in a workbook, or of its first visible sheet. What the
/// file is, is told by its first bytes, not its name. A file that cannot
/// be read as a table is a [`SheetError`] (the operator's to fix); one
/// that cannot be opened is another error.
pub fn read<T>(
    path: &Path,
    sheet: Option<&str>,
    read: impl FnOnce(&Format, &mut dyn RowSource) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    if path == Path::new("-") {
        let mut stdin = std::io::stdin().lock();
        let mut start = vec![0; 4];
        let n = read_up_to(&mut stdin, &mut start).context("cannot read stdin")?;
        start.truncate(n);
        if start.starts_with(ZIP_MAGIC) || start.starts_with(OLE_MAGIC) {
            // A workbook is read by seeking: held in memory.
            let ole = start.starts_with(OLE_MAGIC);
            let mut bytes = start;
            stdin.read_to_end(&mut bytes).context("cannot read stdin")?;
            return read_workbook(Cursor::new(bytes), ole, sheet, read);
        }
        return read_csv(Cursor::new(start).chain(stdin), read);
    }
    let mut file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut start = vec![0; 4];
    let n = read_up_to(&mut file, &mut start)
        .with_context(|| format!("cannot read {}", path.display()))?;
    start.truncate(n);
    file.rewind()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if start.starts_with(ZIP_MAGIC) || start.starts_with(OLE_MAGIC) {
        return read_workbook(
            BufReader::new(file),
            start.starts_with(OLE_MAGIC),
            sheet,
            read,
        );
    }
    if sheet.is_some() {
        return Err(SheetError::Read(
            "--sheet names a sheet of a workbook, and this file is CSV".into(),
        )
        .into());
    }
    read_csv(BufReader::new(file), read)
}

fn read_csv<R: Read, T>(
    input: R,
    read: impl FnOnce(&Format, &mut dyn RowSource) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut source = CsvSource::open(input)?;
    let format = Format::Csv {
        encoding: source.encoding(),
    };
    read(&format, &mut source)
}

fn read_workbook<RS: Read + Seek, T>(
    input: RS,
    ole: bool,
    sheet: Option<&str>,
    read: impl FnOnce(&Format, &mut dyn RowSource) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    if ole {
        xlsx::read_xls(input, sheet, read)
    } else {
        xlsx::read_xlsx(input, sheet, read)
    }
}

/// Reads until `buf` is full or the input ends; how much was read.
fn read_up_to(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use liaison_types::sheet::{Header, MEMBER_COLUMNS};

    /// The workbook an office suite wrote (tests/fixtures/README.md): the
    /// merged title and unit lines skipped, date cells as dates, the
    /// columns of the office's own left out.
    #[test]
    fn the_office_suite_fixture_reads() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/roster-libreoffice.xlsx");
        let (format, header_row, rows) = read(&path, None, |format, source| {
            let header = Header::find(source, &MEMBER_COLUMNS)?;
            let mut rows = Vec::new();
            while let Some(row) = header.next(source)? {
                rows.push((row.number, row.cells));
            }
            Ok((format.clone(), header.row, rows))
        })
        .unwrap();
        assert_eq!(
            format,
            Format::Workbook {
                sheet: "花名册".into()
            }
        );
        assert_eq!(header_row, 3);
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0],
            (
                4,
                [
                    "王宇",
                    "男",
                    "1990-05-17",
                    "620802199005170010",
                    "正式",
                    "崆峒区农村第一党支部",
                    "兰州市城关区",
                    "2026-03-01"
                ]
                .map(str::to_owned)
                .to_vec()
            )
        );
        assert_eq!(rows[1].1[6..], ["", ""]);
    }

    #[test]
    fn what_is_no_workbook_is_refused_and_csv_has_no_sheets() {
        let dir = std::env::temp_dir().join(format!("liaisonctl-sheet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let broken = dir.join("broken.xlsx");
        std::fs::write(&broken, b"PK\x03\x04 not a zip at all").unwrap();
        let error = read(&broken, None, |_, _| Ok(())).unwrap_err();
        assert!(error.downcast_ref::<SheetError>().is_some(), "{error}");
        assert!(
            error.to_string().contains("save it again as .xlsx"),
            "{error}"
        );
        let csv = dir.join("roster.csv");
        std::fs::write(&csv, "姓名,性别\n王宇,男\n").unwrap();
        let error = read(&csv, Some("花名册"), |_, _| Ok(())).unwrap_err();
        assert!(error.to_string().contains("this file is CSV"), "{error}");
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/roster-libreoffice.xlsx");
        let error = read(&fixture, Some("Sheet9"), |_, _| Ok(())).unwrap_err();
        assert!(
            error.to_string().contains("its sheets are 花名册"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
#[path = "../proptest_config.rs"]
mod proptest_config;

/// A workbook an operator was sent may hold anything: reading it never
/// panics, whatever its bytes. Cases mutate the office suite's workbook
/// (bytes changed, the file cut short); 96 per property in every `cargo
/// test`, from a seed printed with a failure (`PROPTEST_RNG_SEED`
/// replays it, `PROPTEST_CASES` runs more).
#[cfg(test)]
mod properties {
    use std::io::Cursor;

    use liaison_types::sheet::{Header, MEMBER_COLUMNS};
    use proptest::prelude::*;
    use proptest::test_runner::Config;

    use super::proptest_config;

    /// Failures are not written to a regression file: the cases are bytes
    /// of a workbook, replayed from the printed seed.
    fn config() -> Config {
        Config {
            failure_persistence: None,
            ..proptest_config::config()
        }
    }

    fn fixture() -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/roster-libreoffice.xlsx");
        std::fs::read(path).expect("the fixture")
    }

    /// Reads every row of `bytes` as a workbook; a refusal is a message.
    fn check(bytes: Vec<u8>) -> Result<(), TestCaseError> {
        let read = super::read_workbook(Cursor::new(bytes), false, None, |_, source| {
            let header = Header::find(source, &MEMBER_COLUMNS)?;
            while header.next(source)?.is_some() {}
            Ok(())
        });
        if let Err(e) = read {
            prop_assert!(!e.to_string().is_empty());
        }
        Ok(())
    }

    /// Bytes changed at the given places of the fixture.
    fn changed() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8).prop_map(
            |changes| {
                let mut bytes = fixture();
                for (at, byte) in changes {
                    let at = at.index(bytes.len());
                    bytes[at] = byte;
                }
                bytes
            },
        )
    }

    /// A seed whose cases made calamine overflow a cell reference (a panic
    /// in a debug build): reading them never panics, and a refusal says
    /// why.
    #[test]
    fn a_workbook_damaged_in_a_cell_reference_never_panics_seed_993058142949520336() {
        let mut runner = proptest::test_runner::TestRunner::new(Config {
            rng_seed: proptest::test_runner::RngSeed::Fixed(993_058_142_949_520_336),
            cases: 96,
            failure_persistence: None,
            ..Config::default()
        });
        runner.run(&changed(), check).unwrap();
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn a_workbook_with_bytes_changed_never_panics(bytes in changed()) {
            check(bytes)?;
        }

        #[test]
        fn a_workbook_cut_short_never_panics(keep in any::<prop::sample::Index>()) {
            let mut bytes = fixture();
            bytes.truncate(keep.index(bytes.len()));
            check(bytes)?;
        }
    }
}

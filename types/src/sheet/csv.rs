//! CSV files as offices save them: UTF-8 with or without a byte-order
//! mark, or GB18030/GBK (what Chinese Excel writes by default, "CSV
//! (逗号分隔)"), or UTF-16 with a mark and tabs (Excel's "Unicode text").
//!
//! The encoding is decided from the file's start: a byte-order mark says
//! it; otherwise the first bytes that are not ASCII (up to [`PROBE_BYTES`]
//! past them) are valid UTF-8 or the file is read as GB18030, of which GBK
//! is a part. The rest is decoded as it is read, strictly: a byte that is
//! not text in that encoding stops the reading with its offset, instead of
//! turning into a replacement character in someone's name.

use std::io::{self, Read};

use encoding_rs::{Decoder, DecoderResult, Encoding, GB18030, UTF_16BE, UTF_16LE, UTF_8};

use super::{Cell, Row, RowSource, SheetError};

/// How far past the first non-ASCII byte the encoding is judged.
pub const PROBE_BYTES: usize = 64 * 1024;

/// How much of a file that is all ASCII is looked at before deciding it
/// is UTF-8 (a GBK file with a long English start would be misread; its
/// first Chinese byte then stops the reading, naming the encoding).
const ASCII_PROBE_MAX: usize = 1024 * 1024;

/// The encoding a CSV file was read in, as the report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    Utf8,
    Utf8Bom,
    Gb18030,
    Utf16,
}

impl std::fmt::Display for TextEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TextEncoding::Utf8 => "UTF-8",
            TextEncoding::Utf8Bom => "UTF-8 with BOM",
            TextEncoding::Gb18030 => "GB18030 (GBK)",
            TextEncoding::Utf16 => "UTF-16",
        })
    }
}

/// The rows of a CSV file, decoded as they are read.
pub struct CsvSource<R: Read> {
    records: csv::Reader<Decoding<R>>,
    record: csv::StringRecord,
    number: u64,
    encoding: TextEncoding,
}

impl<R: Read> CsvSource<R> {
    /// Opens a CSV file: reads its start to decide the encoding and the
    /// separator (a comma, or a tab in a tab-separated file).
    pub fn open(mut input: R) -> Result<CsvSource<R>, SheetError> {
        let start = probe(&mut input)
            .map_err(|e| SheetError::Read(format!("cannot read the file: {e}")))?;
        let (encoding, label) = detect(&start);
        let decoder = match label {
            TextEncoding::Gb18030 => encoding.new_decoder_without_bom_handling(),
            _ => encoding.new_decoder_with_bom_removal(),
        };
        let (text, _) = encoding.decode_without_bom_handling(&start);
        let delimiter = separator(&text);
        let decoding = Decoding {
            inner: input,
            decoder,
            encoding: label,
            input: start,
            at: 0,
            eof: false,
            offset: 0,
            out: vec![0; 16 * 1024],
            out_at: 0,
            out_end: 0,
            finished: false,
            failed: None,
        };
        let records = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(decoding);
        Ok(CsvSource {
            records,
            record: csv::StringRecord::new(),
            number: 0,
            encoding: label,
        })
    }

    /// The encoding the file is read in.
    pub fn encoding(&self) -> TextEncoding {
        self.encoding
    }
}

impl<R: Read> RowSource for CsvSource<R> {
    /// Every record is a row, numbered as a spreadsheet opening the file
    /// shows it (a cell with a line break inside stays one row).
    fn next_row(&mut self) -> Result<Option<Row>, SheetError> {
        match self.records.read_record(&mut self.record) {
            Ok(false) => Ok(None),
            Ok(true) => {
                self.number += 1;
                let cells = self
                    .record
                    .iter()
                    .map(|cell| {
                        if cell.trim().is_empty() {
                            Cell::Empty
                        } else {
                            Cell::Text(cell.to_owned())
                        }
                    })
                    .collect();
                Ok(Some(Row {
                    number: self.number,
                    cells,
                }))
            }
            Err(e) => Err(SheetError::Read(match e.kind() {
                csv::ErrorKind::Io(io) => io.to_string(),
                _ => format!("row {}: {e}", self.number + 1),
            })),
        }
    }
}

/// Reads the file's start: up to [`PROBE_BYTES`] past its first non-ASCII
/// byte, or the whole file if shorter.
fn probe(input: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut start = Vec::new();
    let mut chunk = vec![0; 16 * 1024];
    let mut first_non_ascii = None;
    loop {
        let n = match input.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(start);
        }
        if first_non_ascii.is_none() {
            first_non_ascii = chunk[..n]
                .iter()
                .position(|b| !b.is_ascii())
                .map(|at| start.len() + at);
        }
        start.extend_from_slice(&chunk[..n]);
        let enough = match first_non_ascii {
            Some(at) => start.len() >= at + PROBE_BYTES,
            None => start.len() >= ASCII_PROBE_MAX,
        };
        if enough {
            return Ok(start);
        }
    }
}

/// The encoding of a file that starts with `start`.
fn detect(start: &[u8]) -> (&'static Encoding, TextEncoding) {
    if start.starts_with(b"\xEF\xBB\xBF") {
        return (UTF_8, TextEncoding::Utf8Bom);
    }
    if start.starts_with(b"\xFF\xFE") {
        return (UTF_16LE, TextEncoding::Utf16);
    }
    if start.starts_with(b"\xFE\xFF") {
        return (UTF_16BE, TextEncoding::Utf16);
    }
    match std::str::from_utf8(start) {
        Ok(_) => (UTF_8, TextEncoding::Utf8),
        // Cut in the middle of a character at the probe's end.
        Err(e) if e.error_len().is_none() => (UTF_8, TextEncoding::Utf8),
        Err(_) => (GB18030, TextEncoding::Gb18030),
    }
}

/// A tab if the first lines hold more tabs than commas, else a comma.
fn separator(text: &str) -> u8 {
    let lines: String = text.lines().take(5).collect();
    let tabs = lines.matches('\t').count();
    let commas = lines.matches(',').count();
    if tabs > commas {
        b'\t'
    } else {
        b','
    }
}

/// A reader of the file's text as UTF-8, decoding as it reads.
struct Decoding<R> {
    inner: R,
    decoder: Decoder,
    encoding: TextEncoding,
    /// Bytes read and not decoded yet, from `at`.
    input: Vec<u8>,
    at: usize,
    eof: bool,
    /// The file offset of `input[at]`.
    offset: u64,
    out: Vec<u8>,
    out_at: usize,
    out_end: usize,
    /// The decoder has seen the end (it must not be used again).
    finished: bool,
    /// Why the text stopped, told again to a reader that reads on.
    failed: Option<String>,
}

impl<R: Read> Decoding<R> {
    /// Decodes more into `out`; false at the end of the file.
    fn fill(&mut self) -> io::Result<bool> {
        if let Some(why) = &self.failed {
            return Err(io::Error::new(io::ErrorKind::InvalidData, why.clone()));
        }
        if self.finished {
            return Ok(false);
        }
        loop {
            if self.at == self.input.len() && !self.eof {
                self.input.resize(16 * 1024, 0);
                let n = loop {
                    match self.inner.read(&mut self.input) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                };
                self.input.truncate(n);
                self.at = 0;
                self.eof = n == 0;
            }
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                &self.input[self.at..],
                &mut self.out,
                self.eof,
            );
            self.at += read;
            self.offset += read as u64;
            self.out_at = 0;
            self.out_end = written;
            match result {
                DecoderResult::Malformed(bad, after) => {
                    let at = self.offset - u64::from(bad) - u64::from(after);
                    let why = format!(
                        "byte {at} is not {} text, which the file starts in: save the file again as \"CSV UTF-8\" (or CSV in GBK) from the spreadsheet",
                        self.encoding
                    );
                    self.failed = Some(why.clone());
                    return Err(io::Error::new(io::ErrorKind::InvalidData, why));
                }
                DecoderResult::OutputFull => return Ok(true),
                DecoderResult::InputEmpty if self.eof => {
                    self.finished = true;
                    return Ok(written > 0);
                }
                DecoderResult::InputEmpty if written > 0 => return Ok(true),
                DecoderResult::InputEmpty => {}
            }
        }
    }
}

impl<R: Read> Read for Decoding<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.out_at == self.out_end && !self.fill()? {
            return Ok(0);
        }
        let n = buf.len().min(self.out_end - self.out_at);
        buf[..n].copy_from_slice(&self.out[self.out_at..self.out_at + n]);
        self.out_at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Header, MEMBER_COLUMNS};
    use super::*;

    const ROSTER: &str = "姓名,性别,出生日期,党员类别,所在支部\n王宇,男,1990-05-17,正式,b1\n李𬱖,女,1991/3/1,预备,b1\n";

    fn rows(bytes: &[u8]) -> (TextEncoding, Vec<Vec<String>>) {
        let mut source = CsvSource::open(bytes).unwrap();
        let header = Header::find(&mut source, &MEMBER_COLUMNS).unwrap();
        let mut rows = Vec::new();
        while let Some(read) = header.next(&mut source).unwrap() {
            rows.push(read.cells);
        }
        (source.encoding(), rows)
    }

    #[test]
    fn utf8_with_or_without_a_mark_gb18030_and_gbk_read_alike() {
        let plain = rows(ROSTER.as_bytes());
        assert_eq!(plain.0, TextEncoding::Utf8);
        assert_eq!(plain.1[1][0], "李𬱖");
        let marked = rows(format!("\u{feff}{ROSTER}").as_bytes());
        assert_eq!(marked, (TextEncoding::Utf8Bom, plain.1.clone()));
        let (gb18030, _, unmappable) = GB18030.encode(ROSTER);
        assert!(!unmappable);
        assert_eq!(rows(&gb18030), (TextEncoding::Gb18030, plain.1.clone()));
        // GBK has no 𬱖 (a 4-byte character of GB18030): a GBK file is
        // GB18030 without it.
        let gbk_text = ROSTER.replace('𬱖', "娜");
        let (gbk, _, unmappable) = encoding_rs::GBK.encode(&gbk_text);
        assert!(!unmappable);
        assert_eq!(rows(&gbk).1[1][0], "李娜");
        let mut utf16 = vec![0xFF, 0xFE];
        for unit in ROSTER.replace(',', "\t").encode_utf16() {
            utf16.extend_from_slice(&unit.to_le_bytes());
        }
        assert_eq!(rows(&utf16), (TextEncoding::Utf16, plain.1));
    }

    #[test]
    fn a_byte_that_is_not_text_in_the_files_encoding_is_named() {
        // Past the probe: the start is UTF-8, a GBK line comes later.
        let mut bytes = ROSTER.as_bytes().to_vec();
        while bytes.len() < 2 * PROBE_BYTES {
            bytes.extend_from_slice("王宇,男,1990-05-17,正式,b1\n".as_bytes());
        }
        let at = bytes.len();
        bytes.extend_from_slice(b"\xFF\xFE,x\n");
        let mut source = CsvSource::open(&bytes[..]).unwrap();
        let header = Header::find(&mut source, &MEMBER_COLUMNS).unwrap();
        let mut error = None;
        loop {
            match header.next(&mut source) {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let error = error.expect("the bad byte stops the reading").to_string();
        assert!(
            error.contains(&format!("byte {at} is not UTF-8")),
            "{error}"
        );
    }

    #[test]
    fn a_long_file_decodes_across_buffers() {
        let mut text = String::from("姓名,性别\n");
        for idx in 0..20_000 {
            text.push_str(&format!("党员{idx},男\n"));
        }
        let (gbk, _, _) = encoding_rs::GBK.encode(&text);
        let (encoding, rows) = rows(&gbk);
        assert_eq!(encoding, TextEncoding::Gb18030);
        assert_eq!(rows.len(), 20_000);
        assert_eq!(rows[19_999], ["党员19999", "男"]);
    }
}

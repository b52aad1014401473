//! A roster's rows as the node's import takes them (`MemberImport`): the
//! header found, each row below as one text per column, sent in chunks
//! while the file is read, and the last chunk counting them all.

use liaison_proto::v1 as pb;
use liaison_types::sheet::csv::CsvSource;
use liaison_types::sheet::{Header, RowSource, SheetError, Unknown, MEMBER_COLUMNS};

/// Rows per message: small enough that the node starts on the first rows
/// while the rest are read, large enough that messages cost little.
pub const CHUNK_ROWS: usize = 256;

/// What was read of a roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The header's row, and how many rows with something in them were
    /// above it (a title).
    pub header_row: u64,
    pub skipped_above: u64,
    /// Header cells that name no column of the roster (序号, 备注): their
    /// cells are not sent.
    pub unknown: Vec<Unknown>,
    pub rows: u64,
    /// Whether the node stopped taking rows before the end (it refused
    /// the import): the answer says why.
    pub cut: bool,
}

/// Finds the header of `source` and sends its rows through `send` (which
/// answers false once the node takes no more), `start` in the first
/// chunk. With `strict`, a column the roster does not have is refused
/// before anything is sent.
pub fn send(
    source: &mut dyn RowSource,
    start: pb::MemberImportStart,
    strict: bool,
    send: &mut dyn FnMut(pb::MemberImportChunk) -> bool,
) -> Result<Sent, SheetError> {
    let header = Header::find(source, &MEMBER_COLUMNS)?;
    if strict && !header.unknown.is_empty() {
        let unknown: Vec<String> = header.unknown.iter().map(Unknown::to_string).collect();
        return Err(SheetError::Read(format!(
            "row {}: the roster has no columns {}: delete them, or import without --strict to pass them over",
            header.row,
            unknown.join(", ")
        )));
    }
    let columns = header
        .columns
        .iter()
        .map(|found| pb::ImportColumn {
            field: found.column.key.to_owned(),
            header: found.header.clone(),
        })
        .collect();
    let mut chunk = pb::MemberImportChunk {
        start: Some(pb::MemberImportStart { columns, ..start }),
        ..Default::default()
    };
    let mut sent = Sent {
        header_row: header.row,
        skipped_above: header.skipped,
        unknown: header.unknown.clone(),
        rows: 0,
        cut: false,
    };
    while let Some(read) = header.next(source)? {
        chunk.rows.push(pb::ImportRow {
            row: read.number,
            cells: read.cells,
            problems: read
                .problems
                .into_iter()
                .map(|(column, message)| pb::CellProblem {
                    column: column as u32,
                    message,
                })
                .collect(),
        });
        sent.rows += 1;
        if chunk.rows.len() >= CHUNK_ROWS && !send(std::mem::take(&mut chunk)) {
            sent.cut = true;
            return Ok(sent);
        }
    }
    chunk.end_rows = Some(sent.rows);
    sent.cut = !send(chunk);
    Ok(sent)
}

/// The messages of a CSV roster held in memory (the demo's, the tests').
pub fn csv_chunks(
    csv: &[u8],
    start: pb::MemberImportStart,
) -> Result<Vec<pb::MemberImportChunk>, SheetError> {
    let mut source = CsvSource::open(csv)?;
    let mut chunks = Vec::new();
    send(&mut source, start, false, &mut |chunk| {
        chunks.push(chunk);
        true
    })?;
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_go_in_chunks_the_first_saying_what_they_are_the_last_counting_them() {
        let mut csv = String::from("花名册\n序号,姓名,性别,出生日期,党员类别,所在支部\n");
        for idx in 0..600 {
            csv.push_str(&format!("{idx},党员{idx},男,1990-05-17,正式,b1\n"));
        }
        let chunks = csv_chunks(
            csv.as_bytes(),
            pb::MemberImportStart {
                update: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(chunks.len(), 3);
        let start = chunks[0].start.as_ref().unwrap();
        assert!(start.update);
        let fields: Vec<&str> = start.columns.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "name",
                "gender",
                "birth_date",
                "party_status",
                "home_branch"
            ]
        );
        assert!(chunks[1].start.is_none() && chunks[1].end_rows.is_none());
        assert_eq!(chunks[2].end_rows, Some(600));
        assert_eq!(chunks[0].rows[0].row, 3);
        assert_eq!(chunks[0].rows[0].cells[0], "党员0");
        assert_eq!(chunks.iter().map(|c| c.rows.len()).sum::<usize>(), 600);
    }

    #[test]
    fn strict_refuses_columns_the_roster_does_not_have_before_sending() {
        let csv = "序号,姓名,性别,备注\n1,王宇,男,\n";
        let mut source = CsvSource::open(csv.as_bytes()).unwrap();
        let mut sent = 0;
        let refused = send(&mut source, Default::default(), true, &mut |_| {
            sent += 1;
            true
        })
        .unwrap_err();
        assert_eq!(sent, 0);
        assert!(
            refused.to_string().contains("序号 (A), 备注 (D)"),
            "{refused}"
        );
    }
}

//! The roster in spreadsheets: `member import` (a workbook or CSV, new
//! members or an update), `member export` (CSV or a workbook) and
//! `member template` (a workbook to fill in).
//!
//! The file is read here and its rows streamed to the node as they are
//! read (`liaisonctl::sheet`); the node checks every row and names each
//! bad one, by row and column.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use liaison_proto::v1 as pb;
use liaison_types::places;
use liaison_types::sheet::{columns, SheetError, MEMBER_COLUMNS};
use liaisonctl::output::{self, dash, json_line, Format};
use liaisonctl::sheet::send::{self, Sent};
use liaisonctl::sheet::write::{self, Headers};
use liaisonctl::sheet::{self as sheets, Format as FileFormat};
use serde_json::json;

use super::{Admin, Failure};

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The roster: an Excel workbook (.xlsx, .xls) or a CSV file (UTF-8,
    /// or GBK/GB18030 as Chinese Excel saves it); `-` reads stdin. A title
    /// above the header is skipped; columns the roster does not have (序号,
    /// 备注) are passed over, with a warning.
    pub file: PathBuf,
    /// The sheet to read (default: the workbook's first).
    #[arg(long)]
    pub sheet: Option<String>,
    /// Change the members already here where the sheet differs, found by
    /// 公民身份号码 (or 成员编号, from an export); other rows are new members.
    /// Members not in the sheet are left as they are.
    #[arg(long)]
    pub update: bool,
    /// Import the good rows and skip the bad ones (default: import nothing
    /// if any row is bad).
    #[arg(long)]
    pub skip_bad: bool,
    /// Check the file and list what would change; import nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Refuse a sheet with columns the roster does not have (default: pass
    /// them over, with a warning).
    #[arg(long)]
    pub strict: bool,
}

/// The headers (and forms of values) of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HeaderLanguage {
    /// 姓名, 性别, …: branches and places by name and code, 是/否; a CSV
    /// starts with a byte-order mark so that Excel reads it as UTF-8.
    Zh,
    /// name, gender, …: codes and yes/no, no byte-order mark (the form of
    /// earlier versions, for scripts).
    En,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Write the CSV to this file (created mode 0600) instead of stdout.
    #[arg(long, conflicts_with = "xlsx")]
    pub out: Option<PathBuf>,
    /// Write an Excel workbook to this file instead (created mode 0600):
    /// ID numbers as text, dates as dates, the header row frozen, and a
    /// sheet explaining the columns.
    #[arg(long)]
    pub xlsx: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "zh")]
    pub headers: HeaderLanguage,
}

#[derive(Debug, clap::Args)]
pub struct TemplateArgs {
    /// Write the template workbook (.xlsx) to this file.
    #[arg(long)]
    pub xlsx: PathBuf,
}

/// How long a refused import waits for the reader to stop.
const READER_GRACE: Duration = Duration::from_secs(5);

/// A file the operator gave that cannot be read as a roster is a refusal
/// (exit 1: nothing was changed, fix the file); one that cannot be opened
/// is not.
pub fn failure(error: anyhow::Error) -> Failure {
    match error.downcast_ref::<SheetError>() {
        Some(sheet) => Failure::Refused(sheet.to_string()),
        None => Failure::Other(error),
    }
}

pub async fn import(admin: &mut Admin, format: Format, args: ImportArgs) -> Result<(), Failure> {
    let start = pb::MemberImportStart {
        skip_bad: args.skip_bad,
        dry_run: args.dry_run,
        update: args.update,
        ..Default::default()
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::MemberImportChunk>(4);
    let path = args.file.clone();
    let sheet = args.sheet.clone();
    let strict = args.strict;
    // The file is read on a thread of its own while the rows go out.
    let reader = tokio::task::spawn_blocking(move || {
        sheets::read(&path, sheet.as_deref(), |file_format, source| {
            let sent = send::send(source, start, strict, &mut |chunk| {
                tx.blocking_send(chunk).is_ok()
            })?;
            Ok((file_format.clone(), sent))
        })
    });
    let answer = admin
        .member_import(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await;
    // A refusal can come before the file is read to its end (a column
    // missing, a node that reconciles): the reader then stops at its next
    // chunk, and is not waited for long.
    let read = match &answer {
        Ok(_) => Some(reader.await),
        Err(_) => tokio::time::timeout(READER_GRACE, reader).await.ok(),
    };
    let read = read
        .transpose()
        .map_err(|e| Failure::Other(anyhow::anyhow!("reading the file failed: {e}")))?;
    match (read, answer) {
        // The file's own fault first: the node only saw the rows stop.
        (Some(Err(error)), _) => Err(failure(error)),
        (_, Err(status)) => Err(status.into()),
        (Some(Ok((file_format, sent))), Ok(result)) => {
            report(format, &args, &file_format, &sent, &result.into_inner())
        }
        (None, Ok(_)) => Err(Failure::Other(anyhow::anyhow!(
            "the node answered before the file was read"
        ))),
    }
}

/// Prints what an import came to, and fails it (exit 1) for bad rows it
/// was not told to skip.
fn report(
    format: Format,
    args: &ImportArgs,
    file_format: &FileFormat,
    sent: &Sent,
    result: &pb::MemberImportResponse,
) -> Result<(), Failure> {
    let prefix = file_format.sheet_prefix();
    let unknown: Vec<String> = sent.unknown.iter().map(|u| u.to_string()).collect();
    match format {
        Format::Json => {
            json_line(
                "import_file",
                json!({
                    "file": args.file.display().to_string(), "read_as": file_format.to_string(),
                    "header_row": sent.header_row, "rows_above_header": sent.skipped_above,
                    "rows": sent.rows, "columns_passed_over": unknown,
                }),
            );
            for p in &result.problems {
                json_line(
                    "import_problem",
                    json!({ "line": p.line, "row": p.line, "column": p.column, "message": p.message,
                            "sheet": sheet_name(file_format) }),
                );
            }
            for n in &result.notes {
                json_line("import_note", json!({ "message": n }));
            }
            for m in &result.changed {
                json_line("import_change", changes_json(m));
            }
            for m in &result.added {
                json_line("import_new", changes_json(m));
            }
        }
        Format::Table => {
            let mut about = format!(
                "{}: read as {}; header on row {}",
                args.file.display(),
                file_format,
                sent.header_row
            );
            if sent.skipped_above > 0 {
                about.push_str(&format!(" ({} rows above it skipped)", sent.skipped_above));
            }
            output::note(&format!("{about}; {} rows\n", sent.rows));
            if !unknown.is_empty() {
                output::note(&format!(
                    "warning: columns passed over (the roster has no such column): {}\n",
                    unknown.join(", ")
                ));
            }
            output::note(&problems_text(&prefix, &result.problems));
            for n in &result.notes {
                output::note(&format!("note: {n}\n"));
            }
            output::print_out(&changes_text(&prefix, result, args.dry_run));
        }
    }
    let summary = import_outcome(result, args.skip_bad, args.dry_run).map_err(Failure::Refused)?;
    match format {
        Format::Json => json_line(
            "import_result",
            json!({
                "imported": if result.committed { result.imported } else { 0 },
                "new": result.imported, "updated": result.updated, "unchanged": result.unchanged,
                "skipped": result.skipped, "committed": result.committed, "dry_run": args.dry_run,
                "unlisted": result.unlisted,
            }),
        ),
        Format::Table => output::print_out(&summary),
    }
    Ok(())
}

fn sheet_name(file_format: &FileFormat) -> String {
    match file_format {
        FileFormat::Workbook { sheet } => sheet.clone(),
        FileFormat::Csv { .. } => String::new(),
    }
}

fn changes_json(m: &pb::MemberChanges) -> serde_json::Value {
    json!({
        "row": m.row, "member_id": m.member_id, "name": m.name,
        "changes": m.changes.iter().map(|c| json!({ "column": c.column, "old": c.old, "new": c.new })).collect::<Vec<_>>(),
    })
}

/// Every problem on a line: `sheet 花名册, row 7, column 出生日期: why`.
fn problems_text(prefix: &str, problems: &[pb::ImportProblem]) -> String {
    problems
        .iter()
        .map(|p| match p.column.as_str() {
            "" => format!("{prefix}row {}: {}\n", p.line, p.message),
            column => format!("{prefix}row {}, column {column}: {}\n", p.line, p.message),
        })
        .collect()
}

/// The members changed, each with its changes (`column: old → new`), and
/// in a dry run the new members (an import says how many it added).
fn changes_text(prefix: &str, result: &pb::MemberImportResponse, dry_run: bool) -> String {
    let mut text = String::new();
    for m in &result.changed {
        text.push_str(&format!(
            "{prefix}row {}: {} ({})\n",
            m.row,
            m.name,
            short_id(&m.member_id)
        ));
        for c in &m.changes {
            text.push_str(&format!(
                "  {}: {} → {}\n",
                c.column,
                dash(&c.old),
                dash(&c.new)
            ));
        }
    }
    if dry_run && !result.added.is_empty() {
        text.push_str("new members:\n");
        for m in &result.added {
            text.push_str(&format!("  {prefix}row {}: {}\n", m.row, m.name));
        }
    }
    if result.unlisted > 0 {
        text.push_str(&format!(
            "… and {} more changed or new members, not listed\n",
            result.unlisted
        ));
    }
    text
}

/// The first characters of a member id, as `member list` tells them apart.
fn short_id(member_id: &str) -> &str {
    member_id.get(..13).unwrap_or(member_id)
}

/// What an import amounts to: the line for people on stdout, or why it
/// failed (exit 1). Bad rows fail it unless `--skip-bad` asked to import
/// the rest; a dry run imports nothing.
fn import_outcome(
    result: &pb::MemberImportResponse,
    skip_bad: bool,
    dry_run: bool,
) -> Result<String, String> {
    let bad = match result.skipped {
        1 => "1 bad row".to_owned(),
        n => format!("{n} bad rows"),
    };
    let counts = format!(
        "{} new, {} changed, {} unchanged",
        result.imported, result.updated, result.unchanged
    );
    match (result.skipped == 0, skip_bad, dry_run) {
        (true, _, true) => Ok(format!(
            "dry run: {counts}, no bad rows; nothing was imported\n"
        )),
        (false, true, true) => Ok(format!(
            "dry run: {counts}, {bad} would be skipped; nothing was imported\n"
        )),
        (true, _, false) | (false, true, false) => Ok(format!(
            "imported: {counts}, {} bad rows skipped\n",
            result.skipped
        )),
        (false, false, true) => Err(format!(
            "{bad} (dry run, nothing was imported): fix them, or pass --skip-bad to import the rest"
        )),
        (false, false, false) => Err(format!(
            "{bad}: nothing imported (fix them, or pass --skip-bad)"
        )),
    }
}

pub async fn export(admin: &mut Admin, format: Format, args: ExportArgs) -> Result<(), Failure> {
    let export = admin
        .member_export(pb::MemberExportRequest {})
        .await?
        .into_inner();
    let keys: Vec<&str> = MEMBER_COLUMNS.iter().map(|c| c.key).collect();
    if export.columns != keys {
        return Err(Failure::Other(anyhow::anyhow!(
            "the node exports the columns {:?}, this liaisonctl knows {keys:?}: use the liaisonctl of the node's version",
            export.columns
        )));
    }
    let mut rows: Vec<Vec<String>> = export.rows.into_iter().map(|r| r.cells).collect();
    let headers = match args.headers {
        HeaderLanguage::Zh => {
            let orgs = admin
                .org_list(pb::OrgListRequest {})
                .await?
                .into_inner()
                .orgs;
            for row in &mut rows {
                for_people(row, &orgs);
            }
            Headers::Chinese
        }
        HeaderLanguage::En => Headers::English,
    };
    let to = match (&args.xlsx, &args.out) {
        (Some(path), _) => {
            write::roster(create_private(path)?, headers, &rows).map_err(Failure::Other)?;
            Some(path)
        }
        (None, out) => {
            let csv = roster_csv(headers, &rows).map_err(Failure::Other)?;
            match out {
                Some(path) => {
                    use std::io::Write;
                    let mut file = create_private(path)?;
                    file.write_all(&csv)
                        .and_then(|_| file.sync_all())
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
                None => output::write_out(&csv),
            }
            out.as_ref()
        }
    };
    if format == Format::Table {
        let to = to
            .map(|path| format!(" to {}", path.display()))
            .unwrap_or_default();
        output::note(&format!("exported {} members{to}\n", export.members));
    }
    Ok(())
}

/// A row as stored, as people read it: the branch and the place by name
/// and code, yes and no as 是 and 否, the membership state in Chinese.
/// Each reads back to the same value on import.
fn for_people(row: &mut [String], orgs: &[pb::Org]) {
    for (column, cell) in MEMBER_COLUMNS.iter().zip(row.iter_mut()) {
        let shown = match column.key {
            "home_branch" => orgs
                .iter()
                .find(|o| o.org_id == *cell)
                .map(|o| format!("{} ({})", o.name, o.org_id)),
            "destination_place" if !cell.is_empty() => Some(places::label(cell)),
            "fixed_location" => match cell.as_str() {
                "yes" => Some("是".into()),
                "no" => Some("否".into()),
                _ => None,
            },
            "membership_state" => Some(columns::membership_state_label(cell).to_owned()),
            _ => None,
        };
        if let Some(shown) = shown {
            *cell = shown;
        }
    }
}

/// The roster as CSV: with Chinese headers it starts with a byte-order
/// mark (Excel reads UTF-8 without one as the system's code page, GBK on
/// a Chinese system, and garbles it).
fn roster_csv(headers: Headers, rows: &[Vec<String>]) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if headers == Headers::Chinese {
        bytes.extend_from_slice("\u{feff}".as_bytes());
    }
    let mut writer = csv::Writer::from_writer(bytes);
    writer.write_record(MEMBER_COLUMNS.iter().map(|c| headers.of(c)))?;
    for row in rows {
        writer.write_record(row)?;
    }
    writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write CSV: {e}"))
}

pub async fn template(
    admin: &mut Admin,
    format: Format,
    args: TemplateArgs,
) -> Result<(), Failure> {
    let orgs = admin
        .org_list(pb::OrgListRequest {})
        .await?
        .into_inner()
        .orgs;
    let branches: Vec<String> = orgs.iter().map(|o| o.name.clone()).collect();
    let file = File::create(&args.xlsx)
        .with_context(|| format!("cannot write {}", args.xlsx.display()))?;
    write::template(file, &branches).map_err(Failure::Other)?;
    if format == Format::Table {
        output::note(&format!(
            "wrote the template to {}: {} columns, an example row, drop-down lists ({} organizations)\n",
            args.xlsx.display(),
            MEMBER_COLUMNS.len(),
            branches.len()
        ));
        if branches.is_empty() {
            output::note("warning: this node has no organizations yet, so 所在支部 offers no list: `org import` them first\n");
        }
    }
    Ok(())
}

/// Creates `path` readable by its owner only: an export holds national ID
/// numbers and home addresses.
fn create_private(path: &Path) -> anyhow::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(imported: u64, updated: u64, skipped: u64) -> pb::MemberImportResponse {
        pb::MemberImportResponse {
            imported,
            updated,
            skipped,
            ..Default::default()
        }
    }

    #[test]
    fn import_fails_on_bad_rows_unless_skipping_them() {
        let check = |result: pb::MemberImportResponse,
                     skip_bad: bool,
                     dry_run: bool,
                     want: Result<&str, &str>| {
            assert_eq!(
                import_outcome(&result, skip_bad, dry_run),
                want.map(str::to_owned).map_err(str::to_owned),
                "skip_bad {skip_bad}, dry_run {dry_run}"
            );
        };
        check(
            result(5, 1, 0),
            false,
            false,
            Ok("imported: 5 new, 1 changed, 0 unchanged, 0 bad rows skipped\n"),
        );
        check(
            result(0, 0, 2),
            false,
            false,
            Err("2 bad rows: nothing imported (fix them, or pass --skip-bad)"),
        );
        check(
            result(0, 0, 1),
            false,
            true,
            Err("1 bad row (dry run, nothing was imported): fix them, or pass --skip-bad to import the rest"),
        );
        check(
            result(4, 0, 1),
            true,
            false,
            Ok("imported: 4 new, 0 changed, 0 unchanged, 1 bad rows skipped\n"),
        );
        check(
            result(3, 0, 1),
            true,
            true,
            Ok("dry run: 3 new, 0 changed, 0 unchanged, 1 bad row would be skipped; nothing was imported\n"),
        );
        check(
            result(0, 2, 0),
            false,
            true,
            Ok("dry run: 0 new, 2 changed, 0 unchanged, no bad rows; nothing was imported\n"),
        );
    }

    #[test]
    fn problems_name_sheet_row_and_column() {
        let problems = [
            pb::ImportProblem {
                line: 7,
                message: "birth date `1990-13-01` is not a date".into(),
                column: "出生日期".into(),
            },
            pb::ImportProblem {
                line: 9,
                message: "has 3 cells".into(),
                column: String::new(),
            },
        ];
        assert_eq!(
            problems_text("sheet 花名册, ", &problems),
            "sheet 花名册, row 7, column 出生日期: birth date `1990-13-01` is not a date\nsheet 花名册, row 9: has 3 cells\n"
        );
    }

    #[test]
    fn changes_list_each_member_then_the_new_ones() {
        let result = pb::MemberImportResponse {
            changed: vec![pb::MemberChanges {
                row: 5,
                member_id: "0190c3e2-7a1b-7c00-8000-000000000001".into(),
                name: "王宇".into(),
                changes: vec![pb::FieldChange {
                    column: "联系电话".into(),
                    old: String::new(),
                    new: "13900000000".into(),
                }],
            }],
            added: vec![pb::MemberChanges {
                row: 9,
                name: "李娜".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            changes_text("", &result, true),
            "row 5: 王宇 (0190c3e2-7a1b)\n  联系电话: - → 13900000000\nnew members:\n  row 9: 李娜\n"
        );
        assert_eq!(
            changes_text("", &result, false),
            "row 5: 王宇 (0190c3e2-7a1b)\n  联系电话: - → 13900000000\n",
            "an import counts its new members"
        );
    }

    #[test]
    fn an_export_for_people_reads_back_to_the_same_values() {
        let orgs = [pb::Org {
            org_id: "pl-kt-01".into(),
            name: "崆峒区农村第一党支部".into(),
            ..Default::default()
        }];
        let mut row: Vec<String> = MEMBER_COLUMNS.iter().map(|_| String::new()).collect();
        let set = |row: &mut Vec<String>, key: &str, value: &str| {
            let idx = MEMBER_COLUMNS.iter().position(|c| c.key == key).unwrap();
            row[idx] = value.into();
        };
        set(&mut row, "home_branch", "pl-kt-01");
        set(&mut row, "destination_place", "620102");
        set(&mut row, "fixed_location", "no");
        set(&mut row, "membership_state", "normal");
        for_people(&mut row, &orgs);
        let get =
            |key: &str| row[MEMBER_COLUMNS.iter().position(|c| c.key == key).unwrap()].clone();
        assert_eq!(get("home_branch"), "崆峒区农村第一党支部 (pl-kt-01)");
        assert_eq!(get("destination_place"), "兰州市城关区 (620102)");
        assert_eq!(
            places::code_of(&get("destination_place")).unwrap(),
            "620102"
        );
        assert_eq!(get("fixed_location"), "否");
        assert_eq!(get("membership_state"), "正常");
        let csv = roster_csv(Headers::Chinese, &[row]).unwrap();
        assert!(csv.starts_with("\u{feff}成员编号,姓名,性别".as_bytes()));
        let csv = roster_csv(Headers::English, &[]).unwrap();
        assert!(csv.starts_with(b"member_id,name,gender"));
    }
}

//! `liaisonctl org`: organizations of this node (党组织): committees,
//! general branches, branches, temporary and mobile-member branches.

use clap::Subcommand;
use liaison_proto::v1 as pb;
use liaison_types::sheet::{Header, RowSource, SheetError, ORG_COLUMNS};
use liaisonctl::output::{self, dash, Format, Table};
use liaisonctl::sheet::{self as sheets, Format as FileFormat};
use serde_json::json;

use super::refs;
use super::{print_list, text, Admin, Failure};

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Add an organization.
    Add(OrgAddArgs),
    /// List the organizations.
    List,
    /// Add the organizations of a spreadsheet (an Excel workbook, or CSV
    /// in UTF-8 or GBK), parents before their children, all or none.
    /// Columns (Chinese or English headers): 组织代码 (code), 组织名称
    /// (name), 层级 (level), and optionally 上级组织 (parent: its code or
    /// full name), 组建方式 (form), 联系人 (contact_person), 联系电话 (phone).
    Import {
        /// The file; `-` reads stdin.
        file: std::path::PathBuf,
        /// The sheet to read (default: the workbook's first).
        #[arg(long)]
        sheet: Option<String>,
        /// Refuse a sheet with columns it does not know (default: pass
        /// them over, with a warning).
        #[arg(long)]
        strict: bool,
        /// Add the good rows and skip the bad ones (default: add nothing
        /// if any row is bad).
        #[arg(long)]
        skip_bad: bool,
    },
}

/// The organizations of a sheet, each with its row, and the sheet's
/// headers; the header cells that name no column.
#[derive(Debug)]
struct OrgSheet {
    request: pb::OrgImportRequest,
    unknown: Vec<String>,
}

/// Reads the organizations below the header of `source`. A cell that
/// cannot be read, or (with `strict`) a column not known, refuses the
/// file, naming them.
fn orgs_of(source: &mut dyn RowSource, sheet: &str, strict: bool) -> Result<OrgSheet, SheetError> {
    let header = Header::find(source, &ORG_COLUMNS)?;
    let unknown: Vec<String> = header.unknown.iter().map(|u| u.to_string()).collect();
    if strict && !unknown.is_empty() {
        return Err(SheetError::Read(format!(
            "row {}: no organization has the columns {}: delete them, or import without --strict to pass them over",
            header.row,
            unknown.join(", ")
        )));
    }
    for required in ORG_COLUMNS.iter().filter(|c| c.required) {
        if !header.has(required.key) {
            return Err(SheetError::Read(format!(
                "row {}: the sheet has no {} ({}) column",
                header.row, required.header, required.key
            )));
        }
    }
    let mut request = pb::OrgImportRequest {
        sheet: sheet.to_owned(),
        columns: header
            .columns
            .iter()
            .map(|f| pb::ImportColumn {
                field: f.column.key.to_owned(),
                header: f.header.clone(),
            })
            .collect(),
        ..Default::default()
    };
    let mut problems = Vec::new();
    while let Some(read) = header.next(source)? {
        for (column, why) in &read.problems {
            problems.push(format!(
                "row {}, column {}: {why}",
                read.number, header.columns[*column].header
            ));
        }
        let cell = |key: &str| -> String {
            header
                .columns
                .iter()
                .position(|f| f.column.key == key)
                .map(|at| read.cells[at].clone())
                .unwrap_or_default()
        };
        request.rows.push(read.number);
        request.orgs.push(pb::Org {
            org_id: cell("code"),
            name: cell("name"),
            level: cell("level"),
            parent_org: cell("parent"),
            form: cell("form"),
            contact_person: cell("contact_person"),
            phone: cell("phone"),
        });
    }
    if !problems.is_empty() {
        return Err(SheetError::Read(problems.join("\n")));
    }
    Ok(OrgSheet { request, unknown })
}

#[derive(Debug, clap::Args)]
pub struct OrgAddArgs {
    /// A short id, used by --home-branch, --parent, --branch.
    org_id: String,
    /// Full name, as on the seal.
    #[arg(long)]
    name: String,
    /// 党委, 党总支, 党支部, 临时支部 or 流动党员党组织 (committee, general-branch,
    /// branch, temporary-branch, mobile-branch).
    #[arg(long)]
    level: String,
    /// How a mobile-member branch is formed: same employer, trade or hometown.
    #[arg(long, value_parser = ["同企", "同业", "同乡"])]
    form: Option<String>,
    /// The parent organization: its code or full name.
    #[arg(long)]
    parent: Option<String>,
    /// The organization's contact person (联系人).
    #[arg(long)]
    contact_person: Option<String>,
    #[arg(long)]
    phone: Option<String>,
}

impl OrgAddArgs {
    fn request(self) -> pb::Org {
        pb::Org {
            org_id: self.org_id,
            name: self.name,
            level: self.level,
            form: text(self.form),
            parent_org: text(self.parent),
            contact_person: text(self.contact_person),
            phone: text(self.phone),
        }
    }
}

pub async fn run(admin: &mut Admin, format: Format, command: OrgCommand) -> Result<(), Failure> {
    let orgs = match command {
        OrgCommand::Add(mut args) => {
            if let Some(parent) = &args.parent {
                args.parent = Some(refs::org(admin, parent, "org.add").await?);
            }
            vec![admin.org_add(args.request()).await?.into_inner()]
        }
        OrgCommand::Import {
            file,
            sheet,
            strict,
            skip_bad,
        } => {
            let path = file.clone();
            let read = tokio::task::spawn_blocking(move || {
                sheets::read(&path, sheet.as_deref(), |format, source| {
                    let name = match format {
                        FileFormat::Workbook { sheet } => sheet.clone(),
                        FileFormat::Csv { .. } => String::new(),
                    };
                    Ok((format.clone(), orgs_of(source, &name, strict)?))
                })
            })
            .await
            .map_err(|e| Failure::Other(anyhow::anyhow!("reading the file failed: {e}")))?;
            let (format_read, orgs) = read.map_err(super::roster::failure)?;
            if format == Format::Table {
                output::note(&format!(
                    "{}: read as {format_read}; {} organizations\n",
                    file.display(),
                    orgs.request.orgs.len()
                ));
                if !orgs.unknown.is_empty() {
                    output::note(&format!(
                        "warning: columns passed over (not an organization's): {}\n",
                        orgs.unknown.join(", ")
                    ));
                }
            }
            let request = pb::OrgImportRequest {
                skip_bad,
                ..orgs.request
            };
            let answer = admin.org_import(request).await?.into_inner();
            for problem in &answer.problems {
                output::note(&format!("skipped: {problem}\n"));
            }
            answer.orgs
        }
        OrgCommand::List => {
            admin
                .org_list(pb::OrgListRequest {})
                .await?
                .into_inner()
                .orgs
        }
    };
    print_list(format, "org", &orgs, org_json, org_table);
    Ok(())
}

fn org_json(o: &pb::Org) -> serde_json::Value {
    json!({
        "org_id": o.org_id, "name": o.name, "level": o.level, "form": o.form,
        "parent_org": o.parent_org, "contact_person": o.contact_person, "phone": o.phone,
    })
}

fn org_table(orgs: &[pb::Org]) -> Table {
    let mut table = Table::new(&["ID", "NAME", "LEVEL", "FORM", "PARENT", "CONTACT", "PHONE"]);
    for o in orgs {
        table.row(vec![
            o.org_id.clone(),
            dash(&o.name),
            dash(&o.level),
            dash(&o.form),
            dash(&o.parent_org),
            dash(&o.contact_person),
            dash(&o.phone),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {

    use liaison_types::sheet::csv::CsvSource;

    fn read(text: &str, strict: bool) -> Result<OrgSheet, SheetError> {
        let mut source = CsvSource::open(text.as_bytes()).unwrap();
        orgs_of(&mut source, "", strict)
    }

    #[test]
    fn an_orgs_file_reads_with_chinese_or_english_headers() {
        let orgs = read(
            "\u{feff}平凉市崆峒区党组织\n组织代码,组织名称,层级,上级组织,备注\npl-kt,崆峒区委,党委,,\npl-kt-01,崆峒区第一支部,党支部,崆峒区委,新建\n",
            false,
        )
        .unwrap();
        assert_eq!(orgs.request.orgs.len(), 2);
        assert_eq!(orgs.request.rows, [3, 4]);
        assert_eq!(
            (
                orgs.request.orgs[1].org_id.as_str(),
                orgs.request.orgs[1].parent_org.as_str()
            ),
            ("pl-kt-01", "崆峒区委")
        );
        assert_eq!(orgs.unknown, ["备注 (E)"]);
        let orgs = read("code,name,level\nb1,First,branch\n", false).unwrap();
        assert_eq!(orgs.request.orgs[0].name, "First");
        let unknown = read("code,name,level,remarks\nb1,First,branch,x\n", true).unwrap_err();
        assert!(unknown.to_string().contains("remarks (D)"), "{unknown}");
        let missing = read("code,name\nb1,First\n", false).unwrap_err();
        assert!(missing.to_string().contains("层级"), "{missing}");
    }

    use super::*;
    use crate::cmd::{parse, refused};
    use crate::Command;

    fn add(args: &[&str]) -> pb::Org {
        let argv: Vec<&str> = ["org", "add"].iter().chain(args).copied().collect();
        match parse(&argv) {
            Command::Org(OrgCommand::Add(args)) => args.request(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn add_maps_flags_to_the_org() {
        let org = add(&[
            "pl-lz-01",
            "--name",
            "中共平凉市驻兰州流动党员党支部",
            "--level",
            "流动党员党组织",
            "--form",
            "同乡",
            "--parent",
            "pl-kt",
            "--contact-person",
            "李四",
            "--phone",
            "13800000000",
        ]);
        assert_eq!(
            org,
            pb::Org {
                org_id: "pl-lz-01".into(),
                name: "中共平凉市驻兰州流动党员党支部".into(),
                level: "流动党员党组织".into(),
                form: "同乡".into(),
                parent_org: "pl-kt".into(),
                contact_person: "李四".into(),
                phone: "13800000000".into(),
            }
        );
        let bare = add(&["pl-kt", "--name", "崆峒区委", "--level", "党委"]);
        assert_eq!(bare.form, "");
        assert_eq!(bare.parent_org, "");
    }

    #[test]
    fn add_needs_name_and_level_and_a_known_form() {
        assert!(refused(&["org", "add", "x", "--name", "n"]));
        assert!(refused(&["org", "add", "x", "--level", "党支部"]));
        assert!(refused(&[
            "org",
            "add",
            "x",
            "--name",
            "n",
            "--level",
            "党支部",
            "--form",
            "同村"
        ]));
    }

    #[test]
    fn list_shows_dashes_for_empty_fields() {
        let org = pb::Org {
            org_id: "pl-kt".into(),
            name: "崆峒区委".into(),
            level: "党委".into(),
            ..Default::default()
        };
        let text = org_table(std::slice::from_ref(&org)).render();
        assert_eq!(
            text.lines()
                .nth(1)
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["pl-kt", "崆峒区委", "党委", "-", "-", "-", "-"]
        );
        let value = org_json(&org);
        assert_eq!(value["org_id"], "pl-kt");
        assert_eq!(value["parent_org"], "");
    }
}

#[cfg(test)]
#[path = "../proptest_config.rs"]
mod proptest_config;

/// The organizations file is an operator's and may hold anything: reading
/// it never panics, and refuses what it cannot read with a message. 96
/// cases per property in every `cargo test` (`PROPTEST_CASES` changes it),
/// from a seed printed with a failure (`PROPTEST_RNG_SEED` replays it).
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use liaison_proto::v1 as pb;
    use liaison_types::sheet::csv::CsvSource;
    use liaison_types::sheet::SheetError;

    use super::orgs_of;

    fn read_orgs(bytes: &[u8]) -> Result<Vec<pb::Org>, SheetError> {
        let mut source = CsvSource::open(bytes)?;
        Ok(orgs_of(&mut source, "", false)?.request.orgs)
    }

    use super::proptest_config::config;

    fn header() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::sample::select(vec![
                "code", "name", "level", "parent", "form", "contact_person", "phone",
                "组织代码", "组织名称", "层级", "上级组织", "联系电话", "CODE", " name ",
            ])
            .prop_map(str::to_string),
            1 => ".{0,8}",
        ]
    }

    fn cell() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            prop::sample::select(vec![
                "pl-kt",
                "崆峒区委",
                "党委",
                "党支部",
                "同乡",
                "\"",
                "\"\"",
                "\"a,b\"",
                "\"a\nb\"",
                "\u{feff}",
                " ",
            ])
            .prop_map(str::to_string),
            ".{0,10}",
        ]
    }

    /// Rows read are at most the lines of the file; a refusal says why.
    fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
        match read_orgs(bytes) {
            Ok(orgs) => {
                let breaks = bytes
                    .iter()
                    .filter(|b| **b == b'\n' || **b == b'\r')
                    .count();
                prop_assert!(
                    orgs.len() <= breaks,
                    "{} orgs from {breaks} line breaks",
                    orgs.len()
                );
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn reading_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            check(&bytes)?;
        }

        #[test]
        fn reading_arbitrary_rows_never_panics(
            bom in any::<bool>(),
            headers in prop::collection::vec(header(), 0..8),
            rows in prop::collection::vec(prop::collection::vec(cell(), 0..9), 0..6),
            separator in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
        ) {
            let mut text = String::new();
            if bom {
                text.push('\u{feff}');
            }
            text.push_str(&headers.join(","));
            for row in &rows {
                text.push_str(separator);
                text.push_str(&row.join(","));
            }
            check(text.as_bytes())?;
        }
    }
}

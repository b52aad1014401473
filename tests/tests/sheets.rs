//! Spreadsheets in and out as an office has them, through the real
//! binaries: CSV files saved in GBK and GB18030, a workbook written by an
//! office suite (a title merged across the columns, columns of the
//! office's own, date cells), an ID number a spreadsheet turned into a
//! number, bad rows named by sheet, row and column; an update from an
//! edited export, listed by a dry run and then reaching a host under an
//! agreement; the export and the template read back with the reader
//! crate.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use calamine::{Data, Reader, Xlsx};
use liaison_tests::*;
use liaison_types::sheet::MEMBER_COLUMNS;
use serde_json::Value;

const BRANCH: &str = "崆峒区农村第一党支部";

fn path_text(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// Stderr of a command refused with exit 1.
fn refused(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(1),
        "refused with exit 1:\n{}",
        describe_output(output)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Stdout and stderr of a command that succeeded.
fn done(output: &Output) -> (String, String) {
    assert!(output.status.success(), "{}", describe_output(output));
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The members a node owns, as `member list` prints them in JSON.
fn owned(node: &TestNode) -> Vec<Value> {
    node.ctl_json(&["member", "list", "--owned", "--limit", "1000"])
        .into_iter()
        .map(|(_, member)| member)
        .collect()
}

/// One member in detail, as `member show` prints it in JSON.
fn show(node: &TestNode, name: &str) -> Value {
    let mut records = node.ctl_json(&["member", "show", name]);
    assert_eq!(records.len(), 1, "{records:?}");
    records.remove(0).1
}

/// A node with the branch the rosters name.
async fn pingliang(fed: &Federation) -> TestNode {
    let node = fed.node("pingliang").await;
    node.ctl_ok(&[
        "org",
        "add",
        "pl-kt-01",
        "--name",
        BRANCH,
        "--level",
        "党支部",
    ]);
    node
}

/// One part of an `.xlsx` (a zip of XML parts), as text.
fn part(path: &Path, name: &str) -> String {
    let file = std::fs::File::open(path).expect("open the workbook");
    let mut zip = zip::ZipArchive::new(file).expect("an .xlsx is a zip");
    let mut text = String::new();
    zip.by_name(name)
        .unwrap_or_else(|e| panic!("{name} in {}: {e}", path.display()))
        .read_to_string(&mut text)
        .expect("an XML part is UTF-8");
    text
}

/// Every `<dataValidation>` of a sheet's XML: its cell range and its list
/// (the formula: a quoted list of values, or a range).
fn validations(sheet_xml: &str) -> Vec<(String, String)> {
    sheet_xml
        .split("<dataValidation ")
        .skip(1)
        .map(|element| {
            let attr = |name: &str| -> String {
                let key = format!("{name}=\"");
                element
                    .split_once(&key)
                    .and_then(|(_, rest)| rest.split_once('"'))
                    .map(|(value, _)| value.to_owned())
                    .unwrap_or_default()
            };
            let formula = element
                .split_once("<formula1>")
                .and_then(|(_, rest)| rest.split_once("</formula1>"))
                .map(|(formula, _)| formula.replace("&quot;", "\"").replace("&apos;", "'"))
                .unwrap_or_default();
            (attr("sqref"), formula)
        })
        .collect()
}

/// The rows of a sheet, read with calamine.
fn sheet_rows(path: &Path, sheet: &str) -> Vec<Vec<Data>> {
    let mut workbook: Xlsx<_> = calamine::open_workbook(path).expect("a workbook calamine reads");
    workbook
        .worksheet_range(sheet)
        .unwrap_or_else(|e| panic!("sheet {sheet}: {e}"))
        .rows()
        .map(<[Data]>::to_vec)
        .collect()
}

/// A cell as text: a date cell as `YYYY-MM-DD`.
fn text_of(cell: &Data) -> String {
    match cell {
        Data::DateTime(at) => at
            .as_datetime()
            .map(|at| at.date().to_string())
            .unwrap_or_default(),
        other => other.to_string(),
    }
}

fn column(key: &str) -> usize {
    MEMBER_COLUMNS
        .iter()
        .position(|c| c.key == key)
        .unwrap_or_else(|| panic!("no roster column {key}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gbk_and_gb18030_csv_files_with_chinese_headers_import() {
    let fed = Federation::new("sheets-encodings");
    let node = fed.node("pingliang").await;
    // The branches, from a GBK file with a title, a column of the office's
    // own and a parent named by its full name.
    let orgs = format!(
        "平凉市崆峒区党组织\n组织代码,组织名称,层级,上级组织,备注\npl-kt,崆峒区委,党委,,\npl-kt-01,{BRANCH},党支部,崆峒区委,新建\n"
    );
    let (orgs_gbk, _, unmappable) = encoding_rs::GBK.encode(&orgs);
    assert!(!unmappable);
    let orgs_file = fed.dir().join("orgs-gbk.csv");
    std::fs::write(&orgs_file, &orgs_gbk).expect("write the orgs");
    let (_, said) = done(&node.ctl(&["org", "import", path_text(&orgs_file)]));
    assert!(said.contains("read as CSV in GB18030 (GBK)"), "{said}");
    assert!(said.contains("备注 (E)"), "{said}");
    let listed = node.ctl_json(&["org", "list"]);
    assert!(
        listed
            .iter()
            .any(|(_, o)| o["org_id"] == "pl-kt-01" && o["parent_org"] == "pl-kt"),
        "{listed:?}"
    );

    // What Chinese Excel saves as "CSV (逗号分隔)": GBK, no mark.
    let wang_id = national_id("62080219900517001");
    let gbk_text = format!(
        "序号,姓名,性别,出生日期,公民身份号码,党员类别,所在党支部,备注\n1,王宇,男,1990/5/17,{wang_id},正式,{BRANCH},\n"
    );
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(&gbk_text);
    assert!(!unmappable);
    assert!(std::str::from_utf8(&gbk).is_err(), "GBK is not UTF-8");
    let gbk_file = fed.dir().join("roster-gbk.csv");
    std::fs::write(&gbk_file, &gbk).expect("write the roster");
    let (out, said) = done(&node.ctl(&["member", "import", path_text(&gbk_file)]));
    assert!(said.contains("read as CSV in GB18030 (GBK)"), "{said}");
    assert!(
        said.contains("columns passed over (the roster has no such column): 序号 (A), 备注 (H)"),
        "{said}"
    );
    assert!(out.contains("imported: 1 new"), "{out}");

    // GB18030 holds what GBK cannot: 𬱖 is four bytes in it.
    let li_id = national_id("62080219910301002");
    let gb18030_text = format!(
        "姓名,性别,出生日期,公民身份号码,党员类别,所在支部\n李𬱖,女,1991年3月1日,{li_id},预备,pl-kt-01\n"
    );
    assert!(encoding_rs::GBK.encode(&gb18030_text).2, "GBK has no 𬱖");
    let (gb18030, _, unmappable) = encoding_rs::GB18030.encode(&gb18030_text);
    assert!(!unmappable);
    let gb18030_file = fed.dir().join("roster-gb18030.csv");
    std::fs::write(&gb18030_file, &gb18030).expect("write the roster");
    let (out, said) = done(&node.ctl(&["member", "import", path_text(&gb18030_file)]));
    assert!(said.contains("read as CSV in GB18030 (GBK)"), "{said}");
    assert!(out.contains("imported: 1 new"), "{out}");

    let members = owned(&node);
    let wang = members.iter().find(|m| m["name"] == "王宇").expect("王宇");
    assert_eq!(wang["birth_date"], "1990-05-17");
    assert_eq!(wang["home_branch"], "pl-kt-01");
    let li = members.iter().find(|m| m["name"] == "李𬱖").expect("李𬱖");
    assert_eq!(li["birth_date"], "1991-03-01");
    assert_eq!(show(&node, &li_id)["national_id"], li_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workbook_from_an_office_suite_with_a_merged_title_and_date_cells_imports() {
    let fed = Federation::new("sheets-office");
    let node = pingliang(&fed).await;
    let fixture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/roster-libreoffice.xlsx");
    assert!(
        part(&fixture, "docProps/app.xml").contains("LibreOffice"),
        "written by the office suite"
    );
    assert!(part(&fixture, "xl/worksheets/sheet1.xml").contains("<mergeCell ref=\"A1:J1\"/>"));
    let (out, said) = done(&node.ctl(&["member", "import", path_text(&fixture)]));
    assert!(
        said.contains(
            "read as workbook, sheet 花名册; header on row 3 (2 rows above it skipped); 3 rows"
        ),
        "{said}"
    );
    assert!(said.contains("序号 (A), 备注 (J)"), "{said}");
    assert!(
        out.contains("imported: 3 new, 0 changed, 0 unchanged, 0 bad rows skipped"),
        "{out}"
    );
    let wang = show(&node, "王宇");
    assert_eq!(wang["birth_date"], "1990-05-17", "a date cell");
    assert_eq!(wang["national_id"], "620802199005170010");
    assert_eq!(
        wang["home_branch"], "pl-kt-01",
        "the branch by its full name"
    );
    assert_eq!(
        wang["outflow"]["destination_place"], "620102",
        "兰州市城关区"
    );
    assert_eq!(wang["outflow"]["departed_on"], "2026-03-01", "a date cell");
    let li = show(&node, "李娜");
    assert_eq!(li["birth_date"], "1991-03-01");
    assert!(li["outflow"].is_null(), "no destination: at home");
    assert_eq!(
        show(&node, "张伟")["outflow"]["destination_place"],
        "610113"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_number_stored_as_a_number_is_refused_with_the_fix() {
    let fed = Federation::new("sheets-id-number");
    let node = pingliang(&fed).await;
    let id = national_id("62080219900517001");
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("花名册").expect("a sheet name");
    for (col, header) in [
        "姓名",
        "性别",
        "出生日期",
        "公民身份号码",
        "党员类别",
        "所在支部",
    ]
    .iter()
    .enumerate()
    {
        sheet.write_string(0, col as u16, *header).expect("write");
    }
    for (col, text) in ["王宇", "男", "1990-05-17"].iter().enumerate() {
        sheet.write_string(1, col as u16, *text).expect("write");
    }
    // What a spreadsheet keeps of an ID number typed into a number cell.
    sheet
        .write_number(1, 3, id.parse::<f64>().expect("digits"))
        .expect("write");
    sheet.write_string(1, 4, "正式").expect("write");
    sheet.write_string(1, 5, "pl-kt-01").expect("write");
    let file = fed.dir().join("id-as-number.xlsx");
    workbook.save(&file).expect("save");
    let said = refused(&node.ctl(&["member", "import", path_text(&file)]));
    assert!(
        said.contains(
            "sheet 花名册, row 2, column 公民身份号码: the ID number is stored as a number"
        ),
        "{said}"
    );
    assert!(said.contains("format the ID column as text"), "{said}");
    assert!(said.contains("1 bad row: nothing imported"), "{said}");
    // The same saved as CSV by the spreadsheet: the number as it showed it.
    let csv = "姓名,性别,出生日期,身份证号,党员类别,所在支部\n王宇,男,1990-05-17,6.20802E+17,正式,pl-kt-01\n";
    let file = fed.dir().join("id-as-number.csv");
    std::fs::write(&file, csv).expect("write");
    let said = refused(&node.ctl(&["member", "import", path_text(&file)]));
    assert!(
        said.contains("row 2, column 身份证号: the ID number was saved as a number (6.20802E+17)"),
        "{said}"
    );
    assert!(said.contains("format the ID column as text"), "{said}");
    assert!(owned(&node).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sheet_with_two_bad_rows_names_both_and_imports_nothing() {
    let fed = Federation::new("sheets-bad-rows");
    let node = pingliang(&fed).await;
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("党员").expect("a sheet name");
    let rows: [[&str; 5]; 5] = [
        ["姓名", "性别", "出生日期", "党员类别", "所在支部"],
        ["王宇", "男", "1990-05-17", "正式", BRANCH],
        ["李娜", "女", "1991-13-01", "预备", BRANCH],
        ["张伟", "男", "1985-03-02", "正式", BRANCH],
        ["赵六", "男", "1986-04-05", "正式", "崆峒区不存在的支部"],
    ];
    for (row, cells) in rows.iter().enumerate() {
        for (col, text) in cells.iter().enumerate() {
            sheet
                .write_string(row as u32, col as u16, *text)
                .expect("write");
        }
    }
    let file = fed.dir().join("two-bad-rows.xlsx");
    workbook.save(&file).expect("save");
    let said = refused(&node.ctl(&["member", "import", path_text(&file)]));
    assert!(
        said.contains("sheet 党员, row 3, column 出生日期: birth date `1991-13-01` is not a date"),
        "{said}"
    );
    assert!(
        said.contains("sheet 党员, row 5, column 所在支部: no organization here has the code or name `崆峒区不存在的支部`"),
        "{said}"
    );
    assert!(said.contains("2 bad rows: nothing imported"), "{said}");
    assert!(owned(&node).is_empty(), "nothing imported");
    // --skip-bad imports the others.
    let (out, _) = done(&node.ctl(&["member", "import", "--skip-bad", path_text(&file)]));
    assert!(out.contains("imported: 2 new"), "{out}");
    assert_eq!(owned(&node).len(), 2);
}

/// Export to a workbook, read it back with calamine field by field, edit
/// it as a spreadsheet would save it, and import it with `--update`: the
/// dry run lists exactly the change, the import applies it in one audited
/// action, and the host under the agreement gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_export_updates_members_and_the_change_reaches_the_host() {
    let fed = Federation::new("sheets-update");
    let pingliang = pingliang(&fed).await;
    let lanzhou = fed.node("lanzhou").await;
    fed.link_serving(&pingliang, &lanzhou, "6201").await;
    let wang_id = national_id("62080219900517001");
    let li_id = national_id("62080219910301002");
    let roster = format!(
        "姓名,性别,出生日期,公民身份号码,党员类别,所在支部,联系电话,去向地,外出日期,固定地点\n\
         王宇,男,1990-05-17,{wang_id},正式,{BRANCH},13800000000,兰州市城关区,2026-03-01,否\n\
         李娜,女,1991-03-01,{li_id},预备,{BRANCH},13800000001,,,\n"
    );
    let roster_file = fed.dir().join("roster.csv");
    std::fs::write(&roster_file, roster).expect("write");
    pingliang.ctl_ok(&["member", "import", path_text(&roster_file)]);
    fed.agree(&pingliang, &lanzhou, "平凉-兰州-2026-01").await;
    let wang = show(&pingliang, "王宇")["member_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    lanzhou
        .wait_until(DEFAULT_WAIT, "lanzhou holds 王宇", async || {
            lanzhou
                .show(&wang)
                .await
                .is_some_and(|m| m.phone == "13800000000")
        })
        .await;

    // The export, read back with calamine field by field.
    let exported = fed.dir().join("export.xlsx");
    pingliang.ctl_ok(&["member", "export", "--xlsx", path_text(&exported)]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&exported)
        .expect("the export")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "it holds ID numbers");
    let rows = sheet_rows(&exported, "花名册");
    let headers: Vec<String> = rows[0].iter().map(text_of).collect();
    let chinese: Vec<&str> = MEMBER_COLUMNS.iter().map(|c| c.header).collect();
    assert_eq!(headers, chinese);
    assert_eq!(rows.len(), 3, "the header and two members");
    for row in &rows[1..] {
        let member = show(&pingliang, &text_of(&row[column("member_id")]));
        for (key, field) in [
            ("name", "name"),
            ("gender", "gender"),
            ("birth_date", "birth_date"),
            ("national_id", "national_id"),
            ("party_status", "party_status"),
            ("phone", "phone"),
        ] {
            assert_eq!(
                text_of(&row[column(key)]),
                member[field].as_str().unwrap_or_default(),
                "{key}"
            );
        }
        assert!(
            matches!(row[column("national_id")], Data::String(_)),
            "an ID number is a text cell: {:?}",
            row[column("national_id")]
        );
        assert!(
            matches!(row[column("birth_date")], Data::DateTime(_)),
            "a date is a date cell: {:?}",
            row[column("birth_date")]
        );
        assert_eq!(
            text_of(&row[column("home_branch")]),
            format!("{BRANCH} (pl-kt-01)")
        );
        assert_eq!(text_of(&row[column("membership_state")]), "正常");
        match member["outflow"]["destination_place"].as_str() {
            Some(place) => {
                assert_eq!(place, "620102");
                assert_eq!(
                    text_of(&row[column("destination_place")]),
                    "兰州市城关区 (620102)"
                );
                assert_eq!(text_of(&row[column("departed_on")]), "2026-03-01");
                assert!(matches!(row[column("departed_on")], Data::DateTime(_)));
                assert_eq!(text_of(&row[column("fixed_location")]), "否");
            }
            None => assert_eq!(text_of(&row[column("destination_place")]), ""),
        }
    }
    let sheet_xml = part(&exported, "xl/worksheets/sheet1.xml");
    assert!(
        sheet_xml.contains("state=\"frozen\""),
        "the header row is frozen"
    );
    assert!(
        sheet_xml.contains("customWidth=\"1\""),
        "columns are fitted"
    );
    let explained = sheet_rows(&exported, "说明");
    assert!(explained.len() > MEMBER_COLUMNS.len());
    assert_eq!(text_of(&explained[0][0]), "列名");
    assert!(explained
        .iter()
        .any(|r| text_of(&r[0]) == "公民身份号码" && text_of(&r[3]).contains("文本格式")));

    // Edited in a spreadsheet: 王宇's phone, and a new member below.
    let zhao_id = national_id("62080219860405001");
    let mut edited = rust_xlsxwriter::Workbook::new();
    let sheet = edited.add_worksheet();
    sheet.set_name("花名册").expect("a sheet name");
    let date = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
    let mut rows = rows;
    rows.push(vec![Data::Empty; MEMBER_COLUMNS.len()]);
    let new_row = rows.len() - 1;
    for (key, value) in [
        ("name", "赵六"),
        ("gender", "男"),
        ("birth_date", "1986-04-05"),
        ("national_id", zhao_id.as_str()),
        ("party_status", "正式"),
        ("home_branch", BRANCH),
    ] {
        rows[new_row][column(key)] = Data::String(value.into());
    }
    for (row_idx, row) in rows.iter().enumerate() {
        for (col, cell) in row.iter().enumerate() {
            let (r, c) = (row_idx as u32, col as u16);
            match cell {
                Data::DateTime(at) => {
                    sheet
                        .write_date_with_format(
                            r,
                            c,
                            at.as_datetime().expect("a date").date(),
                            &date,
                        )
                        .expect("write");
                }
                Data::Empty => {}
                _ if row_idx > 0 && text_of(cell) == "13800000000" => {
                    sheet.write_string(r, c, "13900000001").expect("write");
                }
                other => {
                    sheet.write_string(r, c, text_of(other)).expect("write");
                }
            }
        }
    }
    let edited_file = fed.dir().join("edited.xlsx");
    edited.save(&edited_file).expect("save");

    // The dry run lists exactly the change, and the new member apart.
    let (out, said) = done(&pingliang.ctl(&[
        "member",
        "import",
        "--update",
        "--dry-run",
        path_text(&edited_file),
    ]));
    assert!(
        !said.contains("warning"),
        "every column is the roster's: {said}"
    );
    let wang_row = rows
        .iter()
        .position(|r| text_of(&r[column("name")]) == "王宇")
        .expect("王宇's row")
        + 1;
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(&format!("sheet 花名册, row {wang_row}: 王宇 (")))
        .unwrap_or_else(|| panic!("王宇 listed: {out}"));
    let changes: Vec<&str> = lines[at + 1..]
        .iter()
        .take_while(|l| l.starts_with("  "))
        .copied()
        .collect();
    assert_eq!(changes, ["  联系电话: 13800000000 → 13900000001"], "{out}");
    assert!(
        out.contains(&format!(
            "new members:\n  sheet 花名册, row {}: 赵六\n",
            new_row + 1
        )),
        "{out}"
    );
    assert!(
        out.contains("dry run: 1 new, 1 changed, 1 unchanged, no bad rows; nothing was imported"),
        "{out}"
    );
    assert_eq!(
        show(&pingliang, "王宇")["phone"],
        "13800000000",
        "a dry run changes nothing"
    );
    assert_eq!(owned(&pingliang).len(), 2);

    // Applied: one transaction, one audited action with its counts.
    let (out, _) = done(&pingliang.ctl(&["member", "import", "--update", path_text(&edited_file)]));
    assert!(
        out.contains("imported: 1 new, 1 changed, 1 unchanged, 0 bad rows skipped"),
        "{out}"
    );
    assert_eq!(show(&pingliang, "王宇")["phone"], "13900000001");
    assert_eq!(
        show(&pingliang, "李娜")["phone"],
        "13800000001",
        "unchanged"
    );
    assert_eq!(owned(&pingliang).len(), 3);
    let audit = pingliang.ctl_json(&["audit", "list"]);
    let imports: Vec<&Value> = audit
        .iter()
        .map(|(_, entry)| entry)
        .filter(|entry| entry["action"] == "member.import" && entry["outcome"] == "ok")
        .collect();
    assert_eq!(
        imports.len(),
        2,
        "the first import and the update: {audit:?}"
    );
    assert!(
        imports
            .iter()
            .any(|e| e["detail"] == "1 added, 1 updated, 1 unchanged, 0 bad rows skipped"),
        "{imports:?}"
    );
    // Shared as any edit is: the host under the agreement gets it.
    lanzhou
        .wait_until(
            DEFAULT_WAIT,
            "lanzhou holds 王宇's new phone",
            async || {
                lanzhou
                    .show(&wang)
                    .await
                    .is_some_and(|m| m.phone == "13900000001")
            },
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_offers_its_lists_and_its_example_row_is_passed_over() {
    let fed = Federation::new("sheets-template");
    let node = pingliang(&fed).await;
    node.ctl_ok(&[
        "org",
        "add",
        "pl-kt-02",
        "--name",
        "崆峒区农村第二党支部",
        "--level",
        "党支部",
    ]);
    let file = fed.dir().join("template.xlsx");
    node.ctl_ok(&["member", "template", "--xlsx", path_text(&file)]);

    let workbook: Xlsx<_> = calamine::open_workbook(&file).expect("a workbook");
    let sheets: Vec<String> = workbook.sheet_names();
    assert_eq!(sheets, ["花名册", "说明", "选项"]);
    let rows = sheet_rows(&file, "花名册");
    let headers: Vec<String> = rows[0].iter().map(text_of).collect();
    let chinese: Vec<&str> = MEMBER_COLUMNS.iter().map(|c| c.header).collect();
    assert_eq!(headers, chinese);
    assert_eq!(text_of(&rows[1][column("name")]), "王宇", "the example row");
    assert!(matches!(rows[1][column("birth_date")], Data::DateTime(_)));
    assert!(matches!(rows[1][column("national_id")], Data::String(_)));

    // The lists: inline for a few values, on the hidden sheet for the
    // branches and the provinces.
    let lists = sheet_rows(&file, "选项");
    let branches: Vec<String> = lists[1..]
        .iter()
        .map(|r| text_of(&r[0]))
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(branches, [BRANCH, "崆峒区农村第二党支部"]);
    let provinces: Vec<String> = lists[1..]
        .iter()
        .map(|r| text_of(&r[1]))
        .filter(|t| !t.is_empty())
        .collect();
    assert!(provinces.contains(&"甘肃省".to_owned()), "{provinces:?}");
    assert!(part(&file, "xl/workbook.xml").contains("state=\"hidden\""));
    let letter = |key: &str| liaison_types::sheet::letters(column(key));
    let found = validations(&part(&file, "xl/worksheets/sheet1.xml"));
    let list_of = |key: &str| -> String {
        let range = format!("{0}2:{0}10001", letter(key));
        found
            .iter()
            .find(|(sqref, _)| *sqref == range)
            .map(|(_, formula)| formula.clone())
            .unwrap_or_else(|| panic!("no list on {range} ({key}): {found:?}"))
    };
    assert_eq!(list_of("gender"), "\"男,女\"");
    assert_eq!(list_of("party_status"), "\"正式,预备\"");
    assert_eq!(
        list_of("education"),
        "\"小学,初中,高中,中专,大专,大学本科,研究生\""
    );
    assert_eq!(list_of("home_branch"), "'选项'!$A$2:$A$3");
    assert_eq!(
        list_of("destination_place"),
        format!("'选项'!$B$2:$B${}", provinces.len() + 1)
    );

    // The template as it comes: its example is passed over, not imported.
    let (out, said) = done(&node.ctl(&["member", "import", path_text(&file)]));
    assert!(
        said.contains("note: row 2 is the template's example (王宇): not imported"),
        "{said}"
    );
    assert!(out.contains("imported: 0 new"), "{out}");
    assert!(owned(&node).is_empty());
}

/// The demo's roster holds every column: exported as a workbook, as
/// Chinese CSV and as English CSV, each reads back to the same members.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unedited_export_changes_nothing() {
    let fed = Federation::new("sheets-round-trip");
    let node = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    fed.link_serving(&node, &lanzhou, "6201").await;
    let roster = fed.dir().join("roster.csv");
    let orgs = fed.dir().join("orgs.csv");
    node.ctl_ok(&[
        "demo",
        "roster",
        "--count",
        "60",
        "--out",
        path_text(&roster),
        "--orgs",
        path_text(&orgs),
    ]);
    node.ctl_ok(&["org", "import", path_text(&orgs)]);
    node.ctl_ok(&["member", "import", path_text(&roster)]);
    let exports = [
        ("export.xlsx", vec!["--xlsx"]),
        ("export-zh.csv", vec!["--out"]),
        ("export-en.csv", vec!["--headers", "en", "--out"]),
    ];
    for (name, flags) in exports {
        let file = fed.dir().join(name);
        let mut args = vec!["member", "export"];
        args.extend(flags);
        args.push(path_text(&file));
        node.ctl_ok(&args);
        let (out, said) = done(&node.ctl(&[
            "member",
            "import",
            "--update",
            "--dry-run",
            path_text(&file),
        ]));
        assert!(!said.contains("warning"), "{name}: {said}");
        assert!(
            out.ends_with(
                "dry run: 0 new, 0 changed, 60 unchanged, no bad rows; nothing was imported\n"
            ),
            "{name}: {out}"
        );
    }
}

/// A client that stops sending half-way (its file turned unreadable, it
/// was killed) imports nothing: the node commits only a stream that ended
/// with its count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_that_stop_before_their_count_import_nothing() {
    let fed = Federation::new("sheets-cut");
    let node = pingliang(&fed).await;
    let mut csv = String::from("姓名,性别,出生日期,党员类别,所在支部\n");
    for idx in 0..600 {
        csv.push_str(&format!("党员{idx},男,1990-05-17,正式,pl-kt-01\n"));
    }
    let mut chunks =
        liaisonctl::sheet::send::csv_chunks(csv.as_bytes(), Default::default()).expect("reads");
    assert!(chunks.len() > 1);
    let last = chunks.last_mut().expect("a last chunk");
    last.end_rows = None;
    let mut admin = node.admin().await;
    let refused = timed(
        "MemberImport",
        admin.member_import(tokio_stream::iter(chunks)),
    )
    .await
    .expect_err("a cut stream is refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("stopped before the end")
            && refused.message().contains("nothing was imported"),
        "{}",
        refused.message()
    );
    // A count that does not match the rows is refused too.
    let mut chunks =
        liaisonctl::sheet::send::csv_chunks(csv.as_bytes(), Default::default()).expect("reads");
    chunks.last_mut().expect("a last chunk").end_rows = Some(601);
    let refused = timed(
        "MemberImport",
        admin.member_import(tokio_stream::iter(chunks)),
    )
    .await
    .expect_err("a wrong count is refused");
    assert!(
        refused.message().contains("counted 601 rows but 600 came"),
        "{}",
        refused.message()
    );
    assert!(owned(&node).is_empty(), "nothing imported");
    let audit = node.ctl_json(&["audit", "list"]);
    assert!(
        audit
            .iter()
            .filter(|(_, e)| e["action"] == "member.import")
            .all(|(_, e)| e["outcome"] == "refused"),
        "{audit:?}"
    );
}

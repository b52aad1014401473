//! Issue 23: reports between real nodes, checked against counts this test
//! makes itself from the roster file it imports.
//!
//! One seeded synthetic roster (`liaisonctl demo roster`), a quarter of it
//! made to stay at home, is imported at Pingliang; every report's JSON is
//! checked against the file; CSV and the Excel workbook are read back and
//! compared with the JSON; the charts parse as XML with their labels; a
//! report at an earlier date is the same after later changes; a member in
//! transfer counts at the sender until the release and at the receiver
//! from it; the host's report holds only the fields shared with it.
//! `LIAISON_REPORTS_SEED=N` replays one roster; a failure prints the seed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::{Datelike, Months, NaiveDate};
use liaison_tests::{
    describe_output, liaisonctl, parse_json_lines, Federation, TestNode, DEFAULT_WAIT,
};
use serde_json::Value;

/// Members in the roster.
const COUNT: usize = 240;

fn today() -> NaiveDate {
    chrono::Utc::now()
        .with_timezone(&liaison_types::time::china_time())
        .date_naive()
}

/// Prints the seed when the test fails.
struct Seed(u64);

impl Drop for Seed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("reports: failed with LIAISON_REPORTS_SEED={}", self.0);
        }
    }
}

/// One member of the roster file, as the test reads it.
#[derive(Debug, Clone)]
struct Row {
    name: String,
    gender: String,
    birth_date: NaiveDate,
    national_id: String,
    education: String,
    origin: String,
    joined_on: NaiveDate,
    home_branch: String,
    phone: String,
    native_place: String,
    destination: String,
    departed_on: Option<NaiveDate>,
    reason: String,
    fixed: bool,
    direction: String,
    certificate: bool,
}

impl Row {
    fn away_at(&self, day: NaiveDate) -> bool {
        self.joined_on <= day && self.departed_on.is_some_and(|d| d <= day)
    }
}

/// Writes a roster of `COUNT` members from `seed` into `dir` with a
/// quarter of them at home (their outflow columns emptied), and its
/// branches; returns the rows.
fn roster(dir: &Path, seed: u64) -> Vec<Row> {
    let generated = dir.join("generated.csv");
    let orgs = dir.join("orgs.csv");
    let output = liaisonctl(&[
        "demo",
        "roster",
        "--count",
        &COUNT.to_string(),
        "--seed",
        &seed.to_string(),
        "--out",
        generated.to_str().unwrap(),
        "--orgs",
        orgs.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", describe_output(&output));
    let mut reader = csv::Reader::from_path(&generated).unwrap();
    let headers = reader.headers().unwrap().clone();
    let at = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let outflow_columns = [
        "destination_place",
        "departed_on",
        "outflow_reason",
        "fixed_location",
        "direction",
        "certificate_no",
        "card_no",
    ]
    .map(&at);
    let mut writer = csv::Writer::from_path(dir.join("roster.csv")).unwrap();
    writer.write_record(&headers).unwrap();
    let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let mut rows = Vec::new();
    for (idx, record) in reader.records().enumerate() {
        let mut cells: Vec<String> = record.unwrap().iter().map(str::to_owned).collect();
        if idx % 4 == 3 {
            for c in outflow_columns {
                cells[c].clear();
            }
        }
        writer.write_record(&cells).unwrap();
        let cell = |name: &str| cells[at(name)].clone();
        rows.push(Row {
            name: cell("name"),
            gender: cell("gender"),
            birth_date: date(&cell("birth_date")),
            national_id: cell("national_id"),
            education: cell("education"),
            origin: cell("origin"),
            joined_on: date(&cell("joined_on")),
            home_branch: cell("home_branch"),
            phone: cell("phone"),
            native_place: cell("native_place"),
            destination: cell("destination_place"),
            departed_on: Some(cell("departed_on"))
                .filter(|d| !d.is_empty())
                .map(|d| date(&d)),
            reason: cell("outflow_reason"),
            fixed: cell("fixed_location") == "是",
            direction: cell("direction"),
            certificate: !cell("certificate_no").is_empty(),
        });
    }
    writer.flush().unwrap();
    rows
}

/// A report's JSON Lines: the report's record, and each table's rows.
struct Json {
    head: Value,
    tables: BTreeMap<String, (Value, Vec<Value>)>,
    order: Vec<String>,
}

impl Json {
    fn of(node: &TestNode, args: &[&str]) -> Json {
        let mut full = vec!["report"];
        full.extend_from_slice(args);
        let lines = node.ctl_json(&full);
        let mut json = Json {
            head: Value::Null,
            tables: BTreeMap::new(),
            order: Vec::new(),
        };
        for (kind, data) in lines {
            match kind.as_str() {
                "report" => json.head = data,
                "report_table" => {
                    let key = data["table"].as_str().unwrap().to_owned();
                    json.order.push(key.clone());
                    json.tables.insert(key, (data, Vec::new()));
                }
                "report_row" => {
                    let key = data["table"].as_str().unwrap();
                    json.tables.get_mut(key).unwrap().1.push(data);
                }
                "report_definition" => {}
                other => panic!("report printed a `{other}` record"),
            }
        }
        json
    }

    fn rows(&self, table: &str) -> &[Value] {
        &self
            .tables
            .get(table)
            .unwrap_or_else(|| panic!("no table {table}"))
            .1
    }

    /// Column `column` of the row whose `by` is `value` (as a count; 0 if
    /// there is no such row).
    fn count(&self, table: &str, by: &str, value: &str, column: &str) -> i64 {
        self.rows(table)
            .iter()
            .find(|r| r[by] == value)
            .map_or(0, |r| r[column].as_i64().unwrap())
    }

    /// Each row's `by` → `members`, rows with no members left out.
    fn members_by(&self, table: &str, by: &str) -> BTreeMap<String, i64> {
        self.rows(table)
            .iter()
            .map(|r| {
                (
                    r[by].as_str().unwrap().to_owned(),
                    r["members"].as_i64().unwrap(),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    fn summary(&self, column: &str) -> i64 {
        self.rows("summary")[0][column].as_i64().unwrap()
    }
}

fn tally<'a>(keys: impl Iterator<Item = String> + 'a) -> BTreeMap<String, i64> {
    let mut map = BTreeMap::new();
    for key in keys {
        *map.entry(key).or_default() += 1;
    }
    map
}

fn age_band(birth: NaiveDate, day: NaiveDate) -> String {
    let mut age = day.year() - birth.year();
    if (day.month(), day.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    let band = match age {
        ..=30 => "30岁及以下 30 or under",
        31..=35 => "31-35岁",
        36..=40 => "36-40岁",
        41..=45 => "41-45岁",
        46..=50 => "46-50岁",
        51..=55 => "51-55岁",
        56..=60 => "56-60岁",
        _ => "61岁及以上 61 and over",
    };
    band.to_owned()
}

fn yes_no(value: bool) -> String {
    if value { "是 yes" } else { "否 no" }.to_owned()
}

/// The outflow report at today against the roster.
fn check_outflow(json: &Json, rows: &[Row], branches: &HashMap<String, String>) {
    let day = today();
    let away: Vec<&Row> = rows.iter().filter(|r| r.away_at(day)).collect();
    assert_eq!(json.summary("members"), rows.len() as i64);
    assert_eq!(json.summary("away"), away.len() as i64);
    let share = (away.len() as f64 * 1000.0 / rows.len() as f64).round() / 10.0;
    assert_eq!(
        json.rows("summary")[0]["away_share_pct"].as_f64().unwrap(),
        share
    );
    let six = day.checked_sub_months(Months::new(6)).unwrap();
    assert_eq!(
        json.summary("away_six_months"),
        away.iter()
            .filter(|r| r.departed_on.unwrap() <= six)
            .count() as i64
    );
    // Places: each county, city and province by its code.
    let mut places = tally(away.iter().map(|r| r.destination.clone()));
    for r in &away {
        *places
            .entry(format!("{}00", &r.destination[..4]))
            .or_default() += 1;
        *places
            .entry(format!("{}0000", &r.destination[..2]))
            .or_default() += 1;
    }
    let by_code: BTreeMap<String, i64> = json
        .rows("by_destination")
        .iter()
        .map(|r| {
            (
                r["code"].as_str().unwrap().to_owned(),
                r["members"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(by_code, places);
    let lanzhou = by_code["620100"];
    let row = json
        .rows("by_destination")
        .iter()
        .find(|r| r["code"] == "620100")
        .unwrap();
    assert_eq!(row["place"], "兰州市");
    assert_eq!(row["node"], "lanzhou");
    assert_eq!(row["depth"], 1);
    assert!(lanzhou > 0);
    let dimension = |table: &str, by: &str, expected: BTreeMap<String, i64>| {
        assert_eq!(json.members_by(table, by), expected, "{table}");
    };
    dimension(
        "by_gender",
        "gender",
        tally(away.iter().map(|r| r.gender.clone())),
    );
    dimension(
        "by_age",
        "age",
        tally(away.iter().map(|r| age_band(r.birth_date, day))),
    );
    dimension(
        "by_education",
        "education",
        tally(away.iter().map(|r| r.education.clone())),
    );
    dimension(
        "by_origin",
        "origin",
        tally(away.iter().map(|r| r.origin.clone())),
    );
    dimension(
        "by_reason",
        "reason",
        tally(away.iter().map(|r| r.reason.clone())),
    );
    dimension(
        "by_industry",
        "industry",
        tally(away.iter().map(|r| r.direction.clone())),
    );
    dimension(
        "by_certificate",
        "certificate",
        tally(away.iter().map(|r| yes_no(r.certificate))),
    );
    dimension(
        "by_reported",
        "reported",
        tally(away.iter().map(|_| yes_no(false))),
    );
    dimension(
        "by_branch",
        "branch",
        tally(
            away.iter()
                .map(|r| format!("{} ({})", branches[&r.home_branch], r.home_branch)),
        ),
    );
    let men = away.iter().filter(|r| r.gender == "男").count() as i64;
    assert_eq!(json.count("profile", "trait", "男性 men", "members"), men);
    let rural = away.iter().filter(|r| r.origin == "农村").count() as i64;
    assert_eq!(
        json.count("profile", "trait", "农村户籍 rural origin", "members"),
        rural
    );
}

/// The contact, transfer-due, uncovered and activity reports against the
/// roster (nothing recorded yet: no contact, no activity, no agreement).
fn check_the_others(node: &TestNode, rows: &[Row]) {
    let day = today();
    let away: Vec<&Row> = rows.iter().filter(|r| r.away_at(day)).collect();
    let contact = Json::of(node, &["contact"]);
    let status = |r: &&Row| {
        let days = (day - r.departed_on.unwrap()).num_days();
        match days {
            ..=92 => "保持联系 in contact",
            93..=183 => "联系逾期 overdue",
            _ => "失联 lost",
        }
        .to_owned()
    };
    assert_eq!(
        contact.members_by("by_status", "status"),
        tally(away.iter().map(status))
    );
    assert!(contact.rows("found").is_empty());
    assert!(contact.rows("unreachable").is_empty());

    let six = day.checked_sub_months(Months::new(6)).unwrap();
    let due: Vec<&&Row> = away
        .iter()
        .filter(|r| r.fixed && r.departed_on.unwrap() <= six)
        .collect();
    let json = Json::of(node, &["transfer-due"]);
    assert_eq!(json.rows("members").len(), due.len());
    let names: Vec<&str> = json
        .rows("members")
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(due.iter().all(|r| names.contains(&r.name.as_str())));

    let json = Json::of(node, &["uncovered"]);
    assert_eq!(json.rows("members").len(), away.len());
    let total: i64 = json
        .rows("by_destination")
        .iter()
        .filter(|r| r["depth"] == 0)
        .map(|r| r["members"].as_i64().unwrap())
        .sum();
    assert_eq!(total, away.len() as i64);

    let json = Json::of(node, &["activity"]);
    let inactive = json
        .rows("by_branch")
        .iter()
        .map(|r| r["inactive"].as_i64().unwrap())
        .sum::<i64>();
    assert_eq!(
        inactive,
        away.len() as i64,
        "nothing recorded: everyone inactive"
    );
    assert_eq!(json.rows("inactive").len(), away.len());
    assert!(json
        .rows("members")
        .iter()
        .all(|r| r["dues_up_to_date"] == "否 no"));
}

/// The CSV and the workbook of `args` hold what its JSON holds.
fn check_csv_and_xlsx(node: &TestNode, dir: &Path, args: &[&str]) {
    let json = Json::of(node, args);
    // CSV: per table a title row, the headers in Chinese and English, the rows.
    let mut full = vec!["-o", "csv", "report"];
    full.extend_from_slice(args);
    let bytes = node.ctl_ok(&full).into_bytes();
    assert!(
        bytes.starts_with("\u{feff}".as_bytes()),
        "a byte-order mark for Excel"
    );
    let records: Vec<Vec<String>> = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(&bytes[3..])
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    let same = |json: &Value, text: &str| match json {
        Value::String(s) => s == text,
        Value::Number(n) => text.parse::<f64>().ok() == n.as_f64(),
        other => panic!("a cell {other}"),
    };
    let workbook = dir.join(format!("{}.xlsx", args[0]));
    let mut full = vec!["report"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--xlsx", workbook.to_str().unwrap()]);
    node.ctl_ok(&full);
    use calamine::Reader;
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(&workbook).unwrap();
    let sheets = book.sheet_names();
    assert_eq!(
        sheets.len(),
        json.order.len() + 1,
        "a sheet per table and the definitions"
    );
    assert_eq!(sheets.last().unwrap(), "定义 Definitions");
    for (idx, key) in json.order.iter().enumerate() {
        let (table, rows) = &json.tables[key];
        let columns: Vec<&str> = table["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["key"].as_str().unwrap())
            .collect();
        let title = format!(
            "【{}】 {}",
            table["zh"].as_str().unwrap(),
            table["en"].as_str().unwrap()
        );
        let at = records
            .iter()
            .position(|r| r.first() == Some(&title))
            .unwrap_or_else(|| panic!("no section {title} in the CSV"));
        let zh: Vec<&str> = table["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["zh"].as_str().unwrap())
            .collect();
        assert_eq!(records[at + 1], zh);
        for (n, row) in rows.iter().enumerate() {
            let record = &records[at + 3 + n];
            for (c, key) in columns.iter().enumerate() {
                assert!(
                    same(&row[key], &record[c]),
                    "{title} row {n} {key}: {} vs {}",
                    row[key],
                    record[c]
                );
            }
        }
        let range = book.worksheet_range(&sheets[idx]).unwrap();
        let title_cell = range.get_value((0, 0)).unwrap().to_string();
        assert!(
            title_cell.contains(node.node_id.as_str()) && title_cell.contains("计数规则"),
            "{title_cell}"
        );
        assert!(title_cell.contains(json.head["as_of"].as_str().unwrap()));
        for (c, column) in table["columns"].as_array().unwrap().iter().enumerate() {
            assert_eq!(
                range.get_value((1, c as u32)).unwrap().to_string(),
                column["zh"].as_str().unwrap()
            );
            assert_eq!(
                range.get_value((2, c as u32)).unwrap().to_string(),
                column["en"].as_str().unwrap()
            );
        }
        for (n, row) in rows.iter().enumerate() {
            for (c, key) in columns.iter().enumerate() {
                let value = range.get_value((3 + n as u32, c as u32));
                match (&row[key], value) {
                    (Value::Number(x), Some(calamine::Data::Float(y))) => {
                        assert_eq!(x.as_f64(), Some(*y), "{title} row {n} {key}")
                    }
                    (Value::String(s), Some(calamine::Data::String(t))) => assert_eq!(s, t),
                    (Value::String(s), None | Some(calamine::Data::Empty)) => assert!(s.is_empty()),
                    (json, xlsx) => panic!("{title} row {n} {key}: {json} vs {xlsx:?}"),
                }
            }
        }
    }
}

/// The `<text>` of an SVG chart, which must parse as XML.
fn chart_texts(path: &Path) -> Vec<String> {
    let svg = std::fs::read_to_string(path).unwrap();
    let doc =
        roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_count_what_the_roster_holds_in_every_format() {
    let seed: u64 = std::env::var("LIAISON_REPORTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2018);
    let _seed = Seed(seed);
    let fed = Federation::new("reports");
    let pingliang = fed.start(fed.config("pingliang").clockable()).await;
    let lanzhou = fed.node("lanzhou").await;
    fed.link_serving(&pingliang, &lanzhou, "6201").await;
    let dir = fed.dir().to_owned();
    let rows = roster(&dir, seed);
    pingliang.ctl_ok(&["org", "import", dir.join("orgs.csv").to_str().unwrap()]);
    pingliang.ctl_ok(&["member", "import", dir.join("roster.csv").to_str().unwrap()]);
    let branches: HashMap<String, String> = pingliang
        .ctl_json(&["org", "list"])
        .into_iter()
        .map(|(_, o)| {
            (
                o["org_id"].as_str().unwrap().to_owned(),
                o["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();

    // Every report against the roster, and in every format.
    let outflow = Json::of(&pingliang, &["outflow"]);
    assert_eq!(outflow.head["node_id"], "pingliang");
    assert_eq!(outflow.head["node_name"], "平凉");
    assert_eq!(outflow.head["as_of"], today().to_string());
    assert!(outflow.head["rules"][0]
        .as_str()
        .unwrap()
        .contains("组织关系所在地"));
    check_outflow(&outflow, &rows, &branches);
    check_the_others(&pingliang, &rows);
    // A report that names members is audited, as an export is; counts alone are not.
    let audit = pingliang.audit();
    assert!(
        audit.iter().any(|e| e.action == "report"
            && e.target.starts_with("transfer_due as of today")
            && e.detail.ends_with("members listed by name")),
        "{audit:?}"
    );
    assert!(!audit
        .iter()
        .any(|e| e.action == "report" && e.target.starts_with("outflow")));
    check_csv_and_xlsx(&pingliang, &dir, &["outflow"]);
    check_csv_and_xlsx(&pingliang, &dir, &["transfer-due"]);
    check_csv_and_xlsx(&pingliang, &dir, &["contact", "--limit", "5"]);

    // The chart: well-formed SVG, its labels Chinese text.
    let chart = dir.join("outflow.svg");
    pingliang.ctl_ok(&["report", "outflow", "--chart", chart.to_str().unwrap()]);
    let texts = chart_texts(&chart);
    for label in [
        "流出党员去向 Members away by destination city",
        "兰州市",
        "人数 members",
    ] {
        assert!(texts.iter().any(|t| t == label), "{label} in {texts:?}");
    }
    let top = outflow
        .rows("by_destination")
        .iter()
        .filter(|r| r["depth"] == 1 && r["place"] != "市辖区")
        .max_by_key(|r| r["members"].as_i64().unwrap())
        .unwrap();
    assert!(texts
        .iter()
        .any(|t| t == &top["members"].as_i64().unwrap().to_string()));

    // A date in the past, from the dated facts: reproduced after later changes.
    let past = today() - chrono::Duration::days(100);
    let at_past = |node: &TestNode| Json::of(node, &["outflow", "--as-of", &past.to_string()]);
    let before = at_past(&pingliang);
    assert_eq!(
        before.summary("members"),
        rows.iter().filter(|r| r.joined_on <= past).count() as i64
    );
    assert_eq!(
        before.summary("away"),
        rows.iter().filter(|r| r.away_at(past)).count() as i64
    );
    assert!(before.head["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("dated facts")));

    // A co-management agreement: Lanzhou hosts the members away to it.
    let to_lanzhou: Vec<&Row> = rows
        .iter()
        .filter(|r| r.away_at(today()) && r.destination.starts_with("6201"))
        .collect();
    fed.agree(&pingliang, &lanzhou, "平凉-兰州-2026-01").await;
    let hosted = lanzhou
        .wait_for(
            DEFAULT_WAIT,
            "lanzhou hosts the members away to it",
            async || {
                let json = Json::of(&lanzhou, &["inflow"]);
                (json.summary("hosted") == to_lanzhou.len() as i64).then_some(json)
            },
        )
        .await;
    assert_eq!(
        hosted.members_by("by_home", "home"),
        BTreeMap::from([("平凉 (pingliang)".to_owned(), to_lanzhou.len() as i64)])
    );
    assert!(hosted.head["rules"][0]
        .as_str()
        .unwrap()
        .contains("不计入本节点党员总数"));
    // Only what is shared: no ID number, birth date, phone, native place,
    // education or origin in any format of the host's reports.
    let mut printed = String::new();
    for report in ["inflow", "contact", "activity", "agreements"] {
        printed.push_str(&lanzhou.ctl_ok(&["-o", "json", "report", report]));
        printed.push_str(&lanzhou.ctl_ok(&["-o", "csv", "report", report]));
    }
    for r in &to_lanzhou {
        for private in [
            &r.national_id,
            &r.birth_date.to_string(),
            &r.phone,
            &r.native_place,
        ] {
            assert!(
                !printed.contains(private.as_str()),
                "the host's reports show {private}"
            );
        }
    }
    for (table, _) in hosted.tables.values() {
        for column in table["columns"].as_array().unwrap() {
            assert!(!["education", "origin", "birth_date", "national_id"]
                .contains(&column["key"].as_str().unwrap()));
        }
    }
    assert_eq!(
        Json::of(&lanzhou, &["outflow"]).summary("members"),
        0,
        "a host never counts its guests"
    );
    check_csv_and_xlsx(&lanzhou, &dir, &["inflow"]);
    let agreements = Json::of(&pingliang, &["agreements"]);
    assert_eq!(
        agreements.count("active", "number", "平凉-兰州-2026-01", "members"),
        to_lanzhou.len() as i64
    );
    let uncovered = Json::of(&pingliang, &["uncovered"]);
    assert_eq!(
        uncovered.rows("members").len(),
        rows.iter().filter(|r| r.away_at(today())).count() - to_lanzhou.len()
    );

    // A member in transfer: at Pingliang until the release, at Lanzhou from
    // it (one who was a member already at the earlier date: a tombstone
    // keeps no joining date).
    let moving = to_lanzhou.iter().find(|r| r.joined_on <= past).unwrap();
    let member_id = pingliang.ctl_json(&["member", "show", &moving.national_id])[0].1["member_id"]
        .as_str()
        .unwrap()
        .to_owned();
    lanzhou.org_add("b1").await;
    let t = pingliang.transfer_start(&member_id, &lanzhou).await;
    lanzhou.wait_transfer(&t.transfer_id, "pending").await;
    lanzhou.transfer_accept(&t.transfer_id).await;
    pingliang.wait_transfer(&t.transfer_id, "completed").await;
    // And one member comes home today.
    let returning = rows
        .iter()
        .find(|r| r.away_at(today()) && !r.destination.starts_with("6201"))
        .unwrap();
    pingliang.ctl_ok(&["outflow", "return", &returning.national_id]);
    let yesterday = (today() - chrono::Duration::days(1)).to_string();
    let away_yesterday = rows
        .iter()
        .filter(|r| r.away_at(today() - chrono::Duration::days(1)))
        .count() as i64;
    let sender = Json::of(&pingliang, &["outflow", "--as-of", &yesterday]);
    assert_eq!(sender.summary("members"), rows.len() as i64);
    assert_eq!(sender.summary("away"), away_yesterday);
    assert_eq!(sender.summary("transferred_since"), 1);
    let now = Json::of(&pingliang, &["outflow"]);
    assert_eq!(now.summary("members"), rows.len() as i64 - 1);
    assert_eq!(
        now.summary("away"),
        rows.iter().filter(|r| r.away_at(today())).count() as i64 - 2
    );
    assert_eq!(Json::of(&lanzhou, &["outflow"]).summary("members"), 1);
    assert_eq!(
        Json::of(&lanzhou, &["outflow", "--as-of", &yesterday]).summary("members"),
        0
    );
    let sent = Json::of(&pingliang, &["transfers"]);
    assert_eq!(
        sent.count("by_peer", "peer", "兰州 (lanzhou)", "sent_completed"),
        1
    );
    let received = Json::of(&lanzhou, &["transfers"]);
    assert_eq!(
        received.count("by_peer", "peer", "平凉 (pingliang)", "received_completed"),
        1
    );
    // The earlier date counts as it did before the transfer and the return.
    let after = at_past(&pingliang);
    assert_eq!(after.summary("members"), before.summary("members"));
    assert_eq!(after.summary("away"), before.summary("away"));
    assert_eq!(after.rows("by_destination"), before.rows("by_destination"));
    assert_eq!(after.rows("by_branch"), before.rows("by_branch"));

    // The trend: the study's figures imported, the compound rate with its
    // formula, and a line chart.
    let years = dir.join("years.csv");
    std::fs::write(
        &years,
        "年份,流出党员,党员总数,占比\n2012,3033,,\n2018,\"7,074\",,5.1%\n",
    )
    .unwrap();
    let trend_chart = dir.join("trend.svg");
    let output = pingliang.ctl(&[
        "-o",
        "json",
        "report",
        "trend",
        "--import",
        years.to_str().unwrap(),
        "--chart",
        trend_chart.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", describe_output(&output));
    let lines = parse_json_lines(&String::from_utf8(output.stdout).unwrap());
    let table = lines
        .iter()
        .find(|(t, d)| t == "report_table" && d["table"] == "by_year")
        .unwrap();
    let notes: Vec<&str> = table.1["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("(7074 / 3033)^(1/6) − 1 = 15.2%")),
        "{notes:?}"
    );
    assert!(notes.iter().all(|n| !n.contains("9.5")), "{notes:?}");
    let texts = chart_texts(&trend_chart);
    for label in [
        "2012",
        "2018",
        "3033",
        "7074",
        "年份 year",
        "流出党员历年变化 Members away at each year's end",
    ] {
        assert!(texts.iter().any(|t| t == label), "{label} in {texts:?}");
    }
    assert!(texts.iter().any(|t| t.contains("15.2%")));
    // The node records its own year end, counted as of 31 December, on
    // its calendar's first run in the new year.
    let new_year = NaiveDate::from_ymd_opt(today().year() + 1, 1, 1).unwrap();
    let offset = (new_year - today()).num_days() + 1;
    pingliang.ctl_ok(&["debug", "clock", "--offset", &format!("{offset}d")]);
    let trend = Json::of(&pingliang, &["trend"]);
    let recorded = trend
        .rows("by_year")
        .iter()
        .find(|r| r["year"] == today().year())
        .unwrap_or_else(|| {
            panic!(
                "no count of {} recorded: {:?}",
                today().year(),
                trend.rows("by_year")
            )
        });
    assert_eq!(recorded["source"], "本节点 this node");
    assert_eq!(recorded["mobile"], now.summary("away"));
    assert_eq!(recorded["members"], now.summary("members"));
    // Bad input changes nothing and says what to do.
    let refused = pingliang.ctl(&["report", "agreements", "--branch", "pl-kongtong"]);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{}",
        describe_output(&refused)
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("takes no --branch"));
    let usage = pingliang.ctl(&["-o", "csv", "peer", "list"]);
    assert_eq!(usage.status.code(), Some(2), "{}", describe_output(&usage));
}

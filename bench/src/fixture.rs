//! Synthetic members, deterministic by index: the roster CSV the owner
//! imports, and the home-section payloads the limits use, so both carry
//! records of the same shape and size.

use liaison_proto::v1 as pb;
use prost::Message as _;

/// The place code every benchmark host serves (Lanzhou, Chengguan district).
pub const HOST_PLACE: &str = "620102";
/// The city code hosts are added with (`peer add --serves 6201`).
pub const HOST_CITY: &str = "6201";
/// Home branches the bench creates at the owner.
pub const BRANCHES: [&str; 4] = ["b1", "b2", "b3", "b4"];
/// A name fragment that only every 10,000th member carries, for a
/// selective `member list --name`.
pub const RARE_NAME: &str = "测试";

const SURNAMES: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高", "林",
    "何", "郭", "马", "罗",
];
const GIVEN: [&str; 24] = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀", "霞", "平", "刚", "桂", "英", "华",
];

/// A small, fast, deterministic mix of `i` (splitmix64).
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub fn name(i: u64) -> String {
    let r = mix(i);
    let surname = SURNAMES[(r % 20) as usize];
    if i % 10_000 == 7 {
        return format!("{surname}{RARE_NAME}");
    }
    let a = GIVEN[((r >> 8) % 24) as usize];
    let b = GIVEN[((r >> 16) % 24) as usize];
    format!("{surname}{a}{b}")
}

pub fn gender(i: u64) -> &'static str {
    if mix(i) >> 40 & 1 == 0 {
        "男"
    } else {
        "女"
    }
}

pub fn birth_date(i: u64) -> String {
    let r = mix(i) >> 20;
    format!(
        "{}-{:02}-{:02}",
        1955 + r % 45,
        1 + (r >> 8) % 12,
        1 + (r >> 16) % 28
    )
}

pub fn party_status(i: u64) -> &'static str {
    if i.is_multiple_of(17) {
        "预备"
    } else {
        "正式"
    }
}

pub fn phone(i: u64, round: u64) -> String {
    format!("139{:08}", (mix(i) + round) % 100_000_000)
}

pub fn branch(i: u64) -> &'static str {
    BRANCHES[(i % BRANCHES.len() as u64) as usize]
}

/// The roster of members `range` as the CSV `member import` takes. Member
/// `i` is away to `destination(i)` if that is `Some`.
pub fn roster_csv(
    range: std::ops::Range<u64>,
    destination: impl Fn(u64) -> Option<&'static str>,
) -> String {
    let mut out = String::with_capacity((range.end - range.start) as usize * 90 + 200);
    out.push_str(
        "name,gender,birth_date,party_status,home_branch,phone,destination_place,departed_on\n",
    );
    for i in range {
        let (place, departed) = match destination(i) {
            Some(place) => (place, "2024-03-01"),
            None => ("", ""),
        };
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            name(i),
            gender(i),
            birth_date(i),
            party_status(i),
            branch(i),
            phone(i, 0),
            place,
            departed
        ));
    }
    out
}

/// The columns of an office's roster, as [`office_row`] fills them: a
/// number column of its own (序号, passed over on import), Chinese
/// headers, the ID number, the branch by its code, the destination by
/// name.
pub const OFFICE_HEADERS: [&str; 10] = [
    "序号",
    "姓名",
    "性别",
    "出生日期",
    "公民身份号码",
    "党员类别",
    "所在支部",
    "联系电话",
    "去向地",
    "外出日期",
];

/// Member `i`'s national ID number: a birth date and a sequence number
/// unique to `i` (so 1,000 members a birth date), with its check digit.
fn national_id(i: u64) -> (chrono::NaiveDate, String) {
    let base = chrono::NaiveDate::from_ymd_opt(1960, 1, 1).expect("a date");
    let birth = base + chrono::Days::new(i / 1000);
    let first17 = format!("620802{}{:03}", birth.format("%Y%m%d"), i % 1000);
    let check = liaison_types::validate::national_id_check_char(&first17).expect("17 digits");
    (birth, format!("{first17}{check}"))
}

/// Member `i` of an office's roster, one text per [`OFFICE_HEADERS`]
/// column, and its birth and departure dates (date cells in a workbook).
pub fn office_row(i: u64) -> ([String; 10], chrono::NaiveDate, chrono::NaiveDate) {
    let (birth, id) = national_id(i);
    let departed = chrono::NaiveDate::from_ymd_opt(2024, 3, 1).expect("a date");
    let row = [
        (i + 1).to_string(),
        name(i),
        gender(i).to_owned(),
        birth.to_string(),
        id,
        party_status(i).to_owned(),
        branch(i).to_owned(),
        phone(i, 0),
        "兰州市城关区".to_owned(),
        departed.to_string(),
    ];
    (row, birth, departed)
}

/// Writes members `0..n` as an office's workbook: a title row merged
/// across the columns, the header, then a row per member with the ID
/// numbers and phones as text and the dates as date cells. Strings go to
/// the shared-strings table, as Excel writes them (rust_xlsxwriter's
/// low-memory mode streams the rows meanwhile).
pub fn roster_xlsx(path: &std::path::Path, n: u64) -> anyhow::Result<()> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet_with_low_memory()?;
    sheet.set_name("花名册")?;
    sheet.merge_range(0, 0, 0, 9, "平凉市崆峒区流动党员花名册", &Format::new())?;
    for (col, header) in OFFICE_HEADERS.iter().enumerate() {
        sheet.write_string(1, col as u16, *header)?;
    }
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let text = Format::new().set_num_format("@");
    for i in 0..n {
        let at = i as u32 + 2;
        let (row, birth, departed) = office_row(i);
        sheet.write_number(at, 0, (i + 1) as f64)?;
        for col in [1, 2, 5, 6, 8] {
            sheet.write_string(at, col, &row[col as usize])?;
        }
        sheet.write_string_with_format(at, 4, &row[4], &text)?;
        sheet.write_string_with_format(at, 7, &row[7], &text)?;
        sheet.write_date_with_format(at, 3, birth, &date)?;
        sheet.write_date_with_format(at, 9, departed, &date)?;
    }
    workbook.save(path)?;
    Ok(())
}

/// The same roster as [`roster_xlsx`] as CSV (UTF-8, the dates as text).
pub fn roster_office_csv(n: u64) -> String {
    let mut out = format!("平凉市崆峒区流动党员花名册\n{}\n", OFFICE_HEADERS.join(","));
    for i in 0..n {
        out.push_str(&office_row(i).0.join(","));
        out.push('\n');
    }
    out
}

/// An exported roster (`member export`) with every phone number changed:
/// re-importing it updates every member once (the operators' bulk edit).
pub fn bump_phones(exported_csv: &[u8], round: u64) -> anyhow::Result<(String, u64)> {
    let mut reader = csv::Reader::from_reader(exported_csv);
    let headers = reader.headers()?.clone();
    let phone_idx = headers
        .iter()
        .position(|h| h == "phone")
        .ok_or_else(|| anyhow::anyhow!("the exported roster has no `phone` column"))?;
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&headers)?;
    let mut rows = 0u64;
    for record in reader.records() {
        let record = record?;
        let fields: Vec<String> = record
            .iter()
            .enumerate()
            .map(|(idx, cell)| {
                if idx == phone_idx {
                    phone(rows, round)
                } else {
                    cell.to_owned()
                }
            })
            .collect();
        writer.write_record(&fields)?;
        rows += 1;
    }
    let bytes = writer.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((String::from_utf8(bytes)?, rows))
}

/// A home section of member `i` as an owner shares it with a host: the
/// same fields and sizes as `core::members::home_section`.
pub fn home_section(i: u64, member_id: &str, basis: &str) -> pb::HomeSection {
    let birth_year = birth_date(i)[..4].parse().unwrap_or(1980);
    pb::HomeSection {
        member_id: member_id.to_owned(),
        version: Some(pb::Version {
            generation: 1,
            counter: 2,
        }),
        owner: "pingliang".to_owned(),
        name: name(i),
        gender: gender(i).to_owned(),
        birth_year,
        phone: phone(i, 0),
        party_status: party_status(i).to_owned(),
        home_branch_name: "平凉市崆峒区流动党员第一党支部".to_owned(),
        home_branch_contact: "王建国 0933-8211234".to_owned(),
        membership_state: "normal".to_owned(),
        contact_status: "in_contact".to_owned(),
        basis: basis.to_owned(),
        outflow: Some(pb::Outflow {
            outflow_id: uuid::Uuid::now_v7().to_string(),
            destination_place: HOST_PLACE.to_owned(),
            destination_node: "lanzhou".to_owned(),
            direction: String::new(),
            departed_on: "2024-03-01".to_owned(),
            expected_return: String::new(),
            reason: String::new(),
            fixed_location: false,
            certificate_no: String::new(),
            certificate_issuer: String::new(),
            certificate_issued_on: String::new(),
            card_no: String::new(),
        }),
        // Generation 1: no release gave it.
        letter_no: String::new(),
        transfer_id: String::new(),
    }
}

/// A replication event carrying member `i`'s home section, as a node's
/// log holds it.
pub fn home_section_event(i: u64, seq: u64) -> pb::Event {
    let member_id = uuid::Uuid::now_v7().to_string();
    let basis = uuid::Uuid::now_v7().to_string();
    let payload = home_section(i, &member_id, &basis).encode_to_vec();
    pb::Event {
        seq,
        kind: pb::EventKind::HomeSection as i32,
        entity: member_id,
        payload,
        created_at_ms: chrono::Utc::now().timestamp_millis(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roster_rows_are_valid_shapes() {
        let csv = roster_csv(0..3, |i| (i == 1).then_some(HOST_PLACE));
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[2].ends_with(",620102,2024-03-01"));
        assert!(lines[1].ends_with(",,"));
        assert_eq!(name(7).chars().count(), 3);
        assert!(name(10_007).contains(RARE_NAME));
    }

    #[test]
    fn office_rows_have_unique_valid_id_numbers() {
        let ids: std::collections::BTreeSet<String> =
            (0..5_000).map(|i| office_row(i).0[4].clone()).collect();
        assert_eq!(ids.len(), 5_000);
        let (row, birth, _) = office_row(4_321);
        let checked = liaison_types::validate::national_id(&row[4], birth).unwrap();
        assert_eq!(checked, row[4]);
        let csv = roster_office_csv(2);
        assert_eq!(csv.lines().count(), 4);
        assert!(csv.lines().nth(1).unwrap().starts_with("序号,姓名"));
    }

    #[test]
    fn bumped_roster_changes_only_phones() {
        let exported = "member_id,name,phone\nabc,王伟,13900000000\n";
        let (bumped, rows) = bump_phones(exported.as_bytes(), 5).unwrap();
        assert_eq!(rows, 1);
        assert!(bumped.starts_with("member_id,name,phone\nabc,王伟,139"));
        assert_ne!(bumped, exported);
    }
}

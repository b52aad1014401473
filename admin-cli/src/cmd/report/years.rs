//! The file `report trend --import` reads: year-end counts of the years
//! before the node kept its own, as CSV (UTF-8, a byte-order mark allowed),
//! headers in Chinese or English:
//!
//! ```text
//! 年份,流出党员,党员总数,占比,备注
//! 2012,3033,,,平凉市委组织部年报
//! 2018,"7,074",,5.1%,
//! ```
//!
//! `党员总数` (all members) or `占比` (the share as published, per cent)
//! may be left empty; numbers may have thousands separators.

use liaison_proto::v1 as pb;

/// Columns, each with the headers accepted.
const COLUMNS: [(&str, &[&str]); 5] = [
    ("year", &["年份", "年度", "年"]),
    (
        "mobile",
        &["流出党员", "流动党员", "流出党员数", "流动党员数", "人数"],
    ),
    ("members", &["党员总数", "全部党员"]),
    ("share", &["占比", "占比(%)", "占比（%）", "share_pct"]),
    ("note", &["备注", "说明"]),
];

/// The years in `bytes`; a problem names its line and what to do.
pub(super) fn parse(bytes: &[u8]) -> Result<Vec<pb::TrendYear>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 (byte {}): save the file as UTF-8 CSV",
            e.valid_up_to()
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| format!("line 1: cannot read the header row: {e}"))?
        .clone();
    let mut at = [None; COLUMNS.len()];
    for (idx, header) in headers.iter().enumerate() {
        let column = COLUMNS
            .iter()
            .position(|(en, zh)| header.eq_ignore_ascii_case(en) || zh.contains(&header))
            .ok_or_else(|| {
                format!(
                    "line 1: unknown column `{header}`; the columns are 年份 (year), 流出党员 (mobile), 党员总数 (members), 占比 (share), 备注 (note)"
                )
            })?;
        at[column] = Some(idx);
    }
    let (Some(year_at), Some(mobile_at)) = (at[0], at[1]) else {
        return Err("line 1: the columns 年份 (year) and 流出党员 (mobile) are required".into());
    };
    let mut years = Vec::new();
    for (idx, record) in reader.records().enumerate() {
        let line = idx + 2;
        let record = record.map_err(|e| format!("line {line}: {e}"))?;
        let field = |column: Option<usize>| column.and_then(|c| record.get(c)).unwrap_or("");
        if record.iter().all(str::is_empty) {
            continue;
        }
        let whole = |name: &str, text: &str| -> Result<u64, String> {
            if text.is_empty() {
                return Ok(0);
            }
            text.replace([',', '，'], "")
                .parse::<u64>()
                .map_err(|_| format!("line {line}: {name} `{text}` is not a whole number"))
        };
        let year = field(Some(year_at))
            .trim_end_matches('年')
            .parse::<i32>()
            .map_err(|_| {
                format!(
                    "line {line}: year `{}` is not a year such as 2018",
                    field(Some(year_at))
                )
            })?;
        let mobile = whole("流出党员 (mobile)", field(Some(mobile_at)))?;
        if field(Some(mobile_at)).is_empty() {
            return Err(format!("line {line}: 流出党员 (mobile) is empty"));
        }
        let share_text = field(at[3]).trim_end_matches(['%', '％']);
        let share_pct = if share_text.is_empty() {
            0.0
        } else {
            share_text.parse::<f64>().map_err(|_| {
                format!(
                    "line {line}: 占比 (share) `{}` is not a per cent such as 5.1",
                    field(at[3])
                )
            })?
        };
        years.push(pb::TrendYear {
            year,
            mobile,
            members: whole("党员总数 (members)", field(at[2]))?,
            share_pct,
            note: field(at[4]).to_owned(),
        });
    }
    Ok(years)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_studys_figures_in_chinese_headers_with_separators_and_per_cents() {
        let file =
            "\u{feff}年份,流出党员,党员总数,占比,备注\n2012,3033,,,年报\n2018,\"7,074\",,5.1%,\n";
        let years = parse(file.as_bytes()).unwrap();
        assert_eq!(years.len(), 2);
        assert_eq!(
            (years[0].year, years[0].mobile, years[0].note.as_str()),
            (2012, 3033, "年报")
        );
        assert_eq!(
            (years[1].mobile, years[1].members, years[1].share_pct),
            (7074, 0, 5.1)
        );
        let english = parse(b"year,mobile,members\n2019,7200,140000\n").unwrap();
        assert_eq!(english[0].members, 140_000);
    }

    #[test]
    fn problems_name_the_line() {
        assert!(parse(b"year,people\n")
            .unwrap_err()
            .contains("unknown column `people`"));
        assert!(parse(b"members\n1\n").unwrap_err().contains("required"));
        assert!(parse(b"year,mobile\n2012,many\n")
            .unwrap_err()
            .starts_with("line 2:"));
        assert!(parse(b"year,mobile\nabc,1\n")
            .unwrap_err()
            .contains("not a year"));
        assert!(parse(&[0xff, 0xfe]).unwrap_err().contains("UTF-8"));
    }
}

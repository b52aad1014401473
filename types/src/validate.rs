//! Checks and normal forms for what operators type: dates, genders, ID
//! numbers, codes. Every error says what was wrong and what is expected.

use chrono::{Datelike, NaiveDate};

/// Operator input that is not acceptable, with what was wrong and what is
/// expected, in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid(message: String) -> Invalid {
    Invalid(message)
}

/// A calendar date that exists, between 1900 and `today` (inclusive)
/// unless `future_ok`, typed as offices type dates: `1990-05-17`,
/// `1990/5/17`, `1990.5.17`, `1990年5月17日` or `19900517`.
pub fn date(
    field: &str,
    value: &str,
    today: NaiveDate,
    future_ok: bool,
) -> Result<NaiveDate, Invalid> {
    let value = value.trim();
    let eight_digits = value.len() == 8 && value.bytes().all(|b| b.is_ascii_digit());
    let parsed = if eight_digits {
        NaiveDate::parse_from_str(
            &format!("{}-{}-{}", &value[..4], &value[4..6], &value[6..]),
            "%Y-%m-%d",
        )
    } else {
        ["%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日"]
            .iter()
            .map(|format| NaiveDate::parse_from_str(value, format))
            .find(Result::is_ok)
            .unwrap_or_else(|| NaiveDate::parse_from_str(value, "%Y-%m-%d"))
    };
    let parsed = parsed.map_err(|_| {
        invalid(format!(
            "{field} `{value}` is not a date: use YYYY-MM-DD, e.g. 1990-05-17 (1990/5/17 and 1990年5月17日 are read too)"
        ))
    })?;
    if parsed.year() < 1900 {
        return Err(invalid(format!("{field} {parsed} is before 1900")));
    }
    if !future_ok && parsed > today {
        return Err(invalid(format!(
            "{field} {parsed} is in the future (today is {today})"
        )));
    }
    Ok(parsed)
}

/// An optional date: empty stays empty, anything else must be a date.
pub fn optional_date(
    field: &str,
    value: &str,
    today: NaiveDate,
    future_ok: bool,
) -> Result<Option<NaiveDate>, Invalid> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    date(field, value, today, future_ok).map(Some)
}

pub fn name(value: &str) -> Result<String, Invalid> {
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid(
            "name is empty: give the member's name as on the ID card".into(),
        ));
    }
    if value.chars().count() > 50 {
        return Err(invalid(format!(
            "name `{value}` is longer than 50 characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid("name contains control characters".into()));
    }
    Ok(value.to_owned())
}

/// 男 or 女; accepts male/female/m/f.
pub fn gender(value: &str) -> Result<String, Invalid> {
    match value.trim().to_lowercase().as_str() {
        "男" | "male" | "m" => Ok("男".into()),
        "女" | "female" | "f" => Ok("女".into()),
        other => Err(invalid(format!(
            "gender `{other}` is not 男 or 女 (male/female)"
        ))),
    }
}

/// 正式 (full) or 预备 (probationary).
pub fn party_status(value: &str) -> Result<String, Invalid> {
    match value.trim().to_lowercase().as_str() {
        "正式" | "正式党员" | "full" => Ok("正式".into()),
        "预备" | "预备党员" | "probationary" => Ok("预备".into()),
        other => Err(invalid(format!(
            "party status `{other}` is not 正式 (full) or 预备 (probationary)"
        ))),
    }
}

/// 农村 (rural) or 城镇 (urban), or empty.
pub fn origin(value: &str) -> Result<String, Invalid> {
    match value.trim().to_lowercase().as_str() {
        "" => Ok(String::new()),
        "农村" | "rural" => Ok("农村".into()),
        "城镇" | "urban" => Ok("城镇".into()),
        other => Err(invalid(format!(
            "origin `{other}` is not 农村 (rural) or 城镇 (urban)"
        ))),
    }
}

pub const MEMBERSHIP_STATES: [&str; 3] = ["normal", "suspended", "removed"];

/// normal, suspended (停止党籍) or removed (除名).
pub fn membership_state(value: &str) -> Result<String, Invalid> {
    match value.trim().to_lowercase().as_str() {
        "normal" | "正常" => Ok("normal".into()),
        "suspended" | "停止党籍" => Ok("suspended".into()),
        "removed" | "除名" => Ok("removed".into()),
        other => Err(invalid(format!(
            "membership state `{other}` is not one of normal, suspended (停止党籍), removed (除名)"
        ))),
    }
}

/// Digits with an optional leading +, and - or spaces; 5 to 20 characters.
pub fn phone(value: &str) -> Result<String, Invalid> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(String::new());
    }
    let ok_chars = value
        .chars()
        .enumerate()
        .all(|(idx, c)| c.is_ascii_digit() || c == '-' || c == ' ' || (idx == 0 && c == '+'));
    let digits = value.chars().filter(char::is_ascii_digit).count();
    if !(ok_chars && (5..=20).contains(&digits)) {
        return Err(invalid(format!(
            "phone `{value}` is not a phone number (digits, + - and spaces)"
        )));
    }
    Ok(value.to_owned())
}

/// A free-text field: trimmed, bounded, no control characters.
pub fn text(field: &str, value: &str, max_chars: usize) -> Result<String, Invalid> {
    let value = value.trim();
    if value.chars().count() > max_chars {
        return Err(invalid(format!(
            "{field} is longer than {max_chars} characters"
        )));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(invalid(format!("{field} contains control characters")));
    }
    Ok(value.to_owned())
}

/// A mainland resident ID number (公民身份号码, GB 11643): 17 digits and a
/// check character (digit or X), whose birth date must match `birth_date`.
pub fn national_id(value: &str, birth_date: NaiveDate) -> Result<String, Invalid> {
    let value = value.trim().to_uppercase();
    if value.is_empty() {
        return Ok(value);
    }
    let chars: Vec<char> = value.chars().collect();
    let shape_ok = chars.len() == 18
        && chars[..17].iter().all(char::is_ascii_digit)
        && (chars[17].is_ascii_digit() || chars[17] == 'X');
    if !shape_ok {
        return Err(invalid(format!(
            "national ID number `{value}` is not 17 digits and a check digit (0-9 or X)"
        )));
    }
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let sum: u32 = chars[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(c, w)| c.to_digit(10).unwrap_or(0) * w)
        .sum();
    if CHECK[(sum % 11) as usize] != chars[17] {
        return Err(invalid(format!(
            "national ID number `{value}` has a wrong check digit: check for a typing error"
        )));
    }
    let embedded: String = chars[6..14].iter().collect();
    if embedded != birth_date.format("%Y%m%d").to_string() {
        return Err(invalid(format!(
            "national ID number `{value}` says born {embedded}, but the birth date is {birth_date}"
        )));
    }
    Ok(value)
}

/// Completes a 17-digit prefix with its check character (for tests and the
/// demo roster generator).
pub fn national_id_check_char(first17: &str) -> Option<char> {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in first17.chars().zip(WEIGHTS) {
        sum += c.to_digit(10)? * w;
    }
    Some(CHECK[(sum % 11) as usize])
}

/// The channels of a contact event; `report-in` (报到) is a member reporting
/// in at a host's service station, confirmed by the host's clerk.
pub const CONTACT_CHANNELS: [&str; 6] =
    ["visit", "phone", "message", "org_life", "dues", "report-in"];

pub fn contact_channel(value: &str) -> Result<String, Invalid> {
    match value.trim().to_lowercase().as_str() {
        "visit" | "走访" => Ok("visit".into()),
        "phone" | "电话" => Ok("phone".into()),
        "message" | "短信" | "微信" => Ok("message".into()),
        "org_life" | "org-life" | "组织生活" => Ok("org_life".into()),
        "dues" | "党费" => Ok("dues".into()),
        "report-in" | "report_in" | "报到" => Ok("report-in".into()),
        other => Err(invalid(format!(
            "contact channel `{other}` is not one of {}",
            CONTACT_CHANNELS.join(", ")
        ))),
    }
}

/// Why contact with a member was lost: the code and name of the
/// lost-contact registers (DOMAIN §5.7).
pub const LOST_CAUSES: [(&str, &str); 7] = [
    ("1", "外出务工经商"),
    ("2", "单位改制或破产"),
    ("3", "毕业后去向不明"),
    ("4", "工作单位改变"),
    ("5", "出国(境)"),
    ("6", "居住地改变"),
    ("7", "其他"),
];

/// A cause of lost contact: its code (1-7, ①-⑦) or its name; empty for
/// none.
pub fn lost_cause(value: &str) -> Result<String, Invalid> {
    const CIRCLED: [&str; 7] = ["①", "②", "③", "④", "⑤", "⑥", "⑦"];
    let value = value.trim();
    if value.is_empty() {
        return Ok(String::new());
    }
    LOST_CAUSES
        .iter()
        .zip(CIRCLED)
        .find(|((code, zh), circled)| {
            value == *code
                || value == *circled
                || value == *zh
                || value == zh.replace(['(', ')'], "")
        })
        .map(|((code, _), _)| (*code).to_owned())
        .ok_or_else(|| {
            let causes: Vec<String> = LOST_CAUSES
                .iter()
                .map(|(code, zh)| format!("{code} ({zh})"))
                .collect();
            invalid(format!(
                "cause `{value}` is not one of {}",
                causes.join(", ")
            ))
        })
}

/// Activity kinds, English code and Chinese name.
pub const ACTIVITY_KINDS: [(&str, &str); 10] = [
    ("branch_meeting", "党员大会"),
    ("committee_meeting", "支委会"),
    ("group_meeting", "党小组会"),
    ("party_lecture", "党课"),
    ("theme_day", "主题党日"),
    ("org_life_meeting", "组织生活会"),
    ("appraisal", "民主评议"),
    ("volunteer", "志愿服务"),
    ("training", "集中培训"),
    ("study", "学习"),
];

pub fn activity_kind(value: &str) -> Result<String, Invalid> {
    let value = value.trim();
    ACTIVITY_KINDS
        .iter()
        .find(|(code, zh)| value.eq_ignore_ascii_case(code) || value == *zh)
        .map(|(code, _)| (*code).to_owned())
        .ok_or_else(|| {
            let kinds: Vec<String> = ACTIVITY_KINDS
                .iter()
                .map(|(c, z)| format!("{c} ({z})"))
                .collect();
            invalid(format!(
                "activity kind `{value}` is not one of {}",
                kinds.join(", ")
            ))
        })
}

/// Organization levels, English code and Chinese name.
pub fn org_level(value: &str) -> Result<String, Invalid> {
    const LEVELS: [(&str, &str); 5] = [
        ("committee", "党委"),
        ("general_branch", "党总支"),
        ("branch", "党支部"),
        ("temporary_branch", "临时支部"),
        ("mobile_branch", "流动党员党组织"),
    ];
    let value = value.trim();
    LEVELS
        .iter()
        .find(|(code, zh)| value.eq_ignore_ascii_case(code) || value == *zh)
        .map(|(_, zh)| (*zh).to_owned())
        .ok_or_else(|| {
            let levels: Vec<String> = LEVELS.iter().map(|(c, z)| format!("{z} ({c})")).collect();
            invalid(format!(
                "organization level `{value}` is not one of {}",
                levels.join(", ")
            ))
        })
}

/// 同企 / 同业 / 同乡 (same employer / trade / hometown), or empty.
pub fn org_form(value: &str) -> Result<String, Invalid> {
    match value.trim() {
        "" => Ok(String::new()),
        "同企" | "same_employer" => Ok("同企".into()),
        "同业" | "same_trade" => Ok("同业".into()),
        "同乡" | "same_hometown" => Ok("同乡".into()),
        other => Err(invalid(format!(
            "organization form `{other}` is not 同企 (same_employer), 同业 (same_trade) or 同乡 (same_hometown)"
        ))),
    }
}

/// An id an operator chooses (org codes): letters, digits, - and _, 1-40.
pub fn code(field: &str, value: &str) -> Result<String, Invalid> {
    let value = value.trim();
    let ok = !value.is_empty()
        && value.len() <= 40
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(invalid(format!(
            "{field} `{value}` must be 1 to 40 letters, digits, - or _"
        )));
    }
    Ok(value.to_owned())
}

/// A member id as printed by `member add`: a UUID.
pub fn member_id(value: &str) -> Result<String, Invalid> {
    uuid::Uuid::parse_str(value.trim())
        .map(|u| u.to_string())
        .map_err(|_| {
            invalid(format!(
                "`{value}` is not a member id (a UUID as printed by `member add` or `member list`)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn dates() {
        let today = d("2026-11-25");
        assert!(date("birth_date", "1990-02-30", today, false).is_err());
        assert!(date("birth_date", "2027-01-01", today, false).is_err());
        assert!(date("birth_date", "1850-01-01", today, false).is_err());
        assert_eq!(
            date("birth_date", "1990/05/17", today, false).unwrap(),
            d("1990-05-17")
        );
        assert!(date("expected_return", "2027-01-01", today, true).is_ok());
        for typed in [
            "2026-03-01",
            "2026/3/1",
            "2026.3.1",
            "2026年3月1日",
            " 20260301 ",
        ] {
            assert_eq!(
                date("departed on", typed, today, false).unwrap(),
                d("2026-03-01"),
                "{typed}"
            );
        }
        for bad in ["2026年2月30日", "2026031", "20261301", "3/1/2026", "2026-3"] {
            assert!(date("departed on", bad, today, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn lost_causes_by_code_circled_code_or_name() {
        assert_eq!(lost_cause("1").unwrap(), "1");
        assert_eq!(lost_cause("⑤").unwrap(), "5");
        assert_eq!(lost_cause("出国(境)").unwrap(), "5");
        assert_eq!(lost_cause("出国境").unwrap(), "5");
        assert_eq!(lost_cause(" 居住地改变 ").unwrap(), "6");
        assert_eq!(lost_cause("").unwrap(), "");
        let message = lost_cause("8").unwrap_err().to_string();
        assert!(message.contains("7 (其他)"), "{message}");
    }

    #[test]
    fn national_id_checksum_and_birth_date() {
        let first17 = "62080119900517001";
        let id = format!("{first17}{}", national_id_check_char(first17).unwrap());
        assert_eq!(national_id(&id, d("1990-05-17")).unwrap(), id);
        assert!(national_id(&id, d("1990-05-18"))
            .unwrap_err()
            .to_string()
            .contains("says born"));
        let mut wrong = id.clone();
        wrong.replace_range(17..18, if id.ends_with('0') { "1" } else { "0" });
        assert!(national_id(&wrong, d("1990-05-17"))
            .unwrap_err()
            .to_string()
            .contains("check digit"));
        assert!(national_id("12345", d("1990-05-17")).is_err());
    }

    #[test]
    fn normal_forms() {
        assert_eq!(gender("Male").unwrap(), "男");
        assert!(gender("x").is_err());
        assert_eq!(party_status("probationary").unwrap(), "预备");
        assert_eq!(contact_channel("党费").unwrap(), "dues");
        assert_eq!(activity_kind("主题党日").unwrap(), "theme_day");
        assert_eq!(org_level("branch").unwrap(), "党支部");
        assert!(name("  ").is_err());
        assert!(phone("13800138000").is_ok());
        assert!(phone("call me").is_err());
    }
}

//! The report-in form (一键报到) as a member fills it on a phone, and its
//! checks: every problem is one field's, said in Chinese, to show beside
//! that field; a form that passes becomes a [`Submission`] in normal form.
//!
//! The checks are the node's and the page's alike (the page shows what
//! [`check`] says; the node stores only what it accepts), and never panic
//! on any input: the form comes from anyone on the internet.

use crate::places::{self, Level};

/// The most characters of each free-text field: enough for any real
/// answer, small enough that a form never carries much.
pub const NAME_CHARS_MAX: usize = 30;
pub const BRANCH_CHARS_MAX: usize = 100;
pub const CERTIFICATE_CHARS_MAX: usize = 30;
pub const EMPLOYER_CHARS_MAX: usize = 100;
pub const ADDRESS_CHARS_MAX: usize = 200;

/// A report-in form as submitted (all strings as typed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    pub name: String,
    pub phone: String,
    /// A division code (6 digits) from the place picker.
    pub home_place: String,
    /// The home branch as the member knows it.
    pub home_branch: String,
    /// The activity certificate's (流动党员活动证) number, if held.
    pub certificate_no: String,
    pub employer: String,
    pub address: String,
    /// The consent line was ticked.
    pub consent: bool,
}

/// The names of [`Form`]'s fields, in the form's order: the names of the
/// page's inputs and of [`FieldProblem::field`].
pub const FIELDS: [&str; 8] = [
    "name",
    "phone",
    "home_place",
    "home_branch",
    "certificate_no",
    "employer",
    "address",
    "consent",
];

/// One field's problem, in Chinese, to show beside the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// One of [`FIELDS`].
    pub field: &'static str,
    pub message: String,
}

/// The checked, normalized submission.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Submission {
    /// Trimmed, inner runs of white space made one space.
    pub name: String,
    /// A mainland mobile number, 11 digits (a `+86` or `86` in front dropped).
    pub phone: String,
    /// The place's code as a node stores places (`places::code_of`): 2
    /// digits for a province, 4 for a city, 6 for a county, so that a peer
    /// serving a province or city covers it.
    pub home_place: String,
    pub home_branch: String,
    /// Upper case, without white space.
    pub certificate_no: String,
    pub employer: String,
    pub address: String,
}

/// Checks a form: the submission in normal form, or every field's problem
/// (in the order of the form's fields).
pub fn check(form: &Form) -> Result<Submission, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let mut keep = |field: &'static str, checked: Result<String, String>| match checked {
        Ok(value) => value,
        Err(message) => {
            problems.push(FieldProblem { field, message });
            String::new()
        }
    };
    let submission = Submission {
        name: keep("name", name(&form.name)),
        phone: keep("phone", phone(&form.phone)),
        home_place: keep("home_place", home_place(&form.home_place)),
        home_branch: keep(
            "home_branch",
            text(&form.home_branch, BRANCH_CHARS_MAX, "所在党支部"),
        ),
        certificate_no: keep("certificate_no", certificate_no(&form.certificate_no)),
        employer: keep(
            "employer",
            text(&form.employer, EMPLOYER_CHARS_MAX, "工作单位"),
        ),
        address: keep(
            "address",
            text(&form.address, ADDRESS_CHARS_MAX, "现居住地址"),
        ),
    };
    if !form.consent {
        problems.push(FieldProblem {
            field: "consent",
            message: "请阅读并勾选同意：报到信息将发送给您的流出地党组织，用于恢复和保持组织联系"
                .into(),
        });
    }
    if problems.is_empty() {
        Ok(submission)
    } else {
        Err(problems)
    }
}

/// Trimmed, with every run of white space inside made one space.
fn squeeze(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn text(value: &str, max_chars: usize, label: &str) -> Result<String, String> {
    let value = squeeze(value);
    if value.chars().count() > max_chars {
        return Err(format!("{label}不能超过{max_chars}个字"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{label}含有无法识别的字符，请重新填写"));
    }
    Ok(value)
}

fn name(value: &str) -> Result<String, String> {
    let value = text(value, NAME_CHARS_MAX, "姓名")?;
    if value.is_empty() {
        return Err("请填写姓名（与身份证一致）".into());
    }
    if value.chars().any(|c| c.is_ascii_digit()) {
        return Err("姓名不能含有数字，请填写与身份证一致的姓名".into());
    }
    Ok(value)
}

fn phone(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("请填写手机号码，党组织将通过它与您联系".into());
    }
    let allowed = value
        .chars()
        .enumerate()
        .all(|(idx, c)| c.is_ascii_digit() || c == ' ' || c == '-' || (idx == 0 && c == '+'));
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    let digits = match digits.strip_prefix("86") {
        Some(rest) if digits.len() == 13 => rest.to_owned(),
        _ => digits,
    };
    let mobile = digits.len() == 11
        && digits.starts_with('1')
        && digits
            .as_bytes()
            .get(1)
            .is_some_and(|b| (b'3'..=b'9').contains(b));
    if !(allowed && mobile) {
        return Err("手机号码应为11位数字，以1开头，例如 13800138000".into());
    }
    Ok(digits)
}

fn home_place(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("请选择流出地（户籍或组织关系所在的省、市、县）".into());
    }
    let place = (value.len() == 6 && value.bytes().all(|b| b.is_ascii_digit()))
        .then(|| places::by_code(value))
        .flatten()
        .filter(|place| !place.is_grouping());
    let Some(place) = place else {
        return Err("请从列表中选择流出地".into());
    };
    Ok(match place.level {
        Level::Province => place.code[..2].to_owned(),
        Level::City => place.code[..4].to_owned(),
        Level::County => place.code.to_owned(),
    })
}

fn certificate_no(value: &str) -> Result<String, String> {
    let value: String = value
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase();
    if value.chars().count() > CERTIFICATE_CHARS_MAX {
        return Err(format!(
            "活动证编号不能超过{CERTIFICATE_CHARS_MAX}个字符；没有活动证可不填"
        ));
    }
    if !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err("活动证编号只能含有字母、数字和“-”；没有活动证可不填".into());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    fn good() -> Form {
        Form {
            name: " 张  三 ".into(),
            phone: "+86 138-0013-8000".into(),
            home_place: "620800".into(),
            home_branch: "崆峒区某村党支部".into(),
            certificate_no: "gs 2024-0001".into(),
            employer: "".into(),
            address: "兰州市城关区".into(),
            consent: true,
        }
    }

    fn fields(form: &Form) -> Vec<&'static str> {
        check(form)
            .err()
            .unwrap_or_default()
            .iter()
            .map(|p| p.field)
            .collect()
    }

    #[test]
    fn good_form_is_normalized() {
        let s = check(&good()).expect("a good form passes");
        assert_eq!(s.name, "张 三");
        assert_eq!(s.phone, "13800138000");
        assert_eq!(s.home_place, "6208", "a city is stored by its 4 digits");
        assert_eq!(s.certificate_no, "GS2024-0001");
        assert_eq!(s.employer, "");
    }

    /// Makes one field of a good form bad.
    type Spoil = fn(&mut Form);

    #[test]
    fn each_bad_field_is_named_beside_itself() {
        let cases: Vec<(&str, Spoil)> = vec![
            ("name", |f| f.name = "  ".into()),
            ("name", |f| f.name = "张三3".into()),
            ("name", |f| f.name = "张".repeat(31)),
            ("phone", |f| f.phone = "".into()),
            ("phone", |f| f.phone = "12345".into()),
            ("phone", |f| f.phone = "0931-1234567".into()),
            ("phone", |f| f.phone = "1380013800a".into()),
            ("phone", |f| f.phone = "12800138000".into()),
            ("home_place", |f| f.home_place = "".into()),
            ("home_place", |f| f.home_place = "999999".into()),
            ("home_place", |f| f.home_place = "平凉".into()),
            ("home_place", |f| f.home_place = "110100".into()),
            ("home_branch", |f| f.home_branch = "支".repeat(101)),
            ("certificate_no", |f| f.certificate_no = "号码#1".into()),
            ("employer", |f| f.employer = "a\u{7}b".into()),
            ("address", |f| f.address = "址".repeat(201)),
            ("consent", |f| f.consent = false),
        ];
        for (field, spoil) in cases {
            let mut form = good();
            spoil(&mut form);
            let problems = check(&form).expect_err(field);
            assert_eq!(fields(&form), vec![field], "{form:?}");
            assert!(
                problems[0]
                    .message
                    .chars()
                    .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "the message is in Chinese: {}",
                problems[0].message
            );
        }
    }

    #[test]
    fn places_of_every_level_pass_in_stored_form() {
        for (code, stored) in [("620000", "62"), ("620100", "6201"), ("620102", "620102")] {
            let mut form = good();
            form.home_place = code.into();
            assert_eq!(check(&form).expect(code).home_place, stored);
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let problems = fields(&Form::default());
        assert_eq!(problems, vec!["name", "phone", "home_place", "consent"]);
    }

    fn config() -> Config {
        let seed = match Config::default().rng_seed {
            RngSeed::Fixed(seed) => seed,
            RngSeed::Random => rand::random(),
        };
        eprintln!("proptest seed {seed}: PROPTEST_RNG_SEED={seed} runs these cases again");
        Config {
            cases: 256,
            rng_seed: RngSeed::Fixed(seed),
            ..Config::default()
        }
    }

    proptest! {
        #![proptest_config(config())]

        /// Any input is either a submission whose fields pass again
        /// unchanged, or problems with known field names; never a panic.
        #[test]
        fn check_never_panics_and_is_stable(
            name in any::<String>(),
            phone in "\\PC{0,20}|[+0-9 -]{0,20}",
            home_place in "\\PC{0,8}|[0-9]{6}",
            home_branch in any::<String>(),
            certificate_no in any::<String>(),
            employer in any::<String>(),
            address in any::<String>(),
            consent in any::<bool>(),
        ) {
            let form = Form { name, phone, home_place, home_branch, certificate_no, employer, address, consent };
            match check(&form) {
                Ok(s) => {
                    prop_assert_eq!(s.phone.len(), 11);
                    let code = format!("{:0<6}", s.home_place);
                    prop_assert!(places::by_code(&code).is_some(), "{}", code);
                    let again = Form {
                        name: s.name.clone(),
                        phone: s.phone.clone(),
                        home_place: format!("{:0<6}", s.home_place),
                        home_branch: s.home_branch.clone(),
                        certificate_no: s.certificate_no.clone(),
                        employer: s.employer.clone(),
                        address: s.address.clone(),
                        consent: true,
                    };
                    prop_assert_eq!(check(&again), Ok(s));
                }
                Err(problems) => {
                    prop_assert!(!problems.is_empty());
                    for p in problems {
                        prop_assert!(FIELDS.contains(&p.field));
                        prop_assert!(!p.message.is_empty());
                    }
                }
            }
        }
    }
}

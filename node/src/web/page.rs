//! The page's HTML, in Chinese, for a phone's screen, without script.
//! maud escapes every value it inserts, so nothing typed by a member or
//! an operator becomes markup.

use std::sync::OnceLock;

use liaison_core::reportin::StationPage;
use liaison_types::places::{self, Level};
use liaison_types::reportin::{self as checks, FieldProblem, Form};
use maud::{html, Markup, DOCTYPE};

/// The page's one stylesheet, served from `/static/page.css` (the
/// content security policy allows no inline style).
pub const STYLESHEET: &str = include_str!("page.css");

/// A text field of the form.
struct Field {
    name: &'static str,
    label: &'static str,
    hint: &'static str,
    required: bool,
    max_chars: usize,
    /// `tel` brings up the phone's number pad.
    input_type: &'static str,
}

/// The form's text fields before the place, and after it.
const FIELDS_BEFORE: [Field; 2] = [
    Field {
        name: "name",
        label: "姓名",
        hint: "",
        required: true,
        max_chars: checks::NAME_CHARS_MAX,
        input_type: "text",
    },
    Field {
        name: "phone",
        label: "手机号码",
        hint: "组织上用这个号码与您联系",
        required: true,
        max_chars: 20,
        input_type: "tel",
    },
];

const FIELDS_AFTER: [Field; 4] = [
    Field {
        name: "home_branch",
        label: "所在党支部",
        hint: "组织关系所在的党支部，按您所知填写，如“平凉市崆峒区某某村党支部”；不清楚的可不填",
        required: false,
        max_chars: checks::BRANCH_CHARS_MAX,
        input_type: "text",
    },
    Field {
        name: "certificate_no",
        label: "流动党员活动证编号",
        hint: "持有活动证的请填写；没有的可不填",
        required: false,
        max_chars: checks::CERTIFICATE_CHARS_MAX,
        input_type: "text",
    },
    Field {
        name: "employer",
        label: "现工作单位",
        hint: "选填",
        required: false,
        max_chars: checks::EMPLOYER_CHARS_MAX,
        input_type: "text",
    },
    Field {
        name: "address",
        label: "现居住地址",
        hint: "选填",
        required: false,
        max_chars: checks::ADDRESS_CHARS_MAX,
        input_type: "text",
    },
];

fn value_of<'a>(form: &'a Form, name: &str) -> &'a str {
    match name {
        "name" => &form.name,
        "phone" => &form.phone,
        "home_place" => &form.home_place,
        "home_branch" => &form.home_branch,
        "certificate_no" => &form.certificate_no,
        "employer" => &form.employer,
        "address" => &form.address,
        _ => "",
    }
}

/// The problems of one field, joined.
fn problem_of(problems: &[FieldProblem], name: &str) -> Option<String> {
    let messages: Vec<&str> = problems
        .iter()
        .filter(|p| p.field == name)
        .map(|p| p.message.as_str())
        .collect();
    (!messages.is_empty()).then(|| messages.join("；"))
}

fn shell(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) }
                link rel="stylesheet" href="../static/page.css";
            }
            body {
                main { (body) }
            }
        }
    }
}

fn station_facts(station: &StationPage) -> Markup {
    html! {
        section.station {
            h1 { (station.name) }
            p.host { (station.host_org) }
            @if !station.address.is_empty() {
                p { "地址：" (station.address) }
            }
            @if !station.hours.is_empty() {
                p { "服务时间：" (station.hours) }
            }
        }
    }
}

fn problem_line(name: &str, problem: &Option<String>) -> Markup {
    html! {
        @if let Some(message) = problem {
            p.problem id={ (name) "-problem" } { (message) }
        }
    }
}

fn text_field(field: &Field, form: &Form, problems: &[FieldProblem]) -> Markup {
    let problem = problem_of(problems, field.name);
    let described = problem.as_ref().map(|_| format!("{}-problem", field.name));
    html! {
        div.field.invalid[problem.is_some()] id={ "field-" (field.name) } {
            label for=(field.name) {
                (field.label)
                @if field.required { span.required { "（必填）" } }
            }
            @if !field.hint.is_empty() {
                p.hint { (field.hint) }
            }
            input type=(field.input_type) id=(field.name) name=(field.name)
                value=(value_of(form, field.name)) maxlength=(field.max_chars)
                autocomplete="off" required[field.required]
                inputmode=[(field.input_type == "tel").then_some("numeric")]
                aria-invalid=[problem.as_ref().map(|_| "true")]
                aria-describedby=[described];
            (problem_line(field.name, &problem))
        }
    }
}

/// A province's name and its places' codes and names.
type PlaceGroup = (&'static str, Vec<(&'static str, &'static str)>);

/// The places a member picks the home region from: for each province, its
/// prefecture-level cities and the county-level cities directly under it
/// (仙桃市); a municipality is one place of its own.
fn place_groups() -> &'static [PlaceGroup] {
    static GROUPS: OnceLock<Vec<PlaceGroup>> = OnceLock::new();
    GROUPS.get_or_init(|| {
        let all = places::divisions().places();
        let children = |code: &'static str| all.iter().filter(move |p| p.parent == Some(code));
        all.iter()
            .filter(|p| p.level == Level::Province)
            .map(|province| {
                let mut options = Vec::new();
                for city in children(province.code) {
                    if !city.is_grouping() {
                        options.push((city.code, city.name));
                    } else if city.name.ends_with("直辖县级行政区划") {
                        options
                            .extend(children(city.code).map(|county| (county.code, county.name)));
                    }
                }
                if options.is_empty() {
                    options.push((province.code, province.name));
                }
                (province.name, options)
            })
            .collect()
    })
}

fn place_field(form: &Form, problems: &[FieldProblem]) -> Markup {
    let problem = problem_of(problems, "home_place");
    html! {
        div.field.invalid[problem.is_some()] id="field-home_place" {
            label for="home_place" {
                "组织关系所在地" span.required { "（必填）" }
            }
            p.hint { "您的党组织关系所在的市（州）" }
            select id="home_place" name="home_place" required
                aria-invalid=[problem.as_ref().map(|_| "true")]
                aria-describedby=[problem.as_ref().map(|_| "home_place-problem")] {
                option value="" selected[form.home_place.is_empty()] { "请选择" }
                @for (province, options) in place_groups() {
                    optgroup label=(province) {
                        @for (code, name) in options {
                            option value=(code) selected[form.home_place == *code] { (name) }
                        }
                    }
                }
            }
            (problem_line("home_place", &problem))
        }
    }
}

/// What the consent line says: what is sent home (what a confirmed claim
/// sends: the host section's report-in date, station, employer and
/// address here, and a contact of channel report-in), why, what stays
/// here, and how long a claim not confirmed is kept.
fn consent_text(station: &StationPage, rejected_kept_days: u32) -> String {
    format!(
        "我同意：{}核对本表信息后，将我在本服务站报到的情况（报到日期、服务站，以及我填写的现工作单位和现居住地址）发送给我的党组织关系所在地党组织，用于恢复和保持组织与我的联系。姓名、手机号码、所在党支部和活动证编号只用于核对身份。核对不符的报到信息不会发送，并在{}天后删除。本页不需要填写身份证号。",
        station.host_org, rejected_kept_days
    )
}

/// The form, empty or as typed with each problem beside its field.
pub fn form(
    station: &StationPage,
    form: &Form,
    problems: &[FieldProblem],
    token: &str,
    rejected_kept_days: u32,
) -> Markup {
    let consent_problem = problem_of(problems, "consent");
    // Problems of fields the page does not show (none expected) still show.
    let other: Vec<&FieldProblem> = problems
        .iter()
        .filter(|p| !checks::FIELDS.contains(&p.field))
        .collect();
    shell(
        &format!("流动党员报到 · {}", station.name),
        html! {
            (station_facts(station))
            h2 { "流动党员报到" }
            @if !problems.is_empty() {
                p.summary role="alert" { "有 " (problems.len()) " 处需要修改，请看下面标红的说明。" }
            }
            @for problem in &other {
                p.problem { (problem.message) }
            }
            form method="post" {
                input type="hidden" name="token" value=(token);
                @for field in &FIELDS_BEFORE { (text_field(field, form, problems)) }
                (place_field(form, problems))
                @for field in &FIELDS_AFTER { (text_field(field, form, problems)) }
                div.field.consent.invalid[consent_problem.is_some()] id="field-consent" {
                    label for="consent" {
                        input type="checkbox" id="consent" name="consent" value="yes"
                            checked[form.consent] required
                            aria-describedby=[consent_problem.as_ref().map(|_| "consent-problem")];
                        span { (consent_text(station, rejected_kept_days)) }
                    }
                    (problem_line("consent", &consent_problem))
                }
                button type="submit" { "提交报到" }
            }
        },
    )
}

/// The answer to every accepted submission: the same for anyone.
pub fn received(station: &StationPage) -> Markup {
    shell(
        "报到信息已提交",
        html! {
            (station_facts(station))
            section.received role="status" {
                h2 { "报到信息已提交" }
                p { "感谢您来报到。服务站工作人员会核对您填写的信息，并与您联系。" }
                p { "如有疑问，请在服务时间到服务站咨询。" }
            }
        },
    )
}

fn notice(title: &str, lines: &[&str]) -> Markup {
    shell(
        title,
        html! {
            section.notice {
                h1 { (title) }
                @for line in lines { p { (line) } }
            }
        },
    )
}

pub fn not_found() -> Markup {
    notice(
        "未找到该服务站",
        &["这个地址没有对应的服务站，或服务站已停用。请重新扫描服务站的二维码，或向服务站工作人员询问。"],
    )
}

pub fn expired() -> Markup {
    notice(
        "请重新打开报到页面",
        &["表单已过期或不完整，信息没有提交。请重新扫描服务站的二维码再填写。"],
    )
}

pub fn too_many() -> Markup {
    notice(
        "提交太频繁",
        &["同一网络或同一手机号码提交次数过多，信息没有提交。请稍后再试，或到服务站找工作人员登记。"],
    )
}

pub fn bad_request() -> Markup {
    notice(
        "提交的内容无法识别",
        &["信息没有提交。请重新扫描服务站的二维码，在页面上填写后再提交。"],
    )
}

pub fn unavailable() -> Markup {
    notice(
        "暂时无法提交",
        &["系统暂时无法接收报到信息，您填写的内容没有提交。请稍后再试，或到服务站找工作人员登记。"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_picker_offers_cities_municipalities_and_counties_under_a_province_and_the_checks_take_each(
    ) {
        let groups = place_groups();
        let find = |province: &str, code: &str| {
            groups
                .iter()
                .find(|(name, _)| *name == province)
                .is_some_and(|(_, options)| options.iter().any(|(c, _)| *c == code))
        };
        assert!(find("甘肃省", "620800"), "平凉市");
        assert!(find("北京市", "110000"), "a municipality is one place");
        assert!(find("湖北省", "429004"), "仙桃市, under the province");
        assert!(!find("北京市", "110100"), "no grouping row");
        for (_, options) in groups {
            for (code, name) in options {
                let form = Form {
                    home_place: (*code).to_owned(),
                    ..Form::default()
                };
                let problems = checks::check(&form).unwrap_err();
                assert!(
                    problems.iter().all(|p| p.field != "home_place"),
                    "{name} ({code}) is refused: {problems:?}"
                );
            }
        }
    }
}

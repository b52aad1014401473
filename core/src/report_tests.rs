//! Reports over in-memory nodes (docs/reports.md): counts checked against
//! records made by hand, at today and at earlier dates.

use std::collections::BTreeMap;

use liaison_proto::v1 as pb;

use super::members;
use super::reports;
use super::tests::{day, federation, member_fields, TestNode};
use super::transfers::{self, LetterRules};
use crate::{Error, Refusal};

/// The report `name` at `as_of` ('' for today), read as the node reads it.
pub(super) fn report(node: &TestNode, name: &str, as_of: &str) -> pb::ReportResponse {
    try_report(
        node,
        pb::ReportRequest {
            report: name.into(),
            as_of: as_of.into(),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("report {name} at {}: {e}", node.id))
}

fn try_report(node: &TestNode, req: pb::ReportRequest) -> Result<pb::ReportResponse, Error> {
    node.store.read(|c| reports::report(c, &node.ctx(), &req))
}

/// The rows of table `key`, each as column key → value (counts and
/// numbers written out).
pub(super) fn rows(report: &pb::ReportResponse, key: &str) -> Vec<BTreeMap<String, String>> {
    let table = report
        .tables
        .iter()
        .find(|t| t.key == key)
        .unwrap_or_else(|| panic!("report {} has no table {key}", report.report));
    table
        .rows
        .iter()
        .map(|row| {
            table
                .columns
                .iter()
                .zip(&row.cells)
                .map(|(column, cell)| {
                    let value = match &cell.value {
                        Some(pb::report_cell::Value::Text(t)) => t.clone(),
                        Some(pb::report_cell::Value::Count(n)) => n.to_string(),
                        Some(pb::report_cell::Value::Number(x)) => x.to_string(),
                        None => String::new(),
                    };
                    (column.key.clone(), value)
                })
                .collect()
        })
        .collect()
}

/// The value in column `column` of the row of table `key` whose column
/// `by` is `value`.
fn cell(report: &pb::ReportResponse, key: &str, by: &str, value: &str, column: &str) -> String {
    rows(report, key)
        .into_iter()
        .find(|r| r.get(by).map(String::as_str) == Some(value))
        .and_then(|r| r.get(column).cloned())
        .unwrap_or_else(|| "absent".into())
}

fn summary(report: &pb::ReportResponse, column: &str) -> String {
    rows(report, "summary")[0][column].clone()
}

fn add(
    node: &TestNode,
    name: &str,
    fields: pb::MemberFields,
    away: Option<pb::OutflowRequest>,
) -> String {
    node.tx(|c, ctx| {
        let member = members::member_add(
            c,
            ctx,
            &pb::MemberFields {
                national_id: None,
                ..pb::MemberFields {
                    name: Some(name.into()),
                    ..fields
                }
            },
        )?;
        if let Some(outflow) = away {
            members::outflow_register(
                c,
                ctx,
                &pb::OutflowRequest {
                    member_id: member.member_id.clone(),
                    ..outflow
                },
            )?;
        }
        Ok(member.member_id)
    })
    .unwrap()
}

fn away(place: &str, departed: i64) -> Option<pb::OutflowRequest> {
    Some(pb::OutflowRequest {
        destination_place: place.into(),
        departed_on: day(departed),
        ..Default::default()
    })
}

/// Pingliang with six members: 张三 away to 620102 (from `federation`),
/// two at home, 李四 (a woman born 1960, 初中, rural) away to 610102 for
/// 30 days, 王五 away with an unknown destination for 60 days, 赵六 away
/// for 100 days and back 10 days ago.
fn six_members() -> (TestNode, TestNode, String) {
    let (pingliang, lanzhou, _xian, zhang) = federation();
    let base = member_fields("x");
    add(&pingliang, "在家甲", base.clone(), None);
    add(&pingliang, "在家乙", base.clone(), None);
    add(
        &pingliang,
        "李四",
        pb::MemberFields {
            gender: Some("女".into()),
            birth_date: Some("1960-03-01".into()),
            education: Some("初中".into()),
            origin: Some("农村".into()),
            joined_on: Some("1985-07-01".into()),
            ..base.clone()
        },
        away("610102", -30),
    );
    add(
        &pingliang,
        "王五",
        base.clone(),
        Some(pb::OutflowRequest {
            direction: "不掌握流向".into(),
            ..away("110105", -60).unwrap()
        }),
    );
    let zhao = add(&pingliang, "赵六", base, away("620103", -100));
    pingliang
        .tx(|c, ctx| {
            members::outflow_return(
                c,
                ctx,
                &pb::OutflowReturnRequest {
                    member_id: zhao.clone(),
                    returned_on: day(-10),
                },
            )
        })
        .unwrap();
    (pingliang, lanzhou, zhang)
}

#[test]
fn outflow_counts_members_away_by_place_and_dimension_with_their_share() {
    let (pingliang, _lanzhou, _zhang) = six_members();
    let r = report(&pingliang, "outflow", "");
    assert_eq!(r.as_of, day(0));
    assert_eq!(summary(&r, "members"), "6");
    assert_eq!(summary(&r, "away"), "3");
    assert_eq!(summary(&r, "away_share_pct"), "50");
    assert_eq!(summary(&r, "unknown_destination"), "1");
    assert_eq!(summary(&r, "away_six_months"), "0");
    // Places by name and code, province → city → county.
    assert_eq!(
        cell(&r, "by_destination", "code", "620000", "place"),
        "甘肃省"
    );
    assert_eq!(
        cell(&r, "by_destination", "code", "620100", "place"),
        "兰州市"
    );
    assert_eq!(
        cell(&r, "by_destination", "code", "620102", "place"),
        "城关区"
    );
    assert_eq!(cell(&r, "by_destination", "code", "620102", "members"), "1");
    assert_eq!(
        cell(&r, "by_destination", "code", "620100", "node"),
        "lanzhou"
    );
    assert_eq!(cell(&r, "by_destination", "code", "610102", "members"), "1");
    assert_eq!(cell(&r, "by_destination", "code", "610000", "node"), "");
    assert_eq!(
        cell(
            &r,
            "by_destination",
            "place",
            "不掌握流向 unknown destination",
            "members"
        ),
        "1"
    );
    let depths: Vec<u32> = r.tables[1].rows.iter().map(|row| row.depth).collect();
    assert_eq!(
        depths,
        [0, 1, 2, 0, 1, 2, 0],
        "610… then 620…, then unknown"
    );
    assert_eq!(cell(&r, "by_gender", "gender", "男", "members"), "2");
    assert_eq!(cell(&r, "by_gender", "gender", "女", "share_pct"), "33.3");
    assert_eq!(
        cell(&r, "by_age", "age", "61岁及以上 61 and over", "members"),
        "1"
    );
    assert_eq!(cell(&r, "by_origin", "origin", "农村", "members"), "1");
    assert_eq!(
        cell(&r, "by_certificate", "certificate", "是 yes", "members"),
        "1"
    );
    assert_eq!(
        cell(&r, "by_branch", "branch", "崆峒区第一支部 (b1)", "members"),
        "3"
    );
    assert_eq!(
        cell(&r, "profile", "trait", "农村户籍 rural origin", "share_pct"),
        "33.3"
    );
    assert!(r.rules.iter().any(|rule| rule.contains("组织关系")));
    assert!(!r.definitions.is_empty());
}

#[test]
fn outflow_at_an_earlier_date_counts_departures_and_returns_by_their_dates() {
    let (pingliang, _lanzhou, _zhang) = six_members();
    // 20 days ago: 赵六 was still away, 李四 already.
    let r = report(&pingliang, "outflow", &day(-20));
    assert_eq!(summary(&r, "away"), "4");
    assert_eq!(cell(&r, "by_destination", "code", "620000", "members"), "2");
    assert!(r.notes.iter().any(|n| n.contains("dated facts")));
    // 40 days ago: 李四 had not left.
    let r = report(&pingliang, "outflow", &day(-40));
    assert_eq!(summary(&r, "away"), "3");
    assert_eq!(
        cell(&r, "by_destination", "code", "610102", "members"),
        "absent"
    );
    // Filters: a destination, a branch, a period of departure.
    let filtered = |req: pb::ReportRequest| {
        summary(
            &try_report(
                &pingliang,
                pb::ReportRequest {
                    report: "outflow".into(),
                    ..req
                },
            )
            .unwrap(),
            "away",
        )
    };
    assert_eq!(
        filtered(pb::ReportRequest {
            destination: "62".into(),
            ..Default::default()
        }),
        "1"
    );
    assert_eq!(
        filtered(pb::ReportRequest {
            branch: "b2".into(),
            ..Default::default()
        }),
        "0"
    );
    assert_eq!(
        filtered(pb::ReportRequest {
            period_from: day(-70),
            ..Default::default()
        }),
        "2",
        "李四 and 王五 left in the period"
    );
}

#[test]
fn a_member_in_transfer_counts_at_the_sender_until_the_release_and_at_the_receiver_from_it() {
    let (pingliang, lanzhou, zhang) = six_members();
    lanzhou.add_branch("lz1");
    let rules = LetterRules {
        valid_days_default: 30,
        valid_days_max: 90,
    };
    let t = pingliang
        .tx(|c, ctx| transfers::start(c, ctx, &zhang, "lanzhou", 0, "定居兰州", rules))
        .unwrap();
    pingliang.deliver(&lanzhou);
    lanzhou
        .tx(|c, ctx| transfers::accept(c, ctx, &t.transfer_id, "lz1"))
        .unwrap();
    lanzhou.deliver(&pingliang);
    pingliang.deliver(&lanzhou);
    lanzhou.deliver(&pingliang);
    // Released today: yesterday the member was Pingliang's, away.
    let yesterday = report(&pingliang, "outflow", &day(-1));
    assert_eq!(summary(&yesterday, "members"), "6");
    assert_eq!(summary(&yesterday, "away"), "3");
    assert_eq!(summary(&yesterday, "transferred_since"), "1");
    assert_eq!(
        cell(&yesterday, "by_destination", "code", "620102", "members"),
        "1"
    );
    assert_eq!(
        cell(
            &yesterday,
            "by_gender",
            "gender",
            "已转出(详情随转) transferred since",
            "members"
        ),
        "1"
    );
    let today = report(&pingliang, "outflow", "");
    assert_eq!(summary(&today, "members"), "5");
    assert_eq!(summary(&today, "away"), "2");
    // At Lanzhou, from the release on.
    assert_eq!(summary(&report(&lanzhou, "outflow", ""), "members"), "1");
    assert_eq!(
        summary(&report(&lanzhou, "outflow", &day(-1)), "members"),
        "0"
    );
    let transfers = report(&pingliang, "transfers", "");
    assert_eq!(
        cell(&transfers, "by_peer", "peer", "lanzhou", "sent_completed"),
        "1"
    );
    let received = report(&lanzhou, "transfers", "");
    assert_eq!(
        cell(
            &received,
            "by_peer",
            "peer",
            "pingliang",
            "received_completed"
        ),
        "1"
    );
    assert!(rows(&report(&pingliang, "transfers", &day(-1)), "by_peer").is_empty());
}

#[test]
fn contact_counts_statuses_at_a_date_and_keeps_both_registers() {
    let (mut pingliang, _lanzhou, _xian, zhang) = federation();
    let r = report(&pingliang, "contact", "");
    assert_eq!(
        cell(&r, "by_status", "status", "联系逾期 overdue", "members"),
        "1"
    );
    // 120 days on: lost, searched for with a cause, then unreachable.
    pingliang.now_ms += 120 * 86_400_000;
    let set = |node: &TestNode, status: &str, cause: &str| {
        node.tx(|c, ctx| {
            members::contact_status(
                c,
                ctx,
                &pb::ContactStatusRequest {
                    member_id: zhang.clone(),
                    set: status.into(),
                    cause: cause.into(),
                    ..Default::default()
                },
            )
        })
    };
    assert!(matches!(
        set(&pingliang, "searching", "9"),
        Err(Error::Refused(Refusal::Invalid(_)))
    ));
    set(&pingliang, "searching", "①").unwrap();
    pingliang.now_ms += 1000;
    set(&pingliang, "unreachable", "").unwrap();
    let r = report(&pingliang, "contact", "");
    assert_eq!(
        cell(
            &r,
            "by_status",
            "status",
            "经查找仍然无法取得联系 unreachable",
            "members"
        ),
        "1"
    );
    let unreachable = rows(&r, "unreachable");
    assert_eq!(unreachable.len(), 1);
    assert_eq!(unreachable[0]["name"], "张三");
    assert_eq!(unreachable[0]["cause"], "① 外出务工经商");
    assert_eq!(unreachable[0]["lost_since"], day(-147));
    assert!(rows(&r, "found").is_empty());
    // Before the search, from the dated decisions: lost.
    let earlier = report(&pingliang, "contact", &day(100));
    assert_eq!(
        cell(&earlier, "by_status", "status", "失联 lost", "members"),
        "1"
    );
    // A phone call finds him: 267 days out of contact.
    pingliang.now_ms += 1000;
    pingliang
        .tx(|c, ctx| {
            members::contact_record(
                c,
                ctx,
                &pb::ContactRequest {
                    member_id: zhang.clone(),
                    channel: "phone".into(),
                    ..Default::default()
                },
            )
        })
        .unwrap();
    let r = report(&pingliang, "contact", "");
    assert_eq!(
        cell(
            &r,
            "by_status",
            "status",
            "经查找取得联系 regained",
            "members"
        ),
        "1"
    );
    let found = rows(&r, "found");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["found_on"], day(120));
    assert_eq!(found[0]["months_out"], "8.77");
    assert_eq!(found[0]["cause"], "① 外出务工经商");
    assert!(rows(&r, "unreachable").is_empty());
}

#[test]
fn a_host_reports_the_members_it_hosts_from_the_shared_fields_only() {
    let (pingliang, lanzhou, _zhang) = six_members();
    pingliang.deliver(&lanzhou);
    let r = report(&lanzhou, "inflow", "");
    assert_eq!(summary(&r, "hosted"), "1");
    assert_eq!(cell(&r, "by_home", "home", "pingliang", "members"), "1");
    assert_eq!(
        cell(
            &r,
            "by_reported",
            "reported",
            "未报到 not reported in",
            "members"
        ),
        "1"
    );
    for table in &r.tables {
        for column in &table.columns {
            assert!(
                !["education", "origin", "national_id", "birth_date"]
                    .contains(&column.key.as_str()),
                "{}: {}",
                table.key,
                column.key
            );
        }
    }
    let text = format!("{r:?}");
    for private in [
        "620801199005170014",
        "1990-05-17",
        "平凉市崆峒区",
        "甘肃平凉",
    ] {
        assert!(!text.contains(private), "the host's report shows {private}");
    }
    assert!(r.rules[0].contains("不计入本节点党员总数"));
    // The host's own totals do not count them.
    assert_eq!(summary(&report(&lanzhou, "outflow", ""), "members"), "0");
}

#[test]
fn trend_shows_the_compound_rate_with_its_formula_and_never_another() {
    let (pingliang, _lanzhou, _zhang) = six_members();
    let years = |list: &[(i32, u64, u64, f64)]| pb::ReportTrendImportRequest {
        years: list
            .iter()
            .map(|&(year, mobile, members, share_pct)| pb::TrendYear {
                year,
                mobile,
                members,
                share_pct,
                note: String::new(),
            })
            .collect(),
    };
    pingliang
        .tx(|c, ctx| {
            reports::import_years(
                c,
                ctx,
                &years(&[(2012, 3033, 0, 0.0), (2018, 7074, 0, 5.1)]),
            )
        })
        .unwrap();
    let r = report(&pingliang, "trend", "");
    let by_year = rows(&r, "by_year");
    assert_eq!(by_year.len(), 2);
    assert_eq!(by_year[1]["share_pct"], "5.1");
    let notes = r.tables[0].notes.join("\n");
    assert!(notes.contains("(7074 / 3033)^(1/6) − 1 = 15.2%"), "{notes}");
    assert!(notes.contains("+4041"), "{notes}");
    assert!(!notes.contains("9.5"), "{notes}");
    // The node records its own year end; an import cannot replace it.
    let last_year: i32 = day(0)[..4].parse::<i32>().unwrap() - 1;
    assert_eq!(
        pingliang.tx(reports::year_end_due).unwrap(),
        None,
        "created this year"
    );
    pingliang
        .tx(|c, _| crate::store::set_meta(c, "created_at_ms", "0"))
        .unwrap();
    assert_eq!(
        pingliang.tx(reports::year_end_due).unwrap(),
        Some(last_year)
    );
    let counts = pingliang
        .store
        .read(|c| reports::count_year_end(c, &pingliang.ctx(), last_year))
        .unwrap();
    pingliang
        .tx(|c, ctx| reports::record_year_end(c, ctx, &counts))
        .unwrap();
    assert_eq!(pingliang.tx(reports::year_end_due).unwrap(), None);
    // A creation time that does not parse is a damaged database, not "never".
    pingliang
        .tx(|c, _| crate::store::set_meta(c, "created_at_ms", "x0"))
        .unwrap();
    let damaged = pingliang.tx(reports::year_end_due);
    assert!(
        matches!(&damaged, Err(Error::Storage(_)))
            && format!("{damaged:?}").contains("created_at_ms"),
        "{damaged:?}"
    );
    pingliang
        .tx(|c, _| crate::store::set_meta(c, "created_at_ms", "0"))
        .unwrap();
    let refused =
        pingliang.tx(|c, ctx| reports::import_years(c, ctx, &years(&[(last_year, 1, 10, 0.0)])));
    assert!(
        matches!(refused, Err(Error::Refused(Refusal::Conflict(_)))),
        "{refused:?}"
    );
    let row = &rows(&report(&pingliang, "trend", ""), "by_year")[2];
    assert_eq!(row["year"], last_year.to_string());
    assert_eq!(row["source"], "本节点 this node");
}

#[test]
fn bad_requests_are_refused_with_what_to_do() {
    let (pingliang, _lanzhou, _zhang) = six_members();
    let refused = |req: pb::ReportRequest| match try_report(&pingliang, req) {
        Err(Error::Refused(Refusal::Invalid(message))) => message,
        other => panic!("{other:?}"),
    };
    assert!(refused(pb::ReportRequest {
        report: "roster".into(),
        ..Default::default()
    })
    .contains("transfer-due"));
    assert!(refused(pb::ReportRequest {
        report: "agreements".into(),
        branch: "b1".into(),
        ..Default::default()
    })
    .contains("takes no --branch"));
    assert!(refused(pb::ReportRequest {
        report: "outflow".into(),
        as_of: day(3),
        ..Default::default()
    })
    .contains("future"));
    assert!(refused(pb::ReportRequest {
        report: "outflow".into(),
        period_from: day(-1),
        period_until: day(-3),
        ..Default::default()
    })
    .contains("--from"));
    assert!(refused(pb::ReportRequest {
        report: "outflow".into(),
        destination: "兰州".into(),
        ..Default::default()
    })
    .contains("place code"));
}

#[test]
fn every_report_runs_on_an_empty_node_and_on_a_busy_one() {
    let empty = TestNode::new("jiuquan");
    let (busy, lanzhou, _zhang) = six_members();
    busy.deliver(&lanzhou);
    for node in [&empty, &busy, &lanzhou] {
        for name in reports::REPORTS {
            let r = report(node, name, "");
            assert!(!r.tables.is_empty(), "{name}");
            for table in &r.tables {
                for row in &table.rows {
                    assert_eq!(row.cells.len(), table.columns.len(), "{name} {}", table.key);
                }
            }
        }
    }
    let agreements = report(&busy, "agreements", "");
    assert_eq!(
        cell(&agreements, "active", "number", "PL-LZ-2026-01", "members"),
        "1"
    );
}

#[test]
fn activity_sums_a_period_per_branch_and_member_and_finds_the_inactive() {
    let (pingliang, lanzhou, zhang) = six_members();
    pingliang.deliver(&lanzhou);
    let activity = |node: &TestNode, kind: &str, date: i64, hours: f64| {
        node.tx(|c, ctx| {
            members::activity_record(
                c,
                ctx,
                &pb::ActivityRequest {
                    member_id: zhang.clone(),
                    kind: kind.into(),
                    date: day(date),
                    hours,
                    ..Default::default()
                },
            )
        })
        .unwrap();
    };
    activity(&pingliang, "党课", -20, 2.0);
    activity(&pingliang, "branch_meeting", -15, 0.0);
    activity(&pingliang, "志愿服务", -5, 3.5);
    pingliang
        .tx(|c, ctx| {
            members::contact_record(
                c,
                ctx,
                &pb::ContactRequest {
                    member_id: zhang.clone(),
                    channel: "dues".into(),
                    at: day(-3),
                    ..Default::default()
                },
            )
        })
        .unwrap();
    activity(&lanzhou, "主题党日", -2, 0.0);
    // The last 60 days (the default, the calendar year, may begin later).
    let period = |node: &TestNode, until: &str| {
        try_report(
            node,
            pb::ReportRequest {
                report: "activity".into(),
                period_from: day(-60),
                period_until: until.into(),
                ..Default::default()
            },
        )
        .unwrap()
    };
    let r = period(&pingliang, "");
    let branch = &rows(&r, "by_branch")[0];
    assert_eq!(branch["members"], "3", "张三, 李四 and 王五 are away");
    assert_eq!(branch["three_one"], "2");
    assert_eq!(branch["study_hours"], "2");
    assert_eq!(branch["volunteer"], "1");
    assert_eq!(branch["volunteer_hours"], "3.5");
    assert_eq!(branch["dues_up_to_date"], "1");
    assert_eq!(branch["inactive"], "2");
    assert_eq!(
        cell(&r, "members", "name", "张三", "dues_up_to_date"),
        "是 yes"
    );
    assert_eq!(cell(&r, "members", "name", "张三", "last_active"), day(-3));
    assert_eq!(cell(&r, "members", "name", "李四", "last_active"), "");
    let inactive: Vec<String> = rows(&r, "inactive")
        .into_iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(inactive, ["李四", "王五"]);
    // A period that ends before the lecture counts none of it.
    let before = period(&pingliang, &day(-21));
    assert_eq!(rows(&before, "by_branch")[0]["study_hours"], "0");
    // The host counts what it recorded for the members it hosts.
    let hosted = period(&lanzhou, "");
    let row = &rows(&hosted, "hosted_by_branch")[0];
    assert_eq!(
        (row["members"].as_str(), row["theme_days"].as_str()),
        ("1", "1")
    );
}

//! Report-in: stations, claims, and a confirmed claim's way to the owner,
//! with in-memory nodes and batches moved by hand.

use liaison_proto::v1 as pb;
use liaison_types::reportin::{check, Form, Submission};

use super::report_tests::{report, rows};
use super::reportin::{self, ClaimState};
use super::store::audit;
use super::tests::{federation, TestNode};
use crate::{members, Error, Refusal};

const KEPT_DAYS: u32 = 30;
const DAY_MS: i64 = 86_400_000;

/// Lanzhou's organization and one open station; returns its code.
fn station(lanzhou: &TestNode) -> String {
    lanzhou
        .tx(|c, ctx| {
            members::org_add(
                c,
                ctx,
                &pb::Org {
                    org_id: "lz1".into(),
                    name: "兰州市委组织部".into(),
                    level: "committee".into(),
                    ..Default::default()
                },
            )?;
            reportin::station_add(
                c,
                ctx,
                &pb::StationAddRequest {
                    name: "兰州市平凉籍流动党员服务站".into(),
                    address: "兰州市城关区某路1号".into(),
                    hours: "周一至周五 9:00-17:00".into(),
                    contact_person: "李站长".into(),
                    contact_phone: "0931-8000000".into(),
                    host_org: "lz1".into(),
                },
                "https://reportin.example.org",
            )
        })
        .unwrap()
        .code
}

fn submission(name: &str, home_place: &str, certificate_no: &str) -> Submission {
    check(&Form {
        name: name.into(),
        phone: "13912345678".into(),
        home_place: home_place.into(),
        home_branch: "崆峒区第一支部".into(),
        certificate_no: certificate_no.into(),
        employer: "兰州某建筑公司".into(),
        address: "兰州市城关区".into(),
        consent: true,
    })
    .unwrap()
}

fn submit(node: &TestNode, code: &str, s: &Submission) -> Result<(), Error> {
    node.tx(|c, ctx| reportin::submit(c, ctx, code, s))
}

/// The clerk confirms `claim_id` against `member_id` (empty: the one
/// candidate the claim names).
fn confirm(node: &TestNode, claim_id: &str, member_id: &str) -> Result<pb::ReportinView, Error> {
    node.tx(|c, ctx| {
        reportin::confirm(
            c,
            ctx,
            &pb::ReportinConfirmRequest {
                claim_id: claim_id.into(),
                member_id: member_id.into(),
            },
            "clerk",
            KEPT_DAYS,
        )
    })
}

fn pending(node: &TestNode) -> Vec<pb::ReportinView> {
    node.tx(|c, ctx| reportin::claim_list(c, ctx, Some(ClaimState::Pending), KEPT_DAYS))
        .unwrap()
}

/// Lanzhou knows Pingliang serves its city (6208).
fn pingliang_serves_pingliang(lanzhou: &TestNode) {
    lanzhou
        .tx(|c, _| {
            c.execute(
                "INSERT INTO peer_places (node_id, place) VALUES ('pingliang', '6208')",
                [],
            )?;
            Ok(())
        })
        .unwrap();
}

#[test]
fn station_page_shows_an_open_station_by_its_code_only() {
    let lanzhou = TestNode::new("lanzhou");
    let code = station(&lanzhou);
    assert_eq!(code.len(), 8);
    assert!(code
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    assert!(
        !code.contains(['0', 'o', '1', 'l', 'i']),
        "no look-alikes: {code}"
    );
    let page = lanzhou
        .tx(|c, _| reportin::station_page(c, &code))
        .unwrap()
        .expect("the station's page");
    assert_eq!(page.name, "兰州市平凉籍流动党员服务站");
    assert_eq!(page.host_org, "兰州市委组织部");
    assert_eq!(page.hours, "周一至周五 9:00-17:00");
    for other in [
        "",
        "abcdefgh",
        "兰州市平凉籍流动党员服务站",
        "' OR 1=1 --",
        &code.to_uppercase(),
    ] {
        assert_eq!(
            lanzhou.tx(|c, _| reportin::station_page(c, other)).unwrap(),
            None,
            "{other}"
        );
    }
    let shown = lanzhou
        .tx(|c, _| reportin::station_show(c, "兰州市平凉籍流动党员服务站", "https://r.example/"))
        .unwrap();
    assert_eq!(shown.url, format!("https://r.example/s/{code}"));
    let again = lanzhou.tx(|c, ctx| {
        reportin::station_add(
            c,
            ctx,
            &pb::StationAddRequest {
                name: "兰州市平凉籍流动党员服务站".into(),
                host_org: "lz1".into(),
                ..Default::default()
            },
            "",
        )
    });
    assert!(
        matches!(again, Err(Error::Refused(Refusal::Conflict(_)))),
        "{again:?}"
    );
}

#[test]
fn a_submission_is_held_and_audited_without_personal_data() {
    let lanzhou = TestNode::new("lanzhou");
    let code = station(&lanzhou);
    submit(&lanzhou, &code, &submission("赵六", "620802", "")).unwrap();
    let claims = pending(&lanzhou);
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].name, "赵六");
    assert_eq!(claims[0].phone, "13912345678");
    assert_eq!(claims[0].station_name, "兰州市平凉籍流动党员服务站");
    assert_eq!(claims[0].home_node, "", "no agreement with that region");
    let entries = lanzhou
        .tx(|c, _| audit::list(c, 0, 1000))
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "reportin.submitted")
        .collect::<Vec<_>>();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].target, claims[0].claim_id);
    let entry = format!("{:?}", entries[0]);
    for personal in ["赵六", "13912345678", "620802", "兰州某建筑公司"] {
        assert!(!entry.contains(personal), "{personal} in {entry}");
    }
    let unknown = submit(&lanzhou, "zzzzzzzz", &submission("赵六", "620802", ""));
    assert!(
        matches!(unknown, Err(Error::Refused(Refusal::NotFound(_)))),
        "{unknown:?}"
    );
    assert_eq!(
        pending(&lanzhou).len(),
        1,
        "a refused submission stores nothing"
    );
}

#[test]
fn a_lost_member_reporting_in_at_a_host_station_is_regained_at_home() {
    let (mut pingliang, mut lanzhou, _xian, id) = federation();
    pingliang_serves_pingliang(&lanzhou);
    pingliang.deliver(&lanzhou);
    // 147 + 60 days away without contact: lost (失联).
    pingliang.now_ms += 60 * DAY_MS;
    lanzhou.now_ms = pingliang.now_ms;
    pingliang.tx(members::sweep_contact_status).unwrap();
    assert_eq!(pingliang.view(&id).unwrap().contact_status, "lost");
    pingliang.deliver(&lanzhou);

    let code = station(&lanzhou);
    // The member types the certificate number as it is printed, spaced.
    submit(
        &lanzhou,
        &code,
        &submission("张三", "620802", "pl 2026-001"),
    )
    .unwrap();
    let claim = &pending(&lanzhou)[0];
    assert_eq!(claim.home_node, "pingliang");
    // A member who picks only the province finds the agreement too.
    assert_eq!(
        lanzhou
            .tx(|c, ctx| reportin::home_node(c, ctx, "62"))
            .unwrap()
            .as_deref(),
        Some("pingliang")
    );
    assert_eq!(
        lanzhou
            .tx(|c, ctx| reportin::home_node(c, ctx, "61"))
            .unwrap(),
        None
    );
    let shown = lanzhou
        .tx(|c, ctx| reportin::claim_show(c, ctx, &claim.claim_id[..13], KEPT_DAYS))
        .unwrap();
    assert_eq!(shown.candidates.len(), 1);
    assert_eq!(shown.candidates[0].member_id, id);
    assert_eq!(
        shown.candidates[0].matches,
        vec!["certificate", "name", "home region"]
    );

    let confirmed = confirm(&lanzhou, &claim.claim_id, "").unwrap();
    assert_eq!(confirmed.state, "confirmed");
    assert_eq!(confirmed.member_id, id);
    assert_eq!(confirmed.member_name, "张三");
    assert_eq!(
        (confirmed.name.as_str(), confirmed.phone.as_str()),
        ("", ""),
        "personal data dropped"
    );

    let delivered = lanzhou.deliver(&pingliang);
    assert_eq!(
        (delivered.applied, delivered.quarantined),
        (2, 0),
        "{delivered:?}"
    );
    let home = pingliang.view(&id).unwrap();
    assert_eq!(home.contact_status, "regained");
    assert_eq!(home.host_sections[0].station, "兰州市平凉籍流动党员服务站");
    assert_eq!(
        home.host_sections[0].reported_on,
        pingliang.ctx().today().to_string()
    );
    assert_eq!(home.host_sections[0].employer, "兰州某建筑公司");
    let status = pingliang
        .tx(|c, ctx| {
            members::contact_status(
                c,
                ctx,
                &pb::ContactStatusRequest {
                    member_id: id.clone(),
                    ..Default::default()
                },
            )
        })
        .unwrap();
    assert_eq!(status.recent[0].channel, "report-in");
    let via: String = pingliang
        .tx(|c, _| {
            Ok(c.query_row(
                "SELECT via FROM contact_decisions WHERE member_id = ?1 AND status = 'regained'",
                [&id],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(via, "report-in");
    // The reports: per station and month at the host, regained at home.
    let month = pingliang.ctx().today().format("%Y-%m").to_string();
    let host = report(&lanzhou, "reportin", "");
    let by_station = rows(&host, "by_station_month");
    assert_eq!(by_station.len(), 1, "{by_station:?}");
    assert_eq!(by_station[0]["station"], "兰州市平凉籍流动党员服务站");
    assert_eq!(by_station[0]["month"], month);
    assert_eq!(by_station[0]["confirmed"], "1");
    assert_eq!(by_station[0]["regained"], "1", "lost before the report-in");
    let inflow = rows(&report(&lanzhou, "inflow", ""), "by_station");
    assert_eq!(
        inflow[0]["station"], "兰州市平凉籍流动党员服务站",
        "{inflow:?}"
    );
    let home = report(&pingliang, "reportin", "");
    assert_eq!(rows(&home, "regained_by_month")[0]["members"], "1");
    let regained = rows(&home, "regained");
    assert_eq!(regained[0]["name"], "张三");
    assert!(
        rows(&host, "regained").is_empty(),
        "the host owns no one regained"
    );
    let contact = report(&pingliang, "contact", "");
    let by_status = rows(&contact, "by_status");
    let regained_row = by_status
        .iter()
        .find(|r| r.values().any(|v| v.contains("regained")))
        .expect("a row of members regained");
    assert_eq!(regained_row["members"], "1", "{by_status:?}");
    // A confirmed claim is decided: confirming it again is refused.
    let again = confirm(&lanzhou, &claim.claim_id, &id);
    assert!(
        matches!(again, Err(Error::Refused(Refusal::Conflict(_)))),
        "{again:?}"
    );
}

#[test]
fn a_claim_from_a_region_without_agreement_never_leaves_the_host() {
    let (pingliang, lanzhou, _xian, _id) = federation();
    pingliang_serves_pingliang(&lanzhou);
    pingliang.deliver(&lanzhou);
    let code = station(&lanzhou);
    // Xi'an (6101): no agreement between Lanzhou and Xi'an's node.
    submit(&lanzhou, &code, &submission("钱七", "610102", "")).unwrap();
    let claim = &pending(&lanzhou)[0];
    assert_eq!(claim.home_node, "");
    let events_before: i64 = lanzhou
        .tx(|c, _| Ok(c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?))
        .unwrap();
    let refused = confirm(&lanzhou, &claim.claim_id, "");
    let Err(Error::Refused(Refusal::Conflict(message))) = refused else {
        panic!("{refused:?}");
    };
    assert!(message.contains("no agreement with"), "{message}");
    let events_after: i64 = lanzhou
        .tx(|c, _| Ok(c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(events_before, events_after, "nothing appended for a peer");
    let delivered = lanzhou.deliver(&pingliang);
    assert_eq!(delivered.applied, 0);
    // Listed as such where the clerk looks: the to-do list and `report uncovered`.
    let todo = lanzhou.tx(crate::todo::list).unwrap();
    assert!(
        todo.iter().any(|i| i.kind == "reportin_no_agreement"),
        "{todo:?}"
    );
    let uncovered = rows(
        &report(&lanzhou, "uncovered", ""),
        "claims_without_agreement",
    );
    assert_eq!(uncovered.len(), 1);
    assert!(
        uncovered[0]["home"].starts_with("no agreement with"),
        "{uncovered:?}"
    );
    assert!(uncovered[0]["home"].contains("6101"), "{uncovered:?}");
    assert_eq!(uncovered[0]["claims"], "1");
    let waiting = rows(&report(&lanzhou, "reportin", ""), "pending");
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert!(
        waiting[0]["situation"].contains("no agreement with"),
        "{waiting:?}"
    );
    assert_eq!(waiting[0]["claims"], "1");
}

#[test]
fn a_rejected_claim_is_deleted_after_the_days_it_is_kept() {
    let mut lanzhou = TestNode::new("lanzhou");
    let code = station(&lanzhou);
    submit(&lanzhou, &code, &submission("孙八", "620802", "")).unwrap();
    let claim_id = pending(&lanzhou)[0].claim_id.clone();
    let rejected = lanzhou
        .tx(|c, ctx| {
            reportin::reject(
                c,
                ctx,
                &pb::ReportinRejectRequest {
                    claim_id: claim_id.clone(),
                    reason: "重复提交".into(),
                },
                "clerk",
                KEPT_DAYS,
            )
        })
        .unwrap();
    assert_eq!(rejected.state, "rejected");
    assert!(!rejected.deleted_after.is_empty());
    let erasures = |n: &TestNode| {
        n.tx(|c, _| crate::store::counter(c, crate::store::ERASURES))
            .unwrap()
    };
    let before = erasures(&lanzhou);
    lanzhou.now_ms += i64::from(KEPT_DAYS) * DAY_MS - 1000;
    assert_eq!(
        lanzhou
            .tx(|c, ctx| reportin::purge_rejected(c, ctx, KEPT_DAYS))
            .unwrap(),
        0
    );
    lanzhou.now_ms += 2000;
    assert_eq!(
        lanzhou
            .tx(|c, ctx| reportin::purge_rejected(c, ctx, KEPT_DAYS))
            .unwrap(),
        1
    );
    assert!(erasures(&lanzhou) > before, "the deletion is an erasure");
    let all = lanzhou
        .tx(|c, ctx| reportin::claim_list(c, ctx, None, KEPT_DAYS))
        .unwrap();
    assert!(all.is_empty());
}

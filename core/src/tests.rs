//! The core driven by hand: two or three in-memory nodes, batches moved
//! between them explicitly, no network.

use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use prost::Message;
use rusqlite::TransactionBehavior;

use super::apply::apply_batch;
use super::{log, members, Ctx};
use crate::store::peers::{self, PeerRecord, PeerState};
use crate::store::Store;
use crate::Error;
use liaison_types::identity::{CertNotary, NodeId, TlsMaterial};

/// The start of every test's clock: the real time, since the certificates
/// the agreements are signed with are issued now. Dates in the tests are
/// relative to it ([`day`]).
fn t0() -> i64 {
    static T0: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *T0.get_or_init(|| chrono::Utc::now().timestamp_millis())
}

/// The date `offset` days from T0 (China time), as YYYY-MM-DD.
pub(super) fn day(offset: i64) -> String {
    let t0 = Ctx::new(&NodeId::parse("xx").unwrap(), t0()).today();
    (t0 + chrono::Duration::days(offset)).to_string()
}

/// The first millisecond of `date` (YYYY-MM-DD) in China Standard Time:
/// the instant a node's date turns to it.
pub(super) fn china_midnight_ms(date: &str) -> i64 {
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_local_timezone(liaison_types::time::china_time())
        .unwrap()
        .timestamp_millis()
}

pub(super) struct TestNode {
    pub(super) id: NodeId,
    pub(super) store: Store,
    pub(super) now_ms: i64,
    /// The node's zone (`time_zone` in node.toml).
    pub(super) zone: liaison_types::time::Tz,
    notary: CertNotary,
}

/// One federation CA for all unit tests, in a directory that lives as long
/// as the test process.
fn test_ca() -> &'static std::path::Path {
    static CA: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    CA.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        liaison_types::identity::ca_init("gansu", &dir.path().join("ca"), 3650, false).unwrap();
        dir
    })
    .path()
}

/// Real certificates for a node id, issued once per test process.
fn test_material(id: &NodeId) -> TlsMaterial {
    static ISSUE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let dir = test_ca();
    let ca = dir.join("ca");
    let certs = dir.join(format!("certs-{id}"));
    let _guard = ISSUE.lock().unwrap_or_else(|e| e.into_inner());
    if !certs.join(format!("{id}.crt")).exists() {
        liaison_types::identity::ca_issue(&ca, id, &[], &[], 3650, &certs, false).unwrap();
    }
    liaison_types::identity::load_tls(
        &certs.join(format!("{id}.crt")),
        &certs.join(format!("{id}.key")),
        &ca.join("ca.crt"),
        id,
    )
    .unwrap()
}

impl TestNode {
    pub(super) fn new(id: &str) -> TestNode {
        let id = NodeId::parse(id).unwrap();
        TestNode {
            notary: CertNotary::new(test_material(&id)),
            id,
            store: Store::open_in_memory(t0()).unwrap(),
            now_ms: t0(),
            zone: liaison_types::time::DEFAULT_ZONE,
        }
    }

    pub(super) fn ctx(&self) -> Ctx<'_> {
        Ctx::new(&self.id, self.now_ms)
            .with_notary(&self.notary)
            .with_zone(self.zone)
    }

    /// Runs `f` in one IMMEDIATE transaction, committed if it succeeds.
    pub(super) fn tx<R>(
        &self,
        f: impl FnOnce(&rusqlite::Connection, &Ctx<'_>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.store.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let r = f(&tx, &self.ctx())?;
            tx.commit()?;
            Ok(r)
        })
    }

    /// A branch organization `id` named "`id`支部".
    pub(super) fn add_branch(&self, id: &str) {
        self.tx(|c, ctx| {
            members::org_add(
                c,
                ctx,
                &pb::Org {
                    org_id: id.into(),
                    name: format!("{id}支部"),
                    level: "branch".into(),
                    ..Default::default()
                },
            )
        })
        .unwrap();
    }

    pub(super) fn add_peer(&self, id: &str, serves: &[&str]) {
        self.tx(|conn, ctx| {
            peers::add(
                conn,
                &PeerRecord {
                    node_id: NodeId::parse(id).unwrap(),
                    display_name: id.into(),
                    endpoint: "https://127.0.0.1:1".into(),
                    fingerprint: None,
                    state: PeerState::Active,
                    serves: serves.iter().map(|s| s.to_string()).collect(),
                    added_at_ms: ctx.now_ms,
                    last_contact_ms: None,
                    auto_accept_branch: String::new(),
                },
                ctx.now_ms,
            )
        })
        .unwrap();
    }

    /// Everything `self` holds for `to` after `to`'s cursor, applied at `to`,
    /// as the node's pull does: a node restored once first takes again the
    /// holdings of a peer restored since (`reconcile::retake`).
    pub(super) fn deliver(&self, to: &TestNode) -> crate::outcome::ApplyReport {
        let log_id = self.store.log_id().unwrap();
        let retake = to
            .store
            .with(|c| crate::epoch::awaits_retake(c, self.id.as_str(), &log_id))
            .unwrap()
            && self
                .store
                .with(|c| crate::reconcile::may_serve(c, &to.id))
                .unwrap();
        if retake {
            let branch = to.store.with(|c| crate::epoch::branch(c)).unwrap();
            let batches = self
                .store
                .with(|c| crate::reconcile::holdings_for(c, &self.ctx(), &to.id, &branch))
                .unwrap();
            to.store
                .with(|c| crate::reconcile::retake(c, &to.ctx(), &self.id, &log_id, &batches))
                .unwrap();
        }
        let since = to
            .store
            .with(|c| log::cursor(c, &self.id, &log_id))
            .unwrap();
        let events = self
            .store
            .with(|c| log::read_batch(c, &to.id, since, 10_000))
            .unwrap();
        to.apply(&self.id, &log_id, &events)
    }

    pub(super) fn apply(
        &self,
        origin: &NodeId,
        log_id: &str,
        events: &[pb::Event],
    ) -> crate::outcome::ApplyReport {
        self.store
            .with(|c| Ok(apply_batch(c, &self.ctx(), origin, log_id, events)))
            .unwrap()
            .unwrap()
    }

    pub(super) fn view(&self, member_id: &str) -> Result<pb::Member, Error> {
        self.tx(|c, ctx| members::member_view(c, ctx, member_id))
    }

    /// Adds a member `name` (no ID number, so names may repeat) away to
    /// Lanzhou's 620102 since `departed` days from today. Returns its id.
    pub(super) fn add_away(&self, name: &str, departed: i64) -> String {
        self.tx(|c, ctx| {
            let fields = pb::MemberFields {
                national_id: None,
                ..member_fields(name)
            };
            let member = members::member_add(c, ctx, &fields)?;
            members::outflow_register(
                c,
                ctx,
                &pb::OutflowRequest {
                    member_id: member.member_id.clone(),
                    destination_place: "620102".into(),
                    departed_on: day(departed),
                    ..pb::OutflowRequest::default()
                },
            )?;
            Ok(member.member_id)
        })
        .unwrap()
    }
}

fn some(s: &str) -> Option<String> {
    Some(s.to_owned())
}

/// The owner and generation `node` holds `member` at.
pub(super) fn owner_and_generation(node: &TestNode, member: &str) -> (String, u64) {
    let home = node
        .store
        .with(|c| members::load_home(c, member))
        .unwrap()
        .unwrap();
    (home.owner, home.generation)
}

pub(super) fn member_fields(name: &str) -> pb::MemberFields {
    pb::MemberFields {
        name: some(name),
        gender: some("男"),
        birth_date: some("1990-05-17"),
        national_id: some("620801199005170014"),
        party_status: some("正式"),
        joined_on: some("2012-07-01"),
        home_branch: some("b1"),
        phone: some("13800000000"),
        home_address: some("平凉市崆峒区"),
        native_place: some("甘肃平凉"),
        ..pb::MemberFields::default()
    }
}

/// Pingliang (home) with Lanzhou (serves 6201) and Xi'an (serves 6101) as peers,
/// one member away to Lanzhou.
pub(super) fn federation() -> (TestNode, TestNode, TestNode, String) {
    let pingliang = TestNode::new("pingliang");
    let lanzhou = TestNode::new("lanzhou");
    let xian = TestNode::new("xian");
    pingliang.add_peer("lanzhou", &["6201"]);
    pingliang.add_peer("xian", &["6101"]);
    lanzhou.add_peer("pingliang", &[]);
    xian.add_peer("pingliang", &[]);
    let id = pingliang
        .tx(|c, ctx| {
            members::org_add(
                c,
                ctx,
                &pb::Org {
                    org_id: "b1".into(),
                    name: "崆峒区第一支部".into(),
                    level: "branch".into(),
                    contact_person: "王书记".into(),
                    phone: "09338000000".into(),
                    ..pb::Org::default()
                },
            )?;
            let member = members::member_add(c, ctx, &member_fields("张三"))?;
            members::outflow_register(
                c,
                ctx,
                &pb::OutflowRequest {
                    member_id: member.member_id.clone(),
                    destination_place: "620102".into(),
                    departed_on: day(-147),
                    certificate_no: "PL-2026-001".into(),
                    ..pb::OutflowRequest::default()
                },
            )?;
            Ok(member.member_id)
        })
        .unwrap();
    sign_agreement(&pingliang, &lanzhou, "PL-LZ-2026-01");
    (pingliang, lanzhou, xian, id)
}

pub(super) fn terms(number: &str) -> pb::AgreementTerms {
    pb::AgreementTerms {
        number: number.into(),
        effective_from: day(-30),
        effective_until: day(365),
        scope_kind: "destination".into(),
        dues_collector: "inflow".into(),
        ..Default::default()
    }
}

/// `home` proposes an agreement (destination scope) to `host`, which
/// accepts; both sides apply everything; returns the agreement id.
pub(super) fn sign_agreement(home: &TestNode, host: &TestNode, number: &str) -> String {
    let id = home
        .tx(|c, ctx| super::agreements::propose(c, ctx, host.id.as_str(), "outflow", terms(number)))
        .unwrap()
        .agreement_id;
    home.deliver(host);
    host.tx(|c, ctx| super::agreements::accept(c, ctx, &id))
        .unwrap();
    host.deliver(home);
    home.deliver(host);
    id
}

#[test]
fn home_section_reaches_the_destination_host_only_with_shared_fields() {
    let (pingliang, lanzhou, xian, id) = federation();
    // The agreement's activation shared the member at once.
    assert_eq!(pingliang.deliver(&lanzhou).applied, 0);
    assert_eq!(pingliang.deliver(&xian).applied, 0);
    let copy = lanzhou.view(&id).unwrap();
    assert!(!copy.owned);
    assert_eq!(copy.owner, "pingliang");
    assert_eq!(copy.name, "张三");
    assert_eq!(copy.birth_year, 1990);
    assert_eq!(copy.home_branch_name, "崆峒区第一支部");
    assert!(
        copy.national_id.is_empty() && copy.birth_date.is_empty() && copy.home_address.is_empty()
    );
    assert!(copy.native_place.is_empty());
    assert!(xian.view(&id).is_err());
    // The disclosure is recorded with its basis, the outflow registration.
    let disclosures = pingliang.tx(|c, _| members::disclosures(c, &id)).unwrap();
    assert!(disclosures
        .iter()
        .all(|d| d.peer == "lanzhou" && !d.basis.is_empty()));
    assert!(!disclosures.is_empty());
}

#[test]
fn updates_replace_the_copy_and_a_duplicate_batch_changes_nothing() {
    let (pingliang, lanzhou, _xian, id) = federation();
    let log_id = pingliang.store.log_id().unwrap();
    let first = pingliang
        .store
        .with(|c| log::read_batch(c, &lanzhou.id, 0, 100))
        .unwrap();
    lanzhou.apply(&pingliang.id, &log_id, &first);
    pingliang
        .tx(|c, ctx| {
            members::member_update(
                c,
                ctx,
                &id,
                &pb::MemberFields {
                    phone: some("13900000000"),
                    ..Default::default()
                },
            )
        })
        .unwrap();
    let report = pingliang.deliver(&lanzhou);
    assert_eq!(report.applied, 1);
    assert_eq!(lanzhou.view(&id).unwrap().phone, "13900000000");
    // The first batch again: below the cursor, skipped whole.
    let again = lanzhou.apply(&pingliang.id, &log_id, &first);
    assert_eq!((again.applied, again.skipped), (0, first.len() as u64));
    assert_eq!(lanzhou.view(&id).unwrap().phone, "13900000000");
}

#[test]
fn host_records_flow_back_to_the_owner() {
    let (pingliang, lanzhou, _xian, id) = federation();
    pingliang.deliver(&lanzhou);
    lanzhou
        .tx(|c, ctx| {
            members::host_section_set(
                c,
                ctx,
                &pb::HostSectionRequest {
                    member_id: id.clone(),
                    host_branch: some("兰州建筑业流动党员支部"),
                    employer: some("兰州某建筑公司"),
                    industry: some("construction"),
                    reported_on: Some(day(-60)),
                    ..Default::default()
                },
            )?;
            members::contact_record(
                c,
                ctx,
                &pb::ContactRequest {
                    member_id: id.clone(),
                    channel: "org_life".into(),
                    at: day(-5),
                    ..Default::default()
                },
            )?;
            members::activity_record(
                c,
                ctx,
                &pb::ActivityRequest {
                    member_id: id.clone(),
                    kind: "主题党日".into(),
                    date: day(-5),
                    hours: 2.0,
                    ..Default::default()
                },
            )
        })
        .unwrap();
    let report = lanzhou.deliver(&pingliang);
    assert_eq!((report.applied, report.quarantined), (3, 0), "{report:?}");
    let home = pingliang.view(&id).unwrap();
    assert!(home.owned);
    assert_eq!(home.host_sections.len(), 1);
    assert_eq!(home.host_sections[0].employer, "兰州某建筑公司");
    assert_eq!(home.last_contact, format!("{}T00:00:00", day(-5)));
    assert_eq!(home.contact_status, "in_contact");
    // In contact: no "lost since" date beside it.
    assert_eq!(home.lost_since, "");
}

#[test]
fn a_host_writing_the_home_section_is_quarantined_and_changes_nothing() {
    let (pingliang, lanzhou, _xian, id) = federation();
    pingliang.deliver(&lanzhou);
    let forged = pb::HomeSection {
        member_id: id.clone(),
        version: Some(pb::Version {
            generation: 9,
            counter: 9,
        }),
        owner: "lanzhou".into(),
        name: "李四".into(),
        ..Default::default()
    };
    let event = pb::Event {
        seq: 1,
        kind: EventKind::HomeSection as i32,
        entity: id.clone(),
        payload: forged.encode_to_vec(),
        created_at_ms: t0(),
    };
    let report = pingliang.apply(&lanzhou.id, "lanzhou-log", &[event]);
    assert_eq!(
        (report.applied, report.quarantined, report.cursor),
        (0, 1, 1)
    );
    assert_eq!(pingliang.view(&id).unwrap().name, "张三");
    let held = pingliang
        .tx(|c, _| crate::quarantine::list(c, false))
        .unwrap();
    assert_eq!(held.len(), 1);
    assert!(
        held[0].reason.contains("may not write the home section"),
        "{}",
        held[0].reason
    );
    let audit = pingliang
        .store
        .with(|c| crate::store::audit::list(c, 0, 100))
        .unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "replication.quarantine" && e.actor == "peer:lanzhou"));
}

#[test]
fn a_record_from_a_node_that_is_not_the_host_is_quarantined() {
    let (pingliang, _lanzhou, xian, id) = federation();
    let contact = pb::ContactEvent {
        contact_id: "c1".into(),
        member_id: id.clone(),
        author: "xian".into(),
        at: format!("{}T00:00:00", day(-20)),
        channel: "visit".into(),
        ..Default::default()
    };
    let event = pb::Event {
        seq: 7,
        kind: EventKind::Contact as i32,
        entity: id,
        payload: contact.encode_to_vec(),
        created_at_ms: t0(),
    };
    let report = pingliang.apply(&xian.id, "xian-log", &[event]);
    assert_eq!(report.quarantined, 1);
}

#[test]
fn returning_home_unshares_and_drops_queued_shares() {
    let (pingliang, lanzhou, _xian, id) = federation();
    pingliang.deliver(&lanzhou);
    assert!(lanzhou.view(&id).is_ok());
    pingliang
        .tx(|c, ctx| {
            members::member_update(
                c,
                ctx,
                &id,
                &pb::MemberFields {
                    phone: some("13700000000"),
                    ..Default::default()
                },
            )?;
            members::outflow_return(
                c,
                ctx,
                &pb::OutflowReturnRequest {
                    member_id: id.clone(),
                    returned_on: String::new(),
                },
            )
        })
        .unwrap();
    let queued = pingliang
        .store
        .with(|c| log::read_batch(c, &lanzhou.id, 0, 100))
        .unwrap();
    assert!(
        queued
            .iter()
            .all(|e| e.kind != EventKind::HomeSection as i32),
        "a share queued before the return must not reach the host after it"
    );
    pingliang.deliver(&lanzhou);
    assert!(lanzhou.view(&id).is_err(), "the host's copy is gone");
}

#[test]
fn operator_errors_change_nothing() {
    let (pingliang, lanzhou, _xian, id) = federation();
    let count = |n: &TestNode| {
        n.store
            .with(|c| Ok(c.query_row("SELECT COUNT(*) FROM members", [], |r| r.get::<_, i64>(0))?))
            .unwrap()
    };
    let before = count(&pingliang);
    let cases: Vec<(&str, pb::MemberFields)> = vec![
        (
            "empty",
            pb::MemberFields {
                name: some(" "),
                ..member_fields("x")
            },
        ),
        (
            "not a date",
            pb::MemberFields {
                birth_date: some("1990-02-30"),
                national_id: None,
                ..member_fields("x")
            },
        ),
        (
            "home branch",
            pb::MemberFields {
                home_branch: some("nope"),
                national_id: None,
                ..member_fields("x")
            },
        ),
        ("already member", member_fields("张三的重复")),
    ];
    for (expected, fields) in cases {
        let err = pingliang
            .tx(|c, ctx| members::member_add(c, ctx, &fields))
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{expected}: {err}");
    }
    assert_eq!(count(&pingliang), before);
    let err = pingliang
        .tx(|c, ctx| {
            members::outflow_register(
                c,
                ctx,
                &pb::OutflowRequest {
                    member_id: id.clone(),
                    destination_place: "6101".into(),
                    departed_on: day(-200),
                    ..Default::default()
                },
            )
        })
        .unwrap_err();
    assert!(err.to_string().contains("already away"), "{err}");
    pingliang.deliver(&lanzhou);
    let err = lanzhou
        .tx(|c, ctx| {
            members::member_update(
                c,
                ctx,
                &id,
                &pb::MemberFields {
                    name: some("改名"),
                    ..Default::default()
                },
            )
        })
        .unwrap_err();
    assert!(err.to_string().contains("belongs to pingliang"), "{err}");
}

#[test]
fn a_sweep_in_chunks_reaches_what_one_sweep_does() {
    let (mut pingliang, _lanzhou, _xian, first) = federation();
    let mut ids = vec![first];
    for (i, departed) in [-10, -100, -400].into_iter().enumerate() {
        ids.push(pingliang.add_away(&format!("李{i}"), departed));
    }
    pingliang.now_ms += 120 * 86_400_000;
    let statuses = |n: &TestNode| -> Vec<String> {
        ids.iter()
            .map(|id| n.view(id).unwrap().contact_status)
            .collect()
    };
    // The same database swept both ways: one sweep, and chunks of one.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    pingliang
        .store
        .with(|c| {
            c.execute("VACUUM INTO ?1", [copy.to_str().unwrap()])?;
            Ok(())
        })
        .unwrap();
    let whole = pingliang.tx(members::sweep_contact_status).unwrap();
    let swept = statuses(&pingliang);
    pingliang.store = Store::open(&copy, 0).unwrap();
    let mut after = String::new();
    let mut chunked = 0;
    loop {
        let (n, next) = pingliang
            .tx(|c, ctx| members::sweep_contact_status_chunk(c, ctx, &after, 1))
            .unwrap();
        chunked += n;
        match next {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!(chunked, whole);
    assert!(whole > 0, "the clock moved: some status changed");
    assert_eq!(statuses(&pingliang), swept);
}

#[test]
fn contact_status_follows_the_calendar_and_the_operator() {
    let (mut pingliang, _lanzhou, _xian, id) = federation();
    let status = |n: &TestNode| n.view(&id).unwrap().contact_status;
    assert_eq!(
        status(&pingliang),
        "overdue",
        "departed 147 days ago, no contact since"
    );
    pingliang.now_ms += 120 * 86_400_000;
    pingliang.tx(members::sweep_contact_status).unwrap();
    assert_eq!(status(&pingliang), "lost");
    let set = |n: &TestNode, to: &str| {
        n.tx(|c, ctx| {
            members::contact_status(
                c,
                ctx,
                &pb::ContactStatusRequest {
                    member_id: id.clone(),
                    set: to.into(),
                    ..Default::default()
                },
            )
        })
    };
    assert!(
        set(&pingliang, "regained").is_err(),
        "regained follows searching"
    );
    set(&pingliang, "searching").unwrap();
    assert_eq!(status(&pingliang), "searching");
    pingliang.now_ms += 1000;
    pingliang
        .tx(|c, ctx| {
            members::contact_record(
                c,
                ctx,
                &pb::ContactRequest {
                    member_id: id.clone(),
                    channel: "phone".into(),
                    ..Default::default()
                },
            )
        })
        .unwrap();
    assert_eq!(status(&pingliang), "regained");
}

/// A CSV roster imported at `node` in a transaction that commits.
fn imported(node: &TestNode, csv: &str, update: bool) -> super::import::ImportOutcome {
    node.tx(|c, ctx| super::import::import_csv(c, ctx, csv.as_bytes(), update))
        .unwrap()
}

#[test]
fn import_reports_every_bad_row_and_imports_nothing() {
    let (pingliang, _lanzhou, _xian, _id) = federation();
    let csv = "\u{feff}姓名,性别,出生日期,党员类别,所在支部,身份证号\n\
               李四,男,1985-01-02,正式,b1,\n\
               王五,女,1985-13-02,正式,b1,\n\
               赵六,女,1986-01-02,预备,nope,\n";
    let outcome = imported(&pingliang, csv, false);
    assert_eq!(outcome.added, 1);
    let problems: Vec<(u64, &str)> = outcome
        .problems
        .iter()
        .map(|p| (p.row, p.column.as_str()))
        .collect();
    assert_eq!(
        problems,
        [(3, "出生日期"), (4, "所在支部")],
        "{:?}",
        outcome.problems
    );
    assert!(!outcome.commit(false, false));
    let rows = pingliang.tx(super::import::export).unwrap();
    assert_eq!(rows.len(), 2, "张三 and the one good row");
}

/// An office's sheet: a title above the header, columns of its own, a
/// branch by its full name, a place by name, dates typed three ways.
#[test]
fn import_reads_a_sheet_as_offices_keep_it() {
    let (pingliang, _lanzhou, _xian, _id) = federation();
    let csv = format!(
        "平凉市崆峒区流动党员花名册,,,,,,,\n\
         序号,姓名,性别,出生日期,党员类别,所在党支部,去向地,外出日期,备注\n\
         1,李四,男,1985/1/2,正式,崆峒区第一支部,兰州市城关区,{},\n\
         2,王五,女,1986年3月4日,预备,崆峒区第一支部 (b1),,,在家\n",
        day(-50)
    );
    let outcome = imported(&pingliang, &csv, false);
    assert_eq!(
        (outcome.added, outcome.skipped),
        (2, 0),
        "{:?}",
        outcome.problems
    );
    let rows = pingliang.tx(super::import::export).unwrap();
    let li = rows.iter().find(|r| r[1] == "李四").unwrap();
    assert_eq!(
        (li[3].as_str(), li[13].as_str(), li[17].as_str()),
        ("1985-01-02", "b1", "620102")
    );
    let wang = rows.iter().find(|r| r[1] == "王五").unwrap();
    assert_eq!((wang[3].as_str(), wang[17].as_str()), ("1986-03-04", ""));
}

#[test]
fn import_refuses_members_already_here_unless_updating() {
    let (pingliang, lanzhou, _xian, zhang) = federation();
    let sheet = |name: &str| {
        format!("公民身份号码,姓名,性别,出生日期,党员类别,所在支部,联系电话\n620801199005170014,{name},男,1990-05-17,正式,b1,13800000000\n")
    };
    let refused = imported(&pingliang, &sheet("张三"), false);
    assert_eq!(refused.added, 0);
    assert_eq!(refused.problems[0].column, "公民身份号码");
    assert!(
        refused.problems[0].message.contains("--update"),
        "{:?}",
        refused.problems
    );
    // The same row with --update: nothing differs.
    let same = imported(&pingliang, &sheet("张三"), true);
    assert_eq!(
        (same.updated, same.unchanged, same.skipped),
        (0, 1, 0),
        "{:?}",
        same.problems
    );
    let version = pingliang.view(&zhang).unwrap().counter;
    let changed = imported(&pingliang, &sheet("张三丰"), true);
    assert_eq!((changed.updated, changed.unchanged), (1, 0));
    assert_eq!(
        changed.changed[0].changes,
        [("姓名".to_owned(), "张三".to_owned(), "张三丰".to_owned())]
    );
    let member = pingliang.view(&zhang).unwrap();
    assert_eq!(
        (member.name.as_str(), member.counter),
        ("张三丰", version + 1)
    );
    // Pingliang's export imported at Lanzhou by mistake: one id, two
    // owners. Refused, naming what to do.
    let row = format!(
        "成员编号,姓名,性别,出生日期,党员类别,所在支部\n{zhang},张三,男,1990-05-17,正式,b1\n"
    );
    let outcome = imported(&lanzhou, &row, true);
    assert_eq!(outcome.added, 0);
    assert!(
        outcome.problems[0]
            .message
            .contains("not a member of this node")
            && outcome.problems[0].message.contains("leave it empty"),
        "{:?}",
        outcome.problems
    );
    assert!(lanzhou
        .store
        .with(|c| members::load_home(c, &zhang))
        .unwrap()
        .is_none());
}

/// An update sheet with only the columns it changes: the rest stays.
#[test]
fn an_update_changes_the_fields_that_differ_and_the_outflow() {
    let (pingliang, lanzhou, _xian, zhang) = federation();
    let csv = format!(
        "身份证号,联系电话,去向地,外出日期,活动证编号\n\
         620801199005170014,13900000000,620102,{},PL-2026-009\n",
        day(-147)
    );
    let outcome = imported(&pingliang, &csv, true);
    assert_eq!(outcome.updated, 1, "{:?}", outcome.problems);
    assert_eq!(
        outcome.changed[0].changes,
        [
            (
                "联系电话".to_owned(),
                "13800000000".to_owned(),
                "13900000000".to_owned()
            ),
            (
                "活动证编号".to_owned(),
                "PL-2026-001".to_owned(),
                "PL-2026-009".to_owned()
            ),
        ]
    );
    let member = pingliang.view(&zhang).unwrap();
    assert_eq!(member.name, "张三", "the sheet has no 姓名: unchanged");
    assert_eq!(member.outflow.unwrap().certificate_no, "PL-2026-009");
    pingliang.deliver(&lanzhou);
    assert_eq!(lanzhou.view(&zhang).unwrap().phone, "13900000000");
    // A row that finds nobody is a new member, which needs the columns a
    // new member needs.
    let stranger = "身份证号,联系电话\n620801199005170022,13900000001\n";
    let outcome = imported(&pingliang, stranger, true);
    assert_eq!(outcome.skipped, 1);
    assert_eq!(outcome.problems[0].column, "姓名", "{:?}", outcome.problems);
    // Without a column to find members by, an update needs them all.
    let Err(Error::Refused(refusal)) = pingliang
        .tx(|c, ctx| super::import::import_csv(c, ctx, "姓名,联系电话\n张三,1\n".as_bytes(), true))
    else {
        panic!("refused")
    };
    assert!(
        refusal.to_string().contains("公民身份号码 or 成员编号"),
        "{refusal}"
    );
}

/// An update row with a destination registers a member at home away (the
/// member's fields and the registration in one row); outflow cells
/// without a destination are refused for a member at home and left alone
/// for one away.
#[test]
fn an_update_registers_a_member_at_home_away() {
    let (pingliang, lanzhou, _xian, _zhang) = federation();
    let added = imported(
        &pingliang,
        "公民身份号码,姓名,性别,出生日期,党员类别,所在支部\n620801198501020010,李四,男,1985-01-02,正式,b1\n",
        false,
    );
    assert_eq!(added.added, 1, "{:?}", added.problems);
    let li = added.added_list[0].member_id.clone();
    let version = pingliang.view(&li).unwrap().counter;

    let cells_only = format!(
        "公民身份号码,外出日期\n620801198501020010,{}\n620801199005170014,{0}\n",
        day(-20)
    );
    let refused = imported(&pingliang, &cells_only, true);
    assert_eq!((refused.skipped, refused.unchanged), (1, 1));
    assert_eq!(
        refused.problems[0].row, 2,
        "李四 is at home: {:?}",
        refused.problems
    );
    assert_eq!(refused.problems[0].column, "去向地");

    let away = format!(
        "公民身份号码,联系电话,去向地,外出日期\n620801198501020010,13900000002,620102,{}\n",
        day(-20)
    );
    let outcome = imported(&pingliang, &away, true);
    assert_eq!(outcome.updated, 1, "{:?}", outcome.problems);
    let listed = &outcome.changed[0];
    assert_eq!(
        (listed.member_id.as_str(), listed.name.as_str()),
        (li.as_str(), "李四")
    );
    let columns: Vec<&str> = listed.changes.iter().map(|(c, _, _)| c.as_str()).collect();
    assert!(
        columns.starts_with(&["联系电话", "去向地"]) && columns.contains(&"外出日期"),
        "{:?}",
        listed.changes
    );
    let member = pingliang.view(&li).unwrap();
    assert_eq!(member.phone, "13900000002");
    assert_eq!(member.outflow.unwrap().destination_place, "620102");
    assert!(member.counter > version, "a new version is made and shared");
    pingliang.deliver(&lanzhou);
    assert_eq!(lanzhou.view(&li).unwrap().phone, "13900000002");
}

#[test]
fn import_registers_outflows_and_shares_them() {
    let (pingliang, lanzhou, _xian, _id) = federation();
    let csv = format!(
        "name,gender,birth_date,party_status,home_branch,destination_place,departed_on,certificate_no\n\
         李四,男,1985-01-02,正式,b1,620102,{},PL-9\n\
         王五,女,1986-03-04,预备,b1,,,\n",
        day(-50)
    );
    let outcome = imported(&pingliang, &csv, false);
    assert_eq!(
        (outcome.added, outcome.skipped),
        (2, 0),
        "{:?}",
        outcome.problems
    );
    let report = pingliang.deliver(&lanzhou);
    assert_eq!(
        report.applied, 1,
        "李四 is away to Lanzhou (张三 was shared at activation); 王五 stays home"
    );
    let rows = pingliang.tx(super::import::export).unwrap();
    assert!(
        rows.iter()
            .any(|r| r[1] == "李四" && r[17] == "620102" && r[24] == "PL-9"),
        "{rows:?}"
    );
}

#[test]
fn organizations_import_by_parent_name_and_name_every_bad_row() {
    let (pingliang, _lanzhou, _xian, _id) = federation();
    let org = |code: &str, name: &str, level: &str, parent: &str| pb::Org {
        org_id: code.into(),
        name: name.into(),
        level: level.into(),
        parent_org: parent.into(),
        ..pb::Org::default()
    };
    let request = |orgs: Vec<pb::Org>| pb::OrgImportRequest {
        rows: (3..3 + orgs.len() as u64).collect(),
        orgs,
        sheet: "组织".into(),
        columns: vec![pb::ImportColumn {
            field: "parent".into(),
            header: "上级党组织".into(),
        }],
        skip_bad: false,
    };
    let bad = request(vec![
        org("pl-kt", "崆峒区委", "党委", ""),
        org("pl-kt-02", "崆峒区第二支部", "支部", "崆峒区委"),
        org("pl-kt-03", "崆峒区第三支部", "党支部", "崆峒县委"),
    ]);
    let Err(Error::Refused(refusal)) =
        pingliang.tx(|c, ctx| super::import::org_import(c, ctx, &bad))
    else {
        panic!("refused")
    };
    let message = refusal.to_string();
    assert!(
        message.starts_with("2 bad rows, nothing was imported (fix them, or pass --skip-bad)"),
        "{message}"
    );
    // Skipping them adds the good one.
    let skipping = pb::OrgImportRequest {
        skip_bad: true,
        ..bad.clone()
    };
    let outcome = pingliang
        .tx(|c, ctx| super::import::org_import(c, ctx, &skipping))
        .unwrap();
    assert_eq!(outcome.added, ["pl-kt"]);
    assert_eq!(outcome.problems.len(), 2);
    pingliang
        .tx(|c, _| Ok(c.execute("DELETE FROM orgs WHERE org_id = 'pl-kt'", [])?))
        .unwrap();
    assert!(
        message.contains("sheet 组织, row 4, column 层级: organization level `支部`"),
        "{message}"
    );
    assert!(
        message.contains("sheet 组织, row 5, column 上级党组织: no organization"),
        "{message}"
    );
    assert!(pingliang
        .tx(|c, _| members::org_list(c))
        .unwrap()
        .iter()
        .all(|o| o.org_id != "pl-kt"));
    let good = request(vec![
        org("pl-kt", "崆峒区委", "党委", ""),
        org("pl-kt-02", "崆峒区第二支部", "党支部", "崆峒区委"),
        org("pl-kt-03", "崆峒区第三支部", "党支部", "崆峒区委 (pl-kt)"),
    ]);
    let added = pingliang
        .tx(|c, ctx| super::import::org_import(c, ctx, &good))
        .unwrap();
    assert_eq!(added.added, ["pl-kt", "pl-kt-02", "pl-kt-03"]);
    assert!(added.problems.is_empty());
    let orgs = pingliang.tx(|c, _| members::org_list(c)).unwrap();
    assert!(orgs
        .iter()
        .any(|o| o.org_id == "pl-kt-03" && o.parent_org == "pl-kt"));
}

#[test]
fn members_away_before_a_region_had_a_node_are_shared_when_it_joins() {
    let (pingliang, _lanzhou, _xian, _id) = federation();
    let yinchuan = TestNode::new("yinchuan");
    let id = pingliang
        .tx(|c, ctx| {
            let member = members::member_add(
                c,
                ctx,
                &pb::MemberFields {
                    national_id: None,
                    ..member_fields("李四")
                },
            )?;
            members::outflow_register(
                c,
                ctx,
                &pb::OutflowRequest {
                    member_id: member.member_id.clone(),
                    destination_place: "640100".into(),
                    departed_on: day(-100),
                    ..Default::default()
                },
            )?;
            Ok(member.member_id)
        })
        .unwrap();
    assert_eq!(pingliang.deliver(&yinchuan).applied, 0);
    pingliang.add_peer("yinchuan", &["6401"]);
    let adopted = pingliang
        .tx(|c, ctx| members::adopt_destinations(c, ctx, &yinchuan.id))
        .unwrap();
    assert_eq!(adopted, 1);
    let outflow = pingliang.view(&id).unwrap().outflow.unwrap();
    assert_eq!(outflow.destination_node, "yinchuan");
    // Nothing is shared without an agreement; with one, at once.
    assert_eq!(pingliang.deliver(&yinchuan).applied, 0);
    assert!(yinchuan.view(&id).is_err());
    sign_agreement(&pingliang, &yinchuan, "PL-YC-2026-01");
    assert_eq!(yinchuan.view(&id).unwrap().name, "李四");
}

/// `members.national_id` has a partial index (`WHERE national_id <> ''`),
/// which the planner uses only for a query that states its condition:
/// plans never depend on bound values here (QPSG). Without it, adding or
/// importing members with ID numbers scans the table once per member.
#[test]
fn queries_by_national_id_use_its_index() {
    let node = TestNode::new("pingliang");
    let plan: String = node
        .store
        .with(|c| {
            Ok(c.query_row(
                "EXPLAIN QUERY PLAN SELECT member_id FROM members WHERE national_id = ?1 AND national_id <> '' AND owner = ?2",
                ["620801199005170014", "pingliang"],
                |r| r.get(3),
            )?)
        })
        .unwrap();
    assert!(plan.contains("USING INDEX members_national_id"), "{plan}");
    let mut files = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    let mut checked = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("tests.rs") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            if line.contains("WHERE national_id = ?") {
                checked += 1;
                assert!(
                    line.contains("national_id <> ''"),
                    "{}: a query by ID number without the index's condition: {line}",
                    path.display()
                );
            }
        }
    }
    assert!(checked >= 4, "the queries by ID number were found");
}

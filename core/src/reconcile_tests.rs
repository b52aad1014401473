//! Backup, restore and reconcile driven by hand between nodes (docs/restore.md).

use liaison_proto::v1 as pb;

use super::reconcile::{self, AdoptReport};
use super::tests::{day, federation, owner_and_generation, TestNode};
use super::transfer_tests::owners;
use super::{log, members, transfers};
use crate::store::Store;
use crate::{Error, Refusal};

/// A backup of `node`'s database as `liaisonctl backup` writes it.
fn backup(node: &TestNode) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backup.db");
    node.store
        .with(|c| crate::store::backup(c, &path, node.now_ms))
        .unwrap();
    (dir, path)
}

/// `id` started on a copy of the backup at `path`, an hour later.
fn restore(id: &str, path: &std::path::Path, now_ms: i64) -> TestNode {
    let copy = path.with_file_name(format!("{id}-restored.db"));
    std::fs::copy(path, &copy).unwrap();
    let mut node = TestNode::new(id);
    node.now_ms = now_ms + 3_600_000;
    node.store = Store::open(&copy, node.now_ms).unwrap();
    let start = node
        .store
        .with(|c| reconcile::begin_restore_if_marked(c, &node.ctx()))
        .unwrap()
        .expect("a backup copy begins a restore on its first open");
    assert_ne!(start.log_id, start.previous_log_id);
    assert!(start.backup_at_ms > 0);
    node
}

fn adopt(restored: &TestNode, peer: &TestNode) -> AdoptReport {
    let branch = restored.store.with(|c| crate::epoch::branch(c)).unwrap();
    let batches = peer
        .store
        .with(|c| reconcile::holdings_for(c, &peer.ctx(), &restored.id, &branch))
        .unwrap();
    restored
        .store
        .with(|c| reconcile::adopt(c, &restored.ctx(), &peer.id, &batches))
        .unwrap()
}

fn update_phone(node: &TestNode, member: &str, phone: &str) -> Result<pb::Member, Error> {
    node.tx(|c, ctx| {
        members::member_update(
            c,
            ctx,
            member,
            &pb::MemberFields {
                phone: Some(phone.into()),
                ..Default::default()
            },
        )
    })
}

fn copy_at(node: &TestNode, member: &str) -> Option<pb::HomeSection> {
    node.store
        .with(|c| members::load_copy(c, member))
        .unwrap()
        .map(|c| c.section)
}

fn version(section: &pb::HomeSection) -> (u64, u64) {
    let v = section.version.unwrap_or_default();
    (v.generation, v.counter)
}

#[test]
fn restored_node_refuses_owner_actions_until_every_peer_is_adopted() {
    let (pingliang, lanzhou, xian, member) = federation();
    pingliang.deliver(&lanzhou);
    let (_dir, path) = backup(&pingliang);
    let restored = restore("pingliang", &path, pingliang.now_ms);
    let guard = update_phone(&restored, &member, "13900000001");
    assert!(
        matches!(guard, Err(Error::Refused(Refusal::Reconciling { ref waiting })) if waiting.iter().any(|p| p == "lanzhou")),
        "{guard:?}"
    );
    // Every kind of owner write refuses itself, imports and organizations too.
    let roster = "姓名,公民身份号码,性别,出生日期,党员类别,所在支部\n王五,620801199001010011,男,1990-01-01,正式,b1\n";
    let refusals = [
        restored
            .tx(|c, ctx| crate::import::import_csv(c, ctx, roster.as_bytes(), false))
            .map(drop),
        restored
            .tx(|c, ctx| members::member_add(c, ctx, &super::tests::member_fields("王五")))
            .map(drop),
        restored
            .tx(|c, ctx| {
                members::org_add(
                    c,
                    ctx,
                    &pb::Org {
                        org_id: "b2".into(),
                        name: "第二支部".into(),
                        level: "branch".into(),
                        ..Default::default()
                    },
                )
            })
            .map(drop),
        restored
            .tx(|c, ctx| {
                transfers::start(c, ctx, &member, "lanzhou", 0, "定居", Default::default())
            })
            .map(drop),
    ];
    for refused in refusals {
        assert!(
            matches!(refused, Err(Error::Refused(Refusal::Reconciling { .. }))),
            "{refused:?}"
        );
    }
    // Nor is the peer's log applied before its holdings are adopted.
    let lanzhou_log = lanzhou.store.log_id().unwrap();
    let events = lanzhou
        .store
        .with(|c| log::read_batch(c, &restored.id, 0, 100))
        .unwrap();
    let early = restored.store.with(|c| {
        crate::apply::apply_batch(c, &restored.ctx(), &lanzhou.id, &lanzhou_log, &events)
            .map_err(|e| Error::invalid(e.to_string()))
    });
    assert!(
        early
            .as_ref()
            .is_err_and(|e| e.to_string().contains("holdings are adopted")),
        "{early:?}"
    );
    assert!(restored
        .store
        .with(|c| reconcile::may_serve(c, &lanzhou.id))
        .map(|ok| !ok)
        .unwrap());
    assert!(!adopt(&restored, &lanzhou).finished, "xian still waiting");
    assert!(adopt(&restored, &xian).finished);
    update_phone(&restored, &member, "13900000001").expect("an owner again");
    let status = restored
        .store
        .with(|c| reconcile::status(c, liaison_types::time::DEFAULT_ZONE))
        .unwrap();
    assert!(!status.reconciling);
    assert!(
        status.lost_period.contains("backup"),
        "{}",
        status.lost_period
    );
    assert!(status.peers.iter().all(|p| p.state == "adopted"));
}

#[test]
fn versions_and_sequence_jump_past_what_the_peer_holds_and_the_re_emission_wins() {
    let (pingliang, lanzhou, xian, member) = federation();
    pingliang.deliver(&lanzhou);
    let (_dir, path) = backup(&pingliang);
    // After the backup: two edits reach the host, and the host records.
    update_phone(&pingliang, &member, "13900000001").unwrap();
    update_phone(&pingliang, &member, "13900000002").unwrap();
    pingliang.deliver(&lanzhou);
    let held = copy_at(&lanzhou, &member).unwrap();
    assert_eq!(held.phone, "13900000002");
    lanzhou
        .tx(|c, ctx| {
            members::contact_record(
                c,
                ctx,
                &pb::ContactRequest {
                    member_id: member.clone(),
                    channel: "phone".into(),
                    ..Default::default()
                },
            )
        })
        .unwrap();
    lanzhou.deliver(&pingliang);
    let lanzhou_cursor = lanzhou
        .store
        .with(|c| log::cursor(c, &pingliang.id, &pingliang.store.log_id().unwrap()))
        .unwrap();

    let restored = restore("pingliang", &path, pingliang.now_ms);
    let report = adopt(&restored, &lanzhou);
    assert!(report.re_sent >= 1, "{report:?}");
    let home = restored
        .store
        .with(|c| members::load_home(c, &member))
        .unwrap()
        .unwrap();
    assert!(
        (home.generation, home.counter) > version(&held),
        "the counter jumps past the host's copy"
    );
    // A new event's seq is past the highest the peer applied.
    let seq = restored
        .tx(|c, ctx| {
            log::append(
                c,
                &xian.id,
                pb::EventKind::Contact,
                "probe",
                b"",
                ctx.now_ms,
            )
        })
        .unwrap();
    assert!(seq > lanzhou_cursor, "{seq} > {lanzhou_cursor}");
    // The host's own records come back through its log, from the restored cursor.
    lanzhou.deliver(&restored);
    let contacts: u64 = restored
        .store
        .with(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM contacts WHERE member_id = ?1 AND author = 'lanzhou'",
                [&member],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(contacts, 1);
    // The re-emission wins at the host: the backup's phone, at a higher version.
    let report = restored.deliver(&lanzhou);
    assert_eq!(report.quarantined, 0, "{report:?}");
    let copy = copy_at(&lanzhou, &member).unwrap();
    assert_eq!(copy.phone, "13800000000");
    assert!(version(&copy) > version(&held));
    assert_eq!(
        owners(&[&restored, &lanzhou, &xian], &member),
        vec!["pingliang".to_string()]
    );
}

#[test]
fn epoch_complete_drops_only_the_copies_not_sent_again() {
    let (pingliang, lanzhou, xian, member) = federation();
    pingliang.deliver(&lanzhou);
    let (_dir, path) = backup(&pingliang);
    // A member added after the backup, shared with the host, then forgotten.
    let forgotten = pingliang.add_away("李四", -10);
    pingliang.deliver(&lanzhou);
    assert!(copy_at(&lanzhou, &forgotten).is_some());

    let restored = restore("pingliang", &path, pingliang.now_ms);
    let report = adopt(&restored, &lanzhou);
    assert_eq!(report.forgotten, 1, "{report:?}");
    adopt(&restored, &xian);
    // Everything but the EpochComplete: both copies still there.
    let log_id = restored.store.log_id().unwrap();
    let events = restored
        .store
        .with(|c| log::read_batch(c, &lanzhou.id, 0, 10_000))
        .unwrap();
    let (last, rest) = events.split_last().unwrap();
    assert_eq!(last.kind, pb::EventKind::EpochComplete as i32);
    lanzhou.apply(&restored.id, &log_id, rest);
    assert!(
        copy_at(&lanzhou, &forgotten).is_some(),
        "not before EpochComplete"
    );
    let report = lanzhou.apply(&restored.id, &log_id, std::slice::from_ref(last));
    assert_eq!((report.applied, report.quarantined), (1, 0));
    assert!(
        copy_at(&lanzhou, &forgotten).is_none(),
        "not sent again: dropped"
    );
    assert!(copy_at(&lanzhou, &member).is_some(), "sent again: kept");
    // Applied twice (a duplicate batch), nothing changes.
    assert_eq!(
        lanzhou
            .apply(&restored.id, &log_id, std::slice::from_ref(last))
            .skipped,
        1
    );
    assert!(copy_at(&lanzhou, &member).is_some());
}

fn held_transfer(member: &str, id: &str, letter_seq: u64, state: &str) -> pb::HeldTransfer {
    pb::HeldTransfer {
        transfer_id: id.into(),
        letter_no: format!("PINGLIANG-{}-{letter_seq:06}", &day(0)[..4]),
        sender: "pingliang".into(),
        receiver: "lanzhou".into(),
        member_id: member.into(),
        member_name: "张三".into(),
        state: state.into(),
        issued_on: day(0),
        expires_on: day(30),
        valid_days: 30,
        branch: if state == "accepted" {
            "lz1".into()
        } else {
            String::new()
        },
        ..Default::default()
    }
}

fn transfer_state(node: &TestNode, id: &str) -> String {
    node.tx(|c, ctx| transfers::view(c, ctx, id)).unwrap().state
}

/// `restored` adopts holdings of `peer` that report `transfers` alone.
fn adopt_transfers(
    restored: &TestNode,
    peer: &TestNode,
    transfers: Vec<pb::HeldTransfer>,
) -> AdoptReport {
    let batches = vec![pb::HoldingsBatch {
        transfers,
        last: true,
        ..Default::default()
    }];
    restored
        .store
        .with(|c| reconcile::adopt(c, &restored.ctx(), &peer.id, &batches))
        .unwrap()
}

#[test]
fn transfer_rule_releases_the_newest_accepted_and_aborts_older_open_ones() {
    let (pingliang, lanzhou, _xian, member) = federation();
    pingliang.deliver(&lanzhou);
    let (_dir, path) = backup(&pingliang);
    let restored = restore("pingliang", &path, pingliang.now_ms);
    let report = adopt_transfers(
        &restored,
        &lanzhou,
        vec![
            held_transfer(&member, "t-old", 5, "pending"),
            held_transfer(&member, "t-new", 6, "accepted"),
        ],
    );
    assert_eq!(
        (report.transfers_released, report.transfers_aborted),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(transfer_state(&restored, "t-new"), "released");
    assert_eq!(transfer_state(&restored, "t-old"), "cancelled");
    assert_eq!(
        owner_and_generation(&restored, &member).0,
        "lanzhou",
        "a tombstone pointing to the receiver"
    );
    // Letter numbers jump past the peer's.
    let next = restored
        .store
        .with(|c| crate::letters::last_issued(c))
        .unwrap();
    assert_eq!(
        next,
        crate::letters::LetterNo::place_of(&held_transfer(&member, "t", 6, "accepted").letter_no)
    );
}

/// A release gives the member the offer's generation plus one: a restored
/// sender holding the member at another generation than the receiver's
/// offer names (it got the member back after its backup and offered it
/// again) cancels the letter instead of releasing from what it holds.
#[test]
fn transfer_rule_releases_only_from_the_generation_the_offer_named() {
    let (pingliang, lanzhou, _xian, member) = federation();
    pingliang.deliver(&lanzhou);
    let (_dir, path) = backup(&pingliang);
    let offer = pingliang
        .tx(|c, ctx| {
            transfers::start(
                c,
                ctx,
                &member,
                "lanzhou",
                0,
                "",
                transfers::LetterRules::default(),
            )
        })
        .unwrap();
    pingliang.deliver(&lanzhou);
    let held = lanzhou
        .store
        .with(|c| reconcile::holdings_for(c, &lanzhou.ctx(), &pingliang.id, &[]))
        .unwrap();
    let reported = held
        .iter()
        .flat_map(|b| &b.transfers)
        .find(|t| t.transfer_id == offer.transfer_id)
        .expect("the receiver reports the offer it holds");
    assert_eq!(reported.offered_generation, 1, "{reported:?}");

    let restored = restore("pingliang", &path, pingliang.now_ms);
    let report = adopt_transfers(
        &restored,
        &lanzhou,
        vec![pb::HeldTransfer {
            offered_generation: 3,
            ..held_transfer(&member, "t-round-trip", 6, "accepted")
        }],
    );
    assert_eq!(
        (report.transfers_released, report.transfers_aborted),
        (0, 1),
        "{report:?}"
    );
    assert_eq!(transfer_state(&restored, "t-round-trip"), "cancelled");
    assert_eq!(
        owner_and_generation(&restored, &member),
        ("pingliang".into(), 1)
    );
}

#[test]
fn transfer_rule_adopts_a_completed_transfer_as_a_tombstone_and_flags_edits() {
    let (pingliang, lanzhou, xian, member) = federation();
    pingliang.deliver(&lanzhou);
    let (_dir, path) = backup(&pingliang);
    let restored = restore("pingliang", &path, pingliang.now_ms);
    // Going on without Lanzhou, the operator edits the member.
    restored
        .store
        .with(|c| {
            reconcile::skip_peer(
                c,
                &restored.ctx(),
                &lanzhou.id,
                &crate::store::audit::Actor::Operator("op".into()),
            )
        })
        .unwrap();
    assert!(restored
        .store
        .with(|c| reconcile::needs_holdings(c, &lanzhou.id))
        .unwrap());
    assert!(adopt(&restored, &xian).finished);
    let mut later = restored;
    later.now_ms += 60_000;
    update_phone(&later, &member, "13900000009").unwrap();
    let report = adopt_transfers(
        &later,
        &lanzhou,
        vec![pb::HeldTransfer {
            generation: 2,
            ..held_transfer(&member, "t-done", 3, "completed")
        }],
    );
    assert_eq!(report.transfers_completed, 1);
    assert_eq!(report.conflicts, vec![member.clone()]);
    assert_eq!(owner_and_generation(&later, &member), ("lanzhou".into(), 2));
    assert_eq!(transfer_state(&later, "t-done"), "completed");
}

#[test]
fn a_new_database_under_a_known_id_reconciles_when_a_peer_knows_another_log() {
    let node = TestNode::new("pingliang");
    node.add_peer("lanzhou", &["6201"]);
    let own = node.store.log_id().unwrap();
    let lanzhou = liaison_types::identity::NodeId::parse("lanzhou").unwrap();
    let none = node
        .store
        .with(|c| {
            reconcile::note_log_ids_held(c, &node.ctx(), &lanzhou, std::slice::from_ref(&own))
        })
        .unwrap();
    assert!(none.is_none(), "our own log id is no news");
    let start = node
        .store
        .with(|c| reconcile::note_log_ids_held(c, &node.ctx(), &lanzhou, &["older-db".to_string()]))
        .unwrap()
        .expect("an unknown log id of ours begins a restore");
    assert_eq!(start.backup_at_ms, 0);
    assert!(node
        .store
        .with(|c| crate::epoch::is_reconciling(c))
        .unwrap());
}

#[test]
fn a_transfer_report_this_node_could_not_have_issued_is_refused_and_changes_nothing() {
    let (pingliang, lanzhou, _xian, member) = federation();
    // One real transfer before the backup: letters up to 1 are known here.
    let t = pingliang
        .tx(|c, ctx| transfers::start(c, ctx, &member, "lanzhou", 0, "定居", Default::default()))
        .unwrap();
    pingliang
        .tx(|c, ctx| transfers::cancel(c, ctx, &t.transfer_id))
        .unwrap();
    let (_dir, path) = backup(&pingliang);
    let restored = restore("pingliang", &path, pingliang.now_ms);
    let year = &day(0)[..4];
    let forged = |id: &str, letter: &str| pb::HeldTransfer {
        letter_no: letter.replace("YEAR", year),
        generation: 2,
        ..held_transfer(&member, id, 0, "completed")
    };
    let batches = vec![pb::HoldingsBatch {
        transfers: vec![
            forged("t-foreign", "LANZHOU-YEAR-000009"),
            forged("t-old-letter", "PINGLIANG-YEAR-000001"),
        ],
        last: true,
        ..Default::default()
    }];
    let report = restored
        .store
        .with(|c| reconcile::adopt(c, &restored.ctx(), &lanzhou.id, &batches))
        .unwrap();
    assert_eq!(report.refused.len(), 2, "{report:?}");
    assert_eq!(report.transfers_completed, 0);
    let home = restored
        .store
        .with(|c| members::load_home(c, &member))
        .unwrap()
        .unwrap();
    assert_eq!(home.owner, "pingliang", "still owned here");
}

#[test]
fn holdings_come_in_bounded_batches_and_only_the_last_is_marked() {
    let (_pingliang, lanzhou, _xian, member) = federation();
    lanzhou
        .tx(|c, ctx| {
            for n in 0..450 {
                members::save_contact(
                    c,
                    &pb::ContactEvent {
                        contact_id: format!("c-{n:04}"),
                        member_id: member.clone(),
                        author: "pingliang".into(),
                        at: day(-1),
                        channel: "phone".into(),
                        ..Default::default()
                    },
                    ctx.now_ms,
                )?;
            }
            Ok(())
        })
        .unwrap();
    let pingliang = liaison_types::identity::NodeId::parse("pingliang").unwrap();
    let batches = lanzhou
        .store
        .with(|c| reconcile::holdings_for(c, &lanzhou.ctx(), &pingliang, &[]))
        .unwrap();
    assert!(batches.len() >= 3, "{} batches", batches.len());
    let (last, rest) = batches.split_last().unwrap();
    assert!(last.last && rest.iter().all(|b| !b.last));
    for batch in &batches {
        let records = batch.home_copies.len() + batch.contacts.len() + batch.agreements.len();
        assert!(records <= reconcile::HOLDINGS_BATCH_RECORDS + 1);
        assert!(prost::Message::encoded_len(batch) <= reconcile::HOLDINGS_BATCH_BYTES + 4096);
    }
    let contacts: usize = batches.iter().map(|b| b.contacts.len()).sum();
    assert_eq!(contacts, 450);
}

#[test]
fn an_agreement_is_adopted_only_with_this_nodes_own_signature_on_its_active_version() {
    let (_pingliang, lanzhou, _xian, _member) = federation();
    // A reinstalled Pingliang: a new database, Lanzhou as its peer.
    let fresh = TestNode::new("pingliang");
    fresh.add_peer("lanzhou", &["6201"]);
    fresh
        .store
        .with(|c| reconcile::begin_restore(c, &fresh.ctx()))
        .unwrap();
    let batches = lanzhou
        .store
        .with(|c| reconcile::holdings_for(c, &lanzhou.ctx(), &fresh.id, &[]))
        .unwrap();
    let mut forged = batches.clone();
    for version in forged
        .iter_mut()
        .flat_map(|b| &mut b.agreements)
        .flat_map(|a| &mut a.versions)
    {
        if let Some(terms) = &mut version.terms {
            terms.effective_until = "2099-12-31".into();
        }
    }
    let report = fresh
        .store
        .with(|c| reconcile::adopt(c, &fresh.ctx(), &lanzhou.id, &forged))
        .unwrap();
    assert_eq!(
        (report.agreements, report.refused.len()),
        (0, 1),
        "{report:?}"
    );
    assert!(
        report.refused[0].contains("signature"),
        "{:?}",
        report.refused
    );

    // The genuine answer is adopted, active.
    let fresh2 = TestNode::new("pingliang");
    fresh2.add_peer("lanzhou", &["6201"]);
    fresh2
        .store
        .with(|c| reconcile::begin_restore(c, &fresh2.ctx()))
        .unwrap();
    let report = fresh2
        .store
        .with(|c| reconcile::adopt(c, &fresh2.ctx(), &lanzhou.id, &batches))
        .unwrap();
    assert_eq!(
        (report.agreements, report.refused.len()),
        (1, 0),
        "{report:?}"
    );
    let state: String = fresh2
        .store
        .with(|c| Ok(c.query_row("SELECT state FROM agreements", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(state, "active");
}

#[test]
fn a_new_database_keeps_its_own_events_that_the_peer_never_applied() {
    let node = TestNode::new("pingliang");
    node.add_peer("lanzhou", &["6201"]);
    let lanzhou = liaison_types::identity::NodeId::parse("lanzhou").unwrap();
    // Written under the new database's first log id, before anyone pulled.
    node.tx(|c, ctx| log::append(c, &lanzhou, pb::EventKind::Contact, "m", b"", ctx.now_ms))
        .unwrap();
    node.store
        .with(|c| reconcile::note_log_ids_held(c, &node.ctx(), &lanzhou, &["older-db".to_string()]))
        .unwrap()
        .unwrap();
    // The old database's cursor is far ahead, in another sequence.
    let batches = vec![pb::HoldingsBatch {
        cursors: vec![pb::LogCursor {
            log_id: "older-db".into(),
            seq: 500,
        }],
        last: true,
        ..Default::default()
    }];
    let report = node
        .store
        .with(|c| reconcile::adopt(c, &node.ctx(), &lanzhou, &batches))
        .unwrap();
    assert_eq!(report.events_dropped, 0, "{report:?}");
    let events = node
        .store
        .with(|c| log::read_batch(c, &lanzhou, 0, 100))
        .unwrap();
    assert_eq!(events.first().map(|e| e.seq), Some(1));
    assert!(
        events.last().unwrap().seq > 500,
        "the sequence jumped past the old cursor"
    );
}

/// A reconciling coordinator makes no agreement decision, also not on
/// applying the other party's acceptance; its calendar activates the
/// agreement once the reconciliation ended (docs/restore.md).
#[test]
fn a_reconciling_coordinator_activates_nothing_on_an_acceptance() {
    let (pingliang, lanzhou, xian, _member) = federation();
    let id = pingliang
        .tx(|c, ctx| {
            super::agreements::propose(c, ctx, "lanzhou", "outflow", super::tests::terms("PL-LZ-7"))
        })
        .unwrap()
        .agreement_id;
    pingliang.deliver(&lanzhou);
    let (_dir, path) = backup(&pingliang);
    let restored = restore("pingliang", &path, pingliang.now_ms);
    // Lanzhou adopted, Xi'an still awaited: Lanzhou's acceptance applies.
    assert!(!adopt(&restored, &lanzhou).finished);
    lanzhou
        .tx(|c, ctx| super::agreements::accept(c, ctx, &id))
        .unwrap();
    lanzhou.deliver(&restored);
    let state = |node: &TestNode| {
        let v = node
            .tx(|c, ctx| super::agreements::view(c, ctx, &id))
            .unwrap();
        (v.state, v.active_version)
    };
    assert_eq!(state(&restored), ("proposed".into(), 0));
    assert!(adopt(&restored, &xian).finished);
    assert!(!restored
        .store
        .with(|c| crate::epoch::is_reconciling(c))
        .unwrap());
    restored.tx(super::agreements::tick).unwrap();
    assert_eq!(state(&restored), ("active".into(), 1));
}

/// Noon, China time, on `date`.
fn at_noon(date: chrono::NaiveDate) -> i64 {
    date.and_hms_opt(4, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis()
}

#[test]
fn letters_across_new_year_compare_by_year_with_restores_on_both_sides() {
    use crate::letters::{LetterNo, LetterPlace};
    use chrono::Datelike;
    let (mut pingliang, lanzhou, xian, member) = federation();
    lanzhou.add_branch("lz1");
    let year = chrono::NaiveDate::parse_from_str(&day(0), "%Y-%m-%d")
        .unwrap()
        .year();
    let eve = chrono::NaiveDate::from_ymd_opt(year, 12, 30).unwrap();
    let new_year = chrono::NaiveDate::from_ymd_opt(year + 1, 1, 2).unwrap();
    let rules = transfers::LetterRules {
        valid_days_default: 30,
        valid_days_max: 90,
    };
    // Before New Year: a letter, a backup, and a restore from it.
    pingliang.now_ms = at_noon(eve);
    let start = |node: &TestNode| {
        node.tx(|c, ctx| transfers::start(c, ctx, &member, "lanzhou", 0, "定居", rules))
            .unwrap()
    };
    let withdrawn = start(&pingliang);
    pingliang
        .tx(|c, ctx| transfers::cancel(c, ctx, &withdrawn.transfer_id))
        .unwrap();
    let first = start(&pingliang);
    assert_eq!(first.letter_no, format!("PINGLIANG-{year}-000002"));
    pingliang.deliver(&lanzhou);
    let (_eve_dir, eve_backup) = backup(&pingliang);
    let mut restored = restore("pingliang", &eve_backup, pingliang.now_ms);
    assert!(adopt(&restored, &lanzhou).refused.is_empty());
    assert!(adopt(&restored, &xian).finished);

    // After New Year numbering starts again at 1; a backup taken before
    // the year's first letter, and a restore from it.
    restored.now_ms = at_noon(new_year);
    restored
        .tx(|c, ctx| transfers::cancel(c, ctx, &first.transfer_id))
        .unwrap();
    restored.deliver(&lanzhou);
    let (_ny_dir, ny_backup) = backup(&restored);
    let second = start(&restored);
    assert_eq!(second.letter_no, format!("PINGLIANG-{}-000001", year + 1));
    restored.deliver(&lanzhou);
    lanzhou
        .tx(|c, ctx| transfers::accept(c, ctx, &second.transfer_id, "lz1"))
        .unwrap();

    // The restored node forgot the January letter. Its number is lower
    // than December's but its year later: believed and released.
    let again = restore("pingliang", &ny_backup, restored.now_ms);
    let report = adopt(&again, &lanzhou);
    assert!(report.refused.is_empty(), "{report:?}");
    assert_eq!(report.transfers_released, 1, "{report:?}");
    assert!(adopt(&again, &xian).finished);
    assert_eq!(transfer_state(&again, &second.transfer_id), "released");
    assert_eq!(
        again
            .store
            .with(|c| crate::letters::last_issued(c))
            .unwrap(),
        LetterPlace {
            year: year + 1,
            number: 1
        }
    );
    again.deliver(&lanzhou);
    assert_eq!(
        super::transfer_tests::owners(&[&again, &lanzhou, &xian], &member),
        vec!["lanzhou".to_string()]
    );
    // The next letter is numbered past the one the peer reported.
    let other = again
        .tx(|c, ctx| members::member_add(c, ctx, &super::tests::member_fields("李四")))
        .unwrap();
    let next = again
        .tx(|c, ctx| transfers::start(c, ctx, &other.member_id, "xian", 0, "定居", rules))
        .unwrap();
    assert_eq!(
        LetterNo::parse(&next.letter_no).unwrap().place,
        LetterPlace {
            year: year + 1,
            number: 2
        }
    );
}

#[test]
fn the_newest_of_a_members_letters_is_the_later_years_whatever_the_numbers() {
    let (pingliang, lanzhou, _xian, member) = federation();
    pingliang.deliver(&lanzhou);
    let (_dir, path) = backup(&pingliang);
    let restored = restore("pingliang", &path, pingliang.now_ms);
    let year: i32 = day(0)[..4].parse().unwrap();
    let held = |id: &str, letter: String, state: &str| pb::HeldTransfer {
        letter_no: letter,
        ..held_transfer(&member, id, 0, state)
    };
    let batches = vec![pb::HoldingsBatch {
        transfers: vec![
            held("t-december", format!("PINGLIANG-{year}-000009"), "pending"),
            held(
                "t-january",
                format!("PINGLIANG-{}-000003", year + 1),
                "accepted",
            ),
        ],
        last: true,
        ..Default::default()
    }];
    let report = restored
        .store
        .with(|c| reconcile::adopt(c, &restored.ctx(), &lanzhou.id, &batches))
        .unwrap();
    assert_eq!(
        (report.transfers_released, report.transfers_aborted),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(transfer_state(&restored, "t-january"), "released");
    assert_eq!(transfer_state(&restored, "t-december"), "cancelled");
}

/// A restored owner that released a member since its backup gets a later
/// owner's share and then its withdrawal before it learns of the release:
/// both are held, and once the transfer rule makes the member a tombstone
/// they apply in the order they came, so no copy is left that its owner
/// withdrew.
#[test]
fn a_later_owners_unshare_is_held_at_a_restored_owner_and_applied_after_its_share() {
    use liaison_proto::v1::EventKind;
    use prost::Message;
    let (pingliang, lanzhou, xian, member) = federation();
    // Xi'an coordinates an agreement with Pingliang as host.
    let basis = super::tests::sign_agreement(&xian, &pingliang, "XA-PL-2026-01");
    let (_dir, path) = backup(&pingliang);
    let restored = restore("pingliang", &path, pingliang.now_ms);
    // Since the backup Pingliang released the member to Lanzhou (2), and
    // Lanzhou to Xi'an (3), which shared it with Pingliang and withdrew it.
    let section = pb::HomeSection {
        member_id: member.clone(),
        version: Some(pb::Version {
            generation: 3,
            counter: 1,
        }),
        owner: "xian".into(),
        name: "张三".into(),
        basis,
        ..Default::default()
    };
    let unshare = pb::Unshare {
        member_id: member.clone(),
        version: Some(pb::Version {
            generation: 3,
            counter: 2,
        }),
        reason: "returned".into(),
        ..Default::default()
    };
    let events: Vec<pb::Event> = [
        (EventKind::HomeSection, section.encode_to_vec()),
        (EventKind::Unshare, unshare.encode_to_vec()),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (kind, payload))| pb::Event {
        seq: i as u64 + 1,
        kind: kind as i32,
        entity: member.clone(),
        payload,
        created_at_ms: 0,
    })
    .collect();
    // Xi'an adopted first (a peer's log applies only after that), Lanzhou
    // still awaited.
    assert!(!adopt(&restored, &xian).finished);
    took_holdings_under(&restored, &xian, "xian-log");
    let report = restored.apply(&xian.id, "xian-log", &events);
    assert_eq!((report.applied, report.quarantined), (0, 2), "{report:?}");
    let held = restored
        .tx(|c, _| crate::quarantine::list(c, false))
        .unwrap();
    assert!(
        held.iter()
            .all(|q| q.reason.contains(crate::hosting::HELD_UNTIL_RELEASED)),
        "{held:?}"
    );
    // Lanzhou's holdings finish the release Pingliang forgot.
    adopt_transfers(
        &restored,
        &lanzhou,
        vec![pb::HeldTransfer {
            generation: 2,
            ..held_transfer(&member, "t-done", 3, "completed")
        }],
    );
    assert_eq!(
        owner_and_generation(&restored, &member),
        ("lanzhou".into(), 2)
    );
    let entries = restored
        .tx(|c, _| crate::quarantine::list(c, true))
        .unwrap();
    assert!(entries.iter().all(|q| q.state == "applied"), "{entries:?}");
    assert!(
        copy_at(&restored, &member).is_none(),
        "Xi'an withdrew its share"
    );
}

/// An offer is judged stale at a restored receiver by the generation its
/// record names, plus one (the release's); one that names the last
/// generation there is, is never stale, and is not the end of the node.
#[test]
fn an_offer_of_the_last_possible_generation_at_a_restored_receiver_is_not_stale() {
    use liaison_proto::v1::EventKind;
    use prost::Message;
    let (pingliang, lanzhou, _xian, member) = federation();
    // A tombstone here: the member left on paper.
    pingliang
        .tx(|c, ctx| {
            transfers::out_on_paper(c, ctx, &member, "110105", "京组转字2026-17", "定居北京")
        })
        .unwrap();
    let (_dir, path) = backup(&pingliang);
    let restored = restore("pingliang", &path, pingliang.now_ms);
    let offer = pb::TransferOffer {
        transfer_id: "0190a000-0000-7000-8000-00000000bbbb".into(),
        letter_no: "LANZHOU-2026-000001".into(),
        sender: "lanzhou".into(),
        receiver: "pingliang".into(),
        issued_on: day(0),
        expires_on: day(30),
        valid_days: 30,
        reason: "返回平凉".into(),
        record: Some(pb::MemberRecord {
            member_id: member.clone(),
            version: Some(pb::Version {
                generation: u64::MAX,
                counter: 1,
            }),
            name: "张三".into(),
            ..Default::default()
        }),
        extension: false,
    };
    adopt(&restored, &lanzhou);
    took_holdings_under(&restored, &lanzhou, "lanzhou-log");
    let report = restored.apply(
        &lanzhou.id,
        "lanzhou-log",
        &[pb::Event {
            seq: 1,
            kind: EventKind::TransferOffer as i32,
            entity: offer.transfer_id.clone(),
            payload: offer.encode_to_vec(),
            created_at_ms: 0,
        }],
    );
    assert_eq!((report.applied, report.quarantined), (1, 0), "{report:?}");
    assert_eq!(transfer_state(&restored, &offer.transfer_id), "pending");
}

/// Notes at `node` that `peer`'s holdings were taken under `log_id`, the
/// made-up log id a test's hand-written events come under (adopting took
/// them under the peer's real one).
fn took_holdings_under(node: &TestNode, peer: &TestNode, log_id: &str) {
    node.tx(|c, ctx| crate::epoch::note_log_taken(c, peer.id.as_str(), log_id, ctx.now_ms))
        .unwrap();
}

/// Whether `node`'s database in place would refuse the backup at `path`
/// as a branch it left.
fn left_branch(node: &TestNode, path: &std::path::Path) -> Option<reconcile::LeftBranch> {
    let backup = rusqlite::Connection::open(path).unwrap();
    node.store
        .with(|c| reconcile::left_branch(c, &backup))
        .unwrap()
}

/// Backups B1 and B2 of one log; restored from B1, the node has left
/// what B2 holds past B1, while B1 and every backup since stay on its
/// branch, also after a second restore.
#[test]
fn a_backup_of_a_branch_the_node_left_is_found_against_the_database_in_place() {
    let (pingliang, _lanzhou, _xian, member) = federation();
    let (_d1, b1) = backup(&pingliang);
    update_phone(&pingliang, &member, "13900000001").unwrap();
    let (_d2, b2) = backup(&pingliang);
    // Never restored: any backup of the node is fine.
    assert_eq!(left_branch(&pingliang, &b1), None);
    assert_eq!(left_branch(&pingliang, &b2), None);

    let restored = restore("pingliang", &b1, pingliang.now_ms);
    let left = left_branch(&restored, &b2).expect("B2 is past the branch point");
    assert_eq!(left.log_id, pingliang.store.log_id().unwrap());
    assert!(left.kept_to.is_some_and(|kept| kept < left.seq), "{left:?}");
    assert!(left.restored_backup_at_ms > 0);
    assert_eq!(left_branch(&restored, &b1), None, "the branch point itself");

    // A backup under the new log, and a restore from it: B2 is still left.
    let (_d3, b3) = backup(&restored);
    assert_eq!(left_branch(&restored, &b3), None);
    let again = restore("pingliang", &b3, restored.now_ms);
    assert!(left_branch(&again, &b2).is_some());
    assert_eq!(left_branch(&again, &b1), None);
    assert_eq!(left_branch(&again, &b3), None);

    // Restored from B1 once more, the node has left the branch of B3: its
    // log is not one the database in place descends from.
    let (_d4, b4) = backup(&again);
    let d5 = tempfile::tempdir().unwrap();
    let b1_again = d5.path().join("backup.db");
    std::fs::copy(&b1, &b1_again).unwrap();
    let back = restore("pingliang", &b1_again, again.now_ms);
    let left = left_branch(&back, &b4).expect("B4's log is on the branch left");
    assert_eq!(left.kept_to, None);
    assert_eq!(left_branch(&back, &b1), None);
}

/// Restored from B1, Pingliang adopted Lanzhou and its `EpochComplete`
/// told Lanzhou how far the branch kept the old log. Its disk lost, it is
/// restored from B2 (later on the old log, a branch it left): with no
/// database in place to compare, Lanzhou refuses its holdings, saying
/// which backups would do, and the restored node shows the refusal. B1
/// again, or a backup taken since the first restore, is answered.
#[test]
fn a_peer_refuses_its_holdings_to_a_backup_of_a_branch_the_node_left() {
    let (pingliang, lanzhou, _xian, member) = federation();
    let (_d1, b1) = backup(&pingliang);
    update_phone(&pingliang, &member, "13900000001").unwrap();
    let (_d2, b2) = backup(&pingliang);
    let old_log = pingliang.store.log_id().unwrap();

    let restored = restore("pingliang", &b1, pingliang.now_ms);
    adopt(&restored, &lanzhou);
    let branch = restored.store.with(|c| crate::epoch::branch(c)).unwrap();
    assert_eq!(branch.len(), 1);
    assert_eq!(branch[0].log_id, old_log);
    restored.deliver(&lanzhou);
    let (_d3, b3) = backup(&restored);

    let holdings = |path: &std::path::Path| {
        let backup = rusqlite::Connection::open(path).unwrap();
        let branch = reconcile::branch_after_restore(&backup).unwrap();
        lanzhou
            .store
            .with(|c| reconcile::holdings_for(c, &lanzhou.ctx(), &restored.id, &branch))
    };
    let Err(Error::Refused(Refusal::Conflict(why))) = holdings(&b2) else {
        panic!("a backup of the left branch is answered");
    };
    assert!(
        why.contains(&old_log) && why.contains("restore pingliang again"),
        "{why}"
    );
    assert!(holdings(&b1).is_ok(), "the branch point itself");
    assert!(holdings(&b3).is_ok(), "a backup taken since the restore");

    // The restored node, refused, keeps waiting and says why.
    let lost_disk = tempfile::tempdir().unwrap();
    let b2_copy = lost_disk.path().join("backup.db");
    std::fs::copy(&b2, &b2_copy).unwrap();
    let again = restore("pingliang", &b2_copy, restored.now_ms);
    let Err(Error::Refused(refusal)) = holdings(&b2_copy) else {
        panic!("refused");
    };
    let ctx = again.ctx();
    again
        .store
        .with(|c| reconcile::note_holdings_refused(c, &ctx, &lanzhou.id, &refusal.to_string()))
        .unwrap();
    let status = again
        .store
        .with(|c| reconcile::status(c, liaison_types::time::DEFAULT_ZONE))
        .unwrap();
    assert!(status.reconciling);
    let waiting = status.peers.iter().find(|p| p.peer == "lanzhou").unwrap();
    assert_eq!(waiting.state, "waiting");
    assert!(
        waiting.detail.contains("refused its holdings"),
        "{waiting:?}"
    );
}

/// The floor of a host's section (`meta`, set by a restore) that does not
/// parse is a damaged database: refused with what to do, never read as no
/// floor (the next write would reuse a version a peer holds).
#[test]
fn a_damaged_host_section_floor_is_refused_not_read_as_none() {
    let (pingliang, _lanzhou, _xian, member) = federation();
    let floor = |node: &TestNode| node.tx(|c, _| members::host_section_floor(c, &member));
    assert_eq!(floor(&pingliang).unwrap(), None);
    pingliang
        .tx(|c, _| {
            members::raise_host_section_floor(
                c,
                &member,
                pb::Version {
                    generation: 2,
                    counter: 3,
                },
            )
        })
        .unwrap();
    assert_eq!(
        floor(&pingliang).unwrap(),
        Some(pb::Version {
            generation: 2,
            counter: 3
        })
    );
    pingliang
        .tx(|c, _| crate::store::set_meta(c, &format!("host_section_floor/{member}"), "2.x"))
        .unwrap();
    let damaged = floor(&pingliang).unwrap_err().to_string();
    assert!(
        damaged.contains("damaged") && damaged.contains("2.x") && damaged.contains("backup"),
        "{damaged}"
    );
}

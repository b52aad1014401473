//! Events a peer may not send (docs/replication.md, Authority checks): each
//! is quarantined with its reason and audited, and changes nothing; the
//! late events an honest peer does send are applied as the no-ops they
//! are. A transfer decision a peer may not send stops the stream instead.

use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use prost::Message;

use super::apply::apply_batch;
use super::outcome::{ApplyReport, BatchError};
use super::tests::{day, federation, owner_and_generation, sign_agreement, TestNode};
use super::{members, transfers};

/// An event of `origin`'s log at `seq`.
fn event(seq: u64, kind: EventKind, entity: &str, payload: Vec<u8>) -> pb::Event {
    pb::Event {
        seq,
        kind: kind as i32,
        entity: entity.into(),
        payload,
        created_at_ms: 0,
    }
}

fn unshare(member: &str, generation: u64) -> Vec<u8> {
    pb::Unshare {
        member_id: member.into(),
        version: Some(pb::Version {
            generation,
            counter: 1,
        }),
        reason: "returned".into(),
        ..Default::default()
    }
    .encode_to_vec()
}

fn moved(member: &str, generation: u64, new_owner: &str) -> Vec<u8> {
    pb::Moved {
        member_id: member.into(),
        generation,
        new_owner: new_owner.into(),
        transfer_id: "t-forged".into(),
        letter_no: String::new(),
    }
    .encode_to_vec()
}

/// The reasons `node` holds events for, in order.
fn quarantine_reasons(node: &TestNode) -> Vec<String> {
    node.tx(|c, _| crate::quarantine::list(c, false))
        .unwrap()
        .into_iter()
        .map(|q| q.reason)
        .collect()
}

/// How many quarantine entries `node`'s audit log holds from `peer`.
fn audited_quarantines(node: &TestNode, peer: &str) -> usize {
    node.store
        .with(|c| crate::store::audit::list(c, 0, 1_000))
        .unwrap()
        .iter()
        .filter(|e| e.action == "replication.quarantine" && e.actor == format!("peer:{peer}"))
        .count()
}

fn copy_owner(node: &TestNode, member: &str) -> Option<(String, u64)> {
    node.store
        .with(|c| members::load_copy(c, member))
        .unwrap()
        .map(|c| (c.owner.clone(), c.version.unwrap_or_default().generation))
}

/// Xi'an coordinates an agreement with Lanzhou too, and shares `member` with
/// Lanzhou as its owner at `generation`: as if Pingliang had released it
/// (through other nodes) since. Returns the event's report.
fn xian_shares_with_lanzhou(
    xian: &TestNode,
    lanzhou: &TestNode,
    member: &str,
    generation: u64,
) -> ApplyReport {
    xian.add_peer("lanzhou", &["6201"]);
    lanzhou.add_peer("xian", &[]);
    let basis = sign_agreement(xian, lanzhou, "XA-LZ-2026-01");
    let section = pb::HomeSection {
        member_id: member.into(),
        version: Some(pb::Version {
            generation,
            counter: 1,
        }),
        owner: "xian".into(),
        name: "张三".into(),
        basis,
        ..Default::default()
    };
    lanzhou.apply(
        &xian.id,
        "xian-log-2",
        &[event(
            1,
            EventKind::HomeSection,
            member,
            section.encode_to_vec(),
        )],
    )
}

#[test]
fn an_unshare_of_a_member_the_receiver_owns_is_quarantined_and_audited() {
    let (pingliang, lanzhou, _xian, member) = federation();
    let report = pingliang.apply(
        &lanzhou.id,
        "lanzhou-log",
        &[event(1, EventKind::Unshare, &member, unshare(&member, 1))],
    );
    assert_eq!(
        (report.applied, report.quarantined, report.cursor),
        (0, 1, 1),
        "{report:?}"
    );
    let reasons = quarantine_reasons(&pingliang);
    assert!(
        reasons[0].contains("may not unshare") && reasons[0].contains("this node owns it"),
        "{reasons:?}"
    );
    assert_eq!(audited_quarantines(&pingliang, "lanzhou"), 1);
    assert_eq!(
        owner_and_generation(&pingliang, &member),
        ("pingliang".into(), 1)
    );
}

#[test]
fn an_unshare_from_another_than_the_owner_of_the_copy_is_quarantined() {
    let (pingliang, lanzhou, xian, member) = federation();
    pingliang.deliver(&lanzhou);
    let report = lanzhou.apply(
        &xian.id,
        "xian-log",
        &[event(1, EventKind::Unshare, &member, unshare(&member, 1))],
    );
    assert_eq!((report.applied, report.quarantined), (0, 1), "{report:?}");
    assert_eq!(copy_owner(&lanzhou, &member), Some(("pingliang".into(), 1)));
    assert_eq!(audited_quarantines(&lanzhou, "xian"), 1);
}

#[test]
fn a_late_unshare_from_an_earlier_owner_changes_nothing_and_is_applied() {
    let (pingliang, lanzhou, xian, member) = federation();
    pingliang.deliver(&lanzhou);
    let shared = xian_shares_with_lanzhou(&xian, &lanzhou, &member, 2);
    assert_eq!(shared.applied, 1, "{shared:?}");
    assert_eq!(copy_owner(&lanzhou, &member), Some(("xian".into(), 2)));
    // Pingliang's withdrawal of its generation-1 share crossed the later
    // owner's share: it is about a copy that is gone, and honest.
    let report = lanzhou.apply(
        &pingliang.id,
        "pingliang-log-2",
        &[event(1, EventKind::Unshare, &member, unshare(&member, 1))],
    );
    assert_eq!((report.applied, report.quarantined), (1, 0), "{report:?}");
    assert_eq!(copy_owner(&lanzhou, &member), Some(("xian".into(), 2)));
    // At the generation of Xi'an's copy it can never be valid.
    let report = lanzhou.apply(
        &pingliang.id,
        "pingliang-log-2",
        &[event(2, EventKind::Unshare, &member, unshare(&member, 2))],
    );
    assert_eq!((report.applied, report.quarantined), (0, 1), "{report:?}");
    assert_eq!(copy_owner(&lanzhou, &member), Some(("xian".into(), 2)));
}

#[test]
fn events_about_another_member_than_their_entity_or_without_a_version_are_quarantined() {
    let (pingliang, lanzhou, _xian, member) = federation();
    pingliang.deliver(&lanzhou);
    let other = pingliang.add_away("李四", -30);
    let contact = pb::ContactEvent {
        contact_id: "c-1".into(),
        member_id: member.clone(),
        author: "lanzhou".into(),
        at: format!("{}T00:00:00", day(-2)),
        channel: "phone".into(),
        ..Default::default()
    };
    let versionless = pb::Unshare {
        member_id: member.clone(),
        version: None,
        reason: String::new(),
        ..Default::default()
    };
    let events = [
        // The owner's unshare of one member, under the entity of another.
        event(1, EventKind::Unshare, &other, unshare(&member, 1)),
        event(2, EventKind::Unshare, &member, versionless.encode_to_vec()),
    ];
    let report = lanzhou.apply(&pingliang.id, "pingliang-log-2", &events);
    assert_eq!((report.applied, report.quarantined), (0, 2), "{report:?}");
    assert!(copy_owner(&lanzhou, &member).is_some(), "the copy stays");
    let report = pingliang.apply(
        &lanzhou.id,
        "lanzhou-log",
        &[event(
            1,
            EventKind::Contact,
            &other,
            contact.encode_to_vec(),
        )],
    );
    assert_eq!((report.applied, report.quarantined), (0, 1), "{report:?}");
    let reasons = [quarantine_reasons(&lanzhou), quarantine_reasons(&pingliang)].concat();
    assert!(
        reasons[0].contains("another member than the event")
            && reasons[1].contains("without a version")
            && reasons[2].contains("another member than the event"),
        "{reasons:?}"
    );
    assert_eq!(pingliang.view(&member).unwrap().last_contact, "");
}

#[test]
fn a_moved_contradicting_what_the_receiver_knows_is_quarantined() {
    let (pingliang, lanzhou, xian, member) = federation();
    // Pingliang owns the member at generation 1: nobody else can own it
    // at 1 or later, whoever says so.
    let report = pingliang.apply(
        &xian.id,
        "xian-log",
        &[
            event(1, EventKind::Moved, &member, moved(&member, 2, "xian")),
            event(2, EventKind::Moved, &member, moved(&member, 1, "xian")),
        ],
    );
    assert_eq!((report.applied, report.quarantined), (0, 2), "{report:?}");
    assert_eq!(audited_quarantines(&pingliang, "xian"), 2);
    // Lanzhou holds Xi'an's copy at generation 3.
    pingliang.deliver(&lanzhou);
    xian_shares_with_lanzhou(&xian, &lanzhou, &member, 3);
    assert_eq!(copy_owner(&lanzhou, &member), Some(("xian".into(), 3)));
    let report = lanzhou.apply(
        &pingliang.id,
        "pingliang-log-2",
        &[
            // Pingliang released it at 2 long ago: late, and honest.
            event(1, EventKind::Moved, &member, moved(&member, 2, "tianshui")),
            // Another owner than Xi'an at 3: never.
            event(2, EventKind::Moved, &member, moved(&member, 3, "tianshui")),
        ],
    );
    assert_eq!((report.applied, report.quarantined), (1, 1), "{report:?}");
    assert_eq!(copy_owner(&lanzhou, &member), Some(("xian".into(), 3)));
}

#[test]
fn an_offer_under_another_transfers_id_is_quarantined_and_changes_nothing() {
    let (pingliang, lanzhou, xian, member) = federation();
    let t = pingliang
        .tx(|c, ctx| {
            transfers::start(
                c,
                ctx,
                &member,
                "lanzhou",
                0,
                "定居兰州",
                transfers::LetterRules {
                    valid_days_default: 30,
                    valid_days_max: 90,
                },
            )
        })
        .unwrap();
    pingliang.deliver(&lanzhou);
    let before = lanzhou
        .tx(|c, ctx| transfers::view(c, ctx, &t.transfer_id))
        .unwrap();
    assert_eq!(before.state, "pending");
    let forged = |receiver: &str| pb::TransferOffer {
        transfer_id: t.transfer_id.clone(),
        letter_no: t.letter_no.clone(),
        sender: "xian".into(),
        receiver: receiver.into(),
        issued_on: day(0),
        expires_on: day(300),
        valid_days: 300,
        reason: "伪造".into(),
        record: Some(pb::MemberRecord {
            member_id: member.clone(),
            name: "张三".into(),
            ..Default::default()
        }),
        extension: true,
    };
    // Under Pingliang's letter at Lanzhou, and under Pingliang's own
    // transfer at Pingliang.
    let at_lanzhou = lanzhou.apply(
        &xian.id,
        "xian-log",
        &[event(
            1,
            EventKind::TransferOffer,
            &t.transfer_id,
            forged("lanzhou").encode_to_vec(),
        )],
    );
    let at_pingliang = pingliang.apply(
        &xian.id,
        "xian-log",
        &[event(
            1,
            EventKind::TransferOffer,
            &t.transfer_id,
            forged("pingliang").encode_to_vec(),
        )],
    );
    for report in [at_lanzhou, at_pingliang] {
        assert_eq!((report.applied, report.quarantined), (0, 1), "{report:?}");
    }
    let after = lanzhou
        .tx(|c, ctx| transfers::view(c, ctx, &t.transfer_id))
        .unwrap();
    assert_eq!(after.expires_on, before.expires_on);
    assert_eq!(after.sender, "pingliang");
    assert!(
        quarantine_reasons(&lanzhou)[0].contains("a transfer of member"),
        "{:?}",
        quarantine_reasons(&lanzhou)
    );
    assert!(
        quarantine_reasons(&pingliang)[0].contains("this node's own transfer"),
        "{:?}",
        quarantine_reasons(&pingliang)
    );
}

#[test]
fn a_release_under_another_transfers_id_stops_the_stream_and_installs_nothing() {
    let (pingliang, lanzhou, xian, member) = federation();
    let t = pingliang
        .tx(|c, ctx| {
            transfers::start(
                c,
                ctx,
                &member,
                "lanzhou",
                0,
                "定居兰州",
                transfers::LetterRules {
                    valid_days_default: 30,
                    valid_days_max: 90,
                },
            )
        })
        .unwrap();
    pingliang.deliver(&lanzhou);
    let release = |sender: &str, member_id: &str| pb::TransferRelease {
        transfer_id: t.transfer_id.clone(),
        letter_no: t.letter_no.clone(),
        sender: sender.into(),
        receiver: "lanzhou".into(),
        generation: 2,
        record: Some(pb::MemberRecord {
            member_id: member_id.into(),
            name: "张三".into(),
            ..Default::default()
        }),
        released_on: day(0),
        earlier_owners: Vec::new(),
    };
    // From another sender than the letter's; from its sender, of another
    // member than the letter's.
    for (origin, payload) in [
        (&xian, release("xian", &member)),
        (
            &pingliang,
            release("pingliang", "0190a000-0000-7000-8000-000000000001"),
        ),
    ] {
        let stopped = lanzhou.store.with(|c| {
            Ok(apply_batch(
                c,
                &lanzhou.ctx(),
                &origin.id,
                "some-log",
                &[event(
                    1,
                    EventKind::TransferRelease,
                    &t.transfer_id,
                    payload.encode_to_vec(),
                )],
            ))
        });
        match stopped.unwrap() {
            Err(BatchError::Stopped { reason, .. }) => {
                assert!(reason.contains("which is a transfer of member"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(lanzhou
        .store
        .with(|c| members::load_home(c, &member))
        .unwrap()
        .is_none());
    assert_eq!(
        lanzhou
            .tx(|c, ctx| transfers::view(c, ctx, &t.transfer_id))
            .unwrap()
            .state,
        "pending"
    );
}

#[test]
fn a_held_reminder_from_another_than_the_inflow_party_or_unfounded_is_quarantined() {
    let (pingliang, lanzhou, xian, _member) = federation();
    let agreement: String = pingliang
        .store
        .with(|c| Ok(c.query_row("SELECT agreement_id FROM agreements", [], |r| r.get(0))?))
        .unwrap();
    let held = |agreement_id: &str| pb::AgreementVote {
        agreement_id: agreement_id.into(),
        vote: "held".into(),
        answers_version: 1,
        ..Default::default()
    };
    // Lanzhou, the inflow party, reminds Pingliang of an agreement it
    // holds: nothing to do, and honest.
    let report = pingliang.apply(
        &lanzhou.id,
        "lanzhou-log-2",
        &[event(
            1,
            EventKind::AgreementVote,
            &agreement,
            held(&agreement).encode_to_vec(),
        )],
    );
    assert_eq!((report.applied, report.quarantined), (1, 0), "{report:?}");
    let unknown = "0190a000-0000-7000-8000-00000000aaaa";
    let report = pingliang.apply(
        &xian.id,
        "xian-log",
        &[
            // Xi'an is no party of it.
            event(
                1,
                EventKind::AgreementVote,
                &agreement,
                held(&agreement).encode_to_vec(),
            ),
            // An agreement Pingliang never had, with nothing to take back.
            event(
                2,
                EventKind::AgreementVote,
                unknown,
                held(unknown).encode_to_vec(),
            ),
        ],
    );
    assert_eq!((report.applied, report.quarantined), (0, 2), "{report:?}");
    let reasons = quarantine_reasons(&pingliang);
    assert!(
        reasons[0].contains("is not the inflow party") && reasons[1].contains("cannot take back"),
        "{reasons:?}"
    );
    assert_eq!(audited_quarantines(&pingliang, "xian"), 2);
}

#[test]
fn a_counter_proposal_answering_the_last_possible_version_is_quarantined() {
    let (pingliang, lanzhou, _xian, _member) = federation();
    let agreement: String = pingliang
        .store
        .with(|c| Ok(c.query_row("SELECT agreement_id FROM agreements", [], |r| r.get(0))?))
        .unwrap();
    let counter = pb::AgreementVote {
        agreement_id: agreement.clone(),
        vote: "counter".into(),
        answers_version: u64::MAX,
        terms: Some(pb::AgreementTerms {
            outflow_node: "pingliang".into(),
            inflow_node: "lanzhou".into(),
            ..super::tests::terms("PL-LZ-2026-01")
        }),
        signature: Some(pb::AgreementSignature {
            signer: "lanzhou".into(),
            ..Default::default()
        }),
        answered: None,
    };
    let report = pingliang.apply(
        &lanzhou.id,
        "lanzhou-log-2",
        &[event(
            1,
            EventKind::AgreementVote,
            &agreement,
            counter.encode_to_vec(),
        )],
    );
    assert_eq!((report.applied, report.quarantined), (0, 1), "{report:?}");
    let reasons = quarantine_reasons(&pingliang);
    assert!(reasons[0].contains("has no next version"), "{reasons:?}");
}

/// A home section under an agreement the host does not know at all is
/// quarantined; at a host restored from a backup (it has past log ids),
/// its reason says the host may have forgotten the agreement
/// (docs/restore.md, What is lost), and nowhere else.
#[test]
fn an_event_about_an_unknown_agreement_is_marked_only_at_a_restored_node() {
    let (_pingliang, lanzhou, xian, _member) = federation();
    xian.add_peer("lanzhou", &["6201"]);
    lanzhou.add_peer("xian", &[]);
    let section = |seq: u64, member: &str| {
        event(
            seq,
            EventKind::HomeSection,
            member,
            pb::HomeSection {
                member_id: member.into(),
                version: Some(pb::Version {
                    generation: 1,
                    counter: 1,
                }),
                owner: "xian".into(),
                name: "张三".into(),
                basis: "01900000-0000-7000-8000-000000000001".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        )
    };
    let member_a = "01900000-0000-7000-8000-00000000000a";
    let member_b = "01900000-0000-7000-8000-00000000000b";
    let report = lanzhou.apply(&xian.id, "xian-log", &[section(1, member_a)]);
    assert_eq!((report.applied, report.quarantined), (0, 1), "{report:?}");
    let reasons = quarantine_reasons(&lanzhou);
    assert!(reasons[0].contains("which is no agreement between xian and this node"));
    assert!(
        !reasons[0].contains(crate::outcome::FORGOTTEN_AT_RESTORE),
        "{reasons:?}"
    );
    lanzhou
        .tx(|c, _| {
            c.execute(
                "INSERT INTO past_log_ids (log_id, lineage) VALUES ('lanzhou-log-0', 1)",
                [],
            )?;
            // ... and having taken Xi'an's holdings under this log since.
            c.execute(
                "INSERT INTO peer_logs_taken (peer, log_id, taken_at_ms) VALUES ('xian', 'xian-log', 0)",
                [],
            )?;
            Ok(())
        })
        .expect("mark lanzhou restored");
    let report = lanzhou.apply(&xian.id, "xian-log", &[section(2, member_b)]);
    assert_eq!((report.applied, report.quarantined), (0, 1), "{report:?}");
    let reasons = quarantine_reasons(&lanzhou);
    assert!(
        reasons[1].ends_with(crate::outcome::FORGOTTEN_AT_RESTORE),
        "{reasons:?}"
    );
}

fn share_wanted(member: &str, basis: &str) -> Vec<u8> {
    pb::ShareWanted {
        member_id: member.into(),
        basis: basis.into(),
        version: Some(pb::Version {
            generation: 1,
            counter: 1,
        }),
    }
    .encode_to_vec()
}

/// The agreement Pingliang coordinates with Lanzhou in [`federation`].
fn pingliang_lanzhou_agreement(pingliang: &TestNode) -> String {
    pingliang
        .store
        .with(|c| {
            Ok(c.query_row(
                "SELECT agreement_id FROM agreements WHERE inflow_node = 'lanzhou'",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap()
}

#[test]
fn a_share_wanted_from_another_than_the_agreements_host_is_quarantined() {
    let (pingliang, _lanzhou, xian, member) = federation();
    let basis = pingliang_lanzhou_agreement(&pingliang);
    let report = pingliang.apply(
        &xian.id,
        "xian-log",
        &[event(
            1,
            EventKind::ShareWanted,
            &member,
            share_wanted(&member, &basis),
        )],
    );
    assert_eq!((report.applied, report.quarantined), (0, 1), "{report:?}");
    assert_eq!(audited_quarantines(&pingliang, "xian"), 1);
    assert!(quarantine_reasons(&pingliang)[0]
        .contains("not an agreement of this node's with xian as the host"));
}

#[test]
fn a_share_wanted_from_the_host_shares_the_member_with_it_again() {
    let (pingliang, lanzhou, _xian, member) = federation();
    let basis = pingliang_lanzhou_agreement(&pingliang);
    pingliang.deliver(&lanzhou);
    assert_eq!(copy_owner(&lanzhou, &member), Some(("pingliang".into(), 1)));
    // The host lost its copy (as when a later owner's copy kept this one
    // out and went with that owner's restore).
    lanzhou.tx(|c, _| members::delete_copy(c, &member)).unwrap();
    let report = pingliang.apply(
        &lanzhou.id,
        "lanzhou-log",
        &[event(
            1,
            EventKind::ShareWanted,
            &member,
            share_wanted(&member, &basis),
        )],
    );
    assert_eq!((report.applied, report.quarantined), (1, 0), "{report:?}");
    pingliang.deliver(&lanzhou);
    assert_eq!(copy_owner(&lanzhou, &member), Some(("pingliang".into(), 1)));
    // Asked about a member it does not own, the owner shares nothing.
    let report = pingliang.apply(
        &lanzhou.id,
        "lanzhou-log",
        &[event(
            2,
            EventKind::ShareWanted,
            "m-unknown",
            share_wanted("m-unknown", &basis),
        )],
    );
    assert_eq!((report.applied, report.quarantined), (1, 0), "{report:?}");
    let report = pingliang.deliver(&lanzhou);
    assert_eq!(report.applied, 0, "nothing was shared: {report:?}");
}

//! Transfers driven by hand between in-memory nodes (docs/transfers.md).

use liaison_proto::v1 as pb;

use super::members;
use super::tests::{china_midnight_ms, day, federation, TestNode};
use super::transfers::{self, LetterRules};
use crate::{Error, Refusal};

const RULES: LetterRules = LetterRules {
    valid_days_default: 30,
    valid_days_max: 90,
};

fn start(from: &TestNode, member: &str, to: &str) -> pb::TransferView {
    from.tx(|c, ctx| transfers::start(c, ctx, member, to, 0, "定居兰州", RULES))
        .unwrap()
}

fn state(node: &TestNode, id: &str) -> String {
    node.tx(|c, ctx| transfers::view(c, ctx, id)).unwrap().state
}

/// The invariant: at most one of `nodes` considers itself the member's owner.
pub(super) fn owners(nodes: &[&TestNode], member: &str) -> Vec<String> {
    nodes
        .iter()
        .filter(|n| {
            n.store
                .with(|c| members::load_home(c, member))
                .unwrap()
                .is_some_and(|m| m.owner == n.id.as_str())
        })
        .map(|n| n.id.to_string())
        .collect()
}

fn assert_single_owner(nodes: &[&TestNode], member: &str) {
    let owners = owners(nodes, member);
    assert!(owners.len() <= 1, "two owners of {member}: {owners:?}");
}

#[test]
fn a_transfer_to_the_members_host_completes_once_and_merges_the_host_section() {
    let (pingliang, lanzhou, xian, member) = federation();
    lanzhou.add_branch("lz1");
    lanzhou
        .tx(|c, ctx| {
            members::host_section_set(
                c,
                ctx,
                &pb::HostSectionRequest {
                    member_id: member.clone(),
                    employer: Some("兰州建工".into()),
                    ..Default::default()
                },
            )
        })
        .unwrap();
    lanzhou.deliver(&pingliang);
    let t = start(&pingliang, &member, "lanzhou");
    assert_eq!(t.state, "offered");
    assert!(t.letter_no.starts_with("PINGLIANG-"), "{}", t.letter_no);
    let frozen = pingliang.tx(|c, ctx| {
        members::member_update(
            c,
            ctx,
            &member,
            &pb::MemberFields {
                phone: Some("13700000000".into()),
                ..Default::default()
            },
        )
    });
    assert!(
        matches!(frozen, Err(Error::Refused(Refusal::Conflict(ref m))) if m.contains(&t.transfer_id)),
        "{frozen:?}"
    );
    pingliang.deliver(&lanzhou);
    assert_eq!(state(&lanzhou, &t.transfer_id), "pending");
    lanzhou
        .tx(|c, ctx| transfers::accept(c, ctx, &t.transfer_id, "lz1"))
        .unwrap();
    assert_single_owner(&[&pingliang, &lanzhou, &xian], &member);
    lanzhou.deliver(&pingliang); // accept → release
    assert_eq!(state(&pingliang, &t.transfer_id), "released");
    assert_eq!(
        owners(&[&pingliang, &lanzhou, &xian], &member),
        Vec::<String>::new(),
        "in flight: nobody owns it"
    );
    pingliang.deliver(&lanzhou); // release
    assert_eq!(
        owners(&[&pingliang, &lanzhou, &xian], &member),
        vec!["lanzhou".to_string()]
    );
    let owned = lanzhou.view(&member).unwrap();
    assert!(owned.owned);
    assert_eq!(owned.national_id, "620801199005170014");
    assert_eq!(owned.home_branch, "lz1");
    assert_eq!(owned.generation, 2);
    assert_eq!(
        owned.host_sections[0].employer, "兰州建工",
        "the host section merged"
    );
    lanzhou.deliver(&pingliang); // receipt
    assert_eq!(state(&pingliang, &t.transfer_id), "completed");
    let tomb = pingliang.view(&member).unwrap();
    assert_eq!(tomb.moved.as_ref().unwrap().to_node, "lanzhou");
    assert!(tomb.name.is_empty(), "the tombstone keeps no personal data");
    // Everything again: nothing changes.
    for _ in 0..2 {
        pingliang.deliver(&lanzhou);
        lanzhou.deliver(&pingliang);
    }
    assert_eq!(
        owners(&[&pingliang, &lanzhou, &xian], &member),
        vec!["lanzhou".to_string()]
    );
}

#[test]
fn reject_cancel_and_expiry_unfreeze_and_purge_the_offer() {
    let (mut pingliang, lanzhou, _xian, member) = federation();
    lanzhou.add_branch("lz1");
    // Reject, with a reason code.
    let t = start(&pingliang, &member, "lanzhou");
    pingliang.deliver(&lanzhou);
    let no_code = lanzhou.tx(|c, ctx| transfers::reject(c, ctx, &t.transfer_id, "", "不收"));
    assert!(no_code.is_err(), "a reason code is required");
    lanzhou
        .tx(|c, ctx| transfers::reject(c, ctx, &t.transfer_id, "not_our_member", ""))
        .unwrap();
    let purged: Option<Vec<u8>> = lanzhou
        .store
        .with(|c| {
            Ok(c.query_row(
                "SELECT offer FROM transfers WHERE transfer_id = ?1",
                [&t.transfer_id],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert!(
        purged.is_none(),
        "the receiver purges the offered record (with the ID number)"
    );
    lanzhou.deliver(&pingliang);
    assert_eq!(state(&pingliang, &t.transfer_id), "rejected");
    pingliang
        .tx(|c, ctx| {
            members::member_update(
                c,
                ctx,
                &member,
                &pb::MemberFields {
                    phone: Some("13700000001".into()),
                    ..Default::default()
                },
            )
        })
        .unwrap();
    // Cancel.
    let t2 = start(&pingliang, &member, "lanzhou");
    pingliang
        .tx(|c, ctx| transfers::cancel(c, ctx, &t2.transfer_id))
        .unwrap();
    pingliang.deliver(&lanzhou);
    assert_eq!(state(&lanzhou, &t2.transfer_id), "aborted");
    // Expiry on the sender's clock, then a late accept gets abort.
    let t3 = start(&pingliang, &member, "lanzhou");
    pingliang.deliver(&lanzhou);
    pingliang.now_ms += 31 * 86_400_000;
    pingliang.tx(transfers::tick).unwrap();
    assert_eq!(state(&pingliang, &t3.transfer_id), "expired");
    lanzhou
        .tx(|c, ctx| transfers::accept(c, ctx, &t3.transfer_id, "lz1"))
        .unwrap();
    lanzhou.deliver(&pingliang);
    pingliang.deliver(&lanzhou);
    assert_eq!(state(&lanzhou, &t3.transfer_id), "aborted");
    assert_eq!(
        owners(&[&pingliang, &lanzhou], &member),
        vec!["pingliang".to_string()]
    );
}

fn show(node: &TestNode, id: &str) -> pb::TransferView {
    node.tx(|c, ctx| transfers::view(c, ctx, id)).unwrap()
}

#[test]
fn past_expiry_holds_for_open_letters_only() {
    use transfers::TransferState as S;
    let expires = "2026-05-31";
    let on = |date: &str| chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
    for state in [S::Offered, S::Pending, S::Accepted] {
        assert!(
            !transfers::past_expiry(state, expires, on("2026-05-31")),
            "{state}"
        );
        assert!(
            transfers::past_expiry(state, expires, on("2026-06-01")),
            "{state}"
        );
    }
    for state in [
        S::Released,
        S::Completed,
        S::Expired,
        S::Cancelled,
        S::Rejected,
        S::Aborted,
        S::AwaitingSender,
    ] {
        assert!(
            !transfers::past_expiry(state, expires, on("2027-01-01")),
            "{state}"
        );
    }
    assert!(!transfers::past_expiry(S::Pending, "", on("2027-01-01")));
}

#[test]
fn a_receiver_past_the_printed_expiry_is_told_the_senders_calendar_decides() {
    let (pingliang, mut lanzhou, _xian, member) = federation();
    lanzhou.add_branch("lz1");
    let t = start(&pingliang, &member, "lanzhou");
    assert_eq!(t.expires_on, day(30));
    pingliang.deliver(&lanzhou);
    let decide = |node: &TestNode| {
        node.tx(crate::todo::list)
            .unwrap()
            .into_iter()
            .find(|i| i.kind == "transfer_decide")
            .unwrap()
    };

    // The last millisecond of the printed expiry date, China time: valid.
    lanzhou.now_ms = china_midnight_ms(&day(31)) - 1;
    let view = show(&lanzhou, &t.transfer_id);
    assert_eq!(view.state, "pending");
    assert!(!view.past_expiry);
    assert!(!decide(&lanzhou).detail.contains("printed expiry"));

    // The next day on the receiver's clock: flagged, nothing else changes.
    lanzhou.now_ms = china_midnight_ms(&day(31));
    lanzhou.tx(transfers::tick).unwrap();
    let view = show(&lanzhou, &t.transfer_id);
    assert_eq!(view.state, "pending");
    assert!(view.past_expiry);
    assert!(
        view.next_step.contains("pingliang decides on its calendar")
            && view.next_step.contains("--yes"),
        "{}",
        view.next_step
    );
    let listed = lanzhou
        .tx(|c, ctx| transfers::list(c, ctx, &pb::TransferListRequest::default()))
        .unwrap();
    assert!(listed[0].past_expiry);
    let item = decide(&lanzhou);
    assert_eq!(item.days_left, Some(-1));
    assert!(
        item.detail.contains("pingliang's calendar decides"),
        "{}",
        item.detail
    );

    // The sender's clock has not passed the date: the accept holds.
    let accepted = lanzhou
        .tx(|c, ctx| transfers::accept(c, ctx, &t.transfer_id, "lz1"))
        .unwrap();
    assert_eq!(accepted.state, "accepted");
    assert!(accepted.past_expiry);
    assert!(
        accepted
            .next_step
            .contains("unless its calendar had passed"),
        "{}",
        accepted.next_step
    );
    lanzhou.deliver(&pingliang);
    assert_eq!(state(&pingliang, &t.transfer_id), "released");
    pingliang.deliver(&lanzhou);
    let done = show(&lanzhou, &t.transfer_id);
    assert_eq!(done.state, "completed");
    assert!(!done.past_expiry);
    assert_eq!(
        owners(&[&pingliang, &lanzhou], &member),
        vec!["lanzhou".to_string()]
    );
}

#[test]
fn a_sender_past_the_printed_expiry_shows_it_until_its_calendar_expires_it() {
    let (mut pingliang, mut lanzhou, _xian, member) = federation();
    let t = start(&pingliang, &member, "lanzhou");
    pingliang.deliver(&lanzhou);
    // The sender extends the letter: the receiver, past the old date, is
    // no longer past the new one.
    lanzhou.now_ms = china_midnight_ms(&day(31));
    assert!(show(&lanzhou, &t.transfer_id).past_expiry);
    pingliang
        .tx(|c, ctx| transfers::extend(c, ctx, &t.transfer_id, 10, RULES))
        .unwrap();
    pingliang.deliver(&lanzhou);
    let extended = show(&lanzhou, &t.transfer_id);
    assert_eq!(extended.expires_on, day(40));
    assert!(!extended.past_expiry);

    pingliang.now_ms = china_midnight_ms(&day(41)) - 1;
    assert!(!show(&pingliang, &t.transfer_id).past_expiry);
    pingliang.now_ms = china_midnight_ms(&day(41));
    let view = show(&pingliang, &t.transfer_id);
    assert_eq!(view.state, "offered");
    assert!(view.past_expiry);
    assert!(
        view.next_step
            .contains("this node's calendar expires it at its next run"),
        "{}",
        view.next_step
    );
    pingliang.tx(transfers::tick).unwrap();
    let view = show(&pingliang, &t.transfer_id);
    assert_eq!(view.state, "expired");
    assert!(!view.past_expiry);
}

#[test]
fn extend_is_bounded_and_a_reissued_letter_is_void() {
    let (pingliang, lanzhou, _xian, member) = federation();
    let t = start(&pingliang, &member, "lanzhou");
    assert!(pingliang
        .tx(|c, ctx| transfers::extend(c, ctx, &t.transfer_id, 61, RULES))
        .is_err());
    let extended = pingliang
        .tx(|c, ctx| transfers::extend(c, ctx, &t.transfer_id, 30, RULES))
        .unwrap();
    assert_eq!(extended.expires_on, day(60));
    pingliang.deliver(&lanzhou);
    assert_eq!(
        lanzhou
            .tx(|c, ctx| transfers::view(c, ctx, &t.transfer_id))
            .unwrap()
            .expires_on,
        day(60)
    );
    let new = pingliang
        .tx(|c, ctx| transfers::reissue(c, ctx, &t.transfer_id, RULES))
        .unwrap();
    assert_ne!(new.letter_no, t.letter_no);
    assert_eq!(new.reissue_of, t.transfer_id);
    assert_eq!(state(&pingliang, &t.transfer_id), "cancelled");
    pingliang.deliver(&lanzhou);
    assert_eq!(state(&lanzhou, &t.transfer_id), "aborted");
    assert_eq!(state(&lanzhou, &new.transfer_id), "pending");
}

#[test]
fn a_chain_a_to_b_to_c_and_a_third_hosts_record_in_flight_is_relayed() {
    let (pingliang, lanzhou, xian, member) = federation();
    lanzhou.add_branch("lz1");
    xian.add_branch("xa1");
    // Xi'an hosts the member too, under its own agreement with Pingliang.
    pingliang
        .tx(|c, ctx| {
            super::agreements::propose(
                c,
                ctx,
                "xian",
                "outflow",
                pb::AgreementTerms {
                    scope_kind: "members".into(),
                    scope_members: vec![member.clone()],
                    ..super::tests::terms("PL-XA")
                },
            )
        })
        .map(|v| {
            pingliang.deliver(&xian);
            xian.tx(|c, ctx| super::agreements::accept(c, ctx, &v.agreement_id))
                .unwrap();
            xian.deliver(&pingliang);
            pingliang.deliver(&xian);
        })
        .unwrap();
    assert!(xian.view(&member).is_ok());
    // Xi'an records a contact; it is in flight to Pingliang during the release.
    xian.tx(|c, ctx| {
        members::contact_record(
            c,
            ctx,
            &pb::ContactRequest {
                member_id: member.clone(),
                channel: "visit".into(),
                ..Default::default()
            },
        )
    })
    .unwrap();
    let t = start(&pingliang, &member, "lanzhou");
    pingliang.deliver(&lanzhou);
    lanzhou
        .tx(|c, ctx| transfers::accept(c, ctx, &t.transfer_id, "lz1"))
        .unwrap();
    lanzhou.deliver(&pingliang);
    pingliang.deliver(&lanzhou);
    // Now the contact reaches the old owner's tombstone, which relays it.
    let report = xian.deliver(&pingliang);
    assert_eq!(report.quarantined, 0);
    pingliang.deliver(&xian); // Moved: xian drops its lower-generation copy
    assert!(xian.view(&member).is_err());
    let relayed = pingliang.deliver(&lanzhou);
    assert_eq!(
        (relayed.applied, relayed.quarantined),
        (1, 0),
        "{relayed:?}"
    );
    let at_new_owner = lanzhou.view(&member).unwrap();
    assert!(
        !at_new_owner.last_contact.is_empty(),
        "the relayed contact arrived with its author"
    );
    // Lanzhou passes the member on to Xi'an: A→B→C.
    lanzhou.add_peer("xian", &["6101"]);
    xian.add_peer("lanzhou", &[]);
    let t2 = lanzhou
        .tx(|c, ctx| transfers::start(c, ctx, &member, "xian", 0, "", RULES))
        .unwrap();
    lanzhou.deliver(&xian);
    xian.tx(|c, ctx| transfers::accept(c, ctx, &t2.transfer_id, "xa1"))
        .unwrap();
    xian.deliver(&lanzhou);
    lanzhou.deliver(&xian);
    assert_eq!(
        owners(&[&pingliang, &lanzhou, &xian], &member),
        vec!["xian".to_string()]
    );
    assert_eq!(xian.view(&member).unwrap().generation, 3);
}

#[test]
fn a_transfer_on_paper_makes_a_tombstone_pointing_to_the_place() {
    let (pingliang, lanzhou, _xian, member) = federation();
    let tomb = pingliang
        .tx(|c, ctx| {
            transfers::out_on_paper(c, ctx, &member, "110105", "京组转字2026-17", "定居北京")
        })
        .unwrap();
    assert_eq!(tomb.moved.unwrap().to_place, "110105");
    pingliang.deliver(&lanzhou);
    assert!(lanzhou.view(&member).is_err(), "hosts are unshared");
}

#[test]
fn auto_accept_policy_and_overdue_receipts() {
    let (mut pingliang, lanzhou, _xian, member) = federation();
    lanzhou.add_branch("lz1");
    lanzhou
        .tx(|c, ctx| crate::store::peers::set_auto_accept(c, &pingliang.id, "lz1", ctx.now_ms))
        .unwrap();
    let t = start(&pingliang, &member, "lanzhou");
    pingliang.deliver(&lanzhou);
    assert_eq!(
        state(&lanzhou, &t.transfer_id),
        "accepted",
        "covered by an active agreement: accepted by policy"
    );
    lanzhou.deliver(&pingliang);
    assert_eq!(state(&pingliang, &t.transfer_id), "released");
    // The receipt does not come back: after a month it is overdue.
    pingliang.now_ms += 31 * 86_400_000;
    let overdue = pingliang
        .tx(|c, ctx| {
            transfers::list(
                c,
                ctx,
                &pb::TransferListRequest {
                    overdue_receipt: true,
                    ..Default::default()
                },
            )
        })
        .unwrap();
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0].transfer_id, t.transfer_id);
    pingliang.deliver(&lanzhou);
    lanzhou.deliver(&pingliang);
    let overdue = pingliang
        .tx(|c, ctx| {
            transfers::list(
                c,
                ctx,
                &pb::TransferListRequest {
                    overdue_receipt: true,
                    ..Default::default()
                },
            )
        })
        .unwrap();
    assert!(overdue.is_empty(), "the receipt arrived");
}

/// A node counts calendar days in its own zone: at 17:30 UTC on
/// 31 December it is still 2026 in Urumqi (UTC+6) and already 2027 in
/// Shanghai, so the letter's number and dates follow the sender's zone.
#[test]
fn a_letter_is_numbered_and_dated_in_the_senders_zone() {
    let (mut pingliang, _lanzhou, _xian, member) = federation();
    pingliang.now_ms = chrono::DateTime::parse_from_rfc3339("2026-12-31T17:30:00Z")
        .unwrap()
        .timestamp_millis();
    pingliang.zone = liaison_types::time::zone("Asia/Urumqi").unwrap();
    let t = start(&pingliang, &member, "lanzhou");
    assert!(
        t.letter_no.starts_with("PINGLIANG-2026-"),
        "{}",
        t.letter_no
    );
    assert_eq!(pingliang.ctx().today().to_string(), "2026-12-31");
    pingliang
        .tx(|c, ctx| transfers::cancel(c, ctx, &t.transfer_id))
        .unwrap();
    pingliang.zone = liaison_types::time::DEFAULT_ZONE;
    assert_eq!(pingliang.ctx().today().to_string(), "2027-01-01");
    let again = start(&pingliang, &member, "lanzhou");
    assert!(
        again.letter_no.starts_with("PINGLIANG-2027-"),
        "{}",
        again.letter_no
    );
}

//! Agreements driven by hand between in-memory nodes with real certificates.

use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use prost::Message;

use super::agreements;
use super::log;
use super::members;
use super::tests::{china_midnight_ms, day, federation, member_fields, terms, TestNode};

fn state(node: &TestNode, id: &str) -> (String, u64, u64) {
    let v = node.tx(|c, ctx| agreements::view(c, ctx, id)).unwrap();
    (v.state, v.version, v.active_version)
}

/// Pingliang and Lanzhou with no agreement yet, one member away to Lanzhou.
fn unsigned() -> (TestNode, TestNode, TestNode, String) {
    let pingliang = TestNode::new("pingliang");
    let lanzhou = TestNode::new("lanzhou");
    let xian = TestNode::new("xian");
    pingliang.add_peer("lanzhou", &["6201"]);
    pingliang.add_peer("xian", &["6101"]);
    lanzhou.add_peer("pingliang", &[]);
    let id = pingliang
        .tx(|c, ctx| {
            members::org_add(
                c,
                ctx,
                &pb::Org {
                    org_id: "b1".into(),
                    name: "一支部".into(),
                    level: "branch".into(),
                    ..Default::default()
                },
            )?;
            let m = members::member_add(c, ctx, &member_fields("张三"))?;
            members::outflow_register(
                c,
                ctx,
                &pb::OutflowRequest {
                    member_id: m.member_id.clone(),
                    destination_place: "620102".into(),
                    departed_on: day(-10),
                    ..Default::default()
                },
            )?;
            Ok(m.member_id)
        })
        .unwrap();
    (pingliang, lanzhou, xian, id)
}

#[test]
fn a_negotiation_with_a_counter_proposal_activates_on_both_sides() {
    let (pingliang, lanzhou, xian, member) = unsigned();
    let id = pingliang
        .tx(|c, ctx| agreements::propose(c, ctx, "lanzhou", "outflow", terms("PL-LZ-1")))
        .unwrap()
        .agreement_id;
    pingliang.deliver(&lanzhou);
    assert_eq!(state(&lanzhou, &id), ("proposed".into(), 1, 0));
    assert!(
        lanzhou.view(&member).is_err(),
        "nothing is shared before activation"
    );
    let mut changed = terms("PL-LZ-1");
    changed.notes = "兰州负责组织生活".into();
    lanzhou
        .tx(|c, ctx| agreements::counter(c, ctx, &id, changed.clone()))
        .unwrap();
    lanzhou.deliver(&pingliang);
    let at_home = pingliang
        .tx(|c, ctx| agreements::view(c, ctx, &id))
        .unwrap();
    assert_eq!(at_home.pending_counter.unwrap().notes, "兰州负责组织生活");
    assert!(
        at_home.next_step.contains("counter-proposal"),
        "{}",
        at_home.next_step
    );
    // The coordinator publishes the counter as version 2, signed by both: active.
    pingliang
        .tx(|c, ctx| agreements::accept(c, ctx, &id))
        .unwrap();
    assert_eq!(state(&pingliang, &id), ("active".into(), 2, 2));
    pingliang.deliver(&lanzhou);
    assert_eq!(state(&lanzhou, &id), ("active".into(), 2, 2));
    let view = lanzhou.tx(|c, ctx| agreements::view(c, ctx, &id)).unwrap();
    let signatures = &view.history.last().unwrap().signatures;
    assert_eq!(signatures.len(), 2);
    assert!(signatures.iter().all(|s| s.status == "valid"));
    assert_eq!(lanzhou.view(&member).unwrap().basis, id);
    // No third node ever hears of it.
    let to_xian = pingliang
        .store
        .with(|c| log::read_batch(c, &xian.id, 0, 1000))
        .unwrap();
    assert!(to_xian.is_empty(), "{to_xian:?}");
}

#[test]
fn the_inflow_party_may_propose_and_the_coordinator_publishes_it() {
    let (pingliang, lanzhou, _xian, member) = unsigned();
    let id = lanzhou
        .tx(|c, ctx| agreements::propose(c, ctx, "pingliang", "inflow", terms("LZ-PL-1")))
        .unwrap()
        .agreement_id;
    lanzhou.deliver(&pingliang);
    assert_eq!(state(&pingliang, &id), ("proposed".into(), 0, 0));
    pingliang
        .tx(|c, ctx| agreements::accept(c, ctx, &id))
        .unwrap();
    assert_eq!(state(&pingliang, &id), ("active".into(), 1, 1));
    pingliang.deliver(&lanzhou);
    assert_eq!(state(&lanzhou, &id), ("active".into(), 1, 1));
    assert!(lanzhou.view(&member).is_ok());
}

#[test]
fn a_tampered_signature_is_quarantined_and_the_agreement_does_not_activate() {
    let (pingliang, lanzhou, _xian, member) = unsigned();
    let id = pingliang
        .tx(|c, ctx| agreements::propose(c, ctx, "lanzhou", "outflow", terms("PL-LZ-1")))
        .unwrap()
        .agreement_id;
    pingliang.deliver(&lanzhou);
    lanzhou
        .tx(|c, ctx| agreements::accept(c, ctx, &id))
        .unwrap();
    let log_id = lanzhou.store.log_id().unwrap();
    let mut events = lanzhou
        .store
        .with(|c| log::read_batch(c, &pingliang.id, 0, 100))
        .unwrap();
    assert_eq!(events.len(), 1);
    let mut vote = pb::AgreementVote::decode(events[0].payload.as_slice()).unwrap();
    let signature = vote.signature.as_mut().unwrap();
    signature.signature[10] ^= 0xff;
    events[0].payload = vote.encode_to_vec();
    let report = pingliang.apply(&lanzhou.id, &log_id, &events);
    assert_eq!(report.quarantined, 1);
    assert_eq!(state(&pingliang, &id).0, "proposed");
    let held = pingliang
        .tx(|c, _| crate::quarantine::list(c, false))
        .unwrap();
    assert!(
        held[0].reason.contains("forged or mismatched signature"),
        "{}",
        held[0].reason
    );
    // Terms changed after signing: refused as well.
    let mut version_events = pingliang
        .store
        .with(|c| log::read_batch(c, &lanzhou.id, 0, 100))
        .unwrap();
    let mut version = pb::AgreementVersion::decode(version_events[0].payload.as_slice()).unwrap();
    version.version = 5;
    version.terms.as_mut().unwrap().effective_until = day(3000);
    version_events[0].payload = version.encode_to_vec();
    version_events[0].seq = 99;
    let report = lanzhou.apply(
        &pingliang.id,
        &pingliang.store.log_id().unwrap(),
        &version_events,
    );
    assert_eq!(report.quarantined, 1);
    pingliang.deliver(&lanzhou);
    assert!(lanzhou.view(&member).is_err());
}

#[test]
fn termination_stops_sharing_and_the_host_drops_its_copies() {
    let (pingliang, lanzhou, _xian, member) = federation();
    assert!(lanzhou.view(&member).is_ok());
    let id = lanzhou.view(&member).unwrap().basis;
    // The host records a contact; the owner terminates before it arrives.
    lanzhou
        .tx(|c, ctx| {
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
    pingliang
        .tx(|c, ctx| agreements::end(c, ctx, &id, "协议到期前解除", false))
        .unwrap();
    assert_eq!(state(&pingliang, &id).0, "terminated");
    // The contact made under the agreement before the end crossed it: accepted.
    let report = lanzhou.deliver(&pingliang);
    assert_eq!((report.applied, report.quarantined), (1, 0));
    pingliang.deliver(&lanzhou);
    assert_eq!(state(&lanzhou, &id).0, "terminated");
    assert!(lanzhou.view(&member).is_err(), "the host's copy is gone");
    lanzhou.deliver(&pingliang); // the host's end marker
                                 // After the end: updates are not shared, and a record under the ended
                                 // agreement is refused.
    pingliang
        .tx(|c, ctx| {
            members::member_update(
                c,
                ctx,
                &member,
                &pb::MemberFields {
                    phone: Some("13911112222".into()),
                    ..Default::default()
                },
            )
        })
        .unwrap();
    assert_eq!(pingliang.deliver(&lanzhou).applied, 0);
    let late = pb::ContactEvent {
        contact_id: "late".into(),
        member_id: member.clone(),
        author: "lanzhou".into(),
        at: format!("{}T00:00:00", day(0)),
        channel: "visit".into(),
        basis: id.clone(),
        ..Default::default()
    };
    let event = pb::Event {
        seq: 1_000,
        kind: EventKind::Contact as i32,
        entity: member.clone(),
        payload: late.encode_to_vec(),
        created_at_ms: 0,
    };
    let report = pingliang.apply(
        &lanzhou.id,
        &lanzhou.store.log_id().unwrap(),
        std::slice::from_ref(&event),
    );
    assert_eq!(report.quarantined, 1, "nothing flows after the end");
    // The end marker is a place in one log of the host: in a new log (the
    // host restored to a backup from before its end, and skipping this
    // node, reusing seqs) the host had not applied the end before its
    // record, until its marker comes in that log (soak seed 1071519).
    let restored_log = "01a00000-0000-7000-8000-000000000001";
    let in_new_log = |seq: u64, contact_id: &str| pb::Event {
        seq,
        payload: pb::ContactEvent {
            contact_id: contact_id.into(),
            ..late.clone()
        }
        .encode_to_vec(),
        ..event.clone()
    };
    let report = pingliang.apply(&lanzhou.id, restored_log, &[in_new_log(1_000, "before")]);
    assert_eq!((report.applied, report.quarantined), (1, 0));
    let marker = pb::Event {
        seq: 1_001,
        kind: EventKind::AgreementEndApplied as i32,
        entity: id.clone(),
        payload: pb::AgreementState {
            agreement_id: id.clone(),
            version: 1,
            state: "end_applied".into(),
            by: "lanzhou".into(),
            ..Default::default()
        }
        .encode_to_vec(),
        created_at_ms: 0,
    };
    let report = pingliang.apply(
        &lanzhou.id,
        restored_log,
        &[marker, in_new_log(1_002, "after")],
    );
    assert_eq!((report.applied, report.quarantined), (1, 1));
    // Ending twice is refused with a clear error; so is rejecting an active one.
    assert!(pingliang
        .tx(|c, ctx| agreements::end(c, ctx, &id, "again", false))
        .is_err());
}

#[test]
fn expiry_by_date_on_the_coordinators_clock_and_the_hosts_grace() {
    let (mut pingliang, mut lanzhou, _xian, member) = unsigned();
    let mut short = terms("PL-LZ-short");
    short.effective_until = day(10);
    let id = pingliang
        .tx(|c, ctx| agreements::propose(c, ctx, "lanzhou", "outflow", short))
        .unwrap()
        .agreement_id;
    pingliang.deliver(&lanzhou);
    lanzhou
        .tx(|c, ctx| agreements::accept(c, ctx, &id))
        .unwrap();
    lanzhou.deliver(&pingliang);
    pingliang.deliver(&lanzhou);
    assert!(lanzhou.view(&member).is_ok());
    // The host's clock runs ahead: past the end plus grace, it drops its
    // copies on its own, whether or not it heard of the end.
    lanzhou.now_ms += (10 + agreements::GRACE_DAYS + 2) * 86_400_000;
    lanzhou.tx(agreements::tick).unwrap();
    assert!(lanzhou.view(&member).is_err());
    // The coordinator expires it on its clock.
    pingliang.now_ms += 11 * 86_400_000;
    pingliang.tx(agreements::tick).unwrap();
    assert_eq!(state(&pingliang, &id).0, "expired");
    pingliang.deliver(&lanzhou);
    assert_eq!(state(&lanzhou, &id).0, "expired");
}

#[test]
fn a_host_past_the_end_date_shows_it_ended_by_date_and_awaits_the_coordinator() {
    let (mut pingliang, mut lanzhou, _xian, member) = unsigned();
    lanzhou
        .store
        .with(|c| {
            c.execute(
                "UPDATE peers SET display_name = '平凉' WHERE node_id = 'pingliang'",
                [],
            )?;
            Ok(())
        })
        .unwrap();
    let mut short = terms("PL-LZ-short");
    short.effective_until = day(10);
    let id = pingliang
        .tx(|c, ctx| agreements::propose(c, ctx, "lanzhou", "outflow", short))
        .unwrap()
        .agreement_id;
    pingliang.deliver(&lanzhou);
    lanzhou
        .tx(|c, ctx| agreements::accept(c, ctx, &id))
        .unwrap();
    lanzhou.deliver(&pingliang);
    pingliang.deliver(&lanzhou);
    let show = |node: &TestNode| node.tx(|c, ctx| agreements::view(c, ctx, &id)).unwrap();
    let todo_item = |node: &TestNode| {
        node.tx(crate::todo::list)
            .unwrap()
            .into_iter()
            .find(|i| i.kind == "agreement_ended_by_date")
    };

    // The last millisecond of the end date, China time: still in force.
    lanzhou.now_ms = china_midnight_ms(&day(11)) - 1;
    let view = show(&lanzhou);
    assert_eq!(
        (view.state.as_str(), view.shown_state.as_str()),
        ("active", "active")
    );
    assert_eq!(view.active_until, day(10));
    assert!(!view.ended_by_date);
    assert!(todo_item(&lanzhou).is_none());

    // From the next day on, the host shows it ended by date, waiting for
    // the coordinator, and acts as before: same state, copies kept.
    lanzhou.now_ms = china_midnight_ms(&day(11));
    lanzhou.tx(agreements::tick).unwrap();
    let view = show(&lanzhou);
    assert_eq!(view.state, "active", "the coordinator's end decides");
    assert!(view.ended_by_date);
    assert_eq!(
        view.shown_state,
        format!(
            "active — ended by date {} (到期待确认), awaiting the coordinator pingliang (平凉) to confirm",
            day(10)
        )
    );
    assert!(
        view.next_step
            .contains(&format!("keeps its copies until {}", day(41))),
        "{}",
        view.next_step
    );
    assert!(lanzhou.view(&member).is_ok(), "the copy stays");
    let item = todo_item(&lanzhou).expect("a to-do item at the host");
    assert_eq!(item.days_left, Some(30), "{item:?}");
    assert!(item.subject.contains("PL-LZ-short"), "{item:?}");
    assert!(item.detail.contains("has not confirmed"), "{item:?}");
    assert!(item.command.starts_with("liaisonctl peer show pingliang"));
    // The listing says the same.
    let listed = lanzhou
        .tx(|c, ctx| agreements::list(c, ctx, &pb::AgreementListRequest::default()))
        .unwrap();
    assert_eq!(listed[0].shown_state, view.shown_state);

    // Past the grace period the copies go, on the host's own clock; the
    // agreement still waits for the coordinator.
    lanzhou.now_ms = china_midnight_ms(&day(41));
    lanzhou.tx(agreements::tick).unwrap();
    assert!(lanzhou.view(&member).is_err());
    let view = show(&lanzhou);
    assert_eq!(view.state, "active");
    assert!(view.ended_by_date);
    assert!(
        view.next_step
            .contains(&format!("dropped its copies under it on {}", day(41))),
        "{}",
        view.next_step
    );
    assert_eq!(todo_item(&lanzhou).unwrap().days_left, Some(0));

    // The coordinator, past the date before its calendar ran, shows the same
    // and says its calendar decides; then it expires it.
    pingliang.now_ms = china_midnight_ms(&day(11)) - 1;
    assert!(!show(&pingliang).ended_by_date);
    pingliang.now_ms = china_midnight_ms(&day(11));
    let view = show(&pingliang);
    assert_eq!(view.state, "active");
    assert!(view.ended_by_date);
    assert!(
        view.shown_state
            .contains("this node's calendar expires it at its next run"),
        "{}",
        view.shown_state
    );
    assert!(todo_item(&pingliang).is_none(), "the host's item only");
    pingliang.tx(agreements::tick).unwrap();
    let view = show(&pingliang);
    assert_eq!(
        (view.state.as_str(), view.shown_state.as_str()),
        ("expired", "expired")
    );
    assert!(!view.ended_by_date);
    assert_eq!(view.active_until, day(10));

    // The host applies the end: no longer awaiting anything.
    pingliang.deliver(&lanzhou);
    let view = show(&lanzhou);
    assert_eq!(
        (view.state.as_str(), view.shown_state.as_str()),
        ("expired", "expired")
    );
    assert!(!view.ended_by_date);
    assert!(todo_item(&lanzhou).is_none());
}

#[test]
fn a_proposed_extension_does_not_move_the_end_date_shown() {
    let (pingliang, mut lanzhou, _xian, _member) = unsigned();
    let mut short = terms("PL-LZ-short");
    short.effective_until = day(10);
    let id = pingliang
        .tx(|c, ctx| agreements::propose(c, ctx, "lanzhou", "outflow", short.clone()))
        .unwrap()
        .agreement_id;
    pingliang.deliver(&lanzhou);
    lanzhou
        .tx(|c, ctx| agreements::accept(c, ctx, &id))
        .unwrap();
    lanzhou.deliver(&pingliang);
    pingliang.deliver(&lanzhou);
    // Version 2 would run a year longer, but only version 1 is in force.
    let mut longer = short;
    longer.effective_until = day(400);
    pingliang
        .tx(|c, ctx| agreements::counter(c, ctx, &id, longer))
        .unwrap();
    pingliang.deliver(&lanzhou);
    lanzhou.now_ms = china_midnight_ms(&day(11));
    let view = lanzhou.tx(|c, ctx| agreements::view(c, ctx, &id)).unwrap();
    assert_eq!((view.version, view.active_version), (2, 1));
    assert_eq!(view.terms.unwrap().effective_until, day(400));
    assert_eq!(view.active_until, day(10));
    assert!(view.ended_by_date);
    assert!(view.shown_state.contains(&day(10)), "{}", view.shown_state);
}

#[test]
fn a_member_returning_home_is_unshared() {
    let (pingliang, lanzhou, _xian, member) = federation();
    assert!(lanzhou.view(&member).is_ok());
    pingliang
        .tx(|c, ctx| {
            members::outflow_return(
                c,
                ctx,
                &pb::OutflowReturnRequest {
                    member_id: member.clone(),
                    returned_on: String::new(),
                },
            )
        })
        .unwrap();
    pingliang.deliver(&lanzhou);
    assert!(lanzhou.view(&member).is_err());
    let report = pingliang.tx(agreements::uncovered).unwrap();
    assert_eq!(report.total, 0, "a member at home is not uncovered");
}

#[test]
fn members_away_without_an_agreement_are_reported_uncovered() {
    let (pingliang, _lanzhou, _xian, _member) = unsigned();
    let report = pingliang.tx(agreements::uncovered).unwrap();
    assert_eq!(report.total, 1);
    assert_eq!(report.groups[0].destination_place, "620102");
    assert_eq!(report.groups[0].destination_node, "lanzhou");
}

#[test]
fn each_host_gets_members_under_its_own_agreement() {
    let (pingliang, lanzhou, xian, member) = unsigned();
    let lz = super::tests::sign_agreement(&pingliang, &lanzhou, "PL-LZ");
    let xa = super::tests::sign_agreement(&pingliang, &xian, "PL-XA");
    assert_ne!(lz, xa);
    pingliang.deliver(&lanzhou);
    pingliang.deliver(&xian);
    assert_eq!(lanzhou.view(&member).unwrap().basis, lz);
    assert!(xian.view(&member).is_err());
    let disclosures = pingliang
        .tx(|c, _| members::disclosures(c, &member))
        .unwrap();
    assert!(
        disclosures
            .iter()
            .all(|d| d.peer == "lanzhou" && d.basis == lz),
        "{disclosures:?}"
    );
}

/// An amendment re-evaluates every member chunk by chunk, each chunk's
/// members, outflows and shares read at once: the members the new scope
/// leaves out are unshared, the ones it lists are shared (at home or
/// away, with their outflow), and a member another agreement covers and
/// its host already holds gets nothing new.
#[test]
fn an_amendment_to_a_members_scope_unshares_the_rest_chunk_by_chunk() {
    let (pingliang, lanzhou, xian, first) = unsigned();
    let mut to_lanzhou = vec![first];
    for i in 0..4 {
        to_lanzhou.push(pingliang.add_away(&format!("李{i}"), -10));
    }
    let away_to = |name: &str, place: Option<&str>| -> String {
        pingliang
            .tx(|c, ctx| {
                let fields = pb::MemberFields {
                    national_id: None,
                    ..member_fields(name)
                };
                let m = members::member_add(c, ctx, &fields)?;
                if let Some(place) = place {
                    members::outflow_register(
                        c,
                        ctx,
                        &pb::OutflowRequest {
                            member_id: m.member_id.clone(),
                            destination_place: place.into(),
                            departed_on: day(-10),
                            ..Default::default()
                        },
                    )?;
                }
                Ok(m.member_id)
            })
            .unwrap()
    };
    let to_xian = away_to("王西", Some("610102"));
    let at_home = away_to("赵家", None);
    let lz = super::tests::sign_agreement(&pingliang, &lanzhou, "PL-LZ-A");
    super::tests::sign_agreement(&pingliang, &xian, "PL-XA-A");
    pingliang.deliver(&lanzhou);
    pingliang.deliver(&xian);
    assert!(to_lanzhou.iter().all(|m| lanzhou.view(m).is_ok()));
    assert!(xian.view(&to_xian).is_ok());
    let xian_events = |node: &TestNode| {
        node.store
            .with(|c| log::read_batch(c, &xian.id, 0, 1000))
            .unwrap()
            .len()
    };
    let xian_before = xian_events(&pingliang);

    // Lanzhou counters with a members scope; Pingliang publishes it.
    let mut sorted = to_lanzhou.clone();
    sorted.sort();
    let kept = [sorted[0].clone(), sorted[2].clone(), at_home.clone()];
    let mut amended = terms("PL-LZ-A");
    amended.scope_kind = "members".into();
    amended.scope_members = kept.to_vec();
    lanzhou
        .tx(|c, ctx| agreements::counter(c, ctx, &lz, amended.clone()))
        .unwrap();
    lanzhou.deliver(&pingliang);
    pingliang
        .store
        .with(|conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            agreements::accept(&tx, &pingliang.ctx().with_reshare_chunk(2), &lz)?;
            tx.commit()?;
            loop {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let ran = members::reshare_next_chunk(&tx, &pingliang.ctx().with_reshare_chunk(2))?;
                tx.commit()?;
                if !ran {
                    return Ok(());
                }
            }
        })
        .unwrap();
    assert_eq!(state(&pingliang, &lz), ("active".into(), 2, 2));
    pingliang.deliver(&lanzhou);
    for m in &sorted {
        assert_eq!(lanzhou.view(m).is_ok(), kept.contains(m), "{m}");
    }
    // A listed member away carries its outflow; one at home none.
    let copy = lanzhou.view(&sorted[2]).unwrap();
    assert_eq!(copy.outflow.unwrap().destination_place, "620102");
    assert_eq!(copy.basis, lz);
    assert!(lanzhou.view(&at_home).is_ok());
    let mut shares = pingliang
        .store
        .with(|c| {
            let mut stmt = c.prepare("SELECT member_id, peer FROM shares")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .unwrap();
    shares.sort();
    let mut expected: Vec<(String, String)> = kept
        .iter()
        .map(|m| (m.clone(), "lanzhou".to_owned()))
        .chain([(to_xian.clone(), "xian".to_owned())])
        .collect();
    expected.sort();
    assert_eq!(shares, expected);
    // Xi'an's member was held there already: nothing new for Xi'an.
    assert_eq!(xian_events(&pingliang), xian_before);
    // Every share was disclosed: the listed member at home too.
    let disclosed = pingliang
        .tx(|c, _| members::disclosures(c, &at_home))
        .unwrap();
    assert_eq!(disclosed.len(), 1);
    assert_eq!(disclosed[0].basis, lz);
}

/// An activation shares its members in chunks, each its own transaction:
/// the first with the activation, the rest resumed from a durable mark (a
/// crash between chunks loses nothing and shares nothing twice).
#[test]
fn an_activation_shares_its_members_chunk_by_chunk_and_resumes_after_a_crash() {
    let (pingliang, lanzhou, _xian, first) = unsigned();
    let mut away = vec![first];
    for i in 0..6 {
        away.push(pingliang.add_away(&format!("李{i}"), -10));
    }
    away.sort();
    let id = lanzhou
        .tx(|c, ctx| agreements::propose(c, ctx, "pingliang", "inflow", terms("LZ-PL-9")))
        .unwrap()
        .agreement_id;
    lanzhou.deliver(&pingliang);
    // In chunks of 3, in one transaction each, as the node's reshare task.
    let chunk = |commit: bool| -> bool {
        pingliang
            .store
            .with(|conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let ctx = pingliang.ctx().with_reshare_chunk(3);
                let ran = members::reshare_next_chunk(&tx, &ctx)?;
                if commit {
                    tx.commit()?;
                }
                Ok(ran)
            })
            .unwrap()
    };
    pingliang
        .store
        .with(|conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let ctx = pingliang.ctx().with_reshare_chunk(3);
            agreements::accept(&tx, &ctx, &id)?;
            tx.commit()?;
            Ok(())
        })
        .unwrap();
    assert_eq!(state(&pingliang, &id), ("active".into(), 1, 1));
    assert!(pingliang
        .store
        .with(|c| members::reshare_pending(c))
        .unwrap());
    pingliang.deliver(&lanzhou);
    let held =
        |node: &TestNode| -> Vec<bool> { away.iter().map(|m| node.view(m).is_ok()).collect() };
    assert_eq!(
        held(&lanzhou),
        [true, true, true, false, false, false, false],
        "the first chunk came with the activation, in member id order"
    );
    // A crash in the second chunk: nothing of it stays, the mark stays.
    assert!(chunk(false));
    pingliang.deliver(&lanzhou);
    assert_eq!(held(&lanzhou).iter().filter(|h| **h).count(), 3);
    assert!(chunk(true));
    assert!(chunk(true));
    assert!(!chunk(true), "the third chunk was the last");
    assert!(!pingliang
        .store
        .with(|c| members::reshare_pending(c))
        .unwrap());
    pingliang.deliver(&lanzhou);
    assert_eq!(held(&lanzhou), [true; 7]);
    // Each member's home section was sent once.
    let sections = pingliang
        .store
        .with(|c| log::read_batch(c, &lanzhou.id, 0, 1000))
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::HomeSection as i32)
        .count();
    assert_eq!(sections, 7);
}

/// A coordinator restored from a backup older than its proposal forgot the
/// agreement; the other party's acceptance carries the version it answers
/// with the coordinator's signature, and the coordinator takes it back (and
/// activates it) only if its own signature on those terms verifies.
#[test]
fn a_coordinator_that_forgot_its_proposal_takes_it_back_from_the_acceptance() {
    let (pingliang, lanzhou, _xian, _member) = unsigned();
    let id = pingliang
        .tx(|c, ctx| agreements::propose(c, ctx, "lanzhou", "outflow", terms("PL-LZ-9")))
        .unwrap()
        .agreement_id;
    pingliang.deliver(&lanzhou);
    lanzhou
        .tx(|c, ctx| agreements::accept(c, ctx, &id))
        .unwrap();
    let log_id = lanzhou.store.log_id().unwrap();
    let votes = lanzhou
        .store
        .with(|c| log::read_batch(c, &pingliang.id, 0, 100))
        .unwrap();

    // The same node on an empty database: it knows nothing of `id`.
    let forgetful = TestNode::new("pingliang");
    forgetful.add_peer("lanzhou", &["6201"]);

    // Terms changed on the way: this node's signature does not verify.
    let mut tampered = votes.clone();
    for event in &mut tampered {
        if event.kind == EventKind::AgreementVote as i32 {
            let mut vote = pb::AgreementVote::decode(event.payload.as_slice()).unwrap();
            vote.answered
                .as_mut()
                .unwrap()
                .terms
                .as_mut()
                .unwrap()
                .notes = "改过".into();
            event.payload = vote.encode_to_vec();
        }
    }
    let report = forgetful.apply(&lanzhou.id, &log_id, &tampered);
    assert_eq!(report.quarantined, 1, "{report:?}");
    assert!(forgetful
        .tx(|c, ctx| agreements::view(c, ctx, &id))
        .is_err());

    // The vote as sent, on a fresh copy: taken back and activated.
    let forgetful = TestNode::new("pingliang");
    forgetful.add_peer("lanzhou", &["6201"]);
    let report = forgetful.apply(&lanzhou.id, &log_id, &votes);
    assert_eq!(report.quarantined, 0, "{report:?}");
    assert_eq!(state(&forgetful, &id), ("active".into(), 1, 1));
}

/// A proposal shows its coordinator the first 20 members it would cover,
/// by name, and how many in all: members away to any place the inflow node
/// serves, counted once where its places overlap, and no one away
/// elsewhere.
#[test]
fn a_proposal_names_the_first_twenty_it_would_cover_and_counts_them_all() {
    let (pingliang, _lanzhou, _xian, _member) = unsigned();
    // Lanzhou serves 6201 and, overlapping, 620102.
    pingliang
        .store
        .with(|c| {
            Ok(c.execute(
                "INSERT INTO peer_places (node_id, place) VALUES ('lanzhou', '620102')",
                [],
            )?)
        })
        .unwrap();
    for i in 0..24 {
        pingliang.add_away(&format!("成员{i:02}"), -5);
    }
    let elsewhere = pingliang.add_away("西安成员", -5);
    pingliang
        .tx(|c, ctx| {
            members::outflow_update(
                c,
                ctx,
                &pb::OutflowUpdateRequest {
                    member_id: elsewhere.clone(),
                    destination_place: Some("610102".into()),
                    ..Default::default()
                },
            )
        })
        .unwrap();
    let view = pingliang
        .tx(|c, ctx| agreements::propose(c, ctx, "lanzhou", "outflow", terms("PL-LZ-1")))
        .unwrap();
    assert_eq!(view.members_in_scope, 25, "张三 and the 24 away to 620102");
    assert_eq!(view.would_cover.len(), 20);
    assert_eq!(view.would_cover[0], "张三");
    assert_eq!(view.would_cover[1], "成员00");
    assert!(!view.would_cover.iter().any(|n| n == "西安成员"));
}

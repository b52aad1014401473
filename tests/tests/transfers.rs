//! Issue 6: transfer of the organizational relationship (组织关系转接)
//! between real nodes, exactly once, whatever fails in between (docs/transfers.md).
//!
//! The nodes are driven through their admin gRPC service (the `liaisonctl
//! transfer` verbs are the CLI over the same calls). Every test checks the
//! single-owner invariant ([`liaison_tests::ownership`]) after every step,
//! and a background [`Watch`] checks it all along; the end state is checked
//! with [`ownership::converged`]: one owner, holding what the sender
//! released, every transfer final on both sides, offers purged.
//!
//! Partitions are TCP proxies between a puller and the peer it pulls from
//! ([`Proxy`]): a node's log reaches a peer only through the proxy that peer
//! dials, so cutting one proxy holds exactly one direction of messages.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use liaison_proto::v1 as pb;
use liaison_tests::ownership::{self, NodeDb, Watch};
use liaison_tests::proxy::Proxy;
use liaison_tests::{describe_output, timed, Federation, TestNode, DEFAULT_WAIT};
use prost::Message;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use tonic::{Code, Status};

const NATIONAL_ID: &str = "620801199005170014";

// ---------------------------------------------------------------------------
// Records, through the admin service
// ---------------------------------------------------------------------------

async fn contact_record(node: &TestNode, member_id: &str) -> pb::ContactView {
    let mut admin = node.admin().await;
    timed(
        "contact record",
        admin.contact_record(pb::ContactRequest {
            member_id: member_id.into(),
            channel: "visit".into(),
            by: "李主任".into(),
            outcome: "在岗".into(),
            ..Default::default()
        }),
    )
    .await
    .unwrap_or_else(|s| panic!("contact record at {}: {s}", node.node_id))
    .into_inner()
}

async fn activities(node: &TestNode, member_id: &str) -> Vec<pb::ActivityView> {
    let mut admin = node.admin().await;
    match timed(
        "activity list",
        admin.activity_list(pb::ActivityListRequest {
            member_id: member_id.into(),
            limit: 100,
        }),
    )
    .await
    {
        Ok(list) => list.into_inner().activities,
        Err(s) if s.code() == Code::NotFound => Vec::new(),
        Err(s) => panic!("activity list at {}: {s}", node.node_id),
    }
}

async fn assert_nothing_quarantined(nodes: &[&TestNode]) {
    for node in nodes {
        let held = node.quarantined().await;
        assert!(held.is_empty(), "{} quarantined {held:?}", node.node_id);
    }
}

// ---------------------------------------------------------------------------
// Transfers, in the database
// ---------------------------------------------------------------------------

/// Whether the receiver's row of `transfer_id` still holds the offered
/// record (with the ID number); `None` if it has no row.
fn offer_held(node: &TestNode, transfer_id: &str) -> Option<bool> {
    use rusqlite::OptionalExtension as _;
    ownership::open_read_only(&node.db_path())
        .expect("open the database")
        .query_row(
            "SELECT offer IS NOT NULL FROM transfers WHERE transfer_id = ?1",
            [transfer_id],
            |r| r.get(0),
        )
        .optional()
        .expect("read the transfer row")
}

/// The events `node` appended for `audience` of `kind`, decoded.
fn logged<M: Message + Default>(node: &TestNode, audience: &str, kind: pb::EventKind) -> Vec<M> {
    let conn = ownership::open_read_only(&node.db_path()).expect("open the database");
    let mut stmt = conn
        .prepare("SELECT payload FROM events WHERE audience = ?1 AND kind = ?2 ORDER BY seq")
        .expect("prepare");
    let payloads: Vec<Vec<u8>> = stmt
        .query_map(rusqlite::params![audience, kind as i32], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("read events");
    payloads
        .iter()
        .map(|p| M::decode(p.as_slice()).expect("a well-formed payload"))
        .collect()
}

// ---------------------------------------------------------------------------
// The invariant, after every step and all along
// ---------------------------------------------------------------------------

/// The single-owner invariant over a test's nodes: checked on demand after
/// each step, and all along by a background watch.
struct Owners {
    dbs: Vec<NodeDb>,
    watch: Watch,
}

impl Owners {
    fn watch(nodes: &[&TestNode]) -> Owners {
        Owners {
            dbs: ownership::dbs(nodes),
            watch: Watch::nodes(nodes),
        }
    }

    /// At most one owner of every member, now and so far.
    fn check(&self, step: &str) {
        ownership::assert_single_owner(&self.dbs, step);
        self.watch.assert_clean(step);
    }

    /// Exactly one node owns `member`, and nobody else does.
    fn assert_owner(&self, member: &str, owner: Option<&str>, step: &str) {
        self.check(step);
        let mut owners = Vec::new();
        for db in &self.dbs {
            let claims = ownership::claims(db).expect("read claims");
            if claims.iter().any(|c| c.member_id == member) {
                owners.push(db.node_id.as_str());
            }
        }
        assert_eq!(
            owners,
            owner.into_iter().collect::<Vec<_>>(),
            "{step}: owners of {member}"
        );
    }

    /// Waits until `member` converged ([`ownership::converged`]) and returns
    /// the end state.
    async fn converged(&self, fed: &Federation, member: &str) -> ownership::Converged {
        let converged = fed
            .wait_for(
                DEFAULT_WAIT,
                &format!("member {member} converged"),
                async || ownership::converged(&self.dbs, member).ok(),
            )
            .await;
        self.check("converged");
        liaison_tests::check_invariants(&self.dbs).unwrap_or_else(|v| panic!("converged: {v}"));
        converged
    }
}

// ---------------------------------------------------------------------------
// Links through proxies, for partitions
// ---------------------------------------------------------------------------

/// Two nodes peered through two proxies, one per direction of messages.
struct Link {
    /// Carries `a`'s log to `b` (`b` pulls `a` through it).
    a_to_b: Proxy,
    /// Carries `b`'s log to `a`.
    b_to_a: Proxy,
}

/// Peers `a` and `b` through proxies and waits until both pull; `b_serves`
/// is the place `a` records `b` as serving (for agreements).
async fn link_through_proxies(
    fed: &Federation,
    a: &TestNode,
    b: &TestNode,
    b_serves: Option<&str>,
) -> Link {
    let link = Link {
        a_to_b: Proxy::start(a.federation_addr()).await,
        b_to_a: Proxy::start(b.federation_addr()).await,
    };
    a.peer_add(b, &link.b_to_a.endpoint(), b_serves);
    b.peer_add(a, &link.a_to_b.endpoint(), None);
    fed.wait_linked(a, b).await;
    link
}

/// Cuts `proxy`, which `puller` dials to pull `origin`, and waits until
/// `puller` sees its link down: nothing more from `origin` reaches it.
async fn cut(proxy: &Proxy, puller: &TestNode, origin: &TestNode) {
    proxy.partition();
    puller
        .wait_peer(&origin.node_id, "the link is down", |p| !p.outbound_up)
        .await;
}

/// Heals `proxy` and waits until `puller` pulls `origin` again.
async fn heal(proxy: &Proxy, puller: &TestNode, origin: &TestNode) {
    proxy.heal();
    puller
        .wait_peer(&origin.node_id, "the link is up again", |p| p.outbound_up)
        .await;
}

/// Pingliang with a branch and one member, Lanzhou with a branch, linked
/// directly.
async fn two_nodes(fed: &Federation) -> (TestNode, TestNode, String) {
    let pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    fed.link(&pingliang, &lanzhou).await;
    pingliang.org_add("b1").await;
    lanzhou.org_add("b1").await;
    let member = pingliang.member_add("张三", NATIONAL_ID).await;
    (pingliang, lanzhou, member)
}

// ---------------------------------------------------------------------------
// The protocol, step by step
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_transfer_moves_the_member_once_and_leaves_a_tombstone_with_a_forward_pointer()
{
    let fed = Federation::new("transfer-happy-path");
    let (pingliang, lanzhou, member) = two_nodes(&fed).await;
    let owners = Owners::watch(&[&pingliang, &lanzhou]);
    owners.assert_owner(&member, Some("pingliang"), "before the offer");

    // Offer: a letter number, the member frozen at the sender.
    let t = pingliang.transfer_start(&member, &lanzhou).await;
    assert!(t.letter_no.starts_with("PINGLIANG-"), "{}", t.letter_no);
    assert_eq!(t.valid_days, 30);
    let frozen = pingliang
        .try_set_phone(&member, "13700000000")
        .await
        .expect_err("a frozen member cannot be edited");
    assert_eq!(frozen.code(), Code::FailedPrecondition);
    assert!(
        frozen.message().contains(&t.transfer_id),
        "the refusal names the transfer: {}",
        frozen.message()
    );
    let mut admin = pingliang.admin().await;
    let removal = timed(
        "peer remove",
        admin.peer_remove(pb::PeerRemoveRequest {
            node_id: "lanzhou".into(),
            force: false,
        }),
    )
    .await
    .expect_err("peer remove is refused while a transfer is open");
    assert!(
        removal.message().contains(&t.transfer_id),
        "{}",
        removal.message()
    );
    owners.assert_owner(&member, Some("pingliang"), "offered");

    let pending = lanzhou.wait_transfer(&t.transfer_id, "pending").await;
    assert_eq!(pending.letter_no, t.letter_no);
    assert_eq!(pending.member_name, "张三");
    assert_eq!(offer_held(&lanzhou, &t.transfer_id), Some(true));
    assert!(
        lanzhou.show(&member).await.is_none(),
        "the receiver does not enrol the member before the release"
    );
    owners.assert_owner(&member, Some("pingliang"), "pending at the receiver");

    // Accept → release → receipt.
    lanzhou.transfer_accept(&t.transfer_id).await;
    owners.check("accepted");
    let done = pingliang.wait_transfer(&t.transfer_id, "completed").await;
    assert!(done.released_at_ms > 0 && done.receipt_at_ms >= done.released_at_ms);
    let received = lanzhou.wait_transfer(&t.transfer_id, "completed").await;
    assert_eq!(received.branch, "b1");
    owners.assert_owner(&member, Some("lanzhou"), "completed");

    let owned = lanzhou
        .show(&member)
        .await
        .expect("lanzhou holds the member");
    assert!(owned.owned);
    assert_eq!(owned.owner, "lanzhou");
    assert_eq!(
        owned.national_id, NATIONAL_ID,
        "the ID number travels with the transfer"
    );
    assert_eq!(owned.birth_date, "1990-05-17");
    assert_eq!(owned.home_address, "平凉市崆峒区");
    assert_eq!(owned.home_branch, "b1");
    assert_eq!(owned.generation, 2);
    assert!(owned.moved.is_none());

    let tomb = pingliang.show(&member).await.expect("a tombstone stays");
    assert!(!tomb.owned);
    let moved = tomb
        .moved
        .clone()
        .expect("the tombstone says where the member went");
    assert_eq!(moved.to_node, "lanzhou");
    assert_eq!(moved.transfer_id, t.transfer_id);
    assert_eq!(moved.letter_no, t.letter_no);
    assert!(!moved.released_on.is_empty(), "and when");
    assert_eq!(moved.generation, 2);
    assert!(
        tomb.name.is_empty() && tomb.national_id.is_empty(),
        "no personal data stays: {tomb:?}"
    );
    let gone = pingliang
        .try_set_phone(&member, "13700000000")
        .await
        .expect_err("the old owner cannot edit a tombstone");
    assert!(
        gone.message().contains("lanzhou") && gone.message().contains(&t.transfer_id),
        "{}",
        gone.message()
    );
    // The new owner can.
    lanzhou
        .try_set_phone(&member, "13711111111")
        .await
        .expect("the new owner edits");

    // Every disclosure names the transfer as its basis.
    let disclosures = pingliang.disclosures(&member).await;
    assert!(!disclosures.is_empty());
    assert!(
        disclosures
            .iter()
            .all(|d| d.peer == "lanzhou" && d.basis == t.transfer_id),
        "{disclosures:?}"
    );

    let end = owners.converged(&fed, &member).await;
    assert_eq!(end.owner, "lanzhou");
    assert_eq!(end.transfers, 1);
    assert_nothing_quarantined(&[&pingliang, &lanzhou]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_needs_a_reason_code_unfreezes_the_member_and_purges_the_offer() {
    let fed = Federation::new("transfer-reject");
    let (pingliang, lanzhou, member) = two_nodes(&fed).await;
    let owners = Owners::watch(&[&pingliang, &lanzhou]);
    let t = pingliang.transfer_start(&member, &lanzhou).await;
    lanzhou.wait_transfer(&t.transfer_id, "pending").await;
    assert_eq!(offer_held(&lanzhou, &t.transfer_id), Some(true));
    owners.check("pending");

    let no_code = lanzhou
        .try_transfer_reject(&t.transfer_id, "", "不收")
        .await
        .expect_err("a rejection without a reason code is refused");
    assert_eq!(no_code.code(), Code::InvalidArgument);
    assert!(
        no_code.message().contains("not_our_member"),
        "{}",
        no_code.message()
    );
    let bad_code = lanzhou
        .try_transfer_reject(&t.transfer_id, "because", "")
        .await
        .expect_err("an unknown reason code is refused");
    assert_eq!(bad_code.code(), Code::InvalidArgument);
    assert_eq!(
        lanzhou.transfer(&t.transfer_id).await.unwrap().state,
        "pending"
    );

    let rejected = lanzhou
        .try_transfer_reject(&t.transfer_id, "not_our_member", "查无此人")
        .await
        .expect("reject with a reason code");
    assert_eq!(rejected.state, "rejected");
    assert_eq!(
        offer_held(&lanzhou, &t.transfer_id),
        Some(false),
        "the receiver purged the offered record with the ID number"
    );
    assert!(rejected.member_name.is_empty(), "and the name");
    owners.check("rejected at the receiver");
    let accept_after = lanzhou
        .try_transfer_accept(&t.transfer_id, "b1")
        .await
        .expect_err("no accept after a rejection");
    assert_eq!(accept_after.code(), Code::FailedPrecondition);

    let at_sender = pingliang.wait_transfer(&t.transfer_id, "rejected").await;
    assert_eq!(at_sender.reject_code, "not_our_member");
    assert_eq!(at_sender.reject_reason, "查无此人");
    owners.assert_owner(&member, Some("pingliang"), "rejected at the sender");
    pingliang
        .try_set_phone(&member, "13700000001")
        .await
        .expect("the member is unfrozen");
    assert!(lanzhou.show(&member).await.is_none());
    let end = owners.converged(&fed, &member).await;
    assert_eq!((end.owner.as_str(), end.transfers), ("pingliang", 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_offer_is_aborted_at_the_receiver_even_when_an_accept_crosses_it() {
    let fed = Federation::new("transfer-cancel");
    let pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    let link = link_through_proxies(&fed, &pingliang, &lanzhou, None).await;
    pingliang.org_add("b1").await;
    lanzhou.org_add("b1").await;
    let member = pingliang.member_add("张三", NATIONAL_ID).await;
    let owners = Owners::watch(&[&pingliang, &lanzhou]);

    // A plain cancel.
    let t = pingliang.transfer_start(&member, &lanzhou).await;
    lanzhou.wait_transfer(&t.transfer_id, "pending").await;
    let cancelled = pingliang
        .try_transfer_cancel(&t.transfer_id)
        .await
        .expect("cancel");
    assert_eq!(cancelled.state, "cancelled");
    owners.assert_owner(&member, Some("pingliang"), "cancelled");
    pingliang
        .try_set_phone(&member, "13700000002")
        .await
        .expect("the member is unfrozen");
    let aborted = lanzhou.wait_transfer(&t.transfer_id, "aborted").await;
    assert_eq!(aborted.abort_why, "cancelled");
    assert_eq!(offer_held(&lanzhou, &t.transfer_id), Some(false));
    assert_eq!(
        lanzhou
            .try_transfer_accept(&t.transfer_id, "b1")
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );

    // The receiver accepts while the cancel is held by a partition: the
    // accept reaches a cancelled offer and is answered with abort again.
    let t2 = pingliang.transfer_start(&member, &lanzhou).await;
    lanzhou.wait_transfer(&t2.transfer_id, "pending").await;
    cut(&link.a_to_b, &lanzhou, &pingliang).await;
    pingliang
        .try_transfer_cancel(&t2.transfer_id)
        .await
        .expect("cancel");
    lanzhou.transfer_accept(&t2.transfer_id).await;
    owners.check("accept crossing the cancel");
    pingliang
        .wait_until(
            DEFAULT_WAIT,
            "pingliang answered the late accept",
            async || {
                logged::<pb::TransferAbort>(&pingliang, "lanzhou", pb::EventKind::TransferAbort)
                    .iter()
                    .filter(|a| a.transfer_id == t2.transfer_id)
                    .count()
                    == 2
            },
        )
        .await;
    assert_eq!(
        pingliang.transfer(&t2.transfer_id).await.unwrap().state,
        "cancelled"
    );
    owners.assert_owner(&member, Some("pingliang"), "the accept changed nothing");
    assert_eq!(
        lanzhou.transfer(&t2.transfer_id).await.unwrap().state,
        "accepted"
    );
    heal(&link.a_to_b, &lanzhou, &pingliang).await;
    lanzhou.wait_transfer(&t2.transfer_id, "aborted").await;
    assert_eq!(offer_held(&lanzhou, &t2.transfer_id), Some(false));
    let end = owners.converged(&fed, &member).await;
    assert_eq!((end.owner.as_str(), end.transfers), ("pingliang", 2));
}

/// A cancelled offer held back by a partition while the member reaches the
/// receiver by other letters (Lanzhou to Xi'an, Xi'an to Pingliang) and
/// leaves it again (Pingliang to Xi'an): when the partition heals, the late
/// offer and its abort end the letter aborted at the receiver, as it is
/// cancelled at the sender. The receiver never was restored, so it never
/// answers the offer as received (the simulator replays the same schedule
/// in `sim_a_late_cancelled_offer_of_a_member_that_came_by_other_letters_ends_aborted`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_offer_delayed_past_the_members_arrival_by_other_letters_ends_aborted() {
    let fed = Federation::new("transfer-late-cancelled");
    let lanzhou = fed.node("lanzhou").await;
    let pingliang = fed.node("pingliang").await;
    let xian = fed.node("xian").await;
    let link = link_through_proxies(&fed, &lanzhou, &pingliang, None).await;
    fed.link(&lanzhou, &xian).await;
    fed.link(&xian, &pingliang).await;
    for node in [&lanzhou, &pingliang, &xian] {
        node.org_add("b1").await;
    }
    let member = lanzhou.member_add("张三", NATIONAL_ID).await;
    let owners = Owners::watch(&[&lanzhou, &pingliang, &xian]);

    // Pingliang hears nothing from Lanzhou: the offer and its cancel wait.
    cut(&link.a_to_b, &pingliang, &lanzhou).await;
    let late = lanzhou.transfer_start(&member, &pingliang).await;
    lanzhou
        .try_transfer_cancel(&late.transfer_id)
        .await
        .expect("cancel");

    // The member goes Lanzhou → Xi'an → Pingliang → Xi'an meanwhile.
    for (from, to) in [(&lanzhou, &xian), (&xian, &pingliang), (&pingliang, &xian)] {
        let t = from.transfer_start(&member, to).await;
        to.wait_transfer(&t.transfer_id, "pending").await;
        to.transfer_accept(&t.transfer_id).await;
        from.wait_transfer(&t.transfer_id, "completed").await;
        owners.check(&format!("{} → {}", from.node_id, to.node_id));
    }
    owners.assert_owner(&member, Some("xian"), "passed on");

    heal(&link.a_to_b, &pingliang, &lanzhou).await;
    let at_receiver = pingliang.wait_transfer(&late.transfer_id, "aborted").await;
    assert_eq!(at_receiver.abort_why, "cancelled");
    assert_eq!(offer_held(&pingliang, &late.transfer_id), Some(false));
    assert_eq!(
        lanzhou.transfer(&late.transfer_id).await.unwrap().state,
        "cancelled"
    );
    let end = owners.converged(&fed, &member).await;
    assert_eq!((end.owner.as_str(), end.transfers), ("xian", 4));
    assert!(
        !pingliang.log().contains("answered as received"),
        "a node never restored took a restore path:\n{}",
        pingliang.log()
    );
    assert_nothing_quarantined(&[&lanzhou, &pingliang, &xian]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_expires_on_the_senders_clock_and_the_receiver_is_told() {
    let fed = Federation::new("transfer-expiry");
    let pingliang = fed.start(fed.config("pingliang").clockable()).await;
    let lanzhou = fed.node("lanzhou").await;
    fed.link(&pingliang, &lanzhou).await;
    pingliang.org_add("b1").await;
    lanzhou.org_add("b1").await;
    let member = pingliang.member_add("张三", NATIONAL_ID).await;
    let owners = Owners::watch(&[&pingliang, &lanzhou]);

    let t = pingliang.transfer_start(&member, &lanzhou).await;
    lanzhou.wait_transfer(&t.transfer_id, "pending").await;
    pingliang.ctl_ok(&["debug", "clock", "--offset", "40d"]);
    let expired = pingliang.wait_transfer(&t.transfer_id, "expired").await;
    assert_eq!(expired.abort_why, "expired");
    owners.assert_owner(&member, Some("pingliang"), "expired");
    pingliang
        .try_set_phone(&member, "13700000003")
        .await
        .expect("an expired offer unfreezes the member");
    let aborted = lanzhou.wait_transfer(&t.transfer_id, "aborted").await;
    assert_eq!(aborted.abort_why, "expired");
    assert_eq!(offer_held(&lanzhou, &t.transfer_id), Some(false));
    let end = owners.converged(&fed, &member).await;
    assert_eq!(end.owner, "pingliang");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liaisonctl_warns_before_accepting_a_letter_past_its_printed_expiry_on_the_receivers_clock()
{
    let fed = Federation::new("transfer-past-expiry");
    let pingliang = fed.node("pingliang").await;
    let lanzhou = fed.start(fed.config("lanzhou").clockable()).await;
    fed.link(&pingliang, &lanzhou).await;
    pingliang.org_add("b1").await;
    lanzhou.org_add("b1").await;
    let member = pingliang.member_add("张三", NATIONAL_ID).await;
    let owners = Owners::watch(&[&pingliang, &lanzhou]);

    let t = pingliang.transfer_start(&member, &lanzhou).await;
    lanzhou.wait_transfer(&t.transfer_id, "pending").await;
    // The receiver's clock runs 40 days ahead: past the letter's printed
    // expiry (30 days), not yet past the 30 days more after which it would
    // reduce the offer. The sender's clock, which decides, is not past it.
    lanzhou.ctl_ok(&["debug", "clock", "--offset", "40d"]);
    let shown = lanzhou
        .wait_for(
            DEFAULT_WAIT,
            "lanzhou shows the letter past its printed expiry",
            async || {
                lanzhou
                    .transfer(&t.transfer_id)
                    .await
                    .filter(|v| v.past_expiry)
            },
        )
        .await;
    assert_eq!(shown.state, "pending");
    let listed = lanzhou.ctl_ok(&["transfer", "list", "--incoming"]);
    assert!(
        listed.contains(&format!("{} (past printed expiry)", t.expires_on)),
        "{listed}"
    );
    let detail = lanzhou.ctl_ok(&["transfer", "show", &t.letter_no]);
    assert!(detail.contains("the sender's calendar decides"), "{detail}");
    let todo = lanzhou.ctl_json(&["todo"]);
    let decide = todo
        .iter()
        .find(|(_, i)| i["kind"] == "transfer_decide")
        .unwrap_or_else(|| panic!("no transfer_decide item: {todo:?}"));
    assert!(
        decide.1["detail"]
            .as_str()
            .is_some_and(|d| d.contains("pingliang's calendar decides")),
        "{decide:?}"
    );

    // Without --yes: refused with the warning, naming whose clock decides;
    // nothing changes.
    let refused = lanzhou.ctl(&["transfer", "accept", &t.letter_no, "--branch", "b1"]);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{}",
        describe_output(&refused)
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    for words in [
        format!(
            "letter {} was valid until {} by its printed date",
            t.letter_no, t.expires_on
        ),
        "the sender's calendar decides: if pingliang has expired the letter".into(),
        "answered as expired".into(),
        "nothing was accepted".into(),
        "--yes".into(),
    ] {
        assert!(stderr.contains(&words), "{words:?} in:\n{stderr}");
    }
    assert!(refused.stdout.is_empty(), "{}", describe_output(&refused));
    assert_eq!(
        lanzhou.transfer(&t.transfer_id).await.unwrap().state,
        "pending"
    );
    assert!(
        logged::<pb::TransferVote>(&lanzhou, "pingliang", pb::EventKind::TransferAccept).is_empty(),
        "no accept was sent"
    );
    assert_eq!(
        pingliang.transfer(&t.transfer_id).await.unwrap().state,
        "offered"
    );
    owners.assert_owner(&member, Some("pingliang"), "refused accept");

    // With --yes: warned, and it goes through; the sender's calendar has
    // not passed the date, so it releases.
    let accepted = lanzhou.ctl(&[
        "transfer",
        "accept",
        &t.letter_no,
        "--branch",
        "b1",
        "--yes",
    ]);
    assert!(accepted.status.success(), "{}", describe_output(&accepted));
    let stderr = String::from_utf8_lossy(&accepted.stderr);
    assert!(
        stderr.contains("warning:") && stderr.contains("the sender's calendar decides"),
        "{stderr}"
    );
    // Released, then completed by the receipt: the receipt may follow the
    // release within milliseconds, so the end state is what is waited for.
    lanzhou.wait_transfer(&t.transfer_id, "completed").await;
    pingliang.wait_transfer(&t.transfer_id, "completed").await;
    let end = owners.converged(&fed, &member).await;
    assert_eq!(end.owner, "lanzhou");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accept_arriving_after_expiry_is_answered_with_abort() {
    let fed = Federation::new("transfer-late-accept");
    let pingliang = fed.start(fed.config("pingliang").clockable()).await;
    let lanzhou = fed.node("lanzhou").await;
    let link = link_through_proxies(&fed, &pingliang, &lanzhou, None).await;
    pingliang.org_add("b1").await;
    lanzhou.org_add("b1").await;
    let member = pingliang.member_add("张三", NATIONAL_ID).await;
    let owners = Owners::watch(&[&pingliang, &lanzhou]);

    let t = pingliang.transfer_start(&member, &lanzhou).await;
    lanzhou.wait_transfer(&t.transfer_id, "pending").await;
    // Both directions held: the receiver accepts in time by its own
    // reckoning, the sender's letter expires before the accept arrives.
    cut(&link.a_to_b, &lanzhou, &pingliang).await;
    cut(&link.b_to_a, &pingliang, &lanzhou).await;
    lanzhou.transfer_accept(&t.transfer_id).await;
    pingliang.ctl_ok(&["debug", "clock", "--offset", "40d"]);
    pingliang.wait_transfer(&t.transfer_id, "expired").await;
    owners.check("expired with an accept in flight");

    heal(&link.b_to_a, &pingliang, &lanzhou).await;
    pingliang
        .wait_until(
            DEFAULT_WAIT,
            "pingliang answered the late accept",
            async || {
                logged::<pb::TransferAbort>(&pingliang, "lanzhou", pb::EventKind::TransferAbort)
                    .iter()
                    .any(|a| a.transfer_id == t.transfer_id && a.why == "late_accept")
            },
        )
        .await;
    assert_eq!(
        pingliang.transfer(&t.transfer_id).await.unwrap().state,
        "expired"
    );
    owners.assert_owner(
        &member,
        Some("pingliang"),
        "the late accept released nothing",
    );

    heal(&link.a_to_b, &lanzhou, &pingliang).await;
    let aborted = lanzhou
        .wait_for(
            DEFAULT_WAIT,
            "lanzhou applied the late-accept abort",
            async || {
                lanzhou
                    .transfer(&t.transfer_id)
                    .await
                    .filter(|v| v.state == "aborted" && v.abort_why == "late_accept")
            },
        )
        .await;
    assert!(aborted.member_name.is_empty());
    assert_eq!(offer_held(&lanzhou, &t.transfer_id), Some(false));
    assert!(lanzhou.show(&member).await.is_none());
    let end = owners.converged(&fed, &member).await;
    assert_eq!(end.owner, "pingliang");
}

// ---------------------------------------------------------------------------
// Crashes and partitions
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_killed_after_releasing_gets_the_receipt_once_it_is_back() {
    let fed = Federation::new("transfer-sender-killed");
    let mut pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    let link = link_through_proxies(&fed, &pingliang, &lanzhou, None).await;
    pingliang.org_add("b1").await;
    lanzhou.org_add("b1").await;
    let member = pingliang.member_add("张三", NATIONAL_ID).await;
    let owners = Owners::watch(&[&pingliang, &lanzhou]);

    let t = pingliang.transfer_start(&member, &lanzhou).await;
    lanzhou.wait_transfer(&t.transfer_id, "pending").await;
    // The receipt must not get back: hold lanzhou → pingliang once the
    // accept is through.
    cut(&link.a_to_b, &lanzhou, &pingliang).await;
    lanzhou.transfer_accept(&t.transfer_id).await;
    pingliang.wait_transfer(&t.transfer_id, "released").await;
    owners.assert_owner(&member, None, "released, in flight: nobody owns");
    cut(&link.b_to_a, &pingliang, &lanzhou).await;
    heal(&link.a_to_b, &lanzhou, &pingliang).await;
    lanzhou.wait_transfer(&t.transfer_id, "completed").await;
    owners.assert_owner(&member, Some("lanzhou"), "completed at the receiver");
    assert_eq!(
        pingliang.transfer(&t.transfer_id).await.unwrap().state,
        "released",
        "the receipt is held"
    );

    pingliang.kill();
    owners.assert_owner(&member, Some("lanzhou"), "sender killed");
    pingliang.start().await;
    owners.assert_owner(&member, Some("lanzhou"), "sender restarted");
    assert_eq!(
        pingliang.transfer(&t.transfer_id).await.unwrap().state,
        "released"
    );
    heal(&link.b_to_a, &pingliang, &lanzhou).await;
    let done = pingliang.wait_transfer(&t.transfer_id, "completed").await;
    assert!(done.receipt_at_ms > 0);
    let end = owners.converged(&fed, &member).await;
    assert_eq!((end.owner.as_str(), end.generation), ("lanzhou", 2));
    assert_nothing_quarantined(&[&pingliang, &lanzhou]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_killed_after_accepting_completes_once_it_is_back() {
    let fed = Federation::new("transfer-receiver-killed");
    let pingliang = fed.node("pingliang").await;
    let mut lanzhou = fed.node("lanzhou").await;
    let link = link_through_proxies(&fed, &pingliang, &lanzhou, None).await;
    pingliang.org_add("b1").await;
    lanzhou.org_add("b1").await;
    let member = pingliang.member_add("张三", NATIONAL_ID).await;
    let owners = Owners::watch(&[&pingliang, &lanzhou]);

    let t = pingliang.transfer_start(&member, &lanzhou).await;
    lanzhou.wait_transfer(&t.transfer_id, "pending").await;
    // The release cannot arrive before the kill: pingliang → lanzhou is held.
    cut(&link.a_to_b, &lanzhou, &pingliang).await;
    lanzhou.transfer_accept(&t.transfer_id).await;
    lanzhou.kill();
    owners.check("receiver killed right after accepting");
    lanzhou.start().await;
    assert_eq!(
        lanzhou.transfer(&t.transfer_id).await.unwrap().state,
        "accepted",
        "the accept survived the kill"
    );
    assert_eq!(
        lanzhou
            .try_transfer_reject(&t.transfer_id, "other", "")
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition,
        "no rejection after accepting"
    );
    pingliang.wait_transfer(&t.transfer_id, "released").await;
    owners.assert_owner(&member, None, "released, in flight");

    // Killed again with the release still held, then healed.
    lanzhou.kill();
    lanzhou.start().await;
    owners.assert_owner(&member, None, "receiver restarted, release still held");
    heal(&link.a_to_b, &lanzhou, &pingliang).await;
    lanzhou.wait_transfer(&t.transfer_id, "completed").await;
    pingliang.wait_transfer(&t.transfer_id, "completed").await;
    let end = owners.converged(&fed, &member).await;
    assert_eq!((end.owner.as_str(), end.generation), ("lanzhou", 2));
    assert_eq!(
        lanzhou.show(&member).await.unwrap().national_id,
        NATIONAL_ID
    );
    assert_nothing_quarantined(&[&pingliang, &lanzhou]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_at_each_step_delays_the_transfer_but_it_completes_once() {
    let fed = Federation::new("transfer-partitions");
    let pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    let link = link_through_proxies(&fed, &pingliang, &lanzhou, None).await;
    pingliang.org_add("b1").await;
    lanzhou.org_add("b1").await;
    let member = pingliang.member_add("张三", NATIONAL_ID).await;
    let owners = Owners::watch(&[&pingliang, &lanzhou]);

    // 1. The offer is held.
    cut(&link.a_to_b, &lanzhou, &pingliang).await;
    let t = pingliang.transfer_start(&member, &lanzhou).await;
    assert!(lanzhou.transfer(&t.transfer_id).await.is_none());
    owners.assert_owner(&member, Some("pingliang"), "offer held");
    heal(&link.a_to_b, &lanzhou, &pingliang).await;
    lanzhou.wait_transfer(&t.transfer_id, "pending").await;

    // 2. The accept is held (and the release will be).
    cut(&link.b_to_a, &pingliang, &lanzhou).await;
    cut(&link.a_to_b, &lanzhou, &pingliang).await;
    lanzhou.transfer_accept(&t.transfer_id).await;
    assert_eq!(
        pingliang.transfer(&t.transfer_id).await.unwrap().state,
        "offered"
    );
    owners.assert_owner(&member, Some("pingliang"), "accept held");
    heal(&link.b_to_a, &pingliang, &lanzhou).await;
    pingliang.wait_transfer(&t.transfer_id, "released").await;

    // 3. The release is held: nobody owns the member meanwhile.
    owners.assert_owner(&member, None, "release held");
    assert_eq!(
        lanzhou.transfer(&t.transfer_id).await.unwrap().state,
        "accepted"
    );
    cut(&link.b_to_a, &pingliang, &lanzhou).await;
    heal(&link.a_to_b, &lanzhou, &pingliang).await;
    lanzhou.wait_transfer(&t.transfer_id, "completed").await;

    // 4. The receipt is held.
    owners.assert_owner(&member, Some("lanzhou"), "receipt held");
    assert_eq!(
        pingliang.transfer(&t.transfer_id).await.unwrap().state,
        "released"
    );
    heal(&link.b_to_a, &pingliang, &lanzhou).await;
    pingliang.wait_transfer(&t.transfer_id, "completed").await;
    let end = owners.converged(&fed, &member).await;
    assert_eq!((end.owner.as_str(), end.generation), ("lanzhou", 2));
    assert_nothing_quarantined(&[&pingliang, &lanzhou]).await;
}

/// The `seq` of `node`'s newest event, and how many it holds.
fn log_head(node: &TestNode) -> (u64, u64) {
    ownership::open_read_only(&node.db_path())
        .expect("open the database")
        .query_row(
            "SELECT COALESCE(MAX(seq), 0), COUNT(*) FROM events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("read the log head")
}

async fn caught_up(node: &TestNode, peer: &TestNode, head: u64) {
    node.wait_until(
        DEFAULT_WAIT,
        &format!(
            "{} applied {}'s log up to {head}",
            node.node_id, peer.node_id
        ),
        async || node.replication(&peer.node_id).await.my_cursor >= head,
    )
    .await;
}

/// Duplicate delivery, done for real: with both nodes stopped, each node's
/// cursor on the other is rewound to 0 (so every event of both logs —
/// offer, accept, release, receipt — is pulled and applied a second time),
/// and every transfer event is appended to its log once more under a new
/// `seq` (a re-sent message, delivered a third time). Nothing may change:
/// no state, no version, no new message, nothing quarantined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_delivered_twice_changes_nothing() {
    let fed = Federation::new("transfer-duplicates");
    let (mut pingliang, mut lanzhou, member) = two_nodes(&fed).await;
    let owners = Owners::watch(&[&pingliang, &lanzhou]);
    let t = pingliang.transfer_start(&member, &lanzhou).await;
    lanzhou.wait_transfer(&t.transfer_id, "pending").await;
    lanzhou.transfer_accept(&t.transfer_id).await;
    pingliang.wait_transfer(&t.transfer_id, "completed").await;
    let before = owners.converged(&fed, &member).await;
    let owned_before = lanzhou.show(&member).await.unwrap();
    let tomb_before = pingliang.show(&member).await.unwrap();

    pingliang.stop();
    lanzhou.stop();
    let mut heads = BTreeMap::new();
    for node in [&pingliang, &lanzhou] {
        let conn = rusqlite::Connection::open(node.db_path()).expect("open the database");
        let resent = conn
            .execute(
                "INSERT INTO events (audience, kind, entity, payload, created_at_ms)
                 SELECT audience, kind, entity, payload, created_at_ms FROM events
                 WHERE kind BETWEEN ?1 AND ?2 ORDER BY seq",
                rusqlite::params![
                    pb::EventKind::TransferOffer as i32,
                    pb::EventKind::Moved as i32
                ],
            )
            .expect("re-send the transfer events");
        assert!(resent >= 2, "{} re-sent {resent} events", node.node_id);
        let rewound = conn
            .execute("UPDATE cursors SET seq = 0", [])
            .expect("rewind the cursors");
        assert_eq!(rewound, 1, "{} has one cursor", node.node_id);
        drop(conn);
        heads.insert(node.node_id.clone(), log_head(node));
    }
    owners.check("both stopped, logs doubled");
    pingliang.start().await;
    lanzhou.start().await;
    caught_up(&pingliang, &lanzhou, heads["lanzhou"].0).await;
    caught_up(&lanzhou, &pingliang, heads["pingliang"].0).await;
    owners.check("everything delivered again");

    for node in [&pingliang, &lanzhou] {
        assert_eq!(
            log_head(node),
            heads[&node.node_id],
            "{} appended nothing in answer to the duplicates",
            node.node_id
        );
    }
    assert_eq!(
        pingliang.transfer(&t.transfer_id).await.unwrap().state,
        "completed"
    );
    assert_eq!(
        lanzhou.transfer(&t.transfer_id).await.unwrap().state,
        "completed"
    );
    let owned_after = lanzhou.show(&member).await.unwrap();
    assert_eq!(
        (
            owned_after.generation,
            owned_after.counter,
            &owned_after.national_id
        ),
        (
            owned_before.generation,
            owned_before.counter,
            &owned_before.national_id
        )
    );
    assert_eq!(
        pingliang.show(&member).await.unwrap().moved,
        tomb_before.moved
    );
    let after = owners.converged(&fed, &member).await;
    assert_eq!(after, before);
    assert_nothing_quarantined(&[&pingliang, &lanzhou]).await;
}

// ---------------------------------------------------------------------------
// Three nodes
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_a_to_b_to_c_ends_with_c_owning_at_generation_three() {
    let fed = Federation::new("transfer-chain");
    let pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    let xian = fed.node("xian").await;
    fed.link(&pingliang, &lanzhou).await;
    fed.link(&lanzhou, &xian).await;
    fed.link(&pingliang, &xian).await;
    for node in [&pingliang, &lanzhou, &xian] {
        node.org_add("b1").await;
    }
    let member = pingliang.member_add("张三", NATIONAL_ID).await;
    let owners = Owners::watch(&[&pingliang, &lanzhou, &xian]);

    let t1 = pingliang.transfer_start(&member, &lanzhou).await;
    lanzhou.wait_transfer(&t1.transfer_id, "pending").await;
    lanzhou.transfer_accept(&t1.transfer_id).await;
    pingliang.wait_transfer(&t1.transfer_id, "completed").await;
    owners.assert_owner(&member, Some("lanzhou"), "A→B");
    // The new owner records something of its own before passing it on.
    let contact = contact_record(&lanzhou, &member).await;

    let t2 = lanzhou.transfer_start(&member, &xian).await;
    assert!(t2.letter_no.starts_with("LANZHOU-"), "{}", t2.letter_no);
    xian.wait_transfer(&t2.transfer_id, "pending").await;
    owners.assert_owner(&member, Some("lanzhou"), "B→C offered");
    xian.transfer_accept(&t2.transfer_id).await;
    lanzhou.wait_transfer(&t2.transfer_id, "completed").await;
    owners.assert_owner(&member, Some("xian"), "B→C");

    let owned = xian.show(&member).await.unwrap();
    assert_eq!(owned.generation, 3);
    assert_eq!(owned.national_id, NATIONAL_ID);
    assert!(
        !owned.last_contact.is_empty(),
        "the contact travelled along"
    );
    let b_tomb = lanzhou.show(&member).await.unwrap().moved.unwrap();
    assert_eq!(
        (b_tomb.to_node.as_str(), b_tomb.transfer_id.as_str()),
        ("xian", t2.transfer_id.as_str())
    );
    let a_tomb = pingliang.show(&member).await.unwrap().moved.unwrap();
    assert_eq!(
        (a_tomb.to_node.as_str(), a_tomb.transfer_id.as_str()),
        ("lanzhou", t1.transfer_id.as_str())
    );
    let end = owners.converged(&fed, &member).await;
    assert_eq!(
        (end.owner.as_str(), end.generation, end.transfers),
        ("xian", 3, 2)
    );
    assert!(end
        .release
        .as_ref()
        .and_then(|r| r.record.as_ref())
        .is_some_and(|r| r
            .contacts
            .iter()
            .any(|c| c.contact_id == contact.contact_id)));
    assert_nothing_quarantined(&[&pingliang, &lanzhou, &xian]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_to_the_members_host_merges_its_host_section_and_sends_no_unshare() {
    let fed = Federation::new("transfer-to-host");
    let pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    fed.link_serving(&pingliang, &lanzhou, "6201").await;
    pingliang.org_add("b1").await;
    lanzhou.org_add("b1").await;
    let agreement = fed.agree(&pingliang, &lanzhou, "PL-LZ").await;
    let member = pingliang.member_add("张三", NATIONAL_ID).await;
    pingliang
        .outflow_register(&member, "620102", "2026-01-10")
        .await;
    let owners = Owners::watch(&[&pingliang, &lanzhou]);
    let copy = lanzhou
        .wait_for(DEFAULT_WAIT, "the copy at lanzhou", async || {
            lanzhou.show(&member).await
        })
        .await;
    assert!(!copy.owned && copy.basis == agreement);
    assert!(copy.national_id.is_empty());
    lanzhou.ctl_ok(&[
        "member",
        "host-set",
        &member,
        "--employer",
        "兰州建工",
        "--industry",
        "construction",
    ]);
    let contact = contact_record(&lanzhou, &member).await;
    lanzhou.ctl_ok(&[
        "activity",
        "record",
        &member,
        "--kind",
        "主题党日",
        "--date",
        "2026-11-20",
        "--hours",
        "2",
    ]);
    pingliang
        .wait_until(
            DEFAULT_WAIT,
            "the host's records at pingliang",
            async || {
                pingliang.show(&member).await.is_some_and(|m| {
                    m.host_sections.iter().any(|h| h.employer == "兰州建工")
                        && !m.last_contact.is_empty()
                }) && !activities(&pingliang, &member).await.is_empty()
            },
        )
        .await;
    owners.check("hosted");

    let t = pingliang.transfer_start(&member, &lanzhou).await;
    lanzhou.wait_transfer(&t.transfer_id, "pending").await;
    assert!(
        lanzhou.show(&member).await.is_some_and(|m| !m.owned),
        "the host copy stays apart from the offer"
    );
    lanzhou.transfer_accept(&t.transfer_id).await;
    pingliang.wait_transfer(&t.transfer_id, "completed").await;
    owners.assert_owner(&member, Some("lanzhou"), "completed");

    let owned = lanzhou.show(&member).await.unwrap();
    assert!(owned.owned);
    assert_eq!(owned.national_id, NATIONAL_ID);
    assert_eq!(owned.basis, "", "no longer a copy");
    let section = owned
        .host_sections
        .iter()
        .find(|h| h.author == "lanzhou")
        .expect("the host section merged into the owned record");
    assert_eq!(section.employer, "兰州建工");
    let copies: i64 = ownership::open_read_only(&lanzhou.db_path())
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM home_copies WHERE member_id = ?1",
            [&member],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(copies, 0, "the copy merged into the owned record");
    let contacts: i64 = ownership::open_read_only(&lanzhou.db_path())
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM contacts WHERE contact_id = ?1",
            [&contact.contact_id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(contacts, 1);
    let activity = activities(&lanzhou, &member).await;
    assert_eq!(activity.len(), 1, "{activity:?}");
    assert_eq!(activity[0].author, "lanzhou");
    assert!(
        logged::<pb::Unshare>(&pingliang, "lanzhou", pb::EventKind::Unshare).is_empty(),
        "the sender sends the new owner no Unshare"
    );
    assert!(
        logged::<pb::Moved>(&pingliang, "lanzhou", pb::EventKind::Moved).is_empty(),
        "nor Moved"
    );
    let end = owners.converged(&fed, &member).await;
    assert_eq!((end.owner.as_str(), end.generation), ("lanzhou", 2));
    let released = end
        .release
        .and_then(|r| r.record)
        .expect("the released record");
    assert_eq!(released.outflows.len(), 1, "the outflow history travels");
    assert_eq!(released.host_sections.len(), 1);
    assert_eq!(released.contacts.len(), 1);
    assert_eq!(released.activities.len(), 1);
    assert_nothing_quarantined(&[&pingliang, &lanzhou]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_hosts_contact_in_flight_during_the_release_is_relayed_to_the_new_owner() {
    let fed = Federation::new("transfer-relay");
    let pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    let xian = fed.node("xian").await;
    fed.link(&pingliang, &lanzhou).await;
    // Xi'an hosts the member; its records reach pingliang through a proxy.
    let to_xian = link_through_proxies(&fed, &pingliang, &xian, Some("6101")).await;
    for node in [&pingliang, &lanzhou, &xian] {
        node.org_add("b1").await;
    }
    let agreement = fed.agree(&pingliang, &xian, "PL-XA").await;
    let member = pingliang.member_add("张三", NATIONAL_ID).await;
    pingliang
        .outflow_register(&member, "610102", "2026-01-10")
        .await;
    let owners = Owners::watch(&[&pingliang, &lanzhou, &xian]);
    xian.wait_for(DEFAULT_WAIT, "the copy at xian", async || {
        xian.show(&member).await
    })
    .await;

    // Xi'an's contact is in flight to pingliang during the release.
    cut(&to_xian.b_to_a, &pingliang, &xian).await;
    let contact = contact_record(&xian, &member).await;
    assert_eq!(contact.author, "xian");
    let t = pingliang.transfer_start(&member, &lanzhou).await;
    lanzhou.wait_transfer(&t.transfer_id, "pending").await;
    lanzhou.transfer_accept(&t.transfer_id).await;
    pingliang.wait_transfer(&t.transfer_id, "completed").await;
    owners.assert_owner(
        &member,
        Some("lanzhou"),
        "released with the contact in flight",
    );
    let moved = logged::<pb::Moved>(&pingliang, "xian", pb::EventKind::Moved);
    assert_eq!(
        moved.len(),
        1,
        "xian, which held a copy, is told the member moved"
    );
    assert_eq!(
        (moved[0].new_owner.as_str(), moved[0].generation),
        ("lanzhou", 2)
    );
    assert!(logged::<pb::Moved>(&pingliang, "lanzhou", pb::EventKind::Moved).is_empty());
    xian.wait_until(
        DEFAULT_WAIT,
        "xian dropped its lower-generation copy",
        async || xian.show(&member).await.is_none(),
    )
    .await;
    let released = ownership::converged(&ownership::dbs(&[&pingliang, &lanzhou]), &member)
        .expect("converged between sender and receiver");
    assert!(
        released
            .release
            .unwrap()
            .record
            .unwrap()
            .contacts
            .is_empty(),
        "the contact was not in the release"
    );

    heal(&to_xian.b_to_a, &pingliang, &xian).await;
    let relayed = lanzhou
        .wait_for(DEFAULT_WAIT, "the contact relayed to lanzhou", async || {
            use rusqlite::OptionalExtension as _;
            ownership::open_read_only(&lanzhou.db_path())
                .unwrap()
                .query_row(
                    "SELECT author, basis FROM contacts WHERE contact_id = ?1",
                    [&contact.contact_id],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()
                .unwrap()
        })
        .await;
    assert_eq!(
        relayed,
        ("xian".to_owned(), t.transfer_id.clone()),
        "relayed with its author and the transfer as basis"
    );
    assert_ne!(relayed.1, agreement);
    assert!(!lanzhou.show(&member).await.unwrap().last_contact.is_empty());
    let end = owners.converged(&fed, &member).await;
    assert_eq!(end.owner, "lanzhou");
    assert_nothing_quarantined(&[&pingliang, &lanzhou, &xian]).await;
}

/// docs/transfers.md: "records that reach the sender's tombstone afterwards are
/// relayed to the new owner with T as their basis". When the new owner has
/// meanwhile passed the member on, its own tombstone is such a sender's
/// tombstone too: the record must follow the member to the current owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosts_record_in_flight_follows_the_member_along_a_chain() {
    let fed = Federation::new("transfer-relay-chain");
    let pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    let tianshui = fed.node("tianshui").await;
    let xian = fed.node("xian").await;
    fed.link(&pingliang, &lanzhou).await;
    fed.link(&lanzhou, &tianshui).await;
    let to_xian = link_through_proxies(&fed, &pingliang, &xian, Some("6101")).await;
    for node in [&pingliang, &lanzhou, &tianshui, &xian] {
        node.org_add("b1").await;
    }
    fed.agree(&pingliang, &xian, "PL-XA").await;
    let member = pingliang.member_add("张三", NATIONAL_ID).await;
    pingliang
        .outflow_register(&member, "610102", "2026-01-10")
        .await;
    let owners = Owners::watch(&[&pingliang, &lanzhou, &tianshui, &xian]);
    xian.wait_for(DEFAULT_WAIT, "the copy at xian", async || {
        xian.show(&member).await
    })
    .await;

    cut(&to_xian.b_to_a, &pingliang, &xian).await;
    let contact = contact_record(&xian, &member).await;
    let t1 = pingliang.transfer_start(&member, &lanzhou).await;
    lanzhou.wait_transfer(&t1.transfer_id, "pending").await;
    lanzhou.transfer_accept(&t1.transfer_id).await;
    pingliang.wait_transfer(&t1.transfer_id, "completed").await;
    let t2 = lanzhou.transfer_start(&member, &tianshui).await;
    tianshui.wait_transfer(&t2.transfer_id, "pending").await;
    tianshui.transfer_accept(&t2.transfer_id).await;
    lanzhou.wait_transfer(&t2.transfer_id, "completed").await;
    owners.assert_owner(
        &member,
        Some("tianshui"),
        "A→B→C with the host's contact in flight",
    );

    heal(&to_xian.b_to_a, &pingliang, &xian).await;
    pingliang
        .wait_until(
            DEFAULT_WAIT,
            "pingliang relayed the contact to lanzhou",
            async || {
                logged::<pb::ContactEvent>(&pingliang, "lanzhou", pb::EventKind::Contact)
                    .iter()
                    .any(|c| c.contact_id == contact.contact_id)
            },
        )
        .await;
    let relayed = tianshui
        .wait_for(
            DEFAULT_WAIT,
            "the contact relayed on to tianshui",
            async || {
                use rusqlite::OptionalExtension as _;
                ownership::open_read_only(&tianshui.db_path())
                    .unwrap()
                    .query_row(
                        "SELECT author, basis FROM contacts WHERE contact_id = ?1",
                        [&contact.contact_id],
                        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                    )
                    .optional()
                    .unwrap()
            },
        )
        .await;
    assert_eq!(relayed, ("xian".to_owned(), t2.transfer_id.clone()));
    owners.converged(&fed, &member).await;
    assert_nothing_quarantined(&[&pingliang, &lanzhou, &tianshui, &xian]).await;
}

// ---------------------------------------------------------------------------
// Randomized: many transfers, partitions and abrupt restarts
// ---------------------------------------------------------------------------

/// How long a randomized run goes on.
#[derive(Debug, Clone, Copy)]
struct Budget {
    transfers: usize,
    steps: usize,
}

const NODES: [&str; 3] = ["pingliang", "lanzhou", "xian"];

/// Three nodes, every direction between two of them through its own proxy,
/// and a seeded schedule acting on them.
struct Chaos {
    seed: u64,
    rng: StdRng,
    nodes: Vec<TestNode>,
    /// `(a, b)`: the proxy carrying `a`'s log to `b`.
    proxies: BTreeMap<(usize, usize), Proxy>,
    members: Vec<String>,
    dbs: Vec<NodeDb>,
    /// The node killed and not yet restarted (at most one at a time).
    down: Option<usize>,
    started: usize,
    counts: BTreeMap<&'static str, usize>,
}

impl Chaos {
    async fn new(fed: &Federation, seed: u64) -> Chaos {
        let mut nodes = Vec::new();
        for id in NODES {
            nodes.push(fed.node(id).await);
        }
        let mut proxies = BTreeMap::new();
        for a in 0..3 {
            for b in (a + 1)..3 {
                let link = link_through_proxies(fed, &nodes[a], &nodes[b], None).await;
                proxies.insert((a, b), link.a_to_b);
                proxies.insert((b, a), link.b_to_a);
            }
        }
        let mut members = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            node.org_add("b1").await;
            for k in 0..2 {
                let first17 = format!("620801199005170{i}{k}");
                let check =
                    liaison_types::validate::national_id_check_char(&first17).expect("17 digits");
                let national_id = format!("{first17}{check}");
                members.push(node.member_add(&format!("成员{i}{k}"), &national_id).await);
            }
        }
        let dbs = nodes.iter().map(NodeDb::from).collect();
        Chaos {
            seed,
            rng: StdRng::seed_from_u64(seed),
            nodes,
            proxies,
            members,
            dbs,
            down: None,
            started: 0,
            counts: BTreeMap::new(),
        }
    }

    fn count(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }

    /// A running node, at random.
    fn some_up(&mut self) -> usize {
        let up: Vec<usize> = (0..3).filter(|i| Some(*i) != self.down).collect();
        *up.choose(&mut self.rng).expect("a node is up")
    }

    async fn listed(&self, n: usize, incoming: bool, state: &str) -> Vec<pb::TransferView> {
        self.nodes[n]
            .transfers(pb::TransferListRequest {
                incoming,
                outgoing: !incoming,
                state: state.into(),
                ..Default::default()
            })
            .await
    }

    /// Refusals a racing peer can cause (FailedPrecondition: the offer was
    /// decided meanwhile) are part of the game; anything else fails the run.
    fn refused(&self, what: &str, result: Result<(), Status>) -> Option<String> {
        match result {
            Ok(()) => None,
            Err(s) if s.code() == Code::FailedPrecondition => Some(s.message().to_owned()),
            Err(s) => panic!("seed {}: {what}: {s}", self.seed),
        }
    }

    /// Starts a transfer of a member node `n` owns and has not offered.
    async fn start_transfer(&mut self, n: usize) -> String {
        let owned: Vec<String> = ownership::claims(&self.dbs[n])
            .expect("claims")
            .into_iter()
            .map(|c| c.member_id)
            .collect();
        let open: Vec<String> = self
            .listed(n, false, "offered")
            .await
            .into_iter()
            .map(|t| t.member_id)
            .collect();
        let free: Vec<&String> = owned.iter().filter(|m| !open.contains(m)).collect();
        let Some(member) = free.choose(&mut self.rng).map(|m| (*m).clone()) else {
            return format!("{}: nothing to transfer", NODES[n]);
        };
        let to = NODES[(n + self.rng.random_range(1..3)) % 3];
        let what = format!("{}: start {member} to {to}", NODES[n]);
        let result = self.nodes[n].try_transfer_start(&member, to).await;
        let id = result.as_ref().map(|t| t.transfer_id.clone()).ok();
        match self.refused(&what, result.map(|_| ())) {
            None => {
                self.started += 1;
                self.count("start");
                format!("{what}: {}", id.unwrap_or_default())
            }
            // Released meanwhile, by an accept that just arrived.
            Some(why) => format!("{what}: refused: {why}"),
        }
    }

    /// Accepts (mostly) or rejects an offer pending at node `n`.
    async fn decide(&mut self, n: usize) -> String {
        let pending = self.listed(n, true, "pending").await;
        let Some(t) = pending.choose(&mut self.rng).cloned() else {
            return format!("{}: nothing pending", NODES[n]);
        };
        let reject = self.rng.random_bool(0.2);
        let node = &self.nodes[n];
        let (verb, result) = if reject {
            let r = node
                .try_transfer_reject(&t.transfer_id, "other", "随机拒收")
                .await;
            ("reject", r.map(|_| ()))
        } else {
            (
                "accept",
                node.try_transfer_accept(&t.transfer_id, "b1")
                    .await
                    .map(|_| ()),
            )
        };
        let what = format!("{}: {verb} {}", NODES[n], t.transfer_id);
        match self.refused(&what, result) {
            None => {
                self.count(verb);
                what
            }
            // Aborted meanwhile.
            Some(why) => format!("{what}: refused: {why}"),
        }
    }

    /// Cancels an offer open at node `n`.
    async fn cancel(&mut self, n: usize) -> String {
        let offered = self.listed(n, false, "offered").await;
        let Some(t) = offered.choose(&mut self.rng).cloned() else {
            return format!("{}: nothing to cancel", NODES[n]);
        };
        let what = format!("{}: cancel {}", NODES[n], t.transfer_id);
        let result = self.nodes[n].try_transfer_cancel(&t.transfer_id).await;
        match self.refused(&what, result.map(|_| ())) {
            None => {
                self.count("cancel");
                what
            }
            // Released meanwhile.
            Some(why) => format!("{what}: refused: {why}"),
        }
    }

    /// Edits a member at node `n`: refused unless `n` owns it, and refused
    /// naming the transfer while an offer freezes it.
    async fn edit(&mut self, n: usize) -> String {
        let member = self.members.choose(&mut self.rng).expect("members").clone();
        let phone = format!("139{:08}", self.rng.random_range(0..100_000_000u32));
        let what = format!("{}: edit {member}", NODES[n]);
        match self.nodes[n].try_set_phone(&member, &phone).await {
            Ok(_) => {
                self.count("edit");
                what
            }
            Err(s) if s.code() == Code::NotFound => format!("{what}: unknown here"),
            Err(s) if s.code() == Code::FailedPrecondition => {
                if s.message().contains("frozen") {
                    // The offer may have been decided since the refusal
                    // (released, or rejected, cancelled or expired), so
                    // the transfer named counts in any state: it must be
                    // one this node offered of this member.
                    let sent = self.listed(n, false, "").await;
                    let t = sent
                        .iter()
                        .find(|t| t.member_id == member && s.message().contains(&t.transfer_id));
                    assert!(
                        t.is_some(),
                        "seed {}: a frozen member's refusal names its open transfer: {}",
                        self.seed,
                        s.message()
                    );
                    self.count("edit refused: frozen");
                }
                format!("{what}: refused: {}", s.message())
            }
            Err(s) => panic!("seed {}: {what}: {s}", self.seed),
        }
    }

    /// Cuts one direction of one link (at most two at a time), or heals one.
    fn cut_or_heal(&mut self) -> String {
        let cut_now: Vec<(usize, usize)> = self
            .proxies
            .iter()
            .filter(|(_, p)| p.is_cut())
            .map(|(k, _)| *k)
            .collect();
        if cut_now.len() < 2 && self.rng.random_bool(0.5) {
            let keys: Vec<(usize, usize)> = self.proxies.keys().copied().collect();
            let (a, b) = *keys.choose(&mut self.rng).expect("proxies");
            self.proxies[&(a, b)].partition();
            self.count("cut");
            format!("cut {} → {}", NODES[a], NODES[b])
        } else if let Some((a, b)) = cut_now.choose(&mut self.rng).copied() {
            self.proxies[&(a, b)].heal();
            format!("heal {} → {}", NODES[a], NODES[b])
        } else {
            "nothing to heal".into()
        }
    }

    /// Kills a node abruptly (SIGKILL), or starts the killed one again.
    async fn kill_or_start(&mut self) -> String {
        match self.down.take() {
            None => {
                let k = self.rng.random_range(0..3);
                self.nodes[k].kill();
                self.down = Some(k);
                self.count("kill");
                format!("kill {}", NODES[k])
            }
            Some(k) => {
                self.nodes[k].start().await;
                format!("start {}", NODES[k])
            }
        }
    }

    /// One step of the schedule.
    async fn step(&mut self) -> String {
        let roll = self.rng.random_range(0..100);
        let n = self.some_up();
        match roll {
            0..=29 => self.start_transfer(n).await,
            30..=54 => self.decide(n).await,
            55..=59 => self.cancel(n).await,
            60..=67 => self.edit(n).await,
            68..=79 => self.cut_or_heal(),
            80..=87 => self.kill_or_start().await,
            _ => {
                // Let the network run a while: part of the schedule, no
                // check waits on it.
                let ms = self.rng.random_range(10..400);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                format!("let {ms} ms pass")
            }
        }
    }

    /// Heals every link, starts every node, and accepts the offers still
    /// pending until every member has converged.
    async fn settle(&mut self, fed: &Federation, check: impl Fn(&str)) {
        for proxy in self.proxies.values() {
            proxy.heal();
        }
        if let Some(k) = self.down.take() {
            self.nodes[k].start().await;
        }
        for a in 0..3 {
            for b in (a + 1)..3 {
                fed.wait_linked(&self.nodes[a], &self.nodes[b]).await;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            for n in 0..3 {
                for t in self.listed(n, true, "pending").await {
                    // Aborted meanwhile is fine.
                    let _ = self.nodes[n]
                        .try_transfer_accept(&t.transfer_id, "b1")
                        .await;
                }
            }
            check("settling");
            let not_yet: Vec<String> = self
                .members
                .iter()
                .filter_map(|m| ownership::converged(&self.dbs, m).err())
                .collect();
            if not_yet.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "seed {}: not converged within 60 s:\n{}\n\n{}",
                self.seed,
                not_yet.join("\n"),
                fed.dump()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The seeds CI runs the randomized test with: fixed, so that a commit's
/// CI runs the same schedules every time. Fresh seeds run only in the soak
/// (`random_transfers_soak`).
const CI_TRANSFER_SEEDS: [u64; 3] = [2018, 3033, 7074];

/// `LIAISON_TRANSFER_SEED=<n>`: run that seed alone.
fn replay_seed() -> Option<u64> {
    let value = std::env::var("LIAISON_TRANSFER_SEED").ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("LIAISON_TRANSFER_SEED={value} is not a number")),
    )
}

/// Many transfers between three nodes while links are cut and healed and
/// nodes are killed and restarted, on a seeded schedule: the single-owner
/// invariant is checked after every step (and all along, in the
/// background); at the end every link is healed, every node runs, the
/// remaining offers are accepted, and every member must converge
/// ([`ownership::converged`]) with nothing quarantined anywhere.
///
/// The seed decides every choice of the schedule; the real network's
/// timing still varies from run to run, so a failure is replayed with
/// `LIAISON_TRANSFER_SEED=<n>`, perhaps more than once.
async fn randomized(name: &str, seed: u64, budget: Budget) {
    println!("{name}: seed {seed} (replay: LIAISON_TRANSFER_SEED={seed})");
    let began = Instant::now();
    let fed = Federation::new(name);
    let mut chaos = Chaos::new(&fed, seed).await;
    let watch = Watch::start(chaos.dbs.clone(), Duration::from_millis(20));
    let dbs = chaos.dbs.clone();
    let check = |step: &str| {
        let step = format!("seed {seed} (replay: LIAISON_TRANSFER_SEED={seed}), {step}");
        ownership::assert_single_owner(&dbs, &step);
        watch.assert_clean(&step);
    };
    check("set up");

    let mut steps = 0;
    while chaos.started < budget.transfers && steps < budget.steps {
        steps += 1;
        let what = chaos.step().await;
        println!("step {steps}: {what}");
        check(&format!("step {steps}: {what}"));
    }
    println!("settling after {steps} steps, {:?}", began.elapsed());
    chaos.settle(&fed, check).await;

    let generations: Vec<u64> = chaos
        .members
        .iter()
        .map(|m| ownership::converged(&dbs, m).expect("converged").generation)
        .collect();
    let report = watch.finish();
    assert!(
        report.violations.is_empty(),
        "seed {seed}: {:?}",
        report.violations
    );
    for node in &chaos.nodes {
        let held = node.quarantined().await;
        assert!(
            held.is_empty(),
            "seed {seed}: {} quarantined {held:?}",
            node.node_id
        );
    }
    let mut completed = 0;
    for n in 0..3 {
        completed += chaos.listed(n, false, "completed").await.len();
    }
    println!(
        "{name}: seed {seed}: {steps} steps, {:?}, {completed} transfers completed, \
         generations {generations:?}, {} background checks ({} unreadable), {:?}",
        chaos.counts,
        report.passes,
        report.read_errors.len(),
        began.elapsed()
    );
}

const CI_BUDGET: Budget = Budget {
    transfers: 30,
    steps: 300,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_transfers_with_partitions_and_restarts_keep_one_owner_and_converge() {
    let seeds = replay_seed().map_or(CI_TRANSFER_SEEDS.to_vec(), |seed| vec![seed]);
    for seed in seeds {
        randomized("transfer-random", seed, CI_BUDGET).await;
    }
}

/// The soak: `LIAISON_TRANSFER_SEEDS` fresh seeds (default 200) at the CI
/// budget, from `LIAISON_TRANSFER_FIRST_SEED` (default: drawn at random and
/// printed); `LIAISON_TRANSFER_STEPS` and `LIAISON_TRANSFER_TRANSFERS`
/// change the budget. The first failure stops it, naming its seed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: LIAISON_TRANSFER_SEEDS runs of about half a minute each; run with --ignored"]
async fn random_transfers_soak() {
    let env = |name: &str| {
        std::env::var(name).ok().map(|v| {
            v.trim()
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
        })
    };
    let count = env("LIAISON_TRANSFER_SEEDS").unwrap_or(200);
    let first = env("LIAISON_TRANSFER_FIRST_SEED").unwrap_or_else(|| rand::random::<u32>().into());
    let budget = Budget {
        transfers: env("LIAISON_TRANSFER_TRANSFERS").map_or(CI_BUDGET.transfers, |n| n as usize),
        steps: env("LIAISON_TRANSFER_STEPS").map_or(CI_BUDGET.steps, |n| n as usize),
    };
    println!("transfer soak: seeds {first}..{}", first + count);
    let began = Instant::now();
    for seed in first..first + count {
        randomized("transfer-soak", seed, budget).await;
        println!(
            "transfer soak: seed {seed} passed, {:?} in all",
            began.elapsed()
        );
    }
}

//! Unauthenticated connections cannot starve peers (docs/replication.md,
//! Links, heartbeats and limits): floods of TCP connections that never
//! finish a TLS handshake, from one address or from many, silent or
//! trickling bytes, against a node whose peer links, replicates and links
//! again while the flood goes on; and the handshake deadline, which
//! trickled bytes do not put off.

use std::time::{Duration, Instant};

use liaison_tests::*;

/// The flooded node audits at most this many refusals per source address
/// and minute (ten times as many in all), as in production.
const LOGGED_PER_MINUTE: u64 = 2;

/// The flooded node: refusals audited as in production, every other limit
/// the tests' own.
async fn flooded_node(fed: &Federation) -> TestNode {
    fed.start(
        fed.config("pingliang")
            .limit("refusals_logged_per_minute", LOGGED_PER_MINUTE),
    )
    .await
}

/// Waits until the flood has had `n` connections dropped by the node: the
/// node is shedding it.
async fn wait_dropped(fed: &Federation, flood: &Flood, n: u64) {
    fed.wait_until(
        DEFAULT_WAIT,
        &format!("the node dropped {n} flood connections"),
        async || flood.stats().dropped >= n,
    )
    .await;
}

/// With `flood` running against `pingliang`'s federation port: `lanzhou`
/// links to it under an agreement and pulls a member created during the
/// flood; then `lanzhou` restarts, links again through the flood and
/// pulls a second member. The flood is still running at the end.
async fn peer_links_and_replicates(
    fed: &Federation,
    flood: &Flood,
    pingliang: &TestNode,
    lanzhou: &mut TestNode,
) {
    fed.link_serving(pingliang, lanzhou, "6201").await;
    fed.agree(pingliang, lanzhou, "pingliang-lanzhou").await;
    pingliang.org_add("b1").await;
    let away = async |name: &str, national_id: &str| {
        let id = pingliang.member_add(name, national_id).await;
        pingliang
            .outflow_register(&id, "620102", "2026-10-01")
            .await;
        id
    };
    let first_member = away("张三", "620801199005170014").await;
    let copy = lanzhou
        .wait_for(DEFAULT_WAIT, "lanzhou holds the member", async || {
            lanzhou.show(&first_member).await
        })
        .await;
    assert_eq!((copy.owned, copy.owner.as_str()), (false, "pingliang"));

    // A new handshake, from the peer's side, through the flood.
    let opened_before = flood.stats().opened;
    lanzhou.restart().await;
    fed.wait_linked(pingliang, lanzhou).await;
    let second_member = away("李四", "620801199106180027").await;
    lanzhou
        .wait_for(
            DEFAULT_WAIT,
            "lanzhou holds the second member",
            async || lanzhou.show(&second_member).await,
        )
        .await;
    fed.wait_until(DEFAULT_WAIT, "the flood still running", async || {
        flood.stats().opened > opened_before
    })
    .await;
}

/// The refusals of the flood that reached `node`'s audit log, from
/// sources whose address starts with `prefix`.
fn audited_refusals(node: &TestNode, prefix: &str) -> Vec<AuditEntry> {
    node.audit()
        .into_iter()
        .filter(|e| {
            e.action == "federation.connect"
                && e.outcome == "refused"
                && e.target.starts_with(prefix)
        })
        .collect()
}

/// The number of addresses an audit entry says were refused this minute.
fn addresses_reported(entry: &AuditEntry) -> u64 {
    let (before, _) = entry
        .detail
        .split_once(" refused this minute")
        .unwrap_or_else(|| panic!("no count of addresses in {entry:?}"));
    let count = before.rsplit('(').next().unwrap_or_default();
    let count = count
        .trim_end_matches(" addresses")
        .trim_end_matches(" address");
    count
        .parse()
        .unwrap_or_else(|_| panic!("no count of addresses in {entry:?}"))
}

/// Minute windows the audit limiter may have opened since `since`.
fn minutes_since(since: Instant) -> u64 {
    since.elapsed().as_secs() / 60 + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_address_does_not_keep_a_peer_from_linking_and_replicating() {
    let fed = Federation::new("flood-one-address");
    let pingliang = flooded_node(&fed).await;
    let mut lanzhou = fed.node("lanzhou").await;
    // More silent connections (520) than `connections_max` (512), all from
    // 127.0.0.2, each reopened 10 ms after the node drops it, so a place
    // the node frees is taken again long before a peer's next attempt:
    // were they counted with the peers', the peer would find no place.
    let began = Instant::now();
    let flood = Flood::start(
        pingliang.federation_addr(),
        FloodPlan::silent(loopback_sources(2, 1), 520, Duration::from_millis(10)),
    );
    // One address holds at most `handshakes_per_address_max` (8) places:
    // the node drops the rest as they come.
    wait_dropped(&fed, &flood, 512).await;

    peer_links_and_replicates(&fed, &flood, &pingliang, &mut lanzhou).await;
    // Read while the flood runs, so no entry is of the flood's own closing.
    let refusals = audited_refusals(&pingliang, "127.0.0.2:");
    let stats = flood.stop();
    eprintln!("one address, silent: {stats:?}");

    assert!(!refusals.is_empty(), "the flood's refusals are audited");
    assert!(
        refusals.len() as u64 <= LOGGED_PER_MINUTE * minutes_since(began),
        "at most {LOGGED_PER_MINUTE} entries per minute from one address: {refusals:#?}"
    );
    for entry in &refusals {
        assert!(
            entry.detail.contains("(limits.handshakes_per_address_max)"),
            "{entry:?}"
        );
        assert_eq!(addresses_reported(entry), 1, "{entry:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_flood_from_many_addresses_does_not_keep_a_peer_from_linking_and_replicating() {
    const SOURCES: u8 = 66;
    let fed = Federation::new("flood-many-addresses");
    let pingliang = flooded_node(&fed).await;
    let mut lanzhou = fed.node("lanzhou").await;
    // 66 addresses, each within its cap of 8: 528 connections, more than
    // `connections_max` (512) and twice the pool of handshakes (256), which
    // therefore stays full and drops its oldest for each new one. Each
    // connection sends a byte every 250 ms, and is reopened 250 ms after
    // the node drops it.
    let began = Instant::now();
    let flood = Flood::start(
        pingliang.federation_addr(),
        FloodPlan::silent(loopback_sources(10, SOURCES), 8, Duration::from_millis(250))
            .trickling(Duration::from_millis(250)),
    );
    // Every connection was admitted: the pool is full and turning over.
    wait_dropped(&fed, &flood, u64::from(SOURCES) * 8 - 256).await;

    peer_links_and_replicates(&fed, &flood, &pingliang, &mut lanzhou).await;
    // Read while the flood runs, so no entry is of the flood's own closing.
    let refusals = audited_refusals(&pingliang, "127.0.0.");
    let stats = flood.stop();
    eprintln!("{SOURCES} addresses, trickling: {stats:?}");
    assert!(
        stats.bytes_sent > stats.opened * 5,
        "the flood trickled, past each record's header: {stats:?}"
    );

    // Refusals from many addresses share a ceiling of ten times one
    // address's allowance, and say how many addresses were refused: more
    // than one, and no more than the flood's and the peer's.
    assert!(
        refusals.len() as u64 <= 10 * LOGGED_PER_MINUTE * minutes_since(began),
        "{refusals:#?}"
    );
    let most = refusals.iter().map(addresses_reported).max().unwrap_or(0);
    assert!(
        (2..=u64::from(SOURCES) + 1).contains(&most),
        "the entries count the addresses refused: {refusals:#?}"
    );
    assert!(
        refusals
            .iter()
            .any(|e| e.detail.contains("(limits.handshakes_max)")),
        "the full pool dropped its oldest: {refusals:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_is_cut_at_its_deadline_however_it_trickles() {
    const DEADLINE_MS: u64 = 1_000;
    let fed = Federation::new("flood-deadline");
    let pingliang = fed
        .start(
            fed.config("pingliang")
                .limit("handshake_timeout_ms", DEADLINE_MS),
        )
        .await;
    // One connection sending a byte every 100 ms: never idle, never done.
    let flood = Flood::start(
        pingliang.federation_addr(),
        FloodPlan::silent(loopback_sources(3, 1), 1, Duration::ZERO)
            .trickling(Duration::from_millis(100))
            .once(),
    );
    wait_dropped(&fed, &flood, 1).await;
    let stats = flood.stop();
    // The node's deadline runs from its accept, which comes after the
    // flood's connect returned, and the flood sees the close after the
    // node made it.
    assert!(
        stats.longest_held_ms >= DEADLINE_MS,
        "not cut before its deadline: {stats:?}"
    );
    // The record it announced (512 bytes after the 5-byte header) was
    // never complete: the deadline cut it, as its audit entry says.
    assert!(
        stats.bytes_sent > 5 && stats.bytes_sent < 5 + 512,
        "it trickled, and never finished its record: {stats:?}"
    );
    let entry = pingliang
        .wait_audit("the handshake's deadline", |e| {
            e.action == "federation.connect" && e.target.starts_with("127.0.0.3:")
        })
        .await;
    assert!(
        entry
            .detail
            .starts_with("TLS handshake timed out (limits.handshake_timeout_ms)"),
        "{entry:?}"
    );
}

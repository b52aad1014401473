//! Issue 24, certificates: a reload that revokes a peer cuts its open
//! connections both ways and refuses its new ones, while other peers'
//! streams go on; a revocation list the federation CA did not sign is
//! refused at reload (the old one kept) and at start; node.toml's `[tls]`
//! section is read again at every reload.

use std::path::{Path, PathBuf};

use liaison_tests::{
    describe_output, liaisonctl, metric, national_id, reconnects, scrape, Federation, TestNode,
    DEFAULT_WAIT, START_TIMEOUT,
};

/// The CA directory of a test's federation.
fn ca_dir(fed: &Federation) -> PathBuf {
    fed.ca_cert().parent().expect("the CA directory").to_owned()
}

/// `liaisonctl ca revoke CERT --ca CA_DIR`; returns the list it wrote.
fn revoke(ca_dir: &Path, cert: &Path) -> PathBuf {
    let out = liaisonctl(&[
        "ca",
        "revoke",
        cert.to_str().expect("UTF-8"),
        "--ca",
        ca_dir.to_str().expect("UTF-8"),
    ]);
    assert!(out.status.success(), "{}", describe_output(&out));
    ca_dir.join(liaison_types::identity::CRL_FILE)
}

/// A member of `home`'s branch b1 who left 30 days ago for `place`.
async fn away(home: &TestNode, name: &str, n: u32, place: &str) -> String {
    let id = home
        .member_add(name, &national_id(&format!("62080119900517{n:03}")))
        .await;
    let left = chrono::Utc::now().date_naive() - chrono::Duration::days(30);
    home.outflow_register(&id, place, &left.to_string()).await;
    id
}

/// Every open link of `node` with `peer`, both ways.
fn links_with(node: &TestNode, peer: &str) -> (bool, bool) {
    let view = node.peer_info(peer).expect("a peer");
    (view.outbound_up, view.inbound_up)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_peer_is_cut_at_the_reload_while_another_streams_on() {
    let fed = Federation::new("certs-cut");
    let ca = ca_dir(&fed);
    let crl = fed.dir().join("federation.crl");
    liaison_types::identity::ca_crl(&ca, &crl, 30).expect("ca crl");
    let mut config = fed.config("pingliang").with_metrics();
    config.crl = Some(crl.clone());
    let pingliang = fed.start(config).await;
    let lanzhou = fed.node("lanzhou").await;
    let tianshui = fed.start(fed.config("tianshui").with_metrics()).await;
    fed.link_serving(&pingliang, &lanzhou, "620102").await;
    fed.link_serving(&pingliang, &tianshui, "620502").await;
    pingliang.org_add("b1").await;
    fed.agree(&pingliang, &tianshui, "PL-TS-1").await;
    let first = away(&pingliang, "甲", 1, "620502").await;
    tianshui
        .wait_for(DEFAULT_WAIT, "the first member at tianshui", async || {
            tianshui.show(&first).await
        })
        .await;
    assert_eq!(links_with(&pingliang, "lanzhou"), (true, true));
    let tianshui_before = reconnects(&scrape(&tianshui).await, "pingliang");
    let pingliang_scrape = scrape(&pingliang).await;
    let pingliang_before = reconnects(&pingliang_scrape, "tianshui");
    let due = metric(&pingliang_scrape, "liaison_crl_next_update_days", &[]);
    assert!(due.is_some_and(|d| (29.0..=30.0).contains(&d)), "{due:?}");

    // lanzhou's certificate revoked, the list copied in place, reloaded:
    // both of lanzhou's connections (its stream at pingliang and
    // pingliang's at lanzhou) are closed at once.
    std::fs::copy(revoke(&ca, &lanzhou.config().cert), &crl).expect("copy the list");
    let reloaded = pingliang.ctl_ok(&["reload"]);
    assert!(
        reloaded.contains("closed 2 connection(s) of lanzhou"),
        "{reloaded}"
    );
    pingliang
        .wait_until(DEFAULT_WAIT, "lanzhou's links down", async || {
            links_with(&pingliang, "lanzhou") == (false, false)
        })
        .await;
    let cut: Vec<_> = pingliang
        .audit()
        .into_iter()
        .filter(|e| e.action == "federation.cut")
        .collect();
    assert_eq!(cut.len(), 1, "one entry for the peer: {cut:?}");
    assert_eq!(cut[0].target, "lanzhou");
    assert!(cut[0].is("federation.cut", "refused", "revoked"), "{cut:?}");

    // lanzhou's next connections are refused by the handshake, both ways.
    pingliang
        .wait_audit("lanzhou's reconnection refused", |e| {
            e.is("federation.connect", "refused", "revoked")
        })
        .await;
    pingliang
        .wait_audit("pingliang's own link to lanzhou refused", |e| {
            e.action == "federation.pull"
                && e.target == "lanzhou"
                && e.detail.to_lowercase().contains("revoked")
        })
        .await;
    assert_eq!(links_with(&pingliang, "lanzhou"), (false, false));

    // tianshui's streams never dropped, and what came after reached it.
    let second = away(&pingliang, "乙", 2, "620502").await;
    tianshui
        .wait_for(DEFAULT_WAIT, "the second member at tianshui", async || {
            tianshui.show(&second).await
        })
        .await;
    assert_eq!(
        reconnects(&scrape(&tianshui).await, "pingliang"),
        tianshui_before
    );
    assert_eq!(
        reconnects(&scrape(&pingliang).await, "tianshui"),
        pingliang_before
    );
    assert_eq!(links_with(&pingliang, "tianshui"), (true, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_another_ca_signed_is_refused_at_reload_and_at_start() {
    let fed = Federation::new("certs-forged");
    let ca = ca_dir(&fed);
    // The federation's list revokes one certificate.
    let crl = fed.dir().join("federation.crl");
    std::fs::copy(revoke(&ca, &fed.issue("wuwei").cert), &crl).expect("copy the list");
    let mut config = fed.config("pingliang");
    config.crl = Some(crl.clone());
    let mut pingliang = fed.start(config.clone()).await;
    assert_eq!(pingliang.status().await.crl_revoked, 1);

    // A CA made for a federation of the same name signs an empty list.
    let twin = fed.dir().join("twin-ca");
    liaison_types::identity::ca_init(fed.federation_name(), &twin, 30, false).expect("ca init");
    liaison_types::identity::ca_crl(&twin, &crl, 30).expect("ca crl");
    let refused = pingliang.ctl(&["reload"]);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{}",
        describe_output(&refused)
    );
    let said = String::from_utf8_lossy(&refused.stderr);
    for part in [
        "federation.crl",
        "not signed by this node's federation CA",
        "liaisonctl ca crl",
        "goes on with the credentials it had",
    ] {
        assert!(said.contains(part), "`{part}` in: {said}");
    }
    assert_eq!(pingliang.status().await.crl_revoked, 1, "the old list kept");
    pingliang
        .wait_audit("the refused reload audited", |e| {
            e.is("node.reload", "refused", "not signed")
        })
        .await;

    // A node does not start with it either.
    pingliang.stop();
    let out = fed.run_node_to_exit(&config, START_TIMEOUT);
    assert_eq!(out.status.code(), Some(2), "{}", describe_output(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("not signed by this node's federation CA"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_named_in_node_toml_takes_effect_at_reload() {
    let fed = Federation::new("certs-toml");
    let ca = ca_dir(&fed);
    let pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    fed.link(&pingliang, &lanzhou).await;
    assert_eq!(pingliang.status().await.crl_path, "");

    // pingliang started with no list; node.toml now names the CA's list,
    // which revokes lanzhou, and changes a setting a reload cannot apply.
    let list = revoke(&ca, &lanzhou.config().cert);
    let mut config = pingliang.config().clone();
    config.crl = Some(list.clone());
    config.display_name = "平凉市委组织部".into();
    config.write();
    let reloaded = pingliang.ctl_ok(&["reload"]);
    assert!(reloaded.contains("of lanzhou"), "{reloaded}");
    assert!(
        reloaded.contains("needs a restart: display_name"),
        "{reloaded}"
    );
    let status = pingliang.status().await;
    assert_eq!(status.crl_path, list.display().to_string());
    assert_eq!(status.crl_revoked, 1);
    assert_eq!(status.display_name, pingliang.display_name, "not applied");
    pingliang
        .wait_until(DEFAULT_WAIT, "lanzhou's links down", async || {
            links_with(&pingliang, "lanzhou") == (false, false)
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_near_or_past_its_next_update_is_on_the_todo_list() {
    let fed = Federation::new("certs-stale");
    let crl = fed.dir().join("federation.crl");
    liaison_types::identity::ca_crl(&ca_dir(&fed), &crl, 30).expect("ca crl");
    let mut config = fed.config("pingliang").clockable();
    config.crl = Some(crl);
    let pingliang = fed.start(config).await;
    let crl_items = || {
        pingliang
            .ctl_json(&["todo"])
            .into_iter()
            .map(|(_, item)| item)
            .filter(|item| item["kind"] == "crl_expiring")
            .collect::<Vec<_>>()
    };
    assert!(crl_items().is_empty(), "30 days ahead: no item");
    pingliang.ctl_ok(&["debug", "clock", "--offset", "25d"]);
    let items = crl_items();
    assert_eq!(items.len(), 1, "{items:?}");
    assert!(
        items[0]["subject"]
            .as_str()
            .is_some_and(|s| s.contains("due for renewal in 4 days")),
        "{items:?}"
    );
    assert_eq!(items[0]["days_left"], 4);
    pingliang.ctl_ok(&["debug", "clock", "--offset", "31d"]);
    let items = crl_items();
    assert!(
        items[0]["subject"]
            .as_str()
            .is_some_and(|s| s.contains("past its next update")),
        "{items:?}"
    );
    assert!(
        items[0]["detail"]
            .as_str()
            .is_some_and(|s| s.contains("keeps enforcing it")),
        "{items:?}"
    );
}

//! `liaisonctl peer`: other regions' nodes this node trusts and syncs with,
//! and how far replication with each has come.

use clap::Subcommand;
use liaison_proto::v1 as pb;
use liaisonctl::output::{self, json_line, Format, Table};
use serde_json::json;

use super::refs;
use super::{print_list, Admin, Failure};

#[derive(Debug, Subcommand)]
pub enum PeerCommand {
    /// Admit a node as a peer.
    Add {
        node_id: String,
        /// Where to reach it: https://HOST:PORT.
        #[arg(long)]
        endpoint: String,
        /// Pin the peer's certificate: sha256:<hex>.
        #[arg(long)]
        fingerprint: Option<String>,
        /// A display name, e.g. 兰州.
        #[arg(long)]
        name: Option<String>,
        /// Places the peer serves: names (兰州, 甘肃省) or codes (2, 4 or 6 digits: province, city, county).
        #[arg(long, num_args = 1..)]
        serves: Vec<String>,
    },
    /// List peers and their links; with --pending, nodes that called but are not peers.
    List {
        #[arg(long)]
        pending: bool,
    },
    /// One peer in detail.
    Show { node_id: String },
    /// Replication with each peer (or one): cursors, lag, backlog, rate, quarantine.
    Status {
        /// Only this peer.
        node_id: Option<String>,
    },
    /// Stop syncing with a peer and cut its open streams; it stays a peer.
    Pause { node_id: String },
    /// Resume syncing with a paused peer.
    Resume { node_id: String },
    /// Reconnect to a peer now instead of waiting for the backoff.
    Retry { node_id: String },
    /// Remove a peer. Refused while a transfer with it is open or awaits its
    /// receipt, or an agreement with it is active, unless --force.
    Remove {
        node_id: String,
        /// First cancel the open transfers and terminate the agreements with
        /// the peer (reason: peer removed).
        #[arg(long)]
        force: bool,
    },
    /// Keep refusing a pending node and stop listing it.
    Ignore { node_id: String },
    /// Set whether incoming transfers from a peer are accepted without an
    /// operator: those of members covered by an active agreement with it.
    Policy(PolicyArgs),
}

#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("auto_accept")
        .args(["auto_accept_into", "no_auto_accept"])
        .required(true)
))]
pub struct PolicyArgs {
    node_id: String,
    /// Accept such transfers into this branch of this node (an org id).
    #[arg(long, value_name = "ORG", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    auto_accept_into: Option<String>,
    /// Turn auto-accept off: every incoming transfer waits for `transfer accept`.
    #[arg(long)]
    no_auto_accept: bool,
}

impl PolicyArgs {
    fn request(self) -> pb::PeerPolicyRequest {
        pb::PeerPolicyRequest {
            node_id: self.node_id,
            // Empty turns it off.
            auto_accept_branch: self.auto_accept_into.unwrap_or_default(),
        }
    }
}

pub async fn run(admin: &mut Admin, format: Format, command: PeerCommand) -> Result<(), Failure> {
    let peer_ref = |node_id: String| pb::PeerRef { node_id };
    match command {
        PeerCommand::Add {
            node_id,
            endpoint,
            fingerprint,
            name,
            serves,
        } => {
            let serves = super::places::codes(&serves)?;
            let peer = admin
                .peer_add(pb::PeerAddRequest {
                    node_id,
                    endpoint,
                    fingerprint: fingerprint.unwrap_or_default(),
                    display_name: name.unwrap_or_default(),
                    serves,
                })
                .await?
                .into_inner();
            print_peers(format, &[peer]);
        }
        PeerCommand::List { pending } => {
            let list = admin
                .peer_list(pb::PeerListRequest { pending })
                .await?
                .into_inner();
            if pending {
                print_pending(format, &list.pending);
            } else {
                print_peers(format, &list.peers);
            }
        }
        PeerCommand::Show { node_id } => {
            let node_id = refs::peer(admin, &node_id, "").await?;
            let peer = admin.peer_show(peer_ref(node_id)).await?.into_inner();
            match format {
                Format::Json => print_peers(format, &[peer]),
                Format::Table => output::print_out(&peer_detail(&peer)),
            }
        }
        PeerCommand::Status { node_id } => {
            let node_id = match node_id {
                Some(peer) => Some(refs::peer(admin, &peer, "").await?),
                None => None,
            };
            let peers = admin
                .peer_status(pb::PeerStatusRequest {
                    node_id: node_id.unwrap_or_default(),
                })
                .await?
                .into_inner()
                .peers;
            print_list(
                format,
                "peer_replication",
                &peers,
                replication_json,
                replication_table,
            );
        }
        PeerCommand::Pause { node_id } => {
            let node_id = refs::peer(admin, &node_id, "peer.pause").await?;
            let peer = admin.peer_pause(peer_ref(node_id)).await?.into_inner();
            print_peers(format, &[peer]);
        }
        PeerCommand::Resume { node_id } => {
            let node_id = refs::peer(admin, &node_id, "peer.resume").await?;
            let peer = admin.peer_resume(peer_ref(node_id)).await?.into_inner();
            print_peers(format, &[peer]);
        }
        PeerCommand::Retry { node_id } => {
            let node_id = refs::peer(admin, &node_id, "peer.retry").await?;
            let peer = admin.peer_retry(peer_ref(node_id)).await?.into_inner();
            print_peers(format, &[peer]);
        }
        PeerCommand::Remove { node_id, force } => {
            let node_id = refs::peer(admin, &node_id, "peer.remove").await?;
            let removed = admin
                .peer_remove(pb::PeerRemoveRequest { node_id, force })
                .await?
                .into_inner();
            match format {
                Format::Json => json_line("peer_removed", json!({ "node_id": removed.node_id })),
                Format::Table => output::print_out(&format!("removed peer {}\n", removed.node_id)),
            }
        }
        PeerCommand::Ignore { node_id } => {
            let pending = admin.peer_ignore(peer_ref(node_id)).await?.into_inner();
            print_pending(format, &[pending]);
        }
        PeerCommand::Policy(mut args) => {
            args.node_id = refs::peer(admin, &args.node_id, "peer.policy").await?;
            if let Some(branch) = &args.auto_accept_into {
                args.auto_accept_into = Some(refs::org(admin, branch, "peer.policy").await?);
            }
            let peer = admin.peer_policy(args.request()).await?.into_inner();
            match format {
                Format::Json => print_peers(format, &[peer]),
                Format::Table => output::print_out(&peer_detail(&peer)),
            }
        }
    }
    Ok(())
}

fn peer_json(p: &pb::Peer) -> serde_json::Value {
    json!({
        "node_id": p.node_id, "display_name": p.display_name, "endpoint": p.endpoint,
        "fingerprint": p.fingerprint, "state": p.state, "serves": p.serves, "added_at_ms": p.added_at_ms,
        "outbound_up": p.outbound_up, "inbound_up": p.inbound_up, "last_contact_ms": p.last_contact_ms,
        "last_error": p.last_error, "next_attempt_ms": p.next_attempt_ms,
        "remote_display_name": p.remote_display_name, "remote_protocol_version": p.remote_protocol_version,
        "remote_software_version": p.remote_software_version,
        "auto_accept_branch": p.auto_accept_branch,
    })
}

/// The auto-accept policy for people.
fn auto_accept(branch: &str) -> String {
    if branch.is_empty() {
        "off".into()
    } else {
        format!("into {branch} (members under an active agreement)")
    }
}

/// Both streams of a peer link: ours from the peer (out) and the peer's from us (in).
fn link(outbound_up: bool, inbound_up: bool) -> String {
    let arrow = |up: bool| if up { "up" } else { "down" };
    format!("out {} / in {}", arrow(outbound_up), arrow(inbound_up))
}

fn print_peers(format: Format, peers: &[pb::Peer]) {
    match format {
        Format::Json => peers.iter().for_each(|p| json_line("peer", peer_json(p))),
        Format::Table => {
            let mut table = Table::new(&[
                "NODE",
                "NAME",
                "STATE",
                "LINK",
                "LAST CONTACT",
                "NEXT TRY",
                "LAST ERROR",
            ]);
            for p in peers {
                table.row(vec![
                    p.node_id.clone(),
                    p.display_name.clone(),
                    p.state.clone(),
                    link(p.outbound_up, p.inbound_up),
                    output::time(p.last_contact_ms),
                    output::time(p.next_attempt_ms),
                    if p.last_error.is_empty() {
                        "-".into()
                    } else {
                        p.last_error.clone()
                    },
                ]);
            }
            table.print();
        }
    }
}

fn peer_detail(p: &pb::Peer) -> String {
    let or_dash = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    format!(
        "node           {}\nname           {}\nendpoint       {}\nfingerprint    {}\nstate          {}\nserves         {}\nadded          {}\nlink           {}\nlast contact   {}\nnext attempt   {}\nlast error     {}\nremote         {} (protocol {}, version {})\nauto accept    {}\n",
        p.node_id,
        p.display_name,
        p.endpoint,
        or_dash(&p.fingerprint),
        p.state,
        if p.serves.is_empty() { "-".into() } else { p.serves.iter().map(|c| super::places::show(c)).collect::<Vec<_>>().join(", ") },
        output::time(p.added_at_ms),
        link(p.outbound_up, p.inbound_up),
        output::time(p.last_contact_ms),
        output::time(p.next_attempt_ms),
        or_dash(&p.last_error),
        or_dash(&p.remote_display_name),
        p.remote_protocol_version,
        or_dash(&p.remote_software_version),
        auto_accept(&p.auto_accept_branch),
    )
}

fn print_pending(format: Format, pending: &[pb::PendingPeer]) {
    match format {
        Format::Json => pending.iter().for_each(|p| {
            json_line(
                "pending_peer",
                json!({
                    "node_id": p.node_id, "remote_addr": p.remote_addr, "endpoint": p.endpoint,
                    "fingerprint": p.fingerprint, "first_attempt_ms": p.first_attempt_ms,
                    "last_attempt_ms": p.last_attempt_ms, "attempts": p.attempts, "ignored": p.ignored,
                }),
            )
        }),
        Format::Table => {
            let mut table = Table::new(&["NODE", "FROM", "ENDPOINT", "FIRST ATTEMPT", "LAST ATTEMPT", "ATTEMPTS", "FINGERPRINT"]);
            for p in pending {
                table.row(vec![
                    p.node_id.clone(),
                    p.remote_addr.clone(),
                    if p.endpoint.is_empty() { "-".into() } else { p.endpoint.clone() },
                    output::time(p.first_attempt_ms),
                    output::time(p.last_attempt_ms),
                    p.attempts.to_string(),
                    p.fingerprint.clone(),
                ]);
            }
            table.print();
        }
    }
}

fn replication_json(r: &pb::PeerReplication) -> serde_json::Value {
    json!({
        "node_id": r.node_id, "peer_log_id": r.peer_log_id, "my_cursor": r.my_cursor,
        "peer_head": r.peer_head, "backlog_for_peer": r.backlog_for_peer, "peer_cursor": r.peer_cursor,
        "sent_to_peer": r.peer_cursor,
        "events_per_second": r.events_per_second, "last_batch_ms": r.last_batch_ms,
        "quarantined": r.quarantined, "applied_total": r.applied_total,
        "outbound_up": r.outbound_up, "inbound_up": r.inbound_up,
    })
}

fn replication_table(peers: &[pb::PeerReplication]) -> Table {
    let mut table = Table::new(&[
        "NODE",
        "LINK",
        "MY CURSOR",
        "PEER HEAD",
        "LAG",
        "SENT TO PEER",
        "NOT YET SENT",
        "EVENTS/S",
        "LAST BATCH",
        "QUARANTINED",
    ]);
    for r in peers {
        table.row(vec![
            r.node_id.clone(),
            link(r.outbound_up, r.inbound_up),
            r.my_cursor.to_string(),
            r.peer_head.to_string(),
            r.peer_head.saturating_sub(r.my_cursor).to_string(),
            r.peer_cursor.to_string(),
            r.backlog_for_peer.to_string(),
            format!("{:.1}", r.events_per_second),
            output::time(r.last_batch_ms),
            r.quarantined.to_string(),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{parse, refused};
    use crate::Command;

    fn replication(node_id: &str, my_cursor: u64, peer_head: u64) -> pb::PeerReplication {
        pb::PeerReplication {
            node_id: node_id.into(),
            peer_log_id: "log-1".into(),
            my_cursor,
            peer_head,
            backlog_for_peer: 7,
            peer_cursor: 40,
            events_per_second: 2.5,
            last_batch_ms: 0,
            quarantined: 1,
            applied_total: 90,
            outbound_up: true,
            inbound_up: false,
        }
    }

    #[test]
    fn status_takes_an_optional_node() {
        for (args, want) in [
            (&["peer", "status"][..], None),
            (&["peer", "status", "lanzhou"][..], Some("lanzhou")),
        ] {
            match parse(args) {
                Command::Peer(PeerCommand::Status { node_id }) => {
                    assert_eq!(node_id.as_deref(), want)
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn lag_saturates_when_the_cursor_is_ahead() {
        let text =
            replication_table(&[replication("lanzhou", 40, 55), replication("xian", 60, 50)])
                .render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            [
                "NODE",
                "LINK",
                "MY",
                "CURSOR",
                "PEER",
                "HEAD",
                "LAG",
                "SENT",
                "TO",
                "PEER",
                "NOT",
                "YET",
                "SENT",
                "EVENTS/S",
                "LAST",
                "BATCH",
                "QUARANTINED"
            ]
        );
        let lanzhou: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            lanzhou,
            [
                "lanzhou", "out", "up", "/", "in", "down", "40", "55", "15", "40", "7", "2.5", "-",
                "1"
            ]
        );
        let xian: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(xian[8], "0", "{text}");
    }

    fn policy(args: &[&str]) -> pb::PeerPolicyRequest {
        let argv: Vec<&str> = ["peer", "policy"].iter().chain(args).copied().collect();
        match parse(&argv) {
            Command::Peer(PeerCommand::Policy(args)) => args.request(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn policy_turns_auto_accept_on_or_off() {
        assert_eq!(
            policy(&["lanzhou", "--auto-accept-into", "pl-kt-01"]),
            pb::PeerPolicyRequest {
                node_id: "lanzhou".into(),
                auto_accept_branch: "pl-kt-01".into(),
            }
        );
        assert_eq!(
            policy(&["lanzhou", "--no-auto-accept"]),
            pb::PeerPolicyRequest {
                node_id: "lanzhou".into(),
                auto_accept_branch: String::new(),
            }
        );
        assert!(refused(&["peer", "policy", "lanzhou"]));
        assert!(refused(&[
            "peer",
            "policy",
            "lanzhou",
            "--auto-accept-into",
            "pl-kt-01",
            "--no-auto-accept"
        ]));
        assert!(refused(&[
            "peer",
            "policy",
            "lanzhou",
            "--auto-accept-into",
            ""
        ]));
    }

    #[test]
    fn peer_shows_its_auto_accept_policy() {
        let mut peer = pb::Peer {
            node_id: "lanzhou".into(),
            display_name: "兰州".into(),
            state: "active".into(),
            ..Default::default()
        };
        let line = |p: &pb::Peer| {
            peer_detail(p)
                .lines()
                .find_map(|l| l.strip_prefix("auto accept").map(|v| v.trim().to_owned()))
        };
        assert_eq!(line(&peer).as_deref(), Some("off"));
        assert_eq!(peer_json(&peer)["auto_accept_branch"], "");
        peer.auto_accept_branch = "pl-kt-01".into();
        assert_eq!(
            line(&peer).as_deref(),
            Some("into pl-kt-01 (members under an active agreement)")
        );
        let value = peer_json(&peer);
        assert_eq!(value["auto_accept_branch"], "pl-kt-01");
        assert_eq!(value.as_object().unwrap().len(), 16);
    }

    #[test]
    fn replication_json_uses_proto_names() {
        let value = replication_json(&replication("lanzhou", 40, 55));
        assert_eq!(value["node_id"], "lanzhou");
        assert_eq!(value["my_cursor"], 40);
        assert_eq!(value["peer_head"], 55);
        assert_eq!(value["backlog_for_peer"], 7);
        // What the source sent, never what the peer applied.
        assert_eq!(value["sent_to_peer"], 40);
        assert_eq!(value["events_per_second"], 2.5);
        assert_eq!(value["outbound_up"], true);
        assert_eq!(value.as_object().unwrap().len(), 13);
    }
}

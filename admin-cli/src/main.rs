//! `liaisonctl`: manage a Liaison node.
//!
//! Exit codes scripts can trust:
//! - 0: done;
//! - 1: the node refused the request (bad input, unknown record, a rule
//!   forbids it); nothing was changed;
//! - 2: usage error, bad local files, or the node could not be reached;
//! - 3: `audit verify` found the audit chain broken.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use liaison_proto::v1 as pb;
use liaisonctl::output::{self, json_line, Format, Table};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(
    name = "liaisonctl",
    version,
    about = "Manage a Liaison node: peers, records, audit"
)]
struct Cli {
    /// The node's admin socket.
    #[arg(long, short, global = true, env = "LIAISON_SOCKET")]
    socket: Option<PathBuf>,
    /// The node's config file, to find its admin socket (default: ./node.toml).
    #[arg(long, short, global = true, env = "LIAISON_CONFIG")]
    config: Option<PathBuf>,
    /// Output format of listings: aligned tables, or JSON Lines.
    #[arg(long, short, global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The federation CA: create it, issue node certificates (local files only).
    Ca(liaisonctl::ca::CaArgs),
    /// Write a commented example node.toml.
    Init {
        #[arg(long)]
        node_id: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Federation listen address.
        #[arg(long, default_value = "0.0.0.0:7401")]
        listen: String,
        #[arg(long, default_value = "node.toml")]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// The node's id, version, uptime, database and peers.
    Status,
    /// Peers: other regions' nodes this node trusts and syncs with.
    #[command(subcommand)]
    Peer(PeerCommand),
    /// The append-only, hash-chained audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
enum PeerCommand {
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
        /// Place codes the peer serves (2, 4 or 6 digits: province, city, county).
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
    /// Stop syncing with a peer and cut its open streams; it stays a peer.
    Pause { node_id: String },
    /// Resume syncing with a paused peer.
    Resume { node_id: String },
    /// Reconnect to a peer now instead of waiting for the backoff.
    Retry { node_id: String },
    /// Remove a peer.
    Remove {
        node_id: String,
        #[arg(long)]
        force: bool,
    },
    /// Keep refusing a pending node and stop listing it.
    Ignore { node_id: String },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// List audit entries, oldest first.
    List {
        /// Only entries since this time: RFC 3339 (2026-11-25T08:00:00+08:00) or a date (2026-11-25).
        #[arg(long)]
        since: Option<String>,
        /// At most this many (the newest).
        #[arg(long, default_value_t = 1000)]
        limit: u32,
    },
    /// Check the hash chain; names the first broken entry.
    Verify,
}

/// What went wrong, and so which exit code.
enum Failure {
    Refused(String),
    Other(anyhow::Error),
    AuditBroken,
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        use tonic::Code;
        match status.code() {
            Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::FailedPrecondition
            | Code::PermissionDenied
            | Code::OutOfRange => Failure::Refused(status.message().to_owned()),
            _ => Failure::Other(anyhow::anyhow!("{}: {}", status.code(), status.message())),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ca(args) => liaisonctl::ca::run(args).map_err(Failure::Other),
        Command::Init {
            node_id,
            display_name,
            listen,
            out,
            force,
        } => init(&node_id, display_name.as_deref(), &listen, &out, force).map_err(Failure::Other),
        command => match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(remote(cli.socket, cli.config, cli.output, command)),
            Err(e) => Err(Failure::Other(e.into())),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Refused(message)) => {
            eprintln!("liaisonctl: {message}");
            ExitCode::from(1)
        }
        Err(Failure::Other(error)) => {
            eprintln!("liaisonctl: {error:#}");
            ExitCode::from(2)
        }
        Err(Failure::AuditBroken) => ExitCode::from(3),
    }
}

fn init(
    node_id: &str,
    display_name: Option<&str>,
    listen: &str,
    out: &std::path::Path,
    force: bool,
) -> anyhow::Result<()> {
    let id = liaison_node::identity::NodeId::parse(node_id)?;
    if out.exists() && !force {
        anyhow::bail!("{} exists: pass --force to overwrite it", out.display());
    }
    let text =
        liaison_node::config::example(id.as_str(), display_name.unwrap_or(id.as_str()), listen);
    std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "wrote {}: edit the paths, then start `liaison-node --config {}`",
        out.display(),
        out.display()
    );
    Ok(())
}

async fn remote(
    socket: Option<PathBuf>,
    config: Option<PathBuf>,
    format: Format,
    command: Command,
) -> Result<(), Failure> {
    let socket = liaisonctl::client::socket_path(socket.as_deref(), config.as_deref())?;
    let mut admin = liaisonctl::client::connect(&socket).await?;
    match command {
        Command::Status => {
            let s = admin.status(pb::StatusRequest {}).await?.into_inner();
            match format {
                Format::Json => json_line(
                    "status",
                    json!({
                        "node_id": s.node_id, "display_name": s.display_name, "federation": s.federation,
                        "software_version": s.software_version, "protocol_version": s.protocol_version,
                        "uptime_seconds": s.uptime_seconds, "database_path": s.database_path,
                        "database_bytes": s.database_bytes, "peers_up": s.peers_up, "peers_total": s.peers_total,
                        "federation_addr": s.federation_addr, "log_id": s.log_id,
                    }),
                ),
                Format::Table => output::print_out(&format!(
                    "node        {} ({})\nfederation  {}\nversion     {} (protocol {})\nuptime      {}\nlistening   {}\ndatabase    {} ({})\nlog id      {}\npeers       {} up of {}\n",
                    s.node_id, s.display_name, s.federation, s.software_version, s.protocol_version,
                    duration(s.uptime_seconds), s.federation_addr, s.database_path, bytes(s.database_bytes),
                    s.log_id, s.peers_up, s.peers_total
                )),
            }
        }
        Command::Peer(command) => peer(&mut admin, format, command).await?,
        Command::Audit(command) => audit(&mut admin, format, command).await?,
        Command::Ca(_) | Command::Init { .. } => unreachable!("handled locally"),
    }
    Ok(())
}

type Admin = pb::admin_client::AdminClient<tonic::transport::Channel>;

async fn peer(admin: &mut Admin, format: Format, command: PeerCommand) -> Result<(), Failure> {
    let peer_ref = |node_id: String| pb::PeerRef { node_id };
    match command {
        PeerCommand::Add {
            node_id,
            endpoint,
            fingerprint,
            name,
            serves,
        } => {
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
            let peer = admin.peer_show(peer_ref(node_id)).await?.into_inner();
            match format {
                Format::Json => print_peers(format, &[peer]),
                Format::Table => output::print_out(&peer_detail(&peer)),
            }
        }
        PeerCommand::Pause { node_id } => print_peers(
            format,
            &[admin.peer_pause(peer_ref(node_id)).await?.into_inner()],
        ),
        PeerCommand::Resume { node_id } => print_peers(
            format,
            &[admin.peer_resume(peer_ref(node_id)).await?.into_inner()],
        ),
        PeerCommand::Retry { node_id } => print_peers(
            format,
            &[admin.peer_retry(peer_ref(node_id)).await?.into_inner()],
        ),
        PeerCommand::Remove { node_id, force } => {
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
    })
}

fn link(p: &pb::Peer) -> String {
    let arrow = |up: bool| if up { "up" } else { "down" };
    format!("out {} / in {}", arrow(p.outbound_up), arrow(p.inbound_up))
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
                    link(p),
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
        "node           {}\nname           {}\nendpoint       {}\nfingerprint    {}\nstate          {}\nserves         {}\nadded          {}\nlink           {}\nlast contact   {}\nnext attempt   {}\nlast error     {}\nremote         {} (protocol {}, version {})\n",
        p.node_id,
        p.display_name,
        p.endpoint,
        or_dash(&p.fingerprint),
        p.state,
        if p.serves.is_empty() { "-".into() } else { p.serves.join(" ") },
        output::time(p.added_at_ms),
        link(p),
        output::time(p.last_contact_ms),
        output::time(p.next_attempt_ms),
        or_dash(&p.last_error),
        or_dash(&p.remote_display_name),
        p.remote_protocol_version,
        or_dash(&p.remote_software_version),
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

async fn audit(admin: &mut Admin, format: Format, command: AuditCommand) -> Result<(), Failure> {
    match command {
        AuditCommand::List { since, limit } => {
            let since_ms = match since {
                Some(text) => parse_since(&text)?,
                None => 0,
            };
            let entries = admin
                .audit_list(pb::AuditListRequest { since_ms, limit })
                .await?
                .into_inner()
                .entries;
            match format {
                Format::Json => entries.iter().for_each(|e| {
                    json_line(
                        "audit_entry",
                        json!({
                            "seq": e.seq, "at_ms": e.at_ms, "actor": e.actor, "action": e.action,
                            "target": e.target, "outcome": e.outcome, "detail": e.detail, "hash": e.hash,
                        }),
                    )
                }),
                Format::Table => {
                    let mut table = Table::new(&["SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "DETAIL"]);
                    for e in &entries {
                        table.row(vec![
                            e.seq.to_string(),
                            output::time(e.at_ms),
                            e.actor.clone(),
                            e.action.clone(),
                            e.target.clone(),
                            e.outcome.clone(),
                            e.detail.clone(),
                        ]);
                    }
                    table.print();
                }
            }
        }
        AuditCommand::Verify => {
            let v = admin
                .audit_verify(pb::AuditVerifyRequest {})
                .await?
                .into_inner();
            match format {
                Format::Json => json_line(
                    "audit_verdict",
                    json!({ "ok": v.ok, "entries": v.entries, "first_broken_seq": v.first_broken_seq, "problem": v.problem }),
                ),
                Format::Table if v.ok => {
                    output::print_out(&format!("audit chain intact: {} entries\n", v.entries))
                }
                Format::Table => output::print_out(&format!(
                    "audit chain BROKEN at entry {}: {} ({} entries before it are intact)\n",
                    v.first_broken_seq, v.problem, v.entries
                )),
            }
            if !v.ok {
                return Err(Failure::AuditBroken);
            }
        }
    }
    Ok(())
}

fn parse_since(text: &str) -> anyhow::Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let local = d
            .and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(chrono::Local).earliest())
            .context("that date has no local midnight")?;
        return Ok(local.timestamp_millis());
    }
    anyhow::bail!("--since `{text}` is neither a date (2026-11-25) nor an RFC 3339 time (2026-11-25T08:00:00+08:00)")
}

fn duration(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

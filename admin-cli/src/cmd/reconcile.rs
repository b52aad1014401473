//! `liaisonctl backup` and `liaisonctl reconcile` (docs/restore.md): a consistent
//! online copy of the node's database, and the progress of a restored node
//! reconciling with its peers.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use liaison_proto::v1 as pb;
use liaisonctl::output::{self, dash, json_line, Detail, Format, Table};
use serde_json::json;

use super::refs;
use super::{Admin, Failure};

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where the node writes the copy (on the node's machine, by the node's
    /// user); must not exist. Restore by stopping the node, removing the
    /// database's `-wal` and `-shm` files, copying the backup into place as
    /// the database file, and starting the node.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReconcileArgs {
    /// Go on without this unreachable peer (audited): a member it received
    /// by a transfer this node forgot has two owners until it returns.
    #[arg(long, value_name = "PEER")]
    pub without_peer: Option<String>,
    #[command(subcommand)]
    pub command: Option<ReconcileCommand>,
}

#[derive(Debug, Subcommand)]
pub enum ReconcileCommand {
    /// Progress per peer, and which period of local writes was lost.
    Status,
}

pub async fn backup(admin: &mut Admin, format: Format, args: BackupArgs) -> Result<(), Failure> {
    let out = if args.out.is_absolute() {
        args.out
    } else {
        std::env::current_dir()
            .context("cannot resolve --out against the current directory")?
            .join(args.out)
    };
    let reply = admin
        .backup(pb::BackupRequest {
            out: out.display().to_string(),
        })
        .await?
        .into_inner();
    match format {
        Format::Json => json_line(
            "backup",
            json!({"path": reply.path, "taken_at_ms": reply.taken_at_ms, "bytes": reply.bytes, "log_id": reply.log_id}),
        ),
        Format::Table => output::print_out(&format!(
            "backup written to {} ({} bytes, taken {}, log id {})\n",
            reply.path,
            reply.bytes,
            output::time(reply.taken_at_ms),
            reply.log_id
        )),
    }
    Ok(())
}

pub async fn run(admin: &mut Admin, format: Format, args: ReconcileArgs) -> Result<(), Failure> {
    let without_peer = match args.without_peer {
        Some(peer) => Some(refs::peer(admin, &peer, "reconcile.without_peer").await?),
        None => None,
    };
    let status = match without_peer {
        Some(peer) => admin
            .reconcile_without_peer(pb::PeerRef { node_id: peer })
            .await?
            .into_inner(),
        None => admin
            .reconcile_status(pb::ReconcileStatusRequest {})
            .await?
            .into_inner(),
    };
    match format {
        Format::Json => json_line("reconcile_status", status_json(&status)),
        Format::Table => output::print_out(&render(&status)),
    }
    Ok(())
}

fn status_json(s: &pb::ReconcileStatus) -> serde_json::Value {
    json!({
        "reconciling": s.reconciling, "log_id": s.log_id, "previous_log_id": s.previous_log_id,
        "backup_at_ms": s.backup_at_ms, "restored_at_ms": s.restored_at_ms,
        "finished_at_ms": s.finished_at_ms, "lost_period": s.lost_period,
        "peers": s.peers.iter().map(|p| json!({
            "peer": p.peer, "state": p.state, "updated_at_ms": p.updated_at_ms, "detail": p.detail,
        })).collect::<Vec<_>>(),
    })
}

fn render(s: &pb::ReconcileStatus) -> String {
    if s.restored_at_ms == 0 {
        return "this node was never restored: nothing to reconcile\n".into();
    }
    let mut detail = Detail::new();
    detail
        .field(
            "state",
            if s.reconciling {
                "reconciling: owner actions are refused until every peer answered"
            } else {
                "reconciled"
            },
        )
        .field("log id", s.log_id.clone())
        .field("previous log id", dash(&s.previous_log_id))
        .field(
            "backup taken",
            if s.backup_at_ms == 0 {
                "- (a new database under a known node id)".into()
            } else {
                output::time(s.backup_at_ms)
            },
        )
        .field("restored", output::time(s.restored_at_ms))
        .field("lost", s.lost_period.clone());
    if s.finished_at_ms > 0 {
        detail.field("finished", output::time(s.finished_at_ms));
    }
    let mut table = Table::new(&["PEER", "STATE", "SINCE", "DETAIL"]);
    for p in &s.peers {
        table.row(vec![
            p.peer.clone(),
            p.state.clone(),
            output::time(p.updated_at_ms),
            dash(&p.detail),
        ]);
    }
    format!("{}\n{}", detail.render(), table.render())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::parse;
    use crate::Command;

    #[test]
    fn verbs_parse() {
        assert!(matches!(
            parse(&["reconcile", "status"]),
            Command::Reconcile(ReconcileArgs {
                without_peer: None,
                command: Some(ReconcileCommand::Status)
            })
        ));
        assert!(matches!(
            parse(&["reconcile", "--without-peer", "xian"]),
            Command::Reconcile(ReconcileArgs { without_peer: Some(p), command: None }) if p == "xian"
        ));
        assert!(matches!(
            parse(&["backup", "--out", "b.db"]),
            Command::Backup(BackupArgs { .. })
        ));
    }

    #[test]
    fn status_names_the_lost_period() {
        let status = pb::ReconcileStatus {
            reconciling: true,
            log_id: "new".into(),
            restored_at_ms: 1,
            lost_period: "local writes from A to B that no peer holds are lost".into(),
            peers: vec![pb::ReconcilePeer {
                peer: "lanzhou".into(),
                state: "waiting".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = render(&status);
        assert!(text.contains("no peer holds are lost"), "{text}");
        assert!(text.contains("lanzhou"), "{text}");
        assert!(text.contains("refused"), "{text}");
    }
}

//! `liaisonctl audit`: the append-only, hash-chained audit log.

use anyhow::Context;
use clap::Subcommand;
use liaison_proto::v1 as pb;
use liaisonctl::output::{self, json_line, Format, Table};
use serde_json::json;

use super::{Admin, Failure};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
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

pub async fn run(admin: &mut Admin, format: Format, command: AuditCommand) -> Result<(), Failure> {
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
                Format::Json => {
                    let anchors: Vec<serde_json::Value> = v
                        .anchors
                        .iter()
                        .map(|a| {
                            json!({
                                "source": a.source, "entries": a.entries, "verdict": a.verdict,
                                "recorded_at": output::rfc3339(a.recorded_at_ms),
                            })
                        })
                        .collect();
                    json_line(
                        "audit_verdict",
                        json!({
                            "ok": v.ok, "entries": v.entries, "first_broken_seq": v.first_broken_seq,
                            "problem": v.problem, "missing_entries": v.missing_entries, "anchors": anchors,
                        }),
                    )
                }
                Format::Table => {
                    if v.ok {
                        output::print_out(&format!("audit chain intact: {} entries\n", v.entries));
                    } else if v.missing_entries > 0 {
                        output::print_out(&format!(
                            "audit chain BROKEN: {} entries missing at its end ({} entries are there): {}\n",
                            v.missing_entries, v.entries, v.problem
                        ));
                    } else {
                        output::print_out(&format!(
                            "audit chain BROKEN at entry {}: {} ({} entries before it are intact)\n",
                            v.first_broken_seq, v.problem, v.entries
                        ));
                    }
                    for a in &v.anchors {
                        output::print_out(&format!(
                            "  {:<20} {:>8} entries  {:<8} {}\n",
                            a.source,
                            a.entries,
                            a.verdict,
                            output::time(a.recorded_at_ms)
                        ));
                    }
                }
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
            .and_then(|t| t.and_local_timezone(output::zone()).earliest())
            .context("that date has no midnight in the node's zone")?;
        return Ok(local.timestamp_millis());
    }
    anyhow::bail!("--since `{text}` is neither a date (2026-11-25) nor an RFC 3339 time (2026-11-25T08:00:00+08:00)")
}

//! `liaisonctl quarantine`: events from peers that could not be applied
//! (an authority check failed, a record they refer to is missing). They are
//! held, never dropped, until a retry applies them or they are discarded.

use clap::Subcommand;
use liaison_proto::v1 as pb;
use liaisonctl::output::{self, dash, Format, Table};
use serde_json::json;

use super::{print_list, Admin, Failure};

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// List held events; with --all also those applied or discarded since.
    List {
        #[arg(long)]
        all: bool,
    },
    /// Try to apply a held event again (e.g. after the missing record arrived).
    Retry { id: u64 },
}

pub async fn run(
    admin: &mut Admin,
    format: Format,
    command: QuarantineCommand,
) -> Result<(), Failure> {
    match command {
        QuarantineCommand::List { all } => {
            let entries = admin
                .quarantine_list(pb::QuarantineListRequest {
                    include_resolved: all,
                })
                .await?
                .into_inner()
                .entries;
            print_list(
                format,
                "quarantine_entry",
                &entries,
                entry_json,
                entry_table,
            );
        }
        QuarantineCommand::Retry { id } => {
            let entry = admin
                .quarantine_retry(pb::QuarantineRetryRequest { id })
                .await?
                .into_inner();
            print_list(
                format,
                "quarantine_entry",
                std::slice::from_ref(&entry),
                entry_json,
                entry_table,
            );
            retry_outcome(&entry).map_err(Failure::Refused)?;
        }
    }
    Ok(())
}

/// A retry that leaves the entry held changed nothing: a failure for scripts.
fn retry_outcome(entry: &pb::QuarantineEntry) -> Result<(), String> {
    if entry.state == "held" {
        Err(format!(
            "entry {} is still held: {}",
            entry.id,
            dash(&entry.reason)
        ))
    } else {
        Ok(())
    }
}

fn entry_json(e: &pb::QuarantineEntry) -> serde_json::Value {
    json!({
        "id": e.id, "origin": e.origin, "seq": e.seq, "kind": e.kind, "entity": e.entity,
        "reason": e.reason, "received_at_ms": e.received_at_ms, "state": e.state,
    })
}

fn entry_table(entries: &[pb::QuarantineEntry]) -> Table {
    let mut table = Table::new(&[
        "ID", "ORIGIN", "SEQ", "KIND", "ENTITY", "STATE", "RECEIVED", "REASON",
    ]);
    for e in entries {
        table.row(vec![
            e.id.to_string(),
            dash(&e.origin),
            e.seq.to_string(),
            dash(&e.kind),
            dash(&e.entity),
            dash(&e.state),
            output::time(e.received_at_ms),
            dash(&e.reason),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{parse, refused};
    use crate::Command;

    fn entry(state: &str) -> pb::QuarantineEntry {
        pb::QuarantineEntry {
            id: 12,
            origin: "lanzhou".into(),
            seq: 345,
            kind: "host_section".into(),
            entity: "m-1".into(),
            reason: "unknown member".into(),
            received_at_ms: 0,
            state: state.into(),
        }
    }

    #[test]
    fn verbs_parse() {
        assert!(matches!(
            parse(&["quarantine", "list", "--all"]),
            Command::Quarantine(QuarantineCommand::List { all: true })
        ));
        assert!(matches!(
            parse(&["quarantine", "retry", "12"]),
            Command::Quarantine(QuarantineCommand::Retry { id: 12 })
        ));
        assert!(refused(&["quarantine", "retry", "twelve"]));
    }

    #[test]
    fn table_and_json() {
        let text = entry_table(&[entry("held")]).render();
        let rows: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows[0],
            ["ID", "ORIGIN", "SEQ", "KIND", "ENTITY", "STATE", "RECEIVED", "REASON"]
        );
        assert_eq!(
            rows[1],
            [
                "12",
                "lanzhou",
                "345",
                "host_section",
                "m-1",
                "held",
                "-",
                "unknown",
                "member"
            ]
        );
        let value = entry_json(&entry("held"));
        assert_eq!(value["received_at_ms"], 0);
        assert_eq!(value.as_object().unwrap().len(), 8);
    }

    #[test]
    fn a_retry_that_leaves_the_entry_held_fails() {
        assert_eq!(
            retry_outcome(&entry("held")),
            Err("entry 12 is still held: unknown member".into())
        );
        assert_eq!(retry_outcome(&entry("applied")), Ok(()));
    }
}

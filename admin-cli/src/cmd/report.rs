//! `liaisonctl report`: reports the node computes from its records.

use clap::Subcommand;
use liaison_proto::v1 as pb;
use liaisonctl::output::{self, dash, json_line, Format, Table};
use serde_json::json;

use super::{Admin, Failure};

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Members away in a region with which no active agreement exists, by
    /// destination (--output json also lists their ids).
    Uncovered,
}

pub async fn run(admin: &mut Admin, format: Format, command: ReportCommand) -> Result<(), Failure> {
    match command {
        ReportCommand::Uncovered => {
            let report = admin
                .report_uncovered(pb::ReportUncoveredRequest {})
                .await?
                .into_inner();
            match format {
                Format::Json => {
                    for g in &report.groups {
                        json_line("uncovered_group", uncovered_group_json(g));
                    }
                    json_line("uncovered_total", json!({ "total": report.total }));
                }
                Format::Table => output::print_out(&uncovered_text(&report)),
            }
        }
    }
    Ok(())
}

fn uncovered_group_json(g: &pb::UncoveredGroup) -> serde_json::Value {
    json!({
        "destination_place": g.destination_place, "destination_node": g.destination_node,
        "members": g.members, "member_ids": g.member_ids,
    })
}

/// The groups as a table, then the total: members away with no active
/// agreement to share their records under.
fn uncovered_text(report: &pb::ReportUncoveredResponse) -> String {
    let mut table = Table::new(&["DESTINATION", "NODE", "MEMBERS"]);
    for g in &report.groups {
        table.row(vec![
            super::places::show(&g.destination_place),
            dash(&g.destination_node),
            g.members.to_string(),
        ]);
    }
    format!(
        "{}total: {} members away without an active agreement\n",
        table.render(),
        report.total
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{parse, refused};
    use crate::Command;

    fn report() -> pb::ReportUncoveredResponse {
        pb::ReportUncoveredResponse {
            groups: vec![
                pb::UncoveredGroup {
                    destination_place: "620100".into(),
                    destination_node: "lanzhou".into(),
                    members: 2,
                    member_ids: vec!["m-1".into(), "m-2".into()],
                },
                pb::UncoveredGroup {
                    destination_place: "330782".into(),
                    destination_node: String::new(),
                    members: 1,
                    member_ids: vec!["m-3".into()],
                },
            ],
            total: 3,
        }
    }

    #[test]
    fn uncovered_parses_and_takes_no_flags() {
        assert!(matches!(
            parse(&["report", "uncovered"]),
            Command::Report(ReportCommand::Uncovered)
        ));
        assert!(refused(&["report", "uncovered", "--peer", "lanzhou"]));
        assert!(refused(&["report"]));
    }

    #[test]
    fn uncovered_table_ends_with_the_total() {
        let text = uncovered_text(&report());
        let rows: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(rows[0], ["DESTINATION", "NODE", "MEMBERS"]);
        // Places show with their names.
        assert_eq!(rows[1], ["兰州市", "(620100)", "lanzhou", "2"]);
        assert_eq!(rows[2], ["义乌市", "(330782)", "-", "1"]);
        assert_eq!(
            text.lines().last(),
            Some("total: 3 members away without an active agreement")
        );
        let empty = uncovered_text(&pb::ReportUncoveredResponse::default());
        assert_eq!(
            empty,
            "DESTINATION  NODE  MEMBERS\ntotal: 0 members away without an active agreement\n"
        );
    }

    #[test]
    fn uncovered_group_json_lists_member_ids() {
        let value = uncovered_group_json(&report().groups[0]);
        assert_eq!(
            value,
            json!({
                "destination_place": "620100", "destination_node": "lanzhou",
                "members": 2, "member_ids": ["m-1", "m-2"],
            })
        );
    }
}

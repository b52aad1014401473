//! `liaisonctl activity`: activities members took part in (三会一课, 主题党日,
//! study, service), recorded by the node where they happened.

use clap::Subcommand;
use liaison_proto::v1 as pb;
use liaisonctl::output::{dash, json_line, Format, Table};
use serde_json::json;

use super::{print_list, refs, text, Admin, Failure};

#[derive(Debug, Subcommand)]
pub enum ActivityCommand {
    /// Record a member's part in an activity.
    Record(RecordArgs),
    /// List activities, newest first: of one member, or of all.
    List {
        /// Only this member's: name, national ID number, id, or an id prefix.
        #[arg(value_name = "MEMBER")]
        member_id: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// The member: name, national ID number, id, or an id prefix.
    #[arg(value_name = "MEMBER")]
    member_id: String,
    /// What: 党员大会, 支委会, 党小组会, 党课, 主题党日, 组织生活会, 民主评议, 志愿服务, 集中培训.
    #[arg(long)]
    kind: String,
    /// When: YYYY-MM-DD.
    #[arg(long)]
    date: String,
    /// The organization that held it (its code or full name).
    #[arg(long)]
    branch: Option<String>,
    /// Study hours it counts for (toward the yearly 32).
    #[arg(long)]
    hours: Option<f64>,
    #[arg(long)]
    note: Option<String>,
}

impl RecordArgs {
    fn request(self) -> pb::ActivityRequest {
        pb::ActivityRequest {
            member_id: self.member_id,
            kind: self.kind,
            date: self.date,
            branch: text(self.branch),
            hours: self.hours.unwrap_or(0.0),
            note: text(self.note),
        }
    }
}

pub async fn run(
    admin: &mut Admin,
    format: Format,
    command: ActivityCommand,
) -> Result<(), Failure> {
    match command {
        ActivityCommand::Record(mut args) => {
            args.member_id = refs::member(admin, &args.member_id, "activity.record").await?;
            if let Some(branch) = &args.branch {
                args.branch = Some(refs::org(admin, branch, "activity.record").await?);
            }
            let activity = admin.activity_record(args.request()).await?.into_inner();
            match format {
                Format::Json => json_line("activity", activity_json(&activity)),
                Format::Table => activity_table(&[activity]).print(),
            }
        }
        ActivityCommand::List { member_id, limit } => {
            let member_id = match member_id {
                Some(member) => Some(refs::member(admin, &member, "").await?),
                None => None,
            };
            let activities = admin
                .activity_list(pb::ActivityListRequest {
                    member_id: text(member_id),
                    limit,
                })
                .await?
                .into_inner()
                .activities;
            print_list(
                format,
                "activity",
                &activities,
                activity_json,
                activity_table,
            );
        }
    }
    Ok(())
}

fn activity_json(a: &pb::ActivityView) -> serde_json::Value {
    json!({
        "activity_id": a.activity_id, "member_id": a.member_id, "member_name": a.member_name,
        "author": a.author, "kind": a.kind,
        "date": a.date, "branch": a.branch, "hours": a.hours, "note": a.note,
    })
}

fn activity_table(activities: &[pb::ActivityView]) -> Table {
    let mut table = Table::new(&[
        "DATE", "MEMBER", "NAME", "KIND", "BRANCH", "HOURS", "AUTHOR", "NOTE",
    ]);
    for a in activities {
        table.row(vec![
            dash(&a.date),
            a.member_id.clone(),
            dash(&a.member_name),
            dash(&a.kind),
            dash(&a.branch),
            a.hours.to_string(),
            dash(&a.author),
            dash(&a.note),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{parse, refused};
    use crate::Command;

    fn activity(args: &[&str]) -> ActivityCommand {
        let argv: Vec<&str> = ["activity"].iter().chain(args).copied().collect();
        match parse(&argv) {
            Command::Activity(command) => command,
            other => panic!("{other:?}"),
        }
    }

    fn record(args: &[&str]) -> pb::ActivityRequest {
        let argv: Vec<&str> = ["record"].iter().chain(args).copied().collect();
        match activity(&argv) {
            ActivityCommand::Record(args) => args.request(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn record_maps_flags() {
        let request = record(&[
            "m-1",
            "--kind",
            "主题党日",
            "--date",
            "2026-11-01",
            "--branch",
            "lz-cg-05",
            "--hours",
            "1.5",
            "--note",
            "参观",
        ]);
        assert_eq!(
            request,
            pb::ActivityRequest {
                member_id: "m-1".into(),
                kind: "主题党日".into(),
                date: "2026-11-01".into(),
                branch: "lz-cg-05".into(),
                hours: 1.5,
                note: "参观".into(),
            }
        );
        let bare = record(&["m-1", "--kind", "党课", "--date", "2026-11-01"]);
        assert_eq!((bare.hours, bare.branch.as_str()), (0.0, ""));
        assert!(refused(&["activity", "record", "m-1", "--kind", "党课"]));
        assert!(refused(&[
            "activity", "record", "m-1", "--kind", "党课", "--date", "d", "--hours", "two"
        ]));
    }

    #[test]
    fn list_takes_an_optional_member() {
        match activity(&["list"]) {
            ActivityCommand::List { member_id, limit } => {
                assert_eq!((member_id, limit), (None, 100))
            }
            other => panic!("{other:?}"),
        }
        match activity(&["list", "m-1", "--limit", "5"]) {
            ActivityCommand::List { member_id, limit } => {
                assert_eq!((member_id.as_deref(), limit), (Some("m-1"), 5))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn table_and_json() {
        let a = pb::ActivityView {
            activity_id: "a-1".into(),
            member_id: "m-1".into(),
            member_name: "张三".into(),
            author: "lanzhou".into(),
            kind: "党课".into(),
            date: "2026-11-01".into(),
            branch: String::new(),
            hours: 2.0,
            note: String::new(),
        };
        let text = activity_table(std::slice::from_ref(&a)).render();
        assert_eq!(
            text.lines()
                .nth(1)
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>(),
            [
                "2026-11-01",
                "m-1",
                "张三",
                "党课",
                "-",
                "2",
                "lanzhou",
                "-"
            ]
        );
        let value = activity_json(&a);
        assert_eq!(value["hours"], 2.0);
        assert_eq!(value["kind"], "党课");
        assert_eq!(value["member_name"], "张三");
        assert_eq!(value.as_object().unwrap().len(), 9);
    }
}

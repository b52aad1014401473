//! `liaisonctl contact`: contact events with members (visits, calls, org
//! life, dues) and the official contact status the owner keeps
//! (docs/authority.md, "The contact status").

use clap::Subcommand;
use liaison_proto::v1 as pb;
use liaisonctl::output::{self, dash, json_line, Detail, Format, Table};
use serde_json::json;

use super::{refs, text, Admin, Failure};

#[derive(Debug, Subcommand)]
pub enum ContactCommand {
    /// Record a contact with a member (联系记录).
    Record {
        /// The member: name, national ID number, id, or an id prefix.
        #[arg(value_name = "MEMBER")]
        member_id: String,
        /// How: a visit (走访), phone call, message, org life (组织生活) or dues (交纳党费).
        #[arg(long, value_parser = ["visit", "phone", "message", "org_life", "dues"])]
        channel: String,
        /// When: YYYY-MM-DD or an RFC 3339 time (default: now, by the node's clock).
        #[arg(long)]
        at: Option<String>,
        /// Who made the contact.
        #[arg(long)]
        by: Option<String>,
        /// What came of it.
        #[arg(long)]
        outcome: Option<String>,
    },
    /// A member's contact status and recent contacts; --set records the owner's decision.
    Status {
        /// The member: name, national ID number, id, or an id prefix.
        #[arg(value_name = "MEMBER")]
        member_id: String,
        /// Set the status (owner only): searching (查找), regained (经查找取得联系)
        /// or unreachable (经查找仍然无法取得联系).
        #[arg(long, value_parser = ["searching", "regained", "unreachable"])]
        set: Option<String>,
        /// Why, with --set.
        #[arg(long, requires = "set")]
        reason: Option<String>,
        /// With --set searching or unreachable: why contact was lost, the
        /// registers' cause 1-7 or its name: 1 外出务工经商, 2 单位改制或破产,
        /// 3 毕业后去向不明, 4 工作单位改变, 5 出国(境), 6 居住地改变, 7 其他.
        #[arg(long, requires = "set")]
        cause: Option<String>,
    },
}

pub async fn run(
    admin: &mut Admin,
    format: Format,
    command: ContactCommand,
) -> Result<(), Failure> {
    match command {
        ContactCommand::Record {
            member_id,
            channel,
            at,
            by,
            outcome,
        } => {
            let member_id = refs::member(admin, &member_id, "contact.record").await?;
            let contact = admin
                .contact_record(pb::ContactRequest {
                    member_id,
                    channel,
                    at: text(at),
                    by: text(by),
                    outcome: text(outcome),
                })
                .await?
                .into_inner();
            match format {
                Format::Json => json_line("contact", contact_json(&contact)),
                Format::Table => contact_table(&[contact]).print(),
            }
        }
        ContactCommand::Status {
            member_id,
            set,
            reason,
            cause,
        } => {
            let action = if set.is_some() { "contact.status" } else { "" };
            let member_id = refs::member(admin, &member_id, action).await?;
            let status = admin
                .contact_status(pb::ContactStatusRequest {
                    member_id,
                    set: text(set),
                    reason: text(reason),
                    cause: text(cause),
                })
                .await?
                .into_inner();
            match format {
                Format::Json => json_line("contact_status", contact_status_json(&status)),
                Format::Table => output::print_out(&contact_status_text(&status)),
            }
        }
    }
    Ok(())
}

fn contact_json(c: &pb::ContactView) -> serde_json::Value {
    json!({
        "contact_id": c.contact_id, "member_id": c.member_id, "member_name": c.member_name,
        "author": c.author, "at": c.at,
        "channel": c.channel, "by": c.by, "outcome": c.outcome,
    })
}

fn contact_status_json(s: &pb::ContactStatusView) -> serde_json::Value {
    json!({
        "member_id": s.member_id, "member_name": s.member_name, "status": s.status, "last_contact": s.last_contact,
        "lost_since": s.lost_since, "recent": s.recent.iter().map(contact_json).collect::<Vec<_>>(),
    })
}

fn contact_table(contacts: &[pb::ContactView]) -> Table {
    let mut table = Table::new(&["AT", "MEMBER", "NAME", "CHANNEL", "BY", "AUTHOR", "OUTCOME"]);
    for c in contacts {
        table.row(vec![
            output::local_time(&c.at),
            c.member_id.clone(),
            dash(&c.member_name),
            dash(&c.channel),
            dash(&c.by),
            dash(&c.author),
            dash(&c.outcome),
        ]);
    }
    table
}

fn contact_status_text(s: &pb::ContactStatusView) -> String {
    let mut d = Detail::new();
    d.field("member", &s.member_id)
        .field("name", &s.member_name)
        .field("status", &s.status)
        .field("last contact", output::local_time(&s.last_contact))
        .field("lost since", &s.lost_since);
    let mut text = d.render();
    if s.recent.is_empty() {
        text.push_str("\nno recent contacts\n");
    } else {
        text.push_str("\nrecent contacts\n");
        text.push_str(&contact_table(&s.recent).render());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{parse, refused};
    use crate::Command;

    fn contact(args: &[&str]) -> ContactCommand {
        let argv: Vec<&str> = ["contact"].iter().chain(args).copied().collect();
        match parse(&argv) {
            Command::Contact(command) => command,
            other => panic!("{other:?}"),
        }
    }

    fn view(at: &str, channel: &str) -> pb::ContactView {
        pb::ContactView {
            contact_id: "c-1".into(),
            member_id: "m-1".into(),
            member_name: "张三".into(),
            author: "lanzhou".into(),
            at: at.into(),
            channel: channel.into(),
            by: "王五".into(),
            outcome: String::new(),
        }
    }

    #[test]
    fn record_takes_a_known_channel() {
        match contact(&[
            "record",
            "m-1",
            "--channel",
            "org_life",
            "--at",
            "2026-11-20",
            "--by",
            "王五",
        ]) {
            ContactCommand::Record {
                member_id,
                channel,
                at,
                by,
                outcome,
            } => {
                assert_eq!(member_id, "m-1");
                assert_eq!(channel, "org_life");
                assert_eq!(at.as_deref(), Some("2026-11-20"));
                assert_eq!(by.as_deref(), Some("王五"));
                assert_eq!(outcome, None);
            }
            other => panic!("{other:?}"),
        }
        assert!(refused(&["contact", "record", "m-1", "--channel", "email"]));
        assert!(refused(&["contact", "record", "m-1"]));
    }

    #[test]
    fn status_sets_only_known_states_and_reason_needs_set() {
        match contact(&[
            "status",
            "m-1",
            "--set",
            "searching",
            "--reason",
            "电话停机",
        ]) {
            ContactCommand::Status { set, reason, .. } => {
                assert_eq!(set.as_deref(), Some("searching"));
                assert_eq!(reason.as_deref(), Some("电话停机"));
            }
            other => panic!("{other:?}"),
        }
        assert!(refused(&["contact", "status", "m-1", "--set", "lost"]));
        assert!(refused(&["contact", "status", "m-1", "--reason", "x"]));
    }

    #[test]
    fn status_view_lists_recent_contacts() {
        let status = pb::ContactStatusView {
            member_id: "m-1".into(),
            member_name: "张三".into(),
            status: "overdue".into(),
            last_contact: "2026-05-02".into(),
            lost_since: String::new(),
            recent: vec![view("2026-05-02", "phone"), view("2026-04-01", "dues")],
        };
        let text = contact_status_text(&status);
        assert!(
            text.starts_with("member        m-1\nname          张三\nstatus        overdue\n"),
            "{text}"
        );
        assert!(text.contains("lost since    -\n"), "{text}");
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip_while(|l| *l != "recent contacts")
            .skip(1)
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows[0],
            ["AT", "MEMBER", "NAME", "CHANNEL", "BY", "AUTHOR", "OUTCOME"]
        );
        assert_eq!(
            rows[1],
            ["2026-05-02", "m-1", "张三", "phone", "王五", "lanzhou", "-"]
        );
        let value = contact_status_json(&status);
        assert_eq!(value["status"], "overdue");
        assert_eq!(value["recent"][1]["channel"], "dues");
        assert_eq!(value["recent"][0].as_object().unwrap().len(), 8);
        let empty = pb::ContactStatusView::default();
        assert!(contact_status_text(&empty).ends_with("\nno recent contacts\n"));
    }
}

//! `liaisonctl outflow`: members' departures to other regions (流出登记) and
//! their returns. The home node registers them; the host serving the
//! destination gets a copy under an agreement covering the member.

use clap::Subcommand;
use liaison_proto::v1 as pb;
use liaisonctl::output::{dash, Detail, Format, Table};
use serde_json::json;

use super::member::{print_member, View};
use super::places;
use super::refs::{self, MemberArg};
use super::{print_list, text, yes_no, Admin, Failure};

// Parsed once per run, so the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum OutflowCommand {
    /// Register a member's departure (流出登记).
    Register(RegisterArgs),
    /// Correct a member's open registration (更正): only the fields given change.
    Update(UpdateArgs),
    /// Record a member's return (返回), closing the open registration.
    Return {
        /// The member: name, national ID number, id, or an id prefix.
        #[arg(value_name = "MEMBER")]
        member_id: String,
        /// The day of return: YYYY-MM-DD (default: today, by the node's clock).
        #[arg(long)]
        on: Option<String>,
    },
    /// List outflow registrations: the open ones, or with --all also the returned.
    List {
        /// Also registrations of members who returned.
        #[arg(long)]
        all: bool,
        /// Only departures to this place (a name or a code).
        #[arg(long)]
        destination: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    member: MemberArg,
    /// Where to (流向地): a place name (兰州, 甘肃省兰州市城关区) or its code (2, 4 or 6 digits: province, city, county).
    #[arg(long)]
    to: String,
    /// The peer serving the destination (default: the peer whose --serves covers it).
    #[arg(long)]
    node: Option<String>,
    /// The kind of unit going to (流向), e.g. 私营企业, 个体工商户, 不掌握流向.
    #[arg(long)]
    direction: Option<String>,
    /// The day of departure (流出时间): YYYY-MM-DD.
    #[arg(long)]
    departed_on: String,
    /// Expected return (预计返回): YYYY-MM-DD.
    #[arg(long)]
    expected_return: Option<String>,
    /// Why the member left (外出原因), e.g. 务工.
    #[arg(long)]
    reason: Option<String>,
    /// The member has a fixed place at the destination (counts toward 应转尽转).
    #[arg(long)]
    fixed_location: bool,
    /// Activity certificate number (流动党员活动证编号).
    #[arg(long)]
    certificate_no: Option<String>,
    /// The Party committee that issued the certificate (发证党委).
    #[arg(long)]
    certificate_issuer: Option<String>,
    /// When the certificate was issued: YYYY-MM-DD.
    #[arg(long)]
    certificate_issued_on: Option<String>,
    /// Contact card number (联络卡编号).
    #[arg(long)]
    card_no: Option<String>,
}

impl RegisterArgs {
    fn request(self) -> pb::OutflowRequest {
        pb::OutflowRequest {
            member_id: self.member.member,
            destination_place: self.to,
            destination_node: text(self.node),
            direction: text(self.direction),
            departed_on: self.departed_on,
            expected_return: text(self.expected_return),
            reason: text(self.reason),
            fixed_location: self.fixed_location,
            certificate_no: text(self.certificate_no),
            certificate_issuer: text(self.certificate_issuer),
            certificate_issued_on: text(self.certificate_issued_on),
            card_no: text(self.card_no),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    member: MemberArg,
    /// Where to: a place name or code; the peer serving it serves the member from now on.
    #[arg(long)]
    to: Option<String>,
    /// The peer serving the destination.
    #[arg(long)]
    node: Option<String>,
    /// The kind of unit going to (流向).
    #[arg(long)]
    direction: Option<String>,
    /// The day of departure: YYYY-MM-DD.
    #[arg(long)]
    departed_on: Option<String>,
    /// Expected return: YYYY-MM-DD ("" clears it).
    #[arg(long)]
    expected_return: Option<String>,
    /// Why the member left.
    #[arg(long)]
    reason: Option<String>,
    /// Whether the member has a fixed place at the destination.
    #[arg(long, value_name = "BOOL", value_parser = clap::value_parser!(bool))]
    fixed_location: Option<bool>,
    /// Activity certificate number.
    #[arg(long)]
    certificate_no: Option<String>,
    /// The Party committee that issued the certificate.
    #[arg(long)]
    certificate_issuer: Option<String>,
    /// When the certificate was issued: YYYY-MM-DD.
    #[arg(long)]
    certificate_issued_on: Option<String>,
    /// Contact card number.
    #[arg(long)]
    card_no: Option<String>,
}

impl UpdateArgs {
    fn request(self, member_id: String) -> anyhow::Result<pb::OutflowUpdateRequest> {
        let request = pb::OutflowUpdateRequest {
            member_id,
            destination_place: self.to,
            destination_node: self.node,
            direction: self.direction,
            departed_on: self.departed_on,
            expected_return: self.expected_return,
            reason: self.reason,
            fixed_location: self.fixed_location,
            certificate_no: self.certificate_no,
            certificate_issuer: self.certificate_issuer,
            certificate_issued_on: self.certificate_issued_on,
            card_no: self.card_no,
        };
        let unchanged = pb::OutflowUpdateRequest {
            member_id: request.member_id.clone(),
            ..Default::default()
        };
        if request == unchanged {
            anyhow::bail!("nothing to change: give the fields to correct, e.g. --to 兰州 or --expected-return 2027-06-30");
        }
        Ok(request)
    }
}

pub async fn run(
    admin: &mut Admin,
    format: Format,
    command: OutflowCommand,
) -> Result<(), Failure> {
    match command {
        OutflowCommand::Register(mut args) => {
            args.member.member = args.member.id(admin, "outflow.register").await?;
            args.to = places::code(&args.to)?;
            if let Some(node) = &args.node {
                args.node = Some(refs::peer(admin, node, "outflow.register").await?);
            }
            let member = admin.outflow_register(args.request()).await?.into_inner();
            print_member(format, &member, View::Outflow);
        }
        OutflowCommand::Update(mut args) => {
            let member_id = args.member.id(admin, "outflow.update").await?;
            if let Some(to) = &args.to {
                args.to = Some(places::code(to)?);
            }
            if let Some(node) = &args.node {
                args.node = Some(refs::peer(admin, node, "outflow.update").await?);
            }
            let member = admin
                .outflow_update(args.request(member_id)?)
                .await?
                .into_inner();
            print_member(format, &member, View::Outflow);
        }
        OutflowCommand::Return { member_id, on } => {
            let member_id = refs::member(admin, &member_id, "outflow.return").await?;
            let member = admin
                .outflow_return(pb::OutflowReturnRequest {
                    member_id,
                    returned_on: text(on),
                })
                .await?
                .into_inner();
            print_member(format, &member, View::Outflow);
        }
        OutflowCommand::List { all, destination } => {
            let destination = destination.map(|d| places::code(&d)).transpose()?;
            let outflows = admin
                .outflow_list(list_request(all, destination))
                .await?
                .into_inner()
                .outflows;
            print_list(format, "outflow", &outflows, outflow_json, outflow_table);
        }
    }
    Ok(())
}

fn list_request(all: bool, destination: Option<String>) -> pb::OutflowListRequest {
    pb::OutflowListRequest {
        include_returned: all,
        destination: text(destination),
    }
}

pub fn outflow_json(o: &pb::OutflowView) -> serde_json::Value {
    json!({
        "outflow_id": o.outflow_id, "member_id": o.member_id, "member_name": o.member_name,
        "destination_place": o.destination_place, "destination_node": o.destination_node,
        "direction": o.direction, "departed_on": o.departed_on, "expected_return": o.expected_return,
        "reason": o.reason, "fixed_location": o.fixed_location, "certificate_no": o.certificate_no,
        "certificate_issuer": o.certificate_issuer, "certificate_issued_on": o.certificate_issued_on,
        "card_no": o.card_no, "state": o.state, "returned_on": o.returned_on,
    })
}

/// The fields of an outflow registration, for a member's detail view.
pub fn outflow_fields(d: &mut Detail, o: &pb::OutflowView) {
    d.field("id", &o.outflow_id)
        .field("to", places::show(&o.destination_place))
        .field("node", &o.destination_node)
        .field("direction", &o.direction)
        .field("departed on", &o.departed_on)
        .field("expected return", &o.expected_return)
        .field("reason", &o.reason)
        .field("fixed location", yes_no(o.fixed_location))
        .field("certificate", &o.certificate_no)
        .field("issued by", &o.certificate_issuer)
        .field("issued on", &o.certificate_issued_on)
        .field("card", &o.card_no)
        .field("state", &o.state)
        .field("returned on", &o.returned_on);
}

fn outflow_table(outflows: &[pb::OutflowView]) -> Table {
    let mut table = Table::new(&[
        "MEMBER",
        "NAME",
        "TO",
        "NODE",
        "DEPARTED",
        "EXPECTED RETURN",
        "FIXED",
        "CERTIFICATE",
        "STATE",
    ]);
    for o in outflows {
        table.row(vec![
            o.member_id.clone(),
            dash(&o.member_name),
            places::show(&o.destination_place),
            dash(&o.destination_node),
            dash(&o.departed_on),
            dash(&o.expected_return),
            yes_no(o.fixed_location).into(),
            dash(&o.certificate_no),
            dash(&o.state),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{parse, refused};
    use crate::Command;

    fn outflow(args: &[&str]) -> OutflowCommand {
        let argv: Vec<&str> = ["outflow"].iter().chain(args).copied().collect();
        match parse(&argv) {
            Command::Outflow(command) => command,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn register_maps_every_flag() {
        let OutflowCommand::Register(args) = outflow(&[
            "register",
            "m-1",
            "--to",
            "620100",
            "--node",
            "lanzhou",
            "--direction",
            "私营企业",
            "--departed-on",
            "2026-03-01",
            "--expected-return",
            "2027-01-15",
            "--reason",
            "务工",
            "--fixed-location",
            "--certificate-no",
            "PL2026-0001",
            "--certificate-issuer",
            "中共平凉市崆峒区委",
            "--certificate-issued-on",
            "2026-02-20",
            "--card-no",
            "C-17",
        ]) else {
            panic!()
        };
        assert_eq!(
            args.request(),
            pb::OutflowRequest {
                member_id: "m-1".into(),
                destination_place: "620100".into(),
                destination_node: "lanzhou".into(),
                direction: "私营企业".into(),
                departed_on: "2026-03-01".into(),
                expected_return: "2027-01-15".into(),
                reason: "务工".into(),
                fixed_location: true,
                certificate_no: "PL2026-0001".into(),
                certificate_issuer: "中共平凉市崆峒区委".into(),
                certificate_issued_on: "2026-02-20".into(),
                card_no: "C-17".into(),
            }
        );
        let OutflowCommand::Register(args) = outflow(&[
            "register",
            "m-1",
            "--to",
            "62",
            "--departed-on",
            "2026-03-01",
        ]) else {
            panic!()
        };
        let request = args.request();
        assert_eq!(request.destination_node, "");
        assert!(!request.fixed_location);
    }

    #[test]
    fn register_needs_a_destination_and_a_departure() {
        assert!(refused(&["outflow", "register", "m-1", "--to", "62"]));
        assert!(refused(&[
            "outflow",
            "register",
            "m-1",
            "--departed-on",
            "2026-03-01"
        ]));
    }

    #[test]
    fn return_and_list_parse() {
        match outflow(&["return", "m-1", "--on", "2026-12-01"]) {
            OutflowCommand::Return { member_id, on } => {
                assert_eq!(
                    (member_id.as_str(), on.as_deref()),
                    ("m-1", Some("2026-12-01"))
                )
            }
            other => panic!("{other:?}"),
        }
        match outflow(&["list", "--all", "--destination", "6201"]) {
            OutflowCommand::List { all, destination } => assert_eq!(
                list_request(all, destination),
                pb::OutflowListRequest {
                    include_returned: true,
                    destination: "6201".into(),
                }
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn list_table_and_json() {
        let o = pb::OutflowView {
            outflow_id: "of-1".into(),
            member_id: "m-1".into(),
            member_name: "张三".into(),
            destination_place: "620100".into(),
            departed_on: "2026-03-01".into(),
            fixed_location: true,
            state: "open".into(),
            ..Default::default()
        };
        let text = outflow_table(std::slice::from_ref(&o)).render();
        let rows: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows[1],
            [
                "m-1",
                "张三",
                "兰州市",
                "(620100)",
                "-",
                "2026-03-01",
                "-",
                "yes",
                "-",
                "open"
            ]
        );
        let value = outflow_json(&o);
        assert_eq!(value["member_name"], "张三");
        assert_eq!(value["fixed_location"], true);
        assert_eq!(value.as_object().unwrap().len(), 16);
    }
}

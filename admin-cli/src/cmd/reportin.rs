//! `liaisonctl reportin`: the report-in claims (报到) members submitted at
//! this node's service stations (docs/reportin.md). A clerk confirms a
//! claim against a member hosted here under an agreement, which sends the
//! report-in to the member's home; a claim from a region with no agreement
//! with this node is listed as such and never sent.

use clap::Subcommand;
use liaison_proto::v1 as pb;
use liaisonctl::output::{self, dash, json_line, Detail, Format, Table};
use serde_json::json;

use super::{places, print_list, refs, text, Admin, Failure};

#[derive(Debug, Subcommand)]
pub enum ReportinCommand {
    /// Claims waiting for a clerk (or in another state), oldest first.
    List {
        /// Which claims.
        #[arg(long, default_value = "pending", value_parser = ["pending", "confirmed", "rejected", "all"])]
        state: String,
    },
    /// A claim, with the members hosted here it may be.
    Show {
        /// The claim's id or an id prefix (8+ characters), as `reportin list` shows.
        #[arg(value_name = "CLAIM")]
        claim: String,
    },
    /// Confirm a claim: the member reported in; the report-in goes to the member's home.
    Confirm {
        #[arg(value_name = "CLAIM")]
        claim: String,
        /// The member it is (name, id or id prefix); default: the one candidate
        /// with the claim's certificate number, or with its name and home region.
        #[arg(long, value_name = "MEMBER")]
        member: Option<String>,
    },
    /// Record a report-in made in person at a station's desk, from the member's paper form.
    Add {
        /// The station: its code or name.
        #[arg(long)]
        station: String,
        /// The member's name, as on the ID card.
        #[arg(long)]
        name: String,
        /// The member's mobile phone (11 digits).
        #[arg(long)]
        phone: String,
        /// The home region: a place name (平凉市崆峒区) or code.
        #[arg(long, value_name = "PLACE")]
        home: String,
        /// The home branch as the member names it.
        #[arg(long, value_name = "TEXT")]
        branch: Option<String>,
        /// The activity certificate's (流动党员活动证) number, if held.
        #[arg(long)]
        certificate: Option<String>,
        /// The member's employer here.
        #[arg(long)]
        employer: Option<String>,
        /// The member's address here.
        #[arg(long)]
        address: Option<String>,
        /// The member signed the form's consent line: what is sent home, and why.
        #[arg(long)]
        consented: bool,
    },
    /// Reject a claim; it is deleted with its personal data after report_in.rejected_kept_days.
    Reject {
        #[arg(value_name = "CLAIM")]
        claim: String,
        /// Why (kept with the claim until it is deleted).
        #[arg(long)]
        reason: Option<String>,
    },
}

pub async fn run(
    admin: &mut Admin,
    format: Format,
    command: ReportinCommand,
) -> Result<(), Failure> {
    let claim = match command {
        ReportinCommand::List { state } => {
            let claims = admin
                .reportin_list(pb::ReportinListRequest {
                    state: state.clone(),
                })
                .await?
                .into_inner()
                .claims;
            print_list(format, "reportin", &claims, claim_json, table);
            if format == Format::Table && claims.is_empty() {
                output::note(&format!("no {state} report-in claims\n"));
            }
            return Ok(());
        }
        ReportinCommand::Show { claim } => admin
            .reportin_show(pb::ReportinRef { claim_id: claim })
            .await?
            .into_inner(),
        ReportinCommand::Confirm { claim, member } => {
            let member_id = match member {
                Some(member) => refs::member(admin, &member, "reportin.confirm").await?,
                None => String::new(),
            };
            admin
                .reportin_confirm(pb::ReportinConfirmRequest {
                    claim_id: claim,
                    member_id,
                })
                .await?
                .into_inner()
        }
        ReportinCommand::Add {
            station,
            name,
            phone,
            home,
            branch,
            certificate,
            employer,
            address,
            consented,
        } => {
            let station = refs::station(admin, &station, "reportin.add").await?;
            // The form's place picker gives a 6-digit division code.
            let home_place = format!("{:0<6}", places::code(&home)?);
            admin
                .reportin_add(pb::ReportinAddRequest {
                    station,
                    name,
                    phone,
                    home_place,
                    home_branch: text(branch),
                    certificate_no: text(certificate),
                    employer: text(employer),
                    address: text(address),
                    consent: consented,
                })
                .await?
                .into_inner()
        }
        ReportinCommand::Reject { claim, reason } => admin
            .reportin_reject(pb::ReportinRejectRequest {
                claim_id: claim,
                reason: text(reason),
            })
            .await?
            .into_inner(),
    };
    match format {
        Format::Json => json_line("reportin", claim_json(&claim)),
        Format::Table => output::print_out(&detail(&claim)),
    }
    Ok(())
}

fn claim_json(c: &pb::ReportinView) -> serde_json::Value {
    json!({
        "claim_id": c.claim_id, "station": c.station, "station_name": c.station_name,
        "submitted_at": c.submitted_at, "name": c.name, "phone": c.phone,
        "home_place": c.home_place, "home_place_label": c.home_place_label,
        "home_branch": c.home_branch, "certificate_no": c.certificate_no,
        "employer": c.employer, "address": c.address, "state": c.state,
        "member_id": c.member_id, "member_name": c.member_name,
        "decided_by": c.decided_by, "reason": c.reason, "home_node": c.home_node,
        "deleted_after": c.deleted_after,
        "candidates": c.candidates.iter().map(|k| json!({
            "member_id": k.member_id, "name": k.name, "owner": k.owner,
            "home_branch": k.home_branch, "matches": k.matches,
            "contact_status": k.contact_status,
        })).collect::<Vec<_>>(),
    })
}

/// An RFC 3339 time as people read it, in the node's zone.
fn shown(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| output::time(t.timestamp_millis()))
        .unwrap_or_else(|_| dash(rfc3339))
}

/// What a claim waits for: the clerk, or an agreement that does not exist.
fn situation(c: &pb::ReportinView) -> String {
    match c.state.as_str() {
        "pending" if c.home_node.is_empty() => {
            format!("no agreement with {}", c.home_place_label)
        }
        "pending" => format!("to confirm (home: {})", c.home_node),
        "confirmed" => format!("confirmed: {}", dash(&c.member_name)),
        other => other.to_owned(),
    }
}

fn table(claims: &[pb::ReportinView]) -> Table {
    let mut table = Table::new(&["CLAIM", "SUBMITTED", "STATION", "NAME", "HOME", "STATE"]);
    for c in claims {
        table.row(vec![
            c.claim_id.get(..13).unwrap_or(&c.claim_id).to_owned(),
            shown(&c.submitted_at),
            c.station_name.clone(),
            dash(&c.name),
            dash(&c.home_place_label),
            situation(c),
        ]);
    }
    table
}

fn detail(c: &pb::ReportinView) -> String {
    let mut d = Detail::new();
    d.field("claim", &c.claim_id)
        .field("state", situation(c))
        .field("submitted", shown(&c.submitted_at))
        .field("station", format!("{} ({})", c.station_name, c.station))
        .field("name", &c.name)
        .field("phone", &c.phone)
        .field("home region", &c.home_place_label)
        .field("home branch", &c.home_branch)
        .field("certificate", &c.certificate_no)
        .field("employer", &c.employer)
        .field("address here", &c.address);
    if !c.decided_by.is_empty() {
        d.field("decided by", &c.decided_by);
    }
    if !c.reason.is_empty() {
        d.field("reason", &c.reason);
    }
    if !c.deleted_after.is_empty() {
        d.field("deleted after", shown(&c.deleted_after));
    }
    let mut text = d.render();
    if c.state == "pending" {
        if c.candidates.is_empty() {
            text.push_str("\nno member hosted here matches by certificate number, name or phone\n");
        } else {
            let mut table = Table::new(&["MEMBER", "NAME", "HOME", "BRANCH", "CONTACT", "MATCHES"]);
            for k in &c.candidates {
                table.row(vec![
                    k.member_id.clone(),
                    k.name.clone(),
                    k.owner.clone(),
                    dash(&k.home_branch),
                    dash(&k.contact_status),
                    k.matches.join(", "),
                ]);
            }
            text.push_str("\ncandidates\n");
            text.push_str(&table.render());
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{parse, refused};
    use crate::Command;

    fn claim(state: &str, home_node: &str) -> pb::ReportinView {
        pb::ReportinView {
            claim_id: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into(),
            station: "k7m2p9qa".into(),
            station_name: "兰州市平凉籍流动党员服务站".into(),
            submitted_at: "2026-12-06T10:00:00+08:00".into(),
            name: "张三".into(),
            home_place: "6101".into(),
            home_place_label: "西安市 (6101)".into(),
            state: state.into(),
            home_node: home_node.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_claim_without_agreement_says_so() {
        assert_eq!(
            situation(&claim("pending", "")),
            "no agreement with 西安市 (6101)"
        );
        assert_eq!(
            situation(&claim("pending", "xian")),
            "to confirm (home: xian)"
        );
        let listed = table(&[claim("pending", "")]).render();
        assert!(
            listed.contains("no agreement with 西安市 (6101)"),
            "{listed}"
        );
        assert!(listed.contains("0193a1b2-c3d4"), "{listed}");
    }

    #[test]
    fn reportin_commands_parse() {
        match parse(&["reportin", "confirm", "0193a1b2", "--member", "张三"]) {
            Command::Reportin(ReportinCommand::Confirm { claim, member }) => {
                assert_eq!(claim, "0193a1b2");
                assert_eq!(member.as_deref(), Some("张三"));
            }
            other => panic!("{other:?}"),
        }
        assert!(refused(&["reportin", "list", "--state", "lost"]));
        assert!(refused(&["reportin", "confirm"]), "a claim is required");
    }
}

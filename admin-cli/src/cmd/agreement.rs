//! `liaisonctl agreement`: co-management agreements (双向共管协议) between this
//! node and a peer (docs/agreements.md). The outflow party, whose members
//! an agreement is about, coordinates: it numbers versions, activates and
//! expires. Either party proposes, counters or terminates; each version binds
//! only once both parties signed it.

use clap::builder::NonEmptyStringValueParser;
use clap::Subcommand;
use liaison_proto::v1 as pb;
use liaisonctl::output::{self, dash, json_line, Detail, Format, Table};
use serde_json::json;

use super::refs;
use super::{print_list, text, Admin, Failure};

// Parsed once per run, so the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum AgreementCommand {
    /// Propose an agreement to a peer. It activates once both parties signed
    /// its latest version and the coordinator's clock reaches --from.
    Propose(ProposeArgs),
    /// Propose changed terms: only the terms named change; the rest stay as
    /// in the latest version (before version 1: as in the pending proposal).
    Counter(CounterArgs),
    /// Accept: the inflow party signs the latest version; the coordinator
    /// publishes the inflow party's pending counter-proposal as the next version.
    Accept {
        /// The agreement: its number (协议编号, e.g. 平凉-兰州-2026-01), id, or an id prefix.
        #[arg(value_name = "AGREEMENT")]
        agreement_id: String,
    },
    /// Decline an agreement that is not active yet; final.
    Reject {
        /// The agreement: its number (协议编号, e.g. 平凉-兰州-2026-01), id, or an id prefix.
        #[arg(value_name = "AGREEMENT")]
        agreement_id: String,
        /// Why; the other party's operators see it.
        #[arg(long, value_parser = NonEmptyStringValueParser::new())]
        reason: String,
    },
    /// End an active agreement (either party may); final. Sharing under it
    /// stops and the host deletes the copies it holds under it.
    Terminate {
        /// The agreement: its number (协议编号, e.g. 平凉-兰州-2026-01), id, or an id prefix.
        #[arg(value_name = "AGREEMENT")]
        agreement_id: String,
        /// Why; the other party's operators see it.
        #[arg(long, value_parser = NonEmptyStringValueParser::new())]
        reason: String,
    },
    /// List agreements with peers.
    List {
        /// Only agreements in this state.
        #[arg(long, value_parser = ["proposed", "active", "expired", "terminated"])]
        state: Option<String>,
        /// Only agreements with this peer.
        #[arg(long)]
        peer: Option<String>,
    },
    /// One agreement in detail: terms, pending counter-proposal, what to do
    /// next, and every version with its signatures.
    Show {
        /// The agreement: its number (协议编号, e.g. 平凉-兰州-2026-01), id, or an id prefix.
        #[arg(value_name = "AGREEMENT")]
        agreement_id: String,
    },
}

/// Terms that are optional in `propose` and `counter` alike: scope, duties
/// and liaisons. In `counter`, a flag not given keeps the term of
/// the latest version; a list flag given at least once replaces that list.
#[derive(Debug, clap::Args)]
pub struct TermFlags {
    /// Which members it covers: `destination`, every member away to a place
    /// the inflow node serves (default when proposing); or `members`, exactly
    /// those named by --member.
    #[arg(long, value_parser = ["destination", "members"])]
    scope: Option<String>,
    /// A member covered, with --scope members (name, ID number, id or id prefix; repeat for each).
    #[arg(long = "member", value_name = "MEMBER")]
    members: Vec<String>,
    /// Education duties (教育管理), e.g. who gives pre-departure and on-site training.
    #[arg(long)]
    education: Option<String>,
    /// Organizational life (组织生活): where members take part.
    #[arg(long)]
    org_life: Option<String>,
    /// Who collects dues (党费): the inflow or the outflow party.
    #[arg(long, value_parser = ["inflow", "outflow"])]
    dues_collector: Option<String>,
    /// What the host contributes to democratic appraisal (民主评议).
    #[arg(long)]
    evaluation_input: Option<String>,
    /// How often the host reports contact status, e.g. monthly.
    #[arg(long)]
    contact_report: Option<String>,
    /// Services the host offers members (服务), e.g. 就业, 维权.
    #[arg(long)]
    services: Option<String>,
    /// A liaison of the outflow party: "NAME:PHONE[:ROLE]" (repeat for each).
    #[arg(long = "outflow-liaison", value_name = "NAME:PHONE[:ROLE]", value_parser = parse_liaison)]
    outflow_liaisons: Vec<pb::LiaisonPerson>,
    /// A liaison of the inflow party: "NAME:PHONE[:ROLE]" (repeat for each).
    #[arg(long = "inflow-liaison", value_name = "NAME:PHONE[:ROLE]", value_parser = parse_liaison)]
    inflow_liaisons: Vec<pb::LiaisonPerson>,
    /// Anything else agreed.
    #[arg(long)]
    notes: Option<String>,
}

impl TermFlags {
    /// `terms` with the flags given written over them.
    fn apply(self, terms: pb::AgreementTerms) -> pb::AgreementTerms {
        fn list_or<T>(given: Vec<T>, current: Vec<T>) -> Vec<T> {
            if given.is_empty() {
                current
            } else {
                given
            }
        }
        let scope_kind = self.scope.unwrap_or(terms.scope_kind);
        // Widening the scope to the destination drops a member list kept from before.
        let scope_members = if scope_kind == "destination" && self.members.is_empty() {
            Vec::new()
        } else {
            list_or(self.members, terms.scope_members)
        };
        pb::AgreementTerms {
            scope_kind,
            scope_members,
            education: self.education.unwrap_or(terms.education),
            org_life: self.org_life.unwrap_or(terms.org_life),
            dues_collector: self.dues_collector.unwrap_or(terms.dues_collector),
            evaluation_input: self.evaluation_input.unwrap_or(terms.evaluation_input),
            contact_report: self.contact_report.unwrap_or(terms.contact_report),
            services: self.services.unwrap_or(terms.services),
            outflow_liaisons: list_or(self.outflow_liaisons, terms.outflow_liaisons),
            inflow_liaisons: list_or(self.inflow_liaisons, terms.inflow_liaisons),
            notes: self.notes.unwrap_or(terms.notes),
            ..terms
        }
    }
}

/// Parses `NAME:PHONE[:ROLE]`; the role may itself hold colons.
fn parse_liaison(text: &str) -> Result<pb::LiaisonPerson, String> {
    let mut parts = text.splitn(3, ':').map(str::trim);
    let name = parts.next().unwrap_or_default();
    let phone = parts.next().unwrap_or_default();
    let role = parts.next().unwrap_or_default();
    if name.is_empty() || phone.is_empty() {
        return Err(format!(
            "expected NAME:PHONE[:ROLE], e.g. 张三:13800000000:组织委员 (with ASCII colons), got `{text}`"
        ));
    }
    Ok(pb::LiaisonPerson {
        name: name.into(),
        phone: phone.into(),
        role: role.into(),
    })
}

/// A member list belongs to `--scope members` only, and that scope needs one.
fn check_scope(terms: &pb::AgreementTerms) -> anyhow::Result<()> {
    match (terms.scope_kind.as_str(), terms.scope_members.is_empty()) {
        ("destination", false) => anyhow::bail!(
            "--member names the members of a `--scope members` agreement: add --scope members, or drop --member"
        ),
        ("members", true) => {
            anyhow::bail!("--scope members needs the members: give --member ID for each")
        }
        _ => Ok(()),
    }
}

#[derive(Debug, clap::Args)]
pub struct ProposeArgs {
    /// The other party: a peer's node id or name.
    #[arg(long = "with", value_name = "PEER")]
    peer: String,
    /// This node's side: outflow (its members go to the peer; it coordinates)
    /// or inflow (it hosts the peer's members).
    #[arg(long = "as", value_name = "ROLE", value_parser = ["outflow", "inflow"], default_value = "outflow")]
    role: String,
    /// The agreement's number (协议编号), as both departments file it; the
    /// same for every version. Default: the parties' names, the year it
    /// takes effect and the next sequence number, e.g. 平凉-兰州-2026-01.
    #[arg(long)]
    number: Option<String>,
    /// First day in force: YYYY-MM-DD.
    #[arg(long = "from", value_name = "DATE")]
    effective_from: String,
    /// Last day in force: YYYY-MM-DD (inclusive).
    #[arg(long = "until", value_name = "DATE")]
    effective_until: String,
    #[command(flatten)]
    terms: TermFlags,
}

impl ProposeArgs {
    fn request(self) -> anyhow::Result<pb::AgreementProposeRequest> {
        let mut terms = self.terms.apply(pb::AgreementTerms {
            number: self.number.unwrap_or_default(),
            effective_from: self.effective_from,
            effective_until: self.effective_until,
            ..Default::default()
        });
        if terms.scope_kind.is_empty() {
            terms.scope_kind = "destination".into();
        }
        check_scope(&terms)?;
        Ok(pb::AgreementProposeRequest {
            peer: self.peer,
            role: self.role,
            terms: Some(terms),
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct CounterArgs {
    /// The agreement: its number (协议编号), id, or an id prefix.
    #[arg(value_name = "AGREEMENT")]
    agreement_id: String,
    /// First day in force: YYYY-MM-DD.
    #[arg(long = "from", value_name = "DATE")]
    effective_from: Option<String>,
    /// Last day in force: YYYY-MM-DD (inclusive).
    #[arg(long = "until", value_name = "DATE")]
    effective_until: Option<String>,
    #[command(flatten)]
    terms: TermFlags,
}

impl CounterArgs {
    /// The counter-proposal: `latest`, the terms `agreement show` gives (the
    /// latest version's, or before version 1 the pending proposal's), with
    /// the flags given written over them. The node takes whole terms, so an
    /// operator names only what changes.
    fn request(self, latest: pb::AgreementTerms) -> anyhow::Result<pb::AgreementCounterRequest> {
        let dates = pb::AgreementTerms {
            effective_from: self.effective_from.unwrap_or(latest.effective_from.clone()),
            effective_until: self
                .effective_until
                .unwrap_or(latest.effective_until.clone()),
            ..latest.clone()
        };
        let terms = self.terms.apply(dates);
        check_scope(&terms)?;
        if terms == latest {
            anyhow::bail!(
                "nothing to change: name the terms that change, e.g. --until 2028-12-31 (to sign the latest version as it is, use `agreement accept`)"
            );
        }
        Ok(pb::AgreementCounterRequest {
            agreement_id: self.agreement_id,
            terms: Some(terms),
        })
    }
}

pub async fn run(
    admin: &mut Admin,
    format: Format,
    command: AgreementCommand,
) -> Result<(), Failure> {
    let agreement_ref = |agreement_id: String| pb::AgreementRef { agreement_id };
    let view = match command {
        AgreementCommand::Propose(mut args) => {
            args.peer = refs::peer(admin, &args.peer, "agreement.propose").await?;
            if args.number.is_none() {
                args.number = Some(next_number(admin, &args.peer, &args.effective_from).await?);
            }
            args.terms.members =
                resolve_members(admin, &args.terms.members, "agreement.propose").await?;
            admin.agreement_propose(args.request()?).await?
        }
        AgreementCommand::Counter(mut args) => {
            args.agreement_id =
                refs::agreement(admin, &args.agreement_id, "agreement.counter").await?;
            args.terms.members =
                resolve_members(admin, &args.terms.members, "agreement.counter").await?;
            let shown = admin
                .agreement_show(agreement_ref(args.agreement_id.clone()))
                .await?
                .into_inner();
            let Some(latest) = shown.terms else {
                return Err(anyhow::anyhow!(
                    "the node sent agreement {} without its terms; nothing was sent",
                    shown.agreement_id
                )
                .into());
            };
            admin.agreement_counter(args.request(latest)?).await?
        }
        AgreementCommand::Accept { agreement_id } => {
            let agreement_id = refs::agreement(admin, &agreement_id, "agreement.accept").await?;
            admin.agreement_accept(agreement_ref(agreement_id)).await?
        }
        AgreementCommand::Reject {
            agreement_id,
            reason,
        } => {
            let agreement_id = refs::agreement(admin, &agreement_id, "agreement.reject").await?;
            admin
                .agreement_reject(pb::AgreementEndRequest {
                    agreement_id,
                    reason,
                })
                .await?
        }
        AgreementCommand::Terminate {
            agreement_id,
            reason,
        } => {
            let agreement_id = refs::agreement(admin, &agreement_id, "agreement.terminate").await?;
            admin
                .agreement_terminate(pb::AgreementEndRequest {
                    agreement_id,
                    reason,
                })
                .await?
        }
        AgreementCommand::List { state, peer } => {
            let peer = match peer {
                Some(peer) => Some(refs::peer(admin, &peer, "").await?),
                None => None,
            };
            let agreements = admin
                .agreement_list(list_request(state, peer))
                .await?
                .into_inner()
                .agreements;
            print_list(
                format,
                "agreement",
                &agreements,
                agreement_json,
                agreement_table,
            );
            return Ok(());
        }
        AgreementCommand::Show { agreement_id } => {
            let agreement_id = refs::agreement(admin, &agreement_id, "").await?;
            let view = admin
                .agreement_show(agreement_ref(agreement_id))
                .await?
                .into_inner();
            print_agreement(format, &view, View::Full);
            return Ok(());
        }
    };
    print_agreement(format, &view.into_inner(), View::Short);
    Ok(())
}

/// The next agreement number with `peer`: this node's and the peer's
/// names, the year the agreement takes effect, and one more than the
/// numbers of that form this node has (平凉-兰州-2026-01).
async fn next_number(
    admin: &mut Admin,
    peer: &str,
    effective_from: &str,
) -> Result<String, Failure> {
    let own = admin
        .status(pb::StatusRequest {})
        .await?
        .into_inner()
        .display_name;
    let theirs = admin
        .peer_show(pb::PeerRef {
            node_id: peer.into(),
        })
        .await?
        .into_inner()
        .display_name;
    let year = effective_from.get(..4).unwrap_or_default();
    let prefix = format!("{own}-{theirs}-{year}-");
    let taken = admin
        .agreement_list(pb::AgreementListRequest::default())
        .await?
        .into_inner()
        .agreements
        .iter()
        .filter_map(|a| a.number.strip_prefix(&prefix)?.parse::<u32>().ok())
        .max()
        .unwrap_or(0);
    Ok(format!("{prefix}{:02}", taken + 1))
}

/// The ids of the members `--member` names.
async fn resolve_members(
    admin: &mut Admin,
    references: &[String],
    action: &str,
) -> Result<Vec<String>, Failure> {
    let mut ids = Vec::with_capacity(references.len());
    for reference in references {
        ids.push(refs::member(admin, reference, action).await?);
    }
    Ok(ids)
}

fn list_request(state: Option<String>, peer: Option<String>) -> pb::AgreementListRequest {
    pb::AgreementListRequest {
        state: text(state),
        peer: text(peer),
    }
}

/// Which parts of an agreement a verb prints in table mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    /// Where it stands and what comes next: after a change.
    Short,
    /// Everything: terms, pending counter-proposal, versions and signatures.
    Full,
}

fn print_agreement(format: Format, a: &pb::AgreementView, view: View) {
    match format {
        Format::Json => json_line("agreement", agreement_json(a)),
        Format::Table => output::print_out(&agreement_detail(a, view)),
    }
}

fn liaison_json(l: &pb::LiaisonPerson) -> serde_json::Value {
    json!({ "name": l.name, "phone": l.phone, "role": l.role })
}

fn terms_json(t: &pb::AgreementTerms) -> serde_json::Value {
    json!({
        "number": t.number, "outflow_node": t.outflow_node, "inflow_node": t.inflow_node,
        "effective_from": t.effective_from, "effective_until": t.effective_until,
        "scope_kind": t.scope_kind, "scope_members": t.scope_members,
        "education": t.education, "org_life": t.org_life, "dues_collector": t.dues_collector,
        "evaluation_input": t.evaluation_input, "contact_report": t.contact_report,
        "services": t.services,
        "outflow_liaisons": t.outflow_liaisons.iter().map(liaison_json).collect::<Vec<_>>(),
        "inflow_liaisons": t.inflow_liaisons.iter().map(liaison_json).collect::<Vec<_>>(),
        "notes": t.notes,
    })
}

fn signature_json(s: &pb::SignatureView) -> serde_json::Value {
    json!({
        "signer": s.signer, "version": s.version, "status": s.status,
        "certificate_fingerprint": s.certificate_fingerprint, "verified_at_ms": s.verified_at_ms,
    })
}

fn version_json(v: &pb::AgreementVersionView) -> serde_json::Value {
    json!({
        "version": v.version, "terms": v.terms.as_ref().map(terms_json), "terms_hash": v.terms_hash,
        "signatures": v.signatures.iter().map(signature_json).collect::<Vec<_>>(),
        "published_at_ms": v.published_at_ms,
    })
}

fn agreement_json(a: &pb::AgreementView) -> serde_json::Value {
    json!({
        "agreement_id": a.agreement_id, "number": a.number,
        "outflow_node": a.outflow_node, "inflow_node": a.inflow_node, "role": a.role,
        "state": a.state, "version": a.version, "active_version": a.active_version,
        "terms": a.terms.as_ref().map(terms_json),
        "history": a.history.iter().map(version_json).collect::<Vec<_>>(),
        "pending_counter": pending_counter(a).map(terms_json),
        "ended_reason": a.ended_reason, "ended_by": a.ended_by,
        "members_in_scope": a.members_in_scope, "would_cover": a.would_cover, "next_step": a.next_step,
        "updated_at_ms": a.updated_at_ms,
        "active_until": a.active_until, "ended_by_date": a.ended_by_date, "shown_state": shown_state(a),
    })
}

/// The state for people: as the node words it (an agreement still active
/// past its end date says what it awaits), else the state itself (a node
/// that words nothing).
fn shown_state(a: &pb::AgreementView) -> String {
    if a.shown_state.trim().is_empty() {
        a.state.clone()
    } else {
        a.shown_state.clone()
    }
}

/// The pending counter-proposal, if there is one (an empty message is none).
fn pending_counter(a: &pb::AgreementView) -> Option<&pb::AgreementTerms> {
    a.pending_counter
        .as_ref()
        .filter(|t| **t != pb::AgreementTerms::default())
}

/// A version number for people: "-" for none (0).
fn version_or_dash(version: u64) -> String {
    if version == 0 {
        "-".into()
    } else {
        version.to_string()
    }
}

fn agreement_table(agreements: &[pb::AgreementView]) -> Table {
    let mut table = Table::new(&[
        "ID",
        "NUMBER",
        "OUTFLOW",
        "INFLOW",
        "ROLE",
        "STATE",
        "VERSION",
        "ACTIVE VERSION",
        "FROM",
        "UNTIL",
        "MEMBERS",
    ]);
    let none = pb::AgreementTerms::default();
    for a in agreements {
        let terms = a.terms.as_ref().unwrap_or(&none);
        table.row(vec![
            a.agreement_id.clone(),
            dash(&a.number),
            dash(&a.outflow_node),
            dash(&a.inflow_node),
            dash(&a.role),
            dash(&shown_state(a)),
            version_or_dash(a.version),
            version_or_dash(a.active_version),
            dash(&terms.effective_from),
            dash(&terms.effective_until),
            a.members_in_scope.to_string(),
        ]);
    }
    table
}

fn liaisons(people: &[pb::LiaisonPerson]) -> String {
    people
        .iter()
        .map(|l| match l.role.as_str() {
            "" => format!("{} {}", l.name, l.phone),
            role => format!("{} {} ({role})", l.name, l.phone),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn scope(t: &pb::AgreementTerms) -> String {
    match t.scope_kind.as_str() {
        "members" => format!(
            "members ({}): {}",
            t.scope_members.len(),
            t.scope_members.join(" ")
        ),
        "destination" => "destination (members away to places the inflow node serves)".into(),
        other => other.to_owned(),
    }
}

/// The period and scope of the terms, as labelled in the detail view.
fn frame_fields(t: &pb::AgreementTerms) -> [(&'static str, String); 3] {
    [
        ("effective from", t.effective_from.clone()),
        ("effective until", t.effective_until.clone()),
        ("scope", scope(t)),
    ]
}

/// Who does what and who to call, as labelled in the detail view.
fn duty_fields(t: &pb::AgreementTerms) -> [(&'static str, String); 9] {
    [
        ("education", t.education.clone()),
        ("org life", t.org_life.clone()),
        ("dues collector", t.dues_collector.clone()),
        ("evaluation input", t.evaluation_input.clone()),
        ("contact report", t.contact_report.clone()),
        ("services", t.services.clone()),
        ("outflow liaisons", liaisons(&t.outflow_liaisons)),
        ("inflow liaisons", liaisons(&t.inflow_liaisons)),
        ("notes", t.notes.clone()),
    ]
}

/// The terms of `proposed` that differ from `current`, labelled as in the
/// detail view, with their proposed values.
fn changed_terms(
    current: &pb::AgreementTerms,
    proposed: &pb::AgreementTerms,
) -> Vec<(&'static str, String)> {
    let all = |t: &pb::AgreementTerms| {
        let mut fields = vec![("number", t.number.clone())];
        fields.extend(frame_fields(t));
        fields.extend(duty_fields(t));
        fields
    };
    all(current)
        .into_iter()
        .zip(all(proposed))
        .filter(|(was, now)| was != now)
        .map(|(_, now)| now)
        .collect()
}

fn agreement_detail(a: &pb::AgreementView, view: View) -> String {
    let none = pb::AgreementTerms::default();
    let terms = a.terms.as_ref().unwrap_or(&none);
    let role = match a.role.as_str() {
        "outflow" => "outflow (this node coordinates)",
        other => other,
    };
    let mut d = Detail::new();
    d.field("agreement", &a.agreement_id)
        .field("number", &a.number)
        .field(
            "outflow",
            format!("{} (coordinator)", dash(&a.outflow_node)),
        )
        .field("inflow", &a.inflow_node)
        .field("role", role)
        .field("state", shown_state(a))
        .field("version", version_or_dash(a.version))
        .field("active version", version_or_dash(a.active_version));
    for (label, value) in frame_fields(terms) {
        d.field(label, value);
    }
    if a.would_cover.is_empty() {
        d.field("members in scope", a.members_in_scope.to_string());
    } else {
        let more = a
            .members_in_scope
            .saturating_sub(a.would_cover.len() as u64);
        let mut names = a.would_cover.join(", ");
        if more > 0 {
            names.push_str(&format!(" and {more} more"));
        }
        d.field(
            "would cover",
            format!("{} members: {names}", a.members_in_scope),
        );
    }
    if !(a.ended_reason.is_empty() && a.ended_by.is_empty()) || view == View::Full {
        d.field("ended reason", &a.ended_reason)
            .field("ended by", &a.ended_by);
    }
    d.field("next step", &a.next_step);
    if view == View::Full {
        d.field("updated", output::time(a.updated_at_ms));
        d.heading("terms");
        for (label, value) in duty_fields(terms) {
            d.field(label, value);
        }
    }
    // Before the coordinator published version 1, the terms shown are the
    // pending proposal itself.
    if let Some(pending) = pending_counter(a).filter(|_| a.version > 0) {
        d.heading("pending counter-proposal (changes)");
        let changes = changed_terms(terms, pending);
        if changes.is_empty() {
            d.field("changes", "none: the same terms as the latest version");
        }
        for (label, value) in changes {
            d.field(label, value);
        }
    }
    let mut text = d.render();
    if view == View::Full {
        text.push_str(&history_text(&a.history));
    }
    text
}

/// Every version, oldest first, with its terms hash and signatures.
fn history_text(history: &[pb::AgreementVersionView]) -> String {
    let mut versions: Vec<&pb::AgreementVersionView> = history.iter().collect();
    versions.sort_by_key(|v| v.version);
    let mut text = String::from("\nhistory\n");
    if versions.is_empty() {
        text.push_str("  no versions\n");
    }
    for v in versions {
        text.push_str(&format!(
            "  version {}, published {}\n    terms hash  {}\n",
            v.version,
            output::time(v.published_at_ms),
            dash(&v.terms_hash)
        ));
        if v.signatures.is_empty() {
            text.push_str("    no signatures\n");
            continue;
        }
        let mut table = Table::new(&["SIGNER", "STATUS", "CERTIFICATE", "VERIFIED"]);
        for s in &v.signatures {
            table.row(vec![
                dash(&s.signer),
                dash(&s.status),
                dash(&s.certificate_fingerprint),
                output::time(s.verified_at_ms),
            ]);
        }
        for line in table.render().lines() {
            text.push_str("    ");
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{parse, refused};
    use crate::Command;

    fn agreement(args: &[&str]) -> AgreementCommand {
        let argv: Vec<&str> = ["agreement"].iter().chain(args).copied().collect();
        match parse(&argv) {
            Command::Agreement(command) => command,
            other => panic!("{other:?}"),
        }
    }

    fn propose(args: &[&str]) -> anyhow::Result<pb::AgreementProposeRequest> {
        let argv: Vec<&str> = [
            "propose",
            "--with",
            "lanzhou",
            "--number",
            "平兰共管〔2026〕1号",
            "--from",
            "2026-01-01",
            "--until",
            "2027-12-31",
        ]
        .iter()
        .chain(args)
        .copied()
        .collect();
        match agreement(&argv) {
            AgreementCommand::Propose(args) => args.request(),
            other => panic!("{other:?}"),
        }
    }

    fn counter(args: &[&str], latest: pb::AgreementTerms) -> anyhow::Result<pb::AgreementTerms> {
        let argv: Vec<&str> = ["counter", "ag-1"].iter().chain(args).copied().collect();
        match agreement(&argv) {
            AgreementCommand::Counter(args) => {
                let request = args.request(latest)?;
                assert_eq!(request.agreement_id, "ag-1");
                Ok(request.terms.unwrap())
            }
            other => panic!("{other:?}"),
        }
    }

    fn person(name: &str, phone: &str, role: &str) -> pb::LiaisonPerson {
        pb::LiaisonPerson {
            name: name.into(),
            phone: phone.into(),
            role: role.into(),
        }
    }

    fn terms() -> pb::AgreementTerms {
        pb::AgreementTerms {
            number: "平兰共管〔2026〕1号".into(),
            outflow_node: "pingliang".into(),
            inflow_node: "lanzhou".into(),
            effective_from: "2026-01-01".into(),
            effective_until: "2027-12-31".into(),
            scope_kind: "members".into(),
            scope_members: vec!["m-1".into(), "m-2".into()],
            education: "流出地岗前培训，流入地集中培训".into(),
            org_life: "流入地党支部".into(),
            dues_collector: "inflow".into(),
            evaluation_input: String::new(),
            contact_report: "monthly".into(),
            services: String::new(),
            outflow_liaisons: vec![person("张三", "13800000000", "组织委员")],
            inflow_liaisons: vec![person("王五", "13900000000", "")],
            notes: String::new(),
        }
    }

    fn view() -> pb::AgreementView {
        pb::AgreementView {
            agreement_id: "ag-1".into(),
            number: "平兰共管〔2026〕1号".into(),
            outflow_node: "pingliang".into(),
            inflow_node: "lanzhou".into(),
            role: "outflow".into(),
            state: "active".into(),
            version: 2,
            active_version: 1,
            terms: Some(terms()),
            history: vec![
                pb::AgreementVersionView {
                    version: 2,
                    terms: Some(terms()),
                    terms_hash: "bb22".into(),
                    signatures: vec![],
                    published_at_ms: 0,
                },
                pb::AgreementVersionView {
                    version: 1,
                    terms: Some(terms()),
                    terms_hash: "aa11".into(),
                    signatures: vec![
                        pb::SignatureView {
                            signer: "pingliang".into(),
                            version: 1,
                            status: "valid".into(),
                            certificate_fingerprint: "sha256:01ab".into(),
                            verified_at_ms: 0,
                        },
                        pb::SignatureView {
                            signer: "lanzhou".into(),
                            version: 1,
                            status: "certificate revoked before first verification".into(),
                            certificate_fingerprint: "sha256:02cd".into(),
                            verified_at_ms: 0,
                        },
                    ],
                    published_at_ms: 0,
                },
            ],
            pending_counter: Some(pb::AgreementTerms {
                effective_until: "2028-12-31".into(),
                dues_collector: "outflow".into(),
                ..terms()
            }),
            ended_reason: String::new(),
            ended_by: String::new(),
            members_in_scope: 2,
            next_step: "decide on lanzhou's counter-proposal: publish it or answer with version 2"
                .into(),
            updated_at_ms: 0,
            would_cover: Vec::new(),
            ..Default::default()
        }
    }

    /// The value printed after `label` in a detail view, if the label is there.
    fn value<'a>(text: &'a str, label: &str) -> Option<&'a str> {
        text.lines().find_map(|line| {
            let rest = line.trim_start().strip_prefix(label)?;
            rest.starts_with("  ").then(|| rest.trim())
        })
    }

    #[test]
    fn propose_maps_every_flag() {
        let request = propose(&[
            "--as",
            "inflow",
            "--scope",
            "members",
            "--member",
            "m-1",
            "--member",
            "m-2",
            "--education",
            "流出地岗前培训，流入地集中培训",
            "--org-life",
            "流入地党支部",
            "--dues-collector",
            "inflow",
            "--contact-report",
            "monthly",
            "--outflow-liaison",
            "张三:13800000000:组织委员",
            "--inflow-liaison",
            "王五:13900000000",
        ])
        .unwrap();
        assert_eq!(
            request,
            pb::AgreementProposeRequest {
                peer: "lanzhou".into(),
                role: "inflow".into(),
                terms: Some(pb::AgreementTerms {
                    outflow_node: String::new(),
                    inflow_node: String::new(),
                    ..terms()
                }),
            }
        );
    }

    #[test]
    fn propose_defaults_to_outflow_and_destination() {
        let request = propose(&[]).unwrap();
        assert_eq!(request.role, "outflow");
        let terms = request.terms.unwrap();
        assert_eq!(terms.scope_kind, "destination");
        assert!(terms.scope_members.is_empty());
        assert_eq!(terms.effective_until, "2027-12-31");
        assert_eq!(terms.dues_collector, "");
    }

    #[test]
    fn propose_needs_peer_and_dates() {
        // The number is optional: the node's and the peer's names, the
        // year and the next sequence number by default.
        let all = [
            "--with",
            "lanzhou",
            "--from",
            "2026-01-01",
            "--until",
            "2027-12-31",
            "--number",
            "1",
        ];
        for missing in 0..3 {
            let mut argv = vec!["agreement", "propose"];
            for (idx, pair) in all.chunks(2).enumerate() {
                if idx != missing {
                    argv.extend(pair);
                }
            }
            assert!(refused(&argv), "{argv:?}");
        }
        let mut argv = vec!["agreement", "propose"];
        argv.extend(all);
        for bad in [
            &["--as", "host"][..],
            &["--scope", "province"],
            &["--dues-collector", "both"],
        ] {
            let mut argv = argv.clone();
            argv.extend(bad);
            assert!(refused(&argv), "{argv:?}");
        }
    }

    #[test]
    fn scope_and_member_list_go_together() {
        let error = propose(&["--member", "m-1"]).unwrap_err().to_string();
        assert!(error.contains("--scope members"), "{error}");
        let error = propose(&["--scope", "members"]).unwrap_err().to_string();
        assert!(error.contains("--member ID"), "{error}");
    }

    #[test]
    fn liaisons_parse_name_phone_and_optional_role() {
        let check = |text: &str, want: Option<pb::LiaisonPerson>| {
            assert_eq!(parse_liaison(text).ok(), want, "{text}");
        };
        check("张三:13800000000", Some(person("张三", "13800000000", "")));
        check(
            "张三:0931-8888888:组织委员",
            Some(person("张三", "0931-8888888", "组织委员")),
        );
        check(" 李四 : 139 : a:b ", Some(person("李四", "139", "a:b")));
        check("张三", None);
        check("张三:", None);
        check(":13800000000", None);
        check("张三：13800000000", None);
        assert!(parse_liaison("张三")
            .unwrap_err()
            .contains("NAME:PHONE[:ROLE]"));
        let mut argv = vec![
            "agreement",
            "propose",
            "--with",
            "lanzhou",
            "--number",
            "1",
            "--from",
            "2026-01-01",
            "--until",
            "2027-12-31",
        ];
        argv.extend(["--inflow-liaison", "王五"]);
        assert!(refused(&argv));
    }

    #[test]
    fn counter_changes_only_what_is_named() {
        let got = counter(
            &["--until", "2028-12-31", "--dues-collector", "outflow"],
            terms(),
        )
        .unwrap();
        assert_eq!(
            got,
            pb::AgreementTerms {
                effective_until: "2028-12-31".into(),
                dues_collector: "outflow".into(),
                ..terms()
            }
        );
        let got = counter(
            &["--notes", ""],
            pb::AgreementTerms {
                notes: "旧".into(),
                ..terms()
            },
        )
        .unwrap();
        assert_eq!(got.notes, "");
        assert_eq!(got.number, terms().number, "the number stays");
        assert_eq!(got.outflow_node, "pingliang", "the parties stay");
        assert!(
            refused(&["agreement", "counter", "ag-1", "--number", "2"]),
            "an agreement keeps its number"
        );
    }

    #[test]
    fn counter_lists_given_replace_the_latest() {
        let got = counter(
            &[
                "--member",
                "m-3",
                "--inflow-liaison",
                "赵六:137:书记",
                "--inflow-liaison",
                "钱七:136",
            ],
            terms(),
        )
        .unwrap();
        assert_eq!(got.scope_members, ["m-3"]);
        assert_eq!(
            got.inflow_liaisons,
            [person("赵六", "137", "书记"), person("钱七", "136", "")]
        );
        assert_eq!(got.outflow_liaisons, terms().outflow_liaisons);
    }

    #[test]
    fn counter_scope_changes() {
        let got = counter(&["--scope", "destination"], terms()).unwrap();
        assert_eq!(got.scope_kind, "destination");
        assert!(got.scope_members.is_empty());
        let destination = pb::AgreementTerms {
            scope_kind: "destination".into(),
            scope_members: vec![],
            ..terms()
        };
        let got = counter(
            &["--scope", "members", "--member", "m-9"],
            destination.clone(),
        )
        .unwrap();
        assert_eq!(
            (got.scope_kind.as_str(), got.scope_members.as_slice()),
            ("members", &["m-9".to_owned()][..])
        );
        assert!(counter(&["--scope", "members"], destination.clone()).is_err());
        assert!(counter(&["--member", "m-9"], destination).is_err());
        assert!(counter(&["--scope", "destination", "--member", "m-1"], terms()).is_err());
    }

    #[test]
    fn counter_that_changes_nothing_is_refused() {
        let error = counter(&[], terms()).unwrap_err().to_string();
        assert!(error.starts_with("nothing to change"), "{error}");
        assert!(counter(&["--until", "2027-12-31"], terms()).is_err());
        assert!(refused(&["agreement", "counter"]));
    }

    #[test]
    fn accept_reject_terminate_list_parse() {
        match agreement(&["accept", "ag-1"]) {
            AgreementCommand::Accept { agreement_id } => assert_eq!(agreement_id, "ag-1"),
            other => panic!("{other:?}"),
        }
        match agreement(&["reject", "ag-1", "--reason", "期限过长"]) {
            AgreementCommand::Reject {
                agreement_id,
                reason,
            } => assert_eq!(
                (agreement_id.as_str(), reason.as_str()),
                ("ag-1", "期限过长")
            ),
            other => panic!("{other:?}"),
        }
        match agreement(&["terminate", "ag-1", "--reason", "机构调整"]) {
            AgreementCommand::Terminate { reason, .. } => assert_eq!(reason, "机构调整"),
            other => panic!("{other:?}"),
        }
        for verb in ["reject", "terminate"] {
            assert!(refused(&["agreement", verb, "ag-1"]), "{verb}");
            assert!(
                refused(&["agreement", verb, "ag-1", "--reason", ""]),
                "{verb}"
            );
        }
        match agreement(&["list", "--state", "active", "--peer", "lanzhou"]) {
            AgreementCommand::List { state, peer } => assert_eq!(
                list_request(state, peer),
                pb::AgreementListRequest {
                    state: "active".into(),
                    peer: "lanzhou".into(),
                }
            ),
            other => panic!("{other:?}"),
        }
        match agreement(&["list"]) {
            AgreementCommand::List { state, peer } => {
                assert_eq!(
                    list_request(state, peer),
                    pb::AgreementListRequest::default()
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(refused(&["agreement", "list", "--state", "pending"]));
    }

    #[test]
    fn list_table_columns() {
        let proposed = pb::AgreementView {
            agreement_id: "ag-2".into(),
            role: "inflow".into(),
            state: "proposed".into(),
            version: 1,
            active_version: 0,
            terms: None,
            members_in_scope: 0,
            ..view()
        };
        let text = agreement_table(&[view(), proposed]).render();
        let rows: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows[0],
            [
                "ID", "NUMBER", "OUTFLOW", "INFLOW", "ROLE", "STATE", "VERSION", "ACTIVE",
                "VERSION", "FROM", "UNTIL", "MEMBERS"
            ]
        );
        assert_eq!(
            rows[1],
            [
                "ag-1",
                "平兰共管〔2026〕1号",
                "pingliang",
                "lanzhou",
                "outflow",
                "active",
                "2",
                "1",
                "2026-01-01",
                "2027-12-31",
                "2"
            ]
        );
        assert_eq!(
            rows[2][4..],
            ["inflow", "proposed", "1", "-", "-", "-", "0"]
        );
    }

    #[test]
    fn show_has_terms_pending_changes_and_history() {
        let text = agreement_detail(&view(), View::Full);
        assert_eq!(value(&text, "agreement"), Some("ag-1"));
        assert_eq!(value(&text, "outflow"), Some("pingliang (coordinator)"));
        assert_eq!(value(&text, "inflow"), Some("lanzhou"));
        assert_eq!(
            value(&text, "role"),
            Some("outflow (this node coordinates)")
        );
        assert_eq!(value(&text, "active version"), Some("1"));
        assert_eq!(value(&text, "scope"), Some("members (2): m-1 m-2"));
        assert_eq!(value(&text, "members in scope"), Some("2"));
        assert_eq!(value(&text, "ended reason"), Some("-"));
        assert!(value(&text, "next step").unwrap().starts_with("decide on"));
        assert_eq!(value(&text, "org life"), Some("流入地党支部"));
        assert_eq!(value(&text, "services"), Some("-"));
        assert_eq!(
            value(&text, "outflow liaisons"),
            Some("张三 13800000000 (组织委员)")
        );
        assert_eq!(value(&text, "inflow liaisons"), Some("王五 13900000000"));
        let pending: Vec<&str> = text
            .lines()
            .skip_while(|l| *l != "pending counter-proposal (changes)")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .collect();
        assert_eq!(
            pending,
            [
                "  effective until   2028-12-31",
                "  dues collector    outflow"
            ],
            "{text}"
        );
        let history = text.split("\nhistory\n").nth(1).unwrap();
        let version_1 = history.find("version 1,").unwrap();
        let version_2 = history.find("version 2,").unwrap();
        assert!(version_1 < version_2, "oldest first: {history}");
        assert!(history.contains("    terms hash  aa11\n"), "{history}");
        let signature: Vec<&str> = history
            .lines()
            .find(|l| l.trim_start().starts_with("lanzhou"))
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(signature[..2], ["lanzhou", "certificate"]);
        assert_eq!(signature[signature.len() - 2..], ["sha256:02cd", "-"]);
        assert!(history
            .ends_with("  version 2, published -\n    terms hash  bb22\n    no signatures\n"));
    }

    #[test]
    fn short_view_after_a_change_says_what_next() {
        let ended = pb::AgreementView {
            state: "terminated".into(),
            ended_reason: "机构调整".into(),
            ended_by: "lanzhou".into(),
            pending_counter: Some(pb::AgreementTerms::default()),
            next_step: String::new(),
            ..view()
        };
        let text = agreement_detail(&ended, View::Short);
        assert_eq!(value(&text, "ended reason"), Some("机构调整"));
        assert_eq!(value(&text, "ended by"), Some("lanzhou"));
        assert_eq!(value(&text, "next step"), Some("-"));
        assert!(
            !text.contains("history") && !text.contains("pending"),
            "{text}"
        );
        assert!(value(&text, "org life").is_none());
        let active = agreement_detail(&view(), View::Short);
        assert!(value(&active, "ended reason").is_none(), "{active}");
        assert!(active.contains("pending counter-proposal"), "{active}");
        let unpublished = pb::AgreementView {
            version: 0,
            history: vec![],
            pending_counter: Some(terms()),
            ..view()
        };
        let text = agreement_detail(&unpublished, View::Full);
        assert!(
            !text.contains("pending"),
            "the terms are the proposal: {text}"
        );
        assert!(
            text.ends_with(
                "
history
  no versions
"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_agreement_ended_by_date_says_what_it_awaits() {
        let words = "active — ended by date 2026-03-01 (到期待确认), awaiting the coordinator pingliang (平凉) to confirm";
        let past = pb::AgreementView {
            role: "inflow".into(),
            active_until: "2026-03-01".into(),
            ended_by_date: true,
            shown_state: words.into(),
            ..view()
        };
        let text = agreement_detail(&past, View::Full);
        assert_eq!(value(&text, "state"), Some(words), "{text}");
        let table = agreement_table(std::slice::from_ref(&past)).render();
        assert!(table.lines().nth(1).unwrap().contains(words), "{table}");
        let json = agreement_json(&past);
        assert_eq!(json["state"], "active", "JSON keeps the real state");
        assert_eq!(json["ended_by_date"], true);
        assert_eq!(json["active_until"], "2026-03-01");
        assert_eq!(json["shown_state"], words);
        // A node that words nothing: the state itself.
        let plain = agreement_detail(&view(), View::Short);
        assert_eq!(value(&plain, "state"), Some("active"));
        assert_eq!(agreement_json(&view())["shown_state"], "active");
    }

    #[test]
    fn agreement_json_nests_terms_history_and_pending() {
        let value = agreement_json(&view());
        assert_eq!(value.as_object().unwrap().len(), 20);
        assert_eq!(value["agreement_id"], "ag-1");
        assert_eq!(value["active_version"], 1);
        assert_eq!(value["terms"].as_object().unwrap().len(), 16);
        assert_eq!(value["terms"]["scope_members"][1], "m-2");
        assert_eq!(
            value["terms"]["outflow_liaisons"][0],
            json!({ "name": "张三", "phone": "13800000000", "role": "组织委员" })
        );
        assert_eq!(value["pending_counter"]["effective_until"], "2028-12-31");
        assert_eq!(value["history"][1]["terms_hash"], "aa11");
        assert_eq!(value["history"][1]["signatures"][0]["signer"], "pingliang");
        assert_eq!(
            value["history"][1]["signatures"][0]
                .as_object()
                .unwrap()
                .len(),
            5
        );
        assert_eq!(
            value["history"][0]["terms"]["number"],
            "平兰共管〔2026〕1号"
        );
        let bare = pb::AgreementView {
            terms: None,
            pending_counter: None,
            ..view()
        };
        let value = agreement_json(&bare);
        assert!(value["terms"].is_null() && value["pending_counter"].is_null());
    }
}

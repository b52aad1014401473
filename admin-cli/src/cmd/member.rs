//! `liaisonctl member`: the member registry (党员信息库) of this node: members
//! it owns (their home section is here) and copies of members it hosts for
//! other nodes; CSV import and export; what was disclosed to peers; and the
//! host section a host writes.

use clap::Subcommand;
use liaison_proto::v1 as pb;
use liaisonctl::output::{self, dash, json_line, Detail, Format, Table};
use serde_json::json;

use super::outflow::{outflow_fields, outflow_json};
use super::refs::{self, MemberArg};
use super::roster;
use super::{print_list, text, version, yes_no, Admin, Failure};

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Register a member whose organizational relationship is held here (党员登记).
    Add(AddArgs),
    /// Change a member this node owns; only the fields given change.
    Update(UpdateArgs),
    /// One member in detail: home section, contact, outflow, host sections.
    Show(MemberArg),
    /// List members, filtered.
    List(ListArgs),
    /// Import members from a spreadsheet (批量导入): an Excel workbook or
    /// CSV, Chinese or English headers; with --update, change the members
    /// already here where the sheet differs.
    Import(roster::ImportArgs),
    /// Export the members this node owns, as CSV (Chinese headers, for
    /// Excel) or an Excel workbook; it holds ID numbers, keep it safe.
    Export(roster::ExportArgs),
    /// Write an Excel workbook to fill in: the headers, an example row,
    /// and drop-down lists (gender, party status, education, this node's
    /// branches, provinces).
    Template(roster::TemplateArgs),
    /// What this node sent peers about a member, and on what basis (披露记录).
    Disclosures(MemberArg),
    /// Write this node's host section of a member it hosts (流入地信息).
    HostSet(HostSetArgs),
}

/// Home-section fields that are optional in `add` and `update` alike.
#[derive(Debug, clap::Args)]
pub struct HomeFields {
    /// Ethnicity (民族), e.g. 汉族.
    #[arg(long)]
    ethnicity: Option<String>,
    /// Native place (籍贯); never shared with other nodes.
    #[arg(long)]
    native_place: Option<String>,
    /// National ID number (公民身份证号码); never shared with other nodes.
    #[arg(long)]
    national_id: Option<String>,
    /// Education (学历).
    #[arg(long)]
    education: Option<String>,
    /// Occupation or person category (人员类别).
    #[arg(long)]
    occupation: Option<String>,
    /// Household origin (户籍): 农村 (rural) or 城镇 (urban).
    #[arg(long)]
    origin: Option<String>,
    /// Date of joining the Party (入党日期): YYYY-MM-DD.
    #[arg(long)]
    joined_on: Option<String>,
    /// Date of becoming a full member (转正日期): YYYY-MM-DD.
    #[arg(long)]
    full_member_on: Option<String>,
    /// Phone (联系电话).
    #[arg(long)]
    phone: Option<String>,
    /// Home address (家庭住址); never shared with other nodes.
    #[arg(long)]
    home_address: Option<String>,
}

impl HomeFields {
    fn fill(self, fields: pb::MemberFields) -> pb::MemberFields {
        pb::MemberFields {
            ethnicity: self.ethnicity,
            native_place: self.native_place,
            national_id: self.national_id,
            education: self.education,
            occupation: self.occupation,
            origin: self.origin,
            joined_on: self.joined_on,
            full_member_on: self.full_member_on,
            phone: self.phone,
            home_address: self.home_address,
            ..fields
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// Name (姓名).
    #[arg(long)]
    name: String,
    /// Gender (性别): 男 or 女.
    #[arg(long)]
    gender: String,
    /// Birth date (出生日期): YYYY-MM-DD; only the year is shared.
    #[arg(long)]
    birth_date: String,
    /// The branch holding the member's organizational relationship: its code or full name.
    #[arg(long)]
    home_branch: String,
    /// Party status (党员类别): 正式 (full) or 预备 (probationary).
    #[arg(long)]
    party_status: String,
    #[command(flatten)]
    fields: HomeFields,
}

impl AddArgs {
    fn request(self) -> pb::MemberFields {
        self.fields.fill(pb::MemberFields {
            name: Some(self.name),
            gender: Some(self.gender),
            birth_date: Some(self.birth_date),
            home_branch: Some(self.home_branch),
            party_status: Some(self.party_status),
            ..Default::default()
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    member: MemberArg,
    /// Name (姓名).
    #[arg(long)]
    name: Option<String>,
    /// Gender (性别): 男 or 女.
    #[arg(long)]
    gender: Option<String>,
    /// Birth date (出生日期): YYYY-MM-DD.
    #[arg(long)]
    birth_date: Option<String>,
    /// The branch holding the member's organizational relationship: its code or full name.
    #[arg(long)]
    home_branch: Option<String>,
    /// Membership state, e.g. normal or 停止党籍 (suspended).
    #[arg(long)]
    membership_state: Option<String>,
    /// Party status (党员类别): 正式 (full) or 预备 (probationary).
    #[arg(long)]
    party_status: Option<String>,
    #[command(flatten)]
    fields: HomeFields,
}

impl UpdateArgs {
    fn request(self, member_id: String) -> anyhow::Result<pb::MemberUpdateRequest> {
        let fields = self.fields.fill(pb::MemberFields {
            name: self.name,
            gender: self.gender,
            birth_date: self.birth_date,
            home_branch: self.home_branch,
            membership_state: self.membership_state,
            party_status: self.party_status,
            ..Default::default()
        });
        if fields == pb::MemberFields::default() {
            anyhow::bail!("nothing to change: give the fields to set, e.g. --phone 13800000000");
        }
        Ok(pb::MemberUpdateRequest {
            member_id,
            fields: Some(fields),
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only names containing this text.
    #[arg(long)]
    name: Option<String>,
    /// Only members of this home branch (its code or full name).
    #[arg(long)]
    branch: Option<String>,
    /// Only members with this contact status, e.g. lost (失联) or searching.
    #[arg(long)]
    status: Option<String>,
    /// Only members away to this place (a name or a code).
    #[arg(long)]
    destination: Option<String>,
    /// Only members this node owns.
    #[arg(long, conflicts_with = "hosted")]
    owned: bool,
    /// Only copies of other nodes' members, hosted here.
    #[arg(long)]
    hosted: bool,
    /// Only members away (an open outflow registration).
    #[arg(long)]
    away: bool,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Skip this many first (to page through).
    #[arg(long, default_value_t = 0)]
    offset: u32,
}

impl ListArgs {
    fn request(self) -> pb::MemberListRequest {
        let scope = match (self.owned, self.hosted) {
            (true, _) => "owned",
            (_, true) => "hosted",
            _ => "",
        };
        pb::MemberListRequest {
            name: text(self.name),
            branch: text(self.branch),
            contact_status: text(self.status),
            destination: text(self.destination),
            scope: scope.into(),
            away: self.away,
            limit: self.limit,
            offset: self.offset,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct HostSetArgs {
    #[command(flatten)]
    member: MemberArg,
    /// The host branch the member takes part in (an organization's code or full name, or its name as written).
    #[arg(long)]
    host_branch: Option<String>,
    /// When the member reported in here (流入时间): YYYY-MM-DD.
    #[arg(long)]
    reported_on: Option<String>,
    /// Address here (现居住地).
    #[arg(long)]
    address: Option<String>,
    /// Employer (工作单位).
    #[arg(long)]
    employer: Option<String>,
    /// Industry, e.g. 建筑业.
    #[arg(long)]
    industry: Option<String>,
    /// Job (职业).
    #[arg(long)]
    job: Option<String>,
    /// The host's contact person for the member (联系人).
    #[arg(long)]
    contact_person: Option<String>,
    /// The contact person's phone.
    #[arg(long)]
    contact_phone: Option<String>,
    /// When the member was last seen here (last org life or dues): YYYY-MM-DD.
    #[arg(long)]
    last_seen: Option<String>,
    /// The service station the member reported in at (its name; `reportin confirm` sets it).
    #[arg(long)]
    station: Option<String>,
}

impl HostSetArgs {
    fn request(self, member_id: String) -> anyhow::Result<pb::HostSectionRequest> {
        let request = pb::HostSectionRequest {
            member_id,
            host_branch: self.host_branch,
            reported_on: self.reported_on,
            address: self.address,
            employer: self.employer,
            industry: self.industry,
            job: self.job,
            contact_person: self.contact_person,
            contact_phone: self.contact_phone,
            last_seen_at_host: self.last_seen,
            station: self.station,
        };
        let unchanged = pb::HostSectionRequest {
            member_id: request.member_id.clone(),
            ..Default::default()
        };
        if request == unchanged {
            anyhow::bail!("nothing to change: give the fields to set, e.g. --employer 某建筑公司");
        }
        Ok(request)
    }
}

pub async fn run(admin: &mut Admin, format: Format, command: MemberCommand) -> Result<(), Failure> {
    let member_ref = |member_id: String| pb::MemberRef { member_id };
    match command {
        MemberCommand::Add(mut args) => {
            args.home_branch = refs::org(admin, &args.home_branch, "member.add").await?;
            let member = admin.member_add(args.request()).await?.into_inner();
            print_member(format, &member, View::Short);
        }
        MemberCommand::Update(mut args) => {
            let member_id = args.member.id(admin, "member.update").await?;
            if let Some(branch) = &args.home_branch {
                args.home_branch = Some(refs::org(admin, branch, "member.update").await?);
            }
            let member = admin
                .member_update(args.request(member_id)?)
                .await?
                .into_inner();
            print_member(format, &member, View::Short);
        }
        MemberCommand::Show(member) => {
            let member_id = member.id(admin, "").await?;
            let member = admin.member_show(member_ref(member_id)).await?.into_inner();
            print_member(format, &member, View::Full);
        }
        MemberCommand::List(mut args) => {
            args.destination = args
                .destination
                .map(|d| super::places::code(&d))
                .transpose()?;
            if let Some(branch) = &args.branch {
                args.branch = Some(refs::org(admin, branch, "").await?);
            }
            let offset = args.offset;
            let list = admin.member_list(args.request()).await?.into_inner();
            print_list(format, "member", &list.members, member_json, member_table);
            if format == Format::Table {
                output::note(&list_footer(list.members.len(), list.total, offset));
            }
        }
        MemberCommand::Import(args) => roster::import(admin, format, args).await?,
        MemberCommand::Export(args) => roster::export(admin, format, args).await?,
        MemberCommand::Template(args) => roster::template(admin, format, args).await?,
        MemberCommand::Disclosures(member) => {
            let member_id = member.id(admin, "").await?;
            let list = admin
                .member_disclosures(member_ref(member_id.clone()))
                .await?
                .into_inner();
            print_list(
                format,
                "disclosure",
                &list.disclosures,
                disclosure_json,
                |d| disclosure_table(&member_id, d),
            );
        }
        MemberCommand::HostSet(mut args) => {
            let member_id = args.member.id(admin, "member.host_set").await?;
            if let Some(branch) = &args.host_branch {
                args.host_branch = Some(refs::host_branch(admin, branch).await?);
            }
            let member = admin
                .host_section_set(args.request(member_id)?)
                .await?
                .into_inner();
            print_member(format, &member, View::HostSections);
        }
    }
    Ok(())
}

/// Which parts of a member a verb prints in table mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Who the member is, where they belong, and the version.
    Short,
    /// Short, and the outflow registration.
    Outflow,
    /// Short, and the host sections.
    HostSections,
    /// Everything this node knows.
    Full,
}

/// Prints a member: its JSON envelope, or the `view` of it for people.
pub fn print_member(format: Format, m: &pb::Member, view: View) {
    match format {
        Format::Json => json_line("member", member_json(m)),
        Format::Table => output::print_out(&member_detail(m, view)),
    }
}

pub fn member_json(m: &pb::Member) -> serde_json::Value {
    json!({
        "member_id": m.member_id, "owner": m.owner, "owned": m.owned,
        "generation": m.generation, "counter": m.counter,
        "name": m.name, "gender": m.gender, "birth_date": m.birth_date, "birth_year": m.birth_year,
        "ethnicity": m.ethnicity, "native_place": m.native_place, "national_id": m.national_id,
        "education": m.education, "occupation": m.occupation, "origin": m.origin,
        "party_status": m.party_status, "joined_on": m.joined_on, "full_member_on": m.full_member_on,
        "home_branch": m.home_branch, "home_branch_name": m.home_branch_name,
        "phone": m.phone, "home_address": m.home_address, "membership_state": m.membership_state,
        "contact_status": m.contact_status, "last_contact": m.last_contact, "lost_since": m.lost_since,
        "outflow": m.outflow.as_ref().map(outflow_json),
        "host_sections": m.host_sections.iter().map(host_section_json).collect::<Vec<_>>(),
        "basis": m.basis, "basis_label": m.basis_label, "updated_at_ms": m.updated_at_ms,
        "moved": moved(m).map(moved_json),
    })
}

fn moved_json(v: &pb::MovedView) -> serde_json::Value {
    json!({
        "to_node": v.to_node, "to_place": v.to_place, "transfer_id": v.transfer_id,
        "letter_no": v.letter_no, "released_on": v.released_on, "generation": v.generation,
    })
}

/// Where a member transferred away went, if it did (an empty message is none).
fn moved(m: &pb::Member) -> Option<&pb::MovedView> {
    m.moved.as_ref().filter(|v| **v != pb::MovedView::default())
}

/// A tombstone's forward pointer for people: "moved to NODE (or place) on
/// DATE by transfer T, letter NO, generation G", leaving out what is unknown.
fn moved_text(v: &pb::MovedView) -> String {
    let to = match (v.to_node.as_str(), v.to_place.as_str()) {
        ("", "") => "-".to_owned(),
        (node, "") => node.to_owned(),
        ("", place) => format!("{} (on paper, no node)", super::places::show(place)),
        (node, place) => format!("{node} ({})", super::places::show(place)),
    };
    let mut text = format!("moved to {to}");
    if !v.released_on.is_empty() {
        text.push_str(&format!(" on {}", v.released_on));
    }
    match (v.transfer_id.as_str(), v.letter_no.as_str()) {
        ("", "") => {}
        ("", letter) => text.push_str(&format!(" by letter {letter}")),
        (id, "") => text.push_str(&format!(" by transfer {id}")),
        (id, letter) => text.push_str(&format!(" by transfer {id}, letter {letter}")),
    }
    if v.generation > 0 {
        text.push_str(&format!(", generation {}", v.generation));
    }
    text
}

fn host_section_json(h: &pb::HostSectionView) -> serde_json::Value {
    json!({
        "author": h.author, "generation": h.generation, "counter": h.counter,
        "host_branch": h.host_branch, "reported_on": h.reported_on, "address": h.address,
        "employer": h.employer, "industry": h.industry, "job": h.job,
        "contact_person": h.contact_person, "contact_phone": h.contact_phone,
        "last_seen_at_host": h.last_seen_at_host, "basis": h.basis, "basis_label": h.basis_label,
        "station": h.station,
    })
}

/// The member's home branch for people: its id and name, as far as known
/// (a copy may carry only the name).
fn branch(m: &pb::Member) -> String {
    match (m.home_branch.as_str(), m.home_branch_name.as_str()) {
        ("", name) => name.to_owned(),
        (id, "") => id.to_owned(),
        (id, name) if id == name => id.to_owned(),
        (id, name) => format!("{id} ({name})"),
    }
}

/// The birth date, or for a copy (which carries only the year) the year.
fn birth(m: &pb::Member) -> String {
    if !m.birth_date.is_empty() {
        m.birth_date.clone()
    } else if m.birth_year > 0 {
        m.birth_year.to_string()
    } else {
        String::new()
    }
}

/// Where an away member went: the place, and the node serving it if any.
fn destination(m: &pb::Member) -> String {
    match &m.outflow {
        Some(o) if o.state != "returned" => match o.destination_node.as_str() {
            "" => super::places::show(&o.destination_place),
            node => format!("{} → {node}", super::places::show(&o.destination_place)),
        },
        _ => String::new(),
    }
}

pub fn member_detail(m: &pb::Member, view: View) -> String {
    let full = view == View::Full;
    let home = full && m.owned;
    let mut d = Detail::new();
    d.field("member", &m.member_id).field("name", &m.name);
    d.field("gender", &m.gender);
    if m.owned {
        d.field("birth date", &m.birth_date);
    } else {
        d.field("birth year", birth(m));
    }
    if home {
        d.field("ethnicity", &m.ethnicity)
            .field("native place", &m.native_place)
            .field("national id", &m.national_id)
            .field("education", &m.education)
            .field("occupation", &m.occupation)
            .field("origin", &m.origin);
    }
    d.field("party status", &m.party_status);
    if home {
        d.field("joined on", &m.joined_on)
            .field("full member on", &m.full_member_on);
    }
    d.field("home branch", branch(m));
    if full {
        d.field("phone", &m.phone);
    }
    if home {
        d.field("home address", &m.home_address);
    }
    d.field("membership state", &m.membership_state);
    if full {
        d.field("contact status", &m.contact_status)
            .field("last contact", output::local_time(&m.last_contact))
            .field("lost since", &m.lost_since);
    }
    d.field("owner", &m.owner)
        .field("owned", yes_no(m.owned))
        .field("version", version(m.generation, m.counter));
    if full {
        d.field("updated", output::time(m.updated_at_ms));
        if !m.owned {
            d.field("basis", label_or_id(&m.basis_label, &m.basis));
        }
    }
    if full || view == View::Outflow {
        match &m.outflow {
            Some(o) => {
                d.heading("outflow (流出登记)");
                outflow_fields(&mut d, o);
            }
            None => {
                d.field("outflow", "");
            }
        }
    }
    if full || view == View::HostSections {
        for h in &m.host_sections {
            d.heading(format!(
                "host section by {} (version {})",
                h.author,
                version(h.generation, h.counter)
            ));
            d.field("host branch", &h.host_branch)
                .field("reported on", &h.reported_on)
                .field("station", &h.station)
                .field("address", &h.address)
                .field("employer", &h.employer)
                .field("industry", &h.industry)
                .field("job", &h.job)
                .field(
                    "contact",
                    format!("{} {}", h.contact_person, h.contact_phone).trim(),
                )
                .field("last seen", &h.last_seen_at_host)
                .field("basis", label_or_id(&h.basis_label, &h.basis));
        }
    }
    // A tombstone says first where the member went.
    match moved(m) {
        Some(v) => format!("{}\n\n{}", moved_text(v), d.render()),
        None => d.render(),
    }
}

fn member_table(members: &[pb::Member]) -> Table {
    let mut table = Table::new(&[
        "ID",
        "NAME",
        "GENDER",
        "BIRTH",
        "BRANCH",
        "OWNER",
        "STATUS",
        "DESTINATION",
    ]);
    for m in members {
        let branch = if m.home_branch.is_empty() {
            &m.home_branch_name
        } else {
            &m.home_branch
        };
        table.row(vec![
            m.member_id.clone(),
            dash(&m.name),
            dash(&m.gender),
            dash(&birth(m)),
            dash(branch),
            dash(&m.owner),
            dash(&m.contact_status),
            dash(&destination(m)),
        ]);
    }
    table
}

/// "N of TOTAL", and how to see more if there is more.
fn list_footer(shown: usize, total: u64, offset: u32) -> String {
    let next = offset as u64 + shown as u64;
    if shown > 0 && next < total {
        format!("{shown} of {total} (next: --offset {next})\n")
    } else {
        format!("{shown} of {total}\n")
    }
}

fn disclosure_json(d: &pb::Disclosure) -> serde_json::Value {
    json!({
        "peer": d.peer, "record_kind": d.record_kind, "record_id": d.record_id, "fields": d.fields,
        "generation": d.generation, "counter": d.counter, "basis": d.basis,
        "basis_label": d.basis_label, "at_ms": d.at_ms,
    })
}

/// Disclosures of one member; the record id is shown only when it is not
/// the member's own (an outflow, a contact).
fn disclosure_table(member_id: &str, disclosures: &[pb::Disclosure]) -> Table {
    let mut table = Table::new(&["PEER", "RECORD", "FIELDS", "VERSION", "BASIS", "TIME"]);
    for d in disclosures {
        let record = if d.record_id.is_empty() || d.record_id == member_id {
            d.record_kind.clone()
        } else {
            format!("{} {}", d.record_kind, d.record_id)
        };
        table.row(vec![
            d.peer.clone(),
            dash(&record),
            dash(&d.fields),
            version(d.generation, d.counter),
            dash(&d.basis_label),
            output::time(d.at_ms),
        ]);
    }
    table
}

/// A basis as people name it; its id where the node knew no name for it
/// (an older node answers without the label).
fn label_or_id<'a>(label: &'a str, id: &'a str) -> &'a str {
    if label.is_empty() {
        id
    } else {
        label
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::cmd::{parse, refused};
    use crate::Command;

    fn member(args: &[&str]) -> MemberCommand {
        let argv: Vec<&str> = ["member"].iter().chain(args).copied().collect();
        match parse(&argv) {
            Command::Member(command) => command,
            other => panic!("{other:?}"),
        }
    }

    fn owned() -> pb::Member {
        pb::Member {
            member_id: "0190c3e2-7a1b-7c00-8000-000000000001".into(),
            owner: "pingliang".into(),
            owned: true,
            generation: 1,
            counter: 4,
            name: "张三".into(),
            gender: "男".into(),
            birth_date: "1985-03-02".into(),
            birth_year: 1985,
            national_id: "620102198503020011".into(),
            party_status: "正式".into(),
            home_branch: "pl-kt-01".into(),
            home_branch_name: "崆峒区东关社区党支部".into(),
            membership_state: "normal".into(),
            contact_status: "in_contact".into(),
            outflow: Some(pb::OutflowView {
                outflow_id: "of-1".into(),
                member_id: "0190c3e2-7a1b-7c00-8000-000000000001".into(),
                destination_place: "620100".into(),
                destination_node: "lanzhou".into(),
                departed_on: "2026-03-01".into(),
                state: "open".into(),
                ..Default::default()
            }),
            host_sections: vec![pb::HostSectionView {
                author: "lanzhou".into(),
                generation: 1,
                counter: 2,
                host_branch: "lz-cg-05".into(),
                employer: "某建筑公司".into(),
                contact_person: "王五".into(),
                contact_phone: "13900000000".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn copy() -> pb::Member {
        pb::Member {
            member_id: "0190c3e2-7a1b-7c00-8000-000000000002".into(),
            owner: "tianshui".into(),
            owned: false,
            generation: 2,
            counter: 1,
            name: "李四".into(),
            gender: "女".into(),
            birth_year: 1990,
            party_status: "预备".into(),
            home_branch_name: "秦州区某村党支部".into(),
            basis: "0190c3e2-7a1b-7c00-8000-0000000000a7".into(),
            basis_label: "agreement 平凉-兰州-2026-01".into(),
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
    fn add_sets_exactly_the_given_fields() {
        let MemberCommand::Add(args) = member(&[
            "add",
            "--name",
            "张三",
            "--gender",
            "男",
            "--birth-date",
            "1985-03-02",
            "--home-branch",
            "pl-kt-01",
            "--national-id",
            "620102198503020011",
            "--origin",
            "农村",
            "--party-status",
            "正式",
        ]) else {
            panic!()
        };
        assert_eq!(
            args.request(),
            pb::MemberFields {
                name: Some("张三".into()),
                gender: Some("男".into()),
                birth_date: Some("1985-03-02".into()),
                home_branch: Some("pl-kt-01".into()),
                national_id: Some("620102198503020011".into()),
                origin: Some("农村".into()),
                party_status: Some("正式".into()),
                ..Default::default()
            }
        );
    }

    #[test]
    fn add_needs_name_gender_birth_date_and_branch() {
        let all = [
            "--name",
            "张三",
            "--gender",
            "男",
            "--birth-date",
            "1985-03-02",
            "--home-branch",
            "b",
        ];
        for missing in 0..4 {
            let mut argv = vec!["member", "add"];
            for (idx, pair) in all.chunks(2).enumerate() {
                if idx != missing {
                    argv.extend(pair);
                }
            }
            assert!(refused(&argv), "{argv:?}");
        }
        assert!(refused(&["member", "add", "--membership-state", "normal"]));
    }

    #[test]
    fn update_sends_only_the_given_flags() {
        let MemberCommand::Update(args) = member(&[
            "update",
            "m-1",
            "--phone",
            "13800000000",
            "--membership-state",
            "停止党籍",
            "--home-address",
            "",
        ]) else {
            panic!()
        };
        assert_eq!(args.member.member, "m-1");
        assert_eq!(
            args.request("m-1".into()).unwrap(),
            pb::MemberUpdateRequest {
                member_id: "m-1".into(),
                fields: Some(pb::MemberFields {
                    phone: Some("13800000000".into()),
                    membership_state: Some("停止党籍".into()),
                    home_address: Some(String::new()),
                    ..Default::default()
                }),
            }
        );
        let MemberCommand::Update(args) = member(&["update", "m-1"]) else {
            panic!()
        };
        assert!(args.request("m-1".into()).is_err());
    }

    #[test]
    fn list_maps_filters_and_scope() {
        let check = |args: &[&str], want: pb::MemberListRequest| {
            let argv: Vec<&str> = ["list"].iter().chain(args).copied().collect();
            let MemberCommand::List(list) = member(&argv) else {
                panic!()
            };
            assert_eq!(list.request(), want, "{args:?}");
        };
        check(
            &[],
            pb::MemberListRequest {
                limit: 100,
                ..Default::default()
            },
        );
        check(
            &[
                "--name",
                "张",
                "--branch",
                "b1",
                "--status",
                "lost",
                "--destination",
                "6201",
                "--owned",
                "--away",
                "--limit",
                "10",
                "--offset",
                "20",
            ],
            pb::MemberListRequest {
                name: "张".into(),
                branch: "b1".into(),
                contact_status: "lost".into(),
                destination: "6201".into(),
                scope: "owned".into(),
                away: true,
                limit: 10,
                offset: 20,
            },
        );
        check(
            &["--hosted"],
            pb::MemberListRequest {
                scope: "hosted".into(),
                limit: 100,
                ..Default::default()
            },
        );
        assert!(refused(&["member", "list", "--owned", "--hosted"]));
    }

    #[test]
    fn host_set_maps_flags_and_needs_one() {
        let MemberCommand::HostSet(args) = member(&[
            "host-set",
            "m-1",
            "--host-branch",
            "lz-cg-05",
            "--last-seen",
            "2026-11-20",
            "--contact-phone",
            "139",
        ]) else {
            panic!()
        };
        assert_eq!(args.member.member, "m-1");
        assert_eq!(
            args.request("m-1".into()).unwrap(),
            pb::HostSectionRequest {
                member_id: "m-1".into(),
                host_branch: Some("lz-cg-05".into()),
                last_seen_at_host: Some("2026-11-20".into()),
                contact_phone: Some("139".into()),
                ..Default::default()
            }
        );
        let MemberCommand::HostSet(args) = member(&["host-set", "m-1"]) else {
            panic!()
        };
        assert!(args.request("m-1".into()).is_err());
    }

    #[test]
    fn import_export_and_template_parse() {
        match member(&[
            "import",
            "-",
            "--skip-bad",
            "--dry-run",
            "--update",
            "--strict",
            "--sheet",
            "花名册",
        ]) {
            MemberCommand::Import(args) => {
                assert_eq!(args.file, PathBuf::from("-"));
                assert!(args.skip_bad && args.dry_run && args.update && args.strict);
                assert_eq!(args.sheet.as_deref(), Some("花名册"));
            }
            other => panic!("{other:?}"),
        }
        match member(&["export", "--out", "members.csv", "--headers", "en"]) {
            MemberCommand::Export(args) => {
                assert_eq!(args.out, Some("members.csv".into()));
                assert_eq!(args.headers, roster::HeaderLanguage::En);
            }
            other => panic!("{other:?}"),
        }
        match member(&["export", "--xlsx", "members.xlsx"]) {
            MemberCommand::Export(args) => {
                assert_eq!(args.xlsx, Some("members.xlsx".into()));
                assert_eq!(args.headers, roster::HeaderLanguage::Zh);
            }
            other => panic!("{other:?}"),
        }
        assert!(refused(&[
            "member", "export", "--out", "a.csv", "--xlsx", "a.xlsx"
        ]));
        assert!(refused(&["member", "template"]));
        match member(&["template", "--xlsx", "t.xlsx"]) {
            MemberCommand::Template(args) => assert_eq!(args.xlsx, PathBuf::from("t.xlsx")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn show_of_an_owned_member_has_the_home_section_outflow_and_hosts() {
        let text = member_detail(&owned(), View::Full);
        assert_eq!(
            value(&text, "member"),
            Some("0190c3e2-7a1b-7c00-8000-000000000001")
        );
        assert_eq!(value(&text, "birth date"), Some("1985-03-02"));
        assert_eq!(value(&text, "national id"), Some("620102198503020011"));
        assert_eq!(value(&text, "ethnicity"), Some("-"));
        assert_eq!(
            value(&text, "home branch"),
            Some("pl-kt-01 (崆峒区东关社区党支部)")
        );
        assert_eq!(value(&text, "owned"), Some("yes"));
        assert_eq!(value(&text, "version"), Some("1.4"));
        assert_eq!(value(&text, "lost since"), Some("-"));
        assert_eq!(value(&text, "basis"), Some("-"), "only the host section's");
        assert!(text.contains("\noutflow (流出登记)\n"), "{text}");
        assert_eq!(value(&text, "node"), Some("lanzhou"));
        assert!(
            text.contains("\nhost section by lanzhou (version 1.2)\n"),
            "{text}"
        );
        assert_eq!(value(&text, "employer"), Some("某建筑公司"));
        assert_eq!(value(&text, "contact"), Some("王五 13900000000"));
        assert_eq!(value(&text, "industry"), Some("-"));
    }

    #[test]
    fn show_of_a_copy_has_only_shared_fields() {
        let text = member_detail(&copy(), View::Full);
        assert_eq!(value(&text, "birth year"), Some("1990"));
        assert_eq!(value(&text, "birth date"), None);
        assert_eq!(value(&text, "national id"), None);
        assert_eq!(value(&text, "home address"), None);
        assert_eq!(value(&text, "home branch"), Some("秦州区某村党支部"));
        assert_eq!(value(&text, "owned"), Some("no"));
        assert_eq!(value(&text, "basis"), Some("agreement 平凉-兰州-2026-01"));
        assert_eq!(value(&text, "outflow"), Some("-"));
        assert!(!text.contains("流出登记"), "{text}");
    }

    #[test]
    fn short_views_stay_short() {
        let short = member_detail(&owned(), View::Short);
        assert!(value(&short, "member").is_some());
        assert!(value(&short, "national id").is_none());
        assert!(!short.contains("outflow") && !short.contains("host section"));
        let with_outflow = member_detail(&owned(), View::Outflow);
        assert!(with_outflow.contains("outflow (流出登记)"));
        assert!(!with_outflow.contains("host section"));
        let with_hosts = member_detail(&owned(), View::HostSections);
        assert!(with_hosts.contains("host section by lanzhou"));
    }

    #[test]
    fn list_table_columns() {
        let mut returned = owned();
        returned.outflow.as_mut().unwrap().state = "returned".into();
        let text = member_table(&[owned(), copy(), returned]).render();
        let rows: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows[0],
            [
                "ID",
                "NAME",
                "GENDER",
                "BIRTH",
                "BRANCH",
                "OWNER",
                "STATUS",
                "DESTINATION"
            ]
        );
        assert_eq!(
            rows[1][1..],
            [
                "张三",
                "男",
                "1985-03-02",
                "pl-kt-01",
                "pingliang",
                "in_contact",
                "兰州市",
                "(620100)",
                "→",
                "lanzhou"
            ]
        );
        assert_eq!(
            rows[2][1..],
            [
                "李四",
                "女",
                "1990",
                "秦州区某村党支部",
                "tianshui",
                "-",
                "-"
            ]
        );
        assert_eq!(rows[3].last(), Some(&"-"));
    }

    #[test]
    fn list_footer_says_how_to_page() {
        assert_eq!(
            list_footer(100, 250, 0),
            "100 of 250 (next: --offset 100)\n"
        );
        assert_eq!(list_footer(50, 250, 200), "50 of 250\n");
        assert_eq!(list_footer(0, 0, 0), "0 of 0\n");
    }

    #[test]
    fn member_json_nests_outflow_and_host_sections() {
        let value = member_json(&owned());
        assert_eq!(value["member_id"], "0190c3e2-7a1b-7c00-8000-000000000001");
        assert_eq!(value["owned"], true);
        assert_eq!(value["generation"], 1);
        assert_eq!(value["counter"], 4);
        assert_eq!(value["outflow"]["destination_node"], "lanzhou");
        assert_eq!(value["host_sections"][0]["author"], "lanzhou");
        assert_eq!(value["host_sections"][0]["contact_phone"], "13900000000");
        assert_eq!(value.as_object().unwrap().len(), 32);
        assert!(member_json(&copy())["outflow"].is_null());
        assert!(value["moved"].is_null());
    }

    fn tombstone() -> pb::Member {
        pb::Member {
            member_id: "m-1".into(),
            owner: "lanzhou".into(),
            owned: false,
            generation: 2,
            moved: Some(pb::MovedView {
                to_node: "lanzhou".into(),
                to_place: String::new(),
                transfer_id: "tr-1".into(),
                letter_no: "平组转〔2026〕12号".into(),
                released_on: "2026-05-20".into(),
                generation: 2,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_tombstone_says_first_where_the_member_went() {
        for view in [View::Full, View::Short] {
            let text = member_detail(&tombstone(), view);
            assert_eq!(
                text.lines().next(),
                Some("moved to lanzhou on 2026-05-20 by transfer tr-1, letter 平组转〔2026〕12号, generation 2"),
                "{text}"
            );
            assert_eq!(value(&text, "member"), Some("m-1"), "{text}");
        }
        assert!(!member_detail(&owned(), View::Full).contains("moved to"));
        let mut empty = owned();
        empty.moved = Some(pb::MovedView::default());
        assert!(!member_detail(&empty, View::Full).contains("moved to"));
        assert!(member_json(&empty)["moved"].is_null());
    }

    #[test]
    fn moved_to_a_place_on_paper() {
        let paper = pb::MovedView {
            to_place: "上海市浦东新区某街道党工委".into(),
            letter_no: "平组转〔2026〕15号".into(),
            released_on: "2026-06-01".into(),
            generation: 1,
            ..Default::default()
        };
        assert_eq!(
            moved_text(&paper),
            "moved to 上海市浦东新区某街道党工委 (on paper, no node) on 2026-06-01 by letter 平组转〔2026〕15号, generation 1"
        );
        let with_id = pb::MovedView {
            transfer_id: "tr-9".into(),
            ..paper
        };
        assert!(moved_text(&with_id).contains("by transfer tr-9, letter 平组转〔2026〕15号"));
    }

    #[test]
    fn member_json_has_the_forward_pointer() {
        let value = member_json(&tombstone());
        assert_eq!(
            value["moved"],
            json!({
                "to_node": "lanzhou", "to_place": "", "transfer_id": "tr-1",
                "letter_no": "平组转〔2026〕12号", "released_on": "2026-05-20", "generation": 2,
            })
        );
    }

    #[test]
    fn disclosures_show_foreign_record_ids_only() {
        let member_id = "m-1";
        let d = |kind: &str, id: &str| pb::Disclosure {
            peer: "lanzhou".into(),
            record_kind: kind.into(),
            record_id: id.into(),
            fields: "name,gender,birth_year".into(),
            generation: 1,
            counter: 3,
            basis: "01a24a50-8444-7a03-aaec-3287d41d7719".into(),
            at_ms: 0,
            basis_label: "agreement 平凉-兰州-2026-01".into(),
        };
        let text =
            disclosure_table(member_id, &[d("member", "m-1"), d("outflow", "of-1")]).render();
        let rows: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows[0],
            ["PEER", "RECORD", "FIELDS", "VERSION", "BASIS", "TIME"]
        );
        assert_eq!(
            rows[1],
            [
                "lanzhou",
                "member",
                "name,gender,birth_year",
                "1.3",
                "agreement",
                "平凉-兰州-2026-01",
                "-"
            ]
        );
        assert_eq!(rows[2][1..3], ["outflow", "of-1"]);
        let value = disclosure_json(&d("member", "m-1"));
        assert_eq!(value["record_kind"], "member");
        assert_eq!(value["generation"], 1);
        assert_eq!(value.as_object().unwrap().len(), 9);
    }
}

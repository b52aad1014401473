//! The operators' edits of the registry: each checks that this node is the
//! authority for what it writes (docs/authority.md), records it, and shares what
//! changed in the same transaction (an owned member's new version goes to
//! the hosts that may hold it; a host's record goes to the owner).

use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use liaison_types::identity::NodeId;
use liaison_types::validate;
use prost::Message;
use rusqlite::{params, Connection, OptionalExtension};

use super::contacts::{activity_view, contact_view, recent_contacts, save_activity, save_contact};
use super::copies::load_copy;
use super::host::{host_section, host_section_floor, save_host_section};
use super::labels::member_name;
use super::orgs::org_name;
use super::outflows::{open_outflow, serving_peer};
use super::records::{load_home, load_owned, not_found, save_home, HomeRecord};
use super::sharing::bump_and_share;
use super::status::contact_state;
use super::views::member_view;
use crate::log;
use crate::{refusal_at as at, Ctx, Error, FieldRefusal};

/// A field an edit changed (its English name, as the roster's columns
/// name it), with its value before and after, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDiff {
    pub field: &'static str,
    pub old: String,
    pub new: String,
}

/// The fields of a home section that differ between `before` and `after`.
fn home_diff(before: &HomeRecord, after: &HomeRecord) -> Vec<FieldDiff> {
    before
        .roster_fields()
        .into_iter()
        .zip(after.roster_fields())
        .filter(|((_, old), (_, new))| old != new)
        .map(|((field, old), (_, new))| FieldDiff {
            field,
            old: old.to_owned(),
            new: new.to_owned(),
        })
        .collect()
}

/// Applies operator-entered fields to `m` and checks the whole result.
fn apply_fields(
    conn: &Connection,
    ctx: &Ctx<'_>,
    m: &mut HomeRecord,
    f: &pb::MemberFields,
) -> Result<(), FieldRefusal> {
    let today = ctx.today();
    let set = |target: &mut String, value: &Option<String>| {
        if let Some(v) = value {
            *target = v.clone();
        }
    };
    set(&mut m.name, &f.name);
    set(&mut m.gender, &f.gender);
    set(&mut m.birth_date, &f.birth_date);
    set(&mut m.ethnicity, &f.ethnicity);
    set(&mut m.native_place, &f.native_place);
    set(&mut m.national_id, &f.national_id);
    set(&mut m.education, &f.education);
    set(&mut m.occupation, &f.occupation);
    set(&mut m.origin, &f.origin);
    set(&mut m.party_status, &f.party_status);
    set(&mut m.joined_on, &f.joined_on);
    set(&mut m.full_member_on, &f.full_member_on);
    set(&mut m.home_branch, &f.home_branch);
    set(&mut m.phone, &f.phone);
    set(&mut m.home_address, &f.home_address);
    set(&mut m.membership_state, &f.membership_state);

    m.name = validate::name(&m.name).map_err(at("name"))?;
    m.gender = validate::gender(&m.gender).map_err(at("gender"))?;
    let birth =
        validate::date("birth date", &m.birth_date, today, false).map_err(at("birth_date"))?;
    m.birth_date = birth.to_string();
    m.national_id = validate::national_id(&m.national_id, birth).map_err(at("national_id"))?;
    m.ethnicity = validate::text("ethnicity", &m.ethnicity, 20).map_err(at("ethnicity"))?;
    m.native_place =
        validate::text("native place", &m.native_place, 50).map_err(at("native_place"))?;
    m.education = validate::text("education", &m.education, 20).map_err(at("education"))?;
    m.occupation = validate::text("occupation", &m.occupation, 30).map_err(at("occupation"))?;
    m.origin = validate::origin(&m.origin).map_err(at("origin"))?;
    m.party_status = validate::party_status(&m.party_status).map_err(at("party_status"))?;
    let joined = validate::optional_date("joined on", &m.joined_on, today, false)
        .map_err(at("joined_on"))?;
    if let Some(joined) = joined {
        let age_at_joining = joined.years_since(birth).unwrap_or(0);
        if age_at_joining < 18 {
            return Err(at("joined_on")(Error::invalid(format!(
                "joined on {joined} is before the member's 18th birthday (born {birth})"
            ))));
        }
    }
    m.joined_on = joined.map(|d| d.to_string()).unwrap_or_default();
    let full = validate::optional_date("full member on", &m.full_member_on, today, false)
        .map_err(at("full_member_on"))?;
    if let (Some(full), Some(joined)) = (full, joined) {
        if full < joined {
            return Err(at("full_member_on")(Error::invalid(format!(
                "full member on {full} is before joined on {joined}"
            ))));
        }
    }
    m.full_member_on = full.map(|d| d.to_string()).unwrap_or_default();
    m.home_branch = m.home_branch.trim().to_owned();
    if m.home_branch.is_empty() {
        return Err(at("home_branch")(Error::invalid(
            "home branch is missing: give an org id from `org list`".into(),
        )));
    }
    if org_name(conn, &m.home_branch)?.is_none() {
        return Err(at("home_branch")(Error::not_found(format!(
            "home branch {} is not an organization of this node: `org add` it, or pick one from `org list`",
            m.home_branch
        ))));
    }
    m.phone = validate::phone(&m.phone).map_err(at("phone"))?;
    m.home_address =
        validate::text("home address", &m.home_address, 200).map_err(at("home_address"))?;
    m.membership_state = if m.membership_state.is_empty() {
        "normal".into()
    } else {
        validate::membership_state(&m.membership_state).map_err(at("membership_state"))?
    };
    if !m.national_id.is_empty() {
        let clash: Option<String> = conn
            .prepare_cached(
                "SELECT member_id FROM members WHERE national_id = ?1 AND national_id <> '' AND owner = ?2 AND member_id <> ?3 LIMIT 1",
            )?
            .query_row(params![m.national_id, ctx.me.as_str(), m.member_id], |r| r.get(0))
            .optional()?;
        if let Some(other) = clash {
            return Err(at("national_id")(Error::conflict(format!(
                "national ID number {} is already member {other}'s: one person, one record (`member show {other}`)",
                m.national_id
            ))));
        }
    }
    Ok(())
}

pub fn member_add(
    conn: &Connection,
    ctx: &Ctx<'_>,
    fields: &pb::MemberFields,
) -> Result<pb::Member, Error> {
    let member_id = member_add_checked(conn, ctx, fields)?;
    member_view(conn, ctx, &member_id)
}

/// [`member_add`], answering the new member's id and naming the field a
/// refusal is about.
pub fn member_add_checked(
    conn: &Connection,
    ctx: &Ctx<'_>,
    fields: &pb::MemberFields,
) -> Result<String, FieldRefusal> {
    crate::epoch::act_as_owner(conn)?;
    let mut m = HomeRecord {
        member_id: ctx.new_id(),
        owner: ctx.me.to_string(),
        generation: 1,
        counter: 1,
        contact_status: "in_contact".into(),
        created_at_ms: ctx.now_ms,
        updated_at_ms: ctx.now_ms,
        ..HomeRecord::default()
    };
    apply_fields(conn, ctx, &mut m, fields)?;
    save_home(conn, &m)?;
    Ok(m.member_id)
}

pub fn member_update(
    conn: &Connection,
    ctx: &Ctx<'_>,
    member_id: &str,
    fields: &pb::MemberFields,
) -> Result<pb::Member, Error> {
    crate::epoch::act_as_owner(conn)?;
    let member_id = validate::member_id(member_id)?;
    let mut m = load_owned(conn, ctx, &member_id)?;
    apply_fields(conn, ctx, &mut m, fields)?;
    bump_and_share(conn, ctx, &mut m)?;
    member_view(conn, ctx, &member_id)
}

/// An owned member read once, with its open outflow registration, for
/// the checked edits of one request in its transaction (an import's row
/// changes the member's fields, then its registration): each edit that
/// changes something makes and shares a new version, as the edit alone
/// would; reading the member again between them would read what this
/// holds.
pub struct OwnedEdit {
    m: HomeRecord,
    open: Option<pb::OutflowView>,
}

impl OwnedEdit {
    /// The owned member `member_id`, refused as every owner's edit is (a
    /// reconciling node, a member of another node, a frozen one).
    pub fn load(conn: &Connection, ctx: &Ctx<'_>, member_id: &str) -> Result<OwnedEdit, Error> {
        crate::epoch::act_as_owner(conn)?;
        let member_id = validate::member_id(member_id)?;
        let m = load_owned(conn, ctx, &member_id)?;
        let open = open_outflow(conn, &member_id)?;
        Ok(OwnedEdit { m, open })
    }

    /// The member's name, as the edits so far left it.
    pub fn name(&self) -> &str {
        &self.m.name
    }

    /// Whether the member has an open outflow registration.
    pub fn is_away(&self) -> bool {
        self.open.is_some()
    }

    /// Changes the fields that `fields` gives other values than the member
    /// has (compared in their checked forms: `1990/5/17` is `1990-05-17`),
    /// and says which; a new version is made and shared only if one
    /// changed.
    pub fn update(
        &mut self,
        conn: &Connection,
        ctx: &Ctx<'_>,
        fields: &pb::MemberFields,
    ) -> Result<Vec<FieldDiff>, FieldRefusal> {
        let mut m = self.m.clone();
        apply_fields(conn, ctx, &mut m, fields)?;
        let diff = home_diff(&self.m, &m);
        if !diff.is_empty() {
            bump_and_share(conn, ctx, &mut m)?;
        }
        self.m = m;
        Ok(diff)
    }

    /// Registers the member away as `req` says (its member id is this
    /// member's), answering the fields registered; refused if the member
    /// is away already.
    pub fn register_outflow(
        mut self,
        conn: &Connection,
        ctx: &Ctx<'_>,
        req: &pb::OutflowRequest,
    ) -> Result<Vec<FieldDiff>, FieldRefusal> {
        if let Some(open) = &self.open {
            return Err(at("destination_place")(Error::conflict(format!(
                "member {} ({}) is already away: registered {} to {}; `outflow return {0}` ends it first",
                self.m.member_id, self.m.name, open.departed_on, open.destination_place
            ))));
        }
        let outflow = check_outflow(conn, ctx, req)?;
        let outflow_id = ctx.new_id();
        write_outflow(conn, ctx, &outflow_id, &self.m.member_id, &outflow)?;
        bump_and_share(conn, ctx, &mut self.m)?;
        Ok(outflow_diff(&pb::OutflowView::default(), &outflow))
    }

    /// Corrects the open registration where `req` gives other values
    /// (compared in their checked forms), saying which; nothing is written
    /// if none does.
    pub fn correct_outflow(
        mut self,
        conn: &Connection,
        ctx: &Ctx<'_>,
        req: &pb::OutflowUpdateRequest,
    ) -> Result<Vec<FieldDiff>, FieldRefusal> {
        let (open, outflow) = self.corrected(conn, ctx, req)?;
        let diff = outflow_diff(&open, &outflow);
        if !diff.is_empty() {
            write_outflow(conn, ctx, &open.outflow_id, &self.m.member_id, &outflow)?;
            bump_and_share(conn, ctx, &mut self.m)?;
        }
        Ok(diff)
    }

    /// The open registration, and the registration as `req` corrects it,
    /// checked.
    fn corrected(
        &mut self,
        conn: &Connection,
        ctx: &Ctx<'_>,
        req: &pb::OutflowUpdateRequest,
    ) -> Result<(pb::OutflowView, pb::OutflowRequest), FieldRefusal> {
        let Some(open) = self.open.take() else {
            return Err(Error::conflict(format!(
                "member {} is not registered as away: `outflow register` records a departure",
                self.m.name
            ))
            .into());
        };
        let given = |new: &Option<String>, old: &str| new.clone().unwrap_or_else(|| old.to_owned());
        let place_changed = req
            .destination_place
            .as_deref()
            .is_some_and(|p| p.trim() != open.destination_place);
        let node = match (&req.destination_node, place_changed) {
            (Some(node), _) => node.clone(),
            // A new place is served by whoever serves it.
            (None, true) => String::new(),
            (None, false) => open.destination_node.clone(),
        };
        let changed = pb::OutflowRequest {
            member_id: self.m.member_id.clone(),
            destination_place: given(&req.destination_place, &open.destination_place),
            destination_node: node,
            direction: given(&req.direction, &open.direction),
            departed_on: given(&req.departed_on, &open.departed_on),
            expected_return: given(&req.expected_return, &open.expected_return),
            reason: given(&req.reason, &open.reason),
            fixed_location: req.fixed_location.unwrap_or(open.fixed_location),
            certificate_no: given(&req.certificate_no, &open.certificate_no),
            certificate_issuer: given(&req.certificate_issuer, &open.certificate_issuer),
            certificate_issued_on: given(&req.certificate_issued_on, &open.certificate_issued_on),
            card_no: given(&req.card_no, &open.card_no),
        };
        let outflow = check_outflow(conn, ctx, &changed)?;
        Ok((open, outflow))
    }
}

pub fn outflow_register(
    conn: &Connection,
    ctx: &Ctx<'_>,
    req: &pb::OutflowRequest,
) -> Result<pb::Member, Error> {
    outflow_register_checked(conn, ctx, req)?;
    member_view(conn, ctx, &validate::member_id(&req.member_id)?)
}

/// [`outflow_register`], answering the fields registered and naming the
/// field a refusal is about.
pub fn outflow_register_checked(
    conn: &Connection,
    ctx: &Ctx<'_>,
    req: &pb::OutflowRequest,
) -> Result<Vec<FieldDiff>, FieldRefusal> {
    OwnedEdit::load(conn, ctx, &req.member_id)?.register_outflow(conn, ctx, req)
}

/// The fields of an open registration that differ between `open` and
/// `new`, by the roster's column names.
fn outflow_diff(open: &pb::OutflowView, new: &pb::OutflowRequest) -> Vec<FieldDiff> {
    let yes_no = |v: bool| if v { "是" } else { "否" }.to_owned();
    let fixed = |v: bool, registered: bool| if registered { yes_no(v) } else { String::new() };
    let registered = !open.outflow_id.is_empty();
    let fields: [(&'static str, String, String); 11] = [
        (
            "destination_place",
            open.destination_place.clone(),
            new.destination_place.clone(),
        ),
        (
            "destination_node",
            open.destination_node.clone(),
            new.destination_node.clone(),
        ),
        (
            "departed_on",
            open.departed_on.clone(),
            new.departed_on.clone(),
        ),
        (
            "expected_return",
            open.expected_return.clone(),
            new.expected_return.clone(),
        ),
        ("outflow_reason", open.reason.clone(), new.reason.clone()),
        (
            "fixed_location",
            fixed(open.fixed_location, registered),
            yes_no(new.fixed_location),
        ),
        ("direction", open.direction.clone(), new.direction.clone()),
        (
            "certificate_no",
            open.certificate_no.clone(),
            new.certificate_no.clone(),
        ),
        (
            "certificate_issuer",
            open.certificate_issuer.clone(),
            new.certificate_issuer.clone(),
        ),
        (
            "certificate_issued_on",
            open.certificate_issued_on.clone(),
            new.certificate_issued_on.clone(),
        ),
        ("card_no", open.card_no.clone(), new.card_no.clone()),
    ];
    fields
        .into_iter()
        .filter(|(_, old, new)| old != new)
        .map(|(field, old, new)| FieldDiff { field, old, new })
        .collect()
}

/// Writes the open registration `outflow_id` of `member_id`: a new one,
/// or every field of the one that is open (its creation time stays).
fn write_outflow(
    conn: &Connection,
    ctx: &Ctx<'_>,
    outflow_id: &str,
    member_id: &str,
    outflow: &pb::OutflowRequest,
) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO outflows (outflow_id, member_id, destination_place, destination_node, direction, departed_on,
             expected_return, reason, fixed_location, certificate_no, certificate_issuer, certificate_issued_on,
             card_no, state, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'open', ?14)
         ON CONFLICT (outflow_id) DO UPDATE SET destination_place = excluded.destination_place,
             destination_node = excluded.destination_node, direction = excluded.direction,
             departed_on = excluded.departed_on, expected_return = excluded.expected_return,
             reason = excluded.reason, fixed_location = excluded.fixed_location,
             certificate_no = excluded.certificate_no, certificate_issuer = excluded.certificate_issuer,
             certificate_issued_on = excluded.certificate_issued_on, card_no = excluded.card_no",
    )?
    .execute(params![
        outflow_id,
        member_id,
        outflow.destination_place,
        outflow.destination_node,
        outflow.direction,
        outflow.departed_on,
        outflow.expected_return,
        outflow.reason,
        outflow.fixed_location,
        outflow.certificate_no,
        outflow.certificate_issuer,
        outflow.certificate_issued_on,
        outflow.card_no,
        ctx.now_ms
    ])?;
    Ok(())
}

/// An outflow registration checked and in its normal form.
fn check_outflow(
    conn: &Connection,
    ctx: &Ctx<'_>,
    req: &pb::OutflowRequest,
) -> Result<pb::OutflowRequest, FieldRefusal> {
    let today = ctx.today();
    let place = req.destination_place.trim();
    crate::store::peers::validate_place(place).map_err(at("destination_place"))?;
    let node = match req.destination_node.trim() {
        "" => serving_peer(conn, place)?.unwrap_or_default(),
        given => {
            let id = NodeId::parse(given)
                .map_err(|e| at("destination_node")(Error::invalid(e.to_string())))?;
            crate::store::peers::require(conn, &id).map_err(at("destination_node"))?;
            id.to_string()
        }
    };
    let departed =
        validate::date("departed on", &req.departed_on, today, false).map_err(at("departed_on"))?;
    let expected = validate::optional_date("expected return", &req.expected_return, today, true)
        .map_err(at("expected_return"))?;
    if let Some(expected) = expected {
        if expected < departed {
            return Err(at("expected_return")(Error::invalid(format!(
                "expected return {expected} is before the departure {departed}"
            ))));
        }
    }
    let issued_on = validate::optional_date(
        "certificate issued on",
        &req.certificate_issued_on,
        today,
        false,
    )
    .map_err(at("certificate_issued_on"))?;
    Ok(pb::OutflowRequest {
        member_id: req.member_id.clone(),
        destination_place: place.to_owned(),
        destination_node: node,
        direction: validate::text("direction", &req.direction, 40).map_err(at("direction"))?,
        departed_on: departed.to_string(),
        expected_return: expected.map(|d| d.to_string()).unwrap_or_default(),
        reason: validate::text("reason", &req.reason, 200).map_err(at("outflow_reason"))?,
        fixed_location: req.fixed_location,
        certificate_no: validate::text("certificate number", &req.certificate_no, 40)
            .map_err(at("certificate_no"))?,
        certificate_issuer: validate::text("certificate issuer", &req.certificate_issuer, 100)
            .map_err(at("certificate_issuer"))?,
        certificate_issued_on: issued_on.map(|d| d.to_string()).unwrap_or_default(),
        card_no: validate::text("card number", &req.card_no, 40).map_err(at("card_no"))?,
    })
}

/// Corrects the open outflow registration of a member this node owns:
/// the fields given change, the rest stay. A new destination is served by
/// the peer serving it (unless one is named), and the member is shared
/// anew: hosts that no longer cover it drop their copy, a new one gets it.
pub fn outflow_update(
    conn: &Connection,
    ctx: &Ctx<'_>,
    req: &pb::OutflowUpdateRequest,
) -> Result<pb::Member, Error> {
    let mut edit = OwnedEdit::load(conn, ctx, &req.member_id)?;
    let (open, outflow) = edit.corrected(conn, ctx, req)?;
    write_outflow(conn, ctx, &open.outflow_id, &edit.m.member_id, &outflow)?;
    bump_and_share(conn, ctx, &mut edit.m)?;
    member_view(conn, ctx, &edit.m.member_id)
}

/// A node now serves `places`: members already away to those places whose
/// registration names no node (the region had none when they left) are
/// served by it from now on, and shared with it (docs/authority.md).
pub fn adopt_destinations(conn: &Connection, ctx: &Ctx<'_>, node: &NodeId) -> Result<usize, Error> {
    let orphans: Vec<(String, String, String)> = conn
        .prepare(
            "SELECT outflow_id, member_id, destination_place FROM outflows
             WHERE state = 'open' AND destination_node = ''
               AND EXISTS (SELECT 1 FROM peer_places p WHERE p.node_id = ?1 AND destination_place LIKE p.place || '%')",
        )?
        .query_map([node.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut adopted = 0;
    for (outflow_id, member_id, place) in orphans {
        // Another peer may serve the place more precisely.
        if serving_peer(conn, &place)?.as_deref() != Some(node.as_str()) {
            continue;
        }
        conn.execute(
            "UPDATE outflows SET destination_node = ?2 WHERE outflow_id = ?1",
            params![outflow_id, node.as_str()],
        )?;
        if let Some(mut m) = load_home(conn, &member_id)? {
            bump_and_share(conn, ctx, &mut m)?;
            adopted += 1;
        }
    }
    Ok(adopted)
}

pub fn outflow_return(
    conn: &Connection,
    ctx: &Ctx<'_>,
    req: &pb::OutflowReturnRequest,
) -> Result<pb::Member, Error> {
    crate::epoch::act_as_owner(conn)?;
    let member_id = validate::member_id(&req.member_id)?;
    let mut m = load_owned(conn, ctx, &member_id)?;
    let Some(open) = open_outflow(conn, &member_id)? else {
        return Err(Error::conflict(format!(
            "member {member_id} ({}) has no open outflow registration to end",
            m.name
        )));
    };
    let today = ctx.today();
    let returned = match req.returned_on.trim() {
        "" => today,
        text => validate::date("returned on", text, today, false)?,
    };
    if returned.to_string() < open.departed_on {
        return Err(Error::invalid(format!(
            "returned on {returned} is before the departure {}",
            open.departed_on
        )));
    }
    conn.execute(
        "UPDATE outflows SET state = 'returned', returned_on = ?2 WHERE outflow_id = ?1",
        params![open.outflow_id, returned.to_string()],
    )?;
    // Out of every destination scope now: hosts holding a copy get Unshare.
    bump_and_share(conn, ctx, &mut m)?;
    member_view(conn, ctx, &member_id)
}

/// The host writes its section of a member it hosts, and sends it to the owner.
pub fn host_section_set(
    conn: &Connection,
    ctx: &Ctx<'_>,
    req: &pb::HostSectionRequest,
) -> Result<pb::Member, Error> {
    crate::epoch::act_as_owner(conn)?;
    let member_id = validate::member_id(&req.member_id)?;
    let Some(copy) = load_copy(conn, &member_id)? else {
        if load_home(conn, &member_id)?.is_some() {
            return Err(Error::conflict(format!(
                "member {member_id} is this node's own: its host section is written by the host region's node"
            )));
        }
        return Err(not_found(&member_id));
    };
    let today = ctx.today();
    let current = host_section(conn, &member_id, ctx.me.as_str())?.unwrap_or_default();
    let pick =
        |given: &Option<String>, current: &str| given.clone().unwrap_or_else(|| current.to_owned());
    let reported_on = validate::optional_date(
        "reported on",
        &pick(&req.reported_on, &current.reported_on),
        today,
        false,
    )?;
    let last_seen = validate::optional_date(
        "last seen at host",
        &pick(&req.last_seen_at_host, &current.last_seen_at_host),
        today,
        false,
    )?;
    let owner_version = copy.version.unwrap_or_default();
    // A host's section never goes back a generation: an owner keeps the
    // higher version of it, so a section written over a copy at an older
    // generation than this node's last one (shared again by an owner
    // restored to before it released the member) stays the latest for
    // whoever owns the member now.
    let generation = owner_version.generation.max(current.generation);
    // Past a version of this section a peer holds that this node, restored
    // from a backup, could not take back (`raise_host_section_floor`).
    let floor = host_section_floor(conn, &member_id)?
        .filter(|f| f.generation == generation)
        .map_or(0, |f| f.counter);
    let counter = current.counter.max(floor) + 1;
    let section = pb::HostSection {
        member_id: member_id.clone(),
        version: Some(pb::Version {
            generation,
            counter,
        }),
        author: ctx.me.to_string(),
        host_branch: validate::text(
            "host branch",
            &pick(&req.host_branch, &current.host_branch),
            100,
        )?,
        reported_on: reported_on.map(|d| d.to_string()).unwrap_or_default(),
        address: validate::text("address", &pick(&req.address, &current.address), 200)?,
        employer: validate::text("employer", &pick(&req.employer, &current.employer), 100)?,
        industry: validate::text("industry", &pick(&req.industry, &current.industry), 40)?,
        job: validate::text("job", &pick(&req.job, &current.job), 40)?,
        contact_person: validate::text(
            "contact person",
            &pick(&req.contact_person, &current.contact_person),
            50,
        )?,
        contact_phone: validate::phone(&pick(&req.contact_phone, &current.contact_phone))?,
        last_seen_at_host: last_seen.map(|d| d.to_string()).unwrap_or_default(),
        basis: copy.basis.clone(),
        station: validate::text("station", &pick(&req.station, &current.station), 100)?,
    };
    save_host_section(conn, &section, ctx.now_ms)?;
    let owner = NodeId::parse(&copy.owner).map_err(|e| Error::invalid(e.to_string()))?;
    log::append(
        conn,
        &owner,
        EventKind::HostSection,
        &member_id,
        &section.encode_to_vec(),
        ctx.now_ms,
    )?;
    log::disclose(
        conn,
        &owner,
        "host_section",
        &member_id,
        "host_branch,reported_on,address,employer,industry,job,contact,last_seen_at_host,station",
        generation,
        counter,
        &copy.basis,
        ctx.now_ms,
    )?;
    member_view(conn, ctx, &member_id)
}

/// Normalizes a contact time: a date (taken as the start of that day) or
/// an RFC 3339 time, in China Standard Time; empty means now.
fn contact_time(ctx: &Ctx<'_>, value: &str) -> Result<String, Error> {
    let value = value.trim();
    let today = ctx.china_now().date_naive();
    if value.is_empty() {
        return Ok(ctx.china_now().format("%Y-%m-%dT%H:%M:%S").to_string());
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        let local = t.with_timezone(&crate::china_time());
        if local.date_naive() > today {
            return Err(Error::invalid(format!(
                "contact time {value} is in the future"
            )));
        }
        return Ok(local.format("%Y-%m-%dT%H:%M:%S").to_string());
    }
    let date = validate::date("contact date", value, today, false)?;
    Ok(format!("{date}T00:00:00"))
}

pub fn contact_record(
    conn: &Connection,
    ctx: &Ctx<'_>,
    req: &pb::ContactRequest,
) -> Result<pb::ContactView, Error> {
    crate::epoch::act_as_owner(conn)?;
    let member_id = validate::member_id(&req.member_id)?;
    let event = pb::ContactEvent {
        contact_id: ctx.new_id(),
        member_id: member_id.clone(),
        author: ctx.me.to_string(),
        at: contact_time(ctx, &req.at)?,
        channel: validate::contact_channel(&req.channel)?,
        by: validate::text("by", &req.by, 50)?,
        outcome: validate::text("outcome", &req.outcome, 500)?,
        basis: String::new(),
    };
    // A report-in of this node's own member regains it as one from a host
    // does (`contact_arrived`), once the member may be edited here.
    let own = load_home(conn, &member_id)?.is_some_and(|m| m.owner == ctx.me.as_str());
    if own && event.channel == "report-in" {
        load_owned(conn, ctx, &member_id)?;
        contact_arrived(conn, ctx, &event)?;
        return Ok(contact_view(&event, &member_name(conn, &member_id)?));
    }
    record_about_member(conn, ctx, &member_id, EventKind::Contact, |basis| {
        let mut event = event.clone();
        event.basis = basis.to_owned();
        save_contact(conn, &event, ctx.now_ms)?;
        Ok(event.encode_to_vec())
    })?;
    Ok(contact_view(&event, &member_name(conn, &member_id)?))
}

pub fn activity_record(
    conn: &Connection,
    ctx: &Ctx<'_>,
    req: &pb::ActivityRequest,
) -> Result<pb::ActivityView, Error> {
    crate::epoch::act_as_owner(conn)?;
    let member_id = validate::member_id(&req.member_id)?;
    if !(0.0..=24.0).contains(&req.hours) || req.hours.is_nan() {
        return Err(Error::invalid(format!(
            "hours {} is not between 0 and 24",
            req.hours
        )));
    }
    let record = pb::ActivityRecord {
        activity_id: ctx.new_id(),
        member_id: member_id.clone(),
        author: ctx.me.to_string(),
        kind: validate::activity_kind(&req.kind)?,
        date: validate::date("activity date", &req.date, ctx.today(), false)?.to_string(),
        branch: validate::text("branch", &req.branch, 100)?,
        hours: req.hours,
        note: validate::text("note", &req.note, 500)?,
        basis: String::new(),
    };
    record_about_member(conn, ctx, &member_id, EventKind::Activity, |basis| {
        let mut record = record.clone();
        record.basis = basis.to_owned();
        save_activity(conn, &record, ctx.now_ms)?;
        Ok(record.encode_to_vec())
    })?;
    Ok(activity_view(&record, &member_name(conn, &member_id)?))
}

/// Stores a record this node makes about a member: for its own member it
/// stays here (and may change the contact status); for a hosted member it
/// also goes to the owner.
fn record_about_member(
    conn: &Connection,
    ctx: &Ctx<'_>,
    member_id: &str,
    kind: EventKind,
    save: impl FnOnce(&str) -> Result<Vec<u8>, Error>,
) -> Result<(), Error> {
    if let Some(home) = load_home(conn, member_id)? {
        if home.owner != ctx.me.as_str() {
            return Err(Error::conflict(format!(
                "member {member_id} now belongs to {}: record it there",
                home.owner
            )));
        }
        // An operator's record is an edit: refused while frozen.
        load_owned(conn, ctx, member_id)?;
        save("")?;
        return refresh_contact_status(conn, ctx, member_id);
    }
    let Some(copy) = load_copy(conn, member_id)? else {
        return Err(not_found(member_id));
    };
    let payload = save(&copy.basis)?;
    let owner = NodeId::parse(&copy.owner).map_err(|e| Error::invalid(e.to_string()))?;
    log::append(conn, &owner, kind, member_id, &payload, ctx.now_ms)?;
    Ok(())
}

/// A contact event from a host, kept here (the owner's or a relay's copy).
/// At the owner, a report-in (channel `report-in`: the member came to a
/// host's service station and the host's clerk confirmed it) of a member
/// overdue or out of contact (lost, searching, unreachable) makes the
/// member regained (找回, DOMAIN §6.2) at the report-in's time, recorded
/// as a contact decision made through report-in; any other contact
/// re-derives the status. Returns whether the event was new here.
pub fn contact_arrived(
    conn: &Connection,
    ctx: &Ctx<'_>,
    event: &pb::ContactEvent,
) -> Result<bool, Error> {
    let owned = load_home(conn, &event.member_id)?.filter(|m| m.owner == ctx.me.as_str());
    let before = match &owned {
        Some(m) if event.channel == "report-in" => Some(contact_state(conn, ctx, m)?.status),
        _ => None,
    };
    if !save_contact(conn, event, ctx.now_ms)? {
        return Ok(false);
    }
    let out_of_contact = matches!(
        before.as_deref(),
        Some("overdue" | "lost" | "searching" | "unreachable")
    );
    match owned {
        Some(mut m) if out_of_contact => {
            m.contact_manual = "regained".into();
            m.contact_manual_at = event.at.clone();
            conn.prepare_cached(
                "INSERT INTO contact_decisions (member_id, status, decided_at, via, recorded_at_ms)
                 VALUES (?1, 'regained', ?2, 'report-in', ?3)",
            )?
            .execute(params![m.member_id, m.contact_manual_at, ctx.now_ms])?;
            bump_and_share(conn, ctx, &mut m)?;
        }
        _ => refresh_contact_status(conn, ctx, &event.member_id)?,
    }
    Ok(true)
}

/// Re-derives an owned member's status; a change is a new version, shared.
pub fn refresh_contact_status(
    conn: &Connection,
    ctx: &Ctx<'_>,
    member_id: &str,
) -> Result<(), Error> {
    let Some(mut m) = load_home(conn, member_id)? else {
        return Ok(());
    };
    if m.owner != ctx.me.as_str() {
        return Ok(());
    }
    let state = contact_state(conn, ctx, &m)?;
    if state.status != m.contact_status {
        bump_and_share(conn, ctx, &mut m)?;
    }
    Ok(())
}

/// Re-derives every away member's status as the clock moves (run daily).
pub fn sweep_contact_status(conn: &Connection, ctx: &Ctx<'_>) -> Result<usize, Error> {
    let mut changed = 0;
    let mut after = String::new();
    loop {
        let (n, next) = sweep_contact_status_chunk(conn, ctx, &after, usize::MAX)?;
        changed += n;
        match next {
            Some(next) => after = next,
            None => return Ok(changed),
        }
    }
}

/// One chunk of [`sweep_contact_status`]: the away members after `after`
/// in member id order, at most `limit` of them. Returns how many changed
/// and, if there may be more, the last member visited (the next chunk's
/// `after`). A sweep done chunk by chunk, each in its own transaction,
/// reaches the same statuses as one sweep: each member's status depends
/// only on its own records and the clock.
pub fn sweep_contact_status_chunk(
    conn: &Connection,
    ctx: &Ctx<'_>,
    after: &str,
    limit: usize,
) -> Result<(usize, Option<String>), Error> {
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT member_id FROM outflows WHERE state = 'open' AND member_id > ?1
             ORDER BY member_id LIMIT ?2",
        )?
        .query_map(
            params![after, i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| r.get(0),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let mut changed = 0;
    for id in &ids {
        let Some(mut m) = load_home(conn, id)? else {
            continue;
        };
        if m.owner != ctx.me.as_str() {
            continue;
        }
        if contact_state(conn, ctx, &m)?.status != m.contact_status {
            bump_and_share(conn, ctx, &mut m)?;
            changed += 1;
        }
    }
    let next = (ids.len() >= limit).then(|| ids.last().cloned()).flatten();
    Ok((changed, next))
}

pub fn contact_status(
    conn: &Connection,
    ctx: &Ctx<'_>,
    req: &pb::ContactStatusRequest,
) -> Result<pb::ContactStatusView, Error> {
    let member_id = validate::member_id(&req.member_id)?;
    let set = req.set.trim().to_lowercase();
    if !set.is_empty() {
        crate::epoch::act_as_owner(conn)?;
    }
    if set.is_empty() {
        if let Some(copy) = load_copy(conn, &member_id)? {
            // A host sees the owner's decision as shared; it never derives one.
            return Ok(pb::ContactStatusView {
                member_id: member_id.clone(),
                member_name: copy.name.clone(),
                status: copy.contact_status.clone(),
                last_contact: String::new(),
                lost_since: String::new(),
                recent: recent_contacts(conn, &member_id, 10)?,
            });
        }
    }
    let mut m = load_owned(conn, ctx, &member_id)?;
    if !set.is_empty() {
        let current = contact_state(conn, ctx, &m)?.status;
        let allowed: &[&str] = match set.as_str() {
            "searching" => &["overdue", "lost", "unreachable"],
            "unreachable" => &["searching"],
            "regained" => &["searching", "unreachable"],
            _ => {
                return Err(Error::invalid(format!(
                    "contact status `{set}` cannot be set: an operator sets searching (查找), regained (经查找取得联系) or unreachable (经查找仍然无法取得联系); in contact, overdue and lost are derived from contact events"
                )))
            }
        };
        if !allowed.contains(&current.as_str()) {
            return Err(Error::conflict(format!(
                "member {member_id} is {current}: `{set}` follows {}",
                allowed.join(" or ")
            )));
        }
        let cause = validate::lost_cause(&req.cause)?;
        if set == "regained" && !cause.is_empty() {
            return Err(Error::invalid(
                "a cause of lost contact goes with searching or unreachable, not regained: leave out the cause".into(),
            ));
        }
        m.contact_manual = set;
        m.contact_manual_at = ctx.china_now().format("%Y-%m-%dT%H:%M:%S").to_string();
        // The history the reports count from (docs/reports.md); the member's
        // row keeps only the latest decision.
        conn.prepare_cached(
            "INSERT INTO contact_decisions (member_id, status, decided_at, cause, recorded_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            member_id,
            m.contact_manual,
            m.contact_manual_at,
            cause,
            ctx.now_ms
        ])?;
        bump_and_share(conn, ctx, &mut m)?;
    }
    let state = contact_state(conn, ctx, &m)?;
    Ok(pb::ContactStatusView {
        member_id: member_id.clone(),
        member_name: m.name.clone(),
        status: state.status,
        last_contact: state.last_contact,
        lost_since: state.lost_since,
        recent: recent_contacts(conn, &member_id, 10)?,
    })
}

//! The member registry: organizations, members' home sections, outflow
//! registrations, host sections, contact events and activities, and the
//! decision of what is shared with whom.
//!
//! Authority (DESIGN §3): the owner writes the home section and the outflow
//! registration; the host writes the host section; each node writes its own
//! contact events and activities. Every function here checks that this node
//! is the authority for what it is asked to write, and appends the events a
//! peer should see in the caller's transaction.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{Datelike, NaiveDate};
use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use prost::Message;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{log, Ctx};
use crate::Error;
use liaison_types::identity::NodeId;
use liaison_types::validate;

/// Days without contact after which a mobile member is overdue (quarterly
/// contact, DOMAIN R18) and lost (6 months, R13/§6.2).
pub const CONTACT_INTERVAL_DAYS: i64 = 92;
pub const LOST_AFTER_DAYS: i64 = 183;

/// The fields of the home section a host receives (DESIGN §3), for the
/// disclosure log.
const SHARED_FIELDS: &str =
    "name,gender,birth_year,phone,party_status,home_branch,home_branch_contact,membership_state,contact_status,outflow,certificate";

fn not_found(member_id: &str) -> Error {
    Error::not_found(format!(
        "no member {member_id} on this node: `member list` shows the members"
    ))
}

// ---------------------------------------------------------------- orgs

pub fn org_add(conn: &Connection, ctx: &Ctx<'_>, org: &pb::Org) -> Result<pb::Org, Error> {
    let org_id = validate::code("org id", &org.org_id)?;
    let name = validate::text("name", &org.name, 100)?;
    if name.is_empty() {
        return Err(Error::invalid("organization name is empty".into()));
    }
    let level = validate::org_level(&org.level)?;
    let form = validate::org_form(&org.form)?;
    let parent = org.parent_org.trim().to_owned();
    if !parent.is_empty() && org_name(conn, &parent)?.is_none() {
        return Err(Error::not_found(format!(
            "parent organization {parent} does not exist: add it first (`org list` shows them)"
        )));
    }
    if org_name(conn, &org_id)?.is_some() {
        return Err(Error::conflict(format!(
            "organization {org_id} already exists"
        )));
    }
    let contact_person = validate::text("contact person", &org.contact_person, 50)?;
    let phone = validate::phone(&org.phone)?;
    conn.execute(
        "INSERT INTO orgs (org_id, name, level, form, parent_org, contact_person, phone, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![org_id, name, level, form, parent, contact_person, phone, ctx.now_ms],
    )?;
    Ok(pb::Org {
        org_id,
        name,
        level,
        form,
        parent_org: parent,
        contact_person,
        phone,
    })
}

pub fn org_list(conn: &Connection) -> Result<Vec<pb::Org>, Error> {
    let mut stmt = conn.prepare(
        "SELECT org_id, name, level, form, parent_org, contact_person, phone FROM orgs ORDER BY org_id",
    )?;
    let orgs = stmt
        .query_map([], |r| {
            Ok(pb::Org {
                org_id: r.get(0)?,
                name: r.get(1)?,
                level: r.get(2)?,
                form: r.get(3)?,
                parent_org: r.get(4)?,
                contact_person: r.get(5)?,
                phone: r.get(6)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(orgs)
}

fn org_name(conn: &Connection, org_id: &str) -> Result<Option<String>, Error> {
    Ok(conn
        .prepare_cached("SELECT name FROM orgs WHERE org_id = ?1")?
        .query_row([org_id], |r| r.get(0))
        .optional()?)
}

fn org_contact(conn: &Connection, org_id: &str) -> Result<(String, String), Error> {
    Ok(conn
        .prepare_cached(
            "SELECT name, TRIM(contact_person || ' ' || phone) FROM orgs WHERE org_id = ?1",
        )?
        .query_row([org_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or_default())
}

// ------------------------------------------------------------- members

/// A row of `members`: a home section this node holds.
#[derive(Debug, Clone, Default)]
pub struct HomeRecord {
    pub member_id: String,
    pub owner: String,
    pub generation: u64,
    pub counter: u64,
    pub name: String,
    pub gender: String,
    pub birth_date: String,
    pub ethnicity: String,
    pub native_place: String,
    pub national_id: String,
    pub education: String,
    pub occupation: String,
    pub origin: String,
    pub party_status: String,
    pub joined_on: String,
    pub full_member_on: String,
    pub home_branch: String,
    pub phone: String,
    pub home_address: String,
    pub membership_state: String,
    pub contact_status: String,
    pub contact_manual: String,
    pub contact_manual_at: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

const HOME_COLUMNS: &str = "member_id, owner, generation, counter, name, gender, birth_date, ethnicity, native_place,
    national_id, education, occupation, origin, party_status, joined_on, full_member_on, home_branch, phone,
    home_address, membership_state, contact_status, contact_manual, contact_manual_at, created_at_ms, updated_at_ms";

fn read_home(r: &Row<'_>) -> rusqlite::Result<HomeRecord> {
    read_home_at(r, 0)
}

/// A [`HomeRecord`] from the columns of [`HOME_COLUMNS`] at `at` onwards.
fn read_home_at(r: &Row<'_>, at: usize) -> rusqlite::Result<HomeRecord> {
    Ok(HomeRecord {
        member_id: r.get(at)?,
        owner: r.get(at + 1)?,
        generation: r.get(at + 2)?,
        counter: r.get(at + 3)?,
        name: r.get(at + 4)?,
        gender: r.get(at + 5)?,
        birth_date: r.get(at + 6)?,
        ethnicity: r.get(at + 7)?,
        native_place: r.get(at + 8)?,
        national_id: r.get(at + 9)?,
        education: r.get(at + 10)?,
        occupation: r.get(at + 11)?,
        origin: r.get(at + 12)?,
        party_status: r.get(at + 13)?,
        joined_on: r.get(at + 14)?,
        full_member_on: r.get(at + 15)?,
        home_branch: r.get(at + 16)?,
        phone: r.get(at + 17)?,
        home_address: r.get(at + 18)?,
        membership_state: r.get(at + 19)?,
        contact_status: r.get(at + 20)?,
        contact_manual: r.get(at + 21)?,
        contact_manual_at: r.get(at + 22)?,
        created_at_ms: r.get(at + 23)?,
        updated_at_ms: r.get(at + 24)?,
    })
}

pub fn load_home(conn: &Connection, member_id: &str) -> Result<Option<HomeRecord>, Error> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {HOME_COLUMNS} FROM members WHERE member_id = ?1"
        ))?
        .query_row([member_id], read_home)
        .optional()?)
}

/// Whether this node holds `member_id`'s home section (owned or a tombstone).
pub fn is_home(conn: &Connection, member_id: &str) -> Result<bool, Error> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM members WHERE member_id = ?1")?
        .query_row([member_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Stores a home section as given (a released record being installed).
pub fn save_home_record(conn: &Connection, m: &HomeRecord) -> Result<(), Error> {
    save_home(conn, m)
}

/// Where a member transferred away went, if it was.
pub fn moved_of(conn: &Connection, member_id: &str) -> Result<Option<pb::MovedView>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT moved_to_node, moved_to_place, moved_transfer_id, moved_letter_no, moved_on, generation
             FROM members WHERE member_id = ?1 AND moved_transfer_id <> ''",
        )?
        .query_row([member_id], |r| {
            Ok(pb::MovedView {
                to_node: r.get(0)?,
                to_place: r.get(1)?,
                transfer_id: r.get(2)?,
                letter_no: r.get(3)?,
                released_on: r.get(4)?,
                generation: r.get(5)?,
            })
        })
        .optional()?)
}

/// Shares the current version of an owned member again (after it arrived
/// by a transfer).
pub fn reshare_member(conn: &Connection, ctx: &Ctx<'_>, member_id: &str) -> Result<(), Error> {
    match load_home(conn, member_id)? {
        Some(m) if m.owner == ctx.me.as_str() => sync_shares(conn, ctx, &m, true),
        _ => Ok(()),
    }
}

/// Withdraws the member's home section from every host holding it.
pub fn unshare_everywhere(conn: &Connection, ctx: &Ctx<'_>, m: &HomeRecord) -> Result<(), Error> {
    let held: Vec<String> = conn
        .prepare("SELECT peer FROM shares WHERE member_id = ?1")?
        .query_map([&m.member_id], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    for peer in held {
        let host = NodeId::parse(&peer).map_err(|e| Error::invalid(e.to_string()))?;
        unshare(conn, ctx, &host, m, "the member was transferred")?;
    }
    conn.execute("DELETE FROM shares WHERE member_id = ?1", [&m.member_id])?;
    Ok(())
}

fn save_home(conn: &Connection, m: &HomeRecord) -> Result<(), Error> {
    conn.prepare_cached(&format!(
        // An upsert, not INSERT OR REPLACE: a replace deletes the row first,
        // which makes SQLite check every child table's foreign keys (a scan
        // of outflows per write). A live home section clears any tombstone.
        "INSERT INTO members ({HOME_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)
         ON CONFLICT (member_id) DO UPDATE SET owner = excluded.owner, generation = excluded.generation, counter = excluded.counter, name = excluded.name, gender = excluded.gender, birth_date = excluded.birth_date, ethnicity = excluded.ethnicity, native_place = excluded.native_place, national_id = excluded.national_id, education = excluded.education, occupation = excluded.occupation, origin = excluded.origin, party_status = excluded.party_status, joined_on = excluded.joined_on, full_member_on = excluded.full_member_on, home_branch = excluded.home_branch, phone = excluded.phone, home_address = excluded.home_address, membership_state = excluded.membership_state, contact_status = excluded.contact_status, contact_manual = excluded.contact_manual, contact_manual_at = excluded.contact_manual_at, updated_at_ms = excluded.updated_at_ms,
             moved_to_node = '', moved_to_place = '', moved_transfer_id = '', moved_letter_no = '', moved_on = ''"
    ))?
    .execute(params![
        m.member_id,
        m.owner,
        m.generation,
        m.counter,
        m.name,
        m.gender,
        m.birth_date,
        m.ethnicity,
        m.native_place,
        m.national_id,
        m.education,
        m.occupation,
        m.origin,
        m.party_status,
        m.joined_on,
        m.full_member_on,
        m.home_branch,
        m.phone,
        m.home_address,
        m.membership_state,
        m.contact_status,
        m.contact_manual,
        m.contact_manual_at,
        m.created_at_ms,
        m.updated_at_ms
    ])?;
    Ok(())
}

/// Loads a member whose home section this node owns, or says who owns it.
/// Loads a member this node owns and may edit: not a copy, not a
/// tombstone, not frozen by an open transfer offer.
pub fn load_owned(conn: &Connection, ctx: &Ctx<'_>, member_id: &str) -> Result<HomeRecord, Error> {
    if let Some(home) = load_home(conn, member_id)? {
        if home.owner == ctx.me.as_str() {
            if let Some((transfer_id, letter_no, receiver)) =
                super::transfers::frozen_by(conn, member_id)?
            {
                return Err(Error::conflict(format!(
                    "member {member_id} is frozen while transfer {transfer_id} (letter {letter_no}) to {receiver} is open: `transfer cancel {transfer_id}` first, or wait for it"
                )));
            }
            return Ok(home);
        }
        if let Some(moved) = moved_of(conn, member_id)? {
            return Err(Error::conflict(format!(
                "member {member_id} was transferred to {} on {} (transfer {}, letter {}): it is theirs now",
                if moved.to_node.is_empty() { &moved.to_place } else { &moved.to_node },
                moved.released_on,
                moved.transfer_id,
                moved.letter_no
            )));
        }
        return Err(Error::conflict(format!(
            "member {member_id} is owned by {}: only {} may change its home section",
            home.owner, home.owner
        )));
    }
    if let Some(copy) = load_copy(conn, member_id)? {
        return Err(Error::conflict(format!(
            "member {member_id} ({}) belongs to {}: its home section is theirs to change; this node may write its host section with `member host-set`",
            copy.name, copy.owner
        )));
    }
    Err(not_found(member_id))
}

/// Applies operator-entered fields to `m` and checks the whole result.
fn apply_fields(
    conn: &Connection,
    ctx: &Ctx<'_>,
    m: &mut HomeRecord,
    f: &pb::MemberFields,
) -> Result<(), Error> {
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

    m.name = validate::name(&m.name)?;
    m.gender = validate::gender(&m.gender)?;
    let birth = validate::date("birth date", &m.birth_date, today, false)?;
    m.birth_date = birth.to_string();
    m.national_id = validate::national_id(&m.national_id, birth)?;
    m.ethnicity = validate::text("ethnicity", &m.ethnicity, 20)?;
    m.native_place = validate::text("native place", &m.native_place, 50)?;
    m.education = validate::text("education", &m.education, 20)?;
    m.occupation = validate::text("occupation", &m.occupation, 30)?;
    m.origin = validate::origin(&m.origin)?;
    m.party_status = validate::party_status(&m.party_status)?;
    let joined = validate::optional_date("joined on", &m.joined_on, today, false)?;
    if let Some(joined) = joined {
        let age_at_joining = joined.years_since(birth).unwrap_or(0);
        if age_at_joining < 18 {
            return Err(Error::invalid(format!(
                "joined on {joined} is before the member's 18th birthday (born {birth})"
            )));
        }
    }
    m.joined_on = joined.map(|d| d.to_string()).unwrap_or_default();
    let full = validate::optional_date("full member on", &m.full_member_on, today, false)?;
    if let (Some(full), Some(joined)) = (full, joined) {
        if full < joined {
            return Err(Error::invalid(format!(
                "full member on {full} is before joined on {joined}"
            )));
        }
    }
    m.full_member_on = full.map(|d| d.to_string()).unwrap_or_default();
    m.home_branch = m.home_branch.trim().to_owned();
    if m.home_branch.is_empty() {
        return Err(Error::invalid(
            "home branch is missing: give an org id from `org list`".into(),
        ));
    }
    if org_name(conn, &m.home_branch)?.is_none() {
        return Err(Error::not_found(format!(
            "home branch {} is not an organization of this node: `org add` it, or pick one from `org list`",
            m.home_branch
        )));
    }
    m.phone = validate::phone(&m.phone)?;
    m.home_address = validate::text("home address", &m.home_address, 200)?;
    m.membership_state = if m.membership_state.is_empty() {
        "normal".into()
    } else {
        validate::membership_state(&m.membership_state)?
    };
    if !m.national_id.is_empty() {
        let clash: Option<String> = conn
            .prepare_cached(
                "SELECT member_id FROM members WHERE national_id = ?1 AND owner = ?2 AND member_id <> ?3 LIMIT 1",
            )?
            .query_row(params![m.national_id, ctx.me.as_str(), m.member_id], |r| r.get(0))
            .optional()?;
        if let Some(other) = clash {
            return Err(Error::conflict(format!(
                "national ID number {} is already member {other}'s: one person, one record (`member show {other}`)",
                m.national_id
            )));
        }
    }
    Ok(())
}

pub fn member_add(
    conn: &Connection,
    ctx: &Ctx<'_>,
    fields: &pb::MemberFields,
) -> Result<pb::Member, Error> {
    member_add_with_id(conn, ctx, &ctx.new_id(), fields)
}

/// Adds a member under a given id (an import of an exported roster).
pub fn member_add_with_id(
    conn: &Connection,
    ctx: &Ctx<'_>,
    member_id: &str,
    fields: &pb::MemberFields,
) -> Result<pb::Member, Error> {
    if load_home(conn, member_id)?.is_some() || load_copy(conn, member_id)?.is_some() {
        return Err(Error::conflict(format!(
            "member {member_id} already exists"
        )));
    }
    let mut m = HomeRecord {
        member_id: member_id.to_owned(),
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
    member_view(conn, ctx, &m.member_id)
}

pub fn member_update(
    conn: &Connection,
    ctx: &Ctx<'_>,
    member_id: &str,
    fields: &pb::MemberFields,
) -> Result<pb::Member, Error> {
    let member_id = validate::member_id(member_id)?;
    let mut m = load_owned(conn, ctx, &member_id)?;
    apply_fields(conn, ctx, &mut m, fields)?;
    bump_and_share(conn, ctx, &mut m)?;
    member_view(conn, ctx, &member_id)
}

/// Records a new version of an owned home section and shares it with the
/// node that may hold it.
fn bump_and_share(conn: &Connection, ctx: &Ctx<'_>, m: &mut HomeRecord) -> Result<(), Error> {
    m.counter += 1;
    m.updated_at_ms = ctx.now_ms;
    m.contact_status = contact_state(conn, ctx, m)?.status;
    save_home(conn, m)?;
    share(conn, ctx, m)
}

/// Shares an owned member's home section with every host whose active
/// agreement covers the member now, and withdraws it (Unshare) from hosts
/// whose agreement no longer does (DESIGN §3, §4a). With `resend`, hosts
/// that already hold a copy get the current version too.
fn sync_shares(
    conn: &Connection,
    ctx: &Ctx<'_>,
    m: &HomeRecord,
    resend: bool,
) -> Result<(), Error> {
    sync_shares_except(conn, ctx, m, resend, None)
}

/// [`sync_shares`], leaving out agreement `except` (one whose copies the
/// host has just dropped).
fn sync_shares_except(
    conn: &Connection,
    ctx: &Ctx<'_>,
    m: &HomeRecord,
    resend: bool,
    except: Option<&str>,
) -> Result<(), Error> {
    let scope = super::agreements::Scope::load(conn, ctx)?;
    let held = held_shares(conn, &m.member_id)?;
    let outflow = open_outflow(conn, &m.member_id)?;
    sync_shares_in(
        conn,
        ctx,
        &scope,
        None,
        m,
        (held, outflow),
        (resend, except),
    )
}

/// The hosts holding a copy of `member_id`, each with its basis.
fn held_shares(conn: &Connection, member_id: &str) -> Result<Vec<(String, String)>, Error> {
    Ok(conn
        .prepare_cached("SELECT peer, basis FROM shares WHERE member_id = ?1")?
        .query_map([member_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?)
}

/// What [`reshare_range`] reads once for every member it shares: the
/// branches' contacts and, per host, which members of the range have a
/// home section or an Unshare queued (so a first share skips the
/// superseding delete).
#[derive(Default)]
struct Bulk {
    /// The member ids visited: after `.0`, up to `.1` (inclusive) if set.
    range: (String, Option<String>),
    contacts: HashMap<String, (String, String)>,
    queued: HashMap<String, HashSet<String>>,
}

/// [`sync_shares_except`] against a `scope` read once by the caller (and,
/// in [`reshare_all`], what it read once in `bulk`), for member `m` whose
/// shares are `held` and whose open outflow is `outflow`.
fn sync_shares_in(
    conn: &Connection,
    ctx: &Ctx<'_>,
    scope: &super::agreements::Scope,
    mut bulk: Option<&mut Bulk>,
    m: &HomeRecord,
    (held, outflow): (Vec<(String, String)>, Option<pb::OutflowView>),
    (resend, except): (bool, Option<&str>),
) -> Result<(), Error> {
    if held.is_empty() && scope.is_empty() {
        return Ok(());
    }
    // One basis per host: the one it holds while that still covers the
    // member (a host keeps the basis it got), else the first that does.
    let mut covering: Vec<(String, String)> = Vec::new();
    for (agreement_id, host) in scope.covering(conn, &m.member_id, outflow.as_ref())? {
        if except == Some(agreement_id.as_str()) {
            continue;
        }
        let held_basis = held
            .iter()
            .any(|(peer, basis)| *peer == host && *basis == agreement_id);
        match covering.iter_mut().find(|(_, h)| *h == host) {
            Some(entry) if held_basis => entry.0 = agreement_id,
            Some(_) => {}
            None => covering.push((agreement_id, host)),
        }
    }
    for (peer, _) in held
        .iter()
        .filter(|(peer, _)| !covering.iter().any(|(_, host)| host == peer))
    {
        let host = NodeId::parse(peer).map_err(|e| Error::invalid(e.to_string()))?;
        unshare(conn, ctx, &host, m, "the member left the agreement's scope")?;
        if let Some(bulk) = bulk.as_deref_mut() {
            if let Some(queued) = bulk.queued.get_mut(peer) {
                queued.insert(m.member_id.clone());
            }
        }
        conn.prepare_cached("DELETE FROM shares WHERE member_id = ?1 AND peer = ?2")?
            .execute(params![m.member_id, peer])?;
    }
    let outflow = outflow.unwrap_or_default();
    // The branch's contact, read once for all the hosts it goes to.
    let mut contact: Option<(String, String)> = None;
    for (agreement_id, host) in &covering {
        let current = held
            .iter()
            .any(|(peer, basis)| peer == host && basis == agreement_id);
        if current && !resend {
            continue;
        }
        let host = NodeId::parse(host).map_err(|e| Error::invalid(e.to_string()))?;
        let contact = match &contact {
            Some(contact) => contact.clone(),
            None => contact
                .insert(branch_contact(conn, bulk.as_deref_mut(), &m.home_branch)?)
                .clone(),
        };
        let first = match bulk.as_deref_mut() {
            Some(bulk) => {
                let (after, upto) = (&bulk.range.0, bulk.range.1.as_deref());
                let queued = match bulk.queued.entry(host.to_string()) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(log::queued_entities(conn, &host, after, upto)?)
                    }
                };
                // Nothing of this member queued for the host: the append
                // has nothing to supersede. It is queued from now on.
                queued.insert(m.member_id.clone())
            }
            None => false,
        };
        let section = home_section_with(m, &outflow, agreement_id, contact);
        let payload = section.encode_to_vec();
        if first {
            log::append_unqueued(
                conn,
                &host,
                EventKind::HomeSection,
                &m.member_id,
                &payload,
                ctx.now_ms,
            )?;
        } else {
            log::append(
                conn,
                &host,
                EventKind::HomeSection,
                &m.member_id,
                &payload,
                ctx.now_ms,
            )?;
        }
        log::disclose(
            conn,
            &host,
            "home_section",
            &m.member_id,
            SHARED_FIELDS,
            m.generation,
            m.counter,
            agreement_id,
            ctx.now_ms,
        )?;
        if current {
            // The host holds it on this basis already: nothing to record.
            continue;
        }
        conn.prepare_cached(
            "INSERT INTO shares (member_id, peer, basis) VALUES (?1, ?2, ?3)
             ON CONFLICT (member_id, peer) DO UPDATE SET basis = excluded.basis",
        )?
        .execute(params![m.member_id, host.as_str(), agreement_id])?;
    }
    Ok(())
}

/// The name and contact of `branch`, from `bulk`'s cache when there is one
/// (a re-evaluation reads each branch once for all its members).
fn branch_contact(
    conn: &Connection,
    bulk: Option<&mut Bulk>,
    branch: &str,
) -> Result<(String, String), Error> {
    let Some(bulk) = bulk else {
        return org_contact(conn, branch);
    };
    if let Some(contact) = bulk.contacts.get(branch) {
        return Ok(contact.clone());
    }
    let contact = org_contact(conn, branch)?;
    bulk.contacts.insert(branch.to_owned(), contact.clone());
    Ok(contact)
}

fn share(conn: &Connection, ctx: &Ctx<'_>, m: &HomeRecord) -> Result<(), Error> {
    sync_shares(conn, ctx, m, true)
}

/// Re-evaluates every owned member against the active agreements: shares
/// with hosts newly covering, unshares from hosts no longer covering, all
/// in the caller's transaction. A re-evaluation still pending from
/// [`request_reshare`] is done by this one and cleared.
///
/// Only members that some active agreement covers or that some host holds
/// can change, so only those are visited (in member id order, as a visit
/// of every owned member would): the agreements' terms are decoded once,
/// and the members away are read with one query.
pub fn reshare_all(conn: &Connection, ctx: &Ctx<'_>) -> Result<(), Error> {
    reshare_range(conn, ctx, "", None)?;
    conn.execute("DELETE FROM meta WHERE key = ?1", [RESHARE_MARK])?;
    Ok(())
}

/// The `meta` key of a re-evaluation of every owned member that is under
/// way: its value is the last member id done ('' before the first chunk).
/// It is durable, so a crash between chunks resumes where it stopped.
const RESHARE_MARK: &str = "reshare_after";

/// Members one transaction of a chunked re-evaluation visits at most: an
/// activation sharing 100,000 members then holds the database for tens of
/// milliseconds at a time, not seconds, and the hosts pull the first
/// chunks while the owner appends the next ones.
pub const RESHARE_CHUNK: usize = 2_000;

/// Starts a re-evaluation of every owned member (as [`reshare_all`]) in
/// chunks of `ctx.reshare_chunk` members, each its own transaction: the first runs
/// now, in the caller's transaction; the rest, if any, are left durable for
/// [`reshare_next_chunk`]. A re-evaluation already under way starts over
/// (what changed since may concern members it has passed).
///
/// Between chunks a host may see an agreement active before all its
/// members arrive, as it would see them arrive over several batches
/// anyway; every member's own writes share it at once meanwhile.
pub fn request_reshare(conn: &Connection, ctx: &Ctx<'_>) -> Result<(), Error> {
    crate::store::set_meta(conn, RESHARE_MARK, "")?;
    reshare_next_chunk(conn, ctx)?;
    Ok(())
}

/// Whether a chunked re-evaluation is under way.
pub fn reshare_pending(conn: &Connection) -> Result<bool, Error> {
    Ok(crate::store::get_meta(conn, RESHARE_MARK)?.is_some())
}

/// Runs the next chunk of a re-evaluation under way, if any, in the
/// caller's transaction. Returns whether one ran (the caller commits and
/// calls again until it returns false). A reconciling node runs none: it
/// makes no owner decisions yet (DESIGN §7); each adoption of a peer
/// re-evaluates everything ([`reshare_all`], which clears the mark), and a
/// mark set after the last one runs once the reconciliation has ended.
pub fn reshare_next_chunk(conn: &Connection, ctx: &Ctx<'_>) -> Result<bool, Error> {
    let Some(after) = crate::store::get_meta(conn, RESHARE_MARK)? else {
        return Ok(false);
    };
    if super::reconcile::is_reconciling(conn)? {
        return Ok(false);
    }
    match reshare_range(conn, ctx, &after, Some(ctx.reshare_chunk.max(1)))? {
        Some(upto) => crate::store::set_meta(conn, RESHARE_MARK, &upto)?,
        None => {
            conn.execute("DELETE FROM meta WHERE key = ?1", [RESHARE_MARK])?;
        }
    }
    Ok(true)
}

/// Re-evaluates the members with ids after `after`: all of them, or, with
/// a `limit`, those up to a boundary chosen so that each source of
/// candidates yields at most `limit`. Returns the boundary when members
/// after it are left, `None` when the range reached the end.
fn reshare_range(
    conn: &Connection,
    ctx: &Ctx<'_>,
    after: &str,
    limit: Option<usize>,
) -> Result<Option<String>, Error> {
    let scope = super::agreements::Scope::load(conn, ctx)?;
    let n = limit.map_or(-1, |l| l as i64);
    // The boundary: the smallest last id of a source that was cut short.
    let mut upto: Option<String> = None;
    let mut cut = |count: usize, last: Option<&String>| {
        if let Some(last) = last.filter(|_| limit.is_some_and(|l| count >= l)) {
            if upto.as_ref().is_none_or(|u| last < u) {
                upto = Some(last.clone());
            }
        }
    };
    let held: Vec<String> = conn
        .prepare_cached(
            "SELECT DISTINCT member_id FROM shares WHERE member_id > ?1
             ORDER BY member_id LIMIT ?2",
        )?
        .query_map(params![after, n], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    cut(held.len(), held.last());
    // The members away, each read whole with its outflow in one ordered
    // scan, rather than looked up one by one below.
    let mut away: Vec<(HomeRecord, pb::OutflowView)> = Vec::new();
    if scope.needs_outflow() {
        let home_columns = HOME_COLUMNS
            .split(',')
            .map(|c| format!("m.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {OUTFLOW_COLUMNS}, {home_columns} FROM outflows o
             JOIN members m ON m.member_id = o.member_id
             WHERE o.state = 'open' AND m.owner = ?1 AND o.member_id > ?2
             ORDER BY o.member_id LIMIT ?3"
        ))?;
        let mut rows = stmt.query(params![ctx.me.as_str(), after, n])?;
        while let Some(row) = rows.next()? {
            away.push((read_home_at(row, OUTFLOW_COLUMNS_N)?, read_outflow(row)?));
        }
        cut(away.len(), away.last().map(|(m, _)| &m.member_id));
    }
    let within = |id: &str| id > after && upto.as_deref().is_none_or(|u| id <= u);
    let mut ids: BTreeSet<String> = held.into_iter().filter(|id| within(id)).collect();
    let mut read: HashMap<String, (HomeRecord, pb::OutflowView)> = HashMap::new();
    for (m, outflow) in away {
        if !within(&m.member_id) {
            continue;
        }
        if ids.contains(&m.member_id)
            || !scope
                .covering(conn, &m.member_id, Some(&outflow))?
                .is_empty()
        {
            ids.insert(m.member_id.clone());
            read.insert(m.member_id.clone(), (m, outflow));
        }
    }
    ids.extend(scope.listed_members().filter(|id| within(id)).cloned());
    // Every share held in the range, read at once.
    let mut shares: HashMap<String, Vec<(String, String)>> = HashMap::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT member_id, peer, basis FROM shares
             WHERE member_id > ?1 AND (?2 IS NULL OR member_id <= ?2)",
        )?;
        let mut rows = stmt.query(params![after, upto])?;
        while let Some(row) = rows.next()? {
            shares
                .entry(row.get(0)?)
                .or_default()
                .push((row.get(1)?, row.get(2)?));
        }
    }
    let mut bulk = Bulk {
        range: (after.to_owned(), upto.clone()),
        ..Bulk::default()
    };
    for id in ids {
        let held = shares.remove(&id).unwrap_or_default();
        let (m, outflow) = match read.remove(&id) {
            Some((m, outflow)) => (m, Some(outflow)),
            None => {
                let Some(m) = load_home(conn, &id)? else {
                    continue;
                };
                // Every open outflow of an owned member in the range was
                // read above, when the scope needs outflows at all.
                let outflow = if scope.needs_outflow() {
                    None
                } else {
                    open_outflow(conn, &id)?
                };
                (m, outflow)
            }
        };
        if m.owner == ctx.me.as_str() {
            sync_shares_in(
                conn,
                ctx,
                &scope,
                Some(&mut bulk),
                &m,
                (held, outflow),
                (false, None),
            )?;
        }
    }
    Ok(upto)
}

/// After the shares under agreement `basis` ended (or its copies were
/// dropped), shares the affected members again under any other agreement
/// with the same host that still covers them (`except` leaves `basis` out).
pub fn reshare_after_basis_ended(
    conn: &Connection,
    ctx: &Ctx<'_>,
    members: &[String],
    except: Option<&str>,
) -> Result<(), Error> {
    for id in members {
        if let Some(m) = load_home(conn, id)? {
            if m.owner == ctx.me.as_str() {
                sync_shares_except(conn, ctx, &m, true, except)?;
            }
        }
    }
    Ok(())
}

/// At a host: deletes the copies shared under `basis` (its end).
pub fn delete_copies_with_basis(conn: &Connection, basis: &str) -> Result<usize, Error> {
    Ok(conn.execute("DELETE FROM home_copies WHERE basis = ?1", [basis])?)
}

fn home_section_with(
    m: &HomeRecord,
    outflow: &pb::OutflowView,
    basis: &str,
    (branch_name, branch_contact): (String, String),
) -> pb::HomeSection {
    let birth_year = NaiveDate::parse_from_str(&m.birth_date, "%Y-%m-%d")
        .map(|d| d.year())
        .unwrap_or(0);
    pb::HomeSection {
        member_id: m.member_id.clone(),
        version: Some(pb::Version {
            generation: m.generation,
            counter: m.counter,
        }),
        owner: m.owner.clone(),
        name: m.name.clone(),
        gender: m.gender.clone(),
        birth_year,
        phone: m.phone.clone(),
        party_status: m.party_status.clone(),
        home_branch_name: branch_name,
        home_branch_contact: branch_contact,
        membership_state: m.membership_state.clone(),
        contact_status: m.contact_status.clone(),
        basis: basis.to_owned(),
        outflow: Some(pb::Outflow {
            outflow_id: outflow.outflow_id.clone(),
            destination_place: outflow.destination_place.clone(),
            destination_node: outflow.destination_node.clone(),
            direction: outflow.direction.clone(),
            departed_on: outflow.departed_on.clone(),
            expected_return: outflow.expected_return.clone(),
            reason: outflow.reason.clone(),
            fixed_location: outflow.fixed_location,
            certificate_no: outflow.certificate_no.clone(),
            certificate_issuer: outflow.certificate_issuer.clone(),
            certificate_issued_on: outflow.certificate_issued_on.clone(),
            card_no: outflow.card_no.clone(),
        }),
    }
}

// --------------------------------------------------------- home copies

/// A home section a peer shared with this node as a host.
#[derive(Debug, Clone)]
pub struct HomeCopy {
    pub section: pb::HomeSection,
    pub received_at_ms: i64,
}

impl std::ops::Deref for HomeCopy {
    type Target = pb::HomeSection;
    fn deref(&self) -> &pb::HomeSection {
        &self.section
    }
}

pub fn load_copy(conn: &Connection, member_id: &str) -> Result<Option<HomeCopy>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT member_id, owner, generation, counter, name, gender, birth_year, phone, party_status,
                    home_branch_name, home_branch_contact, membership_state, contact_status, basis, outflow, received_at_ms
             FROM home_copies WHERE member_id = ?1",
        )?
        .query_row([member_id], read_copy)
        .optional()?)
}

fn read_copy(r: &Row<'_>) -> rusqlite::Result<HomeCopy> {
    let outflow: Vec<u8> = r.get(14)?;
    Ok(HomeCopy {
        section: pb::HomeSection {
            member_id: r.get(0)?,
            owner: r.get(1)?,
            version: Some(pb::Version {
                generation: r.get(2)?,
                counter: r.get(3)?,
            }),
            name: r.get(4)?,
            gender: r.get(5)?,
            birth_year: r.get(6)?,
            phone: r.get(7)?,
            party_status: r.get(8)?,
            home_branch_name: r.get(9)?,
            home_branch_contact: r.get(10)?,
            membership_state: r.get(11)?,
            contact_status: r.get(12)?,
            basis: r.get(13)?,
            outflow: pb::Outflow::decode(outflow.as_slice()).ok(),
        },
        received_at_ms: r.get(15)?,
    })
}

/// Stores a home section received from its owner (the caller checked authority).
/// The owner and version of the copy of `member_id` held here, if any.
pub fn copy_version(
    conn: &Connection,
    member_id: &str,
) -> Result<Option<(String, pb::Version)>, Error> {
    Ok(conn
        .prepare_cached("SELECT owner, generation, counter FROM home_copies WHERE member_id = ?1")?
        .query_row([member_id], |r| {
            Ok((
                r.get(0)?,
                pb::Version {
                    generation: r.get(1)?,
                    counter: r.get(2)?,
                },
            ))
        })
        .optional()?)
}

/// Stores the home section `s`, which arrived in its owner's log `log_id`,
/// as this node's copy unless the copy held is at the same or a later
/// version, or is another owner's at the same generation; true if stored.
/// One statement, so a copy that is newer (the common case, a catch-up)
/// costs one B-tree descent, not a read and a write; when nothing was
/// stored, [`copy_version`] tells why.
pub fn save_copy_if_newer(
    conn: &Connection,
    s: &pb::HomeSection,
    log_id: &str,
    now_ms: i64,
) -> Result<bool, Error> {
    let version = s.version.unwrap_or_default();
    let outflow = s.outflow.clone().unwrap_or_default().encode_to_vec();
    // An upsert: a row updated in place, not deleted and inserted again
    // (which, with secure_delete, also zeroes the old one).
    let changed = conn
        .prepare_cached(
            "INSERT INTO home_copies (member_id, owner, generation, counter, name, gender, birth_year, phone,
             party_status, home_branch_name, home_branch_contact, membership_state, contact_status, basis, outflow, received_at_ms,
             arrived_log_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
         ON CONFLICT (member_id) DO UPDATE SET owner = excluded.owner, generation = excluded.generation,
             counter = excluded.counter, name = excluded.name, gender = excluded.gender, birth_year = excluded.birth_year,
             phone = excluded.phone, party_status = excluded.party_status, home_branch_name = excluded.home_branch_name,
             home_branch_contact = excluded.home_branch_contact, membership_state = excluded.membership_state,
             contact_status = excluded.contact_status, basis = excluded.basis, outflow = excluded.outflow,
             received_at_ms = excluded.received_at_ms, arrived_log_id = excluded.arrived_log_id
         WHERE home_copies.generation < excluded.generation
            OR (home_copies.generation = excluded.generation AND home_copies.owner = excluded.owner
                AND home_copies.counter < excluded.counter)",
        )?
        .execute(params![
            s.member_id,
            s.owner,
            version.generation,
            version.counter,
            s.name,
            s.gender,
            s.birth_year,
            s.phone,
            s.party_status,
            s.home_branch_name,
            s.home_branch_contact,
            s.membership_state,
            s.contact_status,
            s.basis,
            outflow,
            now_ms,
            log_id
        ])?;
    Ok(changed > 0)
}

pub fn delete_copy(conn: &Connection, member_id: &str) -> Result<usize, Error> {
    Ok(conn
        .prepare_cached("DELETE FROM home_copies WHERE member_id = ?1")?
        .execute([member_id])?)
}

// ------------------------------------------------------------ outflows

/// How many columns [`OUTFLOW_COLUMNS`] names.
const OUTFLOW_COLUMNS_N: usize = 16;

const OUTFLOW_COLUMNS: &str = "o.outflow_id, o.member_id, COALESCE(m.name, ''), o.destination_place, o.destination_node,
    o.direction, o.departed_on, o.expected_return, o.reason, o.fixed_location, o.certificate_no, o.certificate_issuer,
    o.certificate_issued_on, o.card_no, o.state, o.returned_on";

fn read_outflow(r: &Row<'_>) -> rusqlite::Result<pb::OutflowView> {
    Ok(pb::OutflowView {
        outflow_id: r.get(0)?,
        member_id: r.get(1)?,
        member_name: r.get(2)?,
        destination_place: r.get(3)?,
        destination_node: r.get(4)?,
        direction: r.get(5)?,
        departed_on: r.get(6)?,
        expected_return: r.get(7)?,
        reason: r.get(8)?,
        fixed_location: r.get(9)?,
        certificate_no: r.get(10)?,
        certificate_issuer: r.get(11)?,
        certificate_issued_on: r.get(12)?,
        card_no: r.get(13)?,
        state: r.get(14)?,
        returned_on: r.get(15)?,
    })
}

pub fn open_outflow(conn: &Connection, member_id: &str) -> Result<Option<pb::OutflowView>, Error> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {OUTFLOW_COLUMNS} FROM outflows o LEFT JOIN members m ON m.member_id = o.member_id
             WHERE o.member_id = ?1 AND o.state = 'open'"
        ))?
        .query_row([member_id], read_outflow)
        .optional()?)
}

/// The peer serving `place`: the longest served prefix wins.
fn serving_peer(conn: &Connection, place: &str) -> Result<Option<String>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT node_id FROM peer_places WHERE ?1 LIKE place || '%' ORDER BY LENGTH(place) DESC, node_id LIMIT 1",
        )?
        .query_row([place], |r| r.get(0))
        .optional()?)
}

pub fn outflow_register(
    conn: &Connection,
    ctx: &Ctx<'_>,
    req: &pb::OutflowRequest,
) -> Result<pb::Member, Error> {
    let member_id = validate::member_id(&req.member_id)?;
    let mut m = load_owned(conn, ctx, &member_id)?;
    if let Some(open) = open_outflow(conn, &member_id)? {
        return Err(Error::conflict(format!(
            "member {member_id} ({}) is already away: registered {} to {}; `outflow return {member_id}` ends it first",
            m.name, open.departed_on, open.destination_place
        )));
    }
    let today = ctx.today();
    let place = req.destination_place.trim();
    crate::store::peers::validate_place(place)?;
    let node = match req.destination_node.trim() {
        "" => serving_peer(conn, place)?.unwrap_or_default(),
        given => {
            let id = NodeId::parse(given).map_err(|e| Error::invalid(e.to_string()))?;
            crate::store::peers::require(conn, &id)?;
            id.to_string()
        }
    };
    let departed = validate::date("departed on", &req.departed_on, today, false)?;
    let expected = validate::optional_date("expected return", &req.expected_return, today, true)?;
    if let Some(expected) = expected {
        if expected < departed {
            return Err(Error::invalid(format!(
                "expected return {expected} is before the departure {departed}"
            )));
        }
    }
    let issued_on = validate::optional_date(
        "certificate issued on",
        &req.certificate_issued_on,
        today,
        false,
    )?;
    let outflow_id = ctx.new_id();
    conn.execute(
        "INSERT INTO outflows (outflow_id, member_id, destination_place, destination_node, direction, departed_on,
             expected_return, reason, fixed_location, certificate_no, certificate_issuer, certificate_issued_on,
             card_no, state, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'open', ?14)",
        params![
            outflow_id,
            member_id,
            place,
            node,
            validate::text("direction", &req.direction, 40)?,
            departed.to_string(),
            expected.map(|d| d.to_string()).unwrap_or_default(),
            validate::text("reason", &req.reason, 200)?,
            req.fixed_location,
            validate::text("certificate number", &req.certificate_no, 40)?,
            validate::text("certificate issuer", &req.certificate_issuer, 100)?,
            issued_on.map(|d| d.to_string()).unwrap_or_default(),
            validate::text("card number", &req.card_no, 40)?,
            ctx.now_ms
        ],
    )?;
    bump_and_share(conn, ctx, &mut m)?;
    member_view(conn, ctx, &member_id)
}

/// A node now serves `places`: members already away to those places whose
/// registration names no node (the region had none when they left) are
/// served by it from now on, and shared with it (DESIGN §3).
pub fn adopt_destinations(conn: &Connection, ctx: &Ctx<'_>, node: &NodeId) -> Result<usize, Error> {
    let orphans: Vec<(String, String)> = conn
        .prepare(
            "SELECT outflow_id, member_id FROM outflows
             WHERE state = 'open' AND destination_node = ''
               AND EXISTS (SELECT 1 FROM peer_places p WHERE p.node_id = ?1 AND destination_place LIKE p.place || '%')",
        )?
        .query_map([node.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut adopted = 0;
    for (outflow_id, member_id) in orphans {
        let place: String = conn.query_row(
            "SELECT destination_place FROM outflows WHERE outflow_id = ?1",
            [&outflow_id],
            |r| r.get(0),
        )?;
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

/// Tells `host` to delete its copy of `m`'s home section, and drops the
/// shares still queued for it.
fn unshare(
    conn: &Connection,
    ctx: &Ctx<'_>,
    host: &NodeId,
    m: &HomeRecord,
    reason: &str,
) -> Result<(), Error> {
    log::drop_queued_home_sections(conn, host, &m.member_id)?;
    let payload = pb::Unshare {
        member_id: m.member_id.clone(),
        version: Some(pb::Version {
            generation: m.generation,
            counter: m.counter,
        }),
        reason: reason.to_owned(),
    };
    log::append(
        conn,
        host,
        EventKind::Unshare,
        &m.member_id,
        &payload.encode_to_vec(),
        ctx.now_ms,
    )?;
    Ok(())
}

pub fn outflow_list(
    conn: &Connection,
    req: &pb::OutflowListRequest,
) -> Result<Vec<pb::OutflowView>, Error> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {OUTFLOW_COLUMNS} FROM outflows o LEFT JOIN members m ON m.member_id = o.member_id
         WHERE (?1 OR o.state = 'open') AND (?2 = '' OR o.destination_place LIKE ?2 || '%')
         ORDER BY o.departed_on, o.outflow_id"
    ))?;
    let list = stmt
        .query_map(
            params![req.include_returned, req.destination.trim()],
            read_outflow,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(list)
}

// ------------------------------------------------------- host sections

fn read_host_section(r: &Row<'_>) -> rusqlite::Result<pb::HostSectionView> {
    Ok(pb::HostSectionView {
        author: r.get(0)?,
        generation: r.get(1)?,
        counter: r.get(2)?,
        host_branch: r.get(3)?,
        reported_on: r.get(4)?,
        address: r.get(5)?,
        employer: r.get(6)?,
        industry: r.get(7)?,
        job: r.get(8)?,
        contact_person: r.get(9)?,
        contact_phone: r.get(10)?,
        last_seen_at_host: r.get(11)?,
        basis: r.get(12)?,
    })
}

const HOST_COLUMNS: &str =
    "author, generation, counter, host_branch, reported_on, address, employer, industry, job,
    contact_person, contact_phone, last_seen_at_host, basis";

pub fn host_sections(
    conn: &Connection,
    member_id: &str,
) -> Result<Vec<pb::HostSectionView>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {HOST_COLUMNS} FROM host_sections WHERE member_id = ?1 ORDER BY author"
    ))?;
    let list = stmt
        .query_map([member_id], read_host_section)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(list)
}

pub fn host_section(
    conn: &Connection,
    member_id: &str,
    author: &str,
) -> Result<Option<pb::HostSectionView>, Error> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {HOST_COLUMNS} FROM host_sections WHERE member_id = ?1 AND author = ?2"
        ))?
        .query_row([member_id, author], read_host_section)
        .optional()?)
}

pub fn save_host_section(conn: &Connection, s: &pb::HostSection, now_ms: i64) -> Result<(), Error> {
    let version = s.version.unwrap_or_default();
    conn.prepare_cached(
        "INSERT INTO host_sections (member_id, author, generation, counter, host_branch, reported_on,
             address, employer, industry, job, contact_person, contact_phone, last_seen_at_host, basis, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT (member_id, author) DO UPDATE SET generation = excluded.generation, counter = excluded.counter,
             host_branch = excluded.host_branch, reported_on = excluded.reported_on, address = excluded.address,
             employer = excluded.employer, industry = excluded.industry, job = excluded.job,
             contact_person = excluded.contact_person, contact_phone = excluded.contact_phone,
             last_seen_at_host = excluded.last_seen_at_host, basis = excluded.basis, updated_at_ms = excluded.updated_at_ms",
    )?
    .execute(params![
        s.member_id,
        s.author,
        version.generation,
        version.counter,
        s.host_branch,
        s.reported_on,
        s.address,
        s.employer,
        s.industry,
        s.job,
        s.contact_person,
        s.contact_phone,
        s.last_seen_at_host,
        s.basis,
        now_ms
    ])?;
    Ok(())
}

/// The host writes its section of a member it hosts, and sends it to the owner.
pub fn host_section_set(
    conn: &Connection,
    ctx: &Ctx<'_>,
    req: &pb::HostSectionRequest,
) -> Result<pb::Member, Error> {
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
    // Past a version of this section a peer holds that this node, restored
    // from a backup, could not take back (`raise_host_section_floor`).
    let floor = host_section_floor(conn, &member_id)?
        .filter(|f| f.generation == owner_version.generation)
        .map_or(0, |f| f.counter);
    let counter = current.counter.max(floor) + 1;
    let section = pb::HostSection {
        member_id: member_id.clone(),
        version: Some(pb::Version {
            generation: owner_version.generation,
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
        "host_branch,reported_on,address,employer,industry,job,contact,last_seen_at_host",
        owner_version.generation,
        counter,
        &copy.basis,
        ctx.now_ms,
    )?;
    member_view(conn, ctx, &member_id)
}

/// The version of this node's host section of `member_id` that a peer
/// holds and this node could not take back after a restore (it held none
/// of it under a basis of its own): no older version of it is taken back,
/// and its next write passes it. Kept in `meta`; only restores set one.
pub fn host_section_floor(
    conn: &Connection,
    member_id: &str,
) -> Result<Option<pb::Version>, Error> {
    Ok(
        crate::store::get_meta(conn, &format!("host_section_floor/{member_id}"))?.and_then(|v| {
            let (generation, counter) = v.split_once('.')?;
            Some(pb::Version {
                generation: generation.parse().ok()?,
                counter: counter.parse().ok()?,
            })
        }),
    )
}

/// Raises [`host_section_floor`] of `member_id` to `version`.
pub fn raise_host_section_floor(
    conn: &Connection,
    member_id: &str,
    version: pb::Version,
) -> Result<(), Error> {
    let higher = host_section_floor(conn, member_id)?
        .is_none_or(|f| (version.generation, version.counter) > (f.generation, f.counter));
    if higher {
        crate::store::set_meta(
            conn,
            &format!("host_section_floor/{member_id}"),
            &format!("{}.{}", version.generation, version.counter),
        )?;
    }
    Ok(())
}

// -------------------------------------------- contacts and activities

/// Normalizes a contact time: a date (taken as the start of that day) or
/// an RFC 3339 time, in China Standard Time; empty means now.
fn contact_time(ctx: &Ctx<'_>, value: &str) -> Result<String, Error> {
    let value = value.trim();
    let today = ctx.today();
    if value.is_empty() {
        return Ok(ctx.local_now().format("%Y-%m-%dT%H:%M:%S").to_string());
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        let local = t.with_timezone(&super::china_time());
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
    record_about_member(conn, ctx, &member_id, EventKind::Contact, |basis| {
        let mut event = event.clone();
        event.basis = basis.to_owned();
        save_contact(conn, &event, ctx.now_ms)?;
        Ok(event.encode_to_vec())
    })?;
    Ok(contact_view(&event))
}

pub fn activity_record(
    conn: &Connection,
    ctx: &Ctx<'_>,
    req: &pb::ActivityRequest,
) -> Result<pb::ActivityView, Error> {
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
    Ok(activity_view(&record))
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

/// Host sections, contact events and activities matching `filter` (an SQL
/// condition over the record as `r`).
#[derive(Default)]
pub struct HostRecords {
    pub sections: Vec<pb::HostSection>,
    pub contacts: Vec<pb::ContactEvent>,
    pub activities: Vec<pb::ActivityRecord>,
}

impl HostRecords {
    pub fn read(
        conn: &Connection,
        filter: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Self, Error> {
        let sections = conn
            .prepare(&format!(
                "SELECT member_id, author, generation, counter, host_branch, reported_on, address, employer, industry,
                        job, contact_person, contact_phone, last_seen_at_host, basis
                 FROM host_sections r WHERE {filter} ORDER BY member_id, author"
            ))?
            .query_map(args, |r| {
                Ok(pb::HostSection {
                    member_id: r.get(0)?,
                    author: r.get(1)?,
                    version: Some(pb::Version {
                        generation: r.get(2)?,
                        counter: r.get(3)?,
                    }),
                    host_branch: r.get(4)?,
                    reported_on: r.get(5)?,
                    address: r.get(6)?,
                    employer: r.get(7)?,
                    industry: r.get(8)?,
                    job: r.get(9)?,
                    contact_person: r.get(10)?,
                    contact_phone: r.get(11)?,
                    last_seen_at_host: r.get(12)?,
                    basis: r.get(13)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let contacts = conn
            .prepare(&format!(
                "SELECT contact_id, member_id, author, at, channel, by_whom, outcome, basis
                 FROM contacts r WHERE {filter} ORDER BY contact_id"
            ))?
            .query_map(args, |r| {
                Ok(pb::ContactEvent {
                    contact_id: r.get(0)?,
                    member_id: r.get(1)?,
                    author: r.get(2)?,
                    at: r.get(3)?,
                    channel: r.get(4)?,
                    by: r.get(5)?,
                    outcome: r.get(6)?,
                    basis: r.get(7)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let activities = conn
            .prepare(&format!(
                "SELECT activity_id, member_id, author, kind, date, branch, hours, note, basis
                 FROM activities r WHERE {filter} ORDER BY activity_id"
            ))?
            .query_map(args, |r| {
                Ok(pb::ActivityRecord {
                    activity_id: r.get(0)?,
                    member_id: r.get(1)?,
                    author: r.get(2)?,
                    kind: r.get(3)?,
                    date: r.get(4)?,
                    branch: r.get(5)?,
                    hours: r.get(6)?,
                    note: r.get(7)?,
                    basis: r.get(8)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(HostRecords {
            sections,
            contacts,
            activities,
        })
    }
}

pub fn save_contact(conn: &Connection, c: &pb::ContactEvent, now_ms: i64) -> Result<bool, Error> {
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO contacts (contact_id, member_id, author, at, channel, by_whom, outcome, basis, recorded_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![c.contact_id, c.member_id, c.author, c.at, c.channel, c.by, c.outcome, c.basis, now_ms])?;
    Ok(n == 1)
}

pub fn save_activity(
    conn: &Connection,
    a: &pb::ActivityRecord,
    now_ms: i64,
) -> Result<bool, Error> {
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO activities (activity_id, member_id, author, kind, date, branch, hours, note, basis, recorded_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![a.activity_id, a.member_id, a.author, a.kind, a.date, a.branch, a.hours, a.note, a.basis, now_ms])?;
    Ok(n == 1)
}

fn contact_view(c: &pb::ContactEvent) -> pb::ContactView {
    pb::ContactView {
        contact_id: c.contact_id.clone(),
        member_id: c.member_id.clone(),
        author: c.author.clone(),
        at: c.at.clone(),
        channel: c.channel.clone(),
        by: c.by.clone(),
        outcome: c.outcome.clone(),
    }
}

fn activity_view(a: &pb::ActivityRecord) -> pb::ActivityView {
    pb::ActivityView {
        activity_id: a.activity_id.clone(),
        member_id: a.member_id.clone(),
        author: a.author.clone(),
        kind: a.kind.clone(),
        date: a.date.clone(),
        branch: a.branch.clone(),
        hours: a.hours,
        note: a.note.clone(),
    }
}

pub fn activity_list(
    conn: &Connection,
    req: &pb::ActivityListRequest,
) -> Result<Vec<pb::ActivityView>, Error> {
    let limit = if req.limit == 0 {
        100
    } else {
        req.limit.min(10_000)
    };
    let mut stmt = conn.prepare(
        "SELECT activity_id, member_id, author, kind, date, branch, hours, note FROM activities
         WHERE (?1 = '' OR member_id = ?1) ORDER BY date DESC, activity_id DESC LIMIT ?2",
    )?;
    let list = stmt
        .query_map(params![req.member_id.trim(), limit], |r| {
            Ok(pb::ActivityView {
                activity_id: r.get(0)?,
                member_id: r.get(1)?,
                author: r.get(2)?,
                kind: r.get(3)?,
                date: r.get(4)?,
                branch: r.get(5)?,
                hours: r.get(6)?,
                note: r.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(list)
}

fn recent_contacts(
    conn: &Connection,
    member_id: &str,
    limit: u32,
) -> Result<Vec<pb::ContactView>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT contact_id, member_id, author, at, channel, by_whom, outcome FROM contacts
         WHERE member_id = ?1 ORDER BY at DESC, contact_id DESC LIMIT ?2",
    )?;
    let list = stmt
        .query_map(params![member_id, limit], |r| {
            Ok(pb::ContactView {
                contact_id: r.get(0)?,
                member_id: r.get(1)?,
                author: r.get(2)?,
                at: r.get(3)?,
                channel: r.get(4)?,
                by: r.get(5)?,
                outcome: r.get(6)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(list)
}

// ------------------------------------------------------ contact status

/// The official contact status of an owned member (DOMAIN §6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactState {
    pub status: String,
    pub last_contact: String,
    /// The last org life or dues (R14), the date 失联 time counts from.
    pub lost_since: String,
}

fn contact_state(conn: &Connection, ctx: &Ctx<'_>, m: &HomeRecord) -> Result<ContactState, Error> {
    let (last_contact, last_org_life): (Option<String>, Option<String>) = conn
        .prepare_cached(
            "SELECT MAX(at), MAX(CASE WHEN channel IN ('org_life', 'dues') THEN at END) FROM contacts WHERE member_id = ?1",
        )?
        .query_row([&m.member_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let last_contact = last_contact.unwrap_or_default();
    let lost_since = last_org_life
        .map(|t| t[..10.min(t.len())].to_owned())
        .unwrap_or_default();
    let Some(outflow) = open_outflow(conn, &m.member_id)? else {
        // At home: contact is the home branch's everyday business.
        return Ok(ContactState {
            status: "in_contact".into(),
            last_contact,
            lost_since,
        });
    };
    let contact_after_manual =
        !m.contact_manual_at.is_empty() && last_contact > m.contact_manual_at;
    let manual = match (m.contact_manual.as_str(), contact_after_manual) {
        ("", _) => None,
        ("searching" | "unreachable", true) => Some("regained"),
        ("regained", true) => None,
        (manual, _) => Some(manual),
    };
    let status = match manual {
        Some(manual) => manual.to_owned(),
        None => {
            let baseline = std::cmp::max(
                last_contact.get(..10).unwrap_or("").to_owned(),
                outflow.departed_on.clone(),
            );
            let days = NaiveDate::parse_from_str(&baseline, "%Y-%m-%d")
                .map(|d| (ctx.today() - d).num_days())
                .unwrap_or(0);
            if days <= CONTACT_INTERVAL_DAYS {
                "in_contact".into()
            } else if days <= LOST_AFTER_DAYS {
                "overdue".into()
            } else {
                "lost".into()
            }
        }
    };
    Ok(ContactState {
        status,
        last_contact,
        lost_since,
    })
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
    if set.is_empty() {
        if let Some(copy) = load_copy(conn, &member_id)? {
            // A host sees the owner's decision as shared; it never derives one.
            return Ok(pb::ContactStatusView {
                member_id: member_id.clone(),
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
        m.contact_manual = set;
        m.contact_manual_at = ctx.local_now().format("%Y-%m-%dT%H:%M:%S").to_string();
        bump_and_share(conn, ctx, &mut m)?;
    }
    let state = contact_state(conn, ctx, &m)?;
    Ok(pb::ContactStatusView {
        member_id: member_id.clone(),
        status: state.status,
        last_contact: state.last_contact,
        lost_since: state.lost_since,
        recent: recent_contacts(conn, &member_id, 10)?,
    })
}

// --------------------------------------------------------------- views

pub fn member_view(conn: &Connection, ctx: &Ctx<'_>, member_id: &str) -> Result<pb::Member, Error> {
    if let Some(moved) = moved_of(conn, member_id)? {
        if load_home(conn, member_id)?.is_some_and(|m| m.owner != ctx.me.as_str()) {
            return Ok(pb::Member {
                member_id: member_id.to_owned(),
                owner: if moved.to_node.is_empty() {
                    moved.to_place.clone()
                } else {
                    moved.to_node.clone()
                },
                owned: false,
                generation: moved.generation,
                basis: moved.transfer_id.clone(),
                moved: Some(moved),
                ..pb::Member::default()
            });
        }
    }
    if let Some(m) = load_home(conn, member_id)? {
        let state = contact_state(conn, ctx, &m)?;
        let (branch_name, _) = org_contact(conn, &m.home_branch)?;
        let birth_year = m
            .birth_date
            .get(..4)
            .and_then(|y| y.parse().ok())
            .unwrap_or(0);
        return Ok(pb::Member {
            member_id: m.member_id.clone(),
            owned: m.owner == ctx.me.as_str(),
            owner: m.owner.clone(),
            generation: m.generation,
            counter: m.counter,
            name: m.name.clone(),
            gender: m.gender.clone(),
            birth_date: m.birth_date.clone(),
            birth_year,
            ethnicity: m.ethnicity.clone(),
            native_place: m.native_place.clone(),
            national_id: m.national_id.clone(),
            education: m.education.clone(),
            occupation: m.occupation.clone(),
            origin: m.origin.clone(),
            party_status: m.party_status.clone(),
            joined_on: m.joined_on.clone(),
            full_member_on: m.full_member_on.clone(),
            home_branch: m.home_branch.clone(),
            home_branch_name: branch_name,
            phone: m.phone.clone(),
            home_address: m.home_address.clone(),
            membership_state: m.membership_state.clone(),
            contact_status: state.status,
            last_contact: state.last_contact,
            lost_since: state.lost_since,
            outflow: open_outflow(conn, member_id)?,
            host_sections: host_sections(conn, member_id)?,
            basis: String::new(),
            updated_at_ms: m.updated_at_ms,
            moved: None,
        });
    }
    if let Some(copy) = load_copy(conn, member_id)? {
        return copy_view(conn, &copy);
    }
    // A host keeps its own section after the home section left (the
    // agreement ended or the member moved on): no longer co-managed.
    let own = host_section(conn, member_id, ctx.me.as_str())?;
    if let Some(own) = own {
        return Ok(pb::Member {
            member_id: member_id.to_owned(),
            owned: false,
            basis: NO_LONGER_CO_MANAGED.into(),
            host_sections: vec![own],
            ..pb::Member::default()
        });
    }
    Err(not_found(member_id))
}

/// The basis shown for a member whose home section this host no longer holds.
pub const NO_LONGER_CO_MANAGED: &str = "no longer co-managed";

fn copy_view(conn: &Connection, copy: &HomeCopy) -> Result<pb::Member, Error> {
    let version = copy.version.unwrap_or_default();
    let outflow = copy.outflow.clone().unwrap_or_default();
    Ok(pb::Member {
        member_id: copy.member_id.clone(),
        owner: copy.owner.clone(),
        owned: false,
        generation: version.generation,
        counter: version.counter,
        name: copy.name.clone(),
        gender: copy.gender.clone(),
        birth_year: copy.birth_year,
        phone: copy.phone.clone(),
        party_status: copy.party_status.clone(),
        home_branch_name: copy.home_branch_name.clone(),
        membership_state: copy.membership_state.clone(),
        contact_status: copy.contact_status.clone(),
        outflow: Some(pb::OutflowView {
            outflow_id: outflow.outflow_id,
            member_id: copy.member_id.clone(),
            member_name: copy.name.clone(),
            destination_place: outflow.destination_place,
            destination_node: outflow.destination_node,
            direction: outflow.direction,
            departed_on: outflow.departed_on,
            expected_return: outflow.expected_return,
            reason: outflow.reason,
            fixed_location: outflow.fixed_location,
            certificate_no: outflow.certificate_no,
            certificate_issuer: outflow.certificate_issuer,
            certificate_issued_on: outflow.certificate_issued_on,
            card_no: outflow.card_no,
            state: "open".into(),
            returned_on: String::new(),
        }),
        host_sections: host_sections(conn, &copy.member_id)?,
        basis: copy.basis.clone(),
        updated_at_ms: copy.received_at_ms,
        home_address: String::new(),
        ..pb::Member::default()
    })
}

/// Members matching the filters, with the total before paging.
pub fn member_list(
    conn: &Connection,
    ctx: &Ctx<'_>,
    req: &pb::MemberListRequest,
) -> Result<(Vec<pb::Member>, u64), Error> {
    let limit = if req.limit == 0 {
        100
    } else {
        req.limit.min(100_000)
    } as usize;
    let offset = req.offset as usize;
    let scope = req.scope.trim();
    if !matches!(scope, "" | "owned" | "hosted") {
        return Err(Error::invalid(format!(
            "scope `{scope}` is not owned or hosted"
        )));
    }
    let status = req.contact_status.trim();
    let mut ids: Vec<String> = Vec::new();
    if scope != "hosted" {
        let mut stmt = conn.prepare(
            "SELECT m.member_id FROM members m
             LEFT JOIN outflows o ON o.member_id = m.member_id AND o.state = 'open'
             WHERE m.owner = ?1
               AND (?2 = '' OR m.name LIKE '%' || ?2 || '%')
               AND (?3 = '' OR m.home_branch = ?3)
               AND (?4 = '' OR o.destination_place LIKE ?4 || '%')
               AND (NOT ?5 OR o.outflow_id IS NOT NULL)
               AND (?6 = '' OR m.contact_status = ?6)
             ORDER BY m.member_id",
        )?;
        ids.extend(
            stmt.query_map(
                params![
                    ctx.me.as_str(),
                    req.name.trim(),
                    req.branch.trim(),
                    req.destination.trim(),
                    req.away,
                    status
                ],
                |r| r.get::<_, String>(0),
            )?
            .collect::<Result<Vec<_>, _>>()?,
        );
    }
    if scope != "owned" && req.branch.trim().is_empty() {
        let mut stmt = conn.prepare(
            "SELECT member_id FROM home_copies
             WHERE (?1 = '' OR name LIKE '%' || ?1 || '%') AND (?2 = '' OR contact_status = ?2)
             ORDER BY member_id",
        )?;
        let copies = stmt
            .query_map(params![req.name.trim(), status], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let destination = req.destination.trim();
        for id in copies {
            if destination.is_empty() {
                ids.push(id);
            } else if let Some(copy) = load_copy(conn, &id)? {
                let place = copy
                    .outflow
                    .as_ref()
                    .map(|o| o.destination_place.as_str())
                    .unwrap_or("");
                if place.starts_with(destination) {
                    ids.push(id);
                }
            }
        }
    }
    let total = ids.len() as u64;
    let members = ids
        .iter()
        .skip(offset)
        .take(limit)
        .map(|id| member_view(conn, ctx, id))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((members, total))
}

pub fn disclosures(conn: &Connection, member_id: &str) -> Result<Vec<pb::Disclosure>, Error> {
    let member_id = validate::member_id(member_id)?;
    let mut stmt = conn.prepare(
        "SELECT peer, record_kind, record_id, fields, generation, counter, basis, at_ms FROM disclosures
         WHERE record_id = ?1 ORDER BY id",
    )?;
    let list = stmt
        .query_map([member_id], |r| {
            Ok(pb::Disclosure {
                peer: r.get(0)?,
                record_kind: r.get(1)?,
                record_id: r.get(2)?,
                fields: r.get(3)?,
                generation: r.get(4)?,
                counter: r.get(5)?,
                basis: r.get(6)?,
                at_ms: r.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(list)
}

//! Report-in claims: what a member submitted at a station, held at this
//! (host) node until a clerk confirms or rejects it. Never sent to a peer:
//! only a confirmation sends anything, and then through the member's own
//! records (host section, contact event).

use liaison_proto::v1 as pb;
use liaison_types::places;
use liaison_types::reportin::{self, Form, Submission};
use liaison_types::validate;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::stations::{is_code, station_page};
use crate::members;
use crate::store::audit::{self, Actor, NewEntry, Outcome};
use crate::{Ctx, Error};

const DAY_MS: i64 = 86_400_000;

/// The states of a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimState {
    Pending,
    Confirmed,
    Rejected,
}

impl ClaimState {
    /// `pending` (also for empty), `confirmed`, `rejected`; `all` is `None`.
    pub fn parse(text: &str) -> Result<Option<ClaimState>, Error> {
        match text.trim() {
            "" | "pending" => Ok(Some(ClaimState::Pending)),
            "confirmed" => Ok(Some(ClaimState::Confirmed)),
            "rejected" => Ok(Some(ClaimState::Rejected)),
            "all" => Ok(None),
            other => Err(Error::invalid(format!(
                "claim state `{other}` is not one of pending, confirmed, rejected, all"
            ))),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            ClaimState::Pending => "pending",
            ClaimState::Confirmed => "confirmed",
            ClaimState::Rejected => "rejected",
        }
    }
}

/// Stores a report-in claim at this (host) node for `station` (a code).
/// Audits `reportin.submitted` with the claim id and station code only.
/// Returns `Ok` whether or not the person is a known member: the caller
/// must answer identically. A station that is not open is refused
/// (`NotFound`), as its page is not found.
pub fn submit(
    conn: &Connection,
    ctx: &Ctx<'_>,
    station: &str,
    s: &Submission,
) -> Result<(), Error> {
    let claim_id = store_claim(conn, ctx, station, s)?;
    audit::append(
        conn,
        ctx.now_ms,
        &NewEntry {
            actor: &Actor::Node,
            action: "reportin.submitted",
            target: &claim_id,
            outcome: Outcome::Ok,
            detail: &format!("station {station}"),
        },
    )?;
    Ok(())
}

/// A report-in made in person at a station's desk and typed by its clerk
/// (`req.station` a code or name): checked as the page checks a form (a
/// refusal names every field's problem), stored as the page's claims are.
/// The caller audits it as the operator's action.
pub fn add(
    conn: &Connection,
    ctx: &Ctx<'_>,
    req: &pb::ReportinAddRequest,
    kept_days: u32,
) -> Result<pb::ReportinView, Error> {
    let station = super::stations::station_show(conn, &req.station, "")?;
    if station.state != "open" {
        return Err(Error::conflict(format!(
            "station {} is {}: it takes no report-ins",
            station.name, station.state
        )));
    }
    let form = Form {
        name: req.name.clone(),
        phone: req.phone.clone(),
        home_place: req.home_place.clone(),
        home_branch: req.home_branch.clone(),
        certificate_no: req.certificate_no.clone(),
        employer: req.employer.clone(),
        address: req.address.clone(),
        consent: req.consent,
    };
    let submission = reportin::check(&form).map_err(|problems| {
        let listed: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect();
        Error::invalid(format!(
            "the report-in form is not complete; nothing was stored:\n  {}",
            listed.join("\n  ")
        ))
    })?;
    let claim_id = store_claim(conn, ctx, &station.code, &submission)?;
    load_claim(conn, ctx, &claim_id, kept_days)
}

/// Stores a checked submission as a pending claim at the open station
/// `station` (a code); returns the claim's id.
fn store_claim(
    conn: &Connection,
    ctx: &Ctx<'_>,
    station: &str,
    s: &Submission,
) -> Result<String, Error> {
    if station_page(conn, station)?.is_none() {
        return Err(Error::not_found(format!(
            "no open station has the code `{}`",
            if is_code(station) { station } else { "?" }
        )));
    }
    let claim_id = ctx.new_id();
    conn.prepare_cached(
        "INSERT INTO reportin_claims (claim_id, station, submitted_at, name, phone, home_place,
             home_branch, certificate_no, employer, address, submitted_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        claim_id,
        station,
        ctx.china_now().format("%Y-%m-%dT%H:%M:%S").to_string(),
        s.name,
        s.phone,
        s.home_place,
        s.home_branch,
        s.certificate_no,
        s.employer,
        s.address,
        ctx.now_ms
    ])?;
    Ok(claim_id)
}

/// The peer whose region covers `home_place`, or lies within it (a member
/// who picked only the province or city), and with which this node (as
/// the host, the inflow party) has an active agreement: where a confirmed
/// report-in goes. `None`: no agreement with that region, and a claim
/// from it is never sent.
pub fn home_node(
    conn: &Connection,
    ctx: &Ctx<'_>,
    home_place: &str,
) -> Result<Option<String>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT pp.node_id FROM peer_places pp
             WHERE ?1 <> '' AND (?1 LIKE pp.place || '%' OR pp.place LIKE ?1 || '%')
               AND EXISTS (SELECT 1 FROM agreements a
                            WHERE a.outflow_node = pp.node_id AND a.inflow_node = ?2 AND a.state = 'active')
             ORDER BY LENGTH(pp.place) DESC, pp.node_id LIMIT 1",
        )?
        .query_row(params![home_place, ctx.me.as_str()], |r| r.get(0))
        .optional()?)
}

const CLAIM_COLUMNS: &str =
    "c.claim_id, c.station, COALESCE(s.name, c.station), c.submitted_at_ms, c.name, c.phone,
    c.home_place, c.home_branch, c.certificate_no, c.employer, c.address, c.state, c.member_id,
    COALESCE(h.name, ''), c.decided_by, c.reason, c.decided_at_ms";

const CLAIM_FROM: &str = "reportin_claims c LEFT JOIN stations s ON s.code = c.station
    LEFT JOIN home_copies h ON h.member_id = c.member_id";

/// A time for a view: RFC 3339 with the node's offset.
fn rfc3339(ctx: &Ctx<'_>, ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&ctx.zone)
        .to_rfc3339()
}

fn read_claim<'c>(
    ctx: &'c Ctx<'_>,
    kept_days: u32,
) -> impl Fn(&Row<'_>) -> rusqlite::Result<pb::ReportinView> + 'c {
    move |r| {
        let home_place: String = r.get(6)?;
        let decided_at_ms: Option<i64> = r.get(16)?;
        let state: String = r.get(11)?;
        let deleted_after = match (state.as_str(), decided_at_ms) {
            ("rejected", Some(ms)) => rfc3339(ctx, ms + i64::from(kept_days) * DAY_MS),
            _ => String::new(),
        };
        Ok(pb::ReportinView {
            claim_id: r.get(0)?,
            station: r.get(1)?,
            station_name: r.get(2)?,
            submitted_at: rfc3339(ctx, r.get(3)?),
            name: r.get(4)?,
            phone: r.get(5)?,
            home_place_label: places::label(&home_place),
            home_place,
            home_branch: r.get(7)?,
            certificate_no: r.get(8)?,
            employer: r.get(9)?,
            address: r.get(10)?,
            state,
            member_id: r.get(12)?,
            member_name: r.get(13)?,
            decided_by: r.get(14)?,
            reason: r.get(15)?,
            home_node: String::new(),
            deleted_after,
            candidates: Vec::new(),
        })
    }
}

fn with_home_node(
    conn: &Connection,
    ctx: &Ctx<'_>,
    mut view: pb::ReportinView,
) -> Result<pb::ReportinView, Error> {
    view.home_node = home_node(conn, ctx, &view.home_place)?.unwrap_or_default();
    Ok(view)
}

/// The claims in `state` (`None`: all), oldest first. `kept_days` is
/// `report_in.rejected_kept_days`, for when a rejected claim goes.
pub fn claim_list(
    conn: &Connection,
    ctx: &Ctx<'_>,
    state: Option<ClaimState>,
    kept_days: u32,
) -> Result<Vec<pb::ReportinView>, Error> {
    let views = conn
        .prepare_cached(&format!(
            "SELECT {CLAIM_COLUMNS} FROM {CLAIM_FROM} WHERE (?1 = '' OR c.state = ?1)
             ORDER BY c.submitted_at_ms, c.claim_id"
        ))?
        .query_map(
            [state.map_or("", ClaimState::as_str)],
            read_claim(ctx, kept_days),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    views
        .into_iter()
        .map(|v| with_home_node(conn, ctx, v))
        .collect()
}

/// The claim `reference` names: its id, or an id prefix of 8+ characters.
fn claim_id(conn: &Connection, reference: &str) -> Result<String, Error> {
    let reference = reference.trim().to_ascii_lowercase();
    let ok_shape = reference.len() >= crate::refs::ID_PREFIX_MIN
        && reference.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    let ids: Vec<String> = if ok_shape {
        conn.prepare_cached(
            "SELECT claim_id FROM reportin_claims WHERE claim_id >= ?1 AND claim_id < ?1 || 'g'
             ORDER BY claim_id LIMIT 10",
        )?
        .query_map([&reference], |r| r.get(0))?
        .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    match ids.as_slice() {
        [id] => Ok(id.clone()),
        [] => Err(Error::not_found(format!(
            "no report-in claim here has an id starting with `{reference}`: `liaisonctl reportin list` shows them"
        ))),
        _ => Err(Error::invalid(format!(
            "`{reference}` starts {} claims' ids ({}): give more of the id",
            ids.len(),
            ids.join(", ")
        ))),
    }
}

fn load_claim(
    conn: &Connection,
    ctx: &Ctx<'_>,
    claim_id: &str,
    kept_days: u32,
) -> Result<pb::ReportinView, Error> {
    let view = conn
        .prepare_cached(&format!(
            "SELECT {CLAIM_COLUMNS} FROM {CLAIM_FROM} WHERE c.claim_id = ?1"
        ))?
        .query_row([claim_id], read_claim(ctx, kept_days))
        .optional()?
        .ok_or_else(|| Error::not_found(format!("no report-in claim {claim_id} here")))?;
    with_home_node(conn, ctx, view)
}

/// A claim with the members it may be ([`candidates`]).
pub fn claim_show(
    conn: &Connection,
    ctx: &Ctx<'_>,
    reference: &str,
    kept_days: u32,
) -> Result<pb::ReportinView, Error> {
    let id = claim_id(conn, reference)?;
    let mut view = load_claim(conn, ctx, &id, kept_days)?;
    if view.state == "pending" {
        view.candidates = candidates(conn, &view)?;
    }
    Ok(view)
}

/// The digits of a phone number, a `86` in front of 11 digits dropped.
fn phone_digits(phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    match digits.strip_prefix("86") {
        Some(rest) if digits.len() == 13 => rest.to_owned(),
        _ => digits,
    }
}

/// A certificate number as compared: its letters and digits, upper case
/// (members type `pl 2026 001` for `PL-2026-001`).
fn certificate_key(number: &str) -> String {
    number
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Members hosted here under an agreement (home-section copies) that the
/// claim may be: those with its certificate number, name or phone, best
/// first (certificate, then name and phone, then the home region the
/// owner serves).
fn candidates(
    conn: &Connection,
    claim: &pb::ReportinView,
) -> Result<Vec<pb::ReportinCandidate>, Error> {
    let home_peers: Vec<String> = conn
        .prepare_cached("SELECT node_id FROM peer_places WHERE ?1 LIKE place || '%'")?
        .query_map([&claim.home_place], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let claim_certificate = certificate_key(&claim.certificate_no);
    let mut found = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT member_id, name, owner, home_branch_name, phone, contact_status, outflow FROM home_copies
         ORDER BY member_id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let name: String = r.get(1)?;
        let owner: String = r.get(2)?;
        let phone: String = r.get(4)?;
        let outflow: Vec<u8> = r.get(6)?;
        let certificate = <pb::Outflow as prost::Message>::decode(outflow.as_slice())
            .map(|o| certificate_key(&o.certificate_no))
            .unwrap_or_default();
        let mut matches = Vec::new();
        let mut score = 0;
        if !claim_certificate.is_empty() && certificate == claim_certificate {
            matches.push("certificate".to_owned());
            score += 8;
        }
        if !claim.name.is_empty() && name == claim.name {
            matches.push("name".to_owned());
            score += 4;
        }
        if !claim.phone.is_empty() && phone_digits(&phone) == claim.phone {
            matches.push("phone".to_owned());
            score += 2;
        }
        if score == 0 {
            continue;
        }
        if home_peers.contains(&owner) {
            matches.push("home region".to_owned());
            score += 1;
        }
        found.push((
            score,
            pb::ReportinCandidate {
                member_id: r.get(0)?,
                name,
                owner,
                home_branch: r.get(3)?,
                matches,
                contact_status: r.get(5)?,
            },
        ));
    }
    found.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.member_id.cmp(&b.1.member_id)));
    Ok(found.into_iter().map(|(_, c)| c).collect())
}

/// The claim, pending, or a refusal that says what it is instead.
fn pending_claim(
    conn: &Connection,
    ctx: &Ctx<'_>,
    reference: &str,
    kept_days: u32,
) -> Result<pb::ReportinView, Error> {
    let id = claim_id(conn, reference)?;
    let claim = load_claim(conn, ctx, &id, kept_days)?;
    if claim.state != "pending" {
        return Err(Error::conflict(format!(
            "report-in claim {id} is {} already: only a pending claim is confirmed or rejected",
            claim.state
        )));
    }
    Ok(claim)
}

/// Confirms a claim against a member hosted here under an agreement
/// (`req.member_id`, or else the one candidate matching by certificate
/// number, or by name and home region): the host section gets the
/// report-in date and station (and the employer and address the member
/// gave, if any), a contact of channel `report-in` goes to the owner, and
/// the claim keeps the member and drops the personal data it came with.
/// `by` names the operator.
pub fn confirm(
    conn: &Connection,
    ctx: &Ctx<'_>,
    req: &pb::ReportinConfirmRequest,
    by: &str,
    kept_days: u32,
) -> Result<pb::ReportinView, Error> {
    crate::epoch::act_as_owner(conn)?;
    let claim = pending_claim(conn, ctx, &req.claim_id, kept_days)?;
    if claim.home_node.is_empty() {
        return Err(Error::conflict(format!(
            "no agreement with {}: this node holds no member of that region, so the claim cannot be confirmed and is never sent; agree with that region's node first (`liaisonctl agreement propose`), or reject the claim",
            claim.home_place_label
        )));
    }
    let member_id = if req.member_id.trim().is_empty() {
        only_candidate(conn, &claim)?
    } else {
        let id = validate::member_id(&req.member_id)?;
        if members::load_copy(conn, &id)?.is_none() {
            return Err(Error::not_found(format!(
                "member {id} is not hosted here under an agreement: confirm against one of the candidates `liaisonctl reportin show {}` lists",
                claim.claim_id
            )));
        }
        id
    };
    let status_before = members::load_copy(conn, &member_id)?
        .map(|copy| copy.contact_status.clone())
        .unwrap_or_default();
    let submitted_at = conn
        .prepare_cached("SELECT submitted_at FROM reportin_claims WHERE claim_id = ?1")?
        .query_row([&claim.claim_id], |r| r.get::<_, String>(0))?;
    let reported_on = submitted_at.get(..10).unwrap_or_default().to_owned();
    let given = |value: &str| (!value.is_empty()).then(|| value.to_owned());
    members::host_section_set(
        conn,
        ctx,
        &pb::HostSectionRequest {
            member_id: member_id.clone(),
            reported_on: Some(reported_on),
            station: Some(claim.station_name.clone()),
            employer: given(&claim.employer),
            address: given(&claim.address),
            ..Default::default()
        },
    )?;
    members::contact_record(
        conn,
        ctx,
        &pb::ContactRequest {
            member_id: member_id.clone(),
            at: format!("{submitted_at}+08:00"),
            channel: "report-in".into(),
            by: claim.station_name.clone(),
            outcome: format!("在{}报到", claim.station_name),
        },
    )?;
    conn.prepare_cached(
        "UPDATE reportin_claims SET state = 'confirmed', member_id = ?2, decided_by = ?3, decided_at_ms = ?4,
             status_before = ?5,
             name = '', phone = '', home_branch = '', certificate_no = '', employer = '', address = ''
         WHERE claim_id = ?1",
    )?
    .execute(params![claim.claim_id, member_id, by, ctx.now_ms, status_before])?;
    load_claim(conn, ctx, &claim.claim_id, kept_days)
}

/// The one candidate a claim names without a member given: the only one
/// with its certificate number, else the only one with its name from its
/// home region.
fn only_candidate(conn: &Connection, claim: &pb::ReportinView) -> Result<String, Error> {
    let all = candidates(conn, claim)?;
    let having = |what: &[&str]| -> Vec<&pb::ReportinCandidate> {
        all.iter()
            .filter(|c| what.iter().all(|w| c.matches.iter().any(|m| m == w)))
            .collect()
    };
    for rule in [&["certificate"][..], &["name", "home region"][..]] {
        if let [one] = having(rule).as_slice() {
            return Ok(one.member_id.clone());
        }
    }
    let listed: Vec<String> = all
        .iter()
        .map(|c| {
            format!(
                "{} {} ({}; {})",
                c.member_id,
                c.name,
                c.home_branch,
                c.matches.join(", ")
            )
        })
        .collect();
    Err(Error::invalid(if listed.is_empty() {
        format!(
            "no member hosted here matches claim {} by certificate number, name or phone: confirm with --member MEMBER if you know who it is, or reject it",
            claim.claim_id
        )
    } else {
        format!(
            "claim {} does not name one member by certificate number, or by name and home region: give --member with one of\n  {}",
            claim.claim_id,
            listed.join("\n  ")
        )
    }))
}

/// Rejects a pending claim; it is deleted with its personal data
/// `kept_days` after ([`purge_rejected`]). `by` names the operator.
pub fn reject(
    conn: &Connection,
    ctx: &Ctx<'_>,
    req: &pb::ReportinRejectRequest,
    by: &str,
    kept_days: u32,
) -> Result<pb::ReportinView, Error> {
    crate::epoch::act_as_owner(conn)?;
    let claim = pending_claim(conn, ctx, &req.claim_id, kept_days)?;
    let reason = validate::text("reason", &req.reason, 200)?;
    conn.prepare_cached(
        "UPDATE reportin_claims SET state = 'rejected', decided_by = ?2, decided_at_ms = ?3, reason = ?4
         WHERE claim_id = ?1",
    )?
    .execute(params![claim.claim_id, by, ctx.now_ms, reason])?;
    load_claim(conn, ctx, &claim.claim_id, kept_days)
}

/// Deletes the claims rejected more than `kept_days` ago, with their
/// personal data; returns how many.
pub fn purge_rejected(conn: &Connection, ctx: &Ctx<'_>, kept_days: u32) -> Result<usize, Error> {
    let before_ms = ctx.now_ms - i64::from(kept_days) * DAY_MS;
    Ok(conn
        .prepare_cached(
            "DELETE FROM reportin_claims WHERE state = 'rejected' AND decided_at_ms < ?1",
        )?
        .execute([before_ms])?)
}

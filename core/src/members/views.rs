//! What operators see of members: one member as this node holds it, lists,
//! and the disclosures of its records.

use liaison_proto::v1 as pb;
use liaison_types::validate;
use rusqlite::{params, Connection};

use super::copies::{load_copy, HomeCopy};
use super::host::{host_section, host_sections};
use super::labels::{basis_label, basis_label_sql};
use super::orgs::org_contact;
use super::outflows::open_outflow;
use super::records::{load_home, moved_of, not_found};
use super::status::contact_state;
use crate::{Ctx, Error};

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
                basis_label: basis_label(conn, &moved.transfer_id)?,
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
            basis_label: String::new(),
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
            basis_label: NO_LONGER_CO_MANAGED.into(),
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
        basis_label: basis_label(conn, &copy.basis)?,
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
    // The basis by the number people know it by: the agreement number, or
    // the letter number of a transfer.
    let mut stmt = conn.prepare(&format!(
        "SELECT d.peer, d.record_kind, d.record_id, d.fields, d.generation, d.counter, d.basis, d.at_ms,
                {}
         FROM disclosures d WHERE d.record_id = ?1 ORDER BY d.id",
        basis_label_sql("d.basis")
    ))?;
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
                basis_label: r.get(8)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(list)
}

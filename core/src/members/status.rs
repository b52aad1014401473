//! The official contact status of an owned member (docs/authority.md), derived
//! from its contact events, its outflow and the clock.

use chrono::NaiveDate;
use rusqlite::Connection;

use super::outflows::open_outflow;
use super::records::HomeRecord;
use crate::{Ctx, Error};

/// Days without contact after which a mobile member is overdue (quarterly
/// contact) and lost (6 months without contact).
pub const CONTACT_INTERVAL_DAYS: i64 = 92;

pub const LOST_AFTER_DAYS: i64 = 183;

/// The official contact status of an owned member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactState {
    pub status: String,
    pub last_contact: String,
    /// While the member is out of contact (lost, searching, unreachable):
    /// the last org life or dues, else the departure, the date 失联
    /// time counts from; empty otherwise, so no status in contact is ever
    /// shown beside a "lost since" date.
    pub lost_since: String,
}

pub(super) fn contact_state(
    conn: &Connection,
    ctx: &Ctx<'_>,
    m: &HomeRecord,
) -> Result<ContactState, Error> {
    let (last_contact, last_org_life): (Option<String>, Option<String>) = conn
        .prepare_cached(
            "SELECT MAX(at), MAX(CASE WHEN channel IN ('org_life', 'dues') THEN at END) FROM contacts WHERE member_id = ?1",
        )?
        .query_row([&m.member_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let last_contact = last_contact.unwrap_or_default();
    let last_org_life = last_org_life
        .map(|t| t[..10.min(t.len())].to_owned())
        .unwrap_or_default();
    let Some(outflow) = open_outflow(conn, &m.member_id)? else {
        // At home: contact is the home branch's everyday business.
        return Ok(ContactState {
            status: "in_contact".into(),
            last_contact,
            lost_since: String::new(),
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
    let lost_since = if matches!(status.as_str(), "lost" | "searching" | "unreachable") {
        if last_org_life.is_empty() {
            outflow.departed_on.clone()
        } else {
            last_org_life
        }
    } else {
        String::new()
    };
    Ok(ContactState {
        status,
        last_contact,
        lost_since,
    })
}

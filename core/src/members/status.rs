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

/// What a member away's contact status is derived from, as of a day.
#[derive(Debug, Clone, Copy, Default)]
pub struct ContactFacts<'a> {
    /// The latest contact event of any channel (a date or a local time).
    pub last_contact: &'a str,
    /// The latest org life or dues (a date or a local time).
    pub last_org_life: &'a str,
    /// The departure of the outflow the member is away on.
    pub departed_on: &'a str,
    /// The owner's latest decision (searching, regained, unreachable) and
    /// its local time; empty for none.
    pub manual: &'a str,
    pub manual_at: &'a str,
}

impl ContactFacts<'_> {
    /// The status these facts give on `day` (docs/authority.md, contact status): an operator's
    /// decision stands until a contact after it (a search ends as
    /// regained, a regained member is judged by contact again); otherwise
    /// in contact up to [`CONTACT_INTERVAL_DAYS`] since the last contact
    /// or the departure, overdue up to [`LOST_AFTER_DAYS`], then lost.
    pub fn state_on(&self, day: NaiveDate) -> ContactState {
        let contact_after_manual = !self.manual_at.is_empty() && self.last_contact > self.manual_at;
        let manual = match (self.manual, contact_after_manual) {
            ("", _) => None,
            ("searching" | "unreachable", true) => Some("regained"),
            ("regained", true) => None,
            (manual, _) => Some(manual),
        };
        let status = match manual {
            Some(manual) => manual.to_owned(),
            None => {
                let baseline =
                    std::cmp::max(self.last_contact.get(..10).unwrap_or(""), self.departed_on);
                let days = NaiveDate::parse_from_str(baseline, "%Y-%m-%d")
                    .map(|d| (day - d).num_days())
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
            if self.last_org_life.is_empty() {
                self.departed_on.to_owned()
            } else {
                let date = self.last_org_life.get(..10).unwrap_or(self.last_org_life);
                date.to_owned()
            }
        } else {
            String::new()
        };
        ContactState {
            status,
            last_contact: self.last_contact.to_owned(),
            lost_since,
        }
    }
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
    let Some(outflow) = open_outflow(conn, &m.member_id)? else {
        // At home: contact is the home branch's everyday business.
        return Ok(ContactState {
            status: "in_contact".into(),
            last_contact,
            lost_since: String::new(),
        });
    };
    let facts = ContactFacts {
        last_contact: &last_contact,
        last_org_life: last_org_life.as_deref().unwrap_or(""),
        departed_on: &outflow.departed_on,
        manual: &m.contact_manual,
        manual_at: &m.contact_manual_at,
    };
    Ok(facts.state_on(ctx.today()))
}

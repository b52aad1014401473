//! Service stations (流动党员服务站 / 联络站): where members report in. Each
//! has a random code, the last segment of its QR URL, so that a code found
//! on one poster tells nothing of any other station or member.

use liaison_proto::v1 as pb;
use liaison_types::validate;
use rand::Rng;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::{Ctx, Error};

/// The characters of a station code: lowercase letters and digits without
/// those read alike (0/o, 1/l/i), so a code typed from a poster is right.
const CODE_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// Characters of a station code: 31^8 ≈ 8.5e11 codes, beyond guessing
/// through the page's per-address rate limit.
pub const CODE_LEN: usize = 8;

/// The public facts of a station, as its report-in page shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationPage {
    pub code: String,
    pub name: String,
    pub address: String,
    pub hours: String,
    /// The running organization's name.
    pub host_org: String,
}

/// The public facts of a station by its code (the last segment of its QR
/// URL), `None` if no such station or it is closed.
pub fn station_page(conn: &Connection, code: &str) -> Result<Option<StationPage>, Error> {
    if !is_code(code) {
        return Ok(None);
    }
    Ok(conn
        .prepare_cached(
            "SELECT s.code, s.name, s.address, s.hours, COALESCE(o.name, s.host_org)
             FROM stations s LEFT JOIN orgs o ON o.org_id = s.host_org
             WHERE s.code = ?1 AND s.state = 'open'",
        )?
        .query_row([code], |r| {
            Ok(StationPage {
                code: r.get(0)?,
                name: r.get(1)?,
                address: r.get(2)?,
                hours: r.get(3)?,
                host_org: r.get(4)?,
            })
        })
        .optional()?)
}

/// Whether `text` has the shape of a station code (checked before any
/// look-up, so that odd input never reaches a query).
pub(super) fn is_code(text: &str) -> bool {
    text.len() == CODE_LEN && text.bytes().all(|b| CODE_ALPHABET.contains(&b))
}

fn new_code() -> String {
    let mut rng = rand::rng();
    (0..CODE_LEN)
        .map(|_| char::from(CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())]))
        .collect()
}

/// The URL a station's QR code opens, or empty without a public URL.
fn station_url(public_url: &str, code: &str) -> String {
    if public_url.is_empty() {
        String::new()
    } else {
        format!("{}/s/{code}", public_url.trim_end_matches('/'))
    }
}

const STATION_COLUMNS: &str =
    "s.code, s.name, s.address, s.hours, s.contact_person, s.contact_phone,
    s.host_org, COALESCE(o.name, ''), s.state,
    (SELECT COUNT(*) FROM reportin_claims c WHERE c.station = s.code AND c.state = 'pending'),
    (SELECT COUNT(*) FROM reportin_claims c WHERE c.station = s.code AND c.state = 'confirmed')";

fn read_station(r: &Row<'_>) -> rusqlite::Result<pb::StationView> {
    Ok(pb::StationView {
        code: r.get(0)?,
        name: r.get(1)?,
        address: r.get(2)?,
        hours: r.get(3)?,
        contact_person: r.get(4)?,
        contact_phone: r.get(5)?,
        host_org: r.get(6)?,
        host_org_name: r.get(7)?,
        state: r.get(8)?,
        url: String::new(),
        pending: r.get(9)?,
        confirmed: r.get(10)?,
    })
}

/// Registers a station of this node, run by one of its organizations
/// (`req.host_org`, a code). `public_url` is the page's address
/// (`report_in.public_url`), empty without one.
pub fn station_add(
    conn: &Connection,
    ctx: &Ctx<'_>,
    req: &pb::StationAddRequest,
    public_url: &str,
) -> Result<pb::StationView, Error> {
    crate::epoch::act_as_owner(conn)?;
    let name = validate::text("station name", &req.name, 100)?;
    if name.is_empty() {
        return Err(Error::invalid(
            "no station name given: name the station as its sign reads (e.g. 兰州市平凉籍流动党员服务站)"
                .into(),
        ));
    }
    let taken: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM stations WHERE name = ?1)")?
        .query_row([&name], |r| r.get(0))?;
    if taken {
        return Err(Error::conflict(format!(
            "a station named {name} exists already: `liaisonctl station show {name}` shows it"
        )));
    }
    let org_known: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM orgs WHERE org_id = ?1)")?
        .query_row([req.host_org.trim()], |r| r.get(0))?;
    if !org_known {
        return Err(Error::not_found(format!(
            "no organization here has the code `{}`: a station is run by one of this node's organizations (`liaisonctl org list`)",
            req.host_org.trim()
        )));
    }
    let mut code = new_code();
    // A clash among 31^8 codes is all but impossible; drawing again keeps
    // the primary key from refusing the station if one happens.
    while station_by_code(conn, &code, "")?.is_some() {
        code = new_code();
    }
    conn.prepare_cached(
        "INSERT INTO stations (code, name, address, hours, contact_person, contact_phone, host_org, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        code,
        name,
        validate::text("address", &req.address, 200)?,
        validate::text("hours", &req.hours, 100)?,
        validate::text("contact person", &req.contact_person, 50)?,
        validate::phone(&req.contact_phone)?,
        req.host_org.trim(),
        ctx.now_ms
    ])?;
    station_by_code(conn, &code, public_url)?
        .ok_or_else(|| Error::not_found(format!("station {code} vanished")))
}

fn station_by_code(
    conn: &Connection,
    code: &str,
    public_url: &str,
) -> Result<Option<pb::StationView>, Error> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT {STATION_COLUMNS} FROM stations s LEFT JOIN orgs o ON o.org_id = s.host_org WHERE s.code = ?1"
        ))?
        .query_row([code], read_station)
        .optional()?;
    Ok(found.map(|mut s| {
        s.url = station_url(public_url, &s.code);
        s
    }))
}

/// Every station of this node, by name.
pub fn station_list(conn: &Connection, public_url: &str) -> Result<Vec<pb::StationView>, Error> {
    let list = conn
        .prepare_cached(&format!(
            "SELECT {STATION_COLUMNS} FROM stations s LEFT JOIN orgs o ON o.org_id = s.host_org ORDER BY s.name"
        ))?
        .query_map([], read_station)?
        .map(|s| {
            s.map(|mut s| {
                s.url = station_url(public_url, &s.code);
                s
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(list)
}

/// A station by its code or its name.
pub fn station_show(
    conn: &Connection,
    reference: &str,
    public_url: &str,
) -> Result<pb::StationView, Error> {
    let reference = reference.trim();
    let code: Option<String> = conn
        .prepare_cached("SELECT code FROM stations WHERE code = ?1 OR name = ?1")?
        .query_row([reference], |r| r.get(0))
        .optional()?;
    let Some(code) = code else {
        return Err(Error::not_found(format!(
            "no station here has the code or name `{reference}`: `liaisonctl station list` shows them"
        )));
    };
    station_by_code(conn, &code, public_url)?
        .ok_or_else(|| Error::not_found(format!("station {code} vanished")))
}

//! References a clerk has in hand, resolved to ids: a member by id, a
//! unique id prefix, the national ID number (members this node owns) or the
//! name; a transfer by id, prefix or letter number; an agreement by id,
//! prefix or agreement number; an organization by code or full name; a peer
//! by node id or display name; a service station by its code or name.
//!
//! An ambiguous reference is refused with every candidate, each labelled so
//! that a person can tell them apart and with the id prefix that names it;
//! an unknown one says so and what would be found.

use rusqlite::{params, Connection, OptionalExtension};

use crate::{Ctx, Error, Refusal};

/// The shortest id prefix accepted (as git accepts abbreviated hashes).
pub const ID_PREFIX_MIN: usize = 8;

/// How many characters of an id a candidate's label shows at least.
const ID_SHOWN: usize = ID_PREFIX_MIN;

/// A reference resolved: the full id, and a label for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub id: String,
    pub label: String,
}

/// What a reference may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Member,
    Transfer,
    Agreement,
    Org,
    Peer,
    Station,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "member" => Some(Kind::Member),
            "transfer" => Some(Kind::Transfer),
            "agreement" => Some(Kind::Agreement),
            "org" => Some(Kind::Org),
            "peer" => Some(Kind::Peer),
            "station" => Some(Kind::Station),
            _ => None,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Member => "member",
            Kind::Transfer => "transfer",
            Kind::Agreement => "agreement",
            Kind::Org => "organization",
            Kind::Peer => "peer",
            Kind::Station => "service station",
        }
    }
}

/// Resolves `reference` to one record of `kind`. `branch` narrows a member
/// found by name (an org code or full name); it is ignored otherwise.
pub fn resolve(
    conn: &Connection,
    ctx: &Ctx<'_>,
    kind: Kind,
    reference: &str,
    branch: &str,
) -> Result<Resolved, Error> {
    let reference = reference.trim();
    if reference.is_empty() {
        return Err(Error::invalid(format!(
            "no {} given: name one by id, or as `liaisonctl {} list` shows",
            kind.noun(),
            list_noun(kind)
        )));
    }
    match kind {
        Kind::Member => member(conn, ctx, reference, branch.trim()),
        Kind::Transfer => transfer(conn, reference),
        Kind::Agreement => agreement(conn, reference),
        Kind::Org => org(conn, reference),
        Kind::Peer => peer(conn, reference),
        Kind::Station => station(conn, reference),
    }
}

fn list_noun(kind: Kind) -> &'static str {
    match kind {
        Kind::Member => "member",
        Kind::Transfer => "transfer",
        Kind::Agreement => "agreement",
        Kind::Org => "org",
        Kind::Peer => "peer",
        Kind::Station => "station",
    }
}

/// One candidate, or a refusal naming all of them (or none).
fn one(
    kind: Kind,
    reference: &str,
    mut found: Vec<Resolved>,
    narrow: &str,
    unknown: impl FnOnce() -> String,
) -> Result<Resolved, Error> {
    found.sort_by(|a, b| a.label.cmp(&b.label));
    found.dedup_by(|a, b| a.id == b.id);
    match found.len() {
        0 => Err(Error::not_found(unknown())),
        1 => Ok(found.remove(0)),
        _ => Err(Error::Refused(Refusal::Ambiguous {
            reference: reference.to_owned(),
            noun: kind.noun(),
            candidates: found.into_iter().map(|r| r.label).collect(),
            narrow: narrow.to_owned(),
        })),
    }
}

/// The shortest prefix of `id` (at least [`ID_PREFIX_MIN`] characters)
/// that no other id in `table` shares: ids are time-ordered UUIDs, so ids
/// made in the same minute share their first characters, and a prefix that
/// names one record must reach past them. The neighbours in sorted order
/// are the ids sharing the longest prefix.
fn unique_prefix(conn: &Connection, table: &str, column: &str, id: &str) -> Result<String, Error> {
    let neighbour = |sql: &str| -> Result<Option<String>, Error> {
        Ok(conn
            .prepare_cached(&sql.replace("{table}", table).replace("{column}", column))?
            .query_row([id], |r| r.get(0))
            .optional()?)
    };
    let before = neighbour(
        "SELECT {column} FROM {table} WHERE {column} < ?1 ORDER BY {column} DESC LIMIT 1",
    )?;
    let after =
        neighbour("SELECT {column} FROM {table} WHERE {column} > ?1 ORDER BY {column} LIMIT 1")?;
    let shared = |other: &Option<String>| {
        other.as_deref().map_or(0, |o| {
            id.bytes()
                .zip(o.bytes())
                .take_while(|(a, b)| a == b)
                .count()
        })
    };
    let length = (shared(&before).max(shared(&after)) + 1).max(ID_SHOWN);
    Ok(id.get(..length).unwrap_or(id).to_owned())
}

/// A member's id as a label shows it: unique among members and hosted copies.
fn short_member_id(conn: &Connection, id: &str) -> Result<String, Error> {
    let a = unique_prefix(conn, "members", "member_id", id)?;
    let b = unique_prefix(conn, "home_copies", "member_id", id)?;
    Ok(if a.len() >= b.len() { a } else { b })
}

/// Whether `text` can be an id prefix: hex digits and dashes, long enough.
fn is_id_prefix(text: &str) -> bool {
    text.len() >= ID_PREFIX_MIN && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// The ids of `table`'s `column` that start with `prefix` (ids are
/// lowercase; a range query, so the primary key's index serves it).
fn ids_with_prefix(
    conn: &Connection,
    table: &str,
    column: &str,
    prefix: &str,
) -> Result<Vec<String>, Error> {
    let prefix = prefix.to_ascii_lowercase();
    let upper = format!("{prefix}\u{ffff}");
    let ids = conn
        .prepare_cached(&format!(
            "SELECT {column} FROM {table} WHERE {column} >= ?1 AND {column} < ?2 ORDER BY {column} LIMIT 20"
        ))?
        .query_map(params![prefix, upper], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(ids)
}

// ---------------------------------------------------------------- members

/// A member's label: name, branch, birth year, id prefix; a hosted copy
/// names its owner; a tombstone where the member went.
fn member_label(conn: &Connection, ctx: &Ctx<'_>, member_id: &str) -> Result<String, Error> {
    let owned: Option<(String, String, String, String, String)> = conn
        .prepare_cached(
            "SELECT m.owner, m.name, COALESCE(o.name, m.home_branch), substr(m.birth_date, 1, 4), m.moved_to_node || m.moved_to_place
             FROM members m LEFT JOIN orgs o ON o.org_id = m.home_branch WHERE m.member_id = ?1",
        )?
        .query_row([member_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    if let Some((owner, name, branch, year, moved)) = owned {
        if owner == ctx.me.as_str() {
            return Ok(format!(
                "{name} · {branch} · born {year} · {}",
                short_member_id(conn, member_id)?
            ));
        }
        return Ok(format!(
            "(transferred to {}) · {}",
            if moved.is_empty() { owner } else { moved },
            short_member_id(conn, member_id)?
        ));
    }
    let copy: Option<(String, String, String, i64)> = conn
        .prepare_cached(
            "SELECT owner, name, home_branch_name, birth_year FROM home_copies WHERE member_id = ?1",
        )?
        .query_row([member_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    Ok(match copy {
        Some((owner, name, branch, year)) => format!(
            "{name} · {branch} ({owner}'s member, hosted here) · born {year} · {}",
            short_member_id(conn, member_id)?
        ),
        None => short_member_id(conn, member_id)?,
    })
}

fn member_resolved(conn: &Connection, ctx: &Ctx<'_>, id: String) -> Result<Resolved, Error> {
    Ok(Resolved {
        label: member_label(conn, ctx, &id)?,
        id,
    })
}

fn member(
    conn: &Connection,
    ctx: &Ctx<'_>,
    reference: &str,
    branch: &str,
) -> Result<Resolved, Error> {
    let exact: Option<String> = conn
        .prepare_cached(
            "SELECT member_id FROM members WHERE member_id = ?1
             UNION SELECT member_id FROM home_copies WHERE member_id = ?1",
        )?
        .query_row([reference.to_ascii_lowercase()], |r| r.get(0))
        .optional()?;
    if let Some(id) = exact {
        return member_resolved(conn, ctx, id);
    }
    // A national ID number is all digits, so it is looked for before an
    // id prefix (ids are hex).
    if looks_like_national_id(reference) {
        let ids: Vec<String> = conn
            .prepare_cached(
                "SELECT member_id FROM members WHERE national_id = ?1 AND national_id <> '' AND owner = ?2 ORDER BY member_id",
            )?
            .query_map(params![reference.to_ascii_uppercase(), ctx.me.as_str()], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let found = ids
            .into_iter()
            .map(|id| member_resolved(conn, ctx, id))
            .collect::<Result<Vec<_>, _>>()?;
        return one(Kind::Member, reference, found, "give the id", || {
            format!("no member this node owns has the ID number {reference} (members hosted for other nodes are found by name or id)")
        });
    }
    if is_id_prefix(reference) {
        let mut ids = ids_with_prefix(conn, "members", "member_id", reference)?;
        ids.extend(ids_with_prefix(
            conn,
            "home_copies",
            "member_id",
            reference,
        )?);
        let found = ids
            .into_iter()
            .map(|id| member_resolved(conn, ctx, id))
            .collect::<Result<Vec<_>, _>>()?;
        return one(
            Kind::Member,
            reference,
            found,
            "give more of the id",
            || {
                format!("no member here has an id starting with `{reference}`: `liaisonctl member list` shows the members")
            },
        );
    }
    let branch_id = if branch.is_empty() {
        None
    } else {
        Some(org(conn, branch)?)
    };
    let mut ids: Vec<String> = conn
        .prepare_cached(
            "SELECT member_id FROM members WHERE name = ?1 AND owner = ?2 AND (?3 = '' OR home_branch = ?3)
             ORDER BY member_id",
        )?
        .query_map(
            params![
                reference,
                ctx.me.as_str(),
                branch_id.as_ref().map_or("", |b| b.id.as_str())
            ],
            |r| r.get(0),
        )?
        .collect::<Result<_, _>>()?;
    ids.extend(
        conn.prepare_cached(
            "SELECT member_id FROM home_copies WHERE name = ?1 AND (?2 = '' OR home_branch_name = ?2)
             ORDER BY member_id",
        )?
        .query_map(params![reference, branch.trim()], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?,
    );
    let found = ids
        .into_iter()
        .map(|id| member_resolved(conn, ctx, id))
        .collect::<Result<Vec<_>, _>>()?;
    let narrow = if branch.is_empty() {
        "give the id prefix shown, or narrow with --branch"
    } else {
        "give the id prefix shown"
    };
    one(Kind::Member, reference, found, narrow, || {
        if branch.is_empty() {
            format!("no member here is named {reference}: `liaisonctl member list --name {reference}` finds names containing it")
        } else {
            format!("no member of {branch} here is named {reference}")
        }
    })
}

/// Eighteen characters, the last a digit or X: what a national ID number
/// looks like (its check digit is checked where one is entered).
fn looks_like_national_id(text: &str) -> bool {
    text.len() == 18
        && text[..17].chars().all(|c| c.is_ascii_digit())
        && text[17..]
            .chars()
            .all(|c| c.is_ascii_digit() || c == 'X' || c == 'x')
}

// -------------------------------------------------------------- transfers

fn transfer_resolved(conn: &Connection, id: String) -> Result<Resolved, Error> {
    let label: Option<String> = conn
        .prepare_cached(
            "SELECT letter_no || ' · ' || CASE direction WHEN 'outgoing' THEN 'to ' || receiver ELSE 'from ' || sender END
                 || ' · ' || CASE member_name WHEN '' THEN '-' ELSE member_name END || ' · ' || state
             FROM transfers WHERE transfer_id = ?1",
        )?
        .query_row([&id], |r| r.get(0))
        .optional()?;
    Ok(Resolved {
        label: format!(
            "{} · {}",
            label.unwrap_or_default(),
            unique_prefix(conn, "transfers", "transfer_id", &id)?
        ),
        id,
    })
}

fn transfer(conn: &Connection, reference: &str) -> Result<Resolved, Error> {
    let mut ids: Vec<String> = conn
        .prepare_cached(
            "SELECT transfer_id FROM transfers WHERE transfer_id = ?1 OR letter_no = ?2 ORDER BY transfer_id",
        )?
        .query_map(
            params![reference.to_ascii_lowercase(), reference.to_uppercase()],
            |r| r.get(0),
        )?
        .collect::<Result<_, _>>()?;
    if ids.is_empty() && is_id_prefix(reference) {
        ids = ids_with_prefix(conn, "transfers", "transfer_id", reference)?;
    }
    let mut narrow = "give the id prefix shown (a restored sender issued this letter number twice)";
    if ids.is_empty() {
        // The member's name, as on the letter: its open transfer, else
        // every transfer of that name.
        let by_name = |open_only: bool| -> Result<Vec<String>, Error> {
            Ok(conn
                .prepare_cached(
                    "SELECT transfer_id FROM transfers WHERE member_name = ?1
                       AND (NOT ?2 OR state IN ('offered', 'pending', 'accepted'))
                     ORDER BY transfer_id",
                )?
                .query_map(params![reference, open_only], |r| r.get(0))?
                .collect::<Result<_, _>>()?)
        };
        ids = by_name(true)?;
        if ids.is_empty() {
            ids = by_name(false)?;
        }
        narrow = "give the letter number shown";
    }
    let found = ids
        .into_iter()
        .map(|id| transfer_resolved(conn, id))
        .collect::<Result<Vec<_>, _>>()?;
    one(Kind::Transfer, reference, found, narrow, || {
        format!("no transfer here has the letter number, member name or id `{reference}`: `liaisonctl transfer list` shows them")
    })
}

// ------------------------------------------------------------- agreements

fn agreement_resolved(conn: &Connection, id: String) -> Result<Resolved, Error> {
    let label: Option<String> = conn
        .prepare_cached(
            "SELECT number || ' · ' || outflow_node || ' ↔ ' || inflow_node || ' · ' || state
             FROM agreements WHERE agreement_id = ?1",
        )?
        .query_row([&id], |r| r.get(0))
        .optional()?;
    Ok(Resolved {
        label: format!(
            "{} · {}",
            label.unwrap_or_default(),
            unique_prefix(conn, "agreements", "agreement_id", &id)?
        ),
        id,
    })
}

fn agreement(conn: &Connection, reference: &str) -> Result<Resolved, Error> {
    let mut ids: Vec<String> = conn
        .prepare_cached(
            "SELECT agreement_id FROM agreements WHERE agreement_id = ?1 OR number = ?2 ORDER BY agreement_id",
        )?
        .query_map(params![reference.to_ascii_lowercase(), reference], |r| {
            r.get(0)
        })?
        .collect::<Result<_, _>>()?;
    if ids.is_empty() && is_id_prefix(reference) {
        ids = ids_with_prefix(conn, "agreements", "agreement_id", reference)?;
    }
    let found = ids
        .into_iter()
        .map(|id| agreement_resolved(conn, id))
        .collect::<Result<Vec<_>, _>>()?;
    one(
        Kind::Agreement,
        reference,
        found,
        "give the id prefix shown",
        || {
            format!("no agreement here has the number or id `{reference}`: `liaisonctl agreement list` shows them")
        },
    )
}

// ------------------------------------------------- organizations and peers

/// The rows `sql` (selecting an id and a name, with `?1` the reference)
/// finds, labelled `id · name`.
fn by_id_or_name(conn: &Connection, sql: &str, reference: &str) -> Result<Vec<Resolved>, Error> {
    Ok(conn
        .prepare_cached(sql)?
        .query_map([reference], |r| {
            let id: String = r.get(0)?;
            let name: String = r.get(1)?;
            Ok(Resolved {
                label: format!("{id} · {name}"),
                id,
            })
        })?
        .collect::<Result<_, _>>()?)
}

fn org(conn: &Connection, reference: &str) -> Result<Resolved, Error> {
    let found = by_id_or_name(
        conn,
        "SELECT org_id, name FROM orgs WHERE org_id = ?1 OR name = ?1 ORDER BY org_id",
        reference,
    )?;
    one(Kind::Org, reference, found, "give the code", || {
        format!("no organization here has the code or name `{reference}`: `liaisonctl org list` shows them")
    })
}

fn peer(conn: &Connection, reference: &str) -> Result<Resolved, Error> {
    let found = by_id_or_name(
        conn,
        "SELECT node_id, display_name FROM peers WHERE node_id = ?1 OR display_name = ?1 ORDER BY node_id",
        reference,
    )?;
    one(Kind::Peer, reference, found, "give the node id", || {
        format!("no peer of this node has the id or name `{reference}`: `liaisonctl peer list` shows them")
    })
}

fn station(conn: &Connection, reference: &str) -> Result<Resolved, Error> {
    let found = by_id_or_name(
        conn,
        "SELECT code, name FROM stations WHERE code = ?1 OR name = ?1 ORDER BY code",
        reference,
    )?;
    one(Kind::Station, reference, found, "give the code", || {
        format!("no service station here has the code or name `{reference}`: `liaisonctl station list` shows them")
    })
}

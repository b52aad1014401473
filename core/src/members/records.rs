//! Members' home sections as this node holds them (owned, or a tombstone
//! with a forward pointer), and whether the owner may edit one now.

use liaison_proto::v1 as pb;
use rusqlite::Row;
use rusqlite::{params, Connection, OptionalExtension};

use super::copies::load_copy;
use crate::letters::LetterNo;
use crate::{Ctx, Error};

pub(super) fn not_found(member_id: &str) -> Error {
    Error::not_found(format!(
        "no member {member_id} on this node: `member list` shows the members"
    ))
}

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

impl HomeRecord {
    /// The fields an operator edits, by the names of the roster's columns
    /// (`liaison_types::sheet::MEMBER_COLUMNS`), in their order.
    pub fn roster_fields(&self) -> [(&'static str, &str); 16] {
        [
            ("name", &self.name),
            ("gender", &self.gender),
            ("birth_date", &self.birth_date),
            ("ethnicity", &self.ethnicity),
            ("native_place", &self.native_place),
            ("national_id", &self.national_id),
            ("education", &self.education),
            ("occupation", &self.occupation),
            ("origin", &self.origin),
            ("party_status", &self.party_status),
            ("joined_on", &self.joined_on),
            ("full_member_on", &self.full_member_on),
            ("home_branch", &self.home_branch),
            ("phone", &self.phone),
            ("home_address", &self.home_address),
            ("membership_state", &self.membership_state),
        ]
    }
}

pub(super) const HOME_COLUMNS: &str = "member_id, owner, generation, counter, name, gender, birth_date, ethnicity, native_place,
    national_id, education, occupation, origin, party_status, joined_on, full_member_on, home_branch, phone,
    home_address, membership_state, contact_status, contact_manual, contact_manual_at, created_at_ms, updated_at_ms";

fn read_home(r: &Row<'_>) -> rusqlite::Result<HomeRecord> {
    read_home_at(r, 0)
}

/// A [`HomeRecord`] from the columns of [`HOME_COLUMNS`] at `at` onwards.
pub(super) fn read_home_at(r: &Row<'_>, at: usize) -> rusqlite::Result<HomeRecord> {
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
    // Built once: a host asks for every copy it applies.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("SELECT {HOME_COLUMNS} FROM members WHERE member_id = ?1")
    });
    Ok(conn
        .prepare_cached(&SQL)?
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

/// [`save_home`]'s write of a new version in place: every column that no
/// index of `members` holds, set; the indexed ones, compared. SQLite
/// rewrites an index's entry whenever an UPDATE sets one of its columns,
/// changed or not, so a version that changes only unindexed columns (a
/// phone, an address, the contact status) leaves the indexes alone; a row
/// that differs in an indexed column (or no row) changes nothing here and
/// takes the upsert. A test checks both against the schema and the upsert.
const SAVE_HOME_IN_PLACE: &str = "UPDATE members SET generation = ?3, counter = ?4, gender = ?6,
    birth_date = ?7, ethnicity = ?8, native_place = ?9, education = ?11, occupation = ?12, origin = ?13,
    party_status = ?14, full_member_on = ?16, phone = ?18, home_address = ?19, contact_status = ?21,
    contact_manual = ?22, contact_manual_at = ?23, updated_at_ms = ?25, moved_to_node = '',
    moved_to_place = '', moved_transfer_id = '', moved_letter_no = '', moved_away_since = '',
    moved_away_place = ''
 WHERE member_id = ?1 AND owner = ?2 AND name = ?5 AND national_id = ?10 AND joined_on = ?15
   AND home_branch = ?17 AND membership_state = ?20 AND moved_on = ''";

pub(super) fn save_home(conn: &Connection, m: &HomeRecord) -> Result<(), Error> {
    let in_place = conn
        .prepare_cached(SAVE_HOME_IN_PLACE)?
        .execute(home_params(m))?;
    if in_place == 1 {
        return Ok(());
    }
    conn.prepare_cached(&format!(
        // An upsert, not INSERT OR REPLACE: a replace deletes the row first,
        // which makes SQLite check every child table's foreign keys (a scan
        // of outflows per write). A live home section clears any tombstone.
        "INSERT INTO members ({HOME_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)
         ON CONFLICT (member_id) DO UPDATE SET owner = excluded.owner, generation = excluded.generation, counter = excluded.counter, name = excluded.name, gender = excluded.gender, birth_date = excluded.birth_date, ethnicity = excluded.ethnicity, native_place = excluded.native_place, national_id = excluded.national_id, education = excluded.education, occupation = excluded.occupation, origin = excluded.origin, party_status = excluded.party_status, joined_on = excluded.joined_on, full_member_on = excluded.full_member_on, home_branch = excluded.home_branch, phone = excluded.phone, home_address = excluded.home_address, membership_state = excluded.membership_state, contact_status = excluded.contact_status, contact_manual = excluded.contact_manual, contact_manual_at = excluded.contact_manual_at, updated_at_ms = excluded.updated_at_ms,
             moved_to_node = '', moved_to_place = '', moved_transfer_id = '', moved_letter_no = '', moved_on = '',
             moved_away_since = '', moved_away_place = ''"
    ))?
    .execute(home_params(m))?;
    Ok(())
}

/// [`HomeRecord`]'s fields in the order of [`HOME_COLUMNS`], as the
/// parameters ?1 to ?25 of [`save_home`]'s statements.
fn home_params(m: &HomeRecord) -> [&dyn rusqlite::ToSql; 25] {
    [
        &m.member_id,
        &m.owner,
        &m.generation,
        &m.counter,
        &m.name,
        &m.gender,
        &m.birth_date,
        &m.ethnicity,
        &m.native_place,
        &m.national_id,
        &m.education,
        &m.occupation,
        &m.origin,
        &m.party_status,
        &m.joined_on,
        &m.full_member_on,
        &m.home_branch,
        &m.phone,
        &m.home_address,
        &m.membership_state,
        &m.contact_status,
        &m.contact_manual,
        &m.contact_manual_at,
        &m.created_at_ms,
        &m.updated_at_ms,
    ]
}

/// How many earlier owners of a member a node keeps and sends on: a member
/// moves a few times in a working life; the oldest are dropped past this.
const EARLIER_OWNERS_MAX: usize = 16;

/// The nodes that owned `member_id` before this node's latest generation
/// of it, oldest first (empty for a member not held here).
pub fn earlier_owners(conn: &Connection, member_id: &str) -> Result<Vec<String>, Error> {
    let owners: Option<String> = conn
        .prepare_cached("SELECT earlier_owners FROM members WHERE member_id = ?1")?
        .query_row([member_id], |r| r.get(0))
        .optional()?;
    Ok(owners
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect())
}

/// Records that `member_id` came here by a release from `sender`, which
/// named `reported` as the owners before it: each node once, oldest first,
/// this node left out, at most [`EARLIER_OWNERS_MAX`] (the latest).
pub fn note_earlier_owners(
    conn: &Connection,
    me: &str,
    member_id: &str,
    reported: &[String],
    sender: &str,
) -> Result<(), Error> {
    let mut owners: Vec<String> = Vec::new();
    let known = earlier_owners(conn, member_id)?;
    for node in known
        .iter()
        .chain(reported)
        .map(String::as_str)
        .chain([sender])
    {
        owners.retain(|o| o != node);
        if node != me && !node.is_empty() && !node.contains(char::is_whitespace) {
            owners.push(node.to_owned());
        }
    }
    let keep_from = owners.len().saturating_sub(EARLIER_OWNERS_MAX);
    conn.prepare_cached("UPDATE members SET earlier_owners = ?2 WHERE member_id = ?1")?
        .execute(params![member_id, owners[keep_from..].join(" ")])?;
    Ok(())
}

/// Where a member transferred away went, if it was.
pub fn moved_of(conn: &Connection, member_id: &str) -> Result<Option<pb::MovedView>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT moved_to_node, moved_to_place, moved_transfer_id, moved_letter_no, moved_on, generation
             FROM members WHERE member_id = ?1 AND (moved_to_node <> '' OR moved_to_place <> '')",
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

/// Loads a member whose home section this node owns, or says who owns it.
/// Loads a member this node owns and may edit: not a copy, not a
/// tombstone, not frozen by an open transfer offer.
pub fn load_owned(conn: &Connection, ctx: &Ctx<'_>, member_id: &str) -> Result<HomeRecord, Error> {
    if let Some(home) = load_home(conn, member_id)? {
        if home.owner == ctx.me.as_str() {
            if let Some((transfer_id, letter_no, receiver)) = frozen_by(conn, member_id)? {
                return Err(Error::conflict(format!(
                    "member {member_id} is frozen while transfer {transfer_id} (letter {letter_no}) to {receiver} is open: `transfer cancel {transfer_id}` first, or wait for it"
                )));
            }
            return Ok(home);
        }
        if let Some(moved) = moved_of(conn, member_id)? {
            if moved.transfer_id.is_empty() {
                return Err(Error::conflict(format!(
                    "member {member_id} belongs to {} since a release this node's restore forgot (learned at reconciliation; `audit list` has the conflict): it is theirs now",
                    moved.to_node
                )));
            }
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

/// The open outgoing transfer that freezes `member_id`, if any.
pub fn frozen_by(
    conn: &Connection,
    member_id: &str,
) -> Result<Option<(String, String, String)>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT transfer_id, letter_no, receiver FROM transfers
             WHERE member_id = ?1 AND direction = 'outgoing' AND state = 'offered'",
        )?
        .query_row([member_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?)
}

/// The release that gave a member its generation: its letter number and
/// transfer id, each '' where not known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseRef {
    pub letter_no: String,
    pub transfer_id: String,
}

/// The release that gave `member_id` its `generation` here, from its row
/// as read (`owner`, and for a tombstone the `moved` release it records):
/// for a member this node owns, the completed incoming transfer released
/// at that generation (the latest, should one generation have come
/// twice); for a tombstone, the one it records. Empty where none is
/// known (a member added here, or a tombstone of a release no peer
/// reported).
pub fn letter_of_generation(
    conn: &Connection,
    me: &str,
    member_id: &str,
    owner: &str,
    generation: u64,
    moved: ReleaseRef,
) -> Result<ReleaseRef, Error> {
    if owner != me {
        return Ok(moved);
    }
    // Generation 1 is the member's creation: no release gave it.
    if generation <= 1 {
        return Ok(ReleaseRef::default());
    }
    let releases: Vec<ReleaseRef> = conn
        .prepare_cached(
            "SELECT letter_no, transfer_id FROM transfers WHERE direction = 'incoming' AND state = 'completed'
               AND member_id = ?1 AND released_generation = ?2",
        )?
        .query_map(params![member_id, generation], |r| {
            Ok(ReleaseRef {
                letter_no: r.get(0)?,
                transfer_id: r.get(1)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(releases
        .into_iter()
        .max_by(|a, b| {
            (LetterNo::place_of(&a.letter_no), &a.transfer_id)
                .cmp(&(LetterNo::place_of(&b.letter_no), &b.transfer_id))
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::store::Store;

    /// The columns an UPDATE's `SET` list names.
    fn set_columns(sql: &str) -> BTreeSet<String> {
        let set = &sql[sql.find(" SET ").unwrap() + 5..];
        let set = set.split(" WHERE ").next().unwrap();
        set.split(',')
            .map(|part| part.split('=').next().unwrap().trim().to_owned())
            .collect()
    }

    /// [`SAVE_HOME_IN_PLACE`] sets no column an index of `members` holds
    /// (else it would rewrite that index's entries, and could leave a stale
    /// one), and names every column the upsert writes: set to the same
    /// value, or compared.
    #[test]
    fn a_version_in_place_sets_no_indexed_column_and_misses_none() {
        let store = Store::open_in_memory(0).unwrap();
        let indexed: BTreeSet<String> = store
            .with(|c| {
                let names: Vec<String> = c
                    .prepare("SELECT name FROM pragma_index_list('members')")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                let mut columns = BTreeSet::new();
                for name in names {
                    let mut stmt = c.prepare("SELECT name FROM pragma_index_info(?1)")?;
                    for column in stmt.query_map([&name], |r| r.get::<_, Option<String>>(0))? {
                        // An index on an expression names no column: none is
                        // allowed, since it could read any.
                        columns.insert(column?.expect("indexes on columns only"));
                    }
                }
                Ok(columns)
            })
            .unwrap();
        assert!(
            indexed.contains("home_branch"),
            "the indexes were read: {indexed:?}"
        );
        let in_place = set_columns(SAVE_HOME_IN_PLACE);
        let both: Vec<&String> = in_place.intersection(&indexed).collect();
        assert!(both.is_empty(), "indexed columns set in place: {both:?}");
        let condition = SAVE_HOME_IN_PLACE.split(" WHERE ").nth(1).unwrap();
        for column in indexed {
            assert!(
                condition.contains(&format!("{column} = ")),
                "the in-place write does not compare the indexed column {column}"
            );
        }
        let upsert: BTreeSet<String> = HOME_COLUMNS
            .split(',')
            .map(|c| c.trim().to_owned())
            .chain(
                [
                    "moved_to_node",
                    "moved_to_place",
                    "moved_transfer_id",
                    "moved_letter_no",
                    "moved_on",
                    "moved_away_since",
                    "moved_away_place",
                ]
                .map(str::to_owned),
            )
            .filter(|c| c != "created_at_ms")
            .collect();
        for column in upsert {
            assert!(
                in_place.contains(&column) || condition.contains(&format!("{column} = ")),
                "the in-place write leaves {column} as it was, the upsert does not"
            );
        }
    }
}

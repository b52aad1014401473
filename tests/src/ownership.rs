//! The invariant of docs/transfers.md, stated as code the end-to-end tests call:
//! **at no instant do two nodes both consider themselves the owner of a
//! member; once messages get through, exactly one does, and its record
//! equals what the sender held when it released.**
//!
//! Everything here reads the nodes' SQLite files read-only, the way an
//! outside auditor would: a running node is not disturbed (WAL mode lets
//! readers in), and a killed node's file can be read just the same.
//!
//! - [`violations`] looks for members claimed by two nodes at one instant.
//!   The files of several nodes cannot be read at one instant, so a claim
//!   seen in one pass is confirmed by a second pass (see [`violations`] for
//!   why that proves two owners at one instant, and never accuses a correct
//!   handoff that merely happened between two reads).
//! - [`Watch`] runs [`violations`] in a background thread for the whole of a
//!   test, so a double ownership that lasts only between two test steps is
//!   caught too.
//! - [`converged`] is the end state of one member: a single owner whose
//!   record is the released one, and every transfer of the member final on
//!   both sides, with the receivers' copies of the offers purged.
//!
//! A node owns a member when its `members` row names itself as `owner`; a
//! tombstone names the node the member went to (or the place, for a paper
//! transfer), and a host's copy lives in `home_copies`, so neither counts.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use liaison_proto::v1 as pb;
use prost::Message;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

/// One node's database file, as the checks read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDb {
    pub node_id: String,
    pub path: PathBuf,
}

impl NodeDb {
    pub fn new(node_id: &str, path: impl Into<PathBuf>) -> NodeDb {
        NodeDb {
            node_id: node_id.to_owned(),
            path: path.into(),
        }
    }

    /// The node's database read-only, or `None` if the node never created
    /// it.
    fn open(&self) -> rusqlite::Result<Option<Connection>> {
        if !self.path.exists() {
            return Ok(None);
        }
        open_read_only(&self.path).map(Some)
    }
}

impl From<&crate::TestNode> for NodeDb {
    fn from(node: &crate::TestNode) -> NodeDb {
        NodeDb::new(&node.node_id, node.db_path())
    }
}

/// The databases of `nodes`, for the checks.
pub fn dbs(nodes: &[&crate::TestNode]) -> Vec<NodeDb> {
    nodes.iter().map(|n| NodeDb::from(*n)).collect()
}

/// Opens a database read-only (so it cannot disturb the node that writes
/// it), waiting up to 5 s for a lock held during a node's WAL recovery.
pub fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// A node's claim: it considers itself the owner of `member_id`, at this
/// ownership generation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Claim {
    pub node_id: String,
    pub member_id: String,
    pub generation: u64,
}

/// Every member `db`'s node considers its own (tombstones and host copies
/// excluded).
pub fn claims(db: &NodeDb) -> rusqlite::Result<Vec<Claim>> {
    let Some(conn) = db.open()? else {
        return Ok(Vec::new());
    };
    let mut stmt = conn
        .prepare("SELECT member_id, generation FROM members WHERE owner = ?1 ORDER BY member_id")?;
    let rows = stmt.query_map([&db.node_id], |r| {
        Ok(Claim {
            node_id: db.node_id.clone(),
            member_id: r.get(0)?,
            generation: r.get(1)?,
        })
    })?;
    rows.collect()
}

/// Two or more nodes considered themselves the owner of one member at the
/// same instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub member_id: String,
    /// The owners, with the generation each claimed.
    pub owners: Vec<(String, u64)>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let owners: Vec<String> = self
            .owners
            .iter()
            .map(|(node, generation)| format!("{node} (generation {generation})"))
            .collect();
        write!(
            f,
            "member {} is owned by {} at once",
            self.member_id,
            owners.join(" and ")
        )
    }
}

/// Reads every node's claims, in the order of `nodes`.
fn read_pass(nodes: &[NodeDb]) -> rusqlite::Result<BTreeMap<String, BTreeMap<String, u64>>> {
    let mut by_member: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for node in nodes {
        for claim in claims(node)? {
            by_member
                .entry(claim.member_id)
                .or_default()
                .insert(claim.node_id, claim.generation);
        }
    }
    Ok(by_member)
}

/// The members that two or more of `nodes` owned at one instant.
///
/// The files are read one after the other, never at one instant, so one
/// pass alone could accuse a correct handoff: read the sender before its
/// release and the receiver after applying it, and both look like owners.
/// So a member claimed twice in a first pass is read again in a second pass
/// (same order), and only the owners whose claim is unchanged — same
/// ownership generation — are kept. That is proof: a node loses a member
/// only by releasing it (its row becomes a tombstone naming the receiver),
/// and gets it back only through a release of a higher generation, so a
/// node that claimed generation g at its reads x₁ and x₂ owned the member
/// throughout [x₁, x₂]. For two such nodes X (read first) and Y, the read
/// y₁ falls inside [x₁, x₂]: at the instant y₁ both owned. (The one
/// legitimate exception, docs/restore.md's `reconcile --without-peer`, is not
/// something these checks expect.)
pub fn violations(nodes: &[NodeDb]) -> rusqlite::Result<Vec<Violation>> {
    let first = read_pass(nodes)?;
    let suspects: BTreeSet<&String> = first
        .iter()
        .filter(|(_, owners)| owners.len() > 1)
        .map(|(member, _)| member)
        .collect();
    if suspects.is_empty() {
        return Ok(Vec::new());
    }
    let second = read_pass(nodes)?;
    let mut found = Vec::new();
    for member in suspects {
        let (Some(before), Some(after)) = (first.get(member), second.get(member)) else {
            continue;
        };
        let steady: Vec<(String, u64)> = before
            .iter()
            .filter(|(node, generation)| after.get(*node) == Some(*generation))
            .map(|(node, generation)| (node.clone(), *generation))
            .collect();
        if steady.len() > 1 {
            found.push(Violation {
                member_id: member.clone(),
                owners: steady,
            });
        }
    }
    Ok(found)
}

/// Panics if two of `nodes` own one member at once; `step` names the moment
/// in the panic message.
pub fn assert_single_owner(nodes: &[NodeDb], step: &str) {
    let found =
        violations(nodes).unwrap_or_else(|e| panic!("{step}: cannot read the databases: {e}"));
    assert!(
        found.is_empty(),
        "{step}: the single-owner invariant is broken:\n{}",
        found
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// ---------------------------------------------------------------- watch

/// [`violations`] run in a background thread, every few milliseconds, for
/// as long as the watch lives: catches a double ownership however briefly it
/// lasts between the steps of a test (as long as it lasts across two passes).
#[derive(Debug)]
pub struct Watch {
    stop: Arc<AtomicBool>,
    passes: Arc<AtomicU64>,
    found: Arc<Mutex<Vec<Violation>>>,
    errors: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

/// What a [`Watch`] saw.
#[derive(Debug, Clone)]
pub struct WatchReport {
    pub passes: u64,
    pub violations: Vec<Violation>,
    /// Reads that failed (a node's file mid-recovery, say), retried on the
    /// next pass.
    pub read_errors: Vec<String>,
}

impl Watch {
    /// Starts watching `nodes` every `every`.
    pub fn start(nodes: Vec<NodeDb>, every: Duration) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let passes = Arc::new(AtomicU64::new(0));
        let found: Arc<Mutex<Vec<Violation>>> = Arc::default();
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let thread = {
            let (stop, passes, found, errors) =
                (stop.clone(), passes.clone(), found.clone(), errors.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match violations(&nodes) {
                        Ok(seen) => {
                            let mut found = found.lock().unwrap_or_else(|e| e.into_inner());
                            for v in seen {
                                if !found.contains(&v) {
                                    found.push(v);
                                }
                            }
                        }
                        Err(e) => {
                            let mut errors = errors.lock().unwrap_or_else(|e| e.into_inner());
                            if errors.len() < 20 {
                                errors.push(e.to_string());
                            }
                        }
                    }
                    passes.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(every);
                }
            })
        };
        Watch {
            stop,
            passes,
            found,
            errors,
            thread: Some(thread),
        }
    }

    /// Watches the databases of `nodes` every 20 ms.
    pub fn nodes(nodes: &[&crate::TestNode]) -> Watch {
        Watch::start(dbs(nodes), Duration::from_millis(20))
    }

    /// The violations seen so far.
    pub fn violations(&self) -> Vec<Violation> {
        self.found.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Panics if a violation was seen so far (`step` names the moment).
    pub fn assert_clean(&self, step: &str) {
        let found = self.violations();
        assert!(
            found.is_empty(),
            "{step}: the background watch saw the single-owner invariant broken:\n{}",
            found
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// Stops the thread and reports what it saw.
    pub fn finish(mut self) -> WatchReport {
        self.halt();
        WatchReport {
            passes: self.passes.load(Ordering::SeqCst),
            violations: self.violations(),
            read_errors: self
                .errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.halt();
    }
}

// ----------------------------------------------------------- convergence

/// The end state [`converged`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Converged {
    pub owner: String,
    pub generation: u64,
    /// The release the owner's record was compared with (none if the member
    /// never moved).
    pub release: Option<pb::TransferRelease>,
    /// The transfers of the member, final on both sides.
    pub transfers: usize,
}

/// A transfer row, as either side holds it.
#[derive(Debug, Clone)]
struct TransferRow {
    transfer_id: String,
    direction: String,
    sender: String,
    receiver: String,
    state: String,
    offer_held: bool,
}

fn transfer_rows(conn: &Connection, member_id: &str) -> rusqlite::Result<Vec<TransferRow>> {
    conn.prepare(
        "SELECT transfer_id, direction, sender, receiver, state, offer IS NOT NULL
         FROM transfers WHERE member_id = ?1 ORDER BY created_at_ms, transfer_id",
    )?
    .query_map([member_id], |r| {
        Ok(TransferRow {
            transfer_id: r.get(0)?,
            direction: r.get(1)?,
            sender: r.get(2)?,
            receiver: r.get(3)?,
            state: r.get(4)?,
            offer_held: r.get(5)?,
        })
    })?
    .collect()
}

/// The member's record as `conn`'s node holds it, in the shape of a
/// release (home section, outflows, host sections, contacts, activities).
pub fn record(conn: &Connection, member_id: &str) -> rusqlite::Result<Option<pb::MemberRecord>> {
    let Some(mut m) = conn
        .query_row(
            "SELECT generation, counter, name, gender, birth_date, ethnicity, native_place, national_id,
                    education, occupation, origin, party_status, joined_on, full_member_on, phone,
                    home_address, membership_state
             FROM members WHERE member_id = ?1",
            [member_id],
            |r| {
                Ok(pb::MemberRecord {
                    member_id: member_id.to_owned(),
                    version: Some(pb::Version {
                        generation: r.get(0)?,
                        counter: r.get(1)?,
                    }),
                    name: r.get(2)?,
                    gender: r.get(3)?,
                    birth_date: r.get(4)?,
                    ethnicity: r.get(5)?,
                    native_place: r.get(6)?,
                    national_id: r.get(7)?,
                    education: r.get(8)?,
                    occupation: r.get(9)?,
                    origin: r.get(10)?,
                    party_status: r.get(11)?,
                    joined_on: r.get(12)?,
                    full_member_on: r.get(13)?,
                    phone: r.get(14)?,
                    home_address: r.get(15)?,
                    membership_state: r.get(16)?,
                    ..Default::default()
                })
            },
        )
        .optional()?
    else {
        return Ok(None);
    };
    m.outflows = conn
        .prepare(
            "SELECT outflow_id, destination_place, destination_node, direction, departed_on, expected_return,
                    reason, fixed_location, certificate_no, certificate_issuer, certificate_issued_on, card_no
             FROM outflows WHERE member_id = ?1 ORDER BY outflow_id",
        )?
        .query_map([member_id], |r| {
            Ok(pb::Outflow {
                outflow_id: r.get(0)?,
                destination_place: r.get(1)?,
                destination_node: r.get(2)?,
                direction: r.get(3)?,
                departed_on: r.get(4)?,
                expected_return: r.get(5)?,
                reason: r.get(6)?,
                fixed_location: r.get(7)?,
                certificate_no: r.get(8)?,
                certificate_issuer: r.get(9)?,
                certificate_issued_on: r.get(10)?,
                card_no: r.get(11)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    m.host_sections = conn
        .prepare(
            "SELECT author, generation, counter, host_branch, reported_on, address, employer, industry, job,
                    contact_person, contact_phone, last_seen_at_host, basis, station
             FROM host_sections WHERE member_id = ?1 ORDER BY author",
        )?
        .query_map([member_id], |r| {
            Ok(pb::HostSection {
                member_id: member_id.to_owned(),
                author: r.get(0)?,
                version: Some(pb::Version {
                    generation: r.get(1)?,
                    counter: r.get(2)?,
                }),
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
                station: r.get(13)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    m.contacts = conn
        .prepare(
            "SELECT contact_id, author, at, channel, by_whom, outcome, basis
             FROM contacts WHERE member_id = ?1 ORDER BY contact_id",
        )?
        .query_map([member_id], |r| {
            Ok(pb::ContactEvent {
                contact_id: r.get(0)?,
                member_id: member_id.to_owned(),
                author: r.get(1)?,
                at: r.get(2)?,
                channel: r.get(3)?,
                by: r.get(4)?,
                outcome: r.get(5)?,
                basis: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    m.activities = conn
        .prepare(
            "SELECT activity_id, author, kind, date, branch, hours, note, basis
             FROM activities WHERE member_id = ?1 ORDER BY activity_id",
        )?
        .query_map([member_id], |r| {
            Ok(pb::ActivityRecord {
                activity_id: r.get(0)?,
                member_id: member_id.to_owned(),
                author: r.get(1)?,
                kind: r.get(2)?,
                date: r.get(3)?,
                branch: r.get(4)?,
                hours: r.get(5)?,
                note: r.get(6)?,
                basis: r.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(m))
}

/// The releases of `member_id` that `conn`'s node appended to its log.
pub fn releases(conn: &Connection, member_id: &str) -> rusqlite::Result<Vec<pb::TransferRelease>> {
    let payloads: Vec<Vec<u8>> = conn
        .prepare("SELECT payload FROM events WHERE kind = ?1 ORDER BY seq")?
        .query_map([pb::EventKind::TransferRelease as i32], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(payloads
        .iter()
        .filter_map(|p| pb::TransferRelease::decode(p.as_slice()).ok())
        .filter(|r| r.record.as_ref().is_some_and(|m| m.member_id == member_id))
        .collect())
}

/// The differences between the owner's record and the released one; empty
/// if the owner holds what the sender released.
///
/// The home section must equal the released one field for field while the
/// owner has not edited it since (same version); after an edit, only the
/// version must have moved on. Outflows, host sections, contacts and
/// activities released must all be there (host sections at the released
/// version or a later one of the same author), outflows as released while
/// the home section is (after an edit, by their ids only: a change to an
/// outflow moves the home section's counter); records that reached the
/// owner after the release (relayed by the sender, or new) may be added.
/// A host section's basis names the way it came (the host's agreement, or
/// the transfer it was relayed under), and one version may reach the owner
/// both ways (a host sends its section to a new owner it hosts the member
/// for): at the released version its content is compared, not its basis.
/// The home branch is the receiver's and outflows are closed on arrival, so
/// neither is compared.
pub fn record_differences(released: &pb::TransferRelease, held: &pb::MemberRecord) -> Vec<String> {
    let mut out = Vec::new();
    // The basis a released contact or activity is held under, where it is
    // not the one released:
    // - a record the receiver made itself (as a host before, relayed back
    //   to it by the sender with the transfer as basis) it holds with its
    //   own basis: it is that record's authority;
    // - a record may reach the owner both ways, as a host section does:
    //   relayed by the sender under the transfer (its basis then names the
    //   transfer) in one of the sender's logs, and carried in the release
    //   in another (a sender restored onto a backup of another branch
    //   releases again); held under the transfer, it is the same record.
    let came_by = |author: &str, held: &str, sent: &str| {
        if author == released.receiver || held == released.transfer_id {
            held.to_owned()
        } else {
            sent.to_owned()
        }
    };
    let Some(sent) = released.record.as_ref() else {
        return vec!["the release carries no record".into()];
    };
    let sent_version = sent.version.unwrap_or_default();
    let held_version = held.version.unwrap_or_default();
    if held_version.generation != released.generation {
        out.push(format!(
            "generation {} held, {} released",
            held_version.generation, released.generation
        ));
    }
    if held_version.counter == sent_version.counter {
        let fields: [(&str, &String, &String); 15] = [
            ("name", &held.name, &sent.name),
            ("gender", &held.gender, &sent.gender),
            ("birth_date", &held.birth_date, &sent.birth_date),
            ("ethnicity", &held.ethnicity, &sent.ethnicity),
            ("native_place", &held.native_place, &sent.native_place),
            ("national_id", &held.national_id, &sent.national_id),
            ("education", &held.education, &sent.education),
            ("occupation", &held.occupation, &sent.occupation),
            ("origin", &held.origin, &sent.origin),
            ("party_status", &held.party_status, &sent.party_status),
            ("joined_on", &held.joined_on, &sent.joined_on),
            ("full_member_on", &held.full_member_on, &sent.full_member_on),
            ("phone", &held.phone, &sent.phone),
            ("home_address", &held.home_address, &sent.home_address),
            (
                "membership_state",
                &held.membership_state,
                &sent.membership_state,
            ),
        ];
        for (field, held, sent) in fields {
            // The receiver fills in the default state when none was sent.
            if field == "membership_state" && sent.is_empty() {
                continue;
            }
            if held != sent {
                out.push(format!("{field}: `{held}` held, `{sent}` released"));
            }
        }
    } else if held_version.counter < sent_version.counter {
        out.push(format!(
            "counter {} held, behind the released {}",
            held_version.counter, sent_version.counter
        ));
    }
    // Outflows go with the home section's version: a record the owner
    // holds at a later counter may hold one changed since.
    let newer_held = held_version.counter > sent_version.counter;
    for o in &sent.outflows {
        if !held.outflows.iter().any(|h| {
            h.outflow_id == o.outflow_id
                && (newer_held
                    || h.destination_place == o.destination_place
                        && h.departed_on == o.departed_on
                        && h.certificate_no == o.certificate_no)
        }) {
            out.push(format!("outflow {} released but not held", o.outflow_id));
        }
    }
    for s in &sent.host_sections {
        let v = s.version.unwrap_or_default();
        match held.host_sections.iter().find(|h| h.author == s.author) {
            None => out.push(format!(
                "host section of {} released but not held",
                s.author
            )),
            Some(h) => {
                let hv = h.version.unwrap_or_default();
                if (hv.generation, hv.counter) < (v.generation, v.counter) {
                    out.push(format!(
                        "host section of {} held at {:?}, older than the released {:?}",
                        s.author, hv, v
                    ));
                } else if (hv.generation, hv.counter) == (v.generation, v.counter)
                    && *h
                        != (pb::HostSection {
                            basis: h.basis.clone(),
                            ..s.clone()
                        })
                {
                    out.push(format!(
                        "host section of {} differs at the same version: held {h:?}, released {s:?}",
                        s.author
                    ));
                }
            }
        }
    }
    for c in &sent.contacts {
        let held_as = |h: &pb::ContactEvent| {
            *h == pb::ContactEvent {
                basis: came_by(&c.author, &h.basis, &c.basis),
                ..c.clone()
            }
        };
        if !held.contacts.iter().any(held_as) {
            out.push(format!(
                "contact {} released but not held as released ({c:?})",
                c.contact_id
            ));
        }
    }
    for a in &sent.activities {
        let held_as = |h: &pb::ActivityRecord| {
            *h == pb::ActivityRecord {
                basis: came_by(&a.author, &h.basis, &a.basis),
                ..a.clone()
            }
        };
        if !held.activities.iter().any(held_as) {
            out.push(format!(
                "activity {} released but not held as released ({a:?})",
                a.activity_id
            ));
        }
    }
    out
}

/// Whether `conn`'s node was ever restored from a backup (docs/restore.md).
fn restored(conn: &Connection) -> bool {
    liaison_core::epoch::was_restored(conn).unwrap_or(false)
}

/// Whether `conn`'s node completed an incoming transfer of `member_id`.
fn received_by_transfer(conn: &Connection, member_id: &str) -> rusqlite::Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM transfers WHERE member_id = ?1 AND direction = 'incoming' AND state = 'completed' LIMIT 1",
            [member_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Whether a sender's and a receiver's states of one transfer are final and
/// agree: both completed, or neither (the receiver's rejection may cross the
/// sender's cancel or expiry; the abort that follows leaves it rejected; a
/// receiver restored from a backup taken before it rejected learns of the
/// end from the sender's abort).
fn final_pair(sender: &str, receiver: Option<&str>) -> bool {
    matches!(
        (sender, receiver),
        ("completed", Some("completed"))
            | ("rejected", Some("rejected" | "aborted"))
            | ("expired" | "cancelled", Some("aborted" | "rejected"))
    )
}

/// Checks that `member_id` has converged across `nodes`:
///
/// - exactly one node owns it;
/// - if it ever moved, the owner's record is what the sender of the last
///   release (the one of the owner's generation) held when it released, as
///   [`record_differences`] compares them;
/// - every other node that knows it holds a tombstone, not a claim;
/// - every transfer of the member that a node of `nodes` sent is final on
///   both sides (completed/completed, rejected/rejected, or
///   expired|cancelled/aborted|rejected), and no receiver still holds an offered
///   record (with its ID number).
///
/// Returns what is not (yet) so, to be waited on or reported.
pub fn converged(nodes: &[NodeDb], member_id: &str) -> Result<Converged, String> {
    converged_after_restores(nodes, member_id, false)
}

/// [`converged`], where `releases_forgotten`: every node the member passed
/// through on its way to its owner may have been restored to before it
/// left, so that no node holds the release of the owner's generation. The
/// owner then holds the generation a peer's copy proved at adoption
/// (docs/restore.md, What is lost), with no transfer on record.
pub fn converged_after_restores(
    nodes: &[NodeDb],
    member_id: &str,
    releases_forgotten: bool,
) -> Result<Converged, String> {
    let mut conns = Vec::new();
    for node in nodes {
        match node.open() {
            Ok(Some(conn)) => conns.push((node, conn)),
            Ok(None) => {}
            Err(e) => return Err(format!("cannot read {}'s database: {e}", node.node_id)),
        }
    }
    let sql =
        |node: &NodeDb, e: rusqlite::Error| format!("reading {}'s database: {e}", node.node_id);
    let mut owners = Vec::new();
    for (node, conn) in &conns {
        let owner: Option<String> = conn
            .query_row(
                "SELECT owner FROM members WHERE member_id = ?1",
                [member_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| sql(node, e))?;
        if owner.as_deref() == Some(node.node_id.as_str()) {
            owners.push(node.node_id.clone());
        }
    }
    let [owner] = owners.as_slice() else {
        return Err(format!(
            "member {member_id} has {} owners: {owners:?}",
            owners.len()
        ));
    };
    let (owner_db, owner_conn) = conns
        .iter()
        .find(|(n, _)| &n.node_id == owner)
        .expect("the owner was read");
    let held = record(owner_conn, member_id)
        .map_err(|e| sql(owner_db, e))?
        .expect("the owner holds the member");
    let generation = held.version.unwrap_or_default().generation;

    // The release that made the owner the owner: of its generation, to it.
    let mut release = None;
    for (node, conn) in &conns {
        for r in releases(conn, member_id).map_err(|e| sql(node, e))? {
            if r.receiver != *owner || r.generation != generation {
                continue;
            }
            match &release {
                // The same message re-sent is one release.
                Some(seen) if *seen == r => {}
                Some(seen) => {
                    let seen: &pb::TransferRelease = seen;
                    return Err(format!(
                        "two releases of member {member_id} at generation {generation}: transfers {} and {}",
                        seen.transfer_id, r.transfer_id
                    ));
                }
                None => release = Some(r),
            }
        }
    }
    if let Some(r) = &release {
        let differences = record_differences(r, &held);
        if !differences.is_empty() {
            return Err(format!(
                "{owner}'s record of member {member_id} is not what {} released in transfer {}:\n  {}",
                r.sender,
                r.transfer_id,
                differences.join("\n  ")
            ));
        }
    } else if generation > 1
        && !releases_forgotten
        && !received_by_transfer(owner_conn, member_id).map_err(|e| sql(owner_db, e))?
    {
        // (A sender restored from a backup may have forgotten its release:
        // the owner's completed incoming transfer is the evidence then.)
        return Err(format!(
            "{owner} owns member {member_id} at generation {generation}, but no node released it at that generation"
        ));
    }

    // Everyone else holds a tombstone, if anything: a forward pointer (a
    // restored node that learned from a peer's later generation that it
    // released the member on a branch it forgot names no transfer).
    for (node, conn) in &conns {
        if &node.node_id == owner {
            continue;
        }
        let row: Option<(String, String)> = conn
            .query_row(
                "SELECT owner, moved_to_node || moved_to_place FROM members WHERE member_id = ?1",
                [member_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| sql(node, e))?;
        if let Some((row_owner, moved)) = row {
            if moved.is_empty() {
                return Err(format!(
                    "{} holds member {member_id} as owned by {row_owner} without a forward pointer",
                    node.node_id
                ));
            }
        }
    }

    // Every transfer final on both sides, offers purged.
    let mut rows: BTreeMap<(String, String), TransferRow> = BTreeMap::new();
    for (node, conn) in &conns {
        for row in transfer_rows(conn, member_id).map_err(|e| sql(node, e))? {
            rows.insert((node.node_id.clone(), row.transfer_id.clone()), row);
        }
    }
    let mut transfers = 0;
    for ((node, id), row) in &rows {
        if row.direction == "incoming" {
            if row.offer_held {
                return Err(format!(
                    "{node} still holds the offered record of transfer {id} ({})",
                    row.state
                ));
            }
            continue;
        }
        if row.receiver.starts_with("place:") {
            transfers += 1;
            continue;
        }
        let known_receiver = conns.iter().any(|(n, _)| n.node_id == row.receiver);
        if !known_receiver {
            continue;
        }
        let at_receiver = rows
            .get(&(row.receiver.clone(), id.clone()))
            .map(|r| r.state.as_str());
        // A receiver restored from a backup taken before the offer arrived
        // never knew it; the sender's own end is final then.
        let forgotten = at_receiver.is_none()
            && matches!(row.state.as_str(), "expired" | "cancelled" | "rejected")
            && conns
                .iter()
                .find(|(n, _)| n.node_id == row.receiver)
                .is_some_and(|(_, c)| restored(c));
        if !forgotten && !final_pair(&row.state, at_receiver) {
            return Err(format!(
                "transfer {id} of member {member_id} from {} to {} is not final: {} at the sender, {} at the receiver",
                row.sender,
                row.receiver,
                row.state,
                at_receiver.unwrap_or("unknown")
            ));
        }
        transfers += 1;
    }
    Ok(Converged {
        owner: owner.clone(),
        generation,
        release,
        transfers,
    })
}

#[cfg(test)]
mod tests {
    //! The checker must catch what it claims to catch: real schemas (the
    //! node's migrations), rows written by hand.

    use super::*;
    use liaison_core::store::Store;
    use rusqlite::params;

    const MEMBER: &str = "01a00000-0000-7000-8000-000000000001";
    const TRANSFER: &str = "01a00000-0000-7000-8000-0000000000f1";

    fn node(dir: &Path, id: &str) -> (NodeDb, Connection) {
        let path = dir.join(format!("{id}.db"));
        drop(Store::open(&path, 0).expect("create a node database"));
        let conn = Connection::open(&path).expect("open it");
        conn.execute(
            "INSERT INTO orgs (org_id, name, level, created_at_ms) VALUES ('b1', '第一支部', 'branch', 0)",
            [],
        )
        .expect("write the branch");
        (NodeDb::new(id, path), conn)
    }

    /// A member row; with `moved` (a transfer id), a tombstone pointing to
    /// `owner`.
    fn own(conn: &Connection, owner: &str, generation: u64, counter: u64, name: &str, moved: &str) {
        conn.execute(
            "INSERT OR REPLACE INTO members (member_id, owner, generation, counter, name, gender, birth_date,
                 national_id, party_status, home_branch, created_at_ms, updated_at_ms, moved_transfer_id,
                 moved_to_node)
             VALUES (?1, ?2, ?3, ?4, ?5, '男', '1990-05-17', '620801199005170014', '正式', 'b1', 0, 0, ?6,
                 CASE WHEN ?6 = '' THEN '' ELSE ?2 END)",
            params![MEMBER, owner, generation, counter, name, moved],
        )
        .expect("write the member");
    }

    fn transfer_row(conn: &Connection, direction: &str, state: &str, offer: Option<&[u8]>) {
        conn.execute(
            "INSERT OR REPLACE INTO transfers (transfer_id, letter_no, direction, sender, receiver, member_id, state,
                 issued_on, expires_on, valid_days, offer, created_at_ms, updated_at_ms)
             VALUES (?1, 'A-2026-000001', ?2, 'a', 'b', ?3, ?4, '2026-01-01', '2026-01-31', 30, ?5, 0, 0)",
            params![TRANSFER, direction, MEMBER, state, offer],
        )
        .expect("write the transfer");
    }

    fn release(conn: &Connection, name: &str) {
        let message = pb::TransferRelease {
            transfer_id: TRANSFER.into(),
            letter_no: "A-2026-000001".into(),
            sender: "a".into(),
            receiver: "b".into(),
            generation: 2,
            record: Some(pb::MemberRecord {
                member_id: MEMBER.into(),
                version: Some(pb::Version {
                    generation: 2,
                    counter: 5,
                }),
                name: name.into(),
                gender: "男".into(),
                birth_date: "1990-05-17".into(),
                national_id: "620801199005170014".into(),
                party_status: "正式".into(),
                membership_state: "normal".into(),
                ..Default::default()
            }),
            released_on: "2026-01-02".into(),
            earlier_owners: Vec::new(),
        };
        conn.execute(
            "INSERT INTO events (audience, kind, entity, payload, created_at_ms) VALUES ('b', ?1, ?2, ?3, 0)",
            params![pb::EventKind::TransferRelease as i32, TRANSFER, message.encode_to_vec()],
        )
        .expect("write the release");
    }

    #[test]
    fn two_steady_owners_are_a_violation_and_a_tombstone_is_not_a_claim() {
        let dir = tempfile::tempdir().unwrap();
        let (a, a_conn) = node(dir.path(), "a");
        let (b, b_conn) = node(dir.path(), "b");
        let nodes = [a, b];
        assert!(
            violations(&nodes).unwrap().is_empty(),
            "nobody owns anything"
        );
        own(&a_conn, "a", 1, 1, "张三", "");
        assert!(violations(&nodes).unwrap().is_empty());
        own(&b_conn, "b", 2, 5, "张三", "");
        let found = violations(&nodes).unwrap();
        assert_eq!(
            found,
            vec![Violation {
                member_id: MEMBER.into(),
                owners: vec![("a".into(), 1), ("b".into(), 2)],
            }]
        );
        assert!(found[0]
            .to_string()
            .contains("a (generation 1) and b (generation 2)"));
        // The sender's row becomes a tombstone naming the receiver.
        own(&a_conn, "b", 2, 1, "", TRANSFER);
        assert!(violations(&nodes).unwrap().is_empty());

        let watch = Watch::start(nodes.to_vec(), Duration::from_millis(1));
        own(&a_conn, "a", 3, 1, "张三", "");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while watch.violations().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the watcher never saw the double owner"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let report = watch.finish();
        assert_eq!(
            report.violations[0].owners,
            vec![("a".into(), 3), ("b".into(), 2)]
        );
    }

    #[test]
    fn convergence_compares_the_owner_with_what_the_sender_released() {
        let dir = tempfile::tempdir().unwrap();
        let (a, a_conn) = node(dir.path(), "a");
        let (b, b_conn) = node(dir.path(), "b");
        let nodes = [a, b];
        own(&a_conn, "b", 2, 1, "", TRANSFER);
        release(&a_conn, "张三");
        transfer_row(&a_conn, "outgoing", "released", None);
        transfer_row(&b_conn, "incoming", "completed", None);
        own(&b_conn, "b", 2, 5, "张三", "");
        let not_yet = converged(&nodes, MEMBER).unwrap_err();
        assert!(
            not_yet.contains("released at the sender, completed at the receiver"),
            "{not_yet}"
        );

        transfer_row(&a_conn, "outgoing", "completed", None);
        let end = converged(&nodes, MEMBER).expect("converged");
        assert_eq!(
            (end.owner.as_str(), end.generation, end.transfers),
            ("b", 2, 1)
        );

        // The same release re-sent is still one release.
        release(&a_conn, "张三");
        converged(&nodes, MEMBER).expect("a duplicate release changes nothing");

        own(&b_conn, "b", 2, 5, "李四", "");
        let differs = converged(&nodes, MEMBER).unwrap_err();
        assert!(
            differs.contains("name: `李四` held, `张三` released"),
            "{differs}"
        );
        // An edit after the release (a later version) is the owner's right.
        own(&b_conn, "b", 2, 6, "李四", "");
        converged(&nodes, MEMBER).expect("edited since the release");

        transfer_row(&b_conn, "incoming", "completed", Some(b"offer"));
        let held = converged(&nodes, MEMBER).unwrap_err();
        assert!(held.contains("still holds the offered record"), "{held}");
        transfer_row(&b_conn, "incoming", "completed", None);

        own(&a_conn, "a", 2, 1, "张三", "");
        let two = converged(&nodes, MEMBER).unwrap_err();
        assert!(two.contains("2 owners"), "{two}");
    }
}

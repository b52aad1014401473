//! The simulated federation: nodes (each its own SQLite file, clock and
//! certificate), the links between them, and the execution of one
//! [`Step`]. Everything here is the production core (`liaison_core`)
//! called the way the node calls it; only the network and the disk faults
//! are simulated.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use liaison_core::apply::apply_batch_with_faults;
use liaison_core::outcome::Faults;
use liaison_core::store::audit::Actor;
use liaison_core::store::peers::{self, PeerRecord, PeerState};
use liaison_core::store::{self as store, Store};
use liaison_core::transfers::{LetterRules, RECEIVER_GRACE_DAYS};
use liaison_core::Error as CoreError;
use liaison_core::{agreements, epoch, log, members, peering, reconcile, transfers, Ctx};
use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use liaison_types::identity::{self, CertNotary, NodeId, TlsMaterial};
use prost::Message;
use rusqlite::{Connection, TransactionBehavior};

use super::invariants::{self, Ledger, NodeDb, Violation};
use super::step::{
    Action, AgreementRef, Forgery, MemberRef, Named, RecordKind, Resolve, Step, TransferRef,
};

/// The nodes a run draws from, with the place each serves.
pub const NODES: [(&str, &str); 5] = [
    ("pingliang", "6208"),
    ("lanzhou", "6201"),
    ("xian", "6101"),
    ("yinchuan", "6401"),
    ("tianshui", "6205"),
];
/// A destination no node serves (Xining).
pub const UNSERVED_PLACE: &str = "630102";

pub const DAY_MS: i64 = 86_400_000;
/// Every node's clock stays ≡ its index (mod this), and every delta is a
/// multiple of it, so two nodes never read the same millisecond and one
/// node never reads the same millisecond twice: ids (UUIDv7, random below
/// the millisecond) then sort the same way in every replay.
pub const TICK_MS: i64 = 16;

/// The simulated epoch: 09:00 China time on the day after the certificates
/// were issued (they are valid from 10 minutes before issue), so every run
/// of a seed on the same day sees the same calendar layout, and clocks only
/// move forward from there.
pub fn t0() -> i64 {
    static T0: OnceLock<i64> = OnceLock::new();
    *T0.get_or_init(|| {
        ca_dir(); // certificates first
        let now = chrono::Utc::now().timestamp_millis() + 10 * 60_000;
        let offset = 8 * 3_600_000;
        let next_midnight = ((now + offset) / DAY_MS + 1) * DAY_MS - offset;
        next_midnight + 9 * 3_600_000
    })
}

/// One federation CA and a certificate per node id, for the whole test
/// process (as `core/tests.rs` does).
fn ca_dir() -> &'static Path {
    static CA: OnceLock<tempfile::TempDir> = OnceLock::new();
    CA.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        identity::ca_init("gansu", &dir.path().join("ca"), 3650, false).expect("ca init");
        for (name, _) in NODES {
            let id = NodeId::parse(name).expect("a node id");
            identity::ca_issue(
                &dir.path().join("ca"),
                &id,
                &[],
                &[],
                3650,
                &dir.path().join("certs"),
                false,
            )
            .expect("ca issue");
        }
        dir
    })
    .path()
}

fn material(id: &NodeId) -> TlsMaterial {
    static MATERIAL: OnceLock<Vec<TlsMaterial>> = OnceLock::new();
    let all = MATERIAL.get_or_init(|| {
        let dir = ca_dir();
        NODES
            .iter()
            .map(|(name, _)| {
                let id = NodeId::parse(name).expect("a node id");
                identity::load_tls(
                    &dir.join("certs").join(format!("{name}.crt")),
                    &dir.join("certs").join(format!("{name}.key")),
                    &dir.join("ca").join("ca.crt"),
                    &id,
                )
                .expect("load tls")
            })
            .collect()
    });
    all.iter()
        .find(|m| m.node_id == *id)
        .expect("a node of NODES")
        .clone()
}

/// Where runs keep their databases: `LIAISON_SIM_DIR`, else /dev/shm when
/// there is one (the databases run with `synchronous = FULL`), else the
/// system's temporary directory. With `LIAISON_SIM_KEEP` set, the
/// directory stays after the run (its path on stderr), to open the nodes'
/// databases with `sqlite3`.
pub fn sim_dir() -> tempfile::TempDir {
    let base = std::env::var_os("LIAISON_SIM_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let shm = PathBuf::from("/dev/shm");
            shm.is_dir().then_some(shm)
        })
        .unwrap_or_else(std::env::temp_dir);
    let keep = std::env::var_os("LIAISON_SIM_KEEP").is_some();
    let dir = tempfile::Builder::new()
        .prefix("liaison-sim-")
        .disable_cleanup(keep)
        .tempdir_in(base)
        .expect("a directory for the simulation");
    if keep {
        eprintln!("simulation databases kept in {}", dir.path().display());
    }
    dir
}

/// One node: its database file, its clock, its key.
pub struct SimNode {
    pub index: usize,
    pub id: NodeId,
    pub place: &'static str,
    path: PathBuf,
    store: Option<Store>,
    /// The inspection connection the invariants read through.
    reader: Connection,
    pub log_id: String,
    pub now_ms: i64,
    notary: CertNotary,
    pub up: bool,
    pub faults: Faults,
    /// How often it was restored from a backup.
    pub restores: u32,
}

/// The message SQLite gives for a simulated crash.
const CRASH: &str = "simulated crash";

/// Members per transaction of a chunked re-evaluation of the shares in the
/// simulator (the nodes' is 2,000; the simulated nodes hold a few dozen).
const RESHARE_CHUNK: usize = 2;

impl SimNode {
    fn open(index: usize, dir: &Path, now_ms: i64, faults: Faults) -> SimNode {
        let (name, place) = NODES[index];
        let id = NodeId::parse(name).expect("a node id");
        let path = dir.join(format!("{name}.db"));
        let store = Store::open(&path, now_ms).expect("open the node's database");
        let log_id = store.log_id().expect("a log id");
        let reader = invariants::open_read_only(&path).expect("open the database read-only");
        SimNode {
            index,
            notary: CertNotary::new(material(&id)),
            id,
            place,
            path,
            store: Some(store),
            reader,
            log_id,
            now_ms,
            up: true,
            faults,
            restores: 0,
        }
    }

    pub fn ctx(&self) -> Ctx<'_> {
        // Small chunks, so a re-evaluation of the shares under way (an
        // activation's) meets deliveries, writes and crashes before its
        // node's next tick finishes it.
        Ctx::new(&self.id, self.now_ms)
            .with_notary(&self.notary)
            .with_reshare_chunk(RESHARE_CHUNK)
    }

    pub fn store(&self) -> &Store {
        self.store.as_ref().expect("the store is open")
    }

    pub fn db(&self) -> NodeDb<'_> {
        NodeDb {
            id: &self.id,
            conn: &self.reader,
            now_ms: self.now_ms,
        }
    }

    pub fn reader(&self) -> &Connection {
        &self.reader
    }

    /// The members this node owns, with the generation it owns each at.
    fn owned_generations(&self) -> BTreeMap<String, u64> {
        let mut stmt = self
            .reader
            .prepare("SELECT member_id, generation FROM members WHERE owner = ?1")
            .expect("read the owned members");
        stmt.query_map([self.id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("read the owned members")
            .map(|row| row.expect("a member row"))
            .collect()
    }

    /// Runs `f` in one IMMEDIATE transaction, committed if it succeeds.
    pub fn tx<R>(
        &self,
        f: impl FnOnce(&Connection, &Ctx<'_>) -> Result<R, CoreError>,
    ) -> Result<R, CoreError> {
        self.store().with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let r = f(&tx, &self.ctx())?;
            tx.commit()?;
            Ok(r)
        })
    }

    /// Arms a crash at the first write of the kind: the statement fails,
    /// the transaction is lost, and the caller crashes the node. A TEMP
    /// trigger lives only as long as this connection: the crash disarms it.
    fn arm_crash(&self, point: CrashPoint) {
        let sql = match point {
            CrashPoint::LogAppend => format!(
                "CREATE TEMP TRIGGER IF NOT EXISTS sim_crash_append BEFORE INSERT ON events
                 BEGIN SELECT RAISE(ABORT, '{CRASH}'); END;"
            ),
            CrashPoint::CursorAdvance => format!(
                "CREATE TEMP TRIGGER IF NOT EXISTS sim_crash_cursor_update BEFORE UPDATE ON cursors
                   WHEN NEW.seq > OLD.seq BEGIN SELECT RAISE(ABORT, '{CRASH}'); END;
                 CREATE TEMP TRIGGER IF NOT EXISTS sim_crash_cursor_insert BEFORE INSERT ON cursors
                   WHEN NEW.seq > COALESCE((SELECT seq FROM cursors WHERE peer = NEW.peer AND log_id = NEW.log_id), 0)
                 BEGIN SELECT RAISE(ABORT, '{CRASH}'); END;"
            ),
        };
        self.store()
            .with(|c| Ok(c.execute_batch(&sql)?))
            .expect("arm a simulated crash");
    }

    /// The node starts on a copy of an earlier backup: its database file is
    /// replaced, and opening it begins the restore as `node::start` does
    /// (a new log id, reconciling with every peer).
    fn restore_from(&mut self, backup: &Path) {
        drop(self.store.take());
        for suffix in ["", "-wal", "-shm"] {
            let mut name = self.path.clone().into_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(name));
        }
        std::fs::copy(backup, &self.path).expect("copy the backup into place");
        let store = Store::open(&self.path, self.now_ms).expect("open the restored database");
        let ctx = Ctx::new(&self.id, self.now_ms).with_notary(&self.notary);
        store
            .with(|c| reconcile::begin_restore_if_marked(c, &ctx))
            .expect("begin the restore")
            .expect("a backup begins a restore");
        self.log_id = store.log_id().expect("a log id");
        self.store = Some(store);
        self.reader = invariants::open_read_only(&self.path).expect("open the database read-only");
    }

    pub fn reconciling(&self) -> bool {
        epoch::is_reconciling(&self.reader).unwrap_or(false)
    }

    /// The process dies: the connection goes without committing anything
    /// open, and the node starts again on the same file.
    fn crash(&mut self) {
        drop(self.store.take());
        let store = Store::open(&self.path, self.now_ms).expect("reopen the node's database");
        assert_eq!(
            store.log_id().expect("a log id"),
            self.log_id,
            "a restart keeps the log id"
        );
        self.store = Some(store);
    }
}

#[derive(Debug, Clone, Copy)]
enum CrashPoint {
    LogAppend,
    CursorAdvance,
}

fn is_crash(e: &CoreError) -> bool {
    e.to_string().contains(CRASH)
}

/// A batch on the wire: events of `origin`'s log `log_id` after `since`.
#[derive(Debug, Clone)]
pub struct Batch {
    pub log_id: String,
    pub since: u64,
    pub events: Vec<pb::Event>,
}

/// A pull stream `from`→`to`: the server's position and what it sent that
/// the puller has not applied yet.
#[derive(Debug, Clone, Default)]
struct Stream {
    server_since: u64,
    in_flight: VecDeque<Batch>,
}

#[derive(Debug, Clone, Default)]
struct Link {
    stream: Option<Stream>,
    /// Batches handed to the receiver (for duplicates), newest last.
    history: VecDeque<Batch>,
}

const HISTORY: usize = 8;

/// A backup a node took, with what the simulator knew of its incoming
/// links then (a restored node forgot what it applied since).
struct BackupCopy {
    node: usize,
    path: PathBuf,
    ledgers: Vec<((usize, usize, String), Ledger)>,
}

/// A member as the scheduler knows it.
#[derive(Debug, Clone)]
pub struct MemberAlias {
    pub id: String,
    /// The node that owns it now (read back after every step); `None`
    /// while a release is on its way, or after a transfer on paper.
    pub owner: Option<usize>,
    /// The name its owner's operators last wrote; `None` once a restore of
    /// a node that held it makes that history ambiguous (a restored owner
    /// reverts to its backup, a restored sender releases an older name).
    pub name: Option<String>,
    /// The id of the step that created it.
    pub created_by: usize,
}

/// An agreement as the scheduler knows it.
#[derive(Debug, Clone)]
pub struct AgreementAlias {
    pub id: String,
    /// (outflow, inflow)
    pub parties: (usize, usize),
    pub created_by: usize,
}

/// A transfer as the scheduler knows it.
#[derive(Debug, Clone)]
pub struct TransferAlias {
    pub id: String,
    pub sender: usize,
    pub receiver: usize,
    pub member: usize,
    pub created_by: usize,
}

/// What a step came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done(String),
    /// An operator action the core refused (a legitimate answer).
    Refused(String),
    /// Nothing to do (no batch pending, unknown alias, node down…).
    Skipped(String),
}

impl Outcome {
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Done(_) => "done",
            Outcome::Refused(_) => "refused",
            Outcome::Skipped(_) => "skipped",
        }
    }
}

/// A simulator failure: an invariant, or the core failing in a way no
/// operator error explains.
#[derive(Debug, Clone)]
pub struct Failure {
    pub check: String,
    pub detail: String,
}

impl From<Violation> for Failure {
    fn from(v: Violation) -> Failure {
        Failure {
            check: v.invariant.to_owned(),
            detail: v.detail,
        }
    }
}

fn unexpected(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure {
        check: "unexpected-error".into(),
        detail: format!("{what}: {e}"),
    }
}

/// Counts of what a run did.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub steps: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    pub actions_done: u64,
    pub actions_refused: u64,
    pub skipped: u64,
    pub events_applied: u64,
    pub events_skipped: u64,
    pub events_quarantined: u64,
    /// What the run reached (counted at the first convergence point and,
    /// for the ends, at the last): how far the protocol got, so a
    /// scheduler change that starves it shows.
    pub coverage: BTreeMap<&'static str, u64>,
    /// Events taken by receivers (applied or quarantined), by kind.
    pub taken_by_kind: BTreeMap<String, u64>,
    /// Where the time went: executing steps, checking invariants.
    pub time_steps: std::time::Duration,
    pub time_checks: std::time::Duration,
}

impl Stats {
    pub fn add(&mut self, other: &Stats) {
        self.steps += other.steps;
        for (k, v) in &other.by_kind {
            *self.by_kind.entry(k).or_default() += v;
        }
        self.actions_done += other.actions_done;
        self.actions_refused += other.actions_refused;
        self.skipped += other.skipped;
        self.events_applied += other.events_applied;
        self.events_skipped += other.events_skipped;
        self.events_quarantined += other.events_quarantined;
        for (k, v) in &other.coverage {
            *self.coverage.entry(k).or_default() += v;
        }
        for (k, v) in &other.taken_by_kind {
            *self.taken_by_kind.entry(k.clone()).or_default() += v;
        }
        self.time_steps += other.time_steps;
        self.time_checks += other.time_checks;
    }

    /// The faults injected (everything but actions, deliveries and ticks).
    pub fn faults(&self) -> u64 {
        self.by_kind
            .iter()
            .filter(|(k, _)| !matches!(**k, "action" | "tick" | "delivery"))
            .map(|(_, v)| v)
            .sum()
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} steps ({} actions done, {} refused, {} skipped), events {} applied / {} skipped / {} quarantined; faults {}:",
            self.steps,
            self.actions_done,
            self.actions_refused,
            self.skipped,
            self.events_applied,
            self.events_skipped,
            self.events_quarantined,
            self.faults()
        )?;
        for (k, v) in &self.by_kind {
            write!(f, " {k}={v}")?;
        }
        write!(f, "; reached:")?;
        for (k, v) in &self.coverage {
            write!(f, " {k}={v}")?;
        }
        write!(f, "; events taken:")?;
        for (k, v) in &self.taken_by_kind {
            write!(f, " {k}={v}")?;
        }
        write!(
            f,
            "; time in steps {:.1?}, in checks {:.1?}",
            self.time_steps, self.time_checks
        )
    }
}

/// The broken variants (DESIGN's test-only switches) a run may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Variant {
    /// This node applies with `Faults { skip_authority }`.
    pub skip_authority_at: Option<usize>,
    /// Every node applies a batch and advances its cursor in two
    /// transactions (`Faults { cursor_in_separate_tx }`).
    pub cursor_in_separate_tx: bool,
    /// Every receiver enrols a member when it accepts a transfer, before
    /// `release` (`Faults { receiver_owns_on_accept }`).
    pub receiver_owns_on_accept: bool,
}

pub struct World {
    pub nodes: Vec<SimNode>,
    pub names: Vec<String>,
    links: BTreeMap<(usize, usize), Link>,
    pub partitions: BTreeSet<(usize, usize)>,
    /// Per (receiver, origin, origin's log id).
    ledgers: BTreeMap<(usize, usize, String), Ledger>,
    pub members: Vec<MemberAlias>,
    member_alias: BTreeMap<String, usize>,
    pub agreements: Vec<AgreementAlias>,
    agreement_alias: BTreeMap<String, usize>,
    pub transfers: Vec<TransferAlias>,
    transfer_alias: BTreeMap<String, usize>,
    /// Every log id a node wrote under, with its alias (`pingliang.log1`:
    /// Pingliang's log after its first restore): log ids are random, so a
    /// trace names them by alias and a seed replays to the same text.
    log_aliases: Vec<(String, String)>,
    /// (node, peer): `peer` removed from `node`'s peer table.
    pub removed: BTreeSet<(usize, usize)>,
    backups: Vec<BackupCopy>,
    /// Members a restore made their owner forget (created or received
    /// after its backup): lost, if no peer held them either (docs/restore.md).
    pub forgotten: BTreeSet<usize>,
    /// Members a restore took back to an earlier generation at a node that
    /// owned them (its backup owns them at an earlier one, or released
    /// them): it forgot receiving them since. With `forgotten`, the members
    /// whose hosts' records written for that receiver restore.md accepts
    /// as lost (What is lost: both sides of a transfer restored to before
    /// it).
    forgot_receiving: BTreeSet<usize>,
    /// Member → the nodes that held it when they were restored. A member
    /// transferred between two nodes both restored to before the transfer
    /// finished there may be held by neither (docs/restore.md: the sender keeps
    /// only a tombstone, the receiver forgot).
    pub restored_holders: BTreeMap<usize, BTreeSet<usize>>,
    /// What the operator did on a peer's refusal of a restored node's
    /// holdings request in this step (restored it again), for the trace.
    restored_again: Option<String>,
    /// The id of the step being executed.
    current: usize,
    /// (receiver, origin, seq) of every forged event.
    forged: BTreeSet<(usize, usize, u64)>,
    /// (receiver, origin, log id, seq) of every event the receiver
    /// quarantined as an owner's while it owned the member too, the two
    /// owners tolerated then (docs/restore.md, Going on without a peer).
    between_two_owners: BTreeSet<(usize, String, String, u64)>,
    pub stats: Stats,
    /// Nodes whose databases changed in the last step (for the checks).
    touched: BTreeSet<usize>,
    _dir: tempfile::TempDir,
}

fn some(s: &str) -> Option<String> {
    Some(s.to_owned())
}

fn member_fields(name: &str) -> pb::MemberFields {
    pb::MemberFields {
        name: some(name),
        gender: some("男"),
        birth_date: some("1990-05-17"),
        party_status: some("正式"),
        joined_on: some("2012-07-01"),
        home_branch: some("b1"),
        phone: some("13800000000"),
        home_address: some("平凉市崆峒区"),
        ..pb::MemberFields::default()
    }
}

impl World {
    /// `n` nodes, full mesh of peers, one branch each; `skews[i]` is node
    /// i's initial clock offset in TICK_MS units.
    pub fn new(n: usize, skews: &[i64], variant: Variant) -> World {
        let dir = sim_dir();
        let t0 = t0();
        let nodes: Vec<SimNode> = (0..n)
            .map(|i| {
                let faults = Faults {
                    skip_authority: variant.skip_authority_at == Some(i),
                    cursor_in_separate_tx: variant.cursor_in_separate_tx,
                    receiver_owns_on_accept: variant.receiver_owns_on_accept,
                };
                SimNode::open(i, dir.path(), t0 + i as i64 + skews[i] * TICK_MS, faults)
            })
            .collect();
        for node in &nodes {
            node.tx(|conn, ctx| {
                members::org_add(
                    conn,
                    ctx,
                    &pb::Org {
                        org_id: "b1".into(),
                        name: format!("{}第一支部", node.id),
                        level: "branch".into(),
                        contact_person: "王书记".into(),
                        phone: "09338000000".into(),
                        ..pb::Org::default()
                    },
                )?;
                for other in nodes.iter().filter(|o| o.index != node.index) {
                    peers::add(
                        conn,
                        &PeerRecord {
                            node_id: other.id.clone(),
                            display_name: other.id.to_string(),
                            endpoint: "https://127.0.0.1:1".into(),
                            fingerprint: None,
                            state: PeerState::Active,
                            serves: vec![other.place.to_owned()],
                            added_at_ms: ctx.now_ms,
                            last_contact_ms: None,
                            ..peer_defaults()
                        },
                        ctx.now_ms,
                    )?;
                }
                Ok(())
            })
            .expect("set up a node");
        }
        World {
            names: nodes.iter().map(|n| n.id.to_string()).collect(),
            log_aliases: nodes
                .iter()
                .map(|n| (n.log_id.clone(), format!("{}.log0", n.id)))
                .collect(),
            nodes,
            links: BTreeMap::new(),
            partitions: BTreeSet::new(),
            ledgers: BTreeMap::new(),
            members: Vec::new(),
            member_alias: BTreeMap::new(),
            agreements: Vec::new(),
            agreement_alias: BTreeMap::new(),
            transfers: Vec::new(),
            transfer_alias: BTreeMap::new(),
            removed: BTreeSet::new(),
            backups: Vec::new(),
            forgotten: BTreeSet::new(),
            forgot_receiving: BTreeSet::new(),
            restored_holders: BTreeMap::new(),
            restored_again: None,
            current: 0,
            forged: BTreeSet::new(),
            between_two_owners: BTreeSet::new(),
            stats: Stats::default(),
            touched: (0..n).collect(),
            _dir: dir,
        }
    }

    pub fn describe(&self, step: &Step) -> String {
        Named {
            item: step,
            r: self,
        }
        .to_string()
    }

    /// Replaces ids in a message with their aliases.
    pub fn alias_ids(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (i, m) in self.members.iter().enumerate() {
            out = out.replace(&m.id, &format!("m{i}"));
        }
        for (i, a) in self.agreements.iter().enumerate() {
            out = out.replace(&a.id, &format!("a{i}"));
        }
        for (i, t) in self.transfers.iter().enumerate() {
            out = out.replace(&t.id, &format!("t{i}"));
        }
        for (id, alias) in &self.log_aliases {
            out = out.replace(id, alias);
        }
        out
    }

    pub fn member_index(&self, id: &str) -> Option<usize> {
        self.member_alias.get(id).copied()
    }

    pub fn agreement_index(&self, id: &str) -> Option<usize> {
        self.agreement_alias.get(id).copied()
    }

    /// How steps name the member with alias index `i` (a reference to no
    /// step if there is no such member).
    pub fn member_ref(&self, i: usize) -> MemberRef {
        MemberRef(self.members.get(i).map_or(usize::MAX, |m| m.created_by))
    }

    pub fn agreement_ref(&self, i: usize) -> AgreementRef {
        AgreementRef(self.agreements.get(i).map_or(usize::MAX, |a| a.created_by))
    }

    pub fn transfer_index(&self, id: &str) -> Option<usize> {
        self.transfer_alias.get(id).copied()
    }

    pub fn transfer_ref(&self, i: usize) -> TransferRef {
        TransferRef(self.transfers.get(i).map_or(usize::MAX, |t| t.created_by))
    }

    fn transfer_at(&self, r: TransferRef) -> Option<usize> {
        self.transfers.iter().position(|t| t.created_by == r.0)
    }

    fn new_transfer(&mut self, id: String, sender: usize, receiver: usize, m: &MemberRef) -> usize {
        let alias = self.transfers.len();
        self.transfer_alias.insert(id.clone(), alias);
        self.transfers.push(TransferAlias {
            id,
            sender,
            receiver,
            member: self.member_at(*m).expect("a member the step named"),
            created_by: self.current,
        });
        alias
    }

    /// Reads back who owns each member (transfers move them).
    fn refresh_owners(&mut self) {
        let mut owner_of: BTreeMap<String, usize> = BTreeMap::new();
        for node in &self.nodes {
            let mut stmt = node
                .reader()
                .prepare_cached("SELECT member_id FROM members WHERE owner = ?1")
                .expect("read the owned members");
            let ids = stmt
                .query_map([node.id.as_str()], |r| r.get::<_, String>(0))
                .expect("read the owned members");
            for id in ids {
                owner_of.insert(id.expect("a member id"), node.index);
            }
        }
        for m in &mut self.members {
            m.owner = owner_of.get(&m.id).copied();
        }
    }

    fn member_at(&self, r: MemberRef) -> Option<usize> {
        self.members.iter().position(|m| m.created_by == r.0)
    }

    fn agreement_at(&self, r: AgreementRef) -> Option<usize> {
        self.agreements.iter().position(|a| a.created_by == r.0)
    }

    /// Whether `a` and `b` can talk: both up, not partitioned, and each in
    /// the other's peer table (a node neither pulls from nor serves a node
    /// it removed).
    pub fn linked(&self, a: usize, b: usize) -> bool {
        a != b
            && self.nodes[a].up
            && self.nodes[b].up
            && !self.partitions.contains(&(a.min(b), a.max(b)))
            && !self.removed.contains(&(a, b))
            && !self.removed.contains(&(b, a))
    }

    /// Whether `to` has something to pull from `from` (or to adopt from it
    /// first, after a restore).
    pub fn backlog(&self, from: usize, to: usize) -> bool {
        let receiver = self.nodes[to].reader();
        if reconcile::needs_holdings(receiver, &self.nodes[from].id).unwrap_or(false) {
            return true;
        }
        if !reconcile::may_serve(self.nodes[from].reader(), &self.nodes[to].id).unwrap_or(true) {
            return false;
        }
        let origin = &self.nodes[from];
        if reconcile::awaits_retake(receiver, origin.id.as_str(), &origin.log_id).unwrap_or(false) {
            return true;
        }
        if self
            .links
            .get(&(from, to))
            .and_then(|l| l.stream.as_ref())
            .is_some_and(|s| !s.in_flight.is_empty())
        {
            return true;
        }
        let origin = &self.nodes[from];
        let cursor = self.cursor_of(to, from);
        log::backlog(origin.reader(), &self.nodes[to].id, cursor).unwrap_or(0) > 0
    }

    pub fn history_len(&self, from: usize, to: usize) -> usize {
        self.links.get(&(from, to)).map_or(0, |l| l.history.len())
    }

    pub fn stream_open(&self, from: usize, to: usize) -> bool {
        self.links
            .get(&(from, to))
            .is_some_and(|l| l.stream.is_some())
    }

    fn cursor_of(&self, receiver: usize, origin: usize) -> u64 {
        let o = &self.nodes[origin];
        log::cursor(self.nodes[receiver].reader(), &o.id, &o.log_id).unwrap_or(0)
    }

    fn kill_streams_of(&mut self, node: usize) {
        for ((from, to), link) in self.links.iter_mut() {
            if *from == node || *to == node {
                link.stream = None;
            }
        }
    }

    fn kill_stream(&mut self, from: usize, to: usize) {
        if let Some(link) = self.links.get_mut(&(from, to)) {
            link.stream = None;
        }
    }

    // ------------------------------------------------------------ steps

    /// Executes one step. An `Err` is a failure of the run (never an
    /// operator's refusal).
    pub fn execute(&mut self, id: usize, step: &Step) -> Result<Outcome, Failure> {
        self.current = id;
        self.stats.steps += 1;
        *self.stats.by_kind.entry(step.kind()).or_default() += 1;
        self.touched.clear();
        let outcome = match step {
            Step::Act { at, action, crash } => self.act(*at, action, *crash)?,
            Step::Deliver {
                from,
                to,
                limit,
                prefix,
                crash,
            } => self.deliver(*from, *to, *limit, *prefix, *crash)?,
            Step::Send { from, to, limit } => self.send(*from, *to, *limit)?,
            Step::Duplicate { from, to, pick } => self.duplicate(*from, *to, *pick)?,
            Step::Lose { from, to } => {
                self.kill_stream(*from, *to);
                Outcome::Done("stream lost".into())
            }
            Step::Crash { node } => {
                self.nodes[*node].crash();
                self.nodes[*node].up = false;
                self.kill_streams_of(*node);
                self.touched.insert(*node);
                Outcome::Done("down".into())
            }
            Step::Restart { node } => {
                self.nodes[*node].crash();
                self.nodes[*node].up = true;
                self.kill_streams_of(*node);
                self.touched.insert(*node);
                Outcome::Done("up".into())
            }
            Step::Advance { deltas_ms } => {
                for (node, delta) in self.nodes.iter_mut().zip(deltas_ms) {
                    debug_assert_eq!(delta % TICK_MS, 0);
                    node.now_ms += delta;
                }
                self.touched.extend(0..self.nodes.len());
                Outcome::Done(String::new())
            }
            Step::Partition { a, b } => {
                self.partitions.insert((*a.min(b), *a.max(b)));
                self.kill_stream(*a, *b);
                self.kill_stream(*b, *a);
                Outcome::Done(String::new())
            }
            Step::Heal { a, b } => {
                self.partitions.remove(&(*a.min(b), *a.max(b)));
                Outcome::Done(String::new())
            }
            Step::Forge { from, to, forgery } => self.forge(*from, *to, forgery)?,
            Step::Backup { node } => self.backup(*node)?,
            Step::Restore {
                node,
                pick,
                in_place,
            } => self.restore(*node, *pick, *in_place),
        };
        match &outcome {
            Outcome::Refused(_) => self.stats.actions_refused += 1,
            Outcome::Skipped(_) => self.stats.skipped += 1,
            Outcome::Done(_) if matches!(step, Step::Act { .. }) => self.stats.actions_done += 1,
            Outcome::Done(_) => {}
        }
        if !self.touched.is_empty() {
            self.refresh_owners();
        }
        Ok(outcome)
    }

    /// How many backups `node` has.
    pub fn backups_of(&self, node: usize) -> usize {
        self.backups.iter().filter(|b| b.node == node).count()
    }

    fn backup(&mut self, node: usize) -> Result<Outcome, Failure> {
        if !self.nodes[node].up {
            return Ok(Outcome::Skipped("node down".into()));
        }
        self.tick_clock(node);
        let n = &self.nodes[node];
        let path = self
            ._dir
            .path()
            .join(format!("{}-backup-{}.db", n.id, self.backups.len()));
        let now = n.now_ms;
        n.store()
            .with(|c| store::backup(c, &path, now))
            .map_err(|e| unexpected("take a backup", e))?;
        let ledgers = self
            .ledgers
            .iter()
            .filter(|((to, _, _), _)| *to == node)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.backups.push(BackupCopy {
            node,
            path,
            ledgers,
        });
        Ok(Outcome::Done(format!(
            "backup #{}",
            self.backups_of(node) - 1
        )))
    }

    fn restore(&mut self, node: usize, pick: usize, in_place: bool) -> Outcome {
        let mine: Vec<usize> = (0..self.backups.len())
            .filter(|i| self.backups[*i].node == node)
            .collect();
        if mine.is_empty() {
            return Outcome::Skipped("no backup".into());
        }
        let b = mine[pick % mine.len()];
        let path = self.backups[b].path.clone();
        // `liaison-node restore` refuses a backup of a branch the database
        // in place has left, with the same check.
        let left = if in_place {
            invariants::open_read_only(&path)
                .map_err(CoreError::from)
                .and_then(|backup| reconcile::left_branch(self.nodes[node].reader(), &backup))
                .expect("compare the backup with the database in place")
        } else {
            None
        };
        if let Some(left) = left {
            return Outcome::Refused(format!(
                "backup #{}: a branch this node left (log {} to seq {}, kept to {:?})",
                pick % mine.len(),
                left.log_id,
                left.seq,
                left.kept_to
            ));
        }
        // What it held before, owned or released (a release may still be on
        // its way): whatever the backup lacks of it is forgotten.
        let held_rows: BTreeSet<String> = {
            let mut stmt = self.nodes[node]
                .reader()
                .prepare("SELECT member_id FROM members")
                .expect("read the members");
            let ids = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .expect("read the members");
            ids.map(|id| id.expect("a member id")).collect()
        };
        let owned_before: Vec<usize> = (0..self.members.len())
            .filter(|m| {
                self.members[*m].owner == Some(node) || held_rows.contains(&self.members[*m].id)
            })
            .collect();
        let generations_before = self.nodes[node].owned_generations();
        self.nodes[node].restore_from(&path);
        self.nodes[node].restores += 1;
        let owned_after = self.nodes[node].owned_generations();
        for (id, generation) in &generations_before {
            if owned_after.get(id).is_none_or(|g| g < generation) {
                if let Some(m) = self.members.iter().position(|m| m.id == *id) {
                    self.forgot_receiving.insert(m);
                }
            }
        }
        for &m in &owned_before {
            self.restored_holders.entry(m).or_default().insert(node);
            let known = self.nodes[node]
                .reader()
                .query_row(
                    "SELECT 1 FROM members WHERE member_id = ?1",
                    [self.members[m].id.as_str()],
                    |_| Ok(()),
                )
                .is_ok();
            if !known {
                self.forgotten.insert(m);
            }
        }
        self.nodes[node].up = true;
        self.kill_streams_of(node);
        // Batches handed over before are of another time of its database.
        for ((from, to), link) in self.links.iter_mut() {
            if *from == node || *to == node {
                link.history.clear();
            }
        }
        self.touched.insert(node);
        // What the restored database applied is what it had then.
        self.ledgers.retain(|(to, _, _), _| *to != node);
        for (k, v) in &self.backups[b].ledgers {
            self.ledgers.insert(k.clone(), v.clone());
        }
        // Its peer table is the backup's.
        let removed: Vec<usize> = (0..self.nodes.len())
            .filter(|p| *p != node)
            .filter(|p| {
                peers::get(self.nodes[node].reader(), &self.nodes[*p].id)
                    .ok()
                    .flatten()
                    .is_none()
            })
            .collect();
        self.removed.retain(|(at, _)| *at != node);
        self.removed.extend(removed.into_iter().map(|p| (node, p)));
        // Which name is the last written is no longer simple for the
        // members it held in any form.
        for (i, m) in self.members.iter_mut().enumerate() {
            let held = self.nodes[node]
                .reader()
                .query_row(
                    "SELECT 1 FROM members WHERE member_id = ?1
                     UNION ALL SELECT 1 FROM home_copies WHERE member_id = ?1",
                    [m.id.as_str()],
                    |_| Ok(()),
                )
                .is_ok();
            if held || owned_before.contains(&i) {
                m.name = None;
            }
        }
        let log_id = self.nodes[node].log_id.clone();
        let alias = format!("{}.log{}", self.names[node], self.nodes[node].restores);
        self.log_aliases.push((log_id, alias.clone()));
        Outcome::Done(format!("log {alias}"))
    }

    /// Moves node `i`'s clock on a little: an action takes time, and two
    /// actions never share a millisecond.
    fn tick_clock(&mut self, i: usize) {
        self.nodes[i].now_ms += TICK_MS;
    }

    fn act(&mut self, at: usize, action: &Action, crash: bool) -> Result<Outcome, Failure> {
        if !self.nodes[at].up {
            return Ok(Outcome::Skipped("node down".into()));
        }
        self.tick_clock(at);
        self.touched.insert(at);
        if crash {
            self.nodes[at].arm_crash(CrashPoint::LogAppend);
        }
        let reconciling = self.nodes[at].reconciling();
        // Straight into the core, as the admin service calls it: each owner
        // action refuses itself while its node reconciles, and the check
        // below sees any path that does not.
        let result = self.run_action(at, action);
        if reconciling && matches!(result, Ok(Some(Outcome::Done(_)))) && is_owner_action(action) {
            return Err(Failure {
                check: "reconciling-owns-nothing".into(),
                detail: format!(
                    "{} acted as an owner while reconciling: {}",
                    self.names[at],
                    Named {
                        item: action,
                        r: self
                    }
                ),
            });
        }
        let outcome = match result {
            Ok(Some(outcome)) => outcome,
            Ok(None) => Outcome::Skipped("unknown alias".into()),
            Err(e) if crash && is_crash(&e) => Outcome::Done("crashed before commit".into()),
            Err(CoreError::Refused(refusal)) => {
                Outcome::Refused(self.alias_ids(&refusal.to_string()))
            }
            Err(e) => {
                return Err(unexpected(
                    &format!(
                        "{} at {}",
                        Named {
                            item: action,
                            r: self
                        },
                        self.names[at]
                    ),
                    self.alias_ids(&e.to_string()),
                ))
            }
        };
        if crash {
            self.nodes[at].crash();
            self.kill_streams_of(at);
        }
        Ok(outcome)
    }

    /// Runs an action in one transaction. `Ok(None)`: an alias not created
    /// (yet) in this schedule.
    fn run_action(&mut self, at: usize, action: &Action) -> Result<Option<Outcome>, CoreError> {
        let node = &self.nodes[at];
        let today = node.ctx().today();
        let date = |days_ago: i64| (today - chrono::Duration::days(days_ago)).to_string();
        let member = |m: &MemberRef| self.member_at(*m).map(|i| self.members[i].id.clone());
        let agreement =
            |a: &AgreementRef| self.agreement_at(*a).map(|i| self.agreements[i].id.clone());
        let transfer = |t: &TransferRef| self.transfer_at(*t).map(|i| self.transfers[i].id.clone());
        let done = |s: &str| Ok(Some(Outcome::Done(s.to_owned())));
        match action {
            Action::MemberAdd { name } => {
                let m = node.tx(|c, ctx| members::member_add(c, ctx, &member_fields(name)))?;
                let alias = self.members.len();
                self.member_alias.insert(m.member_id.clone(), alias);
                self.members.push(MemberAlias {
                    id: m.member_id,
                    owner: Some(at),
                    name: Some(name.clone()),
                    created_by: self.current,
                });
                Ok(Some(Outcome::Done(format!("m{alias}"))))
            }
            Action::MemberImport { name, id_of } => {
                let id = match id_of {
                    Some(m) => match member(m) {
                        Some(id) => id,
                        None => return Ok(None),
                    },
                    None => String::new(),
                };
                let home_ids = || {
                    node.store().with(|c| {
                        c.prepare("SELECT member_id FROM members")?
                            .query_map([], |r| r.get::<_, String>(0))?
                            .collect::<Result<std::collections::BTreeSet<_>, _>>()
                            .map_err(CoreError::from)
                    })
                };
                let before = home_ids()?;
                let f = member_fields(name);
                let csv = format!(
                    "成员编号,姓名,性别,出生日期,党员类别,所在支部\n{id},{name},{},{},{},{}\n",
                    f.gender(),
                    f.birth_date(),
                    f.party_status(),
                    f.home_branch()
                );
                node.tx(|c, ctx| {
                    // A row with the member's id changes it: an update.
                    let outcome = liaison_core::import::import_csv(c, ctx, csv.as_bytes(), true)?;
                    match outcome.problems.first() {
                        // A bad row rolls the import back, as the admin
                        // service does unless told to skip bad rows.
                        Some(problem) => Err(CoreError::invalid(format!(
                            "row {}: {}",
                            problem.row, problem.message
                        ))),
                        None => Ok(()),
                    }
                })?;
                if let Some(i) = id_of.and_then(|m| self.member_at(m)) {
                    if self.members[i].name.is_some() {
                        self.members[i].name = Some(name.clone());
                    }
                    return done("updated");
                }
                let Some(id) = home_ids()?.difference(&before).next().cloned() else {
                    return Err(CoreError::invalid("the import added no member".into()));
                };
                let alias = self.members.len();
                self.member_alias.insert(id.clone(), alias);
                self.members.push(MemberAlias {
                    id,
                    owner: Some(at),
                    name: Some(name.clone()),
                    created_by: self.current,
                });
                Ok(Some(Outcome::Done(format!("m{alias}"))))
            }
            Action::OrgAdd { serial } => {
                node.tx(|c, ctx| {
                    members::org_add(
                        c,
                        ctx,
                        &pb::Org {
                            org_id: format!("b{serial}"),
                            name: format!("第{serial}支部"),
                            level: "branch".into(),
                            ..Default::default()
                        },
                    )
                })?;
                done("")
            }
            Action::OutflowUpdate { member: m, dest } => {
                let Some(id) = member(m) else { return Ok(None) };
                let place = match dest {
                    Some(d) => format!("{}02", NODES[*d].1),
                    None => UNSERVED_PLACE.to_owned(),
                };
                let req = pb::OutflowUpdateRequest {
                    member_id: id,
                    destination_place: Some(place),
                    ..Default::default()
                };
                node.tx(|c, ctx| members::outflow_update(c, ctx, &req))?;
                done("")
            }
            Action::MemberUpdate {
                member: m,
                name,
                phone,
            } => {
                let Some(id) = member(m) else { return Ok(None) };
                let fields = pb::MemberFields {
                    name: name.clone(),
                    phone: phone.clone(),
                    ..Default::default()
                };
                node.tx(|c, ctx| members::member_update(c, ctx, &id, &fields))?;
                if let (Some(name), Some(i)) = (name, self.member_at(*m)) {
                    if self.members[i].name.is_some() {
                        self.members[i].name = Some(name.clone());
                    }
                }
                done("")
            }
            Action::OutflowRegister {
                member: m,
                dest,
                departed_days_ago,
            } => {
                let Some(id) = member(m) else { return Ok(None) };
                let place = match dest {
                    Some(d) => format!("{}02", NODES[*d].1),
                    None => UNSERVED_PLACE.to_owned(),
                };
                let req = pb::OutflowRequest {
                    member_id: id,
                    destination_place: place,
                    departed_on: date(*departed_days_ago),
                    certificate_no: format!("CERT-{}", m.0),
                    ..Default::default()
                };
                node.tx(|c, ctx| members::outflow_register(c, ctx, &req))?;
                done("")
            }
            Action::OutflowReturn { member: m } => {
                let Some(id) = member(m) else { return Ok(None) };
                let req = pb::OutflowReturnRequest {
                    member_id: id,
                    returned_on: String::new(),
                };
                node.tx(|c, ctx| members::outflow_return(c, ctx, &req))?;
                done("")
            }
            Action::HostSet {
                member: m,
                employer,
            } => {
                let Some(id) = member(m) else { return Ok(None) };
                let req = pb::HostSectionRequest {
                    member_id: id,
                    host_branch: some("流动党员支部"),
                    employer: Some(format!("单位{employer}")),
                    reported_on: Some(date(3)),
                    ..Default::default()
                };
                node.tx(|c, ctx| members::host_section_set(c, ctx, &req))?;
                done("")
            }
            Action::Contact {
                member: m,
                channel,
                days_ago,
            } => {
                let Some(id) = member(m) else { return Ok(None) };
                let req = pb::ContactRequest {
                    member_id: id,
                    channel: (*channel).to_owned(),
                    at: date(*days_ago),
                    by: "联络员".into(),
                    outcome: String::new(),
                };
                node.tx(|c, ctx| members::contact_record(c, ctx, &req))?;
                done("")
            }
            Action::Activity {
                member: m,
                kind,
                days_ago,
            } => {
                let Some(id) = member(m) else { return Ok(None) };
                let req = pb::ActivityRequest {
                    member_id: id,
                    kind: (*kind).to_owned(),
                    date: date(*days_ago),
                    hours: 2.0,
                    ..Default::default()
                };
                node.tx(|c, ctx| members::activity_record(c, ctx, &req))?;
                done("")
            }
            Action::ContactStatus { member: m, set } => {
                let Some(id) = member(m) else { return Ok(None) };
                let req = pb::ContactStatusRequest {
                    member_id: id,
                    set: (*set).to_owned(),
                    ..Default::default()
                };
                node.tx(|c, ctx| members::contact_status(c, ctx, &req))?;
                done("")
            }
            Action::Propose {
                peer,
                as_outflow,
                from_days,
                length_days,
                members: scope,
            } => {
                let mut ids = Vec::new();
                for m in scope {
                    let Some(id) = member(m) else { return Ok(None) };
                    ids.push(id);
                }
                let terms = terms(
                    &format!(
                        "{}-{}-{}",
                        self.names[at],
                        self.names[*peer],
                        self.agreements.len()
                    ),
                    today,
                    *from_days,
                    *length_days,
                    ids,
                );
                let role = if *as_outflow { "outflow" } else { "inflow" };
                let peer = self.names[*peer].clone();
                let view = node.tx(|c, ctx| agreements::propose(c, ctx, &peer, role, terms))?;
                let alias = self.agreements.len();
                self.agreement_alias
                    .insert(view.agreement_id.clone(), alias);
                let index = |name: &str| self.names.iter().position(|n| n == name);
                let parties = (
                    index(&view.outflow_node).expect("a node"),
                    index(&view.inflow_node).expect("a node"),
                );
                self.agreements.push(AgreementAlias {
                    id: view.agreement_id,
                    parties,
                    created_by: self.current,
                });
                Ok(Some(Outcome::Done(format!("a{alias}"))))
            }
            Action::Counter {
                agreement: a,
                from_days,
                length_days,
            } => {
                let Some(id) = agreement(a) else {
                    return Ok(None);
                };
                // The scope stays what the agreement has.
                let current = node.tx(|c, ctx| agreements::view(c, ctx, &id))?;
                let scope = current
                    .terms
                    .as_ref()
                    .map(|t| t.scope_members.clone())
                    .unwrap_or_default();
                let terms = terms(&current.number, today, *from_days, *length_days, scope);
                node.tx(|c, ctx| agreements::counter(c, ctx, &id, terms))?;
                done("")
            }
            Action::Accept { agreement: a } => {
                let Some(id) = agreement(a) else {
                    return Ok(None);
                };
                let view = node.tx(|c, ctx| agreements::accept(c, ctx, &id))?;
                Ok(Some(Outcome::Done(format!(
                    "{} v{} active v{}",
                    view.state, view.version, view.active_version
                ))))
            }
            Action::Reject { agreement: a } => {
                let Some(id) = agreement(a) else {
                    return Ok(None);
                };
                node.tx(|c, ctx| agreements::end(c, ctx, &id, "条件不符", true))?;
                done("")
            }
            Action::Terminate { agreement: a } => {
                let Some(id) = agreement(a) else {
                    return Ok(None);
                };
                node.tx(|c, ctx| agreements::end(c, ctx, &id, "提前解除", false))?;
                done("")
            }
            Action::TransferStart {
                member: m,
                to,
                valid_days,
            } => {
                let Some(id) = member(m) else { return Ok(None) };
                let to_name = self.names[*to].clone();
                let rules = LetterRules::default();
                let view = node.tx(|c, ctx| {
                    transfers::start(c, ctx, &id, &to_name, *valid_days, "工作调动", rules)
                })?;
                let alias = self.new_transfer(view.transfer_id, at, *to, m);
                Ok(Some(Outcome::Done(format!("t{alias} {}", view.letter_no))))
            }
            Action::TransferAccept { transfer: t } => {
                let Some(id) = transfer(t) else {
                    return Ok(None);
                };
                let faults = node.faults;
                let view =
                    node.tx(|c, ctx| transfers::accept_with_faults(c, ctx, &id, "b1", faults))?;
                Ok(Some(Outcome::Done(view.state)))
            }
            Action::TransferReject { transfer: t, code } => {
                let Some(id) = transfer(t) else {
                    return Ok(None);
                };
                let code = if *code == "no-reason" { "" } else { code };
                let view =
                    node.tx(|c, ctx| transfers::reject(c, ctx, &id, code, "不符合转入条件"))?;
                Ok(Some(Outcome::Done(view.state)))
            }
            Action::TransferCancel { transfer: t } => {
                let Some(id) = transfer(t) else {
                    return Ok(None);
                };
                let view = node.tx(|c, ctx| transfers::cancel(c, ctx, &id))?;
                Ok(Some(Outcome::Done(view.state)))
            }
            Action::TransferExtend { transfer: t, days } => {
                let Some(id) = transfer(t) else {
                    return Ok(None);
                };
                let rules = LetterRules::default();
                let view = node.tx(|c, ctx| transfers::extend(c, ctx, &id, *days, rules))?;
                Ok(Some(Outcome::Done(format!("until {}", view.expires_on))))
            }
            Action::TransferReissue { transfer: t } => {
                let Some(id) = transfer(t) else {
                    return Ok(None);
                };
                let Some(old) = self.transfer_at(*t).map(|i| self.transfers[i].clone()) else {
                    return Ok(None);
                };
                let rules = LetterRules::default();
                let view = node.tx(|c, ctx| transfers::reissue(c, ctx, &id, rules))?;
                let m = self.member_ref(old.member);
                let alias = self.new_transfer(view.transfer_id, at, old.receiver, &m);
                Ok(Some(Outcome::Done(format!("t{alias} {}", view.letter_no))))
            }
            Action::TransferOnPaper { member: m } => {
                let Some(id) = member(m) else { return Ok(None) };
                let letter = format!("纸质-{}", self.current);
                node.tx(|c, ctx| {
                    transfers::out_on_paper(c, ctx, &id, UNSERVED_PLACE, &letter, "迁往外省")
                })?;
                done("")
            }
            Action::PeerRemove { peer, force } => {
                let peer_id = self.nodes[*peer].id.clone();
                let detail = node.tx(|c, ctx| peering::remove(c, ctx, &peer_id, *force))?;
                self.removed.insert((at, *peer));
                self.kill_stream(at, *peer);
                self.kill_stream(*peer, at);
                Ok(Some(Outcome::Done(self.alias_ids(&detail))))
            }
            Action::PeerReAdd { peer } => {
                if !self.removed.contains(&(at, *peer)) {
                    return Ok(Some(Outcome::Skipped("still a peer".into())));
                }
                let other = &self.nodes[*peer];
                let record = PeerRecord {
                    node_id: other.id.clone(),
                    display_name: other.id.to_string(),
                    endpoint: "https://127.0.0.1:1".into(),
                    state: PeerState::Active,
                    serves: vec![other.place.to_owned()],
                    added_at_ms: node.now_ms,
                    ..peer_defaults()
                };
                node.tx(|c, ctx| peering::add(c, ctx, &record))?;
                self.removed.remove(&(at, *peer));
                done("")
            }
            Action::ReconcileWithoutPeer { peer } => {
                let peer_id = self.nodes[*peer].id.clone();
                let ctx = node.ctx();
                let actor = Actor::Operator("sim".into());
                let done = node
                    .store()
                    .with(|c| reconcile::skip_peer(c, &ctx, &peer_id, &actor))?;
                Ok(Some(Outcome::Done(
                    if done {
                        "reconciled"
                    } else {
                        "still reconciling"
                    }
                    .into(),
                )))
            }
            Action::Tick => {
                // As the node's calendar (`node::run_calendar`) runs it: a
                // reconciling node makes no owner decisions yet.
                let mut changed = node.tx(|c, ctx| {
                    let mut changed = 0;
                    if !epoch::is_reconciling(c)? {
                        changed += agreements::tick(c, ctx)? + transfers::tick(c, ctx)?;
                    }
                    Ok(changed + members::sweep_contact_status(c, ctx)?)
                })?;
                // Then, as the node's reshare task, a re-evaluation of the
                // shares under way to its end, a transaction per chunk.
                while node.tx(members::reshare_next_chunk)? {
                    changed += 1;
                }
                Ok(Some(Outcome::Done(format!("{changed} changed"))))
            }
        }
    }

    /// Reads the next batch on the stream `from`→`to` (opening it at the
    /// receiver's cursor if needed) into the in-flight queue.
    fn send_one(&mut self, from: usize, to: usize, limit: u32) -> Result<bool, Failure> {
        if !self.stream_open(from, to) && !self.adopt_if_needed(from, to)? {
            return Ok(false);
        }
        let may_serve = self.nodes[from]
            .store()
            .with(|c| reconcile::may_serve(c, &self.nodes[to].id))
            .map_err(|e| unexpected("may serve", e))?;
        if !may_serve {
            return Ok(false);
        }
        let origin = &self.nodes[from];
        let log_id = origin.log_id.clone();
        let cursor = {
            let receiver = &self.nodes[to];
            receiver
                .store()
                .with(|c| log::cursor(c, &origin.id, &log_id))
                .map_err(|e| unexpected("read the cursor", e))?
        };
        let link = self.links.entry((from, to)).or_default();
        let stream = link.stream.get_or_insert_with(|| Stream {
            server_since: cursor,
            in_flight: VecDeque::new(),
        });
        let audience = self.nodes[to].id.clone();
        let since = stream.server_since;
        let events = origin
            .store()
            .with(|c| log::read_batch(c, &audience, since, limit))
            .map_err(|e| unexpected("read a batch", e))?;
        let Some(last) = events.last() else {
            return Ok(false);
        };
        stream.server_since = last.seq;
        stream.in_flight.push_back(Batch {
            log_id,
            since,
            events,
        });
        Ok(true)
    }

    /// As the pull client does when it opens a session (`reconcile_with`):
    /// a reconciling receiver that has not adopted this origin asks for its
    /// holdings (the origin runs `holdings_for`) and adopts them first.
    /// False: the origin refused, the receiver having been restored from a
    /// backup of a branch it left, and the operator restored it again
    /// ([`World::restore_after_refusal`]); no session opens.
    fn adopt_if_needed(&mut self, from: usize, to: usize) -> Result<bool, Failure> {
        let origin_id = self.nodes[from].id.clone();
        let origin_log_id = self.nodes[from].log_id.clone();
        let needs = self.nodes[to]
            .store()
            .with(|c| reconcile::needs_holdings(c, &origin_id))
            .map_err(|e| unexpected("needs holdings", e))?;
        // Taken again only once the origin adopted the receiver (the
        // server refuses a `retake` request before).
        let retake = !needs
            && self.nodes[from]
                .store()
                .with(|c| reconcile::may_serve(c, &self.nodes[to].id))
                .map_err(|e| unexpected("may serve", e))?
            && self.nodes[to]
                .store()
                .with(|c| reconcile::awaits_retake(c, origin_id.as_str(), &origin_log_id))
                .map_err(|e| unexpected("awaits retake", e))?;
        if !needs && !retake {
            return Ok(true);
        }
        let asking = self.nodes[to].id.clone();
        let branch = self.nodes[to]
            .store()
            .with(|c| epoch::branch(c))
            .map_err(|e| unexpected("read the branch", e))?;
        let answer = {
            let origin = &self.nodes[from];
            let ctx = origin.ctx();
            origin
                .store()
                .with(|c| reconcile::holdings_for(c, &ctx, &asking, &branch))
        };
        let batches = match answer {
            Ok(batches) => batches,
            Err(CoreError::Refused(refusal)) => {
                let receiver = &self.nodes[to];
                let ctx = receiver.ctx();
                receiver
                    .store()
                    .with(|c| {
                        reconcile::note_holdings_refused(c, &ctx, &origin_id, &refusal.to_string())
                    })
                    .map_err(|e| unexpected("note the refusal", e))?;
                let again = self.restore_after_refusal(to)?;
                self.restored_again = Some(format!(
                    "{} refused {}'s holdings request (restored from a backup of a branch it left); {again}",
                    self.names[from], self.names[to]
                ));
                return Ok(false);
            }
            Err(e) => return Err(unexpected("holdings", self.alias_ids(&e.to_string()))),
        };
        self.tick_clock(to);
        self.touched.insert(to);
        let receiver = &self.nodes[to];
        let ctx = receiver.ctx();
        receiver
            .store()
            .with(|c| {
                if retake {
                    reconcile::retake(c, &ctx, &origin_id, &origin_log_id, &batches)
                } else {
                    reconcile::adopt(c, &ctx, &origin_id, &batches)
                }
            })
            .map_err(|e| {
                unexpected(
                    &format!("{} adopts {}'s holdings", self.names[to], self.names[from]),
                    self.alias_ids(&e.to_string()),
                )
            })?;
        Ok(true)
    }

    /// What the operator of `node` does when a peer refuses its holdings
    /// request because its backup holds a branch of its history it left:
    /// restores it again onto the new disk, from the latest of its backups
    /// that no peer knows to be of a left branch (there is always one: the
    /// backup an earlier restore used). Peers the node had and that
    /// backup lacks, the operator adds again.
    fn restore_after_refusal(&mut self, node: usize) -> Result<String, Failure> {
        let id = self.nodes[node].id.clone();
        let mine: Vec<usize> = (0..self.backups.len())
            .filter(|i| self.backups[*i].node == node)
            .collect();
        let accepted = mine.iter().rposition(|&b| {
            let branch = invariants::open_read_only(&self.backups[b].path)
                .map_err(CoreError::from)
                .and_then(|backup| reconcile::branch_after_restore(&backup))
                .expect("read a backup's branch");
            (0..self.nodes.len()).filter(|p| *p != node).all(|p| {
                epoch::peer_left_branch(self.nodes[p].reader(), &id, &branch)
                    .expect("check a branch")
                    .is_none()
            })
        });
        let Some(pick) = accepted else {
            return Ok("no backup of it is acceptable".into());
        };
        let peers_before: BTreeSet<usize> = (0..self.nodes.len())
            .filter(|p| *p != node && !self.removed.contains(&(node, *p)))
            .collect();
        let mut what = match self.restore(node, pick, false) {
            Outcome::Done(what) => format!("restored again from backup #{pick}: {what}"),
            other => format!("restoring it again from backup #{pick}: {other:?}"),
        };
        for peer in peers_before {
            if self.removed.contains(&(node, peer)) {
                let added = self.act(node, &Action::PeerReAdd { peer }, false)?;
                what.push_str(&format!(
                    "; peer {} added again: {added:?}",
                    self.names[peer]
                ));
            }
        }
        Ok(what)
    }

    fn send(&mut self, from: usize, to: usize, limit: u32) -> Result<Outcome, Failure> {
        if !self.linked(from, to) {
            return Ok(Outcome::Skipped("not linked".into()));
        }
        Ok(if self.send_one(from, to, limit)? {
            Outcome::Done(String::new())
        } else if let Some(again) = self.restored_again.take() {
            Outcome::Done(again)
        } else {
            Outcome::Skipped("nothing to send".into())
        })
    }

    fn deliver(
        &mut self,
        from: usize,
        to: usize,
        limit: u32,
        prefix: Option<usize>,
        crash: bool,
    ) -> Result<Outcome, Failure> {
        if !self.linked(from, to) {
            return Ok(Outcome::Skipped("not linked".into()));
        }
        let queued = self
            .links
            .get(&(from, to))
            .and_then(|l| l.stream.as_ref())
            .is_some_and(|s| !s.in_flight.is_empty());
        if !queued && !self.send_one(from, to, limit)? {
            if let Some(again) = self.restored_again.take() {
                return Ok(Outcome::Done(again));
            }
            return Ok(Outcome::Skipped("nothing to deliver".into()));
        }
        let stream = self
            .links
            .get_mut(&(from, to))
            .and_then(|l| l.stream.as_mut())
            .expect("an open stream");
        let mut batch = stream.in_flight.pop_front().expect("a batch in flight");
        let broken = match prefix {
            Some(k) if k < batch.events.len() => {
                batch.events.truncate(k);
                true
            }
            _ => false,
        };
        let outcome = self.hand_over(from, to, batch, crash)?;
        if broken {
            self.kill_stream(from, to);
        }
        Ok(outcome)
    }

    fn duplicate(&mut self, from: usize, to: usize, pick: usize) -> Result<Outcome, Failure> {
        if !self.linked(from, to) {
            return Ok(Outcome::Skipped("not linked".into()));
        }
        let Some(batch) = self.links.get(&(from, to)).and_then(|l| {
            (!l.history.is_empty()).then(|| l.history[pick % l.history.len()].clone())
        }) else {
            return Ok(Outcome::Skipped("no batch delivered yet".into()));
        };
        self.hand_over(from, to, batch, false)
    }

    /// `to` applies `batch` from `from`, as the node's pull does, and the
    /// ledger records what it took.
    fn hand_over(
        &mut self,
        from: usize,
        to: usize,
        batch: Batch,
        crash: bool,
    ) -> Result<Outcome, Failure> {
        self.tick_clock(to);
        self.touched.insert(to);
        let origin_id = self.nodes[from].id.clone();
        let receiver = &self.nodes[to];
        let cursor = receiver
            .store()
            .with(|c| log::cursor(c, &origin_id, &batch.log_id))
            .map_err(|e| unexpected("read the cursor", e))?;
        // The model's own promise: a batch never starts above the cursor
        // (the stream is consumed in order, and breaks on any loss).
        assert!(
            batch.since <= cursor,
            "simulator bug: a batch after {} handed over at cursor {cursor}",
            batch.since
        );
        if crash {
            receiver.arm_crash(CrashPoint::CursorAdvance);
        }
        let result = receiver
            .store()
            .with(|c| {
                Ok(apply_batch_with_faults(
                    c,
                    &receiver.ctx(),
                    &origin_id,
                    &batch.log_id,
                    &batch.events,
                    receiver.faults,
                ))
            })
            .and_then(|applied| applied.map_err(|e| CoreError::invalid(e.to_string())));
        let link = self.links.entry((from, to)).or_default();
        link.history.push_back(batch.clone());
        if link.history.len() > HISTORY {
            link.history.pop_front();
        }
        let outcome = match result {
            Ok(report) => {
                // Replay apply's guard on what was handed over.
                let mut at = cursor;
                let mut taken = Vec::new();
                let mut skipped = 0;
                for e in &batch.events {
                    if e.seq <= at {
                        skipped += 1;
                    } else {
                        taken.push(e.seq);
                        at = e.seq;
                    }
                }
                if (
                    report.applied + report.quarantined,
                    report.skipped,
                    report.cursor,
                ) != (taken.len() as u64, skipped, at)
                {
                    return Err(Failure {
                        check: "exactly-once".into(),
                        detail: format!(
                            "{}→{}: apply reported {report:?} for a batch of {} events at cursor {cursor}; \
                             its guard should have taken {} and skipped {skipped}, ending at {at}",
                            self.names[from],
                            self.names[to],
                            batch.events.len(),
                            taken.len()
                        ),
                    });
                }
                let ledger = self
                    .ledgers
                    .entry((to, from, batch.log_id.clone()))
                    .or_default();
                for seq in taken {
                    if !ledger.taken.insert(seq) {
                        return Err(Failure {
                            check: "exactly-once".into(),
                            detail: format!(
                                "{}→{}: event {seq} taken a second time",
                                self.names[from], self.names[to]
                            ),
                        });
                    }
                }
                self.stats.events_applied += report.applied;
                self.stats.events_skipped += report.skipped;
                self.stats.events_quarantined += report.quarantined;
                let taken: Vec<String> = batch
                    .events
                    .iter()
                    .filter(|e| e.seq > cursor)
                    .map(|e| self.describe_event(e))
                    .collect();
                for e in batch.events.iter().filter(|e| e.seq > cursor) {
                    *self
                        .stats
                        .taken_by_kind
                        .entry(log::kind_name(e.kind))
                        .or_default() += 1;
                }
                Outcome::Done(format!(
                    "applied {} skipped {} quarantined {} cursor {} [{}]",
                    report.applied,
                    report.skipped,
                    report.quarantined,
                    report.cursor,
                    taken.join(", ")
                ))
            }
            Err(e) if crash && is_crash(&e) => Outcome::Done("crashed before commit".into()),
            Err(e) => {
                return Err(unexpected(
                    &format!("apply {}→{}", self.names[from], self.names[to]),
                    self.alias_ids(&e.to_string()),
                ))
            }
        };
        if crash {
            self.nodes[to].crash();
            self.kill_streams_of(to);
        }
        Ok(outcome)
    }

    /// Why `forgery` would not be a forgery from `from` (it could be
    /// valid), if so. Checked when the step runs, since a shrunk schedule
    /// may name other members and agreements than the generator saw.
    fn not_a_forgery(&self, from: usize, forgery: &Forgery) -> Option<&'static str> {
        // Read in the forger's own database, not the model's one owner: two
        // databases may say so at once (a restore on one side of a
        // transfer, until it reconciles), and either way the member is its
        // own to share and unshare.
        let owns_here = |m: &MemberRef| {
            self.member_at(*m).is_some_and(|i| {
                self.nodes[from]
                    .reader()
                    .prepare_cached("SELECT 1 FROM members WHERE member_id = ?1 AND owner = ?2")
                    .and_then(|mut stmt| {
                        stmt.exists([self.members[i].id.as_str(), self.nodes[from].id.as_str()])
                    })
                    .expect("read the forger's members")
            })
        };
        match forgery {
            Forgery::OwnersHomeSection { member } | Forgery::Unshare { member } => {
                owns_here(member).then_some("the forger owns the member")
            }
            Forgery::RecordByAnother { author, .. } => {
                (*author == from).then_some("the forger is the author")
            }
            Forgery::AgreementEnd { agreement: Some(a) } => self
                .agreement_at(*a)
                .map(|x| self.agreements[x].parties)
                .is_some_and(|(o, i)| o == from || i == from)
                .then_some("the forger is a party"),
            Forgery::AgreementEnd { agreement: None } => None,
        }
    }

    /// An event in a trace: seq, kind, the member or agreement it is about,
    /// and for shares and host records their basis.
    fn describe_event(&self, e: &pb::Event) -> String {
        let kind = log::kind_name(e.kind);
        let basis = match EventKind::try_from(e.kind) {
            Ok(EventKind::HomeSection) => pb::HomeSection::decode(e.payload.as_slice())
                .map(|s| {
                    format!(
                        " v{}.{} under {}",
                        s.version.unwrap_or_default().generation,
                        s.version.unwrap_or_default().counter,
                        s.basis
                    )
                })
                .unwrap_or_default(),
            Ok(EventKind::HostSection) => pb::HostSection::decode(e.payload.as_slice())
                .map(|s| format!(" under {}", s.basis))
                .unwrap_or_default(),
            Ok(EventKind::Contact) => pb::ContactEvent::decode(e.payload.as_slice())
                .map(|s| format!(" under {}", s.basis))
                .unwrap_or_default(),
            Ok(EventKind::Activity) => pb::ActivityRecord::decode(e.payload.as_slice())
                .map(|s| format!(" under {}", s.basis))
                .unwrap_or_default(),
            Ok(EventKind::AgreementVersion) => pb::AgreementVersion::decode(e.payload.as_slice())
                .map(|v| format!(" v{}", v.version))
                .unwrap_or_default(),
            Ok(EventKind::AgreementVote) => pb::AgreementVote::decode(e.payload.as_slice())
                .map(|v| format!(" {} of v{}", v.vote, v.answers_version))
                .unwrap_or_default(),
            Ok(
                EventKind::AgreementActivated
                | EventKind::AgreementEnded
                | EventKind::AgreementEndApplied
                | EventKind::CopiesDropped,
            ) => pb::AgreementState::decode(e.payload.as_slice())
                .map(|v| format!(" {} v{}", v.state, v.version))
                .unwrap_or_default(),
            Ok(EventKind::Moved) => pb::Moved::decode(e.payload.as_slice())
                .map(|m| format!(" to {} g{} by {}", m.new_owner, m.generation, m.transfer_id))
                .unwrap_or_default(),
            Ok(EventKind::TransferRelease) => pb::TransferRelease::decode(e.payload.as_slice())
                .map(|r| {
                    format!(
                        " of {} g{}",
                        r.record.map(|r| r.member_id).unwrap_or_default(),
                        r.generation
                    )
                })
                .unwrap_or_default(),
            Ok(EventKind::TransferAbort) => pb::TransferAbort::decode(e.payload.as_slice())
                .map(|a| format!(" ({})", a.why))
                .unwrap_or_default(),
            _ => String::new(),
        };
        self.alias_ids(&format!("#{} {kind} {}{basis}", e.seq, e.entity))
    }

    fn forge(&mut self, from: usize, to: usize, forgery: &Forgery) -> Result<Outcome, Failure> {
        if let Some(why) = self.not_a_forgery(from, forgery) {
            return Ok(Outcome::Skipped(why.into()));
        }
        let now = self.nodes[from].now_ms;
        let member = |m: &MemberRef| self.member_at(*m).map(|i| self.members[i].id.clone());
        let (kind, entity, payload) = match forgery {
            Forgery::OwnersHomeSection { member: m } => {
                let Some(id) = member(m) else {
                    return Ok(Outcome::Skipped("unknown alias".into()));
                };
                let section = pb::HomeSection {
                    member_id: id.clone(),
                    version: Some(pb::Version {
                        generation: 9,
                        counter: 9,
                    }),
                    owner: self.names[from].clone(),
                    name: "伪造".into(),
                    ..Default::default()
                };
                (EventKind::HomeSection, id, section.encode_to_vec())
            }
            Forgery::RecordByAnother {
                member: m,
                kind,
                author,
            } => {
                let Some(id) = member(m) else {
                    return Ok(Outcome::Skipped("unknown alias".into()));
                };
                let author = self.names[*author].clone();
                let record_id = format!("forged-{}-{}", self.names[from], self.stats.steps);
                match kind {
                    RecordKind::HostSection => (
                        EventKind::HostSection,
                        id.clone(),
                        pb::HostSection {
                            member_id: id,
                            version: Some(pb::Version {
                                generation: 1,
                                counter: 99,
                            }),
                            author,
                            employer: "伪造单位".into(),
                            ..Default::default()
                        }
                        .encode_to_vec(),
                    ),
                    RecordKind::Contact => (
                        EventKind::Contact,
                        id.clone(),
                        pb::ContactEvent {
                            contact_id: record_id,
                            member_id: id,
                            author,
                            at: "2020-01-01T00:00:00".into(),
                            channel: "visit".into(),
                            ..Default::default()
                        }
                        .encode_to_vec(),
                    ),
                    RecordKind::Activity => (
                        EventKind::Activity,
                        id.clone(),
                        pb::ActivityRecord {
                            activity_id: record_id,
                            member_id: id,
                            author,
                            kind: "study".into(),
                            date: "2020-01-01".into(),
                            hours: 1.0,
                            ..Default::default()
                        }
                        .encode_to_vec(),
                    ),
                }
            }
            Forgery::Unshare { member: m } => {
                let Some(id) = member(m) else {
                    return Ok(Outcome::Skipped("unknown alias".into()));
                };
                (
                    EventKind::Unshare,
                    id.clone(),
                    pb::Unshare {
                        member_id: id,
                        version: Some(pb::Version {
                            generation: 1,
                            counter: 1,
                        }),
                        reason: "伪造".into(),
                        ..Default::default()
                    }
                    .encode_to_vec(),
                )
            }
            Forgery::AgreementEnd { agreement } => {
                let id = agreement
                    .and_then(|a| self.agreement_at(a))
                    .map(|i| self.agreements[i].id.clone())
                    .unwrap_or_else(|| "00000000-0000-7000-8000-000000000000".into());
                (
                    EventKind::AgreementEnded,
                    id.clone(),
                    pb::AgreementState {
                        agreement_id: id,
                        version: 1,
                        state: "terminated".into(),
                        reason: "伪造".into(),
                        by: self.names[from].clone(),
                    }
                    .encode_to_vec(),
                )
            }
        };
        let audience = self.nodes[to].id.clone();
        let seq = self.nodes[from]
            .store()
            .with(|c| {
                Ok(c.execute(
                    "INSERT INTO events (audience, kind, entity, payload, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                    rusqlite::params![audience.as_str(), kind as i32, entity, payload, now],
                )
                .map(|_| c.last_insert_rowid() as u64)?)
            })
            .map_err(|e| unexpected("insert a forged event", e))?;
        self.forged.insert((to, from, seq));
        self.touched.insert(from);
        Ok(Outcome::Done(format!("seq {seq}")))
    }

    // ------------------------------------------------------------ checks

    /// Every invariant, over the nodes the last step touched (the others'
    /// databases did not change, and neither did anything their checks read
    /// of the touched nodes, except as re-checked here).
    pub fn check(&mut self) -> Result<(), Failure> {
        let dbs: Vec<NodeDb<'_>> = self.nodes.iter().map(SimNode::db).collect();
        let two_owners = invariants::single_owner(&dbs)?;
        // What one of two tolerated owners sends the other as the member's
        // owner is refused there: each owns it (docs/restore.md, Going on
        // without a peer). Noted when it arrives, while the two stand.
        let mut quarantines = BTreeMap::new();
        for &i in &self.touched {
            let me = dbs[i].me();
            let rows = invariants::quarantined(&dbs[i])
                .map_err(|e| unexpected("read the quarantine", e))?;
            for q in &rows {
                let both = two_owners.iter().any(|(member, claims)| {
                    *member == q.entity
                        && claims.iter().any(|c| c == me)
                        && claims.contains(&q.origin)
                });
                if both && invariants::refused_as_owned_here(&q.reason, me) {
                    self.between_two_owners
                        .insert((i, q.origin.clone(), q.log_id.clone(), q.seq));
                }
            }
            quarantines.insert(i, rows);
        }
        let names: BTreeMap<&str, &str> = self
            .members
            .iter()
            .filter_map(|m| Some((m.id.as_str(), m.name.as_deref()?)))
            .collect();
        let written_name = |id: &str| names.get(id).map(|n| (*n).to_owned());
        for &i in &self.touched {
            invariants::copies_under_active_basis(&dbs[i])?;
            invariants::authors_are_authorities(&dbs, i, &written_name)?;
            // A restored node forgot what happened after its backup: an
            // event about a member, agreement, transfer or share it does
            // not know may be honest there, and its quarantine reason says
            // so (docs/restore.md, What is lost).
            let restored = self.nodes[i].restores > 0;
            let forged = |origin: &str, log_id: &str, seq: u64, reason: &str| {
                self.between_two_owners
                    .contains(&(i, origin.to_owned(), log_id.to_owned(), seq))
                    || (restored
                        && (reason.contains(liaison_core::outcome::FORGOTTEN_AT_RESTORE)
                            || reason.contains(liaison_core::hosting::HELD_UNTIL_RELEASED)))
                    || self
                        .names
                        .iter()
                        .position(|n| n == origin)
                        .is_some_and(|o| self.forged.contains(&(i, o, seq)))
            };
            invariants::quarantine_holds_only_invalid(&dbs[i], &quarantines[&i], &forged)?;
        }
        // Exactly once, for every pair with a touched end.
        for to in 0..self.nodes.len() {
            for from in 0..self.nodes.len() {
                if from == to || !(self.touched.contains(&to) || self.touched.contains(&from)) {
                    continue;
                }
                let key = (to, from, self.nodes[from].log_id.clone());
                let ledger = self.ledgers.entry(key).or_default();
                invariants::exactly_once(&dbs[to], &dbs[from], &self.nodes[from].log_id, ledger)?;
            }
        }
        Ok(())
    }

    /// Convergence after quiescence; `ended`: every clock is past every end.
    pub fn check_converged(&self, ended: bool) -> Result<(), Failure> {
        let dbs: Vec<NodeDb<'_>> = self.nodes.iter().map(SimNode::db).collect();
        invariants::agreements_agree(&dbs, ended)?;
        invariants::copies_converged(&dbs)?;
        let lost: BTreeSet<String> = self
            .forgotten
            .iter()
            .chain(&self.forgot_receiving)
            .map(|&m| self.members[m].id.clone())
            .collect();
        invariants::host_records_converged(&dbs, &lost)?;
        if ended {
            invariants::no_copies_left(&dbs)?;
            self.transfers_final()?;
        }
        Ok(())
    }

    /// Every member that was ever offered: one owner holding what was
    /// released, tombstones elsewhere, every transfer final on both sides
    /// and no offered record left at a receiver (`ownership::converged`,
    /// the check the end-to-end tests use), or, moved on paper, no owner
    /// at all.
    fn transfers_final(&self) -> Result<(), Failure> {
        let files: Vec<crate::ownership::NodeDb> = self
            .nodes
            .iter()
            .map(|n| crate::ownership::NodeDb::new(n.id.as_str(), &n.path))
            .collect();
        let offered: BTreeSet<usize> = self.transfers.iter().map(|t| t.member).collect();
        for m in offered {
            let member = &self.members[m];
            if member.owner.is_none() && self.on_paper(&member.id) {
                continue;
            }
            let double_restore = self.restored_holders.get(&m).is_some_and(|n| n.len() >= 2);
            if (member.owner.is_none() && self.forgotten.contains(&m) || double_restore)
                && self.held_nowhere(&member.id)
            {
                // Written (or received) after a backup its owner was restored
                // from, and held by no peer in full: lost, as docs/restore.md
                // accepts. (A receiver and its sender both restored to before
                // a transfer lose the member: the sender keeps a tombstone.)
                continue;
            }
            // The owner restored too, beside another holder: the member
            // may have left it and come back on a branch both forgot.
            let releases_forgotten = double_restore
                && member.owner.is_some_and(|owner| {
                    self.restored_holders
                        .get(&m)
                        .is_some_and(|n| n.contains(&owner))
                });
            crate::ownership::converged_after_restores(&files, &member.id, releases_forgotten)
                .map_err(|detail| Failure {
                    check: "transfers-final".into(),
                    detail: self.alias_ids(&detail),
                })?;
        }
        Ok(())
    }

    /// Whether no node holds the member's record: nobody owns it (at most
    /// tombstones are left) and no receiver holds an offer of it.
    fn held_nowhere(&self, member_id: &str) -> bool {
        self.nodes.iter().all(|n| {
            n.reader()
                .query_row(
                    "SELECT (SELECT COUNT(*) FROM members WHERE member_id = ?1 AND owner = ?2)
                          + (SELECT COUNT(*) FROM transfers WHERE member_id = ?1 AND offer IS NOT NULL)",
                    [member_id, n.id.as_str()],
                    |r| r.get::<_, i64>(0),
                )
                .is_ok_and(|held| held == 0)
        })
    }

    /// Whether the member's last holder moved it to a place on paper.
    fn on_paper(&self, member_id: &str) -> bool {
        self.nodes.iter().any(|n| {
            n.reader()
                .query_row(
                    "SELECT 1 FROM members WHERE member_id = ?1 AND moved_to_place <> '' AND owner = moved_to_place",
                    [member_id],
                    |_| Ok(()),
                )
                .is_ok()
        })
    }

    /// Counts what the run reached into `stats.coverage`: `phase` "mid"
    /// (after the first quiescence) or "end".
    pub fn record_coverage(&mut self, end: bool) {
        let count = |sql: &str| -> u64 {
            self.nodes
                .iter()
                .map(|n| {
                    n.reader()
                        .query_row(sql, [n.id.as_str()], |r| r.get::<_, u64>(0))
                        .unwrap_or(0)
                })
                .sum()
        };
        let mut put = |k: &'static str, v: u64| {
            *self.stats.coverage.entry(k).or_default() += v;
        };
        if end {
            put(
                "agreements_expired",
                count(
                    "SELECT COUNT(*) FROM agreements WHERE outflow_node = ?1 AND state = 'expired'",
                ),
            );
            put("agreements_terminated", count("SELECT COUNT(*) FROM agreements WHERE outflow_node = ?1 AND state = 'terminated'"));
            return;
        }
        let members = count("SELECT COUNT(*) FROM members WHERE owner = ?1");
        let agreements = count("SELECT COUNT(*) FROM agreements WHERE outflow_node = ?1");
        let activated =
            count("SELECT COUNT(*) FROM agreements WHERE outflow_node = ?1 AND active_version > 0");
        let amended =
            count("SELECT COUNT(*) FROM agreements WHERE outflow_node = ?1 AND active_version > 1");
        let shared = count("SELECT COUNT(DISTINCT record_id || peer) FROM disclosures WHERE record_kind = 'home_section' AND ?1 <> ''");
        let copies = count("SELECT COUNT(*) FROM home_copies WHERE ?1 <> ''");
        let host_records = count(
            "SELECT (SELECT COUNT(*) FROM host_sections WHERE author <> ?1)
                  + (SELECT COUNT(*) FROM contacts WHERE author <> ?1)
                  + (SELECT COUNT(*) FROM activities WHERE author <> ?1)",
        );
        put("members", members);
        put("agreements", agreements);
        put("agreements_activated", activated);
        put("agreements_amended", amended);
        put("members_shared", shared);
        put("copies_held", copies);
        put("host_records_at_owners", host_records);
        put(
            "transfers_offered",
            count("SELECT COUNT(*) FROM transfers WHERE sender = ?1 AND direction = 'outgoing'"),
        );
        put(
            "transfers_completed",
            count("SELECT COUNT(*) FROM transfers WHERE sender = ?1 AND state = 'completed' AND receiver NOT LIKE 'place:%'"),
        );
        put(
            "transfers_rejected",
            count("SELECT COUNT(*) FROM transfers WHERE sender = ?1 AND state = 'rejected'"),
        );
        put(
            "transfers_cancelled_or_expired",
            count("SELECT COUNT(*) FROM transfers WHERE sender = ?1 AND state IN ('cancelled', 'expired')"),
        );
        put(
            "members_moved_twice",
            count("SELECT COUNT(*) FROM members WHERE owner = ?1 AND generation > 2"),
        );
    }

    /// The end of the latest `effective_until` any node holds (published or
    /// proposed) or of the latest letter's validity plus the receiver's
    /// grace, as a clock time, and never before the latest clock.
    pub fn latest_end_ms(&self) -> i64 {
        let mut latest = self.nodes.iter().map(|n| n.now_ms).max().unwrap_or(0);
        for node in &self.nodes {
            let ends: Vec<String> = node
                .reader()
                .prepare(
                    "SELECT terms FROM agreement_versions
                     UNION ALL SELECT pending_terms FROM agreements WHERE pending_terms IS NOT NULL",
                )
                .and_then(|mut s| {
                    s.query_map([], |r| r.get::<_, Vec<u8>>(0))?
                        .map(|b| {
                            b.map(|b| {
                                pb::AgreementTerms::decode(b.as_slice())
                                    .map(|t| t.effective_until)
                                    .unwrap_or_default()
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            // Letters: the receiver's grace on an undecided offer ends last.
            let expiries: Vec<String> = node
                .reader()
                .prepare("SELECT expires_on FROM transfers")
                .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0))?.collect())
                .unwrap_or_default();
            let grace = |d: String| {
                chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                    .map(|d| (d + chrono::Duration::days(RECEIVER_GRACE_DAYS)).to_string())
                    .unwrap_or(d)
            };
            for end in ends.into_iter().chain(expiries.into_iter().map(grace)) {
                if let Ok(d) = chrono::NaiveDate::parse_from_str(&end, "%Y-%m-%d") {
                    let ms = d
                        .and_hms_opt(0, 0, 0)
                        .expect("midnight")
                        .and_utc()
                        .timestamp_millis()
                        - 8 * 3_600_000;
                    latest = latest.max(ms + DAY_MS);
                }
            }
        }
        latest
    }
}

impl Resolve for World {
    fn node(&self, index: usize) -> &str {
        &self.names[index]
    }

    fn member(&self, member: MemberRef) -> String {
        match self.member_at(member) {
            Some(i) => format!("m{i}"),
            None => "m?".into(),
        }
    }

    fn agreement(&self, agreement: AgreementRef) -> String {
        match self.agreement_at(agreement) {
            Some(i) => format!("a{i}"),
            None => "a?".into(),
        }
    }

    fn transfer(&self, transfer: TransferRef) -> String {
        match self.transfer_at(transfer) {
            Some(i) => format!("t{i}"),
            None => "t?".into(),
        }
    }
}

fn peer_defaults() -> PeerRecord {
    PeerRecord {
        node_id: NodeId::parse("xx").expect("a node id"),
        display_name: String::new(),
        endpoint: String::new(),
        fingerprint: None,
        state: PeerState::Active,
        serves: Vec::new(),
        added_at_ms: 0,
        last_contact_ms: None,
        auto_accept_branch: String::new(),
    }
}

fn terms(
    number: &str,
    today: chrono::NaiveDate,
    from_days: i64,
    length_days: i64,
    members: Vec<String>,
) -> pb::AgreementTerms {
    let from = today + chrono::Duration::days(from_days);
    pb::AgreementTerms {
        number: number.to_owned(),
        effective_from: from.to_string(),
        effective_until: (from + chrono::Duration::days(length_days)).to_string(),
        scope_kind: if members.is_empty() {
            "destination"
        } else {
            "members"
        }
        .into(),
        scope_members: members,
        dues_collector: "inflow".into(),
        ..Default::default()
    }
}

/// Whether `action` is an owner action: a restored node, until it
/// reconciled, must refuse it (docs/restore.md). The simulator's own
/// model, kept apart from the code under test: every operator write but
/// peers, reconciliation itself and the calendar. A forced peer removal
/// that would end agreements or cancel offers is refused by those
/// decisions' own checks.
fn is_owner_action(action: &Action) -> bool {
    !matches!(
        action,
        Action::PeerRemove { .. }
            | Action::PeerReAdd { .. }
            | Action::ReconcileWithoutPeer { .. }
            | Action::Tick
    )
}

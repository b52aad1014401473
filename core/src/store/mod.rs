//! The node's SQLite database: connection setup, migrations, and the tables
//! of the node's own bookkeeping (peers, pending callers, audit log).
//!
//! Architecture invariant: `store` knows nothing of gRPC, TLS, tokio or peers'
//! connections. It is plain synchronous code over a `rusqlite::Connection`;
//! the async edge (`node`) moves calls onto blocking threads.

pub mod audit;
pub mod peers;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use rusqlite_migration::{Migrations, M};

use crate::clock::Millis;
use crate::Error;

/// The ordered schema migrations. Append only: never edit a released one.
fn migrations() -> Migrations<'static> {
    Migrations::new(schema())
}

/// The schema version this program writes: the number of its migrations.
pub fn schema_version_known() -> i64 {
    schema().len() as i64
}

/// Refuses a database whose schema is newer than this program's
/// (`user_version`, which the migrations keep): its tables may mean
/// what this version cannot know.
pub fn check_schema_version(conn: &Connection) -> Result<(), Error> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = schema_version_known();
    if found > known {
        return Err(Error::Storage(crate::error::StorageError::SchemaTooNew {
            found,
            known,
        }));
    }
    Ok(())
}

fn schema() -> Vec<M<'static>> {
    vec![
        M::up(include_str!("schema/0001_node.sql")),
        M::up(include_str!("schema/0002_registry.sql")),
        M::up(include_str!("schema/0003_agreements.sql")),
        M::up(include_str!("schema/0004_transfers.sql")),
        M::up(include_str!("schema/0005_outflow_member_index.sql")),
        M::up(include_str!("schema/0006_restore.sql")),
        M::up(include_str!("schema/0007_host_end_seq.sql")),
        M::up(include_str!("schema/0008_transfer_generation.sql")),
        M::up(include_str!("schema/0009_host_end_markers.sql")),
        M::up(include_str!("schema/0010_copy_arrival.sql")),
        M::up_with_hook(include_str!("schema/0011_typed_state.sql"), migrate_meta),
        M::up_with_hook(include_str!("schema/0012_yearly_letters.sql"), |tx| {
            crate::letters::migrate_to_yearly(tx)
                .map_err(|e| rusqlite_migration::HookError::Hook(e.to_string()))
        }),
        M::up(include_str!("schema/0013_erasures.sql")),
        M::up(include_str!("schema/0014_audit_witness.sql")),
        M::up(include_str!("schema/0015_reports.sql")),
        M::up(include_str!("schema/0016_reportin.sql")),
        M::up(include_str!("schema/0017_peer_logs_taken.sql")),
        M::up(include_str!("schema/0018_branch.sql")),
        M::up(include_str!("schema/0019_reported_generations.sql")),
        M::up(include_str!("schema/0020_peer_branches.sql")),
        M::up(include_str!("schema/0021_superseded_shares.sql")),
        M::up(include_str!("schema/0022_unverified_own_sections.sql")),
        M::up(include_str!("schema/0023_host_sections_by_author.sql")),
        M::up(include_str!("schema/0024_earlier_owners.sql")),
        M::up(include_str!("schema/0025_relayed_records.sql")),
        M::up(include_str!("schema/0026_copy_release.sql")),
        M::up(include_str!("schema/0027_unverified_shown_by.sql")),
    ]
}

/// The `counters` row that counts transactions that deleted personal data
/// (triggers of migration 0013 keep it): the node checkpoints the
/// write-ahead log with TRUNCATE soon after it moves ([`Store::checkpoint`]).
pub const ERASURES: &str = "erasures";

/// Reads a whole number that `meta` holds as text; one that does not parse
/// is a damaged database, never 0.
pub fn meta_number(conn: &Connection, key: &str) -> Result<Option<i64>, Error> {
    let Some(text) = get_meta(conn, key)? else {
        return Ok(None);
    };
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .map(Some)
        .ok_or_else(|| Error::corrupt(format!("`meta` key `{key}`"), text, "a whole number"))
}

/// Migration 0011's hook: moves the restore bookkeeping and the letter
/// counter out of `meta` into their tables, refusing any value that does
/// not parse.
fn migrate_meta(tx: &rusqlite::Transaction<'_>) -> rusqlite_migration::HookResult {
    let hook = |e: Error| rusqlite_migration::HookError::Hook(e.to_string());
    let letters = meta_number(tx, "letter_seq").map_err(hook)?.unwrap_or(0);
    tx.execute(
        "INSERT INTO counters (name, value) VALUES ('letter', ?1)",
        [letters],
    )?;
    let known = get_meta(tx, "restore_known_log_ids")
        .map_err(hook)?
        .unwrap_or_default();
    let previous = get_meta(tx, "previous_log_ids")
        .map_err(hook)?
        .unwrap_or_default();
    for log_id in previous
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
    {
        let lineage = known.split(',').any(|k| k.trim() == log_id);
        tx.execute(
            "INSERT OR IGNORE INTO past_log_ids (log_id, lineage) VALUES (?1, ?2)",
            rusqlite::params![log_id, lineage],
        )?;
    }
    let restored_at_ms = meta_number(tx, "restored_at_ms")
        .map_err(hook)?
        .unwrap_or(0);
    let reconciling =
        get_meta(tx, "reconcile_state").map_err(hook)?.as_deref() == Some("reconciling");
    if restored_at_ms > 0 || reconciling {
        let number = |key: &str| meta_number(tx, key).map(|n| n.unwrap_or(0)).map_err(hook);
        tx.execute(
            "INSERT INTO restore (id, reconciling, restored_at_ms, backup_at_ms, previous_log_id, seq_floor,
                 letter_floor, finished_at_ms)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![
                reconciling,
                restored_at_ms.max(1),
                number("restore_backup_at_ms")?,
                get_meta(tx, "restore_previous_log_id").map_err(hook)?.unwrap_or_default(),
                number("restore_seq_floor")?,
                meta_number(tx, "restore_letter_floor").map_err(hook)?.unwrap_or(letters),
                number("reconcile_finished_at_ms")?,
            ],
        )?;
    }
    tx.execute(
        "DELETE FROM meta WHERE key IN ('letter_seq', 'restore_known_log_ids', 'previous_log_ids', 'restored_at_ms',
             'reconcile_state', 'restore_backup_at_ms', 'restore_previous_log_id', 'restore_seq_floor',
             'restore_letter_floor', 'reconcile_finished_at_ms')",
        [],
    )?;
    Ok(())
}

/// The value of counter `name` (0 before its first use).
pub fn counter(conn: &Connection, name: &str) -> Result<u64, Error> {
    Ok(conn
        .prepare_cached("SELECT value FROM counters WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Sets counter `name` to `value`.
pub fn set_counter(conn: &Connection, name: &str, value: u64) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO counters (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )?
    .execute(rusqlite::params![name, value])?;
    Ok(())
}

/// Reads the backup mark ([`BACKUP_MARK`]): when the backup this file is
/// was taken, if it is one.
pub fn backup_taken_at_ms(conn: &Connection) -> Result<Option<i64>, Error> {
    meta_number(conn, BACKUP_MARK)
}

/// Read-only connections a file-backed store opens beside its write
/// connection: WAL lets them read while the writer writes.
const READERS: usize = 2;

/// One database file with its single write connection and a few read-only
/// ones (none for an in-memory database: [`Store::read`] then uses the
/// write connection).
///
/// A std `Mutex` (not an async one) guards each connection: every holder
/// runs on a blocking thread and never awaits while holding it.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: std::sync::atomic::AtomicUsize,
    path: PathBuf,
}

impl Store {
    /// Opens (or creates) the database at `path`, sets it up and brings its
    /// schema up to date. A new database gets a fresh log id (docs/authority.md).
    pub fn open(path: &Path, now_ms: Millis) -> Result<Store, Error> {
        let mut conn = Connection::open(path)?;
        setup_connection(&conn)?;
        check_schema_version(&conn)?;
        migrations().to_latest(&mut conn)?;
        let readers = if path == Path::new(":memory:") {
            Vec::new()
        } else {
            (0..READERS)
                .map(|_| {
                    let reader = Connection::open_with_flags(
                        path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )?;
                    reader.busy_timeout(std::time::Duration::from_secs(5))?;
                    // A report's intermediate results stay in memory, as
                    // the writer's temporary tables do (`setup_connection`).
                    reader.pragma_update(None, "temp_store", "MEMORY")?;
                    tune_connection(&reader)?;
                    Ok(Mutex::new(reader))
                })
                .collect::<Result<Vec<_>, Error>>()?
        };
        let store = Store {
            conn: Mutex::new(conn),
            readers,
            next_reader: Default::default(),
            path: path.to_owned(),
        };
        store.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if get_meta(&tx, "log_id")?.is_none() {
                set_meta(&tx, "log_id", &uuid::Uuid::now_v7().to_string())?;
                set_meta(&tx, "created_at_ms", &now_ms.to_string())?;
            }
            tx.commit()?;
            Ok(())
        })?;
        Ok(store)
    }

    /// An in-memory database, for unit tests and the simulator.
    pub fn open_in_memory(now_ms: Millis) -> Result<Store, Error> {
        Store::open(Path::new(":memory:"), now_ms)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the connection. Callers open their own transactions
    /// (`IMMEDIATE` for writers, so they take the lock up front).
    pub fn with<R>(&self, f: impl FnOnce(&mut Connection) -> Result<R, Error>) -> Result<R, Error> {
        let mut conn = self.lock();
        f(&mut conn)
    }

    /// Runs `f` with a read-only connection (the write connection if the
    /// store has none). Each statement reads the last committed state; `f`
    /// must not write.
    pub fn read<R>(&self, f: impl FnOnce(&Connection) -> Result<R, Error>) -> Result<R, Error> {
        if self.readers.is_empty() {
            return f(&self.lock());
        }
        // A free reader if there is one, else wait for the next in turn.
        let guard = self
            .readers
            .iter()
            .find_map(|r| r.try_lock().ok())
            .unwrap_or_else(|| {
                let i = self
                    .next_reader
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    % self.readers.len();
                self.readers[i].lock().unwrap_or_else(|e| e.into_inner())
            });
        f(&guard)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: SQLite
        // rolls back an unfinished transaction when the next one begins.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn log_id(&self) -> Result<String, Error> {
        self.read(|conn| {
            get_meta(conn, "log_id")?
                .ok_or_else(|| Error::not_found("the database has no log id".into()))
        })
    }

    /// A consistent copy of the database at `out` ([`backup`]), read on a
    /// connection of its own: in WAL mode the copy is the snapshot at its
    /// start, and the write connection is not held meanwhile.
    pub fn backup(&self, out: &Path, now_ms: Millis) -> Result<u64, Error> {
        if self.path == Path::new(":memory:") {
            return self.with(|conn| backup(conn, out, now_ms));
        }
        let conn =
            Connection::open_with_flags(&self.path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        backup(&conn, out, now_ms)
    }

    /// Copies the write-ahead log into the database and truncates it to
    /// zero bytes, so that no page image written before (a deleted name,
    /// phone or ID number among them) stays in the `-wal` file. Returns
    /// false if a reader still held an older snapshot, which leaves the
    /// log in place: call again later.
    pub fn checkpoint(&self) -> Result<bool, Error> {
        self.with(|conn| {
            let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
            Ok(busy == 0)
        })
    }

    /// Size of the database file plus its write-ahead log.
    pub fn size_bytes(&self) -> u64 {
        let mut wal = self.path.as_os_str().to_owned();
        wal.push("-wal");
        [self.path.clone(), PathBuf::from(wal)]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }
}

/// Every connection gets the same pragmas. WAL with `synchronous = FULL`: a
/// peer may pull an event the instant it commits, so a commit must survive
/// power loss, not only a crash of the process (docs/replication.md).
pub fn setup_connection(conn: &Connection) -> Result<(), Error> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted personal data must not be readable from the file (docs/replication.md).
    conn.pragma_update(None, "secure_delete", "ON")?;
    // Savepoints' sub-journals (the writer runs each change of a group in
    // its own savepoint) and temporary tables stay in memory: spilled to a
    // temporary file they cost a write(2) per page and leave personal data
    // in deleted files.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    tune_connection(conn)?;
    Ok(())
}

/// Statements each connection keeps prepared (`prepare_cached`). rusqlite
/// keeps 16 by default, but one operator's write runs about 30 distinct
/// statements in a cycle, and an LRU cache smaller than the cycle misses
/// every time: each statement was parsed and planned again on every write.
const STATEMENT_CACHE: usize = 128;

/// What makes a connection fast without changing what it stores: a
/// statement cache that holds the node's statements, and query plans that
/// never depend on bound values (the query planner stability guarantee).
/// The bundled SQLite is built with `SQLITE_ENABLE_STAT4`, with which a
/// statement whose range or `LIKE` compares a bound value (`seq > ?2`, the
/// follow stream's read) is re-prepared whenever that value changes; the
/// node never runs `ANALYZE`, so there are no statistics for a new plan to
/// use anyway.
fn tune_connection(conn: &Connection) -> Result<(), Error> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

/// The `meta` key that marks a backup copy: its first open as a node's
/// database begins a restore (docs/restore.md, `core::reconcile`).
pub const BACKUP_MARK: &str = "backup_taken_at_ms";

/// Writes a consistent copy of the database to `out` (which must not exist)
/// with `VACUUM INTO`, online: writers wait for the copy, readers do not.
/// The copy is written under a temporary name, marked as a backup taken at
/// `now_ms`, synced, and renamed into place, so `out` is either complete or
/// absent. Returns its size in bytes.
pub fn backup(conn: &Connection, out: &Path, now_ms: Millis) -> Result<u64, Error> {
    if out.exists() {
        return Err(Error::conflict(format!(
            "{} exists: choose another --out, or remove it first",
            out.display()
        )));
    }
    let Some(dir) = out.parent().filter(|d| d.is_dir()) else {
        return Err(Error::invalid(format!(
            "{}: its directory does not exist on the node's machine: create it, or choose another --out",
            out.display()
        )));
    };
    let mut tmp_name = out.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".partial");
    let tmp = dir.join(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let written = (|| -> Result<u64, Error> {
        conn.execute("VACUUM INTO ?1", [tmp.to_string_lossy()])
            .map_err(|e| {
                Error::invalid(format!(
                    "cannot write {}: {e} (the node's user must be able to write {}; free space for a copy of the database is needed)",
                    tmp.display(),
                    dir.display()
                ))
            })?;
        let copy = Connection::open(&tmp)?;
        set_meta(&copy, BACKUP_MARK, &now_ms.to_string())?;
        copy.close().map_err(|(_, e)| e)?;
        let file = std::fs::File::open(&tmp)
            .map_err(|e| Error::invalid(format!("{}: {e}", tmp.display())))?;
        file.sync_all()
            .map_err(|e| Error::invalid(format!("{}: {e}", tmp.display())))?;
        std::fs::rename(&tmp, out)
            .map_err(|e| Error::invalid(format!("{}: {e}", out.display())))?;
        Ok(file.metadata().map(|m| m.len()).unwrap_or(0))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The `meta` key naming the node whose database this is.
const NODE_ID: &str = "node_id";

/// Records that this database is `node_id`'s (at every start), refusing
/// one that names another node: a file copied from another node's data
/// directory would otherwise take its records for this node's.
pub fn claim_node_id(conn: &Connection, node_id: &str) -> Result<(), Error> {
    match node_id_of(conn)? {
        Some(found) if found != node_id => Err(Error::conflict(format!(
            "this database is node `{found}`'s, but the configuration names `{node_id}`: point data_dir at `{node_id}`'s data, or restore a backup of `{node_id}` (`liaison-node restore`)"
        ))),
        Some(_) if get_meta(conn, NODE_ID)?.is_some() => Ok(()),
        _ => set_meta(conn, NODE_ID, node_id),
    }
}

/// The node whose database this is: as recorded at its starts, or, in a
/// file from before that was recorded, as its audit log's last start names.
pub fn node_id_of(conn: &Connection) -> Result<Option<String>, Error> {
    if let Some(node_id) = get_meta(conn, NODE_ID)? {
        return Ok(Some(node_id));
    }
    Ok(conn
        .query_row(
            "SELECT target FROM audit WHERE action = 'node.start' ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?)
}

pub fn get_meta(conn: &Connection, key: &str) -> Result<Option<String>, Error> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

pub fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([key, value])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Refusal;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn the_log_id_a_copy_arrived_under_moves_into_the_copy() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_version(&mut conn, 9).unwrap();
        let copy = |member: &str| {
            conn.execute(
                "INSERT INTO home_copies (member_id, owner, generation, counter, name, gender, birth_year, phone,
                     party_status, home_branch_name, home_branch_contact, membership_state, contact_status, basis,
                     outflow, received_at_ms)
                 VALUES (?1, 'pingliang', 1, 1, '王', 'F', 1980, '', 'full', '', '', 'normal', 'in_contact', 'a', x'', 0)",
                [member],
            )
            .unwrap();
        };
        copy("m1");
        copy("m2");
        conn.execute_batch(
            "INSERT INTO copy_epochs (origin, member_id, log_id) VALUES ('pingliang', 'm1', 'L1');
             INSERT INTO copy_epochs (origin, member_id, log_id) VALUES ('xian', 'm2', 'L9');",
        )
        .unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let arrived = |member: &str| -> String {
            conn.query_row(
                "SELECT arrived_log_id FROM home_copies WHERE member_id = ?1",
                [member],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(arrived("m1"), "L1");
        // Another origin's epoch row says nothing of this owner's copy.
        assert_eq!(arrived("m2"), "");
    }

    /// A database of the schema before typed state, with restore
    /// bookkeeping in `meta`.
    fn before_typed_state(meta: &[(&str, &str)]) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_version(&mut conn, 10).unwrap();
        for (key, value) in meta {
            set_meta(&conn, key, value).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO transfers (transfer_id, letter_no, direction, sender, receiver, member_id, state, issued_on,
                 expires_on, valid_days, created_at_ms, updated_at_ms)
             VALUES ('t1', 'PINGLIANG-2026-000003 (reissued as t2)', 'outgoing', 'pingliang', 'lanzhou', 'm1',
                 'cancelled', '2026-01-01', '2026-01-31', 30, 0, 0),
                    ('t2', 'PINGLIANG-2026-000003', 'outgoing', 'pingliang', 'xian', 'm1', 'released',
                 '2026-02-01', '2026-03-01', 30, 0, 0);",
        )
        .unwrap();
        conn
    }

    #[test]
    fn typed_state_moves_restore_bookkeeping_out_of_meta_and_keeps_letter_numbers() {
        let mut conn = before_typed_state(&[
            ("letter_seq", "7"),
            ("previous_log_ids", "L1,L2,L9"),
            ("restore_known_log_ids", "L1,L2"),
            ("reconcile_state", "reconciling"),
            ("restored_at_ms", "1000"),
            ("restore_backup_at_ms", "500"),
            ("restore_previous_log_id", "L2"),
            ("restore_seq_floor", "41"),
            ("restore_letter_floor", "5"),
            ("reconcile_finished_at_ms", "0"),
        ]);
        migrations().to_latest(&mut conn).unwrap();
        // The single counter became the counter of its latest letter's year.
        assert_eq!(counter(&conn, "letter").unwrap(), 0);
        assert_eq!(crate::letters::counted(&conn, 2026).unwrap(), 7);
        let past: Vec<(String, bool)> = conn
            .prepare("SELECT log_id, lineage FROM past_log_ids ORDER BY log_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            past,
            [
                ("L1".into(), true),
                ("L2".into(), true),
                ("L9".into(), false)
            ]
        );
        let restore: (bool, i64, i64, String, u64, (i32, u64)) = conn
            .query_row(
                "SELECT reconciling, restored_at_ms, backup_at_ms, previous_log_id, seq_floor, letter_floor_year,
                        letter_floor
                 FROM restore",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, (r.get(5)?, r.get(6)?))),
            )
            .unwrap();
        assert_eq!(restore, (true, 1000, 500, "L2".into(), 41, (2026, 5)));
        assert_eq!(get_meta(&conn, "letter_seq").unwrap(), None);
        assert_eq!(get_meta(&conn, "previous_log_ids").unwrap(), None);
        // The number a restored sender issued twice stays as printed, with
        // a link to the other transfer.
        let t1: (String, String) = conn
            .query_row(
                "SELECT letter_no, number_issued_again_as FROM transfers WHERE transfer_id = 't1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(t1, ("PINGLIANG-2026-000003".into(), "t2".into()));
        // A state this code never writes is refused by the schema.
        let bad = conn.execute(
            "UPDATE transfers SET state = 'pending' WHERE transfer_id = 't1'",
            [],
        );
        assert!(bad.is_err(), "an outgoing transfer cannot be pending");
    }

    #[test]
    fn yearly_letters_count_each_year_from_its_own_letters() {
        let mut conn = before_typed_state(&[("letter_seq", "61"), ("restore_letter_floor", "58")]);
        conn.execute_batch(
            "INSERT INTO transfers (transfer_id, letter_no, direction, sender, receiver, member_id, state, issued_on,
                 expires_on, valid_days, created_at_ms, updated_at_ms)
             VALUES ('t3', 'PINGLIANG-2026-000057', 'outgoing', 'pingliang', 'lanzhou', 'm2', 'released',
                 '2026-12-30', '2027-01-29', 30, 0, 0),
                    ('t4', 'PINGLIANG-2027-000058', 'outgoing', 'pingliang', 'lanzhou', 'm3', 'released',
                 '2027-01-02', '2027-02-01', 30, 0, 0),
                    ('t5', '平凉〔2027〕9号', 'outgoing', 'pingliang', 'place:610100', 'm4', 'released',
                 '2027-01-03', '2027-02-02', 30, 0, 0);",
        )
        .unwrap();
        set_meta(&conn, "restored_at_ms", "1000").unwrap();
        migrations().to_latest(&mut conn).unwrap();
        assert_eq!(crate::letters::counted(&conn, 2026).unwrap(), 57);
        assert_eq!(
            crate::letters::counted(&conn, 2027).unwrap(),
            61,
            "the latest year keeps the counter, which may have jumped past a report"
        );
        let floor: (i32, u64) = conn
            .query_row(
                "SELECT letter_floor_year, letter_floor FROM restore",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(floor, (2027, 58));
        crate::letters::check_counters(&conn, "pingliang").unwrap();
    }

    #[test]
    fn a_corrupt_counter_in_meta_is_refused_by_the_migration_not_read_as_zero() {
        let mut conn = before_typed_state(&[("letter_seq", "x7")]);
        let error = Error::from(migrations().to_latest(&mut conn).unwrap_err()).to_string();
        assert!(
            error.contains("letter_seq") && error.contains("x7") && error.contains("backup"),
            "{error}"
        );
        // Nothing of the migration was applied.
        assert_eq!(
            get_meta(&conn, "letter_seq").unwrap().as_deref(),
            Some("x7")
        );
    }

    #[test]
    fn backup_is_a_marked_copy_and_bad_paths_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("liaison.db"), 1).unwrap();
        let out = dir.path().join("backup.db");
        assert!(store.backup(&out, 7).unwrap() > 0);
        let copy = Connection::open(&out).unwrap();
        assert_eq!(get_meta(&copy, BACKUP_MARK).unwrap().as_deref(), Some("7"));
        assert_eq!(get_meta(&copy, "log_id").unwrap(), store.log_id().ok());
        assert!(matches!(
            store.backup(&out, 8),
            Err(Error::Refused(Refusal::Conflict(_)))
        ));
        let nowhere = dir.path().join("missing").join("b.db");
        assert!(
            matches!(store.backup(&nowhere, 8), Err(Error::Refused(Refusal::Invalid(ref m))) if m.contains("create it"))
        );
        assert!(!dir.path().join("backup.db.partial").exists());
    }

    #[test]
    fn reopen_keeps_log_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("liaison.db");
        let first = Store::open(&path, 1).unwrap().log_id().unwrap();
        let second = Store::open(&path, 2).unwrap().log_id().unwrap();
        assert_eq!(first, second);
        let journal: String = Store::open(&path, 3)
            .unwrap()
            .with(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(journal, "wal");
    }

    #[test]
    fn readers_see_commits_and_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("liaison.db"), 1).unwrap();
        store
            .with(|c| {
                set_meta(c, "probe", "1")?;
                Ok(())
            })
            .unwrap();
        for _ in 0..READERS + 1 {
            let seen = store.read(|c| get_meta(c, "probe")).unwrap();
            assert_eq!(seen.as_deref(), Some("1"));
        }
        assert!(store.read(|c| set_meta(c, "probe", "2")).is_err());
        let memory = Store::open_in_memory(1).unwrap();
        assert!(memory.read(|c| get_meta(c, "log_id")).unwrap().is_some());
    }
}

//! `liaison-node restore --from FILE`: puts a backup (`liaisonctl backup`)
//! in place of a stopped node's database.
//!
//! The backup is copied into the data directory first and every check runs
//! on that copy, so neither the backup nor the node's database changes
//! until all of them passed: the copy must be a whole SQLite database
//! (`PRAGMA integrity_check`), of a schema this version knows, and of this
//! node (its `meta` names the node, or, in a file from before that was
//! recorded, its audit log's last start does). Then the database in place
//! and its `-wal` and `-shm` files are moved aside together (renamed
//! `liaison.db.replaced-<time>`, with `-wal` and `-shm` beside it under the
//! same name, so SQLite never replays the old log into the restored file)
//! and the copy is renamed into place. The next start finds the backup's
//! mark and reconciles with every peer before acting as an owner
//! (docs/restore.md).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use liaison_core::reconcile::LeftBranch;
use liaison_core::store::{self, BACKUP_MARK};
use liaison_types::config::Config;
use liaison_types::time::{format_ms, Tz};

/// Why a restore was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    #[error("the node is running (its admin socket {} answers): stop it first (`systemctl stop liaison-node`), then restore", .0.display())]
    Running(PathBuf),
    #[error("cannot read the backup {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{} is not a whole Liaison database: {detail}; choose another backup", path.display())]
    Damaged { path: PathBuf, detail: String },
    #[error("{} is a backup of node `{found}`, not of `{expected}` (this configuration's node_id): restore a backup of `{expected}`", path.display())]
    OtherNode {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("{}: {detail}", path.display())]
    Schema { path: PathBuf, detail: String },
    #[error("{} holds a branch of this node's history that the database in place left when it was restored: {detail}. Its peers have moved on from that branch, so it cannot come back: restore a backup taken since that restore, or one taken no later than the backup that restore used; or keep the database in place", path.display())]
    LeftBranch { path: PathBuf, detail: String },
    #[error("data directory {}: {error}", path.display())]
    DataDir {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// When the backup was taken (its mark), in ms.
    pub backup_at_ms: i64,
    /// Where the database that was in place went, if there was one.
    pub replaced: Option<PathBuf>,
}

/// Checks the backup at `from` and puts it in place of `config`'s
/// database. The node must be stopped.
pub fn restore(config: &Config, from: &Path, now_ms: i64) -> Result<Restored, RestoreError> {
    if std::os::unix::net::UnixStream::connect(&config.admin_socket).is_ok() {
        return Err(RestoreError::Running(config.admin_socket.clone()));
    }
    let data_dir = &config.data_dir;
    let dir_error = |error| RestoreError::DataDir {
        path: data_dir.clone(),
        error,
    };
    std::fs::create_dir_all(data_dir).map_err(dir_error)?;
    let database = config.database_path();
    let copy = data_dir.join("liaison.db.restoring");
    remove_with_log(&copy);
    std::fs::copy(from, &copy).map_err(|error| RestoreError::Read {
        path: from.to_owned(),
        error,
    })?;
    let checked = check_copy(&copy, from, config.node_id.as_str());
    let backup_at_ms = match checked {
        Ok(at_ms) => at_ms,
        Err(error) => {
            remove_with_log(&copy);
            return Err(error);
        }
    };
    if database.exists() {
        if let Err(error) = check_branch(&database, &copy, from, config.time_zone) {
            remove_with_log(&copy);
            return Err(error);
        }
    }
    let replaced = if database.exists() {
        let aside = data_dir.join(format!("liaison.db.replaced-{now_ms}"));
        for suffix in ["", "-wal", "-shm"] {
            let from = with_suffix(&database, suffix);
            if from.exists() {
                std::fs::rename(&from, with_suffix(&aside, suffix)).map_err(dir_error)?;
            }
        }
        Some(aside)
    } else {
        for suffix in ["-wal", "-shm"] {
            remove_with_log(&with_suffix(&database, suffix));
        }
        None
    };
    std::fs::rename(&copy, &database).map_err(dir_error)?;
    std::fs::File::open(data_dir)
        .and_then(|dir| dir.sync_all())
        .map_err(dir_error)?;
    Ok(Restored {
        backup_at_ms,
        replaced,
    })
}

/// Checks the copy of the backup (a whole database of a schema this
/// version knows, of `node_id`) and folds its write-ahead log into it.
/// Returns when the backup was taken.
fn check_copy(copy: &Path, from: &Path, node_id: &str) -> Result<i64, RestoreError> {
    let damaged = |detail: String| RestoreError::Damaged {
        path: from.to_owned(),
        detail,
    };
    let conn = Connection::open_with_flags(copy, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|e| damaged(e.to_string()))?;
    let integrity: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut stmt| {
            stmt.query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()
        })
        .map_err(|e| damaged(e.to_string()))?;
    if integrity != ["ok"] {
        return Err(damaged(format!(
            "the integrity check found: {}",
            integrity.join("; ")
        )));
    }
    store::check_schema_version(&conn).map_err(|e| RestoreError::Schema {
        path: from.to_owned(),
        detail: e.to_string(),
    })?;
    let found = store::node_id_of(&conn)
        .map_err(|e| damaged(e.to_string()))?
        .ok_or_else(|| {
            damaged("it names no node (no `meta` node_id, no node start in its audit log)".into())
        })?;
    if found != node_id {
        return Err(RestoreError::OtherNode {
            path: from.to_owned(),
            found,
            expected: node_id.to_owned(),
        });
    }
    let backup_at_ms = store::get_meta(&conn, BACKUP_MARK)
        .map_err(|e| damaged(e.to_string()))?
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or_else(|| {
            damaged("it carries no backup mark: take backups with `liaisonctl backup`, which marks them so the node reconciles after the restore".into())
        })?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(|e| damaged(e.to_string()))?;
    conn.close().map_err(|(_, e)| damaged(e.to_string()))?;
    std::fs::File::open(copy)
        .and_then(|f| f.sync_all())
        .map_err(|error| RestoreError::Read {
            path: copy.to_owned(),
            error,
        })?;
    Ok(backup_at_ms)
}

/// Refuses a backup of a branch the database in place left
/// (`reconcile::left_branch`). A database in place that cannot be read
/// is no reason to refuse: the restore is what replaces it.
fn check_branch(database: &Path, copy: &Path, from: &Path, zone: Tz) -> Result<(), RestoreError> {
    let open = |path: &Path| {
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(liaison_core::Error::from)
    };
    let left = open(database).and_then(|current| {
        let backup = open(copy)?;
        liaison_core::reconcile::left_branch(&current, &backup)
    });
    match left {
        Ok(None) => Ok(()),
        Ok(Some(left)) => Err(RestoreError::LeftBranch {
            path: from.to_owned(),
            detail: left_detail(&left, zone),
        }),
        Err(error) => {
            tracing::warn!(%error, "cannot compare the backup with the database in place; restoring it");
            Ok(())
        }
    }
}

fn left_detail(left: &LeftBranch, zone: Tz) -> String {
    let restored = if left.restored_backup_at_ms > 0 {
        format!(
            "last restored {} from a backup taken {}",
            format_ms(left.restored_at_ms, zone),
            format_ms(left.restored_backup_at_ms, zone)
        )
    } else {
        format!(
            "last restored {} as a new database",
            format_ms(left.restored_at_ms, zone)
        )
    };
    match left.kept_to {
        Some(kept) => format!(
            "{restored}, it kept log {} up to change {}, and this backup runs to change {}",
            left.log_id, kept, left.seq
        ),
        None => format!(
            "{restored}, it does not descend from log {}, which this backup was taken under",
            left.log_id
        ),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn remove_with_log(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => tracing::debug!(path = %path.display(), "removed"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => tracing::warn!(path = %path.display(), %error, "cannot remove"),
    }
}

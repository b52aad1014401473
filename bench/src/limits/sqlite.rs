//! L_sqlite: how fast raw rusqlite can upsert member copies on this disk.
//!
//! The table is the node's own `home_copies` (its CREATE TABLE and indexes
//! are read from the node's migrations, so they cannot drift), the
//! connection gets the node's pragmas (`store::setup_connection`: WAL,
//! `synchronous = FULL`, secure delete), keys are UUIDv7 in creation order,
//! and rows carry the fields and sizes of a replicated home section. Each
//! batch size is one transaction per batch; the best one is the limit.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use prost::Message as _;
use rusqlite::{params, Connection};

use crate::fixture;
use crate::report::{median, quantile};

const MIGRATIONS: [&str; 2] = [
    include_str!("../../../core/src/store/schema/0002_registry.sql"),
    include_str!("../../../core/src/store/schema/0003_agreements.sql"),
];

/// The same statement as `core::members::save_copy`.
const UPSERT: &str = "INSERT OR REPLACE INTO home_copies (member_id, owner, generation, counter, name, gender, birth_year, phone,
     party_status, home_branch_name, home_branch_contact, membership_state, contact_status, basis, outflow, received_at_ms)
 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";

/// The `home_copies` table and its indexes, from the node's migrations.
fn schema() -> Result<String> {
    let mut statements = Vec::new();
    for file in MIGRATIONS {
        for statement in file.split(';') {
            let sql: String = statement
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            let sql = sql.trim();
            let table = sql.starts_with("CREATE TABLE home_copies ");
            let index = sql.starts_with("CREATE INDEX") && sql.contains(" ON home_copies ");
            if table || index {
                statements.push(format!("{sql};"));
            }
        }
    }
    if !statements.iter().any(|s| s.starts_with("CREATE TABLE")) {
        bail!("the node's migrations no longer create `home_copies`: update the bench");
    }
    Ok(statements.join("\n"))
}

/// One row of `home_copies`, precomputed so that only SQLite is timed.
struct Row {
    member_id: String,
    section: liaison_proto::v1::HomeSection,
    outflow: Vec<u8>,
}

fn rows(n: usize) -> Vec<Row> {
    let basis = uuid::Uuid::now_v7().to_string();
    (0..n as u64)
        .map(|i| {
            // now_v7 is monotonic within the process: keys in creation order.
            let member_id = uuid::Uuid::now_v7().to_string();
            let section = fixture::home_section(i, &member_id, &basis);
            let outflow = section.outflow.clone().unwrap_or_default().encode_to_vec();
            Row {
                member_id,
                section,
                outflow,
            }
        })
        .collect()
}

/// What one batch size achieved.
#[derive(Debug, Clone)]
pub struct BatchResult {
    pub batch: usize,
    pub insert_rows_per_s: Vec<f64>,
    pub replace_rows_per_s: Vec<f64>,
}

#[derive(Debug, Clone)]
pub struct SqliteLimit {
    pub per_batch: Vec<BatchResult>,
    /// Best median over batch sizes, inserting new keys / replacing rows.
    pub insert_best: (usize, Vec<f64>),
    pub replace_best: (usize, Vec<f64>),
    /// Durations of one-row transactions (one fsync'd commit each), in ms,
    /// one list per repetition.
    pub commit_ms: Vec<Vec<f64>>,
}

/// Measures every batch size `reps` times in a fresh database under `dir`:
/// up to `rows_max` rows or `budget` per pass.
pub fn measure(
    dir: &Path,
    batches: &[usize],
    reps: usize,
    rows_max: usize,
    budget: Duration,
) -> Result<SqliteLimit> {
    let schema = schema()?;
    let rows = rows(rows_max);
    let mut per_batch = Vec::new();
    let mut commit_ms = Vec::new();
    for &batch in batches {
        let mut result = BatchResult {
            batch,
            insert_rows_per_s: Vec::new(),
            replace_rows_per_s: Vec::new(),
        };
        for rep in 0..reps {
            let path = dir.join(format!("l_sqlite-{batch}-{rep}.db"));
            let conn =
                Connection::open(&path).with_context(|| format!("open {}", path.display()))?;
            liaison_core::store::setup_connection(&conn)?;
            conn.execute_batch(&schema)?;
            let mut commits = Vec::new();
            let (inserted, rate) = pass(&conn, &rows, batch, 2, budget, &mut commits)?;
            result.insert_rows_per_s.push(rate);
            let (_, rate) = pass(&conn, &rows[..inserted], batch, 3, budget, &mut commits)?;
            result.replace_rows_per_s.push(rate);
            if batch == 1 {
                commit_ms.push(commits);
            }
            drop(conn);
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
        per_batch.push(result);
    }
    let best = |pick: fn(&BatchResult) -> &Vec<f64>| {
        per_batch
            .iter()
            .max_by(|a, b| median(pick(a)).total_cmp(&median(pick(b))))
            .map(|r| (r.batch, pick(r).clone()))
            .unwrap_or((0, Vec::new()))
    };
    Ok(SqliteLimit {
        insert_best: best(|r| &r.insert_rows_per_s),
        replace_best: best(|r| &r.replace_rows_per_s),
        per_batch,
        commit_ms,
    })
}

/// Upserts `rows` in transactions of `batch` rows until all are written or
/// `budget` is spent; returns how many rows and the rate.
fn pass(
    conn: &Connection,
    rows: &[Row],
    batch: usize,
    counter: u64,
    budget: Duration,
    commits: &mut Vec<f64>,
) -> Result<(usize, f64)> {
    let started = Instant::now();
    let mut written = 0;
    let now_ms = chrono::Utc::now().timestamp_millis();
    for chunk in rows.chunks(batch) {
        let commit_started = Instant::now();
        conn.execute_batch("BEGIN IMMEDIATE")?;
        {
            let mut stmt = conn.prepare_cached(UPSERT)?;
            for row in chunk {
                let s = &row.section;
                stmt.execute(params![
                    row.member_id,
                    s.owner,
                    1,
                    counter,
                    s.name,
                    s.gender,
                    s.birth_year,
                    s.phone,
                    s.party_status,
                    s.home_branch_name,
                    s.home_branch_contact,
                    s.membership_state,
                    s.contact_status,
                    s.basis,
                    row.outflow,
                    now_ms
                ])?;
            }
        }
        conn.execute_batch("COMMIT")?;
        commits.push(commit_started.elapsed().as_secs_f64() * 1000.0);
        written += chunk.len();
        if started.elapsed() >= budget {
            break;
        }
    }
    Ok((written, written as f64 / started.elapsed().as_secs_f64()))
}

impl SqliteLimit {
    /// The `q`-quantile of one-row commit times, one value per repetition.
    pub fn commit_quantile_ms(&self, q: f64) -> Vec<f64> {
        self.commit_ms.iter().map(|c| quantile(c, q)).collect()
    }

    pub fn commit_p50_ms(&self) -> f64 {
        median(&self.commit_quantile_ms(0.5))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn schema_has_the_copies_table_and_its_indexes() {
        let schema = super::schema().unwrap();
        assert!(schema.contains("CREATE TABLE home_copies"));
        assert!(schema.contains("home_copies_owner"));
        assert!(schema.contains("home_copies_basis"));
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(&schema).unwrap();
    }
}

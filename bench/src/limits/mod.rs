//! The machine's own limits, measured in the same run as the scenarios:
//! [`sqlite`] (L_sqlite) and [`stream`] (L_stream).

pub mod sqlite;
pub mod stream;

use std::time::Duration;

use anyhow::Result;

use crate::report::{median, Figure, Report};
use crate::Bench;

/// Both limits, measured once per run.
#[derive(Debug, Clone)]
pub struct Limits {
    pub sqlite: sqlite::SqliteLimit,
    pub stream: stream::StreamLimit,
}

impl Limits {
    /// L_sqlite: best batched inserts of new member copies, rows/s.
    pub fn l_sqlite(&self) -> f64 {
        median(&self.sqlite.insert_best.1)
    }

    /// L_sqlite for rows that exist (a catch-up replaces copies), rows/s.
    pub fn l_sqlite_replace(&self) -> f64 {
        median(&self.sqlite.replace_best.1)
    }

    /// L_stream: best events/s over the nodes' mTLS.
    pub fn l_stream(&self) -> f64 {
        median(&self.stream.best.1)
    }

    /// The least a change can take from an owner's commit to a host's: one
    /// event over the stream plus one fsync'd commit, in ms.
    pub fn latency_floor_ms(&self) -> f64 {
        self.stream.latency_p50_ms() + self.sqlite.commit_p50_ms()
    }
}

pub async fn measure(bench: &Bench, report: &mut Report) -> Result<Limits> {
    let quick = bench.opts.quick;
    let reps = bench.opts.reps;
    let dir = bench.scratch("limits")?;
    eprintln!("liaison-bench: measuring L_sqlite");
    let (rows_max, budget) = if quick {
        (10_000, Duration::from_millis(400))
    } else {
        (100_000, Duration::from_secs(4))
    };
    let batches: &[usize] = &[1, 10, 100, 1000, 10_000];
    let sqlite_dir = dir.clone();
    let sqlite = tokio::task::spawn_blocking(move || {
        sqlite::measure(&sqlite_dir, batches, reps, rows_max, budget)
    })
    .await??;
    eprintln!("liaison-bench: measuring L_stream");
    let scale = if quick { 1 } else { 5 };
    let stream = stream::measure(
        &bench.peers,
        &[1, 10, 100, 1000],
        reps,
        |batch| match batch {
            1 => 20_000 * scale,
            10 => 100_000 * scale,
            _ => 200_000 * scale,
        },
        if quick { 300 } else { 1000 },
    )
    .await?;
    let limits = Limits { sqlite, stream };

    let s = "limits";
    report.add(
        Figure::new(s, "L_sqlite: insert member copies", "rows/s", limits.sqlite.insert_best.1.clone()).with_note(
            format!(
                "best of batch sizes {batches:?}: {} rows per transaction; home_copies schema and pragmas of the node",
                limits.sqlite.insert_best.0
            ),
        ),
    );
    report.add(
        Figure::new(
            s,
            "L_sqlite: replace member copies",
            "rows/s",
            limits.sqlite.replace_best.1.clone(),
        )
        .with_note(format!("best batch {} rows", limits.sqlite.replace_best.0)),
    );
    for result in &limits.sqlite.per_batch {
        report.add(Figure::new(
            s,
            &format!("  sqlite insert, batch {}", result.batch),
            "rows/s",
            result.insert_rows_per_s.clone(),
        ));
    }
    report.add(
        Figure::new(
            s,
            "one-row commit p50",
            "ms",
            limits.sqlite.commit_quantile_ms(0.5),
        )
        .with_note("one-row transactions, WAL + synchronous=FULL: one fsync each"),
    );
    report.add(Figure::new(
        s,
        "one-row commit p99",
        "ms",
        limits.sqlite.commit_quantile_ms(0.99),
    ));
    report.add(
        Figure::new(
            s,
            "L_stream: events over mTLS gRPC",
            "events/s",
            limits.stream.best.1.clone(),
        )
        .with_note(format!(
            "best of 1/10/100/1000 events per message: {}; {} bytes per event",
            limits.stream.best.0, limits.stream.event_bytes
        )),
    );
    for (batch, rates) in &limits.stream.per_batch {
        report.add(Figure::new(
            s,
            &format!("  stream, {batch} events/message"),
            "events/s",
            rates.clone(),
        ));
    }
    report.add(
        Figure::new(
            s,
            "one-event message latency p50",
            "ms",
            limits.stream.latency_quantile_ms(0.5),
        )
        .with_note("single-event messages 2 ms apart, send to receive"),
    );
    report.add(Figure::new(
        s,
        "one-event message latency p99",
        "ms",
        limits.stream.latency_quantile_ms(0.99),
    ));
    report.add(
        Figure::new(
            s,
            "latency floor (stream p50 + commit p50)",
            "ms",
            vec![limits.latency_floor_ms()],
        )
        .with_note("the least an owner-commit to host-commit can take on this machine"),
    );
    Ok(limits)
}

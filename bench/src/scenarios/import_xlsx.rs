//! Scenario 8, import from a workbook: an office's roster of N members as
//! an `.xlsx` file imported with `liaisonctl member import`.
//!
//! The workbook is as an office keeps it (`fixture::roster_xlsx`): a title
//! merged across the columns above the header, a number column of the
//! office's own (序号, passed over), ID numbers and phones as text, dates
//! as date cells, and every string in the shared-strings table, as Excel
//! writes them. Each repetition starts a fresh owner (its branches added)
//! and times `liaisonctl member import roster.xlsx` from its start to its
//! exit: liaisonctl reads the workbook cell by cell (calamine) and streams
//! the rows; the node checks and writes them in one transaction. The same
//! roster as CSV, into another fresh owner, separates the workbook's
//! reading from the import's own work.
//!
//! The bench's usual roster as CSV (`fixture::roster_csv`: no ID numbers,
//! fewer columns, the form scenario 1 imports) gives the import's rate in
//! the same run without the office's columns.
//!
//! Memory: liaisonctl's peak RSS (`VmHWM`, polled every 10 ms until it
//! exits; not its rusage, which on Linux also counts the bench's own
//! memory at the fork) for the workbook of N rows and, in a dry run
//! before, for one of N/10 rows: what grows with the file is what the
//! reader holds, the shared-strings table (every distinct text of the
//! sheet) and the styles; the rows go out as they are read. The node's
//! peak RSS is sampled during the import.
//!
//! Targets (ours): rows/s ≥ 0.1 × L_sqlite (the CSV import's ratio in the
//! quiet runs before, 0.12); and ≥ 0.8 × the bench's usual roster from
//! CSV in the same run, the part a workbook and an office's columns may
//! cost.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use liaison_proto::v1 as pb;
use liaison_tests::TestNode;

use super::{add_branches, import_roster, mib, pid_of, require, stop};
use crate::fixture;
use crate::procfs::{self, RssSampler};
use crate::report::{Figure, Report, Target};
use crate::Bench;

const S: &str = "8 import-xlsx";

pub async fn run(bench: &mut Bench, report: &mut Report) -> Result<()> {
    let limits = bench.limits(report).await?;
    let n = bench.members(10_000);
    let fed = bench.federation("import-xlsx")?;
    let dir = fed.dir().to_owned();
    let xlsx = dir.join("roster.xlsx");
    let small = dir.join("roster-tenth.xlsx");
    let csv = dir.join("roster.csv");
    let written = Instant::now();
    {
        let (xlsx, small) = (xlsx.clone(), small.clone());
        tokio::task::spawn_blocking(move || {
            fixture::roster_xlsx(&xlsx, n)?;
            fixture::roster_xlsx(&small, n / 10)
        })
        .await??;
    }
    std::fs::write(&csv, fixture::roster_office_csv(n))?;
    let size_mib = |path: &Path| -> Result<f64> { Ok(mib(std::fs::metadata(path)?.len() / 1024)) };
    report.note(
        S,
        format!(
            "the workbook of {n} rows: {:.1} MiB (written in {:.1} s), the CSV {:.1} MiB",
            size_mib(&xlsx)?,
            written.elapsed().as_secs_f64(),
            size_mib(&csv)?
        ),
    );

    let mut xlsx_rates = Vec::new();
    let mut csv_rates = Vec::new();
    let mut plain_rates = Vec::new();
    let mut ctl_rss = Vec::new();
    let mut ctl_rss_small = Vec::new();
    let mut node_rss = Vec::new();
    for rep in 0..bench.opts.reps {
        let mut node = fed.node(&format!("pingliang-xlsx-{rep}")).await;
        add_branches(&node);
        let small_text = small.to_str().context("a UTF-8 path")?;
        let (_, small_kib) =
            ctl(&node, &dir, &["member", "import", "--dry-run", small_text]).await?;
        let sampler = RssSampler::start(pid_of(&node)?);
        let xlsx_text = xlsx.to_str().context("a UTF-8 path")?;
        let (took, ctl_kib) = ctl(&node, &dir, &["member", "import", xlsx_text]).await?;
        node_rss.push(mib(sampler.peak_kib()));
        require(
            "members imported from the workbook",
            owned_total(&node).await?,
            n,
        )?;
        xlsx_rates.push(n as f64 / took);
        ctl_rss.push(mib(ctl_kib));
        ctl_rss_small.push(mib(small_kib));
        stop(&mut node)?;

        let mut node = fed.node(&format!("pingliang-csv-{rep}")).await;
        add_branches(&node);
        let csv_text = csv.to_str().context("a UTF-8 path")?;
        let (took_csv, _) = ctl(&node, &dir, &["member", "import", csv_text]).await?;
        require(
            "members imported from the CSV",
            owned_total(&node).await?,
            n,
        )?;
        csv_rates.push(n as f64 / took_csv);
        stop(&mut node)?;

        let mut node = fed.node(&format!("pingliang-plain-{rep}")).await;
        add_branches(&node);
        let took_plain = {
            let started = Instant::now();
            import_roster(&node, &dir, 0..n, |_| Some(fixture::HOST_PLACE))?;
            started.elapsed().as_secs_f64()
        };
        plain_rates.push(n as f64 / took_plain);
        stop(&mut node)?;
        eprintln!(
            "liaison-bench: rep {rep}: {n} rows from the workbook in {took:.2}s ({:.0}/s), from CSV in {took_csv:.2}s; liaisonctl peak {:.1} MiB ({:.1} MiB at {} rows)",
            n as f64 / took,
            mib(ctl_kib),
            mib(small_kib),
            n / 10
        );
    }

    report.add(
        Figure::new(
            S,
            &format!("{n} members from an .xlsx"),
            "rows/s",
            xlsx_rates.clone(),
        )
        .with_target(Target::at_least(
            crate::report::median(&xlsx_rates),
            0.1,
            "L_sqlite",
            limits.l_sqlite(),
        ))
        .with_note("`liaisonctl member import roster.xlsx`, start to exit, into a fresh owner: one transaction"),
    );
    report.add(
        Figure::new(S, "  the same roster from CSV", "rows/s", csv_rates)
            .with_note("the workbook's reading apart, the same import"),
    );
    let plain = crate::report::median(&plain_rates);
    report.add(
        Figure::new(
            S,
            "  the bench's usual roster from CSV",
            "rows/s",
            plain_rates,
        )
        .with_note("no ID numbers, 8 columns: as scenario 1 imports"),
    );
    report.add(
        Figure::new(
            S,
            "  from the .xlsx, against the usual roster from CSV",
            "rows/s",
            xlsx_rates.clone(),
        )
        .with_target(Target::at_least(
            crate::report::median(&xlsx_rates),
            0.8,
            "usual CSV (same run)",
            plain,
        )),
    );
    report.add(
        Figure::new(S, &format!("liaisonctl peak RSS, {n} rows"), "MiB", ctl_rss)
            .with_note("the reader's shared strings and styles, and the chunks in flight"),
    );
    report.add(Figure::new(
        S,
        &format!("liaisonctl peak RSS, {} rows (dry run)", n / 10),
        "MiB",
        ctl_rss_small,
    ));
    report.add(Figure::new(
        S,
        "node peak RSS during the import",
        "MiB",
        node_rss,
    ));
    Ok(())
}

/// How many members `node` owns.
async fn owned_total(node: &TestNode) -> Result<u64> {
    let mut admin = node.admin().await;
    Ok(admin
        .member_list(pb::MemberListRequest {
            scope: "owned".into(),
            limit: 1,
            ..Default::default()
        })
        .await?
        .into_inner()
        .total)
}

/// Runs `liaisonctl ARGS` at `node` to its exit, on a blocking thread;
/// its wall time in seconds and its peak RSS in KiB (`VmHWM`, which only
/// rises, as last read before it exited).
async fn ctl(node: &TestNode, dir: &Path, args: &[&str]) -> Result<(f64, u64)> {
    let mut command = Command::new(&liaison_tests::binaries().ctl);
    command
        .arg("--socket")
        .arg(node.socket())
        .args(args)
        .env_remove("LIAISON_SOCKET")
        .env_remove("LIAISON_CONFIG");
    let errors = dir.join(format!("liaisonctl-{}.err", uuid::Uuid::now_v7()));
    let what = args.join(" ");
    tokio::task::spawn_blocking(move || -> Result<(f64, u64)> {
        command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&errors)?);
        let started = Instant::now();
        let mut child = command.spawn().context("run liaisonctl")?;
        let mut peak_kib = 0;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if let Ok(kib) = procfs::hwm_kib(child.id()) {
                peak_kib = peak_kib.max(kib);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let took = started.elapsed().as_secs_f64();
        if !status.success() {
            bail!(
                "liaisonctl {what} failed ({status}): {}",
                std::fs::read_to_string(&errors).unwrap_or_default().trim()
            );
        }
        let _ = std::fs::remove_file(&errors);
        Ok((took, peak_kib))
    })
    .await?
}

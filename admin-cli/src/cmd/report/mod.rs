//! `liaisonctl report`: reports the node computes from its own records
//! (docs/reports.md). Every report is tables with the counting rule and
//! the definitions; this module prints them as aligned text, JSON Lines
//! or CSV (`render`), writes them as an Excel workbook (`xlsx`) and draws
//! the outflow and trend reports as SVG charts (`chart`), without knowing
//! one report from another.
//!
//! Layout: `render` (text, JSON Lines, CSV), `xlsx`, `chart`, `years`
//! (the year-end counts file `report trend --import` reads).

mod chart;
mod render;
mod xlsx;
mod years;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use liaison_proto::v1 as pb;
use liaisonctl::output::{self, Output};

use super::{places, refs, text, Admin, Failure};

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Members away (流出党员): by destination, reason, industry, gender, age,
    /// education, origin, certificate, reported in; share of all members.
    Outflow {
        #[command(flatten)]
        options: Options,
        /// Also draw members away by destination city as an SVG bar chart.
        #[arg(long, value_name = "FILE.svg")]
        chart: Option<PathBuf>,
    },
    /// Members this node hosts (流入党员): by home region, host branch,
    /// industry, reported-in month.
    Inflow(Options),
    /// Contact status of members away, and the lost-contact registers
    /// (经查找取得联系 / 经查找仍然无法取得联系党员登记表).
    Contact(Options),
    /// Transfers (组织关系转接) by peer and state; receipts overdue.
    Transfers(Options),
    /// Members away 6+ months at a fixed place, not transferred (应转尽转).
    TransferDue(Options),
    /// Activity in a period: 三会一课, study hours, volunteer service, dues;
    /// members with no activity for 6 months.
    Activity(Options),
    /// Year-end counts by year, share of all members, growth with its formula.
    Trend {
        #[command(flatten)]
        options: Options,
        /// Also draw the year-end counts as an SVG line chart.
        #[arg(long, value_name = "FILE.svg")]
        chart: Option<PathBuf>,
        /// Import year-end counts of earlier years from a CSV file with the
        /// columns 年份 (year), 流出党员 (mobile), and 党员总数 (members) or
        /// 占比 (share, per cent); then show the report.
        #[arg(long, value_name = "FILE")]
        import: Option<PathBuf>,
    },
    /// Members away without an active co-management agreement, by destination.
    Uncovered(Options),
    /// Active co-management agreements: numbers, members in scope, stations,
    /// end dates (ending within 60 days first).
    Agreements(Options),
    /// Report-in (一键报到): report-ins per station and month and the claims
    /// waiting (host); members regained through report-in (home).
    Reportin(Options),
}

/// What every report takes (a report refuses a filter it does not use,
/// saying so).
#[derive(Debug, Clone, Default, Args)]
pub struct Options {
    /// Count as of this date (YYYY-MM-DD, default today), from the dated
    /// records the node keeps; other dimensions are current values.
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<String>,
    /// Only members of this branch: its code or full name.
    #[arg(long, value_name = "ORG")]
    pub branch: Option<String>,
    /// Only members away within this place: a name (兰州, 甘肃省) or code.
    #[arg(long, value_name = "PLACE")]
    pub destination: Option<String>,
    /// Start of the period counted (YYYY-MM-DD): departures, letters
    /// issued, activities, members found, years.
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// End of the period counted (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Rows of a table that lists members (default 1000; 0: all). Totals
    /// always count every member.
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Also write the report as an Excel workbook: a sheet per table,
    /// headers in Chinese and English, and a definitions sheet.
    #[arg(long, value_name = "FILE.xlsx")]
    pub xlsx: Option<PathBuf>,
}

impl ReportCommand {
    /// The report's name as the node knows it, its options, and its chart.
    fn parts(self) -> (&'static str, Options, Option<PathBuf>) {
        match self {
            ReportCommand::Outflow { options, chart } => ("outflow", options, chart),
            ReportCommand::Inflow(options) => ("inflow", options, None),
            ReportCommand::Contact(options) => ("contact", options, None),
            ReportCommand::Transfers(options) => ("transfers", options, None),
            ReportCommand::TransferDue(options) => ("transfer_due", options, None),
            ReportCommand::Activity(options) => ("activity", options, None),
            ReportCommand::Trend { options, chart, .. } => ("trend", options, chart),
            ReportCommand::Uncovered(options) => ("uncovered", options, None),
            ReportCommand::Agreements(options) => ("agreements", options, None),
            ReportCommand::Reportin(options) => ("reportin", options, None),
        }
    }
}

pub async fn run(admin: &mut Admin, output: Output, command: ReportCommand) -> Result<(), Failure> {
    if let ReportCommand::Trend {
        import: Some(path), ..
    } = &command
    {
        import_years(admin, path).await?;
    }
    let (report, options, chart) = command.parts();
    for path in [&options.xlsx, &chart].into_iter().flatten() {
        writable(path)?;
    }
    let request = request(admin, report, &options).await?;
    let response = admin.report(request).await?.into_inner();
    if let Some(path) = &options.xlsx {
        let bytes = xlsx::workbook(&response)?;
        write_file(path, &bytes)?;
        output::note(&format!(
            "liaisonctl: wrote {} ({} sheets)\n",
            path.display(),
            response.tables.len() + 1
        ));
    }
    if let Some(path) = &chart {
        let svg = chart::draw(&response)?;
        write_file(path, svg.as_bytes())?;
        output::note(&format!("liaisonctl: wrote {}\n", path.display()));
    }
    match output {
        Output::Table => output::print_out(&render::text(&response)),
        Output::Json => render::json(&response),
        Output::Csv => output::write_out(&render::csv(&response)?),
    }
    Ok(())
}

/// The request for `report` with `options`: branch and place names
/// resolved to the codes the node counts by.
async fn request(
    admin: &mut Admin,
    report: &str,
    options: &Options,
) -> Result<pb::ReportRequest, Failure> {
    let branch = match &options.branch {
        // A host branch may be a name the host never registered.
        Some(branch) if report == "inflow" => refs::host_branch(admin, branch).await?,
        Some(branch) => refs::org(admin, branch, "").await?,
        None => String::new(),
    };
    let destination = match &options.destination {
        Some(place) => places::code(place)?,
        None => String::new(),
    };
    Ok(pb::ReportRequest {
        report: report.into(),
        as_of: text(options.as_of.clone()),
        branch,
        destination,
        period_from: text(options.from.clone()),
        period_until: text(options.until.clone()),
        limit: options.limit.unwrap_or(0),
        all_rows: options.limit == Some(0),
    })
}

/// `report trend --import FILE`: the years in the file, imported.
async fn import_years(admin: &mut Admin, path: &Path) -> Result<(), Failure> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read {}", path.display()))
        .map_err(Failure::Other)?;
    let years =
        years::parse(&bytes).map_err(|e| Failure::Refused(format!("{}: {e}", path.display())))?;
    let imported = admin
        .report_trend_import(pb::ReportTrendImportRequest { years })
        .await?
        .into_inner();
    output::note(&format!(
        "liaisonctl: imported {} years from {} ({} replaced an earlier import)\n",
        imported.imported,
        path.display(),
        imported.replaced
    ));
    Ok(())
}

/// Refuses, before the node is asked, a file that cannot be written: its
/// directory must exist.
fn writable(path: &Path) -> Result<(), Failure> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(Failure::Other(anyhow::anyhow!(
            "{}: the directory {} does not exist: create it, or name another file",
            path.display(),
            dir.display()
        )));
    }
    Ok(())
}

/// Writes `bytes` to `path` whole or not at all: a temporary file beside
/// it, renamed into place.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Failure::Other(anyhow::anyhow!("cannot write {}: {e}", path.display()))
        })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::cmd::{parse, refused};
    use crate::Command;

    /// A report as a node answers it: a summary, places grouped, a list.
    pub fn sample() -> pb::ReportResponse {
        let col = |key: &str, zh: &str, en: &str, kind: &str| pb::ReportColumn {
            key: key.into(),
            zh: zh.into(),
            en: en.into(),
            kind: kind.into(),
        };
        let t = |s: &str| pb::ReportCell {
            value: Some(pb::report_cell::Value::Text(s.into())),
        };
        let n = |v: i64| pb::ReportCell {
            value: Some(pb::report_cell::Value::Count(v)),
        };
        let x = |v: f64| pb::ReportCell {
            value: Some(pb::report_cell::Value::Number(v)),
        };
        let row = |depth: u32, cells: Vec<pb::ReportCell>| pb::ReportRow { cells, depth };
        pb::ReportResponse {
            report: "outflow".into(),
            title_zh: "流出党员统计".into(),
            title_en: "Members away (outflow)".into(),
            node_id: "pingliang".into(),
            node_name: "平凉".into(),
            as_of: "2026-12-06".into(),
            generated_at_ms: 1_796_529_188_000,
            rules: vec![
                "党员按组织关系所在地统计 — a member counts where the relationship is.".into(),
            ],
            notes: vec!["截至 2026-12-06".into()],
            tables: vec![
                pb::ReportTable {
                    key: "summary".into(),
                    zh: "总体".into(),
                    en: "Summary".into(),
                    columns: vec![
                        col("members", "党员总数", "all members", "count"),
                        col("away", "流出党员", "members away", "count"),
                        col(
                            "away_share_pct",
                            "占党员总数(%)",
                            "share of all members (%)",
                            "percent",
                        ),
                    ],
                    rows: vec![row(0, vec![n(138_700), n(7074), x(5.1)])],
                    ..Default::default()
                },
                pb::ReportTable {
                    key: "by_destination".into(),
                    zh: "按去向地".into(),
                    en: "By destination".into(),
                    columns: vec![
                        col("place", "地区", "place", "text"),
                        col("code", "代码", "code", "text"),
                        col("members", "人数", "members", "count"),
                        col("share_pct", "占比(%)", "share (%)", "percent"),
                    ],
                    rows: vec![
                        row(0, vec![t("甘肃省"), t("620000"), n(3000), x(42.4)]),
                        row(1, vec![t("兰州市"), t("620100"), n(2264), x(32.0)]),
                        row(2, vec![t("城关区"), t("620102"), n(700), x(9.9)]),
                        row(0, vec![t("陕西省"), t("610000"), n(990), x(14.0)]),
                        row(1, vec![t("西安市"), t("610100"), n(990), x(14.0)]),
                    ],
                    notes: vec!["合计 total: 7074".into()],
                    ..Default::default()
                },
                pb::ReportTable {
                    key: "members".into(),
                    zh: "名单".into(),
                    en: "Members".into(),
                    columns: vec![
                        col("name", "姓名", "name", "text"),
                        col("departed_on", "外出日期", "departed on", "date"),
                    ],
                    rows: vec![row(0, vec![t("张三"), t("2026-01-02")])],
                    rows_left_out: 5,
                    notes: vec![],
                },
            ],
            definitions: vec![pb::ReportDefinition {
                zh: "流出党员".into(),
                en: "member away".into(),
                meaning: "A member with an open outflow registration.".into(),
            }],
        }
    }

    #[test]
    fn every_report_parses_with_the_common_options() {
        for name in [
            "outflow",
            "inflow",
            "contact",
            "transfers",
            "transfer-due",
            "activity",
            "trend",
            "uncovered",
            "agreements",
            "reportin",
        ] {
            let Command::Report(command) = parse(&[
                "report",
                name,
                "--as-of",
                "2025-12-31",
                "--branch",
                "b1",
                "--limit",
                "0",
                "--xlsx",
                "r.xlsx",
            ]) else {
                panic!("{name}")
            };
            let (report, options, chart) = command.parts();
            assert_eq!(report.replace('_', "-"), name);
            assert_eq!(options.as_of.as_deref(), Some("2025-12-31"));
            assert_eq!(options.limit, Some(0));
            assert!(chart.is_none());
        }
        assert!(!refused(&[
            "report", "outflow", "--chart", "a.svg", "-o", "csv"
        ]));
        assert!(
            refused(&["report", "contact", "--chart", "a.svg"]),
            "charts: outflow and trend only"
        );
        assert!(refused(&["report", "outflow", "--import", "years.csv"]));
        assert!(!refused(&[
            "report",
            "trend",
            "--import",
            "years.csv",
            "--chart",
            "t.svg"
        ]));
        assert!(refused(&["report"]));
        assert!(refused(&["report", "roster"]));
    }

    #[test]
    fn a_file_in_a_missing_directory_is_refused_before_the_node_is_asked() {
        assert!(writable(Path::new("report.xlsx")).is_ok());
        assert!(matches!(
            writable(Path::new("/no/such/dir/report.xlsx")),
            Err(Failure::Other(_))
        ));
    }
}

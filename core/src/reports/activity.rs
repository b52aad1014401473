//! `report activity`: for a period, what the members away took part in
//! (三会一课 and the other kinds of DOMAIN §5.8), their study hours and
//! volunteer service, whether their dues are up to date, and who has no
//! recorded activity for six months; per member and per branch. A host
//! adds what it recorded for the members it hosts.

use rusqlite::Connection;

use super::inflow::HOSTED;
use super::query::{away_own, org_label, org_names, Departed, Query, AWAY_FROM};
use super::table::{count, define, number, text, Kind, Table};
use super::Report;
use crate::members::{CONTACT_INTERVAL_DAYS, LOST_AFTER_DAYS};
use crate::Error;

/// 三会一课: branch general meeting, committee, party group, party lecture.
const THREE_MEETINGS_ONE_LESSON: &str =
    "('branch_meeting', 'committee_meeting', 'group_meeting', 'party_lecture')";

/// Kinds whose hours count as study (toward 32 hours a year, DOMAIN R17).
const STUDY: &str = "('party_lecture', 'training', 'study')";

/// The columns counted per member and summed per branch: key, headers,
/// kind, and the SQL over activities `a` of the period.
const COUNTED: [(&str, &str, &str, Kind, &str); 6] = [
    (
        "three_one",
        "三会一课(次)",
        "三会一课 attended",
        Kind::Count,
        "SUM(a.kind IN THREE)",
    ),
    (
        "theme_days",
        "主题党日(次)",
        "theme party days",
        Kind::Count,
        "SUM(a.kind = 'theme_day')",
    ),
    (
        "org_life_meetings",
        "组织生活会(次)",
        "org-life meetings",
        Kind::Count,
        "SUM(a.kind = 'org_life_meeting')",
    ),
    (
        "study_hours",
        "学习时长(小时)",
        "study hours",
        Kind::Number,
        "SUM(CASE WHEN a.kind IN STUDY THEN a.hours ELSE 0 END)",
    ),
    (
        "volunteer",
        "志愿服务(次)",
        "volunteer service",
        Kind::Count,
        "SUM(a.kind = 'volunteer')",
    ),
    (
        "volunteer_hours",
        "志愿服务时长(小时)",
        "volunteer hours",
        Kind::Number,
        "SUM(CASE WHEN a.kind = 'volunteer' THEN a.hours ELSE 0 END)",
    ),
];

fn counted_sql() -> String {
    COUNTED
        .iter()
        .map(|(key, _, _, _, expr)| {
            format!(
                "COALESCE({}, 0) AS {key}",
                expr.replace("THREE", THREE_MEETINGS_ONE_LESSON)
                    .replace("STUDY", STUDY)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `table` with the counted columns added.
fn with_counted(mut table: Table) -> Table {
    for (key, zh, en, kind, _) in COUNTED {
        table = table.col(key, zh, en, kind);
    }
    table
}

fn cell(
    kind: Kind,
    row: &rusqlite::Row<'_>,
    idx: usize,
) -> Result<liaison_proto::v1::ReportCell, Error> {
    Ok(match kind {
        Kind::Number => number(row.get::<_, Option<f64>>(idx)?.unwrap_or(0.0)),
        _ => count(row.get::<_, Option<i64>>(idx)?.unwrap_or(0)),
    })
}

pub(super) fn report(conn: &Connection, q: &Query) -> Result<Report, Error> {
    let (from, until) = q.period_or_year();
    let mut params = q.params();
    params
        .set(":pfrom", from.clone())
        .set(":puntil", until.clone())
        .set(":dues_since", q.days_before(CONTACT_INTERVAL_DAYS as u64))
        .set(":active_since", q.days_before(LOST_AFTER_DAYS as u64));
    let orgs = org_names(conn)?;
    let per_member = format!(
        "WITH people AS MATERIALIZED (
             SELECT m.member_id, m.name, m.home_branch FROM {AWAY_FROM}
              WHERE {away}),
         per AS MATERIALIZED (
             SELECT p.member_id, p.name, p.home_branch, {counted},
                    COALESCE((SELECT MAX(c.at) FROM contacts c WHERE c.member_id = p.member_id
                                  AND c.channel = 'dues' AND c.at < :next), '') AS last_dues,
                    max(COALESCE((SELECT MAX(x.date) FROM activities x WHERE x.member_id = p.member_id AND x.date <= :d), ''),
                        COALESCE((SELECT substr(MAX(c.at), 1, 10) FROM contacts c WHERE c.member_id = p.member_id
                                      AND c.channel IN ('org_life', 'dues') AND c.at < :next), '')) AS last_active
               FROM people p LEFT JOIN activities a
                 ON a.member_id = p.member_id AND a.date >= :pfrom AND a.date <= :puntil
              GROUP BY p.member_id)",
        away = away_own(Departed::Any),
        counted = counted_sql(),
    );
    // Per branch: the sums, members with dues up to date, members inactive.
    let sums: Vec<String> = COUNTED
        .iter()
        .map(|(key, ..)| format!("SUM({key})"))
        .collect();
    let mut branches = with_counted(
        Table::new("by_branch", "按所在支部", "By home branch")
            .col("branch", "所在支部", "home branch", Kind::Text)
            .col("members", "流出党员", "members away", Kind::Count),
    )
    .col(
        "dues_up_to_date",
        "党费按期交纳(人)",
        "dues up to date",
        Kind::Count,
    )
    .col(
        "inactive",
        "6个月无活动(人)",
        "no activity for 6 months",
        Kind::Count,
    );
    params.each(
        conn,
        &format!(
            "{per_member} SELECT home_branch, COUNT(*), {sums},
                    SUM(last_dues >= :dues_since), SUM(last_active < :active_since)
               FROM per GROUP BY home_branch ORDER BY home_branch",
            sums = sums.join(", ")
        ),
        |row| {
            let mut cells = vec![
                text(org_label(&orgs, &row.get::<_, String>(0)?)),
                cell(Kind::Count, row, 1)?,
            ];
            for (idx, (.., kind, _)) in COUNTED.iter().enumerate() {
                cells.push(cell(*kind, row, 2 + idx)?);
            }
            cells.push(cell(Kind::Count, row, 2 + COUNTED.len())?);
            cells.push(cell(Kind::Count, row, 3 + COUNTED.len())?);
            branches.row(cells);
            Ok(())
        },
    )?;
    let mut members = with_counted(
        Table::new("members", "党员活动情况", "Per member")
            .col("name", "姓名", "name", Kind::Text)
            .col("branch", "所在支部", "home branch", Kind::Text),
    )
    .col("last_dues", "最近交纳党费", "last dues paid", Kind::Date)
    .col("dues_up_to_date", "党费按期", "dues up to date", Kind::Text)
    .col("last_active", "最近活动", "last activity", Kind::Date);
    let mut inactive = Table::new(
        "inactive",
        "6个月无活动记录党员",
        "No recorded activity for 6 months",
    )
    .col("name", "姓名", "name", Kind::Text)
    .col("branch", "所在支部", "home branch", Kind::Text)
    .col("last_active", "最近活动", "last activity", Kind::Date);
    let (mut n_members, mut n_inactive) = (0u64, 0u64);
    let active_since = q.days_before(LOST_AFTER_DAYS as u64);
    let dues_since = q.days_before(CONTACT_INTERVAL_DAYS as u64);
    let columns: Vec<&str> = COUNTED.iter().map(|(key, ..)| *key).collect();
    params.each(
        conn,
        &format!(
            "{per_member} SELECT name, home_branch, {}, last_dues, last_active FROM per
              ORDER BY home_branch, name, member_id",
            columns.join(", ")
        ),
        |row| {
            let name: String = row.get(0)?;
            let branch = org_label(&orgs, &row.get::<_, String>(1)?);
            let last_dues: String = row.get(2 + COUNTED.len())?;
            let last_active: String = row.get(3 + COUNTED.len())?;
            n_members += 1;
            if q.limit.is_none_or(|limit| members.rows() < limit) {
                let mut cells = vec![text(name.clone()), text(branch.clone())];
                for (idx, (.., kind, _)) in COUNTED.iter().enumerate() {
                    cells.push(cell(*kind, row, 2 + idx)?);
                }
                let up_to_date = last_dues.get(..10).unwrap_or("") >= dues_since.as_str();
                cells.push(text(last_dues.get(..10).unwrap_or("").to_owned()));
                cells.push(text(if up_to_date { "是 yes" } else { "否 no" }));
                cells.push(text(last_active.clone()));
                members.row(cells);
            }
            if last_active < active_since {
                n_inactive += 1;
                if q.limit.is_none_or(|limit| inactive.rows() < limit) {
                    inactive.row(vec![text(name), text(branch), text(last_active)]);
                }
            }
            Ok(())
        },
    )?;
    members.left_out(n_members - members.rows() as u64);
    members.note(format!("合计 total: {n_members}"));
    inactive.left_out(n_inactive - inactive.rows() as u64);
    inactive.note(format!("合计 total: {n_inactive}"));
    let mut report = Report::new("党员活动情况", "Activity of members away");
    report.tables.push(branches.done());
    report.tables.push(members.done());
    report.tables.push(inactive.done());
    report.tables.push(hosted(conn, &params, &orgs)?);
    report.notes.push(format!(
        "活动统计期间 period counted: {from} – {until}; 6个月无活动 and 党费按期 are judged at {}",
        q.d()
    ));
    report.definitions = vec![
        define("三会一课", "three meetings, one lesson", "Branch general meeting (党员大会), branch committee (支委会), party group meeting (党小组会) and party lecture (党课) attended in the period."),
        define("学习时长", "study hours", "Hours of party lectures, training (集中培训) and study (学习) in the period (at least 32 hours a year)."),
        define("党费按期", "dues up to date", "Dues recorded (a contact of channel dues) within the 92 days before the date: quarterly payment is allowed."),
        define("6个月无活动", "no activity for 6 months", "No activity record and no organizational life or dues in the 183 days before the date."),
        define("流入党员活动", "activity of members hosted", "Activities this node recorded for the members it hosts, by host branch: counted at their home node, shown here apart."),
    ];
    Ok(report)
}

/// What this node recorded for the members it hosts, by host branch.
fn hosted(
    conn: &Connection,
    params: &super::query::Params,
    orgs: &std::collections::HashMap<String, String>,
) -> Result<liaison_proto::v1::ReportTable, Error> {
    let mut table = with_counted(
        Table::new(
            "hosted_by_branch",
            "流入党员按所在党组织",
            "Members hosted, by host branch",
        )
        .col("branch", "流入地党组织", "host branch", Kind::Text)
        .col("members", "流入党员", "members hosted", Kind::Count),
    );
    params.each(
        conn,
        &format!(
            "WITH {HOSTED},
             per AS (SELECT h.member_id, h.host_branch, {counted}
                       FROM hosted h LEFT JOIN activities a ON a.member_id = h.member_id AND a.author = :me
                        AND a.date >= :pfrom AND a.date <= :puntil
                      GROUP BY h.member_id)
             SELECT host_branch, COUNT(*), {sums} FROM per GROUP BY host_branch ORDER BY host_branch",
            counted = counted_sql(),
            sums = COUNTED
                .iter()
                .map(|(key, ..)| format!("SUM({key})"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        |row| {
            let mut cells = vec![
                text(org_label(orgs, &row.get::<_, String>(0)?)),
                cell(Kind::Count, row, 1)?,
            ];
            for (idx, (.., kind, _)) in COUNTED.iter().enumerate() {
                cells.push(cell(*kind, row, 2 + idx)?);
            }
            table.row(cells);
            Ok(())
        },
    )?;
    Ok(table.done())
}

//! `member import` and `member export`: the roster as CSV.
//!
//! UTF-8 with or without a byte-order mark; headers in English (as
//! exported) or Chinese (as typed by an organization department). Every
//! bad row is reported with its line number; a file with a bad row imports
//! nothing unless the operator asks to skip bad rows.

use liaison_proto::v1 as pb;
use rusqlite::Connection;

use super::{members, Ctx};
use crate::Error;
use liaison_types::validate;

/// Columns in export order, each with the header names accepted on import.
const COLUMNS: [(&str, &[&str]); 26] = [
    ("member_id", &["成员编号", "编号"]),
    ("name", &["姓名"]),
    ("gender", &["性别"]),
    ("birth_date", &["出生日期"]),
    ("ethnicity", &["民族"]),
    ("native_place", &["籍贯"]),
    ("national_id", &["公民身份号码", "身份证号", "身份证号码"]),
    ("education", &["学历"]),
    ("occupation", &["人员类别", "职业"]),
    ("origin", &["城乡", "户籍类别"]),
    ("party_status", &["党员类别", "党员身份"]),
    ("joined_on", &["入党日期", "入党时间"]),
    ("full_member_on", &["转正日期", "转正时间"]),
    ("home_branch", &["所在支部", "所在党支部", "党支部"]),
    ("phone", &["联系电话", "电话", "手机"]),
    ("home_address", &["家庭住址"]),
    ("membership_state", &["党籍状态"]),
    // The open outflow registration (流出登记), if the member is away.
    ("destination_place", &["去向地代码", "流向地代码"]),
    ("destination_node", &["服务节点"]),
    ("departed_on", &["外出日期", "流出日期"]),
    ("expected_return", &["预计返回日期"]),
    ("outflow_reason", &["外出原因"]),
    ("fixed_location", &["固定地点"]),
    ("direction", &["流向单位类型"]),
    ("certificate_no", &["活动证编号"]),
    ("card_no", &["联络卡编号"]),
];

#[derive(Debug, Default)]
pub struct ImportOutcome {
    pub imported: u64,
    pub skipped: u64,
    pub problems: Vec<(u64, String)>,
}

impl ImportOutcome {
    /// Whether the caller should commit: no problems, or told to skip them.
    pub fn commit(&self, skip_bad: bool, dry_run: bool) -> bool {
        !dry_run && (self.problems.is_empty() || skip_bad)
    }
}

fn column_of(header: &str) -> Option<usize> {
    let header = header.trim().trim_start_matches('\u{feff}');
    COLUMNS
        .iter()
        .position(|(en, zh)| header.eq_ignore_ascii_case(en) || zh.contains(&header))
}

/// Imports every row it can, in the caller's transaction; the caller commits
/// or rolls back according to [`ImportOutcome::commit`].
pub fn import(conn: &Connection, ctx: &Ctx<'_>, bytes: &[u8]) -> Result<ImportOutcome, Error> {
    crate::epoch::act_as_owner(conn)?;
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Error::invalid(format!(
            "the file is not UTF-8 (byte {}): save it as UTF-8 CSV",
            e.valid_up_to()
        ))
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| Error::invalid(format!("line 1: cannot read the header row: {e}")))?
        .clone();
    let mut positions: Vec<Option<usize>> = Vec::new();
    let mut seen = [false; COLUMNS.len()];
    for header in headers.iter() {
        let column = column_of(header);
        match column {
            Some(idx) if seen[idx] => {
                return Err(Error::invalid(format!(
                    "line 1: column `{header}` appears twice"
                )));
            }
            Some(idx) => seen[idx] = true,
            None => {
                let known: Vec<String> = COLUMNS
                    .iter()
                    .map(|(en, zh)| format!("{en}/{}", zh[0]))
                    .collect();
                return Err(Error::invalid(format!(
                    "line 1: unknown column `{header}`; known columns: {}",
                    known.join(", ")
                )));
            }
        }
        positions.push(column);
    }
    for required in [
        "name",
        "gender",
        "birth_date",
        "party_status",
        "home_branch",
    ] {
        let idx = COLUMNS
            .iter()
            .position(|(en, _)| *en == required)
            .unwrap_or(0);
        if !seen[idx] {
            return Err(Error::invalid(format!(
                "line 1: the required column `{required}` ({}) is missing",
                COLUMNS[idx].1[0]
            )));
        }
    }
    let mut outcome = ImportOutcome::default();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                outcome
                    .problems
                    .push((line, format!("cannot read the row: {e}")));
                outcome.skipped += 1;
                continue;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        if record.len() != headers.len() {
            outcome.problems.push((
                line,
                format!(
                    "has {} fields, the header has {}",
                    record.len(),
                    headers.len()
                ),
            ));
            outcome.skipped += 1;
            continue;
        }
        let mut cells: [Option<String>; COLUMNS.len()] = Default::default();
        for (cell, position) in record.iter().zip(&positions) {
            if let Some(idx) = position {
                cells[*idx] = Some(cell.trim().to_owned());
            }
        }
        match import_row(conn, ctx, cells) {
            Ok(()) => outcome.imported += 1,
            Err(e @ Error::Storage(_)) => return Err(e),
            Err(e) => {
                outcome.problems.push((line, e.to_string()));
                outcome.skipped += 1;
            }
        }
    }
    Ok(outcome)
}

fn import_row(
    conn: &Connection,
    ctx: &Ctx<'_>,
    cells: [Option<String>; COLUMNS.len()],
) -> Result<(), Error> {
    // A savepoint per row, so a bad row leaves nothing behind even when the
    // good rows are kept.
    conn.execute_batch("SAVEPOINT import_row")?;
    let result = import_row_inner(conn, ctx, cells);
    match result {
        Ok(()) => conn.execute_batch("RELEASE import_row")?,
        Err(_) => conn.execute_batch("ROLLBACK TO import_row; RELEASE import_row")?,
    }
    result
}

fn import_row_inner(
    conn: &Connection,
    ctx: &Ctx<'_>,
    cells: [Option<String>; COLUMNS.len()],
) -> Result<(), Error> {
    let [member_id, name, gender, birth_date, ethnicity, native_place, national_id, education, occupation, origin, party_status, joined_on, full_member_on, home_branch, phone, home_address, membership_state, destination_place, destination_node, departed_on, expected_return, outflow_reason, fixed_location, direction, certificate_no, card_no] =
        cells;
    let fields = pb::MemberFields {
        name,
        gender,
        birth_date,
        ethnicity,
        native_place,
        national_id,
        education,
        occupation,
        origin,
        party_status,
        joined_on,
        full_member_on,
        home_branch,
        phone,
        home_address,
        membership_state: membership_state.filter(|s| !s.is_empty()),
    };
    let member_id = match member_id.filter(|id| !id.is_empty()) {
        Some(id) => {
            let id = validate::member_id(&id)?;
            // An id names a member this node holds (a row of its own
            // export, edited): updated, by the owner's rules. Any other id
            // is refused: this node cannot know that another node does not
            // own it, and one id must never have two owners.
            if members::load_home(conn, &id)?.is_none() {
                return Err(Error::conflict(format!(
                    "member id {id} is not a member of this node: a roster's member_id (成员编号) comes from this node's own export; leave it empty to add the member as new"
                )));
            }
            members::member_update(conn, ctx, &id, &fields)?;
            id
        }
        None => members::member_add(conn, ctx, &fields)?.member_id,
    };
    let destination_place = destination_place.unwrap_or_default();
    if destination_place.is_empty() {
        return Ok(());
    }
    if let Some(open) = members::open_outflow(conn, &member_id)? {
        if open.destination_place == destination_place {
            return Ok(());
        }
        return Err(Error::conflict(format!(
            "member {member_id} is already away to {}; the file says {destination_place}: `outflow return` first",
            open.destination_place
        )));
    }
    let fixed_location = match fixed_location
        .unwrap_or_default()
        .trim()
        .to_lowercase()
        .as_str()
    {
        "" | "0" | "no" | "false" | "否" => false,
        "1" | "yes" | "true" | "是" => true,
        other => {
            return Err(Error::invalid(format!(
                "fixed_location `{other}` is not yes/no (是/否)"
            )))
        }
    };
    members::outflow_register(
        conn,
        ctx,
        &pb::OutflowRequest {
            member_id,
            destination_place,
            destination_node: destination_node.unwrap_or_default(),
            direction: direction.unwrap_or_default(),
            departed_on: departed_on.unwrap_or_default(),
            expected_return: expected_return.unwrap_or_default(),
            reason: outflow_reason.unwrap_or_default(),
            fixed_location,
            certificate_no: certificate_no.unwrap_or_default(),
            card_no: card_no.unwrap_or_default(),
            ..pb::OutflowRequest::default()
        },
    )?;
    Ok(())
}

/// Every member this node owns, as CSV with the English headers.
pub fn export(conn: &Connection, ctx: &Ctx<'_>) -> Result<(Vec<u8>, u64), Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let csv_error = |e: csv::Error| Error::invalid(format!("cannot write CSV: {e}"));
    writer
        .write_record(COLUMNS.iter().map(|(en, _)| *en))
        .map_err(csv_error)?;
    let ids: Vec<String> = conn
        .prepare("SELECT member_id FROM members WHERE owner = ?1 ORDER BY member_id")?
        .query_map([ctx.me.as_str()], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    for id in &ids {
        let Some(m) = members::load_home(conn, id)? else {
            continue;
        };
        let o = members::open_outflow(conn, id)?.unwrap_or_default();
        let fixed = if o.outflow_id.is_empty() {
            ""
        } else if o.fixed_location {
            "yes"
        } else {
            "no"
        };
        writer
            .write_record([
                &m.member_id,
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
                &o.destination_place,
                &o.destination_node,
                &o.departed_on,
                &o.expected_return,
                &o.reason,
                fixed,
                &o.direction,
                &o.certificate_no,
                &o.card_no,
            ])
            .map_err(csv_error)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| Error::invalid(format!("cannot write CSV: {e}")))?;
    Ok((bytes, ids.len() as u64))
}

//! `member import` and `member export`: the roster (党员信息库) as offices
//! keep it in spreadsheets.
//!
//! `liaisonctl` reads the file (an `.xlsx` workbook, or CSV in UTF-8 or
//! GBK: `liaison_types::sheet`) and streams its rows, one text per column;
//! an [`Importer`] checks and writes them one at a time in the caller's
//! transaction, so a roster of any size is never held whole. Every bad row
//! is named by its row and by its column's header as the file writes it;
//! the caller commits only when no row is bad, or when told to skip them
//! ([`ImportOutcome::commit`]).
//!
//! A row is a new member unless the import updates: then a row whose
//! national ID number (or member id, from this node's own export) names a
//! member this node owns changes that member where the sheet differs, and
//! says what it changed. Members not in the sheet stay as they are, and an
//! empty 去向地 leaves a member's outflow registration as it is (a return
//! is recorded with `outflow return`, never by a sheet).

use std::collections::HashMap;

use liaison_proto::v1 as pb;
use liaison_types::sheet::{self, Column, Header, MEMBER_COLUMNS, ORG_COLUMNS};
use liaison_types::{places, validate};
use rusqlite::{params, Connection, OptionalExtension};

use crate::members::{self, FieldDiff};
use crate::refs::{self, Kind as RefKind};
use crate::{refusal_at as at, Ctx, Error, FieldRefusal, Refusal};

/// The most problems, and changed or added members, an outcome lists (its
/// counts are whole): enough to read through, and a bounded answer.
pub const LISTED_MAX: usize = 10_000;

/// A bad row's problem: the row, the column's header as the file writes
/// it (empty for the row as a whole), and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub row: u64,
    pub column: String,
    pub message: String,
}

/// A member a row changed or added, and the fields it changed or set
/// (column header, before, after; values as people read them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub row: u64,
    pub member_id: String,
    pub name: String,
    pub changes: Vec<(String, String, String)>,
}

#[derive(Debug, Default)]
pub struct ImportOutcome {
    /// New members.
    pub added: u64,
    /// Members the sheet changed, and members it names without a change.
    pub updated: u64,
    pub unchanged: u64,
    /// Bad rows: each has a problem in `problems` (while listed).
    pub skipped: u64,
    pub problems: Vec<Problem>,
    pub changed: Vec<Listed>,
    pub added_list: Vec<Listed>,
    /// Changed and added members beyond [`LISTED_MAX`].
    pub unlisted: u64,
    /// What the operator should know that is no problem.
    pub notes: Vec<String>,
}

impl ImportOutcome {
    /// Whether the caller should commit: no bad row, or told to skip them.
    pub fn commit(&self, skip_bad: bool, dry_run: bool) -> bool {
        !dry_run && (self.skipped == 0 || skip_bad)
    }

    fn problem(&mut self, row: u64, column: String, message: String) {
        if self.problems.len() < LISTED_MAX {
            self.problems.push(Problem {
                row,
                column,
                message,
            });
        }
    }

    fn list(&mut self, added: bool, listed: Listed) {
        if self.changed.len() + self.added_list.len() >= LISTED_MAX {
            self.unlisted += 1;
        } else if added {
            self.added_list.push(listed);
        } else {
            self.changed.push(listed);
        }
    }
}

/// What became of a good row.
enum Done {
    Added(Listed),
    Changed(Listed),
    Unchanged,
    /// The template's example row, passed over.
    Example,
}

/// A roster being imported, row after row, in the caller's transaction.
pub struct Importer<'c> {
    conn: &'c Connection,
    ctx: &'c Ctx<'c>,
    update: bool,
    /// Each column of the rows: its column of the roster, and its header
    /// as the file writes it.
    columns: Vec<(&'static Column, String)>,
    /// Where each field is in a row, by the column's English name.
    at: HashMap<&'static str, usize>,
    /// Organizations and places as typed, resolved (an import names the
    /// same few again and again).
    orgs: HashMap<String, String>,
    org_labels: HashMap<String, String>,
    places: HashMap<String, String>,
    outcome: ImportOutcome,
}

impl<'c> Importer<'c> {
    /// Starts an import of rows with `columns` (each the column's English
    /// name and its header as the file writes it). Refused: an unknown or
    /// repeated column, or a required one missing: every new member needs
    /// 姓名, 性别, 出生日期, 党员类别 and 所在支部; an update may leave them
    /// out when the sheet has a column to find members by (公民身份号码 or
    /// 成员编号), and a row that finds no member then needs them.
    pub fn new(
        conn: &'c Connection,
        ctx: &'c Ctx<'c>,
        columns: &[(String, String)],
        update: bool,
    ) -> Result<Importer<'c>, Error> {
        crate::epoch::act_as_owner(conn)?;
        let mut found = Vec::with_capacity(columns.len());
        let mut at = HashMap::new();
        for (idx, (key, header)) in columns.iter().enumerate() {
            let Some(column) = sheet::columns::by_key(&MEMBER_COLUMNS, key) else {
                return Err(Error::invalid(format!(
                    "column `{key}` ({header}) is not a roster column"
                )));
            };
            if at.insert(column.key, idx).is_some() {
                return Err(Error::invalid(format!(
                    "the column {} ({key}) is there twice",
                    column.header
                )));
            }
            found.push((column, header.clone()));
        }
        let matches = at.contains_key("national_id") || at.contains_key("member_id");
        if !(update && matches) {
            let missing: Vec<String> = MEMBER_COLUMNS
                .iter()
                .filter(|c| c.required && !at.contains_key(c.key))
                .map(|c| format!("{} ({})", c.header, c.key))
                .collect();
            if !missing.is_empty() {
                let why = if update {
                    "; an update without them needs a 公民身份号码 or 成员编号 column to find the members by"
                } else {
                    ""
                };
                return Err(Error::invalid(format!(
                    "the sheet has no column {}: a new member needs it{why}",
                    missing.join(", ")
                )));
            }
        }
        Ok(Importer {
            conn,
            ctx,
            update,
            columns: found,
            at,
            orgs: HashMap::new(),
            org_labels: HashMap::new(),
            places: HashMap::new(),
            outcome: ImportOutcome::default(),
        })
    }

    /// Imports one row: `cells` one per column, `problems` the cells the
    /// reader could not read (by column index). A bad row is counted and
    /// named, and leaves nothing behind; only a failure of the database is
    /// an error.
    pub fn row(
        &mut self,
        row: u64,
        cells: &[String],
        problems: &[(usize, String)],
    ) -> Result<(), Error> {
        if cells.len() != self.columns.len() {
            self.bad(
                row,
                None,
                format!(
                    "has {} cells, the header {}",
                    cells.len(),
                    self.columns.len()
                ),
            );
            return Ok(());
        }
        if !problems.is_empty() {
            for (column, message) in problems {
                let header = self.columns.get(*column).map(|(_, h)| h.clone());
                self.outcome
                    .problem(row, header.unwrap_or_default(), message.clone());
            }
            self.outcome.skipped += 1;
            return Ok(());
        }
        // A savepoint per row, so a bad row leaves nothing behind even when
        // the good rows are kept.
        self.conn.execute_batch("SAVEPOINT import_row")?;
        let result = self.process(row, cells);
        match result {
            Ok(_) => self.conn.execute_batch("RELEASE import_row")?,
            Err(_) => self
                .conn
                .execute_batch("ROLLBACK TO import_row; RELEASE import_row")?,
        }
        match result {
            Ok(Done::Added(listed)) => {
                self.outcome.added += 1;
                self.outcome.list(true, listed);
            }
            Ok(Done::Changed(listed)) => {
                self.outcome.updated += 1;
                self.outcome.list(false, listed);
            }
            Ok(Done::Unchanged) => self.outcome.unchanged += 1,
            Ok(Done::Example) => self.outcome.notes.push(format!(
                "row {row} is the template's example ({}): not imported",
                self.cell(cells, "name").unwrap_or_default()
            )),
            Err(FieldRefusal {
                error: error @ Error::Storage(_),
                ..
            }) => return Err(error),
            Err(FieldRefusal { field, error }) => self.bad(row, field, error.to_string()),
        }
        Ok(())
    }

    /// What the import came to.
    pub fn finish(self) -> ImportOutcome {
        self.outcome
    }

    fn bad(&mut self, row: u64, field: Option<&str>, message: String) {
        let column = field.map(|f| self.header_of(f)).unwrap_or_default();
        self.outcome.problem(row, column, message);
        self.outcome.skipped += 1;
    }

    /// A field's column header as the file writes it, or the roster's
    /// Chinese header for a field the file has no column for.
    fn header_of(&self, field: &str) -> String {
        match self.at.get(field) {
            Some(&idx) => self.columns[idx].1.clone(),
            None => sheet::columns::by_key(&MEMBER_COLUMNS, field)
                .map_or(field, |c| c.header)
                .to_owned(),
        }
    }

    /// The row's cell of the field `key`, trimmed, if the sheet has the
    /// column.
    fn cell<'r>(&self, cells: &'r [String], key: &str) -> Option<&'r str> {
        self.at.get(key).map(|&idx| cells[idx].trim())
    }

    fn process(&mut self, row: u64, cells: &[String]) -> Result<Done, FieldRefusal> {
        if self.is_example(cells) {
            return Ok(Done::Example);
        }
        let target = self.target(cells)?;
        let home_branch = match self.cell(cells, "home_branch") {
            Some(branch) if !branch.is_empty() => {
                Some(self.org(branch).map_err(at("home_branch"))?)
            }
            other => other.map(str::to_owned),
        };
        let destination = match self.cell(cells, "destination_place") {
            Some(place) if !place.is_empty() => Some(self.place(place)?),
            _ => None,
        };
        let text = |key: &str| self.cell(cells, key).map(str::to_owned);
        let fields = pb::MemberFields {
            name: text("name"),
            gender: text("gender"),
            birth_date: text("birth_date"),
            ethnicity: text("ethnicity"),
            native_place: text("native_place"),
            national_id: text("national_id").map(|id| id.to_uppercase()),
            education: text("education"),
            occupation: text("occupation"),
            origin: text("origin"),
            party_status: text("party_status"),
            joined_on: text("joined_on"),
            full_member_on: text("full_member_on"),
            home_branch,
            phone: text("phone"),
            home_address: text("home_address"),
            membership_state: text("membership_state").filter(|s| !s.is_empty()),
        };
        let (conn, ctx) = (self.conn, self.ctx);
        let Some(member_id) = target else {
            let member_id = members::member_add_checked(conn, ctx, &fields)?;
            match &destination {
                Some(place) => {
                    members::outflow_register_checked(
                        conn,
                        ctx,
                        &self.outflow(cells, &member_id, place)?,
                    )?;
                }
                None => self.no_outflow_cells(cells)?,
            }
            let name = fields.name.unwrap_or_default();
            return Ok(Done::Added(Listed {
                row,
                member_id,
                name,
                changes: Vec::new(),
            }));
        };
        let mut edit = members::OwnedEdit::load(conn, ctx, &member_id)?;
        let mut diff = edit.update(conn, ctx, &fields)?;
        let name = edit.name().to_owned();
        match &destination {
            Some(place) if edit.is_away() => {
                let update = self.outflow_update(cells, &member_id, place)?;
                diff.extend(edit.correct_outflow(conn, ctx, &update)?);
            }
            Some(place) => {
                let register = self.outflow(cells, &member_id, place)?;
                diff.extend(edit.register_outflow(conn, ctx, &register)?);
            }
            None if edit.is_away() => {}
            None => self.no_outflow_cells(cells)?,
        }
        if diff.is_empty() {
            return Ok(Done::Unchanged);
        }
        let changes = diff
            .into_iter()
            .map(|d| self.shown(d))
            .collect::<Result<_, Error>>()?;
        Ok(Done::Changed(Listed {
            row,
            member_id,
            name,
            changes,
        }))
    }

    /// Whether the row is the template's example, untouched: the sheet
    /// has every column of the template, and the row its example in each.
    fn is_example(&self, cells: &[String]) -> bool {
        self.columns.len() == MEMBER_COLUMNS.len()
            && self
                .columns
                .iter()
                .zip(cells)
                .all(|((column, _), cell)| cell.trim() == column.example)
    }

    /// The member a row names, if the import updates and it names one; a
    /// row that names a member of this node when the import does not
    /// update is refused, saying so.
    fn target(&self, cells: &[String]) -> Result<Option<String>, FieldRefusal> {
        let national_id = self
            .cell(cells, "national_id")
            .filter(|id| !id.is_empty())
            .map(str::to_uppercase);
        let member_id = self.cell(cells, "member_id").filter(|id| !id.is_empty());
        let holders = match &national_id {
            Some(id) => self.owned_with_national_id(id)?,
            None => Vec::new(),
        };
        if !self.update {
            if let Some(id) = member_id {
                return Err(at("member_id")(Error::conflict(format!(
                    "{id} names a member already recorded (a row of an export): to change members from a sheet, import with --update; to add the row as a new member, leave {} empty",
                    self.header_of("member_id")
                ))));
            }
            if let (Some(id), Some((holder, name))) = (&national_id, holders.first()) {
                return Err(at("national_id")(Error::conflict(format!(
                    "national ID number {id} is already {name}'s (member {holder}): to change members from a sheet, import with --update"
                ))));
            }
            return Ok(None);
        }
        let by_member_id = match member_id {
            Some(id) => {
                let id = validate::member_id(id).map_err(at("member_id"))?;
                let owner: Option<String> = self
                    .conn
                    .prepare_cached("SELECT owner FROM members WHERE member_id = ?1")?
                    .query_row([&id], |r| r.get(0))
                    .optional()?;
                if owner.as_deref() != Some(self.ctx.me.as_str()) {
                    return Err(at("member_id")(Error::conflict(format!(
                        "member id {id} is not a member of this node: a roster's {} comes from this node's own export; leave it empty to add the member as new",
                        self.header_of("member_id")
                    ))));
                }
                Some(id)
            }
            None => None,
        };
        match (holders.as_slice(), by_member_id) {
            ([], found) => Ok(found),
            ([(holder, _)], None) => Ok(Some(holder.clone())),
            (holders, Some(id)) if holders.iter().any(|(holder, _)| *holder == id) => Ok(Some(id)),
            ([(holder, name)], Some(id)) => Err(at("national_id")(Error::conflict(format!(
                "the national ID number is {name}'s (member {holder}), but {} names member {id}: correct one of them",
                self.header_of("member_id")
            )))),
            (holders, None) => {
                let listed: Vec<String> = holders
                    .iter()
                    .map(|(holder, name)| format!("{name} ({holder})"))
                    .collect();
                Err(at("national_id")(Error::conflict(format!(
                    "the national ID number is held by {} members of this node: {}; give {} to say which",
                    holders.len(),
                    listed.join(", "),
                    self.header_of("member_id")
                ))))
            }
            (_, Some(id)) => Err(at("national_id")(Error::conflict(format!(
                "the national ID number is other members', but {} names member {id}: correct one of them",
                self.header_of("member_id")
            )))),
        }
    }

    /// The members this node owns with the national ID number `id` (a
    /// transfer's release may have brought a second one): id and name.
    fn owned_with_national_id(&self, id: &str) -> Result<Vec<(String, String)>, Error> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT member_id, name FROM members WHERE national_id = ?1 AND national_id <> '' AND owner = ?2 ORDER BY member_id LIMIT 5",
            )?
            .query_map(params![id, self.ctx.me.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?)
    }

    /// [`org_code`], remembered for the rows after.
    fn org(&mut self, text: &str) -> Result<String, Error> {
        if let Some(id) = self.orgs.get(text) {
            return Ok(id.clone());
        }
        let id = org_code(self.conn, self.ctx, text)?;
        self.orgs.insert(text.to_owned(), id.clone());
        Ok(id)
    }

    /// A place typed by code, name or path, or as exported: its code.
    fn place(&mut self, text: &str) -> Result<String, FieldRefusal> {
        if let Some(code) = self.places.get(text) {
            return Ok(code.clone());
        }
        let code = places::code_of(text)
            .map_err(|e| at("destination_place")(Error::invalid(e.to_string())))?;
        self.places.insert(text.to_owned(), code.clone());
        Ok(code)
    }

    /// The outflow registration of a row that has a destination.
    fn outflow(
        &self,
        cells: &[String],
        member_id: &str,
        place: &str,
    ) -> Result<pb::OutflowRequest, FieldRefusal> {
        let text = |key: &str| self.cell(cells, key).unwrap_or_default().to_owned();
        Ok(pb::OutflowRequest {
            member_id: member_id.to_owned(),
            destination_place: place.to_owned(),
            destination_node: text("destination_node"),
            direction: text("direction"),
            departed_on: text("departed_on"),
            expected_return: text("expected_return"),
            reason: text("outflow_reason"),
            fixed_location: self.fixed_location(cells)?.unwrap_or(false),
            certificate_no: text("certificate_no"),
            card_no: text("card_no"),
            ..pb::OutflowRequest::default()
        })
    }

    /// The correction of an open registration a row with a destination
    /// makes: the fields of its columns (an empty 服务节点 leaves the node
    /// to the destination).
    fn outflow_update(
        &self,
        cells: &[String],
        member_id: &str,
        place: &str,
    ) -> Result<pb::OutflowUpdateRequest, FieldRefusal> {
        let text = |key: &str| self.cell(cells, key).map(str::to_owned);
        Ok(pb::OutflowUpdateRequest {
            member_id: member_id.to_owned(),
            destination_place: Some(place.to_owned()),
            destination_node: text("destination_node").filter(|n| !n.is_empty()),
            direction: text("direction"),
            departed_on: text("departed_on"),
            expected_return: text("expected_return"),
            reason: text("outflow_reason"),
            fixed_location: self.fixed_location(cells)?,
            certificate_no: text("certificate_no"),
            card_no: text("card_no"),
            ..pb::OutflowUpdateRequest::default()
        })
    }

    fn fixed_location(&self, cells: &[String]) -> Result<Option<bool>, FieldRefusal> {
        let Some(text) = self.cell(cells, "fixed_location") else {
            return Ok(None);
        };
        match text.to_lowercase().as_str() {
            "" | "否" | "0" | "no" | "n" | "false" => Ok(Some(false)),
            "是" | "1" | "yes" | "y" | "true" => Ok(Some(true)),
            other => Err(at("fixed_location")(Error::invalid(format!(
                "`{other}` is not 是 or 否 (yes or no)"
            )))),
        }
    }

    /// Refuses outflow cells without a destination: they would be lost.
    fn no_outflow_cells(&self, cells: &[String]) -> Result<(), FieldRefusal> {
        const OUTFLOW: [&str; 6] = [
            "departed_on",
            "expected_return",
            "outflow_reason",
            "direction",
            "certificate_no",
            "card_no",
        ];
        match OUTFLOW
            .iter()
            .find(|key| self.cell(cells, key).is_some_and(|c| !c.is_empty()))
        {
            Some(key) => Err(at("destination_place")(Error::invalid(format!(
                "{} is filled in but {} is empty: give the destination (a place's name or code), or empty the outflow columns",
                self.header_of(key),
                self.header_of("destination_place")
            )))),
            None => Ok(()),
        }
    }

    /// A change as people read it: the column's header, and the values
    /// before and after with organizations and places named.
    fn shown(&mut self, diff: FieldDiff) -> Result<(String, String, String), Error> {
        let column = self.header_of(diff.field);
        let (old, new) = match diff.field {
            "home_branch" => (self.org_label(&diff.old)?, self.org_label(&diff.new)?),
            "destination_place" => (places::label(&diff.old), places::label(&diff.new)),
            "membership_state" => (
                sheet::columns::membership_state_label(&diff.old).to_owned(),
                sheet::columns::membership_state_label(&diff.new).to_owned(),
            ),
            _ => (diff.old, diff.new),
        };
        Ok((column, old, new))
    }

    /// An organization's name with its code: `崆峒区农村第一党支部 (pl-kt-01)`.
    fn org_label(&mut self, org_id: &str) -> Result<String, Error> {
        if org_id.is_empty() {
            return Ok(String::new());
        }
        if let Some(label) = self.org_labels.get(org_id) {
            return Ok(label.clone());
        }
        let name: Option<String> = self
            .conn
            .prepare_cached("SELECT name FROM orgs WHERE org_id = ?1")?
            .query_row([org_id], |r| r.get(0))
            .optional()?;
        let label = match name {
            Some(name) => format!("{name} ({org_id})"),
            None => org_id.to_owned(),
        };
        self.org_labels.insert(org_id.to_owned(), label.clone());
        Ok(label)
    }
}

/// An organization of this node typed by code, full name, or both as
/// exported (`崆峒区农村第一党支部 (pl-kt-01)`): its code.
fn org_code(conn: &Connection, ctx: &Ctx<'_>, text: &str) -> Result<String, Error> {
    match refs::resolve(conn, ctx, RefKind::Org, text, "") {
        Ok(resolved) => Ok(resolved.id),
        Err(Error::Refused(Refusal::NotFound(why))) => match shown_code(text) {
            Some(code) => refs::resolve(conn, ctx, RefKind::Org, code, "")
                .map(|resolved| resolved.id)
                .map_err(|_| Error::not_found(why)),
            None => Err(Error::not_found(why)),
        },
        Err(other) => Err(other),
    }
}

/// What an organizations sheet came to: the codes added, and the bad rows
/// skipped, each named by sheet, row and column.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OrgImportOutcome {
    pub added: Vec<String>,
    pub problems: Vec<String>,
}

/// Adds the organizations of a sheet, in order (a parent before its
/// children, named by code or full name): every bad row is named, by its
/// row and its column's header as the file writes it, and a file with one
/// imports nothing unless the request says to skip bad rows (a child of a
/// skipped parent is then bad too).
pub fn org_import(
    conn: &Connection,
    ctx: &Ctx<'_>,
    request: &pb::OrgImportRequest,
) -> Result<OrgImportOutcome, Error> {
    crate::epoch::act_as_owner(conn)?;
    if request.orgs.is_empty() {
        return Err(Error::invalid(
            "no organizations in the file: it needs a header row and one organization per row"
                .into(),
        ));
    }
    let header_of = |field: &str| -> String {
        let given = request.columns.iter().find(|c| c.field == field);
        match (given, sheet::columns::by_key(&ORG_COLUMNS, field)) {
            (Some(column), _) => column.header.clone(),
            (None, Some(column)) => column.header.to_owned(),
            (None, None) => field.to_owned(),
        }
    };
    let sheet = match request.sheet.as_str() {
        "" => String::new(),
        name => format!("sheet {name}, "),
    };
    let mut problems = Vec::new();
    let mut added = Vec::new();
    for (idx, org) in request.orgs.iter().enumerate() {
        let row = request.rows.get(idx).copied().unwrap_or(idx as u64 + 1);
        conn.execute_batch("SAVEPOINT org_row")?;
        let result = (|| {
            let mut org = org.clone();
            if !org.parent_org.trim().is_empty() {
                org.parent_org = org_code(conn, ctx, &org.parent_org).map_err(at("parent"))?;
            }
            members::org_add_checked(conn, ctx, &org)
        })();
        match result {
            Ok(org) => {
                conn.execute_batch("RELEASE org_row")?;
                added.push(org.org_id);
            }
            Err(FieldRefusal {
                error: error @ Error::Storage(_),
                ..
            }) => return Err(error),
            Err(FieldRefusal { field, error }) => {
                conn.execute_batch("ROLLBACK TO org_row; RELEASE org_row")?;
                let column = field
                    .map(|f| format!(", column {}", header_of(f)))
                    .unwrap_or_default();
                problems.push(format!("{sheet}row {row}{column}: {error}"));
            }
        }
    }
    if !problems.is_empty() && !request.skip_bad {
        let rows = if problems.len() == 1 { "row" } else { "rows" };
        return Err(Error::invalid(format!(
            "{} bad {rows}, nothing was imported (fix them, or pass --skip-bad):\n{}",
            problems.len(),
            problems.join("\n")
        )));
    }
    Ok(OrgImportOutcome { added, problems })
}

/// The code in a reference written as an export writes it, `name (code)`.
fn shown_code(text: &str) -> Option<&str> {
    let text = text.trim();
    text.strip_suffix(')')
        .and_then(|t| t.rsplit_once('('))
        .or_else(|| text.strip_suffix('）').and_then(|t| t.rsplit_once('（')))
        .map(|(_, code)| code.trim())
        .filter(|code| !code.is_empty())
}

/// Imports a CSV roster whole, as `liaisonctl` would stream it: the
/// header row found below any title, columns the roster does not have
/// passed over. For the simulator and tests, which hold rosters as text.
pub fn import_csv(
    conn: &Connection,
    ctx: &Ctx<'_>,
    bytes: &[u8],
    update: bool,
) -> Result<ImportOutcome, Error> {
    let unreadable = |e: sheet::SheetError| Error::invalid(e.to_string());
    let mut source = sheet::csv::CsvSource::open(bytes).map_err(unreadable)?;
    let header = Header::find(&mut source, &MEMBER_COLUMNS).map_err(unreadable)?;
    let columns: Vec<(String, String)> = header
        .columns
        .iter()
        .map(|f| (f.column.key.to_owned(), f.header.clone()))
        .collect();
    let mut importer = Importer::new(conn, ctx, &columns, update)?;
    while let Some(read) = header.next(&mut source).map_err(unreadable)? {
        importer.row(read.number, &read.cells, &read.problems)?;
    }
    Ok(importer.finish())
}

/// Every member this node owns, one row each in the order of the roster's
/// columns ([`MEMBER_COLUMNS`]), as stored: branches and places by code,
/// the open outflow registration if the member is away (`fixed_location`
/// as yes or no).
pub fn export(conn: &Connection, ctx: &Ctx<'_>) -> Result<Vec<Vec<String>>, Error> {
    let ids: Vec<String> = conn
        .prepare("SELECT member_id FROM members WHERE owner = ?1 ORDER BY member_id")?
        .query_map([ctx.me.as_str()], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows = Vec::with_capacity(ids.len());
    for id in &ids {
        let Some(m) = members::load_home(conn, id)? else {
            continue;
        };
        let o = members::open_outflow(conn, id)?.unwrap_or_default();
        let fixed = match (o.outflow_id.is_empty(), o.fixed_location) {
            (true, _) => "",
            (false, true) => "yes",
            (false, false) => "no",
        };
        let mut row = Vec::with_capacity(MEMBER_COLUMNS.len());
        row.push(m.member_id.clone());
        row.extend(
            m.roster_fields()
                .iter()
                .map(|(_, value)| (*value).to_owned()),
        );
        row.extend([
            o.destination_place,
            o.destination_node,
            o.departed_on,
            o.expected_return,
            o.reason,
            fixed.to_owned(),
            o.direction,
            o.certificate_no,
            o.card_no,
        ]);
        debug_assert_eq!(row.len(), MEMBER_COLUMNS.len());
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_export_row_follows_the_roster_columns() {
        let keys: Vec<&str> = MEMBER_COLUMNS.iter().map(|c| c.key).collect();
        let home: Vec<&str> = members::HomeRecord::default()
            .roster_fields()
            .iter()
            .map(|(key, _)| *key)
            .collect();
        assert_eq!(keys[0], "member_id");
        assert_eq!(
            keys[1..17],
            home[..],
            "export() writes the home fields here"
        );
        assert_eq!(
            keys[17..],
            [
                "destination_place",
                "destination_node",
                "departed_on",
                "expected_return",
                "outflow_reason",
                "fixed_location",
                "direction",
                "certificate_no",
                "card_no",
            ],
            "export() writes the open registration's fields in this order"
        );
    }

    #[test]
    fn references_as_exported_give_their_code() {
        assert_eq!(
            shown_code("崆峒区农村第一党支部 (pl-kt-01)"),
            Some("pl-kt-01")
        );
        assert_eq!(shown_code("兰州市（6201）"), Some("6201"));
        assert_eq!(shown_code("崆峒区农村第一党支部"), None);
        assert_eq!(shown_code("()"), None);
    }
}

//! Records as people name them: a member by its name, a basis (the
//! agreement or transfer a record was shared under) by its agreement
//! number or letter number. SQL fragments, so a list names every row in
//! the query that reads it.

use rusqlite::{Connection, OptionalExtension};

use crate::Error;

/// SQL for the name of the member whose id is the column `col`, as this
/// node holds it: its own record, else its copy; empty if neither.
pub fn member_name_sql(col: &str) -> String {
    format!(
        "COALESCE((SELECT m.name FROM members m WHERE m.member_id = {col}),
                  (SELECT c.name FROM home_copies c WHERE c.member_id = {col}), '')"
    )
}

/// SQL for the basis in the column `col` as people name it:
/// `agreement 平凉-兰州-2026-01` or `transfer PINGLIANG-2026-000001`, else
/// the id itself (a basis this node knows no row of).
pub fn basis_label_sql(col: &str) -> String {
    format!(
        "COALESCE('agreement ' || (SELECT a.number FROM agreements a WHERE a.agreement_id = {col}),
                  'transfer ' || (SELECT t.letter_no FROM transfers t WHERE t.transfer_id = {col} LIMIT 1),
                  {col})"
    )
}

/// `basis` as people name it ([`basis_label_sql`]); empty stays empty.
pub fn basis_label(conn: &Connection, basis: &str) -> Result<String, Error> {
    if basis.is_empty() {
        return Ok(String::new());
    }
    let label = conn
        .query_row(&format!("SELECT {}", basis_label_sql("?1")), [basis], |r| {
            r.get::<_, String>(0)
        })
        .optional()?;
    Ok(label.unwrap_or_else(|| basis.to_owned()))
}

/// The name of `member_id` as this node holds it ([`member_name_sql`]).
pub fn member_name(conn: &Connection, member_id: &str) -> Result<String, Error> {
    Ok(conn.query_row(
        &format!("SELECT {}", member_name_sql("?1")),
        [member_id],
        |r| r.get(0),
    )?)
}

//! Organizations: the branches members belong to, and their contacts.

use liaison_proto::v1 as pb;
use liaison_types::validate;
use rusqlite::{params, Connection, OptionalExtension};

use crate::{refusal_at as at, Ctx, Error, FieldRefusal};

pub fn org_add(conn: &Connection, ctx: &Ctx<'_>, org: &pb::Org) -> Result<pb::Org, Error> {
    org_add_checked(conn, ctx, org).map_err(Error::from)
}

/// [`org_add`], naming the field a refusal is about (as the columns of an
/// organizations sheet name it: code, name, level, parent, form,
/// contact_person, phone).
pub fn org_add_checked(
    conn: &Connection,
    ctx: &Ctx<'_>,
    org: &pb::Org,
) -> Result<pb::Org, FieldRefusal> {
    crate::epoch::act_as_owner(conn)?;
    let org_id = validate::code("org id", &org.org_id).map_err(at("code"))?;
    let name = validate::text("name", &org.name, 100).map_err(at("name"))?;
    if name.is_empty() {
        return Err(at("name")(Error::invalid(
            "organization name is empty".into(),
        )));
    }
    let level = validate::org_level(&org.level).map_err(at("level"))?;
    let form = validate::org_form(&org.form).map_err(at("form"))?;
    let parent = org.parent_org.trim().to_owned();
    if !parent.is_empty() && org_name(conn, &parent)?.is_none() {
        return Err(at("parent")(Error::not_found(format!(
            "parent organization {parent} does not exist: add it first (`org list` shows them)"
        ))));
    }
    if org_name(conn, &org_id)?.is_some() {
        return Err(at("code")(Error::conflict(format!(
            "organization {org_id} already exists"
        ))));
    }
    let contact_person =
        validate::text("contact person", &org.contact_person, 50).map_err(at("contact_person"))?;
    let phone = validate::phone(&org.phone).map_err(at("phone"))?;
    conn.execute(
        "INSERT INTO orgs (org_id, name, level, form, parent_org, contact_person, phone, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![org_id, name, level, form, parent, contact_person, phone, ctx.now_ms],
    )?;
    Ok(pb::Org {
        org_id,
        name,
        level,
        form,
        parent_org: parent,
        contact_person,
        phone,
    })
}

pub fn org_list(conn: &Connection) -> Result<Vec<pb::Org>, Error> {
    let mut stmt = conn.prepare(
        "SELECT org_id, name, level, form, parent_org, contact_person, phone FROM orgs ORDER BY org_id",
    )?;
    let orgs = stmt
        .query_map([], |r| {
            Ok(pb::Org {
                org_id: r.get(0)?,
                name: r.get(1)?,
                level: r.get(2)?,
                form: r.get(3)?,
                parent_org: r.get(4)?,
                contact_person: r.get(5)?,
                phone: r.get(6)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(orgs)
}

pub(super) fn org_name(conn: &Connection, org_id: &str) -> Result<Option<String>, Error> {
    Ok(conn
        .prepare_cached("SELECT name FROM orgs WHERE org_id = ?1")?
        .query_row([org_id], |r| r.get(0))
        .optional()?)
}

pub(super) fn org_contact(conn: &Connection, org_id: &str) -> Result<(String, String), Error> {
    Ok(conn
        .prepare_cached(
            "SELECT name, TRIM(contact_person || ' ' || phone) FROM orgs WHERE org_id = ?1",
        )?
        .query_row([org_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or_default())
}

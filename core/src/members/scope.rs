//! Which members the active agreements this node coordinates cover: read
//! from the agreements' rows once, to decide sharing for many members.

use liaison_proto::v1 as pb;
use prost::Message;
use rusqlite::{params, Connection, OptionalExtension};

use crate::{Ctx, Error};

/// One active agreement this node coordinates, its terms decoded.
#[derive(Debug)]
struct ScopeEntry {
    agreement_id: String,
    inflow: String,
    /// `Some` for a scope of listed members, `None` for a scope of places
    /// (the places the inflow node serves).
    members: Option<std::collections::HashSet<String>>,
}

/// The active agreements this node coordinates, read and decoded once, to
/// decide [`covering`] for many members in one transaction. Valid while the
/// agreements, their versions and the peers' places do not change: build a
/// new one after any of those changes.
#[derive(Debug)]
pub struct Scope {
    entries: Vec<ScopeEntry>,
    /// Whether `inflow` serves `destination place` (memoized `LIKE` match).
    served: std::cell::RefCell<std::collections::HashMap<(String, String), bool>>,
}

impl Scope {
    pub fn load(conn: &Connection, ctx: &Ctx<'_>) -> Result<Scope, Error> {
        type Row = (String, String, Option<Vec<u8>>, String);
        let rows: Vec<Row> = conn
            .prepare_cached(
                "SELECT a.agreement_id, a.inflow_node, v.terms, a.copies_dropped_for FROM agreements a
                 LEFT JOIN agreement_versions v ON v.agreement_id = a.agreement_id AND v.version = a.active_version
                 WHERE a.outflow_node = ?1 AND a.state = 'active' ORDER BY a.agreement_id",
            )?
            .query_map([ctx.me.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let entries = rows
            .into_iter()
            .filter_map(|(agreement_id, inflow, bytes, dropped_for)| {
                let terms = pb::AgreementTerms::decode(bytes?.as_slice()).ok()?;
                // The host's clock passed this version's end and it dropped
                // its copies: it holds nothing under it, whatever this
                // node's clock says.
                if !dropped_for.is_empty() && terms.effective_until == dropped_for {
                    return None;
                }
                let members = (terms.scope_kind == "members")
                    .then(|| terms.scope_members.into_iter().collect());
                Some(ScopeEntry {
                    agreement_id,
                    inflow,
                    members,
                })
            })
            .collect();
        Ok(Scope {
            entries,
            served: Default::default(),
        })
    }

    /// No active agreement: nothing covers anyone.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether some agreement's scope is a set of places (so coverage
    /// depends on the member's open outflow).
    pub fn needs_outflow(&self) -> bool {
        self.entries.iter().any(|e| e.members.is_none())
    }

    /// The members listed by name in some agreement's scope.
    pub fn listed_members(&self) -> impl Iterator<Item = &String> {
        self.entries
            .iter()
            .filter_map(|e| e.members.as_ref())
            .flatten()
    }

    /// [`covering`] for a member whose open outflow is `outflow`.
    pub fn covering(
        &self,
        conn: &Connection,
        member_id: &str,
        outflow: Option<&pb::OutflowView>,
    ) -> Result<Vec<(String, String)>, Error> {
        let mut out = Vec::new();
        for entry in &self.entries {
            let covered = match (&entry.members, outflow) {
                (Some(listed), _) => listed.contains(member_id),
                (None, Some(outflow)) => {
                    self.serves(conn, &entry.inflow, &outflow.destination_place)?
                }
                (None, None) => false,
            };
            if covered {
                out.push((entry.agreement_id.clone(), entry.inflow.clone()));
            }
        }
        Ok(out)
    }

    fn serves(&self, conn: &Connection, inflow: &str, place: &str) -> Result<bool, Error> {
        let key = (inflow.to_owned(), place.to_owned());
        if let Some(served) = self.served.borrow().get(&key) {
            return Ok(*served);
        }
        let served = conn
            .prepare_cached(
                "SELECT place FROM peer_places WHERE node_id = ?1 AND ?2 LIKE place || '%' LIMIT 1",
            )?
            .query_row(params![inflow, place], |r| r.get::<_, String>(0))
            .optional()?
            .is_some();
        self.served.borrow_mut().insert(key, served);
        Ok(served)
    }
}

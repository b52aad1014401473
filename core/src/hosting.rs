//! What a node accepts from its peers about members it shares: home
//! sections (and their withdrawal) at a host, and the records a host makes
//! (host sections, contact events, activities) at the member's owner,
//! each checked against the authority of its author (docs/authority.md, docs/replication.md); the
//! end of a restored owner's re-emission (§7); and the records held until
//! their member arrives, applied once it does.

use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use liaison_types::identity::NodeId;
use prost::Message;
use rusqlite::{params, Connection, OptionalExtension};

use crate::outcome::{Faults, Rejection};
use crate::{log, members, quarantine};
use crate::{Ctx, Error};

/// What the events of one batch from one origin look up again and again:
/// whether this node may hold home sections under a basis, and whether it
/// wrote any host section itself. Only home sections and Unshares leave
/// them valid; any other event (an agreement's, a transfer's) may change
/// an agreement or bring a section, so [`Memo::forget`] comes first.
#[derive(Debug, Default)]
pub(crate) struct Memo {
    may_hold: std::collections::HashMap<String, Option<bool>>,
    /// Whether this node holds a host section it wrote: a host in its
    /// initial sync holds none, and need not look for one per copy.
    writes_sections: Option<bool>,
    /// The version of the last home section applied, where it left the
    /// copy here as it was (not stored): the copy counts as sent again in
    /// that event's log if no newer (`members::note_copy_epoch`).
    pub(crate) left_as_it_was: Option<pb::Version>,
}

impl Memo {
    /// Forgets what an event other than a home section or an Unshare may
    /// have changed.
    pub(crate) fn forget(&mut self) {
        self.may_hold.clear();
        self.writes_sections = None;
    }

    fn writes_sections(&mut self, conn: &Connection, me: &str) -> Result<bool, Error> {
        if let Some(writes) = self.writes_sections {
            return Ok(writes);
        }
        let writes = members::writes_host_sections(conn, me)?;
        self.writes_sections = Some(writes);
        Ok(writes)
    }
}

fn decode<M: Message + Default>(event: &pb::Event) -> Result<M, Rejection> {
    M::decode(event.payload.as_slice()).map_err(|e| {
        Rejection::Invalid(format!(
            "malformed {} payload: {e}",
            log::kind_name(event.kind)
        ))
    })
}

/// The event's entity is the member its payload is about: honest nodes
/// always append it so, and the quarantine finds the records held for a
/// member by it (`retry_held_about`).
fn about_entity(event: &pb::Event, member_id: &str) -> Result<(), Rejection> {
    if member_id == event.entity {
        Ok(())
    } else {
        Err(Rejection::Invalid(
            "payload names another member than the event".into(),
        ))
    }
}

/// Applies a home section, an Unshare or a host record (a host section, a
/// contact event, an activity) that came in `origin`'s log `log_id`, or
/// says why it can never be valid. `memo` lives as long as the batch.
/// `(origin, log_id)`: who sent it, in which of its logs.
pub(crate) fn apply(
    conn: &Connection,
    ctx: &Ctx<'_>,
    (origin, log_id): (&NodeId, &str),
    event: &pb::Event,
    kind: EventKind,
    faults: Faults,
    memo: &mut Memo,
) -> Result<(), Rejection> {
    match kind {
        EventKind::HomeSection => {
            let section: pb::HomeSection = decode(event)?;
            about_entity(event, &section.member_id)?;
            apply_home_section(conn, ctx, (origin, log_id), &section, faults, memo)
        }
        EventKind::Unshare => apply_unshare(conn, ctx, origin, event, faults),
        EventKind::HostSection => {
            apply_host_record::<pb::HostSection>(conn, ctx, origin, log_id, event, faults)
        }
        EventKind::Contact => {
            apply_host_record::<pb::ContactEvent>(conn, ctx, origin, log_id, event, faults)
        }
        EventKind::Activity => {
            apply_host_record::<pb::ActivityRecord>(conn, ctx, origin, log_id, event, faults)
        }
        _ => Err(Rejection::Invalid(format!(
            "not a home section or host record event: {kind:?}"
        ))),
    }
}

/// The owner withdraws its home section from this host. Only the owner of
/// the copy held here may withdraw it. An Unshare that finds another
/// owner's copy, or none, is a late one (from an earlier owner, crossing a
/// later owner's share; or the copy was never stored or is gone already: a
/// compacted share, a `moved`, the end of the agreement) and changes
/// nothing, unless what this node knows of the member contradicts its
/// sender's claim to own it at the generation the Unshare names: a member
/// this node owns, one it released at that generation to another node, or
/// a copy of another owner at that generation. That one is forged.
fn apply_unshare(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    event: &pb::Event,
    faults: Faults,
) -> Result<(), Rejection> {
    let unshare: pb::Unshare = decode(event)?;
    about_entity(event, &unshare.member_id)?;
    let Some(version) = unshare.version else {
        return Err(Rejection::Invalid("unshare without a version".into()));
    };
    let member_id = &unshare.member_id;
    let copy = members::load_copy(conn, member_id)?;
    if faults.skip_authority() || copy.as_ref().is_some_and(|c| c.owner == origin.as_str()) {
        members::delete_copy(conn, member_id)?;
        return Ok(());
    }
    match judge_claim(conn, ctx, member_id, version.generation, origin.as_str())? {
        Claim::Consistent => {}
        Claim::Contradicts(why) => {
            let theirs = (unshare.letter_no.as_str(), unshare.transfer_id.as_str());
            return match later_of_two_releases(conn, ctx, member_id, version.generation, theirs)? {
                Some(Later::Mine) => {
                    tracing::warn!(member = %member_id, %origin, generation = version.generation, letter = %unshare.letter_no, "an unshare from the receiver of an earlier release of this member's generation changes nothing; it yields once it learns of the later one");
                    Ok(())
                }
                Some(Later::Theirs) => Err(Rejection::Invalid(format!(
                    "{origin} unshared member {member_id} as its owner by {}, a later release of generation {} than the one that brought it here: this node yields once it learns of it; {HELD_UNTIL_RELEASED}",
                    unshare.letter_no, version.generation
                ))),
                None => Err(Rejection::Invalid(format!(
                    "{origin} may not unshare member {member_id}: {why}"
                ))),
            };
        }
        Claim::AboveOwnRestored(own) => {
            return Err(Rejection::Invalid(format!(
                "{origin} unshared member {member_id} at generation {}, above this node's {own}: restored from a backup, this node released the member since; {HELD_UNTIL_RELEASED}",
                version.generation
            )))
        }
    }
    if let Some(copy) = copy {
        let held = copy.version.unwrap_or_default().generation;
        if held == version.generation {
            let theirs = (unshare.letter_no.as_str(), unshare.transfer_id.as_str());
            match later_than_copy(conn, member_id, theirs)? {
                Some(Later::Mine) => {
                    tracing::warn!(member = %member_id, %origin, generation = version.generation, letter = %unshare.letter_no, "an unshare from the receiver of an earlier release of this member's generation than the copy held here changes nothing");
                    return Ok(());
                }
                Some(Later::Theirs) => {
                    members::delete_copy(conn, member_id)?;
                    crate::superseded::forget(conn, member_id, origin.as_str())?;
                    return Ok(());
                }
                None => {}
            }
            return Err(Rejection::Invalid(format!(
                "{origin} may not unshare member {member_id}: its copy here is owned by {} at generation {held}, the generation the unshare names",
                copy.owner
            )));
        }
    }
    crate::superseded::forget(conn, member_id, origin.as_str())?;
    Ok(())
}

/// What this node's own record of a member says of a peer's claim that
/// `claimed` owns it at `generation` (the sender of an Unshare; the new
/// owner a `moved` names).
pub(crate) enum Claim {
    /// Nothing here contradicts it: this node knows nothing of the member,
    /// or only of earlier generations (the claim is stale, or later than
    /// what it knows).
    Consistent,
    /// It can never be valid, for the reason given.
    Contradicts(String),
    /// Above the generation this node owns the member at, on a node
    /// restored from a backup: it may have released the member since and
    /// forgotten (docs/restore.md). The generation it owns it at.
    AboveOwnRestored(u64),
}

/// Judges the claim that `claimed` owns `member_id` at `generation` against
/// the member's home record here. Generations rise only with releases: a
/// node that owns the member at generation g was given it at g (or
/// created it at 1), and nobody else owns it at g or later until it
/// releases it; a node that released it at g (its tombstone) knows who got
/// it at g.
pub(crate) fn judge_claim(
    conn: &Connection,
    ctx: &Ctx<'_>,
    member_id: &str,
    generation: u64,
    claimed: &str,
) -> Result<Claim, Rejection> {
    let Some(home) = members::load_home(conn, member_id)? else {
        return Ok(Claim::Consistent);
    };
    if home.owner == ctx.me.as_str() {
        if generation < home.generation || (generation == home.generation && claimed == home.owner)
        {
            return Ok(Claim::Consistent);
        }
        if generation > home.generation && crate::epoch::was_restored(conn)? {
            return Ok(Claim::AboveOwnRestored(home.generation));
        }
        return Ok(Claim::Contradicts(format!(
            "the event has {claimed} own it at generation {generation}, but this node owns it at generation {}",
            home.generation
        )));
    }
    if generation == home.generation && claimed != home.owner {
        return Ok(Claim::Contradicts(format!(
            "the event has {claimed} own it at generation {generation}, which this node released to {}",
            home.owner
        )));
    }
    Ok(Claim::Consistent)
}

/// The fields every host record has, for [`HostRecord`].
macro_rules! record_fields {
    () => {
        fn member_id(&self) -> &str {
            &self.member_id
        }
        fn author(&self) -> &str {
            &self.author
        }
        fn basis(&self) -> &str {
            &self.basis
        }
        fn with_basis(self, basis: String) -> Self {
            Self { basis, ..self }
        }
    };
}

/// What a host (or any node, for contacts and activities) writes about a
/// member: the three kinds are checked and relayed by one rule
/// ([`apply_host_record`]) and differ only in how they are kept.
trait HostRecord: Message + Default {
    const KIND: EventKind;
    fn member_id(&self) -> &str;
    fn author(&self) -> &str;
    fn basis(&self) -> &str;
    fn with_basis(self, basis: String) -> Self;
    /// The ownership generation the record was written at, where it
    /// carries one (a host section's version).
    fn generation(&self) -> Option<u64> {
        None
    }
    /// Appends the record, relayed under its new basis, for `to`.
    fn relay(&self, conn: &Connection, ctx: &Ctx<'_>, to: &NodeId) -> Result<(), Error> {
        log::append(
            conn,
            to,
            Self::KIND,
            self.member_id(),
            &self.encode_to_vec(),
            ctx.now_ms,
        )?;
        Ok(())
    }
    /// Keeps the record here.
    fn keep(self, conn: &Connection, ctx: &Ctx<'_>) -> Result<(), Error>;
}

/// A host section, from the host that wrote it (or relayed by the owner it
/// was released from).
impl HostRecord for pb::HostSection {
    const KIND: EventKind = EventKind::HostSection;
    record_fields!();
    fn generation(&self) -> Option<u64> {
        self.version.map(|v| v.generation)
    }
    /// Not `append`: a relayed section may be older than one of the same
    /// host queued already, which must not be dropped for it; both go, and
    /// the owner keeps the newer.
    fn relay(&self, conn: &Connection, ctx: &Ctx<'_>, to: &NodeId) -> Result<(), Error> {
        log::append_unqueued(
            conn,
            to,
            Self::KIND,
            &self.member_id,
            &self.encode_to_vec(),
            ctx.now_ms,
        )?;
        Ok(())
    }
    /// Only over an older version of the same host's section.
    fn keep(self, conn: &Connection, ctx: &Ctx<'_>) -> Result<(), Error> {
        let current = members::host_section(conn, &self.member_id, &self.author)?;
        let incoming = self.version.unwrap_or_default();
        let newer = current
            .is_none_or(|c| (incoming.generation, incoming.counter) > (c.generation, c.counter));
        if newer {
            members::save_host_section(conn, &self, ctx.now_ms)?;
        }
        Ok(())
    }
}

/// A contact event, from the node that made it (or relayed).
impl HostRecord for pb::ContactEvent {
    const KIND: EventKind = EventKind::Contact;
    record_fields!();
    /// A new contact may change the member's contact status here (a
    /// report-in regains a member out of contact).
    fn keep(self, conn: &Connection, ctx: &Ctx<'_>) -> Result<(), Error> {
        members::contact_arrived(conn, ctx, &self)?;
        Ok(())
    }
}

/// An activity, from the node that made it (or relayed).
impl HostRecord for pb::ActivityRecord {
    const KIND: EventKind = EventKind::Activity;
    record_fields!();
    fn keep(self, conn: &Connection, ctx: &Ctx<'_>) -> Result<(), Error> {
        members::save_activity(conn, &self, ctx.now_ms)?;
        Ok(())
    }
}

/// A host record of kind `R` that came in `origin`'s log `log_id`: checked
/// ([`check_host_record`]), then dropped, relayed to the member's owner,
/// or kept here.
fn apply_host_record<R: HostRecord>(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    log_id: &str,
    event: &pb::Event,
    faults: Faults,
) -> Result<(), Rejection> {
    let record: R = decode(event)?;
    about_entity(event, record.member_id())?;
    let disposition = check_host_record(
        conn,
        ctx,
        origin,
        HostRecordRef {
            member_id: record.member_id(),
            author: record.author(),
            basis: record.basis(),
            generation: record.generation(),
            log_id,
            seq: event.seq,
        },
        faults,
    )?;
    match disposition {
        Disposition::Drop => Ok(()),
        Disposition::Relay(to, basis) => Ok(record.with_basis(basis).relay(conn, ctx, &to)?),
        Disposition::Apply => Ok(record.keep(conn, ctx)?),
    }
}

/// A home section is authored by the member's owner, which must be the
/// event's origin, and may never overwrite a member this node owns. A node
/// that released the member (it keeps a tombstone) may host it afterwards,
/// under an agreement with its new owner.
/// `(origin, log_id)`: who sent it, in which of its logs.
fn apply_home_section(
    conn: &Connection,
    ctx: &Ctx<'_>,
    (origin, log_id): (&NodeId, &str),
    section: &pb::HomeSection,
    faults: Faults,
    memo: &mut Memo,
) -> Result<(), Rejection> {
    let Some(version) = section.version else {
        return Err(Rejection::Invalid("home section without a version".into()));
    };
    memo.left_as_it_was = Some(version);
    if !faults.skip_authority() {
        if section.owner != origin.as_str() {
            return Err(Rejection::Invalid(format!(
                "home section of member {} names owner `{}` but was sent by {origin}",
                section.member_id, section.owner
            )));
        }
        if let Some(home) = members::load_home(conn, &section.member_id)? {
            if home.owner == ctx.me.as_str() && version.generation < home.generation {
                // From an owner before this node, which released the member
                // since: stale, as a host would find it (a restored former
                // owner's log may still hold such a share for this node).
                return Ok(());
            }
            if home.owner == ctx.me.as_str() {
                // Generations rise only with releases: a later one means
                // this node released the member, after the backup it was
                // restored from (docs/restore.md). Held; the transfer rule that
                // makes it a tombstone here applies it again.
                if version.generation > home.generation && crate::epoch::was_restored(conn)? {
                    return Err(Rejection::Invalid(format!(
                        "{origin} sent the home section of member {} at generation {}, above this node's {}: restored from a backup, this node released the member since; {HELD_UNTIL_RELEASED}",
                        section.member_id, version.generation, home.generation
                    )));
                }
                let theirs = (section.letter_no.as_str(), section.transfer_id.as_str());
                if version.generation == home.generation {
                    match later_of_two_releases(
                        conn,
                        ctx,
                        &section.member_id,
                        version.generation,
                        theirs,
                    )? {
                        Some(Later::Mine) => {
                            tracing::warn!(member = %section.member_id, %origin, generation = version.generation, letter = %section.letter_no, "a home section from the receiver of an earlier release of this member's generation changes nothing; it yields once it learns of the later one");
                            return Ok(());
                        }
                        Some(Later::Theirs) => {
                            return Err(Rejection::Invalid(format!(
                                "{origin} sent the home section of member {} as its owner by {}, a later release of generation {} than the one that brought it here: this node yields once it learns of it; {HELD_UNTIL_RELEASED}",
                                section.member_id, section.letter_no, version.generation
                            )));
                        }
                        None => {}
                    }
                }
                return Err(Rejection::Invalid(format!(
                    "{origin} may not write the home section of member {} ({}), which is owned by {}",
                    section.member_id, home.name, home.owner
                )));
            }
            // A tombstone: this node released the member (generation
            // `home.generation`, to `home.owner`), and may host it now.
            if version.generation < home.generation {
                // From an owner before the one it was released to: stale.
                return Ok(());
            }
            if version.generation == home.generation && home.owner != origin.as_str() {
                if released_earlier_on_another_branch(
                    conn,
                    &section.member_id,
                    version.generation,
                    origin,
                )? {
                    return Ok(());
                }
                return Err(Rejection::Invalid(format!(
                    "{origin} claims generation {} of member {}, which this node released to {}",
                    version.generation, section.member_id, home.owner
                )));
            }
        }
    } else if members::load_home(conn, &section.member_id)?.is_some() {
        // The broken variant: overwrite the owned record as if authorized.
        conn.execute(
            "UPDATE members SET name = ?2 WHERE member_id = ?1",
            params![section.member_id, section.name],
        )?;
        return Ok(());
    }
    if !faults.skip_authority() {
        let may_hold = match memo.may_hold.get(&section.basis) {
            Some(may_hold) => *may_hold,
            None => {
                let may_hold = crate::agreements::host_may_hold(conn, ctx, origin, &section.basis)?;
                memo.may_hold.insert(section.basis.clone(), may_hold);
                if may_hold == Some(false) {
                    // Past the grace period on this node's clock: its
                    // copies under that agreement go too, and the owner,
                    // which believes this node holds what it sent, is told
                    // (once per basis and batch).
                    crate::agreements::host_past_grace(conn, ctx, &section.basis)?;
                }
                may_hold
            }
        };
        match may_hold {
            None => {
                let why = format!(
                    "home section of member {} names basis `{}`, which is no agreement between {origin} and this node",
                    section.member_id, section.basis
                );
                // An agreement this node does not know at all may be one a
                // restore made it forget.
                return Err(
                    if crate::agreements::parties(conn, &section.basis)?.is_none() {
                        Rejection::Unknown(why)
                    } else {
                        Rejection::Invalid(why)
                    },
                );
            }
            // Crossed the end of its agreement: a legitimate race, not
            // stored.
            Some(false) => {
                drop_superseded_copy(conn, section, version)?;
                return Ok(());
            }
            Some(true) => {}
        }
    }
    let mut stored = members::save_copy_if_newer(conn, section, log_id, ctx.now_ms)?;
    // Not stored: the copy held is at a later generation (a newer owner
    // already shared it: the higher generation stays) or at the same or a
    // later version of this owner (a duplicate), or another owner claims
    // this generation: by an earlier release of it than this owner's
    // (replaced), by a later one (this changes nothing), or by one the two
    // cannot be ordered with (refused).
    let held = if stored {
        None
    } else {
        members::copy_version(conn, &section.member_id)?
    };
    if let Some((held_owner, held)) = held
        .as_ref()
        .filter(|(o, h)| h.generation == version.generation && *o != section.owner)
    {
        let theirs = (section.letter_no.as_str(), section.transfer_id.as_str());
        match later_than_copy(conn, &section.member_id, theirs)? {
            Some(Later::Theirs) => {
                members::delete_copy(conn, &section.member_id)?;
                stored = members::save_copy_if_newer(conn, section, log_id, ctx.now_ms)?;
            }
            Some(Later::Mine) => {
                tracing::warn!(member = %section.member_id, %origin, generation = version.generation, letter = %section.letter_no, "a home section from the receiver of an earlier release of this member's generation than the copy held here changes nothing");
                return Ok(());
            }
            None => {
                return Err(Rejection::Invalid(format!(
                    "{origin} and {} both claim generation {} of member {}",
                    held_owner, held.generation, section.member_id
                )));
            }
        }
    }
    if stored {
        memo.left_as_it_was = None;
        if memo.writes_sections(conn, ctx.me.as_str())? {
            send_own_section_to_owner(conn, ctx, origin, section)?;
        }
        return Ok(());
    }
    if let Some((held_owner, held)) = held {
        if held.generation > version.generation && held_owner != section.owner {
            crate::superseded::remember(conn, section, version)?;
        }
    }
    Ok(())
}

/// This node's own section of the member, under another basis than the
/// owner's copy just stored, is its latest word about the member that this
/// owner may not have had, and goes to the owner under the copy's basis,
/// at its version:
/// - written at a later generation than the copy: for a receiver of the
///   member whose transfer both ends forgot since (both restored to
///   before it), so the owner is back at the earlier generation and no
///   node holds the later one. The owner's older section does not pass
///   it; else every later write, at that generation too, would reach an
///   owner that holds this node's older section. It takes the copy's
///   basis here, but while the agreement it names is active with another
///   owner: that owner may hold the later generation still (only the
///   releasing end forgot the transfer), and the section stays its;
/// - written at an earlier generation, for an earlier owner (under
///   another node's agreement): it reaches the new owner relayed along
///   the transfers, unless a restore made the node that released the
///   member here forget that release (docs/transfers.md); sent directly,
///   it reaches the owner either way, and the relayed one, at the same
///   version, changes nothing there. Here it keeps its basis.
fn send_own_section_to_owner(
    conn: &Connection,
    ctx: &Ctx<'_>,
    owner: &NodeId,
    copy: &pb::HomeSection,
) -> Result<(), Rejection> {
    let me = ctx.me.as_str();
    let Some((basis, version)) = members::host_section_basis(conn, &copy.member_id, me)? else {
        return Ok(());
    };
    let copy_generation = copy.version.unwrap_or_default().generation;
    if basis == copy.basis {
        return Ok(());
    }
    let ahead = version.generation > copy_generation;
    let for_an_earlier_owner = version.generation < copy_generation
        && crate::agreements::parties(conn, &basis)?.is_none_or(|p| p.outflow != owner.as_str());
    if !ahead && !for_an_earlier_owner {
        return Ok(());
    }
    let Some(mut own) = members::host_section_record(conn, &copy.member_id, me)? else {
        return Ok(());
    };
    // Ahead, the section is this node's word for the owner now, unless
    // the agreement it names is still active here with another owner,
    // which may hold the later generation still; written for an earlier
    // owner, or so, it stays as that owner holds it (a restore may give
    // the member back to it), and this owner gets a copy.
    let rebase = ahead && !active_with_another_owner(conn, &basis, owner)?;
    own.basis = copy.basis.clone();
    if rebase {
        members::save_host_section(conn, &own, ctx.now_ms)?;
    }
    log::append(
        conn,
        owner,
        EventKind::HostSection,
        &copy.member_id,
        &own.encode_to_vec(),
        ctx.now_ms,
    )?;
    Ok(())
}

/// Whether `basis` is an agreement active here that names another owner
/// than `owner` as its coordinator.
fn active_with_another_owner(
    conn: &Connection,
    basis: &str,
    owner: &NodeId,
) -> Result<bool, Error> {
    Ok(crate::agreements::load(conn, basis)?.is_some_and(|a| {
        a.state == crate::agreements::AgreementState::Active && a.outflow_node != owner.as_str()
    }))
}

/// A home section refused because its basis ended here still says that
/// its owner no longer shares the member under the basis of an earlier
/// copy held here: that copy goes too. The owner, told of the drop
/// (`CopiesDropped`), sends the member again under any agreement that
/// still shares it with this node; otherwise the copy would stay behind
/// with no share at the owner to update or end it.
fn drop_superseded_copy(
    conn: &Connection,
    section: &pb::HomeSection,
    version: pb::Version,
) -> Result<(), Rejection> {
    let Some(held) = members::load_copy(conn, &section.member_id)? else {
        return Ok(());
    };
    let held_version = held.version.unwrap_or_default();
    if held.owner == section.owner
        && held.basis != section.basis
        && (held_version.generation, held_version.counter) < (version.generation, version.counter)
    {
        members::delete_copy(conn, &section.member_id)?;
    }
    Ok(())
}

/// The node a tombstone's forward pointer names; anything else is a
/// damaged database, never a peer's fault.
fn forward_pointer(member_id: &str, to_node: &str) -> Result<NodeId, Rejection> {
    NodeId::parse(to_node).map_err(|_| {
        Rejection::Store(Error::corrupt(
            format!("the forward pointer of member {member_id}"),
            to_node,
            "a node id",
        ))
    })
}

/// Where a record about `member_id`, released from here, goes on: to the
/// node of its forward pointer under the transfer that released it there;
/// or, where the pointer names no transfer (a peer's later generation made
/// it, after a restore), to the receiver of this node's latest completed
/// release of the member, under that transfer, which passes it on along
/// its own pointer. With the generation the route's release gave. `None`:
/// no release of this node's is on record.
fn relay_route(
    conn: &Connection,
    member_id: &str,
    moved: &pb::MovedView,
) -> Result<Option<(NodeId, String, u64)>, Rejection> {
    if !moved.transfer_id.is_empty() {
        let to = forward_pointer(member_id, &moved.to_node)?;
        return Ok(Some((to, moved.transfer_id.clone(), moved.generation)));
    }
    let latest: Option<(String, String, u64)> = conn
        .prepare_cached(
            "SELECT receiver, transfer_id, released_generation FROM transfers
             WHERE member_id = ?1 AND direction = 'outgoing' AND state = 'completed'
               AND released_generation > 0
             ORDER BY released_generation DESC LIMIT 1",
        )?
        .query_row([member_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    match latest {
        Some((receiver, transfer_id, generation)) => Ok(Some((
            forward_pointer(member_id, &receiver)?,
            transfer_id,
            generation,
        ))),
        None => Ok(None),
    }
}

/// Where a host record `origin` reports back under `basis` goes, if
/// `basis` is this node's own release of `member_id` (so this node relayed
/// it there once) and this node shared the member with `origin` before:
/// on along the route of the member's tombstone here.
fn relayed_before(
    conn: &Connection,
    origin: &NodeId,
    member_id: &str,
    basis: &str,
) -> Result<Option<Disposition>, Rejection> {
    let released: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM transfers WHERE transfer_id = ?1 AND member_id = ?2
               AND direction = 'outgoing' AND state IN ('released', 'completed'))
             AND EXISTS (SELECT 1 FROM disclosures WHERE peer = ?3 AND record_id = ?2)",
        )?
        .query_row(params![basis, member_id, origin.as_str()], |r| r.get(0))?;
    if !released {
        return Ok(None);
    }
    let Some(moved) = members::moved_of(conn, member_id)?.filter(|m| !m.to_node.is_empty()) else {
        return Ok(None);
    };
    Ok(relay_route(conn, member_id, &moved)?
        .map(|(to, transfer_id, _)| Disposition::Relay(to, transfer_id)))
}

/// What to do with a host record that passed the checks.
enum Disposition {
    Apply,
    /// The member was released to another node: relay the record there
    /// with the transfer as its basis (docs/transfers.md).
    Relay(NodeId, String),
    /// The member left on paper for a place with no node: a legitimate
    /// record that crossed the unshare, with nowhere to go (not stored).
    Drop,
}

/// Host sections, contact events and activities about a member go to the
/// member's owner, authored by the node that sends them, under an agreement
/// that covered the member while it was active, and only until the host
/// applied its end (docs/replication.md); or relayed by the member's previous owner
/// with the transfer as basis.
/// What `check_host_record` judges of a host record.
struct HostRecordRef<'a> {
    member_id: &'a str,
    author: &'a str,
    basis: &'a str,
    /// The ownership generation it was written at, if it says.
    generation: Option<u64>,
    /// Its place in the origin's log `log_id` (seq 0: reported in the
    /// origin's holdings).
    log_id: &'a str,
    seq: u64,
}

fn check_host_record(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    record: HostRecordRef<'_>,
    faults: Faults,
) -> Result<Disposition, Rejection> {
    let HostRecordRef {
        member_id,
        author,
        basis,
        generation,
        log_id,
        seq,
    } = record;
    if faults.skip_authority() {
        return Ok(Disposition::Apply);
    }
    let Some(home) = members::load_home(conn, member_id)? else {
        return Err(Rejection::Unknown(format!(
            "member {member_id} is not known here: {origin} sent a record about a member this node does not own"
        )));
    };
    // Relayed by the previous owner after it released the member here: a
    // record of another author, or its own (made as the member's host
    // before it owned it, and come back to it after its release).
    let relayed = relayed_arrival(conn, ctx, origin, member_id, basis)?;
    if author != origin.as_str() || relayed.is_some() {
        if let Some(arrived) = relayed {
            if home.owner == ctx.me.as_str() {
                return Ok(Disposition::Apply);
            }
            // Passed on again since (A→B→C): relay along the chain, only
            // forward. A tombstone from before the arrival by `basis` (this
            // node's restore lost the member that transfer brought, and
            // it points back where the member came from) leads back, not
            // on: two such nodes would relay the record to each other for
            // ever. So does one without a transfer (moved on by a release
            // this node's restore forgot): no basis to relay it under. The
            // record is dropped with the member it is about.
            // Transferred on paper since, to a place with no node: nowhere
            // to relay, as for a record made here (below).
            if let Some(moved) = members::moved_of(conn, member_id)? {
                if moved.to_node.is_empty() {
                    tracing::info!(
                        member = %member_id,
                        %origin,
                        transfer = %basis,
                        "a relayed host record about a member transferred on paper is dropped"
                    );
                    return Ok(Disposition::Drop);
                }
                match relay_route(conn, member_id, &moved)? {
                    Some((to, transfer_id, generation)) if generation > arrived => {
                        return Ok(Disposition::Relay(to, transfer_id));
                    }
                    _ => {
                        tracing::info!(
                            member = %member_id,
                            %origin,
                            transfer = %basis,
                            "a relayed host record about a member whose arrival this node lost is dropped"
                        );
                        return Ok(Disposition::Drop);
                    }
                }
            }
        }
        return Err(Rejection::Invalid(format!(
            "record about member {member_id} names author `{author}` but was sent by {origin}"
        )));
    }
    // Reported back in its author's holdings (seq 0, in no log): a record
    // this node relayed under its own release of the member before a
    // restore made it forget the relay. Relayed again along the route.
    if seq == 0 && log_id.is_empty() {
        if let Some(route) = relayed_before(conn, origin, member_id, basis)? {
            return Ok(route);
        }
    }
    // Made by the node this one released the member to, as its host
    // before: the record went with the member to its own author, nothing
    // is left to check or relay (a restored sender may have forgotten it
    // shared the member with it, so the agreement check would refuse it).
    if home.owner != ctx.me.as_str()
        && members::moved_of(conn, member_id)?.is_some_and(|m| m.to_node == origin.as_str())
    {
        // Written at a later generation than this node's tombstone, under
        // an agreement of this node's: written as this node's host after
        // the member came back here, by a release a restore made this
        // node forget. Held until that release arrives again.
        if generation.is_some_and(|g| g > home.generation)
            && crate::epoch::was_restored(conn)?
            && crate::agreements::parties(conn, basis)?
                .is_some_and(|p| p.outflow == ctx.me.as_str())
        {
            return Err(Rejection::Invalid(format!(
                "{origin} sent its section of member {member_id} at generation {}, above this node's {}: restored from a backup, this node received the member again since; {HELD_UNTIL_RELEASED}",
                generation.unwrap_or_default(),
                home.generation
            )));
        }
        return Ok(Disposition::Drop);
    }
    if let Err(why) =
        crate::agreements::host_record_allowed(conn, ctx, origin, member_id, basis, (log_id, seq))?
    {
        return Err(why.prefixed(&format!(
            "{origin} may not send records about member {member_id}: "
        )));
    }
    if home.owner == ctx.me.as_str() {
        return Ok(Disposition::Apply);
    }
    let moved = members::moved_of(conn, member_id)?;
    if let Some(moved) = moved.as_ref().filter(|m| !m.to_node.is_empty()) {
        if let Some((to, transfer_id, _)) = relay_route(conn, member_id, moved)? {
            return Ok(Disposition::Relay(to, transfer_id));
        }
    }
    match moved {
        // Moved on by a release this node's restore forgot, and made under
        // an agreement this node coordinates with the host: the host may
        // have made it for this node as the member's owner again, by a
        // later release a peer's log still brings (the host's record has
        // no generation to tell). Held until the member arrives or its
        // move is known (`retry_held_about`).
        Some(moved)
            if !moved.to_node.is_empty()
                && crate::epoch::was_restored(conn)?
                && crate::agreements::parties(conn, basis)?
                    .is_some_and(|p| p.outflow == ctx.me.as_str() && p.inflow == origin.as_str()) =>
        {
            Err(Rejection::Invalid(format!(
                "{origin} sent a record about member {member_id} under this node's agreement {basis}, but a release this node's restore forgot took the member to {}; {HELD_UNTIL_RELEASED}",
                moved.to_node
            )))
        }
        // Transferred on paper to a place with no node, or moved on by a
        // release this node's restore forgot with no release of its own on
        // record (no transfer to name as the basis the new owner would
        // judge it by): nowhere to relay.
        Some(moved) => {
            tracing::info!(
                member = %member_id,
                %origin,
                place = %moved.to_place,
                "a host record about a member transferred on paper, or by a release this node forgot, is dropped"
            );
            Ok(Disposition::Drop)
        }
        None => Err(Rejection::Invalid(format!(
            "member {member_id} is owned by {}, not this node",
            home.owner
        ))),
    }
}

/// Whether `origin` may relay a host record about `member_id` with `basis`
/// here: it released the member to this node by transfer `basis`. Returns
/// the generation that release gave the member.
fn relayed_arrival(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    member_id: &str,
    basis: &str,
) -> Result<Option<u64>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT released_generation FROM transfers WHERE transfer_id = ?1 AND direction = 'incoming'
               AND sender = ?2 AND receiver = ?3 AND member_id = ?4 AND state = 'completed'",
        )?
        .query_row(params![basis, origin.as_str(), ctx.me.as_str(), member_id], |r| {
            r.get(0)
        })
        .optional()?)
}

/// Inside `apply_batch`: `origin` finished re-emitting under `log_id`.
/// Deletes the copies of `origin`'s home sections that arrived under an
/// older log id and were not sent again, and asks the owners whose
/// sections such a copy kept out to share again (`superseded`). Returns
/// how many were deleted.
pub fn apply_epoch_complete(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    log_id: &str,
    event: &pb::Event,
) -> Result<usize, crate::outcome::Rejection> {
    use crate::outcome::Rejection;
    let complete = pb::EpochComplete::decode(event.payload.as_slice())
        .map_err(|e| Rejection::Invalid(format!("malformed epoch_complete payload: {e}")))?;
    if complete.log_id != log_id {
        return Err(Rejection::Invalid(format!(
            "epoch_complete names log id {} but arrived under log id {log_id}",
            complete.log_id
        )));
    }
    crate::epoch::note_peer_branch(conn, origin, &complete.branch)?;
    let stale: Vec<String> = conn
        .prepare("SELECT member_id FROM home_copies WHERE owner = ?1 AND arrived_log_id <> ?2")?
        .query_map(params![origin.as_str(), log_id], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    for member_id in &stale {
        members::delete_copy(conn, member_id)?;
        crate::superseded::ask_again(conn, member_id, ctx.now_ms)?;
    }
    tracing::info!(peer = %origin, log_id, dropped = stale.len(), re_sent = complete.re_sent, "peer's epoch complete");
    Ok(stale.len())
}

/// The end of the reason an event about a member is held for at a
/// restored node that does not yet know the release it waits for: a home
/// section or Unshare while it still believes it owns the member, a host's
/// record written for it as the member's owner again.
pub const HELD_UNTIL_RELEASED: &str = "held until it learns of the release";

/// Before a restored node yields `member_id`, which it believed it owned,
/// to the later owner a peer names (`yield_to_later_generation`): the
/// records its hosts sent it meanwhile under its own agreements (a host
/// section, a contact, an activity) would go with its record, and the
/// owner never had them. Each is held as it would be had it arrived after
/// the yield (`judge`: moved on by a release this node's restore forgot),
/// and goes on to the owner once this node learns a release of its own of
/// the member to relay it by (`relay_route`). Others' records under other
/// bases go with the record, as before; and so do all of them at a node
/// never restored, which yields to the later of two releases of one
/// generation and has no release of its own to learn.
pub(crate) fn hold_hosts_records(
    conn: &Connection,
    ctx: &Ctx<'_>,
    member_id: &str,
    owner: &str,
) -> Result<(), Error> {
    if !crate::epoch::was_restored(conn)? {
        return Ok(());
    }
    let me = ctx.me.as_str();
    let records = members::HostRecords::read(
        conn,
        "r.member_id = ?1 AND r.author NOT IN (?2, ?3)",
        params![member_id, me, owner],
    )?;
    let mut held = Vec::new();
    for s in &records.sections {
        held.push((
            &s.author,
            &s.basis,
            EventKind::HostSection,
            s.encode_to_vec(),
        ));
    }
    for c in &records.contacts {
        held.push((&c.author, &c.basis, EventKind::Contact, c.encode_to_vec()));
    }
    for a in &records.activities {
        held.push((&a.author, &a.basis, EventKind::Activity, a.encode_to_vec()));
    }
    for (author, basis, kind, payload) in held {
        let ours = crate::agreements::parties(conn, basis)?
            .is_some_and(|p| p.outflow == me && p.inflow == *author);
        if !ours {
            continue;
        }
        let Ok(origin) = NodeId::parse(author) else {
            continue;
        };
        let event = pb::Event {
            seq: 0,
            kind: kind as i32,
            entity: member_id.to_owned(),
            payload,
            created_at_ms: ctx.now_ms,
        };
        let reason = format!(
            "{origin} sent a record about member {member_id} under this node's agreement {basis} while this node, restored, believed it owned the member, which a release its restore forgot took to {owner}; {HELD_UNTIL_RELEASED}"
        );
        crate::quarantine::hold(conn, ctx, &origin, "", &event, &reason)?;
    }
    Ok(())
}

/// After `member_id` arrived here (a release installed it), or left (a
/// restore's transfer rule made it a tombstone): checks again the host
/// records about it that were held because the member was not known here,
/// and the home sections and Unshares held because this node believed it
/// still owned it. Only a restore makes them arrive first: a host's record
/// of a member this node forgot it had received comes before the release
/// its sender sends again, and a later owner's share (and its withdrawal)
/// before the report of the release this node forgot (docs/restore.md).
/// They are checked again in the order they arrived, so a withdrawal
/// deletes the copy its share stored. Returns how many were applied.
pub fn retry_held_about(conn: &Connection, ctx: &Ctx<'_>, member_id: &str) -> Result<usize, Error> {
    let ids: Vec<u64> = conn
        .prepare_cached(
            "SELECT id FROM quarantine WHERE state = 'held' AND entity = ?1 AND kind IN (?2, ?3, ?4, ?5, ?6) ORDER BY id",
        )?
        .query_map(
            params![
                member_id,
                EventKind::HostSection as i32,
                EventKind::Contact as i32,
                EventKind::Activity as i32,
                EventKind::HomeSection as i32,
                EventKind::Unshare as i32
            ],
            |r| r.get(0),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let mut applied = 0;
    for id in ids {
        let entry = quarantine::retry(conn, ctx, id, |conn, ctx, origin, log_id, event| {
            let kind = EventKind::try_from(event.kind)
                .map_err(|_| Rejection::Invalid(format!("unknown event kind {}", event.kind)))?;
            apply(
                conn,
                ctx,
                (origin, log_id),
                event,
                kind,
                Faults::default(),
                &mut Memo::default(),
            )
        })?;
        if entry.state == "applied" {
            applied += 1;
            tracing::info!(quarantine = id, member = %member_id, "held host record applied once its member arrived");
        }
    }
    Ok(applied)
}

/// Which of two releases of one generation (docs/transfers.md) is the
/// later, where this node owns the member at `generation`: the one that
/// gave it the member, or `theirs`, the release (letter number, transfer
/// id) an Unshare's or a home section's sender names (a later letter
/// number, or the same number under a later transfer id). At a host, the
/// release the copy held here names stands for this node's
/// ([`later_than_copy`]).
enum Later {
    /// This node's (at a host, the copy's). The sender is the receiver of
    /// the earlier release, on a branch of the issuer's backups that the
    /// issuer forgot, and yields once it learns of this one (the issuer's
    /// `moved`, or its holdings); until then what it sends as the owner
    /// speaks for an ownership it does not have, and changes nothing here:
    /// this node holds no copy of a member it owns, and a host keeps the
    /// later receiver's.
    Mine,
    /// The sender's, which stands. This node yields once it learns of it
    /// (the issuer's `moved`, or its holdings; a node restored from a
    /// backup may have yielded already and forgotten): what the owner sent
    /// is held until then, and applied when this node yields
    /// (`retry_held_about`). A host replaces its copy with the sender's.
    Theirs,
}

impl Later {
    /// Which of two releases (letter number, transfer id) is the later,
    /// where the two can be ordered.
    fn of(mine: (&str, &str), theirs: (&str, &str)) -> Option<Later> {
        if crate::letters::LetterNo::is_later_release(mine, theirs) {
            Some(Later::Mine)
        } else if crate::letters::LetterNo::is_later_release(theirs, mine) {
            Some(Later::Theirs)
        } else {
            None
        }
    }
}

fn later_of_two_releases(
    conn: &Connection,
    ctx: &Ctx<'_>,
    member_id: &str,
    generation: u64,
    theirs: (&str, &str),
) -> Result<Option<Later>, Error> {
    let Some(mine) = release_here(conn, ctx, member_id, generation)? else {
        return Ok(None);
    };
    let mine = (mine.0.as_str(), mine.1.as_str());
    Ok(Later::of(mine, theirs))
}

/// At a host, two releases of one generation (docs/transfers.md): the copy
/// held here is another owner's at the generation `theirs` (letter number,
/// transfer id) gave the sender of a home section or an Unshare. Which
/// release is later, where the two can be ordered: `Mine` is the copy's,
/// whose owner's word stands here until it yields; `Theirs` is the
/// sender's, whose copy replaces the one held. The earlier release's
/// receiver yields once it learns of the later one, as its owner does.
fn later_than_copy(
    conn: &Connection,
    member_id: &str,
    theirs: (&str, &str),
) -> Result<Option<Later>, Error> {
    let Some((letter_no, transfer_id)) = members::copy_release(conn, member_id)? else {
        return Ok(None);
    };
    Ok(Later::of((&letter_no, &transfer_id), theirs))
}

/// The release (letter number, transfer id) that gave this node the member
/// at `generation`, where it owns it at that generation.
fn release_here(
    conn: &Connection,
    ctx: &Ctx<'_>,
    member_id: &str,
    generation: u64,
) -> Result<Option<(String, String)>, Error> {
    let Some(home) = members::load_home(conn, member_id)? else {
        return Ok(None);
    };
    if home.owner != ctx.me.as_str() || home.generation != generation {
        return Ok(None);
    }
    let mine = members::letter_of_generation(
        conn,
        ctx.me.as_str(),
        member_id,
        &home.owner,
        generation,
        members::ReleaseRef::default(),
    )?;
    Ok(Some((mine.letter_no, mine.transfer_id)))
}

/// Two releases of one generation (docs/transfers.md): this restored node
/// released `member_id` at `generation` to `origin` too, on a branch of
/// its backups it learnt back from `origin`'s holdings, and its tombstone
/// records the later release, to another node. `origin`'s claim to that
/// generation is from the earlier release, which yields (this node sent
/// it a `moved`): stale, as a claim of an older generation is.
fn released_earlier_on_another_branch(
    conn: &Connection,
    member_id: &str,
    generation: u64,
    origin: &NodeId,
) -> Result<bool, Error> {
    if !crate::epoch::was_restored(conn)? {
        return Ok(false);
    }
    let Some(tomb) = members::moved_of(conn, member_id)? else {
        return Ok(false);
    };
    let earlier: Vec<(String, String)> = conn
        .prepare_cached(
            "SELECT letter_no, transfer_id FROM transfers
             WHERE direction = 'outgoing' AND state = 'completed' AND member_id = ?1
               AND receiver = ?2 AND released_generation = ?3",
        )?
        .query_map(params![member_id, origin.as_str(), generation], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(earlier.iter().any(|(letter_no, transfer_id)| {
        crate::letters::LetterNo::is_later_release(
            (&tomb.letter_no, &tomb.transfer_id),
            (letter_no, transfer_id),
        )
    }))
}

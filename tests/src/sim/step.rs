//! One step of a schedule: everything the scheduler decided, so a schedule
//! replays without the random generator (and can be shrunk by dropping
//! steps). Nodes are indices into the world's nodes. Members and agreements
//! (whose ids are random) are named by the id of the step that created
//! them ([`MemberRef`], [`AgreementRef`]), so dropping other steps keeps
//! them named; traces show them as `m3`, `a2`: the n-th created in the run.

use std::fmt;

/// Channels and kinds the scheduler picks from.
pub const CHANNELS: [&str; 5] = ["visit", "phone", "message", "org_life", "dues"];
pub const ACTIVITY_KINDS: [&str; 4] = ["branch_meeting", "party_lecture", "theme_day", "study"];
pub const MANUAL_STATUSES: [&str; 3] = ["searching", "unreachable", "regained"];

/// A member, by the id of the step whose `MemberAdd` created it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MemberRef(pub usize);

/// An agreement, by the id of the step whose `Propose` created it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AgreementRef(pub usize);

/// A transfer, by the id of the step whose `TransferStart` or
/// `TransferReissue` opened it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TransferRef(pub usize);

/// Reason codes a receiver gives when it rejects (the first is no code at
/// all: an organization may not refuse without cause, so it is refused).
pub const REJECT_CODES: [&str; 4] = ["wrong_receiver", "incomplete_record", "other", "no-reason"];

/// A step with its id in the schedule (stable when other steps are dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    pub id: usize,
    pub step: Step,
}

/// What displaying a step needs to know of the world.
pub trait Resolve {
    fn node(&self, index: usize) -> &str;
    /// `m3` (the fourth member created), or `m?` if not created (yet).
    fn member(&self, member: MemberRef) -> String;
    fn agreement(&self, agreement: AgreementRef) -> String;
    fn transfer(&self, transfer: TransferRef) -> String;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    MemberAdd {
        name: String,
    },
    /// `member import` of a one-row roster: with `id_of`, the row brings
    /// that member's id (a row of an export, this node's or, by mistake,
    /// another's); without, a new member.
    MemberImport {
        name: String,
        id_of: Option<MemberRef>,
    },
    /// `org add`: a branch numbered `serial`.
    OrgAdd {
        serial: u32,
    },
    MemberUpdate {
        member: MemberRef,
        name: Option<String>,
        phone: Option<String>,
    },
    OutflowRegister {
        member: MemberRef,
        /// The node serving the destination, or `None`: a place no node serves.
        dest: Option<usize>,
        departed_days_ago: i64,
    },
    OutflowReturn {
        member: MemberRef,
    },
    /// `outflow update`: the open registration now names the place node
    /// `dest` serves (`None`: a place no node serves).
    OutflowUpdate {
        member: MemberRef,
        dest: Option<usize>,
    },
    HostSet {
        member: MemberRef,
        employer: u32,
    },
    Contact {
        member: MemberRef,
        channel: &'static str,
        days_ago: i64,
    },
    Activity {
        member: MemberRef,
        kind: &'static str,
        days_ago: i64,
    },
    ContactStatus {
        member: MemberRef,
        set: &'static str,
    },
    /// This node proposes to `peer`, as outflow party (coordinator) or not;
    /// `members` empty: a destination scope.
    Propose {
        peer: usize,
        as_outflow: bool,
        from_days: i64,
        length_days: i64,
        members: Vec<MemberRef>,
    },
    Counter {
        agreement: AgreementRef,
        from_days: i64,
        length_days: i64,
    },
    Accept {
        agreement: AgreementRef,
    },
    Reject {
        agreement: AgreementRef,
    },
    Terminate {
        agreement: AgreementRef,
    },
    /// The owner offers the member to `to` (docs/transfers.md).
    TransferStart {
        member: MemberRef,
        to: usize,
        valid_days: u32,
    },
    /// The receiver's votes.
    TransferAccept {
        transfer: TransferRef,
    },
    TransferReject {
        transfer: TransferRef,
        code: &'static str,
    },
    /// The sender's own steps on an open offer.
    TransferCancel {
        transfer: TransferRef,
    },
    TransferExtend {
        transfer: TransferRef,
        days: u32,
    },
    TransferReissue {
        transfer: TransferRef,
    },
    /// A transfer to a place no node serves, on paper.
    TransferOnPaper {
        member: MemberRef,
    },
    /// `peer remove` (with `--force`, or refused while something is open).
    PeerRemove {
        peer: usize,
        force: bool,
    },
    /// `peer add` again, after a removal.
    PeerReAdd {
        peer: usize,
    },
    /// `reconcile --without-peer` at a restored node (docs/restore.md).
    ReconcileWithoutPeer {
        peer: usize,
    },
    /// The node's calendar: agreement activation/expiry/grace, contact sweep.
    Tick,
}

/// What a node forges into its log for a peer (a dishonest or buggy node).
/// Each is an event that can never be valid from that origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forgery {
    /// A home section of the receiver's own member (only its owner writes it).
    OwnersHomeSection { member: MemberRef },
    /// A host record naming a third node as its author.
    RecordByAnother {
        member: MemberRef,
        kind: RecordKind,
        author: usize,
    },
    /// Withdrawing a copy the receiver holds from another owner.
    Unshare { member: MemberRef },
    /// Ending an agreement the forger is no party of.
    AgreementEnd { agreement: Option<AgreementRef> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    HostSection,
    Contact,
    Activity,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An operator action (or the calendar) at node `at`; with `crash`, the
    /// node crashes at its first write to its change log (the action's
    /// transaction is lost) or, if it writes none, right after.
    Act {
        at: usize,
        action: Action,
        crash: bool,
    },
    /// `to` pulls from `from`: opens a stream at its cursor if none is open,
    /// and applies the next batch (at most `limit` events); `prefix`: only the
    /// first n events arrive, then the stream breaks; `crash`: `to` crashes
    /// at the moment its cursor would advance.
    Deliver {
        from: usize,
        to: usize,
        limit: u32,
        prefix: Option<usize>,
        crash: bool,
    },
    /// `from` sends the next batch on the open stream, not yet applied.
    Send {
        from: usize,
        to: usize,
        limit: u32,
    },
    /// A batch delivered before arrives again.
    Duplicate {
        from: usize,
        to: usize,
        pick: usize,
    },
    /// The connection breaks: batches in flight are lost.
    Lose {
        from: usize,
        to: usize,
    },
    /// The node crashes (its connections break) and stays down.
    Crash {
        node: usize,
    },
    Restart {
        node: usize,
    },
    /// Every node's clock moves forward by its delta (ms).
    Advance {
        deltas_ms: Vec<i64>,
    },
    Partition {
        a: usize,
        b: usize,
    },
    Heal {
        a: usize,
        b: usize,
    },
    Forge {
        from: usize,
        to: usize,
        forgery: Forgery,
    },
    /// `liaisonctl backup` at the node: a copy of its database as now.
    Backup {
        node: usize,
    },
    /// The node's database is replaced by one of its earlier backups (the
    /// `pick`-th, modulo how many it has) and the node starts on it. With
    /// `in_place`, the node's database is there to compare the backup
    /// with, and a backup of a branch it left is refused as `liaison-node
    /// restore` refuses it; without, the disk was lost and nothing can
    /// tell.
    Restore {
        node: usize,
        pick: usize,
        in_place: bool,
    },
}

impl Step {
    /// The fault or action kind, for the per-run counts.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Act { crash: true, .. } => "crash_in_action",
            Step::Act {
                action: Action::Tick,
                ..
            } => "tick",
            Step::Act {
                action: Action::PeerRemove { .. },
                ..
            } => "peer_remove",
            Step::Act {
                action: Action::PeerReAdd { .. },
                ..
            } => "peer_readd",
            Step::Act { .. } => "action",
            Step::Deliver { crash: true, .. } => "crash_in_apply",
            Step::Deliver {
                prefix: Some(_), ..
            } => "partial_delivery",
            Step::Deliver { .. } => "delivery",
            Step::Send { .. } => "send_ahead",
            Step::Duplicate { .. } => "duplicate",
            Step::Lose { .. } => "link_loss",
            Step::Crash { .. } => "crash",
            Step::Restart { .. } => "restart",
            Step::Advance { .. } => "clock_advance",
            Step::Partition { .. } => "partition",
            Step::Heal { .. } => "heal",
            Step::Forge { .. } => "forge",
            Step::Backup { .. } => "backup",
            Step::Restore { .. } => "restore",
        }
    }
}

/// Formats steps with node names and member and agreement aliases.
pub struct Named<'a, T> {
    pub item: &'a T,
    pub r: &'a dyn Resolve,
}

/// A clock step, exact to the millisecond, so that a schedule can be
/// written back from its trace.
fn days(ms: i64) -> String {
    let d = ms / 86_400_000;
    let h = (ms % 86_400_000) / 3_600_000;
    let m = (ms % 3_600_000) / 60_000;
    let rest = ms % 60_000;
    let seconds = match rest {
        0 => String::new(),
        r if r % 1000 == 0 => format!("{}s", r / 1000),
        r => format!("{}.{:03}s", r / 1000, r % 1000),
    };
    match (d, h) {
        (0, 0) => format!("+{m}m{seconds}"),
        (0, h) => format!("+{h}h{m:02}m{seconds}"),
        (d, h) => format!("+{d}d{h}h{m:02}m{seconds}"),
    }
}

impl fmt::Display for Named<'_, Action> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |i: &usize| self.r.node(*i);
        let m = |x: &MemberRef| self.r.member(*x);
        let a = |x: &AgreementRef| self.r.agreement(*x);
        let t = |x: &TransferRef| self.r.transfer(*x);
        match self.item {
            Action::MemberAdd { name } => write!(f, "member add `{name}`"),
            Action::MemberImport { name, id_of: None } => write!(f, "member import `{name}`"),
            Action::MemberImport {
                name,
                id_of: Some(member),
            } => write!(f, "member import `{name}` with the id of {}", m(member)),
            Action::OrgAdd { serial } => write!(f, "org add b{serial}"),
            Action::OutflowUpdate { member, dest } => write!(
                f,
                "outflow update {} to {}",
                m(member),
                dest.as_ref().map(n).unwrap_or("a place no node serves")
            ),
            Action::MemberUpdate {
                member,
                name,
                phone,
            } => write!(
                f,
                "member update {} name={name:?} phone={phone:?}",
                m(member)
            ),
            Action::OutflowRegister {
                member,
                dest,
                departed_days_ago,
            } => write!(
                f,
                "outflow register {} to {} departed {departed_days_ago}d ago",
                m(member),
                dest.as_ref().map(n).unwrap_or("a place no node serves")
            ),
            Action::OutflowReturn { member } => write!(f, "outflow return {}", m(member)),
            Action::HostSet { member, employer } => {
                write!(f, "member host-set {} employer #{employer}", m(member))
            }
            Action::Contact {
                member,
                channel,
                days_ago,
            } => write!(f, "contact {} {channel} {days_ago}d ago", m(member)),
            Action::Activity {
                member,
                kind,
                days_ago,
            } => write!(f, "activity {} {kind} {days_ago}d ago", m(member)),
            Action::ContactStatus { member, set } => {
                write!(f, "contact-status {} {set}", m(member))
            }
            Action::Propose {
                peer,
                as_outflow,
                from_days,
                length_days,
                members,
            } => write!(
                f,
                "agreement propose to {} as {} from {from_days:+}d for {length_days}d, scope {}",
                n(peer),
                if *as_outflow { "outflow" } else { "inflow" },
                if members.is_empty() {
                    "destination".to_owned()
                } else {
                    members.iter().map(m).collect::<Vec<_>>().join(",")
                }
            ),
            Action::Counter {
                agreement,
                from_days,
                length_days,
            } => write!(
                f,
                "agreement counter {} from {from_days:+}d for {length_days}d",
                a(agreement)
            ),
            Action::Accept { agreement } => write!(f, "agreement accept {}", a(agreement)),
            Action::Reject { agreement } => write!(f, "agreement reject {}", a(agreement)),
            Action::Terminate { agreement } => write!(f, "agreement terminate {}", a(agreement)),
            Action::TransferStart {
                member,
                to,
                valid_days,
            } => write!(
                f,
                "transfer start {} to {} valid {valid_days}d",
                m(member),
                n(to)
            ),
            Action::TransferAccept { transfer } => write!(f, "transfer accept {}", t(transfer)),
            Action::TransferReject { transfer, code } => {
                write!(f, "transfer reject {} ({code})", t(transfer))
            }
            Action::TransferCancel { transfer } => write!(f, "transfer cancel {}", t(transfer)),
            Action::TransferExtend { transfer, days } => {
                write!(f, "transfer extend {} by {days}d", t(transfer))
            }
            Action::TransferReissue { transfer } => {
                write!(f, "transfer reissue {}", t(transfer))
            }
            Action::TransferOnPaper { member } => {
                write!(f, "transfer out {} on paper", m(member))
            }
            Action::PeerRemove { peer, force } => write!(
                f,
                "peer remove {}{}",
                n(peer),
                if *force { " --force" } else { "" }
            ),
            Action::PeerReAdd { peer } => write!(f, "peer add {} again", n(peer)),
            Action::ReconcileWithoutPeer { peer } => {
                write!(f, "reconcile --without-peer {}", n(peer))
            }
            Action::Tick => write!(f, "calendar tick"),
        }
    }
}

impl fmt::Display for Named<'_, Step> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |i: &usize| self.r.node(*i);
        let m = |x: &MemberRef| self.r.member(*x);
        let a = |x: &AgreementRef| self.r.agreement(*x);
        match self.item {
            Step::Act { at, action, crash } => write!(
                f,
                "{}: {}{}",
                n(at),
                Named {
                    item: action,
                    r: self.r
                },
                if *crash {
                    " [crash mid-transaction]"
                } else {
                    ""
                }
            ),
            Step::Deliver {
                from,
                to,
                limit,
                prefix,
                crash,
            } => {
                write!(f, "deliver {}→{} (≤{limit} events", n(from), n(to))?;
                if let Some(k) = prefix {
                    write!(f, ", only the first {k}, then the stream breaks")?;
                }
                if *crash {
                    write!(f, ", {} crashes as its cursor advances", n(to))?;
                }
                write!(f, ")")
            }
            Step::Send { from, to, limit } => {
                write!(f, "send ahead {}→{} (≤{limit} events)", n(from), n(to))
            }
            Step::Duplicate { from, to, pick } => {
                write!(f, "duplicate an old batch {}→{} (#{pick})", n(from), n(to))
            }
            Step::Lose { from, to } => write!(f, "lose the stream {}→{}", n(from), n(to)),
            Step::Crash { node } => write!(f, "crash {}", n(node)),
            Step::Restart { node } => write!(f, "restart {}", n(node)),
            Step::Advance { deltas_ms } => {
                write!(f, "clocks")?;
                for (i, d) in deltas_ms.iter().enumerate() {
                    write!(f, " {}{}", n(&i), days(*d))?;
                }
                Ok(())
            }
            Step::Partition { a, b } => write!(f, "partition {} | {}", n(a), n(b)),
            Step::Heal { a, b } => write!(f, "heal {} | {}", n(a), n(b)),
            Step::Backup { node } => write!(f, "backup {}", n(node)),
            Step::Restore {
                node,
                pick,
                in_place,
            } => {
                write!(f, "restore {} from its backup #{pick}", n(node))?;
                if !in_place {
                    write!(f, " onto a new disk")?;
                }
                Ok(())
            }
            Step::Forge { from, to, forgery } => {
                write!(f, "{} forges for {}: ", n(from), n(to))?;
                match forgery {
                    Forgery::OwnersHomeSection { member } => {
                        write!(f, "the home section of {}", m(member))
                    }
                    Forgery::RecordByAnother {
                        member,
                        kind,
                        author,
                    } => write!(
                        f,
                        "a {kind:?} about {} authored by {}",
                        m(member),
                        n(author)
                    ),
                    Forgery::Unshare { member } => write!(f, "an unshare of {}", m(member)),
                    Forgery::AgreementEnd { agreement } => match agreement {
                        Some(x) => write!(f, "the termination of {}", a(x)),
                        None => write!(f, "the termination of an unknown agreement"),
                    },
                }
            }
        }
    }
}

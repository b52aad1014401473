//! `liaisonctl transfer`: transfer of a member's organizational relationship
//! (组织关系转接) to another node, exactly once (docs/transfers.md).
//!
//! The sender coordinates: `start` issues the letter (介绍信) and freezes the
//! member; the receiver's operator votes with `accept` or `reject`; the sender
//! releases on an accept, and the receiver's receipt (回执) closes it. Until
//! then the sender may `cancel`, `extend` the letter, or `reissue` it under a
//! new number (the old number is void). `out --paper` records a transfer to a
//! place with no node.

use clap::builder::NonEmptyStringValueParser;
use clap::Subcommand;
use liaison_proto::v1 as pb;
use liaisonctl::output::{self, dash, json_line, Detail, Format, Table};
use serde_json::json;

use super::member::{print_member, View as MemberView};
use super::refs::{self, MemberArg};
use super::{print_list, text, Admin, Failure};

/// The states a transfer can be in, at the sender and at the receiver.
const STATES: [&str; 10] = [
    "offered",
    "released",
    "completed",
    "expired",
    "rejected",
    "cancelled",
    "pending",
    "accepted",
    "aborted",
    "awaiting_sender",
];

#[derive(Debug, Subcommand)]
pub enum TransferCommand {
    /// Start a transfer of a member this node owns to a peer: issues the
    /// letter (介绍信) and freezes the member until the transfer ends.
    Start(StartArgs),
    /// List transfers, incoming and outgoing.
    List(ListArgs),
    /// One transfer in detail.
    Show {
        /// The transfer: its letter number (介绍信编号), id, or an id prefix.
        #[arg(value_name = "TRANSFER")]
        transfer_id: String,
    },
    /// Accept an incoming transfer (receiver): the member is enrolled in the
    /// branch once the sender releases it. An accept cannot be taken back.
    /// A letter past its printed expiry on this node's clock is refused with
    /// a warning unless --yes: the sender's calendar decides whether it
    /// still holds.
    Accept {
        /// The transfer: its letter number (介绍信编号), id, or an id prefix.
        #[arg(value_name = "TRANSFER")]
        transfer_id: String,
        /// The branch of this node that receives the member (its code or full name).
        #[arg(long, value_name = "ORG", value_parser = NonEmptyStringValueParser::new())]
        branch: String,
        /// Accept even if the letter is past its printed expiry on this
        /// node's clock (if the sender has expired it, the accept is
        /// answered as expired).
        #[arg(long)]
        yes: bool,
    },
    /// Reject an incoming transfer (receiver), with a reason code: an
    /// organization may not refuse without cause.
    Reject(RejectArgs),
    /// Cancel an outgoing transfer before it is released (sender); the member
    /// is unfrozen and the receiver is told.
    Cancel {
        /// The transfer: its letter number, id, or an id prefix.
        #[arg(value_name = "TRANSFER")]
        transfer_id: String,
    },
    /// Extend an open outgoing transfer's letter by some days (sender), up to
    /// the configured maximum validity counted from the day of issue.
    Extend {
        /// The transfer: its letter number, id, or an id prefix.
        #[arg(value_name = "TRANSFER")]
        transfer_id: String,
        /// How many days later the letter expires.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        days: u32,
    },
    /// Re-issue an outgoing transfer under a new letter number (补转, e.g.
    /// the letter was lost): the old transfer is cancelled and its letter
    /// number is void, refused if it is ever presented.
    Reissue {
        /// The transfer: its letter number, id, or an id prefix.
        #[arg(value_name = "TRANSFER")]
        transfer_id: String,
    },
    /// Record a transfer on paper to a place with no node (--paper): the
    /// member becomes a tombstone pointing there; nothing is sent.
    Out(OutArgs),
}

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    #[command(flatten)]
    member: MemberArg,
    /// The receiving node: a peer's node id or name.
    #[arg(long, value_name = "PEER")]
    to: String,
    /// Letter validity in days (default: the node's configured default; at
    /// most its configured maximum). Typically about 10 in the city, 30 out
    /// of it, 90 at most.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    valid_days: Option<u32>,
    /// Why the member moves (转接原因), e.g. 工作调动.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
}

impl StartArgs {
    fn request(self, member_id: String, to: String) -> pb::TransferStartRequest {
        pb::TransferStartRequest {
            member_id,
            to,
            valid_days: self.valid_days.unwrap_or(0),
            reason: text(self.reason),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only transfers to this node (it receives).
    #[arg(long, conflicts_with = "outgoing")]
    incoming: bool,
    /// Only transfers from this node (it sends).
    #[arg(long)]
    outgoing: bool,
    /// Only transfers in this state. The sender's: offered, released,
    /// completed, expired, rejected, cancelled; the receiver's: pending,
    /// accepted, completed, aborted, rejected, awaiting_sender.
    #[arg(long, value_parser = STATES)]
    state: Option<String>,
    /// Only released transfers whose receipt (回执) has not come within a
    /// month (at the sender).
    #[arg(long, conflicts_with = "incoming")]
    overdue_receipt: bool,
}

impl ListArgs {
    fn request(self) -> pb::TransferListRequest {
        pb::TransferListRequest {
            incoming: self.incoming,
            outgoing: self.outgoing,
            state: text(self.state),
            overdue_receipt: self.overdue_receipt,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct RejectArgs {
    /// The transfer: its letter number (介绍信编号), id, or an id prefix.
    #[arg(value_name = "TRANSFER")]
    transfer_id: String,
    /// Why (required). Common codes: not_our_member (the member does not
    /// belong to an organization of this node), wrong_receiver (the letter is
    /// addressed to the wrong organization), incomplete_record (the record
    /// lacks what is needed to enrol the member), other (say what with
    /// --reason). The node checks the code.
    #[arg(long, value_name = "CODE", value_parser = NonEmptyStringValueParser::new())]
    reason_code: String,
    /// The reason in words; the sender's operators see it (required with
    /// --reason-code other).
    #[arg(long, value_name = "TEXT", required_if_eq("reason_code", "other"))]
    reason: Option<String>,
}

impl RejectArgs {
    fn request(self, transfer_id: String) -> pb::TransferRejectRequest {
        pb::TransferRejectRequest {
            transfer_id,
            reason_code: self.reason_code,
            reason: text(self.reason),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct OutArgs {
    #[command(flatten)]
    member: MemberArg,
    /// The transfer is on paper, to a place with no node (required for now;
    /// a transfer to a node is `transfer start`).
    #[arg(long)]
    paper: bool,
    /// Where the member goes: the place (a name such as 上海市浦东新区, or its code).
    #[arg(long, value_name = "PLACE", value_parser = NonEmptyStringValueParser::new())]
    to_place: String,
    /// The paper letter's number (介绍信编号).
    #[arg(long = "letter", value_name = "NO", value_parser = NonEmptyStringValueParser::new())]
    letter_no: String,
    /// Why the member moves (转接原因).
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
}

impl OutArgs {
    fn request(self, member_id: String) -> anyhow::Result<pb::TransferPaperRequest> {
        if !self.paper {
            anyhow::bail!(
                "transfer out records a paper transfer only: add --paper (to transfer the member to a node, use `liaisonctl transfer start {} --to PEER`)",
                self.member.member
            );
        }
        Ok(pb::TransferPaperRequest {
            member_id,
            to_place: self.to_place,
            letter_no: self.letter_no,
            reason: text(self.reason),
        })
    }
}

pub async fn run(
    admin: &mut Admin,
    format: Format,
    command: TransferCommand,
) -> Result<(), Failure> {
    let transfer_ref = |transfer_id: String| pb::TransferRef { transfer_id };
    let view = match command {
        TransferCommand::Start(args) => {
            let member_id = args.member.id(admin, "transfer.start").await?;
            let to = refs::peer(admin, &args.to, "transfer.start").await?;
            admin.transfer_start(args.request(member_id, to)).await?
        }
        TransferCommand::List(args) => {
            let transfers = admin
                .transfer_list(args.request())
                .await?
                .into_inner()
                .transfers;
            print_list(
                format,
                "transfer",
                &transfers,
                transfer_json,
                transfer_table,
            );
            if format == Format::Table {
                output::note(&list_footer(transfers.len()));
            }
            return Ok(());
        }
        TransferCommand::Show { transfer_id } => {
            let transfer_id = refs::transfer(admin, &transfer_id, "").await?;
            let view = admin
                .transfer_show(transfer_ref(transfer_id))
                .await?
                .into_inner();
            print_transfer(format, &view, View::Full);
            return Ok(());
        }
        TransferCommand::Accept {
            transfer_id,
            branch,
            yes,
        } => {
            let transfer_id = refs::transfer(admin, &transfer_id, "transfer.accept").await?;
            let branch = refs::org(admin, &branch, "transfer.accept").await?;
            // The node's own date says whether the printed expiry has passed,
            // so this needs no clock here.
            let offer = admin
                .transfer_show(transfer_ref(transfer_id.clone()))
                .await?
                .into_inner();
            if past_printed_expiry(&offer) {
                let warning = past_expiry_warning(&offer);
                if !yes {
                    return Err(Failure::Refused(format!(
                        "{warning}\nnothing was accepted: ask {} to extend the letter (`transfer extend`) or reissue it, or accept anyway with --yes",
                        dash(&offer.sender)
                    )));
                }
                output::note(&format!(
                    "liaisonctl: warning: {warning}; accepting (--yes)\n"
                ));
            }
            admin
                .transfer_accept(pb::TransferAcceptRequest {
                    transfer_id,
                    branch,
                })
                .await?
        }
        TransferCommand::Reject(args) => {
            let transfer_id = refs::transfer(admin, &args.transfer_id, "transfer.reject").await?;
            admin.transfer_reject(args.request(transfer_id)).await?
        }
        TransferCommand::Cancel { transfer_id } => {
            let transfer_id = refs::transfer(admin, &transfer_id, "transfer.cancel").await?;
            admin.transfer_cancel(transfer_ref(transfer_id)).await?
        }
        TransferCommand::Extend { transfer_id, days } => {
            let transfer_id = refs::transfer(admin, &transfer_id, "transfer.extend").await?;
            admin
                .transfer_extend(pb::TransferExtendRequest { transfer_id, days })
                .await?
        }
        TransferCommand::Reissue { transfer_id } => {
            let transfer_id = refs::transfer(admin, &transfer_id, "transfer.reissue").await?;
            // The old letter's number, to say which paper is void.
            let old = admin
                .transfer_show(transfer_ref(transfer_id.clone()))
                .await?
                .into_inner();
            let mut new = admin
                .transfer_reissue(transfer_ref(transfer_id))
                .await?
                .into_inner();
            if let Some(id) = new_transfer_id(&old.transfer_id, &new) {
                new = admin.transfer_show(transfer_ref(id)).await?.into_inner();
            }
            print_transfer(format, &new, View::Short);
            if format == Format::Table {
                output::print_out(&void_note(&old, &new));
            }
            return Ok(());
        }
        TransferCommand::Out(mut args) => {
            let member_id = args.member.id(admin, "transfer.paper").await?;
            args.to_place = super::places::code(&args.to_place)?;
            let member = admin
                .transfer_out_paper(args.request(member_id)?)
                .await?
                .into_inner();
            print_member(format, &member, MemberView::Short);
            return Ok(());
        }
    };
    print_transfer(format, &view.into_inner(), View::Short);
    Ok(())
}

/// Whether an offer to accept is past its printed expiry on the node's clock.
fn past_printed_expiry(t: &pb::TransferView) -> bool {
    t.past_expiry && t.direction == "incoming" && t.state == "pending"
}

/// Why accepting a letter past its printed expiry may be in vain: the
/// receiver's clock only shows the date on the letter; the sender's
/// calendar decides expiry, also when the accept arrives.
fn past_expiry_warning(t: &pb::TransferView) -> String {
    let letter = match t.letter_no.as_str() {
        "" => format!("the letter of transfer {}", t.transfer_id),
        no => format!("letter {no}"),
    };
    let sender = dash(&t.sender);
    format!(
        "{letter} was valid until {} by its printed date, which has passed on this node's clock; the sender's calendar decides: if {sender} has expired the letter, or its own date is past {} when the accept arrives, this accept is answered as expired and the member stays with {sender}",
        dash(&t.expires_on),
        dash(&t.expires_on)
    )
}

/// The printed expiry for people, marked once it has passed on the node's
/// clock while the letter is open.
fn expires_cell(t: &pb::TransferView) -> String {
    if t.past_expiry {
        format!("{} (past printed expiry)", dash(&t.expires_on))
    } else {
        dash(&t.expires_on)
    }
}

/// Which parts of a transfer a verb prints in table mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    /// Where it stands and what comes next: after a change.
    Short,
    /// Every field.
    Full,
}

fn print_transfer(format: Format, t: &pb::TransferView, view: View) {
    match format {
        Format::Json => json_line("transfer", transfer_json(t)),
        Format::Table => output::print_out(&transfer_detail(t, view)),
    }
}

pub fn transfer_json(t: &pb::TransferView) -> serde_json::Value {
    json!({
        "transfer_id": t.transfer_id, "letter_no": t.letter_no, "direction": t.direction,
        "sender": t.sender, "receiver": t.receiver,
        "member_id": t.member_id, "member_name": t.member_name, "state": t.state,
        "issued_on": t.issued_on, "expires_on": t.expires_on, "valid_days": t.valid_days,
        "reason": t.reason, "branch": t.branch,
        "reject_code": t.reject_code, "reject_reason": t.reject_reason, "abort_why": t.abort_why,
        "released_at_ms": t.released_at_ms, "receipt_at_ms": t.receipt_at_ms,
        "reissue_of": t.reissue_of, "reissued_as": t.reissued_as,
        "possible_duplicate": t.possible_duplicate, "next_step": t.next_step,
        "updated_at_ms": t.updated_at_ms, "past_expiry": t.past_expiry,
    })
}

/// The member for people: the name if known, else the id.
fn member_cell(t: &pb::TransferView) -> String {
    if t.member_name.trim().is_empty() {
        dash(&t.member_id)
    } else {
        t.member_name.clone()
    }
}

/// The member in a detail view: id and name.
fn member_label(t: &pb::TransferView) -> String {
    match (t.member_id.as_str(), t.member_name.trim()) {
        (id, "") => id.to_owned(),
        ("", name) => name.to_owned(),
        (id, name) => format!("{id} ({name})"),
    }
}

/// A count of days for people: "-" for none (0).
fn days_or_dash(days: u32) -> String {
    if days == 0 {
        "-".into()
    } else {
        days.to_string()
    }
}

fn transfer_table(transfers: &[pb::TransferView]) -> Table {
    let mut table = Table::new(&[
        "ID",
        "LETTER",
        "DIRECTION",
        "MEMBER",
        "FROM",
        "TO",
        "STATE",
        "ISSUED",
        "EXPIRES",
        "DUPLICATE?",
    ]);
    for t in transfers {
        table.row(vec![
            t.transfer_id.clone(),
            dash(&t.letter_no),
            dash(&t.direction),
            member_cell(t),
            dash(&t.sender),
            dash(&t.receiver),
            dash(&t.state),
            dash(&t.issued_on),
            expires_cell(t),
            dash(&t.possible_duplicate),
        ]);
    }
    table
}

/// "N transfers", under the table.
fn list_footer(shown: usize) -> String {
    match shown {
        1 => "1 transfer\n".into(),
        n => format!("{n} transfers\n"),
    }
}

fn transfer_detail(t: &pb::TransferView, view: View) -> String {
    let full = view == View::Full;
    let mut d = Detail::new();
    d.field("transfer", &t.transfer_id)
        .field("letter no (介绍信编号)", &t.letter_no);
    if full {
        d.field("direction", &t.direction)
            .field("member", &t.member_id)
            .field("member name", &t.member_name);
    } else {
        d.field("member", member_label(t));
    }
    d.field("sender", &t.sender)
        .field("receiver", &t.receiver)
        .field("state", &t.state);
    if full {
        d.field("issued on", &t.issued_on);
    }
    d.field(
        "expires on",
        if t.past_expiry {
            format!(
                "{} (past printed expiry on this node's clock; the sender's calendar decides)",
                dash(&t.expires_on)
            )
        } else {
            t.expires_on.clone()
        },
    );
    if full {
        d.field("valid days", days_or_dash(t.valid_days))
            .field("reason", &t.reason);
    }
    // After a change, only what says how it ended or where it went.
    let optional = [
        ("branch", t.branch.clone()),
        ("reject code", t.reject_code.clone()),
        ("reject reason", t.reject_reason.clone()),
        ("abort why", t.abort_why.clone()),
        ("released", output::time(t.released_at_ms)),
        ("receipt (回执)", output::time(t.receipt_at_ms)),
        ("reissue of", t.reissue_of.clone()),
        ("reissued as", t.reissued_as.clone()),
        ("possible duplicate", duplicate(&t.possible_duplicate)),
    ];
    for (label, value) in optional {
        if full || dash(&value) != "-" {
            d.field(label, value);
        }
    }
    d.field("next step", &t.next_step);
    if full {
        d.field("updated", output::time(t.updated_at_ms));
    }
    d.render()
}

/// A possible duplicate, with what it means.
fn duplicate(member_id: &str) -> String {
    if member_id.trim().is_empty() {
        String::new()
    } else {
        format!("{member_id} (a member owned here with the same ID number)")
    }
}

/// The id of the new transfer to show after a re-issue, if the node's reply
/// is the old transfer rather than the new one.
fn new_transfer_id(old_id: &str, reply: &pb::TransferView) -> Option<String> {
    (reply.transfer_id == old_id && !reply.reissued_as.is_empty())
        .then(|| reply.reissued_as.clone())
}

/// After a re-issue: the old letter is void, the new one replaces it.
fn void_note(old: &pb::TransferView, new: &pb::TransferView) -> String {
    let old_letter = match old.letter_no.as_str() {
        "" => format!("the letter of transfer {}", old.transfer_id),
        no => format!("letter {no} (transfer {})", old.transfer_id),
    };
    format!(
        "\n{old_letter} is void: it is refused if it is ever presented. The new letter is {} (transfer {}).\n",
        dash(&new.letter_no),
        dash(&new.transfer_id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{parse, refused};
    use crate::Command;

    fn transfer(args: &[&str]) -> TransferCommand {
        let argv: Vec<&str> = ["transfer"].iter().chain(args).copied().collect();
        match parse(&argv) {
            Command::Transfer(command) => command,
            other => panic!("{other:?}"),
        }
    }

    fn outgoing() -> pb::TransferView {
        pb::TransferView {
            transfer_id: "tr-1".into(),
            letter_no: "平组转〔2026〕12号".into(),
            direction: "outgoing".into(),
            sender: "pingliang".into(),
            receiver: "lanzhou".into(),
            member_id: "m-1".into(),
            member_name: "张三".into(),
            state: "offered".into(),
            issued_on: "2026-05-01".into(),
            expires_on: "2026-05-31".into(),
            valid_days: 30,
            reason: "工作调动".into(),
            next_step: "wait for lanzhou to accept or reject".into(),
            ..Default::default()
        }
    }

    fn incoming() -> pb::TransferView {
        pb::TransferView {
            transfer_id: "tr-2".into(),
            letter_no: "天组转〔2026〕3号".into(),
            direction: "incoming".into(),
            sender: "tianshui".into(),
            receiver: "pingliang".into(),
            member_id: "m-2".into(),
            member_name: String::new(),
            state: "pending".into(),
            issued_on: "2026-05-02".into(),
            expires_on: "2026-08-01".into(),
            valid_days: 90,
            possible_duplicate: "m-9".into(),
            ..Default::default()
        }
    }

    /// The value printed after `label` in a detail view, if the label is there.
    fn value<'a>(text: &'a str, label: &str) -> Option<&'a str> {
        text.lines().find_map(|line| {
            let rest = line.trim_start().strip_prefix(label)?;
            rest.starts_with("  ").then(|| rest.trim())
        })
    }

    #[test]
    fn start_maps_flags_and_defaults_the_validity() {
        let TransferCommand::Start(args) = transfer(&[
            "start",
            "m-1",
            "--to",
            "lanzhou",
            "--valid-days",
            "90",
            "--reason",
            "工作调动",
        ]) else {
            panic!()
        };
        assert_eq!(
            (args.member.member.as_str(), args.to.as_str()),
            ("m-1", "lanzhou")
        );
        assert_eq!(
            args.request("m-1".into(), "lanzhou".into()),
            pb::TransferStartRequest {
                member_id: "m-1".into(),
                to: "lanzhou".into(),
                valid_days: 90,
                reason: "工作调动".into(),
            }
        );
        let TransferCommand::Start(args) = transfer(&["start", "m-1", "--to", "lanzhou"]) else {
            panic!()
        };
        assert_eq!(
            args.request("m-1".into(), "lanzhou".into()).valid_days,
            0,
            "0 asks for the node's default"
        );
        assert!(refused(&["transfer", "start", "m-1"]));
        assert!(refused(&[
            "transfer",
            "start",
            "m-1",
            "--to",
            "lanzhou",
            "--valid-days",
            "0"
        ]));
        assert!(refused(&[
            "transfer",
            "start",
            "m-1",
            "--to",
            "lanzhou",
            "--valid-days",
            "-3"
        ]));
    }

    #[test]
    fn list_maps_filters() {
        let check = |args: &[&str], want: pb::TransferListRequest| {
            let argv: Vec<&str> = ["list"].iter().chain(args).copied().collect();
            let TransferCommand::List(list) = transfer(&argv) else {
                panic!()
            };
            assert_eq!(list.request(), want, "{args:?}");
        };
        check(&[], pb::TransferListRequest::default());
        check(
            &["--incoming", "--state", "pending"],
            pb::TransferListRequest {
                incoming: true,
                state: "pending".into(),
                ..Default::default()
            },
        );
        check(
            &["--outgoing", "--overdue-receipt"],
            pb::TransferListRequest {
                outgoing: true,
                overdue_receipt: true,
                ..Default::default()
            },
        );
        assert!(refused(&["transfer", "list", "--incoming", "--outgoing"]));
        assert!(refused(&[
            "transfer",
            "list",
            "--incoming",
            "--overdue-receipt"
        ]));
        assert!(refused(&["transfer", "list", "--state", "lost"]));
    }

    #[test]
    fn accept_needs_a_branch() {
        match transfer(&["accept", "tr-2", "--branch", "pl-kt-01"]) {
            TransferCommand::Accept {
                transfer_id,
                branch,
                yes,
            } => assert_eq!(
                (transfer_id.as_str(), branch.as_str(), yes),
                ("tr-2", "pl-kt-01", false)
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            transfer(&["accept", "tr-2", "--branch", "pl-kt-01", "--yes"]),
            TransferCommand::Accept { yes: true, .. }
        ));
        assert!(refused(&["transfer", "accept", "tr-2"]));
        assert!(refused(&["transfer", "accept", "tr-2", "--branch", ""]));
    }

    #[test]
    fn reject_needs_a_reason_code() {
        let TransferCommand::Reject(args) = transfer(&[
            "reject",
            "tr-2",
            "--reason-code",
            "not_our_member",
            "--reason",
            "本人未在我处工作",
        ]) else {
            panic!()
        };
        assert_eq!(
            args.request("tr-2".into()),
            pb::TransferRejectRequest {
                transfer_id: "tr-2".into(),
                reason_code: "not_our_member".into(),
                reason: "本人未在我处工作".into(),
            }
        );
        assert!(refused(&["transfer", "reject", "tr-2"]));
        assert!(refused(&["transfer", "reject", "tr-2", "--reason", "x"]));
        // An organization may not refuse without cause: "other" says what.
        assert!(refused(&[
            "transfer",
            "reject",
            "tr-2",
            "--reason-code",
            "other"
        ]));
        assert!(refused(&[
            "transfer",
            "reject",
            "tr-2",
            "--reason-code",
            ""
        ]));
    }

    #[test]
    fn extend_needs_positive_days() {
        match transfer(&["extend", "tr-1", "--days", "30"]) {
            TransferCommand::Extend { transfer_id, days } => {
                assert_eq!((transfer_id.as_str(), days), ("tr-1", 30))
            }
            other => panic!("{other:?}"),
        }
        assert!(refused(&["transfer", "extend", "tr-1"]));
        assert!(refused(&["transfer", "extend", "tr-1", "--days", "0"]));
    }

    #[test]
    fn cancel_show_and_reissue_take_an_id() {
        assert!(matches!(
            transfer(&["cancel", "tr-1"]),
            TransferCommand::Cancel { transfer_id } if transfer_id == "tr-1"
        ));
        assert!(matches!(
            transfer(&["show", "tr-1"]),
            TransferCommand::Show { transfer_id } if transfer_id == "tr-1"
        ));
        assert!(matches!(
            transfer(&["reissue", "tr-1"]),
            TransferCommand::Reissue { transfer_id } if transfer_id == "tr-1"
        ));
        assert!(refused(&["transfer", "reissue"]));
    }

    #[test]
    fn out_is_on_paper_only() {
        let out = |args: &[&str]| {
            let argv: Vec<&str> = ["out", "m-1"].iter().chain(args).copied().collect();
            let TransferCommand::Out(args) = transfer(&argv) else {
                panic!()
            };
            args.request("m-1".into())
        };
        assert_eq!(
            out(&[
                "--paper",
                "--to-place",
                "上海市浦东新区某街道党工委",
                "--letter",
                "平组转〔2026〕15号",
                "--reason",
                "定居",
            ])
            .unwrap(),
            pb::TransferPaperRequest {
                member_id: "m-1".into(),
                to_place: "上海市浦东新区某街道党工委".into(),
                letter_no: "平组转〔2026〕15号".into(),
                reason: "定居".into(),
            }
        );
        let error = out(&["--to-place", "上海", "--letter", "15"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--paper"), "{error}");
        assert!(error.contains("transfer start m-1 --to PEER"), "{error}");
        assert!(refused(&[
            "transfer", "out", "m-1", "--paper", "--letter", "15"
        ]));
        assert!(refused(&[
            "transfer",
            "out",
            "m-1",
            "--paper",
            "--to-place",
            "上海"
        ]));
    }

    #[test]
    fn short_view_after_start() {
        let text = transfer_detail(&outgoing(), View::Short);
        assert_eq!(value(&text, "transfer"), Some("tr-1"));
        assert_eq!(
            value(&text, "letter no (介绍信编号)"),
            Some("平组转〔2026〕12号")
        );
        assert_eq!(value(&text, "member"), Some("m-1 (张三)"));
        assert_eq!(value(&text, "receiver"), Some("lanzhou"));
        assert_eq!(value(&text, "expires on"), Some("2026-05-31"));
        assert_eq!(
            value(&text, "next step"),
            Some("wait for lanzhou to accept or reject")
        );
        assert_eq!(value(&text, "reject code"), None, "{text}");
        assert_eq!(value(&text, "released"), None, "{text}");
        assert_eq!(value(&text, "reason"), None, "{text}");
        let mut rejected = outgoing();
        rejected.state = "rejected".into();
        rejected.reject_code = "wrong_receiver".into();
        let text = transfer_detail(&rejected, View::Short);
        assert_eq!(value(&text, "reject code"), Some("wrong_receiver"));
        assert_eq!(value(&text, "reject reason"), None);
    }

    #[test]
    fn full_view_has_every_field_and_dashes_empty_ones() {
        let mut t = incoming();
        t.receipt_at_ms = 0;
        let text = transfer_detail(&t, View::Full);
        for (label, want) in [
            ("transfer", "tr-2"),
            ("letter no (介绍信编号)", "天组转〔2026〕3号"),
            ("direction", "incoming"),
            ("member", "m-2"),
            ("member name", "-"),
            ("sender", "tianshui"),
            ("receiver", "pingliang"),
            ("state", "pending"),
            ("issued on", "2026-05-02"),
            ("expires on", "2026-08-01"),
            ("valid days", "90"),
            ("reason", "-"),
            ("branch", "-"),
            ("reject code", "-"),
            ("reject reason", "-"),
            ("abort why", "-"),
            ("released", "-"),
            ("receipt (回执)", "-"),
            ("reissue of", "-"),
            ("reissued as", "-"),
            (
                "possible duplicate",
                "m-9 (a member owned here with the same ID number)",
            ),
            ("next step", "-"),
            ("updated", "-"),
        ] {
            assert_eq!(value(&text, label), Some(want), "{label}: {text}");
        }
        // One line per field of TransferView (member id and name apart).
        assert_eq!(text.lines().count(), 23, "{text}");
    }

    #[test]
    fn list_table_columns() {
        let text = transfer_table(&[outgoing(), incoming()]).render();
        let rows: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows[0],
            [
                "ID",
                "LETTER",
                "DIRECTION",
                "MEMBER",
                "FROM",
                "TO",
                "STATE",
                "ISSUED",
                "EXPIRES",
                "DUPLICATE?"
            ]
        );
        assert_eq!(
            rows[1],
            [
                "tr-1",
                "平组转〔2026〕12号",
                "outgoing",
                "张三",
                "pingliang",
                "lanzhou",
                "offered",
                "2026-05-01",
                "2026-05-31",
                "-"
            ]
        );
        assert_eq!(rows[2][3], "m-2", "no name: the member id");
        assert_eq!(rows[2][9], "m-9");
        assert_eq!(list_footer(1), "1 transfer\n");
        assert_eq!(list_footer(0), "0 transfers\n");
        assert_eq!(list_footer(12), "12 transfers\n");
    }

    #[test]
    fn transfer_json_has_every_field_by_proto_name() {
        let value = transfer_json(&incoming());
        assert_eq!(value["transfer_id"], "tr-2");
        assert_eq!(value["letter_no"], "天组转〔2026〕3号");
        assert_eq!(value["valid_days"], 90);
        assert_eq!(value["possible_duplicate"], "m-9");
        assert_eq!(value["receipt_at_ms"], 0);
        assert_eq!(value["past_expiry"], false);
        assert_eq!(value.as_object().unwrap().len(), 24);
    }

    #[test]
    fn a_letter_past_its_printed_expiry_is_marked_and_warned_of() {
        let past = pb::TransferView {
            letter_no: "PINGLIANG-2026-000123".into(),
            sender: "pingliang".into(),
            expires_on: "2026-05-31".into(),
            past_expiry: true,
            ..incoming()
        };
        assert!(past_printed_expiry(&past));
        assert!(!past_printed_expiry(&incoming()));
        let accepted = pb::TransferView {
            state: "accepted".into(),
            ..past.clone()
        };
        assert!(
            !past_printed_expiry(&accepted),
            "only a pending offer is accepted"
        );
        let warning = past_expiry_warning(&past);
        assert!(
            warning.starts_with(
                "letter PINGLIANG-2026-000123 was valid until 2026-05-31 by its printed date"
            ),
            "{warning}"
        );
        assert!(
            warning.contains("the sender's calendar decides: if pingliang has expired the letter"),
            "{warning}"
        );
        assert!(warning.contains("answered as expired"), "{warning}");
        let text = transfer_detail(&past, View::Full);
        assert_eq!(
            value(&text, "expires on"),
            Some("2026-05-31 (past printed expiry on this node's clock; the sender's calendar decides)")
        );
        assert_eq!(text.lines().count(), 23, "{text}");
        let table = transfer_table(&[past.clone(), incoming()]).render();
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[1].contains("2026-05-31 (past printed expiry)"),
            "{table}"
        );
        assert!(!lines[2].contains("past printed expiry"), "{table}");
        assert_eq!(transfer_json(&past)["past_expiry"], true);
        assert_eq!(transfer_json(&past)["state"], "pending");
    }

    #[test]
    fn reissue_names_the_void_letter() {
        let old = outgoing();
        let new = pb::TransferView {
            transfer_id: "tr-3".into(),
            letter_no: "平组转〔2026〕16号".into(),
            reissue_of: "tr-1".into(),
            ..outgoing()
        };
        assert_eq!(new_transfer_id("tr-1", &new), None);
        let mut old_reply = old.clone();
        old_reply.state = "cancelled".into();
        old_reply.reissued_as = "tr-3".into();
        assert_eq!(new_transfer_id("tr-1", &old_reply), Some("tr-3".into()));
        let note = void_note(&old, &new);
        assert!(
            note.contains("letter 平组转〔2026〕12号 (transfer tr-1) is void"),
            "{note}"
        );
        assert!(
            note.contains("new letter is 平组转〔2026〕16号 (transfer tr-3)"),
            "{note}"
        );
        let text = transfer_detail(&new, View::Short);
        assert_eq!(value(&text, "reissue of"), Some("tr-1"));
    }
}

//! The verbs, one module per noun. Each module has the noun's `Subcommand`
//! enum, a `run` that sends the typed requests to the node's admin service,
//! and pure functions from arguments to requests and from replies to tables
//! and JSON, so those can be tested without a node.

pub mod activity;
pub mod agreement;
pub mod audit;
pub mod contact;
pub mod debug;
pub mod demo;
pub mod init;
pub mod member;
pub mod org;
pub mod outflow;
pub mod peer;
pub mod places;
pub mod quarantine;
pub mod reconcile;
pub mod refs;
pub mod report;
pub mod reportin;
pub mod roster;
pub mod station;
pub mod status;
pub mod todo;
pub mod transfer;

use liaisonctl::output::{json_line, Format, Table};

/// The admin client every remote verb talks through.
pub type Admin = liaison_rpc::v1::admin_client::AdminClient<tonic::transport::Channel>;

/// What went wrong, and so which exit code (see the crate's doc comment).
#[derive(Debug)]
pub enum Failure {
    /// Exit 1: the node refused the request; nothing was changed.
    Refused(String),
    /// Exit 2: usage, local files, or the node could not be reached or is
    /// unavailable (stopping, starting).
    Other(anyhow::Error),
    /// Exit 3: `audit verify` found the chain broken.
    AuditBroken,
    /// Exit 4: the node failed to carry out the request (a bug, or a
    /// damaged database): not a refusal of the request.
    Internal(String),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        use tonic::Code;
        if liaisonctl::client::lost_connection(&status) {
            return Failure::Other(anyhow::anyhow!(
                "the connection to the node was lost before it answered ({}): it may be stopping. \
                 Whether the change was made shows once it runs again (`liaisonctl status`, then the list)",
                status.message()
            ));
        }
        match status.code() {
            Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::FailedPrecondition
            | Code::PermissionDenied
            | Code::OutOfRange => Failure::Refused(status.message().to_owned()),
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted => {
                Failure::Other(anyhow::anyhow!(
                    "the node is unavailable: {} (try again once it runs; `liaisonctl status` tells)",
                    status.message()
                ))
            }
            Code::Internal | Code::Unknown | Code::DataLoss | Code::Unimplemented => {
                Failure::Internal(status.message().to_owned())
            }
            _ => Failure::Other(anyhow::anyhow!("{}: {}", status.code(), status.message())),
        }
    }
}

/// Prints records as JSON Lines envelopes of `kind`, or as the table
/// `table` makes of them.
pub fn print_list<T>(
    format: Format,
    kind: &str,
    items: &[T],
    to_json: impl Fn(&T) -> serde_json::Value,
    table: impl Fn(&[T]) -> Table,
) {
    match format {
        Format::Json => items.iter().for_each(|item| json_line(kind, to_json(item))),
        Format::Table => table(items).print(),
    }
}

/// "yes" or "no", for people.
pub fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

/// A record version for people: `generation.counter`.
pub fn version(generation: u64, counter: u64) -> String {
    format!("{generation}.{counter}")
}

/// An optional text flag as a request field: absent means empty.
pub fn text(value: Option<String>) -> String {
    value.unwrap_or_default()
}

/// Parses a `liaisonctl` command line, for the modules' tests.
#[cfg(test)]
pub fn parse(args: &[&str]) -> crate::Command {
    use clap::Parser;
    let argv = std::iter::once("liaisonctl").chain(args.iter().copied());
    match crate::Cli::try_parse_from(argv) {
        Ok(cli) => cli.command,
        Err(e) => panic!("`{}` does not parse: {e}", args.join(" ")),
    }
}

/// Whether a `liaisonctl` command line is refused as a usage error.
#[cfg(test)]
pub fn refused(args: &[&str]) -> bool {
    use clap::Parser;
    let argv = std::iter::once("liaisonctl").chain(args.iter().copied());
    crate::Cli::try_parse_from(argv).is_err()
}

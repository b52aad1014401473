//! `liaisonctl`: manage a Liaison node.
//!
//! Exit codes scripts can trust:
//! - 0: done;
//! - 1: the node refused the request (bad input, unknown record, a rule
//!   forbids it); nothing was changed. `member import` also exits 1 when
//!   the file has bad rows and `--skip-bad` was not given,
//!   `quarantine retry` when the entry is still held, and `transfer
//!   accept` when the letter is past its printed expiry on the node's clock
//!   and `--yes` was not given;
//! - 2: usage error, bad local files, or the node could not be reached or
//!   is unavailable (stopping), or the connection was lost before it
//!   answered (whether the change was made shows once it runs); try again;
//! - 3: `audit verify` found the audit chain broken;
//! - 4: the node failed to carry out the request: a bug or a damaged
//!   database, not a refusal; the message names the node's log line.
//!
//! The verbs live in [`cmd`], one module per noun; this file parses the
//! command line, connects, and turns the outcome into the exit code.

mod cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use cmd::Failure;
use liaisonctl::output::Output;

#[derive(Debug, Parser)]
#[command(
    name = "liaisonctl",
    version,
    about = "Manage a Liaison node: peers, agreements, records, transfers, audit"
)]
struct Cli {
    /// The node's admin socket.
    #[arg(long, short, global = true, env = "LIAISON_SOCKET")]
    socket: Option<PathBuf>,
    /// The node's config file, to find its admin socket (default: ./node.toml).
    #[arg(long, short, global = true, env = "LIAISON_CONFIG")]
    config: Option<PathBuf>,
    /// Output format of listings: aligned tables, or JSON Lines; reports
    /// also CSV.
    #[arg(long, short, global = true, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Wait up to SECONDS for the node to answer (just started) and for the
    /// records a command names to arrive from peers (a proposal, an offer,
    /// a member shared), instead of failing at once: for scripts.
    #[arg(long, global = true, value_name = "SECONDS")]
    wait: Option<u64>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The federation CA: create it, issue node certificates (local files only).
    Ca(liaisonctl::ca::CaArgs),
    /// Write a commented example node.toml.
    Init(cmd::init::InitArgs),
    /// Run a real three-node federation on this machine and walk through the job.
    Demo(cmd::demo::DemoArgs),
    /// What waits on this node's operators (待办), most urgent first, with the command for each.
    Todo,
    /// The node's id, version, uptime, database and peers.
    Status,
    /// Peers: other regions' nodes this node trusts and syncs with.
    #[command(subcommand)]
    Peer(cmd::peer::PeerCommand),
    /// Organizations of this node: branches, committees (党组织).
    #[command(subcommand)]
    Org(cmd::org::OrgCommand),
    /// Members (党员): the registry, import and export, disclosures.
    #[command(subcommand)]
    Member(cmd::member::MemberCommand),
    /// Departures of members to other regions (流出登记).
    #[command(subcommand)]
    Outflow(cmd::outflow::OutflowCommand),
    /// Contact with members and their contact status (联系, 失联).
    #[command(subcommand)]
    Contact(cmd::contact::ContactCommand),
    /// Activities members took part in (三会一课, 主题党日, ...).
    #[command(subcommand)]
    Activity(cmd::activity::ActivityCommand),
    /// Co-management agreements with peers (双向共管协议): propose, counter, accept.
    #[command(subcommand)]
    Agreement(cmd::agreement::AgreementCommand),
    /// Transfers of members' organizational relationship (组织关系转接): letters, votes, receipts.
    #[command(subcommand)]
    Transfer(cmd::transfer::TransferCommand),
    /// Service stations (服务站) where members report in, and their QR codes.
    #[command(subcommand)]
    Station(cmd::station::StationCommand),
    /// Report-in claims (报到) members submitted at this node's stations: list, confirm, reject.
    #[command(subcommand)]
    Reportin(cmd::reportin::ReportinCommand),
    /// Reports and statistics (统计): outflow, inflow, contact registers, transfers, activity, trend, …
    #[command(subcommand)]
    Report(cmd::report::ReportCommand),
    /// Tools for test deployments (the node's clock).
    #[command(subcommand, hide = true)]
    Debug(cmd::debug::DebugCommand),
    /// Events from peers that could not be applied, held for review.
    #[command(subcommand)]
    Quarantine(cmd::quarantine::QuarantineCommand),
    /// The append-only, hash-chained audit log.
    #[command(subcommand)]
    Audit(cmd::audit::AuditCommand),
    /// A consistent online copy of the node's database (audited).
    Backup(cmd::reconcile::BackupArgs),
    /// After a restore: reconciliation with every peer (`status`, `--without-peer P`).
    Reconcile(cmd::reconcile::ReconcileArgs),
    /// Read node.toml's [tls] section and the certificate, key, CA and revocation list it names again, without a restart (as SIGHUP does); close connections of peers the new list revokes.
    Reload,
    /// Print a shell completion script: `liaisonctl completion bash > /etc/bash_completion.d/liaisonctl`.
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (liaisonctl.1 and one per verb) into a directory.
    Man {
        /// The directory for the pages (created if missing), e.g. /usr/local/share/man/man1.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ca(args) => liaisonctl::ca::run(args).map_err(Failure::Other),
        Command::Init(args) => cmd::init::run(args).map_err(Failure::Other),
        Command::Demo(args) => cmd::demo::run(args).map_err(Failure::Other),
        Command::Completion { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "liaisonctl", &mut script);
            liaisonctl::output::write_out(&script);
            Ok(())
        }
        Command::Man { out } => man_pages(&out).map_err(Failure::Other),
        command => match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(remote(
                cli.socket,
                cli.config,
                cli.output,
                cli.wait.map(std::time::Duration::from_secs),
                command,
            )),
            Err(e) => Err(Failure::Other(e.into())),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Refused(message)) => {
            eprintln!("liaisonctl: {message}");
            ExitCode::from(1)
        }
        Err(Failure::Other(error)) => {
            eprintln!("liaisonctl: {error:#}");
            ExitCode::from(2)
        }
        Err(Failure::AuditBroken) => ExitCode::from(3),
        Err(Failure::Internal(message)) => {
            eprintln!("liaisonctl: the node failed: {message}");
            eprintln!(
                "liaisonctl: this is a bug (or a damaged database), not a refusal of the request; report it with that log line"
            );
            ExitCode::from(4)
        }
    }
}

async fn remote(
    socket: Option<PathBuf>,
    config: Option<PathBuf>,
    output: Output,
    wait: Option<std::time::Duration>,
    command: Command,
) -> Result<(), Failure> {
    // Reports print CSV too; every other command a table or JSON Lines.
    let format = match (&command, output.listing()) {
        (Command::Report(_), Err(_)) => liaisonctl::output::Format::Table,
        (_, Ok(format)) => format,
        (_, Err(message)) => return Err(Failure::Other(anyhow::anyhow!(message))),
    };
    let socket = liaisonctl::client::socket_path(socket.as_deref(), config.as_deref())?;
    let mut admin = match wait {
        Some(wait) => {
            cmd::refs::wait_for_records(wait);
            liaisonctl::client::connect_within(&socket, wait).await?
        }
        None => liaisonctl::client::connect(&socket).await?,
    };
    // Times are shown in the node's zone: it says which.
    if let Ok(status) = admin.status(liaison_proto::v1::StatusRequest {}).await {
        if let Ok(zone) = liaison_types::time::zone(&status.into_inner().time_zone) {
            liaisonctl::output::set_zone(zone);
        }
    }
    let admin = &mut admin;
    match command {
        Command::Status => cmd::status::run(admin, format).await,
        Command::Reload => cmd::status::reload(admin, format).await,
        Command::Todo => cmd::todo::run(admin, format).await,
        Command::Peer(command) => cmd::peer::run(admin, format, command).await,
        Command::Org(command) => cmd::org::run(admin, format, command).await,
        Command::Member(command) => cmd::member::run(admin, format, command).await,
        Command::Outflow(command) => cmd::outflow::run(admin, format, command).await,
        Command::Contact(command) => cmd::contact::run(admin, format, command).await,
        Command::Activity(command) => cmd::activity::run(admin, format, command).await,
        Command::Agreement(command) => cmd::agreement::run(admin, format, command).await,
        Command::Transfer(command) => cmd::transfer::run(admin, format, command).await,
        Command::Report(command) => cmd::report::run(admin, output, command).await,
        Command::Station(command) => cmd::station::run(admin, format, command).await,
        Command::Reportin(command) => cmd::reportin::run(admin, format, command).await,
        Command::Debug(command) => cmd::debug::run(admin, format, command).await,
        Command::Quarantine(command) => cmd::quarantine::run(admin, format, command).await,
        Command::Audit(command) => cmd::audit::run(admin, format, command).await,
        Command::Backup(args) => cmd::reconcile::backup(admin, format, args).await,
        Command::Reconcile(args) => cmd::reconcile::run(admin, format, args).await,
        Command::Ca(_)
        | Command::Init(_)
        | Command::Demo(_)
        | Command::Completion { .. }
        | Command::Man { .. } => unreachable!("handled locally"),
    }
}

/// Writes `liaisonctl.1` and a page per verb (`liaisonctl-member-add.1`, ...).
fn man_pages(out: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    clap_mangen::generate_to(Cli::command(), out)
        .with_context(|| format!("cannot write the manual pages into {}", out.display()))?;
    liaisonctl::outln!(
        "wrote the manual pages into {} (read one with `man -l {}/liaisonctl.1`)",
        out.display(),
        out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}

//! `liaisonctl ca`: create a federation root CA and issue node certificates.
//!
//! These verbs work on local files only and never talk to a node (ARCHITECTURE.md):
//! the CA key normally lives on the provincial department's offline machine,
//! and the issued `.crt`/`.key` pair is then carried to the node. The work is
//! done by [`liaison_types::identity`]; this module parses the arguments and
//! prints what was written, including the fingerprint peers may pin.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use liaison_types::identity::{self, NodeId, WrittenFiles};

/// Arguments of `liaisonctl ca`.
#[derive(Debug, clap::Args)]
pub struct CaArgs {
    #[command(subcommand)]
    pub command: CaCommand,
}

/// The `liaisonctl ca` verbs.
#[derive(Debug, clap::Subcommand)]
pub enum CaCommand {
    /// Create a federation root CA
    Init {
        /// Federation name, e.g. `gansu`: a lowercase letter, then lowercase letters, digits or '-'
        #[arg(long)]
        federation: String,
        /// Directory to write ca.crt and ca.key into (created with mode 0700 if missing)
        #[arg(long)]
        out: PathBuf,
        /// Validity of the CA certificate, in days
        #[arg(long, default_value_t = 3650)]
        days: u32,
        /// Overwrite existing ca.crt and ca.key
        #[arg(long)]
        force: bool,
    },
    /// Issue a node certificate signed by the federation CA
    Issue {
        /// The node id, e.g. `lanzhou`
        node_id: String,
        /// Directory holding the federation's ca.crt and ca.key
        #[arg(long)]
        ca: PathBuf,
        /// DNS name peers use to reach this node (repeatable)
        #[arg(long)]
        dns: Vec<String>,
        /// IP address peers use to reach this node (repeatable)
        #[arg(long)]
        ip: Vec<IpAddr>,
        /// Directory to write <node-id>.crt and <node-id>.key into (created with mode 0700 if missing)
        #[arg(long)]
        out: PathBuf,
        /// Validity of the node certificate, in days
        #[arg(long, default_value_t = 825)]
        days: u32,
        /// Overwrite existing <node-id>.crt and <node-id>.key
        #[arg(long)]
        force: bool,
    },
    /// Revoke a node certificate: add it to the CA's revocation list and
    /// write the list anew (ca.crl in the CA directory)
    Revoke {
        /// The certificate file to revoke (<node-id>.crt)
        cert: PathBuf,
        /// Directory holding the federation's ca.crt and ca.key
        #[arg(long)]
        ca: PathBuf,
    },
    /// Sign the CA's revocation list again (renew it before it expires)
    Crl {
        /// Directory holding the federation's ca.crt and ca.key
        #[arg(long)]
        ca: PathBuf,
        /// Where to write it; default: ca.crl in the CA directory
        #[arg(long)]
        out: Option<PathBuf>,
        /// Validity of the list, in days
        #[arg(long, default_value_t = identity::CRL_DAYS_DEFAULT)]
        days: u32,
    },
}

/// Runs a `liaisonctl ca` verb and prints what it wrote to stdout.
pub fn run(args: CaArgs) -> anyhow::Result<()> {
    match args.command {
        CaCommand::Init {
            federation,
            out,
            days,
            force,
        } => {
            let files = identity::ca_init(&federation, &out, days, force)?;
            let fp = fingerprint_of(&files)?;
            crate::outln!("created the root CA of federation `{federation}` (spiffe://{federation}), valid {days} days");
            crate::outln!("  certificate: {}", files.cert_path.display());
            crate::outln!(
                "  private key: {} (mode 0600; keep it offline, it can issue any node's identity)",
                files.key_path.display()
            );
            crate::outln!("  fingerprint: {fp}");
            crate::outln!(
                "next: liaisonctl ca issue <node-id> --ca {} --dns <host> --out <dir>",
                out.display()
            );
        }
        CaCommand::Issue {
            node_id,
            ca,
            dns,
            ip,
            out,
            days,
            force,
        } => {
            let node_id = NodeId::parse(&node_id)?;
            let files = identity::ca_issue(&ca, &node_id, &dns, &ip, days, &out, force)?;
            let ca_cert = ca.join(identity::CA_CERT_FILE);
            let ca_der = identity::read_certs(&ca_cert)?
                .into_iter()
                .next()
                .with_context(|| format!("{} holds no certificate", ca_cert.display()))?;
            let federation = identity::federation_of_ca(&ca_der)?;
            let fp = fingerprint_of(&files)?;
            crate::outln!("issued a certificate for node `{node_id}`, valid {days} days");
            crate::outln!(
                "  node URI:    {}",
                identity::node_uri(&federation, &node_id)
            );
            let mut endpoints: Vec<String> = dns.clone();
            endpoints.extend(ip.iter().map(ToString::to_string));
            if !endpoints.is_empty() {
                crate::outln!("  endpoints:   {}", endpoints.join(", "));
            }
            crate::outln!("  certificate: {}", files.cert_path.display());
            crate::outln!("  private key: {} (mode 0600)", files.key_path.display());
            crate::outln!("  fingerprint: {fp}");
            crate::outln!(
                "copy both files and {} to the node; peers may pin this fingerprint when they add it",
                ca_cert.display()
            );
        }
        CaCommand::Revoke { cert, ca } => {
            let (revoked, crl) = identity::ca_revoke(&ca, &cert)?;
            crate::outln!(
                "revoked the certificate of node `{}` (serial {})",
                revoked.node_id,
                revoked.serial_hex
            );
            crate::outln!(
                "  revocation list: {} (valid {} days)",
                crl.display(),
                identity::CRL_DAYS_DEFAULT
            );
            crate::outln!("next: copy it to every node as its tls.crl, then `liaisonctl reload` there (or send the node SIGHUP)");
        }
        CaCommand::Crl { ca, out, days } => {
            let out = out.unwrap_or_else(|| ca.join(identity::CRL_FILE));
            let crl = identity::ca_crl(&ca, &out, days)?;
            let n = identity::revoked_list(&ca)?.len();
            crate::outln!(
                "wrote the revocation list {} ({n} revoked, valid {days} days)",
                crl.display()
            );
            crate::outln!(
                "next: copy it to every node as its tls.crl, then `liaisonctl reload` there"
            );
        }
    }
    Ok(())
}

/// The fingerprint of the certificate just written, read back from its file so
/// that what we print is what is on disk.
fn fingerprint_of(files: &WrittenFiles) -> anyhow::Result<String> {
    let certs = identity::read_certs(&files.cert_path)?;
    let leaf = certs
        .first()
        .with_context(|| format!("{} holds no certificate", files.cert_path.display()))?;
    Ok(identity::fingerprint(leaf))
}

//! Identity and trust (docs/authority.md): node ids, the federation CA, node
//! certificates, and signing with a node's key.
//!
//! A federation has one root CA. Its certificate carries the federation name as
//! a URI SAN `spiffe://<federation>`; every node certificate it issues carries
//! `spiffe://<federation>/node/<node-id>` plus DNS/IP SANs for the endpoint.
//! The identity of a peer is what its certificate says: [`node_id_of_cert`]
//! reads it from a certificate rustls has already verified against the CA.
//!
//! Everything is plain synchronous code: the CA verbs run in `liaisonctl`, and
//! the node calls [`load_tls`] once at start (and again on reload); the
//! rustls configurations built from the material are the node's (`tls`).
//! All cryptography goes through *ring* (through rcgen and webpki).

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use rcgen::SigningKey;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

/// File name of the federation CA certificate inside a CA directory.
pub const CA_CERT_FILE: &str = "ca.crt";
/// File name of the federation CA private key inside a CA directory.
pub const CA_KEY_FILE: &str = "ca.key";

/// Longest validity accepted for `--days` (100 years). Larger values would
/// overflow the X.509 time encoding, and no real deployment needs them.
const MAX_DAYS: u32 = 36_500;
/// New certificates are valid from a little before "now", so a peer whose
/// clock lags ours by a few minutes does not reject a freshly issued one.
const BACKDATE: Duration = Duration::from_secs(10 * 60);

/// Everything that can go wrong with identities, certificates and keys.
///
/// Each message is one line that names the file or value at fault and says
/// what to do about it, because operators read these in `liaisonctl` output and
/// node logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A node id does not follow the slug rule.
    #[error("invalid node id `{value}`: {reason}; a node id is 2 to 63 characters: a lowercase letter, then lowercase letters, digits or '-' (e.g. `pingliang`)")]
    InvalidNodeId { value: String, reason: String },
    /// A federation name does not follow the slug rule.
    #[error("invalid federation name `{value}`: {reason}; a federation name is 2 to 63 characters: a lowercase letter, then lowercase letters, digits or '-' (e.g. `gansu`)")]
    InvalidFederationName { value: String, reason: String },
    /// A validity period out of range.
    #[error("invalid validity of {days} days: pass --days between 1 and {max}")]
    InvalidDays { days: u32, max: u32 },
    /// A fingerprint given by an operator is malformed.
    #[error("invalid fingerprint `{value}`: {reason}; expected `sha256:` followed by 64 hex digits (colons between bytes allowed), as printed by `liaisonctl ca issue`")]
    InvalidFingerprint { value: String, reason: String },
    /// A DNS name for a certificate is not a valid host name.
    #[error("invalid DNS name `{value}`: pass a host name such as `liaison.lanzhou.example` (use --ip for IP addresses)")]
    InvalidDnsName { value: String },
    /// A file we were asked to create already exists.
    #[error("{} already exists: pass --force to overwrite", path.display())]
    Exists { path: PathBuf },
    /// A file could not be read. (The OS error is part of the message and
    /// deliberately not a `source()`, so error-chain printers such as anyhow's
    /// do not repeat it; the same holds for `Write` and `CreateDir`.)
    #[error("cannot read {}: {error}; check the path and its permissions", path.display())]
    Read { path: PathBuf, error: io::Error },
    /// A file could not be written.
    #[error("cannot write {}: {error}; check that the directory exists and is writable", path.display())]
    Write { path: PathBuf, error: io::Error },
    /// A directory could not be created.
    #[error("cannot create directory {}: {error}; check the parent directory's permissions", path.display())]
    CreateDir { path: PathBuf, error: io::Error },
    /// A file is not valid PEM.
    #[error("{} is not a valid PEM file: {detail}; pass the .crt/.key file written by `liaisonctl ca`", path.display())]
    BadPem { path: PathBuf, detail: String },
    /// A PEM file holds no certificate.
    #[error("{} contains no certificate (no `-----BEGIN CERTIFICATE-----` block): pass a .crt file", path.display())]
    NoCertificate { path: PathBuf },
    /// A PEM file holds no private key.
    #[error("{} contains no private key (no PEM block labelled PRIVATE KEY): pass the .key file issued with the certificate", path.display())]
    NoPrivateKey { path: PathBuf },
    /// A private key could not be used.
    #[error("private key {} cannot be used: {detail}; expected a PKCS#8 ECDSA P-256 key as written by `liaisonctl ca`", path.display())]
    BadKey { path: PathBuf, detail: String },
    /// A certificate's DER could not be parsed.
    #[error("cannot parse {what}: {detail}; pass an X.509 certificate written by `liaisonctl ca`")]
    BadCertificate { what: String, detail: String },
    /// The certificate given as CA is not a CA.
    #[error("{what} is not a CA certificate: pass the federation's ca.crt (created by `liaisonctl ca init`)")]
    NotCa { what: String },
    /// The CA certificate does not carry a federation name.
    #[error("{what} carries no federation name: {detail}; a Liaison CA has exactly one URI SAN `spiffe://<federation>` (create one with `liaisonctl ca init`)")]
    NoFederation { what: String, detail: String },
    /// The CA key does not belong to the CA certificate.
    #[error("CA key {} does not belong to CA certificate {}: keep ca.crt and ca.key from the same `liaisonctl ca init` together", key_path.display(), cert_path.display())]
    CaKeyMismatch {
        cert_path: PathBuf,
        key_path: PathBuf,
    },
    /// The node key does not belong to the node certificate.
    #[error("private key {} does not belong to certificate {}: use the .key file issued together with this certificate", key_path.display(), cert_path.display())]
    KeyMismatch {
        cert_path: PathBuf,
        key_path: PathBuf,
    },
    /// A certificate does not chain to the federation CA.
    #[error("certificate {} is not issued by the federation CA {} ({detail}): issue one with `liaisonctl ca issue` using this federation's CA", path.display(), ca_path.display())]
    Untrusted {
        path: PathBuf,
        ca_path: PathBuf,
        detail: String,
    },
    /// A certificate has expired.
    #[error("certificate {} expired at {not_after}: issue a new one with `liaisonctl ca issue`", path.display())]
    Expired { path: PathBuf, not_after: String },
    /// A certificate is not valid yet.
    #[error("certificate {} is not valid before {not_before}: check this machine's clock", path.display())]
    NotYetValid { path: PathBuf, not_before: String },
    /// A certificate is not fit for both ends of mutual TLS.
    #[error("certificate {} is not valid for TLS {usage} authentication (extended key usage): issue node certificates with `liaisonctl ca issue`", path.display())]
    WrongUsage { path: PathBuf, usage: &'static str },
    /// Our own certificate names another node than the configured one.
    #[error("certificate {} names node `{got}` but node_id in the config is `{expected}`: issue a certificate for {expected} with `liaisonctl ca issue {expected}`", path.display())]
    WrongNode {
        path: PathBuf,
        got: NodeId,
        expected: NodeId,
    },
    /// A certificate names no node of the federation.
    #[error("{what} has no URI SAN `spiffe://{federation}/node/<node-id>`: issue node certificates with `liaisonctl ca issue`")]
    NoNodeUri { what: String, federation: String },
    /// A certificate names several nodes.
    #[error("{what} names several nodes ({uris}): a node certificate must carry exactly one spiffe:// URI SAN")]
    SeveralNodeUris { what: String, uris: String },
    /// A certificate's node URI is malformed.
    #[error(
        "{what} has a malformed node URI `{uri}`: expected `spiffe://{federation}/node/<node-id>`"
    )]
    BadNodeUri {
        what: String,
        uri: String,
        federation: String,
    },
    /// A certificate belongs to another federation.
    #[error("{what} belongs to federation `{got}`, not `{expected}`: use a certificate issued by this federation's CA")]
    WrongFederation {
        what: String,
        got: String,
        expected: String,
    },
    /// rcgen refused to build a key or certificate.
    #[error("cannot generate {what}: {detail}")]
    Generate { what: String, detail: String },
    /// A revocation list that cannot be used.
    #[error("revocation list {}: {detail}; have the federation CA sign a new one (`liaisonctl ca crl`), copy it in place and reload", path.display())]
    BadCrl { path: PathBuf, detail: String },
    /// rustls refused the material when building a TLS configuration.
    #[error("cannot build the TLS configuration for node `{node}`: {detail}; check its certificate, key and CA files")]
    Tls { node: String, detail: String },
}

// ---------------------------------------------------------------------------
// Node ids and federation names
// ---------------------------------------------------------------------------

/// A node id: `[a-z][a-z0-9-]{1,62}` (so 2..=63 chars). Also used for federation names.
///
/// The rule keeps ids safe everywhere they travel: in URIs, file names
/// (`<node-id>.crt`), DNS-like labels and log lines.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct NodeId(String);

impl NodeId {
    /// Checks `s` against the slug rule and wraps it.
    pub fn parse(s: &str) -> Result<NodeId, IdentityError> {
        match slug_problem(s) {
            None => Ok(NodeId(s.to_owned())),
            Some(reason) => Err(IdentityError::InvalidNodeId {
                value: s.to_owned(),
                reason,
            }),
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for NodeId {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NodeId::parse(s)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for NodeId {
    type Error = IdentityError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        match slug_problem(&s) {
            None => Ok(NodeId(s)),
            Some(reason) => Err(IdentityError::InvalidNodeId { value: s, reason }),
        }
    }
}

impl From<NodeId> for String {
    fn from(id: NodeId) -> String {
        id.0
    }
}

/// Checks a federation name: the same slug rule as node ids, because it is
/// the authority part of every node URI.
pub fn validate_federation_name(s: &str) -> Result<(), IdentityError> {
    match slug_problem(s) {
        None => Ok(()),
        Some(reason) => Err(IdentityError::InvalidFederationName {
            value: s.to_owned(),
            reason,
        }),
    }
}

/// What is wrong with `s` as a slug, or `None` if it is fine.
fn slug_problem(s: &str) -> Option<String> {
    let mut chars = s.chars();
    let first = match chars.next() {
        None => return Some("it is empty".into()),
        Some(c) => c,
    };
    if !first.is_ascii_lowercase() {
        return Some(format!("it starts with {first:?}, not a lowercase letter"));
    }
    if let Some((i, c)) = s
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
    {
        return Some(format!(
            "character {c:?} at position {} is not allowed",
            i + 1
        ));
    }
    match s.len() {
        0..=1 => Some("it is too short".into()),
        2..=63 => None,
        n => Some(format!("it is {n} characters long")),
    }
}

/// The URI SAN that names a node: `spiffe://{federation}/node/{node_id}`.
pub fn node_uri(federation: &str, node_id: &NodeId) -> String {
    format!("spiffe://{federation}/node/{node_id}")
}

// ---------------------------------------------------------------------------
// The CA verbs
// ---------------------------------------------------------------------------

/// The two files written by [`ca_init`] or [`ca_issue`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenFiles {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

/// Creates a self-signed federation root CA in out_dir (created if missing, mode 0700 when created): ca.crt and ca.key.
///
/// The CA cert has CN "Liaison federation <name> CA", is_ca (path length 0:
/// it signs node certificates only, never intermediates), key usages cert sign
/// and CRL sign, and a URI SAN "spiffe://<federation>" that carries the
/// federation name, so nodes learn their federation from the CA they trust.
/// Refuses ([`IdentityError::Exists`]) if either file exists and `!force`.
/// Validity is `days` (1..=36500).
pub fn ca_init(
    federation: &str,
    out_dir: &Path,
    days: u32,
    force: bool,
) -> Result<WrittenFiles, IdentityError> {
    validate_federation_name(federation)?;
    check_days(days)?;
    let cert_path = out_dir.join(CA_CERT_FILE);
    let key_path = out_dir.join(CA_KEY_FILE);
    refuse_existing(&[&cert_path, &key_path], force)?;

    let gen_err = |detail: rcgen::Error| IdentityError::Generate {
        what: format!("the CA certificate for federation `{federation}`"),
        detail: detail.to_string(),
    };
    let key = KeyPair::generate().map_err(gen_err)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        format!("Liaison federation {federation} CA"),
    );
    params.distinguished_name.push(
        DnType::OrganizationName,
        format!("Liaison federation {federation}"),
    );
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.subject_alt_names = vec![SanType::URI(
        format!("spiffe://{federation}")
            .try_into()
            .map_err(gen_err)?,
    )];
    set_validity(&mut params, days);
    let cert = params.self_signed(&key).map_err(gen_err)?;

    create_dir(out_dir)?;
    write_pair(
        &cert_path,
        cert.pem().as_bytes(),
        &key_path,
        key.serialize_pem().as_bytes(),
        force,
    )?;
    Ok(WrittenFiles {
        cert_path,
        key_path,
    })
}

/// Issues a node certificate signed by the CA in ca_dir (ca.crt + ca.key): files <node_id>.crt and <node_id>.key in out_dir.
///
/// SANs: URI spiffe://<federation>/node/<node_id> (federation read from the CA
/// cert), plus the given DNS names and IPs; CN = node id; EKU serverAuth +
/// clientAuth (every node is both a server and a client of its peers); not a
/// CA; validity `days`. Same `--force` rule as [`ca_init`]. The key is a fresh
/// ECDSA P-256 PKCS#8 PEM, written with mode 0600 from the moment the file is
/// created. `out_dir` is created (mode 0700) if missing.
pub fn ca_issue(
    ca_dir: &Path,
    node_id: &NodeId,
    dns: &[String],
    ips: &[IpAddr],
    days: u32,
    out_dir: &Path,
    force: bool,
) -> Result<WrittenFiles, IdentityError> {
    check_days(days)?;
    let cert_path = out_dir.join(format!("{node_id}.crt"));
    let key_path = out_dir.join(format!("{node_id}.key"));
    refuse_existing(&[&cert_path, &key_path], force)?;

    // The CA: its certificate tells the federation, its key signs.
    let (ca_cert, ca_key, federation) = load_ca(ca_dir)?;
    let gen_err = |detail: rcgen::Error| IdentityError::Generate {
        what: format!("a certificate for node `{node_id}`"),
        detail: detail.to_string(),
    };
    let issuer = Issuer::from_ca_cert_der(&ca_cert, ca_key).map_err(gen_err)?;

    let key = KeyPair::generate().map_err(gen_err)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, node_id.as_str());
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let mut sans = vec![SanType::URI(
        node_uri(&federation, node_id).try_into().map_err(gen_err)?,
    )];
    for name in dns {
        // rcgen only checks for ASCII; a name that is not a valid host name
        // would give a certificate no client can match, so refuse it here.
        let invalid = || IdentityError::InvalidDnsName {
            value: name.clone(),
        };
        rustls_pki_types::DnsName::try_from(name.as_str()).map_err(|_| invalid())?;
        let ia5 = name.clone().try_into().map_err(|_| invalid())?;
        sans.push(SanType::DnsName(ia5));
    }
    sans.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.subject_alt_names = sans;
    set_validity(&mut params, days);
    let cert = params.signed_by(&key, &issuer).map_err(gen_err)?;

    create_dir(out_dir)?;
    write_pair(
        &cert_path,
        cert.pem().as_bytes(),
        &key_path,
        key.serialize_pem().as_bytes(),
        force,
    )?;
    Ok(WrittenFiles {
        cert_path,
        key_path,
    })
}

/// The CA in `ca_dir`: its certificate, its key (checked to match) and
/// the federation its certificate names.
fn load_ca(ca_dir: &Path) -> Result<(CertificateDer<'static>, KeyPair, String), IdentityError> {
    let ca_cert_path = ca_dir.join(CA_CERT_FILE);
    let ca_key_path = ca_dir.join(CA_KEY_FILE);
    let ca_cert = read_certs(&ca_cert_path)?
        .into_iter()
        .next()
        .ok_or_else(|| IdentityError::NoCertificate {
            path: ca_cert_path.clone(),
        })?;
    let ca_what = format!("CA certificate {}", ca_cert_path.display());
    let federation = federation_of_ca_named(&ca_cert, &ca_what)?;
    let ca_key_pem = read_file(&ca_key_path)?;
    let ca_key_pem = String::from_utf8(ca_key_pem).map_err(|_| IdentityError::BadPem {
        path: ca_key_path.clone(),
        detail: "it is not text".into(),
    })?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(|e| IdentityError::BadKey {
        path: ca_key_path.clone(),
        detail: e.to_string(),
    })?;
    let ca_spki = with_cert(&ca_cert, &ca_what, |c| Ok(c.public_key().raw.to_vec()))?;
    if ca_key.subject_public_key_info() != ca_spki {
        return Err(IdentityError::CaKeyMismatch {
            cert_path: ca_cert_path,
            key_path: ca_key_path,
        });
    }
    Ok((ca_cert, ca_key, federation))
}

/// The list of revoked certificates a CA directory keeps (`ca revoke`
/// appends to it), one per line: serial (hex), node id, revoked at (Unix
/// seconds). `ca crl` signs a revocation list from it.
pub const REVOKED_FILE: &str = "revoked.tsv";
/// The revocation list `ca revoke` and `ca crl` write in the CA directory,
/// for the nodes' `tls.crl`.
pub const CRL_FILE: &str = "ca.crl";
/// How long a revocation list is valid when none is named: nodes keep
/// using an older one, but monitoring should see it renewed.
pub const CRL_DAYS_DEFAULT: u32 = 30;

/// A certificate on a CA's revocation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    pub serial_hex: String,
    pub node_id: String,
    pub revoked_at_s: i64,
}

/// Reads the CA directory's list of revoked certificates (empty if none).
pub fn revoked_list(ca_dir: &Path) -> Result<Vec<Revoked>, IdentityError> {
    let path = ca_dir.join(REVOKED_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(IdentityError::Read { path, error }),
    };
    let mut list = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let parsed = match fields.as_slice() {
            [serial, node, at] if hex::decode(serial).is_ok() => {
                at.parse::<i64>().ok().map(|at| Revoked {
                    serial_hex: serial.to_string(),
                    node_id: node.to_string(),
                    revoked_at_s: at,
                })
            }
            _ => None,
        };
        let entry = parsed.ok_or_else(|| IdentityError::BadPem {
            path: path.clone(),
            detail: format!("line {} is not `SERIAL<TAB>NODE<TAB>UNIX_SECONDS`", i + 1),
        })?;
        list.push(entry);
    }
    Ok(list)
}

/// Puts the certificate in `cert_path` (issued by the CA in `ca_dir`) on
/// the CA's revocation list and writes the list anew ([`ca_crl`], into
/// `ca_dir`/[`CRL_FILE`]). Revoking a certificate twice changes nothing.
/// Returns the entry and the list's path.
pub fn ca_revoke(ca_dir: &Path, cert_path: &Path) -> Result<(Revoked, PathBuf), IdentityError> {
    let (ca_cert, _, federation) = load_ca(ca_dir)?;
    let leaf = read_certs(cert_path)?.remove(0);
    let what = format!("certificate {}", cert_path.display());
    verify_chain(
        &leaf,
        &[],
        std::slice::from_ref(&ca_cert),
        cert_path,
        &ca_dir.join(CA_CERT_FILE),
    )
    .or_else(|e| match e {
        // An expired certificate may still be revoked.
        IdentityError::Expired { .. } => Ok(()),
        e => Err(e),
    })?;
    let node_id = node_id_of_cert_named(&leaf, &federation, &what)?;
    let serial_hex = with_cert(&leaf, &what, |c| Ok(hex::encode(c.raw_serial())))?;
    let mut list = revoked_list(ca_dir)?;
    let entry = match list.iter().find(|r| r.serial_hex == serial_hex) {
        Some(existing) => existing.clone(),
        None => {
            let entry = Revoked {
                serial_hex,
                node_id: node_id.to_string(),
                revoked_at_s: SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0),
            };
            list.push(entry.clone());
            let mut text = String::from(
                "# serial\tnode\trevoked_at (Unix seconds); written by `liaisonctl ca revoke`\n",
            );
            for r in &list {
                text.push_str(&format!(
                    "{}\t{}\t{}\n",
                    r.serial_hex, r.node_id, r.revoked_at_s
                ));
            }
            let path = ca_dir.join(REVOKED_FILE);
            fs::write(&path, text).map_err(|source| IdentityError::Write {
                path,
                error: source,
            })?;
            entry
        }
    };
    let crl = ca_crl(ca_dir, &ca_dir.join(CRL_FILE), CRL_DAYS_DEFAULT)?;
    Ok((entry, crl))
}

/// Signs the CA's revocation list ([`REVOKED_FILE`]) as a CRL valid for
/// `days` and writes it to `out` (PEM), replacing the file whole. Its
/// number is the time of signing, so a newer list has a higher one.
pub fn ca_crl(ca_dir: &Path, out: &Path, days: u32) -> Result<PathBuf, IdentityError> {
    sign_crl(ca_dir, out, SystemTime::now(), days)
}

/// [`ca_crl`] as signed at `now`.
fn sign_crl(
    ca_dir: &Path,
    out: &Path,
    now: SystemTime,
    days: u32,
) -> Result<PathBuf, IdentityError> {
    check_days(days)?;
    let (ca_cert, ca_key, _) = load_ca(ca_dir)?;
    let list = revoked_list(ca_dir)?;
    let gen_err = |detail: rcgen::Error| IdentityError::Generate {
        what: "the certificate revocation list".into(),
        detail: detail.to_string(),
    };
    let issuer = Issuer::from_ca_cert_der(&ca_cert, ca_key).map_err(gen_err)?;
    let at = |s: i64| SystemTime::UNIX_EPOCH + Duration::from_secs(s.max(0) as u64);
    let params = rcgen::CertificateRevocationListParams {
        this_update: now.into(),
        next_update: (now + Duration::from_secs(u64::from(days) * 86_400)).into(),
        crl_number: rcgen::SerialNumber::from(
            now.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(1),
        ),
        issuing_distribution_point: None,
        revoked_certs: list
            .iter()
            .map(|r| rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from_slice(
                    &hex::decode(&r.serial_hex).unwrap_or_default(),
                ),
                revocation_time: at(r.revoked_at_s).into(),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    };
    let crl = params.signed_by(&issuer).map_err(gen_err)?;
    let pem = crl.pem().map_err(gen_err)?;
    let tmp = out.with_extension("crl.tmp");
    fs::write(&tmp, pem.as_bytes()).map_err(|error| IdentityError::Write {
        path: tmp.clone(),
        error,
    })?;
    fs::rename(&tmp, out).map_err(|error| IdentityError::Write {
        path: out.to_path_buf(),
        error,
    })?;
    Ok(out.to_path_buf())
}

/// A node's revocation lists (`tls.crl`), as loaded and checked by
/// [`load_crls`].
#[derive(Debug, Clone)]
pub struct RevocationLists {
    pub lists: Vec<CertificateRevocationListDer<'static>>,
    /// Unix seconds: the earliest `nextUpdate` among the lists, by which
    /// the CA promised a newer one (`None`: no list names one).
    pub next_update: Option<i64>,
    /// Certificates the lists revoke, all lists together.
    pub revoked: usize,
}

/// Reads a certificate revocation list file, PEM (one or more `X509 CRL`
/// blocks) or DER, and checks each list: it parses, one of `ca_certs` (the
/// node's CA bundle) signed it.
/// A list that fails a check is refused whole: a list of another CA revokes
/// nothing of ours and would fail every handshake. A list past its
/// `nextUpdate` is loaded and enforced all the same: it is the newest this
/// node has, refusing it would stop the node (at start) or keep an older
/// one (at reload), and either readmits no one it revokes; `status`,
/// `todo` and the metrics say it is stale ([`RevocationLists::next_update`]).
pub fn load_crls(
    path: &Path,
    ca_certs: &[CertificateDer<'static>],
) -> Result<RevocationLists, IdentityError> {
    let bytes = read_file(path)?;
    let bad = |detail: String| IdentityError::BadCrl {
        path: path.to_path_buf(),
        detail,
    };
    let lists = if bytes.starts_with(b"-----BEGIN") {
        CertificateRevocationListDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("not a valid PEM file ({e})")))?
    } else {
        vec![CertificateRevocationListDer::from(bytes)]
    };
    if lists.is_empty() {
        return Err(bad("no `-----BEGIN X509 CRL-----` block".into()));
    }
    let mut checked = RevocationLists {
        lists: Vec::new(),
        next_update: None,
        revoked: 0,
    };
    for (i, der) in lists.into_iter().enumerate() {
        let which = |detail: String| {
            if i == 0 {
                bad(detail)
            } else {
                bad(format!("list #{}: {detail}", i + 1))
            }
        };
        // What rustls will read from it, so a list it cannot use is
        // refused here and not at the first handshake.
        webpki::OwnedCertRevocationList::from_der(&der)
            .map_err(|e| which(format!("cannot be parsed ({e})")))?;
        let (_, crl) = x509_parser::parse_x509_crl(&der)
            .map_err(|e| which(format!("cannot be parsed ({e})")))?;
        let signed_by_ours = ca_certs.iter().any(|ca| {
            with_cert(ca, "CA certificate", |ca| {
                Ok(ca.subject() == crl.issuer() && crl.verify_signature(ca.public_key()).is_ok())
            })
            .unwrap_or(false)
        });
        if !signed_by_ours {
            return Err(which(format!(
                "not signed by this node's federation CA (the list names issuer `{}`)",
                crl.issuer()
            )));
        }
        let next_update = crl.next_update().map(|t| t.timestamp());
        checked.next_update = match (checked.next_update, next_update) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        checked.revoked += crl.iter_revoked_certificates().count();
        checked.lists.push(der);
    }
    Ok(checked)
}

/// Reads the federation name from a CA certificate (its spiffe://<federation> URI SAN).
///
/// Also checks that the certificate is a CA, so a node certificate passed by
/// mistake is reported as such.
pub fn federation_of_ca(ca_cert_der: &[u8]) -> Result<String, IdentityError> {
    federation_of_ca_named(
        ca_cert_der,
        &format!("CA certificate {}", fingerprint(ca_cert_der)),
    )
}

fn federation_of_ca_named(der: &[u8], what: &str) -> Result<String, IdentityError> {
    with_cert(der, what, |cert| {
        if !cert.is_ca() {
            return Err(IdentityError::NotCa { what: what.into() });
        }
        let spiffe: Vec<&str> = uri_sans(cert, what)?
            .into_iter()
            .filter(|u| u.starts_with("spiffe://"))
            .collect();
        let uri = match spiffe.as_slice() {
            [] => {
                return Err(IdentityError::NoFederation {
                    what: what.into(),
                    detail: "it has no spiffe:// URI SAN".into(),
                })
            }
            [one] => *one,
            several => {
                return Err(IdentityError::NoFederation {
                    what: what.into(),
                    detail: format!("it has several spiffe:// URI SANs ({})", several.join(", ")),
                })
            }
        };
        let name = uri.trim_start_matches("spiffe://");
        validate_federation_name(name).map_err(|_| IdentityError::NoFederation {
            what: what.into(),
            detail: format!(
                "its URI SAN `{uri}` is not `spiffe://<federation>` with a valid federation name"
            ),
        })?;
        Ok(name.to_owned())
    })
}

fn check_days(days: u32) -> Result<(), IdentityError> {
    if (1..=MAX_DAYS).contains(&days) {
        Ok(())
    } else {
        Err(IdentityError::InvalidDays {
            days,
            max: MAX_DAYS,
        })
    }
}

/// Sets not_before/not_after; `days` must have passed [`check_days`], which
/// keeps the conversion to X.509 time in range.
fn set_validity(params: &mut CertificateParams, days: u32) {
    let now = SystemTime::now();
    params.not_before = now.checked_sub(BACKDATE).unwrap_or(now).into();
    params.not_after = (now + Duration::from_secs(u64::from(days) * 86_400)).into();
}

fn refuse_existing(paths: &[&Path], force: bool) -> Result<(), IdentityError> {
    if force {
        return Ok(());
    }
    for path in paths {
        if fs::symlink_metadata(path).is_ok() {
            return Err(IdentityError::Exists {
                path: path.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// Creates `dir` (and missing parents) with mode 0700, because it holds keys.
/// An existing directory is left as it is.
fn create_dir(dir: &Path) -> Result<(), IdentityError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|error| IdentityError::CreateDir {
            path: dir.to_path_buf(),
            error,
        })
}

/// Writes the key (0600) and then the certificate (0644). If the second write
/// fails, the first file is removed, so a failed issue leaves no half pair.
fn write_pair(
    cert_path: &Path,
    cert: &[u8],
    key_path: &Path,
    key: &[u8],
    force: bool,
) -> Result<(), IdentityError> {
    write_new_file(key_path, key, 0o600, force)?;
    if let Err(e) = write_new_file(cert_path, cert, 0o644, force) {
        let _ = fs::remove_file(key_path);
        return Err(e);
    }
    Ok(())
}

/// Creates `path` with `mode` and writes `contents`.
///
/// The file is always created by this call (`create_new`), so `mode` holds from
/// the first byte: with `force` an existing file is removed first rather than
/// truncated, since truncating would keep its old, possibly looser, mode.
fn write_new_file(
    path: &Path,
    contents: &[u8],
    mode: u32,
    force: bool,
) -> Result<(), IdentityError> {
    let write_err = |error| IdentityError::Write {
        path: path.to_path_buf(),
        error,
    };
    if force {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(write_err(e)),
        }
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists && !force {
                IdentityError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                write_err(e)
            }
        })?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        let _ = fs::remove_file(path);
        return Err(write_err(e));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Loading and checking a node's TLS material
// ---------------------------------------------------------------------------

/// What a running node needs for TLS.
pub struct TlsMaterial {
    pub node_id: NodeId,
    pub federation: String,
    pub cert_chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub ca_certs: Vec<CertificateDer<'static>>,
    /// Of our own leaf certificate, as [`fingerprint`] computes it.
    pub fingerprint: String,
    /// Unix seconds, leaf certificate.
    pub not_after: i64,
}

impl Clone for TlsMaterial {
    // `PrivateKeyDer` is deliberately not `Clone`; `clone_key` is its explicit copy.
    fn clone(&self) -> Self {
        TlsMaterial {
            node_id: self.node_id.clone(),
            federation: self.federation.clone(),
            cert_chain: self.cert_chain.clone(),
            key: self.key.clone_key(),
            ca_certs: self.ca_certs.clone(),
            fingerprint: self.fingerprint.clone(),
            not_after: self.not_after,
        }
    }
}

impl fmt::Debug for TlsMaterial {
    // Never print key material, not even its DER.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("node_id", &self.node_id)
            .field("federation", &self.federation)
            .field("cert_chain", &self.cert_chain.len())
            .field("key", &"<redacted>")
            .field("ca_certs", &self.ca_certs.len())
            .field("fingerprint", &self.fingerprint)
            .field("not_after", &self.not_after)
            .finish()
    }
}

/// Reads every PEM certificate in `path`; an error if there is none.
///
/// Public so that `liaisonctl` can print what it wrote without its own PEM code.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, IdentityError> {
    let pem = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| IdentityError::BadPem {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(IdentityError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, IdentityError> {
    let pem = read_file(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => IdentityError::NoPrivateKey {
            path: path.to_path_buf(),
        },
        e => IdentityError::BadPem {
            path: path.to_path_buf(),
            detail: e.to_string(),
        },
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>, IdentityError> {
    fs::read(path).map_err(|error| IdentityError::Read {
        path: path.to_path_buf(),
        error,
    })
}

/// Loads and checks a node's certificate, key and federation CA.
///
/// Checks, in order: the files are readable and hold a certificate chain, a
/// private key and CA certificates; the CA names one federation; the leaf
/// chains to the CA now and is fit for both TLS server and client
/// authentication; its URI SAN names exactly `expected` in the CA's
/// federation; the key belongs to the leaf. A node refuses to start on any
/// failure, rather than fail every handshake later.
pub fn load_tls(
    cert_path: &Path,
    key_path: &Path,
    ca_path: &Path,
    expected: &NodeId,
) -> Result<TlsMaterial, IdentityError> {
    let cert_chain = read_certs(cert_path)?;
    let key = read_key(key_path)?;
    let ca_certs = read_certs(ca_path)?;

    // Every CA certificate in the file (several during a CA rotation) must be a
    // CA of the same federation.
    let mut federation: Option<String> = None;
    for (i, ca) in ca_certs.iter().enumerate() {
        let what = if ca_certs.len() == 1 {
            format!("CA certificate {}", ca_path.display())
        } else {
            format!("CA certificate #{} in {}", i + 1, ca_path.display())
        };
        let name = federation_of_ca_named(ca, &what)?;
        match &federation {
            None => federation = Some(name),
            Some(first) if *first != name => {
                return Err(IdentityError::WrongFederation {
                    what,
                    got: name,
                    expected: first.clone(),
                })
            }
            Some(_) => {}
        }
    }
    let federation = federation.ok_or_else(|| IdentityError::NoCertificate {
        path: ca_path.to_path_buf(),
    })?;

    let leaf = &cert_chain[0];
    verify_chain(leaf, &cert_chain[1..], &ca_certs, cert_path, ca_path)?;

    let what = format!("certificate {}", cert_path.display());
    let got = node_id_of_cert_named(leaf, &federation, &what)?;
    if got != *expected {
        return Err(IdentityError::WrongNode {
            path: cert_path.to_path_buf(),
            got,
            expected: expected.clone(),
        });
    }

    let key_pair = KeyPair::try_from(&key).map_err(|e| IdentityError::BadKey {
        path: key_path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let leaf_key = with_cert(leaf, &what, |c| Ok(c.public_key().raw.to_vec()))?;
    if key_pair.subject_public_key_info() != leaf_key {
        return Err(IdentityError::KeyMismatch {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
        });
    }

    let not_after = with_cert(leaf, &what, |c| Ok(c.validity().not_after.timestamp()))?;
    Ok(TlsMaterial {
        node_id: got,
        federation,
        fingerprint: fingerprint(leaf),
        cert_chain,
        key,
        ca_certs,
        not_after,
    })
}

/// Verifies that `leaf` chains to one of `ca_certs` now, for both server and
/// client authentication (a node is both).
fn verify_chain(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'static>],
    ca_certs: &[CertificateDer<'static>],
    path: &Path,
    ca_path: &Path,
) -> Result<(), IdentityError> {
    let bad = |detail: String| IdentityError::BadCertificate {
        what: format!("certificate {}", path.display()),
        detail,
    };
    let anchors = ca_certs
        .iter()
        .map(|c| {
            webpki::anchor_from_trusted_cert(c).map_err(|e| IdentityError::BadCertificate {
                what: format!("CA certificate {}", ca_path.display()),
                detail: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ee = webpki::EndEntityCert::try_from(leaf).map_err(|e| bad(e.to_string()))?;
    let now = UnixTime::now();
    for (usage, name) in [
        (webpki::KeyUsage::server_auth(), "server"),
        (webpki::KeyUsage::client_auth(), "client"),
    ] {
        let verified = ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            intermediates,
            now,
            usage,
            None,
            None,
        );
        if let Err(e) = verified {
            return Err(match e {
                webpki::Error::CertExpired { not_after, .. } => IdentityError::Expired {
                    path: path.to_path_buf(),
                    not_after: format_unix(not_after.as_secs()),
                },
                webpki::Error::CertNotValidYet { not_before, .. } => IdentityError::NotYetValid {
                    path: path.to_path_buf(),
                    not_before: format_unix(not_before.as_secs()),
                },
                webpki::Error::RequiredEkuNotFoundContext(_) => IdentityError::WrongUsage {
                    path: path.to_path_buf(),
                    usage: name,
                },
                webpki::Error::CaUsedAsEndEntity => bad("it is a CA certificate, not a node certificate".into()),
                webpki::Error::UnknownIssuer => IdentityError::Untrusted {
                    path: path.to_path_buf(),
                    ca_path: ca_path.to_path_buf(),
                    detail: "unknown issuer".into(),
                },
                webpki::Error::InvalidSignatureForPublicKey => IdentityError::Untrusted {
                    path: path.to_path_buf(),
                    ca_path: ca_path.to_path_buf(),
                    detail: "its signature does not verify with this CA's key: another CA of the same name issued it".into(),
                },
                other => IdentityError::Untrusted {
                    path: path.to_path_buf(),
                    ca_path: ca_path.to_path_buf(),
                    detail: format!("{other:?}"),
                },
            });
        }
    }
    Ok(())
}

fn format_unix(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("unix time {secs}"))
}

/// The node id named by a peer's leaf certificate: the URI SAN spiffe://<federation>/node/<id>; error if none, several, or another federation.
///
/// It does not check the chain: call it on certificates rustls has verified.
pub fn node_id_of_cert(cert_der: &[u8], federation: &str) -> Result<NodeId, IdentityError> {
    node_id_of_cert_named(
        cert_der,
        federation,
        &format!("certificate {}", fingerprint(cert_der)),
    )
}

pub fn node_id_of_cert_named(
    der: &[u8],
    federation: &str,
    what: &str,
) -> Result<NodeId, IdentityError> {
    with_cert(der, what, |cert| {
        let spiffe: Vec<&str> = uri_sans(cert, what)?
            .into_iter()
            .filter(|u| u.starts_with("spiffe://"))
            .collect();
        let uri = match spiffe.as_slice() {
            [] => {
                return Err(IdentityError::NoNodeUri {
                    what: what.into(),
                    federation: federation.into(),
                })
            }
            [one] => *one,
            several => {
                return Err(IdentityError::SeveralNodeUris {
                    what: what.into(),
                    uris: several.join(", "),
                })
            }
        };
        let rest = uri.trim_start_matches("spiffe://");
        let (fed, path) = rest.split_once('/').unwrap_or((rest, ""));
        if fed != federation {
            return Err(IdentityError::WrongFederation {
                what: what.into(),
                got: fed.into(),
                expected: federation.into(),
            });
        }
        let bad_uri = || IdentityError::BadNodeUri {
            what: what.into(),
            uri: uri.into(),
            federation: federation.into(),
        };
        let id = path.strip_prefix("node/").ok_or_else(bad_uri)?;
        NodeId::parse(id).map_err(|_| bad_uri())
    })
}

/// Parses `der` and hands the certificate to `f`; parse failures name `what`.
fn with_cert<T>(
    der: &[u8],
    what: &str,
    f: impl FnOnce(&X509Certificate<'_>) -> Result<T, IdentityError>,
) -> Result<T, IdentityError> {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => f(&cert),
        Err(e) => Err(IdentityError::BadCertificate {
            what: what.into(),
            detail: e.to_string(),
        }),
    }
}

fn uri_sans<'a>(cert: &'a X509Certificate<'_>, what: &str) -> Result<Vec<&'a str>, IdentityError> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| IdentityError::BadCertificate {
            what: what.into(),
            detail: format!("subject alternative names: {e}"),
        })?;
    Ok(san
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(u) => Some(*u),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

/// "sha256:" + lowercase hex of SHA-256 over the DER.
pub fn fingerprint(cert_der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(cert_der)))
}

/// Parses a fingerprint given by an operator into the canonical form of [`fingerprint`].
///
/// Accepts `sha256:<64 hex>` in any case, with or without colons between
/// bytes (as `openssl x509 -fingerprint -sha256` prints them), and the bare
/// hex without the `sha256:` prefix.
pub fn parse_fingerprint(s: &str) -> Result<String, IdentityError> {
    let invalid = |reason: &str| IdentityError::InvalidFingerprint {
        value: s.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = s.trim();
    let hex_part = match trimmed.split_once(':') {
        Some((algo, rest)) if algo.eq_ignore_ascii_case("sha256") => rest,
        Some((algo, _)) if !algo.is_empty() && algo.len() != 2 => {
            return Err(invalid("only sha256 fingerprints are supported"))
        }
        _ => trimmed,
    };
    let digits: String = if hex_part.contains(':') {
        let bytes: Vec<&str> = hex_part.split(':').collect();
        if bytes.len() != 32 || bytes.iter().any(|b| b.len() != 2) {
            return Err(invalid("colons must separate 32 two-digit bytes"));
        }
        bytes.concat()
    } else {
        hex_part.to_owned()
    };
    if digits.len() != 64 {
        return Err(invalid(&format!(
            "it has {} hex digits, not 64",
            digits.len()
        )));
    }
    if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid("it contains a character that is not a hex digit"));
    }
    Ok(format!("sha256:{}", digits.to_ascii_lowercase()))
}

// ------------------------------------------------------------ signatures

/// Signs and checks documents (agreements) with the node's certificate key.
///
/// The protocol core depends on this trait, not on TLS: the node passes a
/// [`CertNotary`]; a simulator may pass its own.
pub trait Notary: Send + Sync + fmt::Debug {
    /// Signs `message`; returns the signature and the certificate (DER) that
    /// verifies it.
    fn sign(&self, message: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String>;
    /// Checks that `certificate` chains to the federation CA at `at_ms`,
    /// names node `signer`, and verifies `signature` over `message`.
    fn verify(
        &self,
        signer: &NodeId,
        certificate: &[u8],
        message: &[u8],
        signature: &[u8],
        at_ms: i64,
    ) -> Result<(), String>;
}

/// The node's own [`Notary`]: its certificate's key and the federation CA.
#[derive(Debug, Clone)]
pub struct CertNotary {
    material: TlsMaterial,
}

impl CertNotary {
    pub fn new(material: TlsMaterial) -> CertNotary {
        CertNotary { material }
    }
}

impl Notary for CertNotary {
    /// Signs with the node key's own algorithm (ECDSA P-256 with SHA-256
    /// for keys `liaisonctl ca issue` writes); [`Notary::verify`] accepts
    /// every algorithm webpki knows, so signatures made with another key
    /// type stay verifiable.
    fn sign(&self, message: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
        let key = KeyPair::try_from(&self.material.key)
            .map_err(|e| format!("cannot use the node key for signing: {e}"))?;
        let signature = key
            .sign(message)
            .map_err(|e| format!("signing failed: {e}"))?;
        let certificate = self
            .material
            .cert_chain
            .first()
            .ok_or("the node has no certificate")?
            .to_vec();
        Ok((signature, certificate))
    }

    fn verify(
        &self,
        signer: &NodeId,
        certificate: &[u8],
        message: &[u8],
        signature: &[u8],
        at_ms: i64,
    ) -> Result<(), String> {
        let named =
            node_id_of_cert(certificate, &self.material.federation).map_err(|e| e.to_string())?;
        if named != *signer {
            return Err(format!(
                "the signing certificate names node `{named}`, not `{signer}`"
            ));
        }
        let der = CertificateDer::from(certificate.to_vec());
        let anchors = self
            .material
            .ca_certs
            .iter()
            .map(|c| webpki::anchor_from_trusted_cert(c).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let ee = webpki::EndEntityCert::try_from(&der)
            .map_err(|e| format!("unreadable certificate: {e}"))?;
        let at = UnixTime::since_unix_epoch(Duration::from_millis(at_ms.max(0) as u64));
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &[],
            at,
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .map_err(|e| {
            format!("the signing certificate does not chain to the federation CA: {e:?}")
        })?;
        let verified = webpki::ALL_VERIFICATION_ALGS
            .iter()
            .any(|alg| ee.verify_signature(*alg, message, signature).is_ok());
        if !verified {
            return Err("the signature does not verify with the signer's certificate".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn id(s: &str) -> NodeId {
        NodeId::parse(s).unwrap()
    }

    /// A CA for `federation` in `<dir>/ca`.
    fn ca(dir: &Path, federation: &str) -> PathBuf {
        let ca_dir = dir.join("ca");
        ca_init(federation, &ca_dir, 30, false).unwrap();
        ca_dir
    }

    /// Issues `node` (DNS name localhost) from `ca_dir` into `<dir>/<sub>` and loads it.
    fn node(dir: &Path, ca_dir: &Path, node: &str, sub: &str) -> TlsMaterial {
        let out = dir.join(sub);
        let files = ca_issue(
            ca_dir,
            &id(node),
            &["localhost".into()],
            &["127.0.0.1".parse().unwrap()],
            10,
            &out,
            false,
        )
        .unwrap();
        load_tls(
            &files.cert_path,
            &files.key_path,
            &ca_dir.join(CA_CERT_FILE),
            &id(node),
        )
        .unwrap()
    }

    #[test]
    fn node_id_validation() {
        for good in ["pingliang", "xi-an", "ab", &"a".repeat(63)] {
            let n = NodeId::parse(good).unwrap();
            assert_eq!(n.as_str(), good);
            assert_eq!(n.to_string(), good);
            assert_eq!(good.parse::<NodeId>().unwrap(), n);
            assert!(validate_federation_name(good).is_ok());
        }
        for bad in [
            "a",
            "Pingliang",
            "1abc",
            "ab_c",
            &"a".repeat(64),
            "",
            "-ab",
            "ab c",
            "lán",
        ] {
            let e = NodeId::parse(bad).unwrap_err();
            assert!(
                matches!(e, IdentityError::InvalidNodeId { .. }),
                "{bad}: {e}"
            );
            assert!(e.to_string().contains(&format!("`{bad}`")), "{e}");
            assert!(NodeId::try_from(bad.to_string()).is_err());
            assert!(matches!(
                validate_federation_name(bad),
                Err(IdentityError::InvalidFederationName { .. })
            ));
        }
        let e = NodeId::parse("ab_c").unwrap_err().to_string();
        assert!(e.contains("'_'"), "{e}");
        // serde goes through the same check.
        let n: NodeId = serde_json::from_str("\"lanzhou\"").unwrap();
        assert_eq!(n, id("lanzhou"));
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"lanzhou\"");
        assert!(serde_json::from_str::<NodeId>("\"Lanzhou\"").is_err());
        assert_eq!(node_uri("gansu", &n), "spiffe://gansu/node/lanzhou");
    }

    #[test]
    fn round_trip_and_file_modes() {
        let dir = tempfile::tempdir().unwrap();
        let ca_dir = dir.path().join("fresh/ca");
        let ca_files = ca_init("gansu", &ca_dir, 30, false).unwrap();
        assert_eq!(ca_files.cert_path, ca_dir.join(CA_CERT_FILE));
        assert_eq!(ca_files.key_path, ca_dir.join(CA_KEY_FILE));
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&ca_dir), 0o700);
        assert_eq!(mode(&ca_files.key_path), 0o600);

        let ca_der = read_certs(&ca_files.cert_path).unwrap().remove(0);
        assert_eq!(federation_of_ca(&ca_der).unwrap(), "gansu");
        let (_, parsed) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        assert!(parsed.is_ca());
        assert_eq!(
            parsed
                .subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            "Liaison federation gansu CA"
        );

        let out = dir.path().join("pingliang");
        let files = ca_issue(
            &ca_dir,
            &id("pingliang"),
            &["pingliang.example".into()],
            &["10.0.0.7".parse().unwrap()],
            10,
            &out,
            false,
        )
        .unwrap();
        assert_eq!(files.cert_path, out.join("pingliang.crt"));
        assert_eq!(files.key_path, out.join("pingliang.key"));
        assert_eq!(mode(&files.key_path), 0o600);
        assert_eq!(mode(&out), 0o700);

        let m = load_tls(
            &files.cert_path,
            &files.key_path,
            &ca_files.cert_path,
            &id("pingliang"),
        )
        .unwrap();
        assert_eq!(m.node_id, id("pingliang"));
        assert_eq!(m.federation, "gansu");
        assert_eq!(m.cert_chain.len(), 1);
        assert_eq!(m.fingerprint, fingerprint(&m.cert_chain[0]));
        assert!(m.fingerprint.starts_with("sha256:") && m.fingerprint.len() == 7 + 64);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(
            (m.not_after - (now + 10 * 86_400)).abs() < 60,
            "{}",
            m.not_after
        );
        assert_eq!(
            node_id_of_cert(&m.cert_chain[0], "gansu").unwrap(),
            id("pingliang")
        );
        // Debug never shows the key; Clone copies it.
        assert!(format!("{m:?}").contains("<redacted>"));
        assert_eq!(m.clone().key.secret_der(), m.key.secret_der());

        let (_, leaf) = x509_parser::parse_x509_certificate(&m.cert_chain[0]).unwrap();
        assert!(!leaf.is_ca());
        let names = &leaf
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names;
        let shown: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        assert!(
            shown.contains(&"URI(spiffe://gansu/node/pingliang)".to_string()),
            "{shown:?}"
        );
        assert!(
            shown.contains(&"DNSName(pingliang.example)".to_string()),
            "{shown:?}"
        );
        assert!(names
            .iter()
            .any(|n| matches!(n, GeneralName::IPAddress(ip) if *ip == [10, 0, 0, 7])));
    }

    #[test]
    fn force_rule() {
        let dir = tempfile::tempdir().unwrap();
        let ca_dir = ca(dir.path(), "gansu");
        let first = read_certs(&ca_dir.join(CA_CERT_FILE)).unwrap();
        let e = ca_init("gansu", &ca_dir, 30, false).unwrap_err();
        assert!(matches!(e, IdentityError::Exists { .. }));
        assert!(
            e.to_string()
                .contains("ca.crt already exists: pass --force to overwrite"),
            "{e}"
        );
        // Refusing wrote nothing.
        assert_eq!(read_certs(&ca_dir.join(CA_CERT_FILE)).unwrap(), first);

        // Only the key left: still refused, naming the key.
        fs::remove_file(ca_dir.join(CA_CERT_FILE)).unwrap();
        let e = ca_init("gansu", &ca_dir, 30, false).unwrap_err();
        assert!(e.to_string().contains("ca.key already exists"), "{e}");

        // With --force both are replaced, and the key keeps mode 0600 even if it was looser.
        fs::set_permissions(ca_dir.join(CA_KEY_FILE), fs::Permissions::from_mode(0o644)).unwrap();
        ca_init("gansu", &ca_dir, 30, true).unwrap();
        assert_ne!(read_certs(&ca_dir.join(CA_CERT_FILE)).unwrap(), first);
        let mode = fs::metadata(ca_dir.join(CA_KEY_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);

        let out = dir.path().join("out");
        ca_issue(&ca_dir, &id("lanzhou"), &[], &[], 10, &out, false).unwrap();
        let e = ca_issue(&ca_dir, &id("lanzhou"), &[], &[], 10, &out, false).unwrap_err();
        assert!(
            e.to_string()
                .contains("lanzhou.crt already exists: pass --force"),
            "{e}"
        );
        ca_issue(&ca_dir, &id("lanzhou"), &[], &[], 10, &out, true).unwrap();
    }

    #[test]
    fn bad_inputs_to_the_ca_verbs() {
        let dir = tempfile::tempdir().unwrap();
        let e = ca_init("Gansu", dir.path(), 30, false).unwrap_err();
        assert!(
            matches!(e, IdentityError::InvalidFederationName { .. }),
            "{e}"
        );
        let e = ca_init("gansu", dir.path(), 0, false).unwrap_err();
        assert!(e.to_string().contains("--days between 1 and 36500"), "{e}");
        assert!(ca_init("gansu", dir.path(), u32::MAX, false).is_err());

        let e = ca_issue(
            &dir.path().join("none"),
            &id("lanzhou"),
            &[],
            &[],
            10,
            dir.path(),
            false,
        )
        .unwrap_err();
        assert!(matches!(e, IdentityError::Read { .. }), "{e}");
        assert!(e.to_string().contains("none/ca.crt"), "{e}");

        let ca_dir = ca(dir.path(), "gansu");
        for bad in ["bad name", "é.example", "", "10.0.0.1"] {
            let e = ca_issue(
                &ca_dir,
                &id("lanzhou"),
                &[bad.into()],
                &[],
                10,
                dir.path(),
                false,
            )
            .unwrap_err();
            assert!(
                matches!(e, IdentityError::InvalidDnsName { .. }),
                "{bad}: {e}"
            );
            assert!(e.to_string().contains(&format!("`{bad}`")), "{e}");
        }
        assert!(!dir.path().join("lanzhou.key").exists());

        // A node certificate passed as the CA.
        let other = ca(&dir.path().join("x"), "gansu");
        let m = node(dir.path(), &ca_dir, "lanzhou", "l");
        assert!(matches!(
            federation_of_ca(&m.cert_chain[0]),
            Err(IdentityError::NotCa { .. })
        ));
        // ca.key of another CA next to ca.crt.
        fs::copy(other.join(CA_KEY_FILE), ca_dir.join(CA_KEY_FILE)).unwrap();
        let e = ca_issue(&ca_dir, &id("wuwei"), &[], &[], 10, dir.path(), false).unwrap_err();
        assert!(matches!(e, IdentityError::CaKeyMismatch { .. }), "{e}");
        assert!(!dir.path().join("wuwei.key").exists());
        assert!(federation_of_ca(b"not a certificate").is_err());
    }

    #[test]
    fn load_tls_errors() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ca_dir = ca(d, "gansu");
        let ca_crt = ca_dir.join(CA_CERT_FILE);
        let a = ca_issue(&ca_dir, &id("pingliang"), &[], &[], 10, &d.join("a"), false).unwrap();
        let b = ca_issue(&ca_dir, &id("pingliang"), &[], &[], 10, &d.join("b"), false).unwrap();

        // Missing file: names the path and the OS error.
        let missing = d.join("nope.crt");
        let e = load_tls(&missing, &a.key_path, &ca_crt, &id("pingliang")).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, IdentityError::Read { .. }));
        assert!(
            msg.contains("nope.crt") && msg.contains("No such file"),
            "{msg}"
        );

        // A key file with no key in it, a cert file with no certificate.
        let e = load_tls(&a.cert_path, &a.cert_path, &ca_crt, &id("pingliang")).unwrap_err();
        assert!(matches!(e, IdentityError::NoPrivateKey { .. }), "{e}");
        let e = load_tls(&a.key_path, &a.key_path, &ca_crt, &id("pingliang")).unwrap_err();
        assert!(matches!(e, IdentityError::NoCertificate { .. }), "{e}");
        assert!(e.to_string().contains("contains no certificate"), "{e}");

        // Key from another issue of the same node.
        let e = load_tls(&a.cert_path, &b.key_path, &ca_crt, &id("pingliang")).unwrap_err();
        assert!(matches!(e, IdentityError::KeyMismatch { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("does not belong to certificate") && msg.contains("b/pingliang.key"),
            "{msg}"
        );

        // Certificate from another CA (even one with the same federation name).
        let other_ca = ca(&d.join("other"), "gansu");
        let c = ca_issue(
            &other_ca,
            &id("pingliang"),
            &[],
            &[],
            10,
            &d.join("c"),
            false,
        )
        .unwrap();
        let e = load_tls(&c.cert_path, &c.key_path, &ca_crt, &id("pingliang")).unwrap_err();
        assert!(matches!(e, IdentityError::Untrusted { .. }), "{e}");
        assert!(
            e.to_string().contains("is not issued by the federation CA"),
            "{e}"
        );

        // The certificate names another node than the config expects.
        let e = load_tls(&a.cert_path, &a.key_path, &ca_crt, &id("lanzhou")).unwrap_err();
        assert!(matches!(e, IdentityError::WrongNode { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "certificate {} names node `pingliang` but node_id in the config is `lanzhou`: \
                 issue a certificate for lanzhou with `liaisonctl ca issue lanzhou`",
                a.cert_path.display()
            )
        );

        // A node certificate given as the CA.
        let e = load_tls(&a.cert_path, &a.key_path, &a.cert_path, &id("pingliang")).unwrap_err();
        assert!(matches!(e, IdentityError::NotCa { .. }), "{e}");

        // An expired certificate, signed by the right CA.
        let ca_key =
            KeyPair::from_pem(&fs::read_to_string(ca_dir.join(CA_KEY_FILE)).unwrap()).unwrap();
        let issuer = Issuer::from_ca_cert_der(&read_certs(&ca_crt).unwrap()[0], ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.subject_alt_names = vec![SanType::URI(
            "spiffe://gansu/node/pingliang"
                .to_string()
                .try_into()
                .unwrap(),
        )];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let old = d.join("old.crt");
        let old_key = d.join("old.key");
        fs::write(&old, p.signed_by(&key, &issuer).unwrap().pem()).unwrap();
        fs::write(&old_key, key.serialize_pem()).unwrap();
        let e = load_tls(&old, &old_key, &ca_crt, &id("pingliang")).unwrap_err();
        assert!(matches!(e, IdentityError::Expired { .. }), "{e}");
        assert!(
            e.to_string().contains("expired at 2021-01-01 00:00:00 UTC"),
            "{e}"
        );

        // Server-only usage: refused, since a node is also a client.
        p.not_after = rcgen::date_time_ymd(4000, 1, 1);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        fs::write(&old, p.signed_by(&key, &issuer).unwrap().pem()).unwrap();
        let e = load_tls(&old, &old_key, &ca_crt, &id("pingliang")).unwrap_err();
        assert!(
            matches!(
                e,
                IdentityError::WrongUsage {
                    usage: "client",
                    ..
                }
            ),
            "{e}"
        );

        // Garbage PEM.
        let junk = d.join("junk.crt");
        fs::write(
            &junk,
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = load_tls(&junk, &a.key_path, &ca_crt, &id("pingliang")).unwrap_err();
        assert!(e.to_string().contains("junk.crt"), "{e}");
    }

    #[test]
    fn node_id_of_cert_rules() {
        let dir = tempfile::tempdir().unwrap();
        let ca_dir = ca(dir.path(), "gansu");
        let m = node(dir.path(), &ca_dir, "lanzhou", "l");
        let leaf = &m.cert_chain[0];
        assert_eq!(node_id_of_cert(leaf, "gansu").unwrap(), id("lanzhou"));
        let e = node_id_of_cert(leaf, "shaanxi").unwrap_err();
        assert!(matches!(e, IdentityError::WrongFederation { .. }), "{e}");
        assert!(
            e.to_string().contains("federation `gansu`, not `shaanxi`"),
            "{e}"
        );
        assert!(matches!(
            node_id_of_cert(b"junk", "gansu"),
            Err(IdentityError::BadCertificate { .. })
        ));

        // Certificates made by hand: no URI, two URIs, a malformed one.
        let make = |uris: &[&str]| {
            let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
            for u in uris {
                p.subject_alt_names
                    .push(SanType::URI(u.to_string().try_into().unwrap()));
            }
            p.self_signed(&KeyPair::generate().unwrap())
                .unwrap()
                .der()
                .to_vec()
        };
        assert!(matches!(
            node_id_of_cert(&make(&[]), "gansu"),
            Err(IdentityError::NoNodeUri { .. })
        ));
        let e = node_id_of_cert(
            &make(&["spiffe://gansu/node/a1", "spiffe://gansu/node/b1"]),
            "gansu",
        )
        .unwrap_err();
        assert!(matches!(e, IdentityError::SeveralNodeUris { .. }), "{e}");
        let e = node_id_of_cert(&make(&["spiffe://gansu/admin/a1"]), "gansu").unwrap_err();
        assert!(matches!(e, IdentityError::BadNodeUri { .. }), "{e}");
        let e = node_id_of_cert(&make(&["spiffe://gansu/node/A1"]), "gansu").unwrap_err();
        assert!(matches!(e, IdentityError::BadNodeUri { .. }), "{e}");
        // Non-spiffe URIs are ignored.
        let ok = make(&["https://example.org/x", "spiffe://gansu/node/wuwei"]);
        assert_eq!(node_id_of_cert(&ok, "gansu").unwrap(), id("wuwei"));
    }

    #[test]
    fn fingerprints() {
        assert_eq!(
            fingerprint(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let canonical = fingerprint(b"x");
        assert_eq!(parse_fingerprint(&canonical).unwrap(), canonical);
        let hex = canonical.trim_start_matches("sha256:");
        let upper = format!("SHA256:{}", hex.to_uppercase());
        assert_eq!(parse_fingerprint(&upper).unwrap(), canonical);
        let colons = hex
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(
            parse_fingerprint(&format!("sha256:{colons}")).unwrap(),
            canonical
        );
        assert_eq!(
            parse_fingerprint(&colons.to_uppercase()).unwrap(),
            canonical
        );
        assert_eq!(parse_fingerprint(hex).unwrap(), canonical);
        for bad in [
            "",
            "sha256:",
            "sha256:abc",
            "md5:00",
            &format!("sha256:{}", &hex[1..]),
            &format!("sha256:{}zz", &hex[2..]),
        ] {
            let e = parse_fingerprint(bad).unwrap_err();
            assert!(
                e.to_string()
                    .contains("expected `sha256:` followed by 64 hex digits"),
                "{e}"
            );
        }
        assert!(parse_fingerprint(&format!("sha256:{}", &colons[1..])).is_err());
    }
    #[test]
    fn revocation_lists_are_checked_when_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let ca_dir = ca(dir.path(), "gansu");
        let lanzhou = dir.path().join("l");
        node(dir.path(), &ca_dir, "lanzhou", "l");
        let ca_certs = read_certs(&ca_dir.join(CA_CERT_FILE)).unwrap();
        let now_s = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;

        // The CA's own list, revoking one certificate.
        let (_, crl) = ca_revoke(&ca_dir, &lanzhou.join("lanzhou.crt")).unwrap();
        let loaded = load_crls(&crl, &ca_certs).unwrap();
        assert_eq!((loaded.lists.len(), loaded.revoked), (1, 1));
        let next = loaded.next_update.unwrap();
        assert!((next - now_s - 30 * 86_400).abs() < 60, "{next}");

        // Signed by another CA, even one of a federation of the same name.
        let twin = ca(&dir.path().join("twin"), "gansu");
        let forged = dir.path().join("forged.crl");
        ca_crl(&twin, &forged, 30).unwrap();
        let e = load_crls(&forged, &ca_certs).unwrap_err().to_string();
        assert!(e.contains("not signed by this node's federation CA"), "{e}");
        assert!(
            e.contains("forged.crl") && e.contains("liaisonctl ca crl"),
            "{e}"
        );

        // Past its next update.
        let stale = dir.path().join("stale.crl");
        let then = SystemTime::now() - Duration::from_secs(40 * 86_400);
        sign_crl(&ca_dir, &stale, then, 30).unwrap();
        let loaded = load_crls(&stale, &ca_certs).unwrap();
        assert!(
            loaded.next_update.unwrap() < now_s,
            "loaded, and known stale"
        );

        // Not a list at all, in PEM or not.
        let junk = dir.path().join("junk.crl");
        for bytes in [
            &b"not a list"[..],
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            fs::write(&junk, bytes).unwrap();
            let e = load_crls(&junk, &ca_certs).unwrap_err();
            assert!(matches!(e, IdentityError::BadCrl { .. }), "{e}");
        }
    }
}

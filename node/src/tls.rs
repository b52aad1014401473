//! TLS for the federation port and peer links (docs/authority.md): the rustls
//! server and client configurations built from a node's [`TlsMaterial`],
//! the check that a server is the node meant, and readable reasons for
//! refused handshakes. Loading and checking the material itself is
//! `liaison_types::identity` (no TLS library there).
//!
//! All cryptography goes through *ring* (rustls' ring provider, passed
//! explicitly so that the process-wide default provider never matters).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use liaison_types::identity::{
    fingerprint, node_id_of_cert_named, parse_fingerprint, IdentityError, NodeId, RevocationLists,
    TlsMaterial,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};

/// The ALPN protocol both ends offer: the federation service is gRPC over HTTP/2.
const ALPN_H2: &[u8] = b"h2";

// ---------------------------------------------------------------------------
// rustls configurations
// ---------------------------------------------------------------------------

/// What the node presents and checks, as loaded from its files: at start,
/// and again at a reload (SIGHUP, `liaisonctl reload`), which replaces the
/// whole of it at once. Every new handshake uses the one in force, and at
/// a reload every open connection is judged again by the new one
/// (`federation::trust`).
pub struct Credentials {
    pub material: TlsMaterial,
    /// The federation CA's revocation lists (`tls.crl`), checked.
    pub crls: RevocationLists,
    /// The files these were read from (`[tls]` of node.toml).
    pub files: TlsFiles,
    /// The federation port's configuration, built from the two above.
    pub server: Arc<rustls::ServerConfig>,
    /// How the federation port judges a client's certificate.
    client_certs: Arc<dyn ClientCertVerifier>,
    /// How a peer link judges the server's certificate, before the node id
    /// and pin ([`PeerVerifier`]).
    server_certs: Arc<WebPkiServerVerifier>,
    /// Signs and verifies agreements with the node's certificate.
    pub notary: Arc<dyn liaison_types::identity::Notary>,
}

/// The `[tls]` section of node.toml: where the credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
    pub crl: Option<PathBuf>,
}

impl TlsFiles {
    pub fn of(config: &liaison_types::config::Config) -> TlsFiles {
        TlsFiles {
            cert: config.tls_cert.clone(),
            key: config.tls_key.clone(),
            ca: config.tls_ca.clone(),
            crl: config.tls_crl.clone(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("node_id", &self.material.node_id)
            .field("fingerprint", &self.material.fingerprint)
            .field("crls", &self.crls.lists.len())
            .field("files", &self.files)
            .finish()
    }
}

/// A certificate a connection was verified with, kept to judge it again.
#[derive(Debug, Clone)]
pub struct PeerCertificate {
    pub end_entity: CertificateDer<'static>,
    pub intermediates: Vec<CertificateDer<'static>>,
    /// The name we reached the peer by, for a connection we opened; `None`
    /// for one the peer opened (its certificate was checked as a client's).
    pub server_name: Option<ServerName<'static>>,
}

impl PeerCertificate {
    /// The certificates a finished handshake verified, if the peer sent any.
    pub fn of(
        chain: Option<&[CertificateDer<'static>]>,
        server_name: Option<ServerName<'static>>,
    ) -> Option<PeerCertificate> {
        let (end_entity, intermediates) = chain?.split_first()?;
        Some(PeerCertificate {
            end_entity: end_entity.clone(),
            intermediates: intermediates.to_vec(),
            server_name,
        })
    }
}

impl Credentials {
    /// Reads and checks the certificate, key, CA bundle and revocation
    /// list `files` names, for node `node_id`. Nothing is replaced on
    /// failure.
    pub fn load(files: &TlsFiles, node_id: &NodeId) -> Result<Credentials, IdentityError> {
        let material =
            liaison_types::identity::load_tls(&files.cert, &files.key, &files.ca, node_id)?;
        let crls = match &files.crl {
            Some(path) => liaison_types::identity::load_crls(path, &material.ca_certs)?,
            None => RevocationLists {
                lists: Vec::new(),
                next_update: None,
                revoked: 0,
            },
        };
        let client_certs = client_cert_verifier(&material, &crls.lists)?;
        let server_certs = server_cert_verifier(&material, &crls.lists)?;
        let server = server_config_with(&material, client_certs.clone())?;
        Ok(Credentials {
            notary: Arc::new(liaison_types::identity::CertNotary::new(material.clone())),
            material,
            crls,
            files: files.clone(),
            server,
            client_certs,
            server_certs,
        })
    }

    /// The client configuration for a link to `expected`.
    pub fn client(
        &self,
        expected: &NodeId,
        pin: Option<&str>,
    ) -> Result<Arc<rustls::ClientConfig>, IdentityError> {
        client_config_with(&self.material, self.server_certs.clone(), expected, pin)
    }

    /// Whether a connection verified with `peer` would be accepted by these
    /// credentials now: the chain to the CA bundle, the validity and the
    /// revocation lists, as a new handshake checks them. (The node id and
    /// pin do not change with a reload.) The error is the reason, as
    /// operators read it.
    pub fn judge(&self, peer: &PeerCertificate) -> Result<(), String> {
        let now = UnixTime::now();
        let judged = match &peer.server_name {
            None => self
                .client_certs
                .verify_client_cert(&peer.end_entity, &peer.intermediates, now)
                .map(|_| ()),
            Some(name) => self
                .server_certs
                .verify_server_cert(&peer.end_entity, &peer.intermediates, name, &[], now)
                .map(|_| ()),
        };
        judged.map_err(|e| describe_tls_error(&e).replace("client certificate", "certificate"))
    }
}

/// The ring provider, explicitly: never the process default, which another
/// crate in the process could have installed differently.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(
    ca_certs: &[CertificateDer<'static>],
    node: &str,
) -> Result<Arc<RootCertStore>, IdentityError> {
    let mut roots = RootCertStore::empty();
    for ca in ca_certs {
        roots.add(ca.clone()).map_err(|e| IdentityError::Tls {
            node: node.into(),
            detail: format!("CA certificate {}: {e}", fingerprint(ca)),
        })?;
    }
    Ok(Arc::new(roots))
}

/// Server config: requires a client certificate chaining to the CA, offers
/// ALPN "h2", presents our chain and key.
///
/// Which peers may do what is decided after the handshake from the verified
/// certificate's node id and the peer table (docs/authority.md); TLS only establishes
/// that the caller belongs to the federation.
pub fn server_config(m: &TlsMaterial) -> Result<Arc<rustls::ServerConfig>, IdentityError> {
    server_config_with(m, client_cert_verifier(m, &[])?)
}

fn tls_error(node: &str) -> impl Fn(&dyn fmt::Display) -> IdentityError + '_ {
    move |e| IdentityError::Tls {
        node: node.into(),
        detail: e.to_string(),
    }
}

/// The check of a client's certificate: it chains to the CA bundle and
/// `crls` (the federation CA's revocation lists) do not revoke it.
fn client_cert_verifier(
    m: &TlsMaterial,
    crls: &[CertificateRevocationListDer<'static>],
) -> Result<Arc<dyn ClientCertVerifier>, IdentityError> {
    let node = m.node_id.as_str();
    let mut verifier =
        WebPkiClientVerifier::builder_with_provider(roots(&m.ca_certs, node)?, provider());
    if !crls.is_empty() {
        // Node certificates are issued by the root itself: the list is
        // about them. A certificate of another issuer has no list here,
        // and the chain check decides it. A list past its nextUpdate is
        // still enforced (rustls' default expiration policy): it is the
        // newest the node knows, and dropping it would readmit the
        // certificates it revokes.
        verifier = verifier
            .with_crls(crls.iter().cloned())
            .only_check_end_entity_revocation()
            .allow_unknown_revocation_status();
    }
    verifier.build().map_err(|e| tls_error(node)(&e))
}

/// The check of a server's certificate, before the node id and pin: it
/// chains to the CA bundle, names the host, and `crls` do not revoke it.
fn server_cert_verifier(
    m: &TlsMaterial,
    crls: &[CertificateRevocationListDer<'static>],
) -> Result<Arc<WebPkiServerVerifier>, IdentityError> {
    let node = m.node_id.as_str();
    let mut verifier =
        WebPkiServerVerifier::builder_with_provider(roots(&m.ca_certs, node)?, provider());
    if !crls.is_empty() {
        verifier = verifier
            .with_crls(crls.iter().cloned())
            .only_check_end_entity_revocation()
            .allow_unknown_revocation_status();
    }
    verifier.build().map_err(|e| tls_error(node)(&e))
}

fn server_config_with(
    m: &TlsMaterial,
    verifier: Arc<dyn ClientCertVerifier>,
) -> Result<Arc<rustls::ServerConfig>, IdentityError> {
    let tls = tls_error(m.node_id.as_str());
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(m.cert_chain.clone(), m.key.clone_key())
        .map_err(|e| tls(&e))?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// TLS 1.3 tickets a peer link's client config keeps for resumption: rustls
/// keeps up to 8 per server, so this is one server's worth.
const PEER_SESSION_CACHE: usize = 8;

/// Client config for connecting to peer `expected`.
///
/// Presents our certificate; verifies the server's chain to the CA and the
/// server name as usual, and then also that the server is the node we meant to
/// reach (docs/authority.md: a valid certificate of *another* node at that address, e.g.
/// after a DNS mix-up, must not be taken for the peer), and, if `pin` is given,
/// that its leaf has exactly that fingerprint. ALPN "h2".
pub fn client_config(
    m: &TlsMaterial,
    expected: &NodeId,
    pin: Option<&str>,
) -> Result<Arc<rustls::ClientConfig>, IdentityError> {
    client_config_with(m, server_cert_verifier(m, &[])?, expected, pin)
}

fn client_config_with(
    m: &TlsMaterial,
    inner: Arc<WebPkiServerVerifier>,
    expected: &NodeId,
    pin: Option<&str>,
) -> Result<Arc<rustls::ClientConfig>, IdentityError> {
    let tls = tls_error(m.node_id.as_str());
    let pin = pin.map(parse_fingerprint).transpose()?;
    let verifier = PeerVerifier {
        inner,
        federation: m.federation.clone(),
        expected: expected.clone(),
        pin,
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(m.cert_chain.clone(), m.key.clone_key())
        .map_err(|e| tls(&e))?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    // One config per peer link, and a link talks to one server: rustls's
    // default session cache (256 tickets, 32 servers, allocated up front)
    // cost about 13 KiB per peer (measured with heaptrack) for nothing.
    config.resumption = rustls::client::Resumption::in_memory_sessions(PEER_SESSION_CACHE);
    Ok(Arc::new(config))
}

/// For tests of refusals: a client config with the CA roots but presenting NO client certificate.
pub fn client_config_without_cert(
    ca_certs: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, IdentityError> {
    let node = "(none)";
    let tls = tls_error(node);
    let provider = provider();
    let verifier =
        WebPkiServerVerifier::builder_with_provider(roots(ca_certs, node)?, provider.clone())
            .build()
            .map_err(|e| tls(&e))?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?
        .with_webpki_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// The client's server-certificate check: the standard WebPKI checks, then
/// the node id and optional pin.
#[derive(Debug)]
struct PeerVerifier {
    inner: Arc<WebPkiServerVerifier>,
    federation: String,
    expected: NodeId,
    /// Canonical form, from [`parse_fingerprint`].
    pin: Option<String>,
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        let got = node_id_of_cert_named(end_entity, &self.federation, "server certificate")
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        if got != self.expected {
            return Err(rustls::Error::General(format!(
                "server certificate names node `{got}`, expected `{}`",
                self.expected
            )));
        }
        if let Some(pin) = &self.pin {
            let got = fingerprint(end_entity);
            if got != *pin {
                return Err(rustls::Error::General(format!(
                    "server certificate fingerprint {got} does not match the pinned {pin}"
                )));
            }
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

/// Human-readable one-line reason for a rustls handshake error seen by a
/// server, for audit entries (operators read these, not rustls internals).
pub fn describe_tls_error(e: &rustls::Error) -> String {
    match e {
        rustls::Error::NoCertificatesPresented => "no client certificate presented".into(),
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => {
                "client certificate not issued by this federation's CA".into()
            }
            // What webpki reports when an issuer of the same name (another CA
            // created for a federation of the same name) signed the chain.
            CertificateError::BadSignature => {
                "client certificate not issued by this federation's CA (bad signature)".into()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "client certificate expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "client certificate not valid yet".into()
            }
            CertificateError::Revoked => "client certificate revoked".into(),
            _ => e.to_string(),
        },
        // The client refused *our* certificate: it expected another node at
        // this address, or pinned another certificate.
        rustls::Error::AlertReceived(alert) => format!(
            "the client aborted the TLS handshake (alert {alert:?}): it may expect another node at this address, or a pinned certificate"
        ),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liaison_types::identity::{ca_init, ca_issue, load_tls, node_id_of_cert, CA_CERT_FILE};
    use rustls::{ClientConnection, ServerConnection};
    use std::path::{Path, PathBuf};
    use std::time::Duration;

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

    /// Runs a handshake in memory; returns the first error and which side saw it.
    fn handshake(
        client: &mut ClientConnection,
        server: &mut ServerConnection,
    ) -> Result<(), (&'static str, rustls::Error)> {
        for _ in 0..20 {
            let mut moved = false;
            let mut buf = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut buf).unwrap();
            }
            if !buf.is_empty() {
                moved = true;
                server.read_tls(&mut buf.as_slice()).unwrap();
                server.process_new_packets().map_err(|e| ("server", e))?;
            }
            let mut buf = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut buf).unwrap();
            }
            if !buf.is_empty() {
                moved = true;
                client.read_tls(&mut buf.as_slice()).unwrap();
                client.process_new_packets().map_err(|e| ("client", e))?;
            }
            if !moved && !client.is_handshaking() && !server.is_handshaking() {
                return Ok(());
            }
        }
        panic!("handshake did not settle");
    }

    fn connect(
        client: Arc<rustls::ClientConfig>,
        server: Arc<rustls::ServerConfig>,
    ) -> (
        ClientConnection,
        ServerConnection,
        Result<(), (&'static str, rustls::Error)>,
    ) {
        let mut c =
            ClientConnection::new(client, ServerName::try_from("localhost").unwrap()).unwrap();
        let mut s = ServerConnection::new(server).unwrap();
        let r = handshake(&mut c, &mut s);
        (c, s, r)
    }

    #[test]
    fn handshakes() {
        let dir = tempfile::tempdir().unwrap();
        let ca_dir = ca(dir.path(), "gansu");
        let server_m = node(dir.path(), &ca_dir, "pingliang", "p");
        let client_m = node(dir.path(), &ca_dir, "lanzhou", "l");
        let server = server_config(&server_m).unwrap();

        // A good client is accepted; each side sees the other's node id.
        let (c, s, r) = connect(
            client_config(&client_m, &id("pingliang"), None).unwrap(),
            server.clone(),
        );
        r.unwrap();
        assert_eq!(s.alpn_protocol(), Some(&b"h2"[..]));
        assert_eq!(c.alpn_protocol(), Some(&b"h2"[..]));
        let peer = &s.peer_certificates().unwrap()[0];
        assert_eq!(node_id_of_cert(peer, "gansu").unwrap(), id("lanzhou"));
        let peer = &c.peer_certificates().unwrap()[0];
        assert_eq!(node_id_of_cert(peer, "gansu").unwrap(), id("pingliang"));

        // With the right pin too, in either spelling.
        let pin = server_m.fingerprint.to_uppercase();
        let (_, _, r) = connect(
            client_config(&client_m, &id("pingliang"), Some(&pin)).unwrap(),
            server.clone(),
        );
        r.unwrap();

        // A wrong pin fails on the client.
        let wrong = fingerprint(b"another");
        let (_, _, r) = connect(
            client_config(&client_m, &id("pingliang"), Some(&wrong)).unwrap(),
            server.clone(),
        );
        let (side, e) = r.unwrap_err();
        assert_eq!(side, "client");
        assert_eq!(
            e,
            rustls::Error::General(format!(
                "server certificate fingerprint {} does not match the pinned {wrong}",
                server_m.fingerprint
            ))
        );
        assert!(client_config(&client_m, &id("pingliang"), Some("nonsense")).is_err());

        // The client meant to reach another node: refused on the client.
        let (_, _, r) = connect(
            client_config(&client_m, &id("tianshui"), None).unwrap(),
            server.clone(),
        );
        let (side, e) = r.unwrap_err();
        assert_eq!(side, "client");
        assert_eq!(
            e,
            rustls::Error::General(
                "server certificate names node `pingliang`, expected `tianshui`".into()
            )
        );

        // No client certificate: refused by the server.
        let (_, _, r) = connect(
            client_config_without_cert(&server_m.ca_certs).unwrap(),
            server.clone(),
        );
        let (side, e) = r.unwrap_err();
        assert_eq!(side, "server");
        assert_eq!(e, rustls::Error::NoCertificatesPresented);
        assert_eq!(describe_tls_error(&e), "no client certificate presented");

        // A client certificate from another CA (the client trusts our CA for
        // the server, so only its own certificate is wrong): refused by the server.
        let other_ca = ca(&dir.path().join("other"), "shaanxi");
        let mut stranger = node(dir.path(), &other_ca, "lanzhou", "s");
        stranger.ca_certs = server_m.ca_certs.clone();
        stranger.federation = "gansu".into();
        let (_, _, r) = connect(
            client_config(&stranger, &id("pingliang"), None).unwrap(),
            server.clone(),
        );
        let (side, e) = r.unwrap_err();
        assert_eq!(side, "server");
        assert_eq!(
            e,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        );
        assert_eq!(
            describe_tls_error(&e),
            "client certificate not issued by this federation's CA"
        );

        // Another CA made for a federation of the same name: also refused.
        let twin_ca = ca(&dir.path().join("twin"), "gansu");
        let mut twin = node(dir.path(), &twin_ca, "lanzhou", "t");
        twin.ca_certs = server_m.ca_certs.clone();
        let (_, _, r) = connect(
            client_config(&twin, &id("pingliang"), None).unwrap(),
            server.clone(),
        );
        let (side, e) = r.unwrap_err();
        assert_eq!(side, "server");
        assert!(
            describe_tls_error(&e)
                .starts_with("client certificate not issued by this federation's CA"),
            "{e}"
        );

        // And a server from another CA is refused by the client.
        let stranger_server = server_config(&stranger).unwrap();
        let (_, _, r) = connect(
            client_config(&client_m, &id("lanzhou"), None).unwrap(),
            stranger_server,
        );
        let (side, e) = r.unwrap_err();
        assert_eq!(side, "client");
        assert_eq!(
            e,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        );
    }

    #[test]
    fn describe_errors() {
        let expired = rustls::Error::InvalidCertificate(CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(Duration::from_secs(2)),
            not_after: UnixTime::since_unix_epoch(Duration::from_secs(1)),
        });
        assert_eq!(describe_tls_error(&expired), "client certificate expired");
        assert_eq!(
            describe_tls_error(&rustls::Error::InvalidCertificate(
                CertificateError::Expired
            )),
            "client certificate expired"
        );
        let other = rustls::Error::General("boom".into());
        assert_eq!(describe_tls_error(&other), other.to_string());
    }
}

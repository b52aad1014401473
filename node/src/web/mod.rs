//! The report-in page (一键报到, `[report_in]` in `node.toml`, off by
//! default): members scan a service station's QR code and report in from
//! their phone. axum on the node's runtime, over HTTPS with the configured
//! certificate, or plain HTTP on a loopback address behind the
//! department's reverse proxy (deploy/README.md).
//!
//! Routes: `GET /s/{station}` the form, `POST /s/{station}` a submission,
//! `GET /static/page.css`. Everything else is "not found".
//!
//! What a submission goes through, in this order (docs/reportin.md, "The
//! page"):
//! 1. the per-address limit (every POST counts, before anything is read);
//! 2. a bounded body ([`BODY_MAX`]);
//! 3. the station (a closed or unknown one is "not found");
//! 4. the form token ([`token`]: signed double submit, no JavaScript);
//! 5. the fields (`liaison_types::reportin::check`): a problem is shown
//!    beside its field, the form filled in again as typed;
//! 6. the per-phone limit;
//! 7. the claim, stored by `liaison_core::reportin::submit` through the
//!    node's writer (the path operators' changes take), which audits it.
//!
//! An accepted submission gets one and the same confirmation whoever
//! sent it: nothing on the page tells whether a person is a member here.
//! Each refusal at 1, 4, 5 and 6 is audited (`reportin.refused`, the
//! client's address as the actor, the station as the target, the reason
//! and the names of the fields at fault as the detail: never what was
//! typed); a limit's refusals only the first in each window.

mod limits;
mod page;
mod token;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Form, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use liaison_core::store::audit::{Actor, Outcome};
use liaison_types::config::ReportIn;
use liaison_types::reportin as checks;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::error::NodeError;
use crate::node::Node;
use limits::{Limiter, Over};
pub use token::{Secret, SECRET_FILE};

/// Bytes a submission's body may have: the form's fields at their longest
/// fit many times over.
pub const BODY_MAX: usize = 16 * 1024;
/// Connections served at once; more wait to be accepted.
const CONNECTIONS_MAX: usize = 256;
/// A TLS handshake not finished by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request's header not read by then closes the connection.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection is closed after this long, however busy.
const CONNECTION_MAX: Duration = Duration::from_secs(120);
/// At shutdown, requests in flight get this long to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The page's listener, bound at start-up.
pub struct Listener {
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
}

impl Listener {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    pub fn is_https(&self) -> bool {
        self.tls.is_some()
    }
}

/// Binds `[report_in].listen` and loads its certificate: a port in use or
/// a bad certificate fails the node's start.
pub async fn bind(config: &ReportIn) -> Result<Listener, String> {
    let tls = match &config.tls {
        None => None,
        Some(files) => Some(TlsAcceptor::from(server_config(files)?)),
    };
    let tcp = TcpListener::bind(config.listen).await.map_err(|error| {
        let hint = if error.kind() == std::io::ErrorKind::AddrInUse {
            " (another process uses this port: stop it or change report_in.listen)"
        } else {
            ""
        };
        format!("cannot listen on {}: {error}{hint}", config.listen)
    })?;
    Ok(Listener { tcp, tls })
}

fn server_config(
    files: &liaison_types::config::ReportInTls,
) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls_pki_types::pem::PemObject as _;
    let certs = liaison_types::identity::read_certs(&files.cert).map_err(|e| e.to_string())?;
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        format!(
            "report_in.tls_key {}: no usable private key ({e}): give the key of report_in.tls_cert in PEM",
            files.key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "report_in.tls_cert {} and report_in.tls_key {} do not make a certificate and its key: {e}",
                files.cert.display(),
                files.key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What the handlers share.
struct Page {
    node: Arc<Node>,
    config: ReportIn,
    secret: Secret,
    per_address: Limiter,
    per_phone: Limiter,
    /// Whether the browser reaches the page over HTTPS (the cookie is then
    /// `Secure`).
    https: bool,
}

/// The address of the connection a request came on.
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

/// Serves the page until the node is asked to stop; connections in
/// flight then get [`SHUTDOWN_GRACE`] to finish their request.
pub async fn serve(node: Arc<Node>, listener: Listener, secret: Secret) {
    let Some(config) = node.config.report_in.clone() else {
        return;
    };
    let page = Arc::new(Page {
        https: listener.tls.is_some() || config.public_url.starts_with("https://"),
        per_address: Limiter::new(config.per_address_per_hour, limits::HOUR_MS),
        per_phone: Limiter::new(config.per_phone_per_day, limits::DAY_MS),
        node: node.clone(),
        config,
        secret,
    });
    let router = router(page);
    let tls = listener.tls.clone();
    node.serve_tcp(
        &listener.tcp,
        CONNECTIONS_MAX,
        "report-in page",
        |tcp, peer| {
            let router = router.clone();
            let tls = tls.clone();
            let shutdown = node.shutdown.clone();
            async move {
                let Some(acceptor) = tls else {
                    return serve_connection(tcp, peer, router, shutdown).await;
                };
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => serve_connection(stream, peer, router, shutdown).await,
                    Ok(Err(error)) => {
                        tracing::debug!(%error, %peer, "report-in page: TLS handshake failed")
                    }
                    Err(_) => tracing::debug!(%peer, "report-in page: TLS handshake timed out"),
                }
            }
        },
    )
    .await
}

async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    router: Router,
    shutdown: tokio_util::sync::CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(Peer(peer));
        tower::ServiceExt::oneshot(router.clone(), request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = tokio::time::sleep(CONNECTION_MAX) => return,
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(SHUTDOWN_GRACE, connection.as_mut()).await {
                Ok(result) => result,
                Err(_) => return,
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, %peer, "report-in page: connection failed");
    }
}

fn router(page: Arc<Page>) -> Router {
    Router::new()
        .route("/s/{station}", get(show).post(submit))
        .route("/static/page.css", get(stylesheet))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_MAX))
        .layer(axum::middleware::map_response_with_state(
            page.clone(),
            secure_headers,
        ))
        .with_state(page)
}

/// Headers on every answer: no script runs and no other site frames the
/// page; nothing with a form token is cached; a browser that reached the
/// page over HTTPS keeps to HTTPS.
async fn secure_headers(State(page): State<Arc<Page>>, mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::CACHE_CONTROL, "no-store");
    if page.https {
        set(
            headers,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000",
        );
    }
    response
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        page::STYLESHEET,
    )
        .into_response()
}

async fn not_found() -> Response {
    html(StatusCode::NOT_FOUND, page::not_found())
}

fn html(status: StatusCode, markup: maud::Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// The station's public facts, or the answer to give when there is none.
async fn station(page: &Page, code: &str) -> Result<liaison_core::reportin::StationPage, Response> {
    let owned = code.to_owned();
    match page
        .node
        .read(move |conn| liaison_core::reportin::station_page(conn, &owned))
        .await
    {
        Ok(Some(station)) => Ok(station),
        Ok(None) => Err(not_found().await),
        Err(error) => Err(failed(&error)),
    }
}

fn failed(error: &NodeError) -> Response {
    match error {
        NodeError::Stopping => html(StatusCode::SERVICE_UNAVAILABLE, page::unavailable()),
        NodeError::Core(liaison_core::Error::Storage(_)) | NodeError::Internal(_) => {
            tracing::error!(%error, "report-in page: the database failed");
            html(StatusCode::INTERNAL_SERVER_ERROR, page::unavailable())
        }
        // A refusal's message may quote what was typed: only its kind is logged.
        NodeError::Core(_) => {
            tracing::warn!("report-in page: a submission was refused by the core");
            html(StatusCode::INTERNAL_SERVER_ERROR, page::unavailable())
        }
    }
}

/// The nonce in the request's form cookie, if it has a well-formed one.
fn cookie_nonce(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == token::COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|value| value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit()))
}

async fn show(
    State(page): State<Arc<Page>>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Response {
    let station = match station(&page, &code).await {
        Ok(station) => station,
        Err(response) => return response,
    };
    let (nonce, fresh) = match cookie_nonce(&headers) {
        Some(nonce) => (nonce, false),
        None => (Secret::nonce(), true),
    };
    let form_token = page.secret.token(&code, &nonce, page.node.now_ms());
    let markup = page::form(
        &station,
        &checks::Form::default(),
        &[],
        &form_token,
        page.config.rejected_kept_days,
    );
    let mut response = html(StatusCode::OK, markup);
    if fresh {
        set_cookie(&page, &mut response, &nonce);
    }
    response
}

fn set_cookie(page: &Page, response: &mut Response, nonce: &str) {
    let secure = if page.https { "; Secure" } else { "" };
    let max_age = token::VALID_MS / 1000;
    let cookie = format!(
        "{}={nonce}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}",
        token::COOKIE
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The fields of the form as posted; absent ones are empty.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct Posted {
    name: String,
    phone: String,
    home_place: String,
    home_branch: String,
    certificate_no: String,
    employer: String,
    address: String,
    consent: String,
    token: String,
}

impl Posted {
    fn form(self) -> checks::Form {
        checks::Form {
            name: self.name,
            phone: self.phone,
            home_place: self.home_place,
            home_branch: self.home_branch,
            certificate_no: self.certificate_no,
            employer: self.employer,
            address: self.address,
            consent: !self.consent.is_empty(),
        }
    }
}

/// The client's address: the connection's, or behind the reverse proxy
/// the last entry of `X-Forwarded-For` (the one the proxy added; earlier
/// ones are whatever the client sent), or the connection's if that entry
/// is no address.
fn client_ip(page: &Page, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    if !page.config.behind_proxy {
        return peer.ip();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.rsplit(',').next())
        .and_then(|entry| entry.trim().parse::<IpAddr>().ok())
        .unwrap_or(peer.ip())
}

async fn submit(
    State(page): State<Arc<Page>>,
    Path(code): Path<String>,
    Extension(Peer(peer)): Extension<Peer>,
    headers: HeaderMap,
    posted: Result<Form<Posted>, FormRejection>,
) -> Response {
    let now_ms = page.node.now_ms();
    let client = limits::address_key(client_ip(&page, peer, &headers));
    let actor = Actor::Remote(client.clone());
    if let Err(over) = page.per_address.hit(&client, now_ms) {
        return too_many(&page, actor, &code, "per_address_per_hour", over).await;
    }
    let posted = match posted {
        Ok(Form(posted)) => posted,
        Err(rejection) => {
            let status = rejection.status();
            tracing::debug!(%status, "report-in page: a submission's body was refused");
            return html(status, page::bad_request());
        }
    };
    let station = match station(&page, &code).await {
        Ok(station) => station,
        Err(response) => return response,
    };
    let token_ok = cookie_nonce(&headers)
        .is_some_and(|nonce| page.secret.verify(&code, &nonce, &posted.token, now_ms));
    if !token_ok {
        refused(
            &page,
            actor,
            &code,
            "form token missing or not valid".into(),
        )
        .await;
        return html(StatusCode::FORBIDDEN, page::expired());
    }
    let form_token = posted.token.clone();
    let form = posted.form();
    let submission = match checks::check(&form) {
        Ok(submission) => submission,
        Err(problems) => {
            let fields: Vec<&str> = problems.iter().map(|p| p.field).collect();
            refused(
                &page,
                actor,
                &code,
                format!("fields: {}", fields.join(", ")),
            )
            .await;
            let markup = page::form(
                &station,
                &form,
                &problems,
                &form_token,
                page.config.rejected_kept_days,
            );
            return html(StatusCode::UNPROCESSABLE_ENTITY, markup);
        }
    };
    if let Err(over) = page.per_phone.hit(&submission.phone, now_ms) {
        return too_many(&page, actor, &code, "per_phone_per_day", over).await;
    }
    let me = page.node.me();
    let refusal_actor = actor.clone();
    let refusal_target = code.clone();
    let stored = page
        .node
        .writer
        .run(
            move |conn| liaison_core::reportin::submit(conn, &me.ctx(now_ms), &code, &submission),
            move |conn, error| {
                let kind = match error {
                    NodeError::Core(liaison_core::Error::Refused(_)) => "refused by the node",
                    _ => "not stored: the node failed (its log says why)",
                };
                let entry = liaison_core::store::audit::NewEntry {
                    actor: &refusal_actor,
                    action: "reportin.submitted",
                    target: &refusal_target,
                    outcome: Outcome::Refused,
                    detail: kind,
                };
                if let Err(error) = liaison_core::store::audit::append(conn, now_ms, &entry) {
                    tracing::error!(%error, "cannot write audit entry");
                }
            },
        )
        .await;
    match stored {
        Ok(()) => {
            tracing::info!(station = %station.code, "report-in received");
            html(StatusCode::OK, page::received(&station))
        }
        Err(error) => failed(&error),
    }
}

/// A limit refused the submission: answered 429 with when to come back;
/// audited the first time in the key's window.
async fn too_many(page: &Page, actor: Actor, station: &str, limit: &str, over: Over) -> Response {
    let retry_after_ms = match over {
        Over::Limit {
            retry_after_ms,
            first,
        } => {
            if first {
                refused(page, actor, station, format!("over report_in.{limit}")).await;
            }
            retry_after_ms
        }
        Over::Full => {
            tracing::warn!(
                limit,
                "report-in page: the rate limit's table is full; refusing new clients until windows close"
            );
            limits::HOUR_MS
        }
    };
    let mut response = html(StatusCode::TOO_MANY_REQUESTS, page::too_many());
    let seconds = (retry_after_ms / 1000).max(1);
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

async fn refused(page: &Page, actor: Actor, station: &str, detail: String) {
    tracing::info!(station, reason = %detail, "report-in submission refused");
    page.node
        .audit(
            actor,
            "reportin.refused",
            station.to_owned(),
            Outcome::Refused,
            detail,
        )
        .await;
}

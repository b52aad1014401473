//! The report-in page from a phone's side, without a browser: plain
//! HTTP/1.1 or HTTPS to a node's `[report_in]` listener, one connection a
//! request, keeping the one cookie the page sets (its form nonce).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::timed;

/// An answer of the page.
#[derive(Debug, Clone)]
pub struct PageResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl PageResponse {
    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The form token in the page's hidden field, if it shows the form.
    pub fn form_token(&self) -> Option<String> {
        let at = self.body.find(r#"name="token" value=""#)?;
        let rest = &self.body[at + r#"name="token" value=""#.len()..];
        rest.split('"').next().map(str::to_owned)
    }
}

/// A client of one node's report-in page.
pub struct PageClient {
    addr: SocketAddr,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
    /// `name=value` of the cookie the page set, sent back with each request.
    cookie: Option<String>,
    /// Sent as `X-Forwarded-For`, as a reverse proxy would.
    pub forwarded_for: Option<String>,
}

impl PageClient {
    /// Plain HTTP to `addr`.
    pub fn http(addr: SocketAddr) -> PageClient {
        PageClient {
            addr,
            tls: None,
            cookie: None,
            forwarded_for: None,
        }
    }

    /// HTTPS to `addr`, trusting what `config` trusts, checking the
    /// certificate against `server_name`.
    pub fn https(
        addr: SocketAddr,
        config: Arc<rustls::ClientConfig>,
        server_name: &str,
    ) -> PageClient {
        let name = rustls::pki_types::ServerName::try_from(server_name.to_owned())
            .expect("a valid server name");
        PageClient {
            tls: Some((tokio_rustls::TlsConnector::from(config), name)),
            ..PageClient::http(addr)
        }
    }

    /// Forgets the cookie, as another phone would not have it.
    pub fn forget_cookie(&mut self) {
        self.cookie = None;
    }

    /// Sets the cookie the page would have set (a forged one, in a test).
    pub fn set_cookie(&mut self, cookie: &str) {
        self.cookie = Some(cookie.to_owned());
    }

    pub async fn get(&mut self, path: &str) -> PageResponse {
        self.request("GET", path, None, Vec::new()).await
    }

    /// Posts `fields` as the browser posts the form.
    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> PageResponse {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.post_raw(path, body.into_bytes()).await
    }

    /// Posts `body` as a form, whatever it holds.
    pub async fn post_raw(&mut self, path: &str, body: Vec<u8>) -> PageResponse {
        self.request(
            "POST",
            path,
            Some("application/x-www-form-urlencoded"),
            body,
        )
        .await
    }

    async fn request(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> PageResponse {
        let what = format!("{method} {path} at the report-in page {}", self.addr);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        if let Some(forwarded) = &self.forwarded_for {
            request = request.header("x-forwarded-for", forwarded);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .expect("a well-formed request");
        let tcp = timed(&what, TcpStream::connect(self.addr))
            .await
            .unwrap_or_else(|e| panic!("{what}: cannot connect: {e}"));
        let response = match &self.tls {
            None => timed(&what, send(TokioIo::new(tcp), request)).await,
            Some((connector, name)) => {
                let stream = timed(&what, connector.connect(name.clone(), tcp))
                    .await
                    .unwrap_or_else(|e| panic!("{what}: TLS handshake: {e}"));
                timed(&what, send(TokioIo::new(stream), request)).await
            }
        }
        .unwrap_or_else(|e| panic!("{what}: {e}"));
        for (name, value) in &response.headers {
            if name == "set-cookie" {
                if let Some(pair) = value.split(';').next() {
                    self.cookie = Some(pair.trim().to_owned());
                }
            }
        }
        response
    }
}

async fn send<I>(io: I, request: hyper::Request<Full<Bytes>>) -> anyhow::Result<PageResponse>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(PageResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

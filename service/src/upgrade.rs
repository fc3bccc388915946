//! The WebSocket upgrade: the request is checked (path, handshake headers, origin, connection
//! limit), answered with `101 Switching Protocols` or a refusal, and the socket goes to a
//! [`session`] task of its own with small buffers ([`crate::websocket`] says why).
//!
//! Two HTTP parsers bring upgrade requests here, and both go through the same checks
//! ([`admit`]) and the same start ([`start`]): [`crate::front_door`] reads the first request of
//! every plain TCP connection itself, which is how nearly every fan arrives; actix-http
//! ([`service`]) brings the rest: connections over TLS, and an upgrade sent on a keep-alive
//! connection after other requests. Its dispatcher, buffers and timers are freed as soon as the
//! answer is written.

use std::time::Duration;

use actix_codec::Framed;
use actix_http::body::MessageBody;
use actix_http::header::HeaderMap;
use actix_http::{Method, Request, h1};
use actix_service::{ServiceFactory, fn_service};
use actix_web::{ResponseError, web};
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::FutureExt;
use scoreline_protocol::{Limits, PROTOCOL_VERSION, ServerMessage};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

use crate::api_error::ApiError;
use crate::config::Config;
use crate::session;
use crate::state::{AppState, ConnectionSlot};
use crate::telemetry;
use crate::websocket::{FrameReader, FrameWriter, TextFrame};

/// The only path that speaks WebSocket.
pub const WEBSOCKET_PATH: &str = "/ws";

/// How long writing a refusal may take before the client is dropped.
const HANDSHAKE_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The upgrade service actix-http calls for connections of type `T` (TLS, or plain TCP after
/// other requests).
pub fn service<T>(
    state: web::Data<AppState>,
) -> impl ServiceFactory<
    (Request, Framed<T, h1::Codec>),
    Config = (),
    Response = (),
    Error = actix_http::Error,
    InitError = (),
>
where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
{
    fn_service(move |(request, framed): (Request, Framed<T, h1::Codec>)| {
        let state = state.clone();
        async move {
            let request = UpgradeRequest {
                method_is_get: request.method() == Method::GET,
                path: request.path(),
                headers: &request.head().headers,
            };
            let admitted = admit(&request, &state);
            let mut parts = framed.into_parts();
            match admitted {
                Ok((answer, slot)) => start(parts.io, &parts.read_buf, answer, slot, &state),
                Err(refusal) => refuse(&mut parts.io, &refusal).await,
            }
            Ok(())
        }
    })
}

/// The first frame of every connection; the same bytes for all of them.
pub fn welcome_frame(config: &Config) -> TextFrame {
    ServerMessage::Welcome {
        protocol: PROTOCOL_VERSION,
        server: concat!("scoreline/", env!("CARGO_PKG_VERSION")).to_owned(),
        heartbeat_secs: config.heartbeat_secs,
        idle_timeout_secs: config.idle_timeout_secs,
        limits: Limits {
            max_topics: config.max_topics,
            max_frame_bytes: config.max_frame_bytes,
            max_requests_per_sec: config.max_requests_per_sec,
            max_snapshots: config.max_snapshots,
            max_delay_secs: config.max_delay_secs,
        },
    }
    .to_json()
    .into()
}

/// The request headers an upgrade is judged by, whichever parser read them.
pub trait Headers {
    /// Every value of the header `name` (lower case), in order.
    fn values<'h>(&'h self, name: &'static str) -> impl Iterator<Item = &'h [u8]>;

    /// The first value of the header `name` (lower case).
    fn value(&self, name: &'static str) -> Option<&[u8]> {
        self.values(name).next()
    }
}

impl Headers for HeaderMap {
    fn values<'h>(&'h self, name: &'static str) -> impl Iterator<Item = &'h [u8]> {
        self.get_all(name).map(|value| value.as_bytes())
    }
}

impl Headers for [httparse::Header<'_>] {
    fn values<'h>(&'h self, name: &'static str) -> impl Iterator<Item = &'h [u8]> {
        self.iter()
            .filter(move |header| header.name.eq_ignore_ascii_case(name))
            .map(|header| header.value)
    }
}

/// An upgrade request, as [`admit`] sees it.
pub struct UpgradeRequest<'a, H: Headers + ?Sized> {
    /// Whether the method is `GET`, the only one an upgrade may use.
    pub method_is_get: bool,
    /// The path, without the query.
    pub path: &'a str,
    /// The headers.
    pub headers: &'a H,
}

/// Why a WebSocket handshake is refused (RFC 6455 §4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The method is not `GET` (405).
    #[error("a WebSocket upgrade must be a GET request")]
    NotGet,
    /// No `Upgrade: websocket`.
    #[error("the Upgrade header must name websocket")]
    NoUpgradeHeader,
    /// No `Connection: Upgrade`.
    #[error("the Connection header must include Upgrade")]
    NoConnectionUpgrade,
    /// No `Sec-WebSocket-Version`.
    #[error("the Sec-WebSocket-Version header is missing")]
    NoVersion,
    /// A version other than 13 (426, naming the one spoken).
    #[error("only Sec-WebSocket-Version 13 is supported")]
    UnsupportedVersion,
    /// No `Sec-WebSocket-Key`, or not 16 bytes in base64.
    #[error("the Sec-WebSocket-Key header must be 16 bytes in base64")]
    BadKey,
}

/// Checks the handshake headers of an upgrade request (RFC 6455 §4.2.1): the `101 Switching
/// Protocols` answer to send, exactly as it goes on the wire, or why not.
pub fn handshake<H: Headers + ?Sized>(
    method_is_get: bool,
    headers: &H,
) -> Result<Bytes, HandshakeError> {
    let result = check_handshake(method_is_get, headers);
    if result.is_err() {
        telemetry::bad_input("websocket_handshake");
    }
    result
}

fn check_handshake<H: Headers + ?Sized>(
    method_is_get: bool,
    headers: &H,
) -> Result<Bytes, HandshakeError> {
    if !method_is_get {
        return Err(HandshakeError::NotGet);
    }
    if !headers
        .values("upgrade")
        .any(|value| has_token(value, b"websocket"))
    {
        return Err(HandshakeError::NoUpgradeHeader);
    }
    if !headers
        .values("connection")
        .any(|value| has_token(value, b"upgrade"))
    {
        return Err(HandshakeError::NoConnectionUpgrade);
    }
    match headers.value("sec-websocket-version") {
        None => return Err(HandshakeError::NoVersion),
        Some(version) if version.trim_ascii() != b"13" => {
            return Err(HandshakeError::UnsupportedVersion);
        }
        Some(_) => {}
    }
    let key = headers
        .value("sec-websocket-key")
        .map(<[u8]>::trim_ascii)
        .ok_or(HandshakeError::BadKey)?;
    let mut nonce = [0u8; 16];
    if key.len() != 24
        || base64::engine::general_purpose::STANDARD.decode_slice(key, &mut nonce) != Ok(16)
    {
        return Err(HandshakeError::BadKey);
    }
    Ok(switching_protocols(key))
}

/// Whether a comma-separated header value has `token` (lower case) among its items.
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&byte| byte == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token))
}

/// The `101` answer to a handshake with `key`.
fn switching_protocols(key: &[u8]) -> Bytes {
    const HEAD: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\
                          connection: upgrade\r\nsec-websocket-accept: ";
    let accept = actix_http::ws::hash_key(key);
    let mut answer = BytesMut::with_capacity(HEAD.len() + accept.len() + 4);
    answer.put_slice(HEAD);
    answer.put_slice(&accept);
    answer.put_slice(b"\r\n\r\n");
    answer.freeze()
}

/// Checks an upgrade request: the `101` answer and the connection's slot, or why not.
pub fn admit<H: Headers + ?Sized>(
    request: &UpgradeRequest<'_, H>,
    state: &AppState,
) -> Result<(Bytes, ConnectionSlot), ApiError> {
    if request.path != WEBSOCKET_PATH {
        return Err(ApiError::NoWebSocketHere {
            path: request.path.to_owned(),
            endpoint: WEBSOCKET_PATH,
        });
    }
    let answer = handshake(request.method_is_get, request.headers)?;
    check_origin(request.headers, &state.config.allowed_origins)?;
    let slot = state
        .connections
        .try_acquire()
        .ok_or(ApiError::ConnectionLimit)?;
    Ok((answer, slot))
}

/// Starts the session of an admitted connection: `already_read` is what the HTTP parser read
/// past the request, `answer` the `101` that leaves with the welcome.
pub fn start<T>(io: T, already_read: &[u8], answer: Bytes, slot: ConnectionSlot, state: &AppState)
where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let (reader, writer) = switch_protocols(io, already_read, answer, state.config.max_frame_bytes);
    let run = session::run(
        reader,
        writer,
        state.hub.new_conn_id(),
        state.hub.clone(),
        state.session,
        state.welcome.clone(),
        state.sessions_shutdown.clone(),
    );
    actix_web::rt::spawn(state.sessions.track_future(holding(run, slot)));
}

/// `run`, keeping `kept` (the connection's slot) until it ends. Not an `async` block that awaits
/// `run`: such a block stores the future twice, as the value it captured and as the one it
/// awaits, which made every connection's task 3.2 KB instead of 1.6 KB (`docs/benchmarks.md`,
/// issue 14, session 5).
fn holding<F, K>(run: F, kept: K) -> futures_util::future::Map<F, impl FnOnce(()) + use<F, K>>
where
    F: Future<Output = ()>,
{
    run.map(move |()| drop(kept))
}

/// A connection taken away from HTTP: the reader of the client's frames and the writer of ours.
pub type Upgraded<T> = (FrameReader<ReadHalf<T>>, FrameWriter<WriteHalf<T>>);

/// Takes the socket away from HTTP with the `101` answer from [`handshake`]: a reader of the
/// client's frames (starting with `already_read`, the bytes the HTTP parser read past the
/// request) refusing frames and messages over `max_frame_bytes`, and a writer with the answer
/// queued in it, not yet sent. The session writes it together with the welcome, one system call
/// instead of two per connection (and one read fewer for the client); a writer that has nothing
/// to add must flush it at once.
pub fn switch_protocols<T>(
    io: T,
    already_read: &[u8],
    answer: Bytes,
    max_frame_bytes: usize,
) -> Upgraded<T>
where
    T: AsyncRead + AsyncWrite,
{
    let (read, write) = tokio::io::split(io);
    let mut writer = FrameWriter::new(write);
    writer.queue_encoded(answer);
    (
        FrameReader::new(read, already_read, max_frame_bytes),
        writer,
    )
}

/// Writes `refusal` as an HTTP response and closes, within a few seconds: the connection asked
/// to leave HTTP, so it is not kept alive.
pub async fn refuse<T>(io: &mut T, refusal: &ApiError)
where
    T: AsyncWrite + Unpin,
{
    let response = refusal_bytes(refusal);
    // The connection is closed right after, whether or not the client read the refusal.
    let _ = tokio::time::timeout(HANDSHAKE_WRITE_TIMEOUT, async {
        io.write_all(&response).await?;
        io.shutdown().await
    })
    .await;
}

/// `error`'s response as it goes on the wire, with `connection: close`.
fn refusal_bytes(error: &ApiError) -> Vec<u8> {
    let response = error.error_response();
    let status = response.status();
    let mut wire = Vec::with_capacity(256);
    wire.extend_from_slice(b"HTTP/1.1 ");
    wire.extend_from_slice(status.as_str().as_bytes());
    wire.push(b' ');
    wire.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    wire.extend_from_slice(b"\r\n");
    for (name, value) in response.headers() {
        wire.extend_from_slice(name.as_str().as_bytes());
        wire.extend_from_slice(b": ");
        wire.extend_from_slice(value.as_bytes());
        wire.extend_from_slice(b"\r\n");
    }
    // The body is the JSON built in memory by `error_response`, never a stream.
    let body = response.into_body().try_into_bytes().unwrap_or_default();
    wire.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    wire.extend_from_slice(b"connection: close\r\n\r\n");
    wire.extend_from_slice(&body);
    wire
}

/// Browsers send `Origin`; when a list is configured, only those origins may connect, and the
/// service's own page (an origin naming the host the request was sent to). Clients that send
/// none (servers, scripts, the viewer) are not browsers and are let through.
fn check_origin<H: Headers + ?Sized>(headers: &H, allowed: &[String]) -> Result<(), ApiError> {
    let Some(origin) = headers.value("origin") else {
        return Ok(());
    };
    if allowed.is_empty()
        || allowed.iter().any(|allowed| origin == allowed.as_bytes())
        || is_same_origin(origin, headers.value("host"))
    {
        return Ok(());
    }
    telemetry::bad_input("origin_refused");
    Err(ApiError::OriginRefused {
        origin: String::from_utf8_lossy(origin).into_owned(),
    })
}

/// Whether `origin` (`http://host:port`) names the host the request was sent to: the page
/// served at `/` connecting back to its own service. A page on another site cannot pass this,
/// since the browser sets `Origin` to that site, not to ours.
fn is_same_origin(origin: &[u8], host: Option<&[u8]>) -> bool {
    let Some(host) = host else {
        return false;
    };
    origin
        .strip_prefix(b"https://")
        .or_else(|| origin.strip_prefix(b"http://"))
        .is_some_and(|origin_host| origin_host.eq_ignore_ascii_case(host))
}
#[cfg(test)]
mod tests {
    use actix_http::header::{self, HeaderValue};

    use super::*;

    #[test]
    fn a_session_task_holds_its_future_once() {
        // A future with a large state, as a session's is.
        let large = async {
            let state = [7u8; 1024];
            tokio::task::yield_now().await;
            std::hint::black_box(&state);
        };
        let alone = std::mem::size_of_val(&large);
        let task = holding(large, std::sync::Arc::new(()));
        let held = std::mem::size_of_val(&task);
        assert!(
            held < alone + 64,
            "{held} bytes to hold a future of {alone}"
        );
    }

    #[test]
    fn origins_are_checked_only_when_a_list_is_configured() {
        let mut headers = HeaderMap::new();
        assert!(check_origin(&headers, &["https://a.example".into()]).is_ok());
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://b.example"),
        );
        assert!(check_origin(&headers, &[]).is_ok());
        assert!(check_origin(&headers, &["https://a.example".into()]).is_err());
        assert!(check_origin(&headers, &["https://b.example".into()]).is_ok());
    }

    #[test]
    fn the_services_own_page_may_always_connect() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::HOST,
            HeaderValue::from_static("scores.example:8080"),
        );
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://scores.example:8080"),
        );
        let listed = ["https://fans.example".to_owned()];
        assert!(check_origin(&headers, &listed).is_ok());
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://scores.example:9090"),
        );
        assert!(check_origin(&headers, &listed).is_err());
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(check_origin(&headers, &listed).is_err());
    }

    /// The sample handshake of RFC 6455 §1.3, as `httparse` gives its headers.
    fn sample<'h>(extra: &'h [(&'h str, &'h str)]) -> Vec<httparse::Header<'h>> {
        let mut headers = vec![
            httparse::Header {
                name: "Host",
                value: b"server.example.com",
            },
            httparse::Header {
                name: "Upgrade",
                value: b"websocket",
            },
            httparse::Header {
                name: "Connection",
                value: b"keep-alive, Upgrade",
            },
            httparse::Header {
                name: "Sec-WebSocket-Key",
                value: b"dGhlIHNhbXBsZSBub25jZQ==",
            },
            httparse::Header {
                name: "Sec-WebSocket-Version",
                value: b"13",
            },
        ];
        for (name, value) in extra {
            headers.retain(|header| !header.name.eq_ignore_ascii_case(name));
            if !value.is_empty() {
                headers.push(httparse::Header {
                    name,
                    value: value.as_bytes(),
                });
            }
        }
        headers
    }

    #[test]
    fn a_valid_handshake_is_answered_with_the_key_the_rfc_gives() {
        let answer = handshake(true, sample(&[]).as_slice()).unwrap();
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut response = httparse::Response::new(&mut headers);
        assert_eq!(
            response.parse(&answer).unwrap(),
            httparse::Status::Complete(answer.len())
        );
        assert_eq!(response.code, Some(101));
        let accept = response.headers.as_ref().value("sec-websocket-accept");
        assert_eq!(accept, Some(&b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="[..]));
        // Header names in any case, tokens in any case and order.
        let shouted = sample(&[("UPGRADE", "WebSocket"), ("connection", "Upgrade ,close")]);
        assert!(handshake(true, shouted.as_slice()).is_ok());
    }

    #[test]
    fn each_broken_handshake_is_refused_with_its_reason() {
        /// Whether the method is GET, the headers changed, the refusal expected.
        type Case = (
            bool,
            &'static [(&'static str, &'static str)],
            HandshakeError,
        );
        let cases: [Case; 7] = [
            (false, &[], HandshakeError::NotGet),
            (true, &[("upgrade", "")], HandshakeError::NoUpgradeHeader),
            (true, &[("upgrade", "h2c")], HandshakeError::NoUpgradeHeader),
            (
                true,
                &[("connection", "keep-alive")],
                HandshakeError::NoConnectionUpgrade,
            ),
            (
                true,
                &[("sec-websocket-version", "")],
                HandshakeError::NoVersion,
            ),
            (
                true,
                &[("sec-websocket-version", "8")],
                HandshakeError::UnsupportedVersion,
            ),
            (
                true,
                &[("sec-websocket-key", "c2hvcnQ=")],
                HandshakeError::BadKey,
            ),
        ];
        for (method_is_get, change, expected) in cases {
            let headers = sample(change);
            assert_eq!(
                handshake(method_is_get, headers.as_slice()),
                Err(expected),
                "{change:?}"
            );
        }
        let mut map = HeaderMap::new();
        map.insert(
            header::UPGRADE,
            header::HeaderValue::from_static("websocket"),
        );
        assert_eq!(
            handshake(true, &map),
            Err(HandshakeError::NoConnectionUpgrade)
        );
    }

    #[test]
    fn a_refusal_is_a_whole_response_that_closes_the_connection() {
        let wire = refusal_bytes(&ApiError::BadHandshake(HandshakeError::UnsupportedVersion));
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(head_len) = response.parse(&wire).unwrap() else {
            panic!("incomplete head: {wire:?}");
        };
        assert_eq!(response.code, Some(426));
        let headers = &*response.headers;
        assert_eq!(headers.value("sec-websocket-version"), Some(&b"13"[..]));
        assert_eq!(headers.value("connection"), Some(&b"close"[..]));
        let body: serde_json::Value = serde_json::from_slice(&wire[head_len..]).unwrap();
        assert_eq!(body["error"], "upgrade_required");
        let length = std::str::from_utf8(headers.value("content-length").unwrap()).unwrap();
        assert_eq!(length.parse::<usize>().unwrap(), wire.len() - head_len);
    }
}

//! The WebSocket upgrade. actix-http hands every request that asks for `Upgrade: websocket` to
//! this service together with the connection itself, instead of running it through the app's
//! routes: the request is checked (path, handshake headers, origin, connection limit), answered
//! with `101 Switching Protocols` or an error, and the socket goes to a [`session`] task of its
//! own with small buffers ([`crate::websocket`] says why). The HTTP dispatcher, its buffers and
//! its timers are freed as soon as the answer is written.

use std::time::Duration;

use actix_codec::Framed;
use actix_http::body::{BodySize, BoxBody};
use actix_http::header::{self, HeaderMap, HeaderValue};
use actix_http::{ConnectionType, Request, Response, h1, ws};
use actix_service::{ServiceFactory, fn_service};
use actix_web::{ResponseError, web};
use futures_util::{FutureExt, SinkExt};
use scoreline_protocol::{Limits, PROTOCOL_VERSION, ServerMessage};
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};

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

/// The upgrade service for connections of type `T` (plain TCP or TLS).
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
    let welcome = welcome_frame(&state.config);
    fn_service(move |(request, framed): (Request, Framed<T, h1::Codec>)| {
        let state = state.clone();
        let welcome = welcome.clone();
        async move {
            accept(request, framed, state, welcome).await;
            Ok(())
        }
    })
}

/// The first frame of every connection; the same bytes for all of them.
fn welcome_frame(config: &Config) -> TextFrame {
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

async fn accept<T>(
    request: Request,
    mut framed: Framed<T, h1::Codec>,
    state: web::Data<AppState>,
    welcome: TextFrame,
) where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let (answer, slot) = match admit(&request, &state) {
        Ok(admitted) => admitted,
        Err(refusal) => {
            refuse(&mut framed, refusal).await;
            return;
        }
    };
    let Some((reader, writer)) = switch_protocols(framed, answer, state.config.max_frame_bytes)
    else {
        return;
    };
    let conn = state.hub.new_conn_id();
    let run = session::run(
        reader,
        writer,
        conn,
        state.hub.clone(),
        state.session,
        welcome,
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

/// Checks an upgrade request; the `101` answer and the connection's slot, or why not.
fn admit(
    request: &Request,
    state: &AppState,
) -> Result<(Response<()>, ConnectionSlot), Response<BoxBody>> {
    if request.path() != WEBSOCKET_PATH {
        return Err(refusal(ApiError::NoWebSocketHere {
            path: request.path().to_owned(),
            endpoint: WEBSOCKET_PATH,
        }));
    }
    let answer = handshake(request)?;
    check_origin(&request.head().headers, &state.config.allowed_origins).map_err(refusal)?;
    let slot = state
        .connections
        .try_acquire()
        .ok_or_else(|| refusal(ApiError::ConnectionLimit))?;
    Ok((answer, slot))
}

/// Checks the WebSocket handshake headers of an upgrade request (RFC 6455 §4.2.1): the
/// `101 Switching Protocols` answer to send, or the `4xx` refusal.
pub fn handshake(request: &Request) -> Result<Response<()>, Response<BoxBody>> {
    match ws::handshake(request.head()) {
        Ok(mut answer) => Ok(answer.finish().drop_body()),
        Err(error) => {
            telemetry::bad_input("websocket_handshake");
            Err(Response::from(error))
        }
    }
}

/// A connection taken away from HTTP: the reader of the client's frames and the writer of ours.
pub type Upgraded<T> = (FrameReader<ReadHalf<T>>, FrameWriter<WriteHalf<T>>);

/// Takes the socket away from HTTP with the `101` answer from [`handshake`]: a reader of the
/// client's frames (starting with any bytes the HTTP server read past the request) refusing
/// frames and messages over `max_frame_bytes`, and a writer with the answer queued in it, not
/// yet sent. The session writes it together with the welcome, one system call instead of two
/// per connection (and one read fewer for the client); a writer that has nothing to add must
/// flush it at once. `None` if the answer could not be encoded.
pub fn switch_protocols<T>(
    mut framed: Framed<T, h1::Codec>,
    answer: Response<()>,
    max_frame_bytes: usize,
) -> Option<Upgraded<T>>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let (head, ()) = answer.into_parts();
    if let Err(error) =
        std::pin::Pin::new(&mut framed).write(h1::Message::Item((head, BodySize::None)))
    {
        tracing::error!(%error, "could not encode the 101 answer");
        return None;
    }
    let parts = framed.into_parts();
    let (read, write) = tokio::io::split(parts.io);
    let mut writer = FrameWriter::new(write);
    writer.queue_encoded(parts.write_buf.freeze());
    Some((
        FrameReader::new(read, &parts.read_buf, max_frame_bytes),
        writer,
    ))
}

fn refusal(error: ApiError) -> Response<BoxBody> {
    error.error_response().into()
}

/// Writes a refusal and closes, within a few seconds: the connection asked to leave HTTP, so it
/// is not kept alive.
pub async fn refuse<T>(framed: &mut Framed<T, h1::Codec>, refusal: Response<BoxBody>)
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let (mut head, body) = refusal.into_parts();
    head.head_mut().set_connection_type(ConnectionType::Close);
    let body = actix_http::body::to_bytes(body).await.unwrap_or_default();
    let length = BodySize::Sized(body.len() as u64);
    // The connection is closed right after, whether or not the client read the refusal.
    let _ = tokio::time::timeout(HANDSHAKE_WRITE_TIMEOUT, async {
        framed.feed(h1::Message::Item((head, length))).await?;
        framed.feed(h1::Message::Chunk(Some(body))).await?;
        framed.send(h1::Message::Chunk(None)).await
    })
    .await;
}

/// Browsers send `Origin`; when a list is configured, only those origins may connect, and the
/// service's own page (an origin naming the host the request was sent to). Clients that send
/// none (servers, scripts, the viewer) are not browsers and are let through.
fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    if allowed.is_empty()
        || allowed.iter().any(|allowed| origin == allowed.as_str())
        || is_same_origin(origin, headers.get(header::HOST))
    {
        return Ok(());
    }
    telemetry::bad_input("origin_refused");
    Err(ApiError::OriginRefused {
        origin: String::from_utf8_lossy(origin.as_bytes()).into_owned(),
    })
}

/// Whether `origin` (`http://host:port`) names the host the request was sent to: the page
/// served at `/` connecting back to its own service. A page on another site cannot pass this,
/// since the browser sets `Origin` to that site, not to ours.
fn is_same_origin(origin: &HeaderValue, host: Option<&HeaderValue>) -> bool {
    let (Ok(origin), Some(Ok(host))) = (origin.to_str(), host.map(HeaderValue::to_str)) else {
        return false;
    };
    origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .is_some_and(|origin_host| origin_host.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
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
}

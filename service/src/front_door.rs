//! The first request of every plain TCP connection, read here rather than by actix-http.
//!
//! A fan's app opens a connection for one thing: the WebSocket upgrade at `/ws`. Running that
//! request through actix-http's HTTP/1 dispatcher (its buffers, header map, timers and
//! teardown) was the largest part of a connection's cost, a quarter of its instructions
//! (`docs/benchmarks.md`, issue 14). So the first request's head is read here and parsed in
//! place with `httparse`: an upgrade to `/ws` goes straight to [`upgrade::admit`] and
//! [`upgrade::start`], the same checks and the same session actix-http's upgrades get. Anything
//! else (the page, the API, a malformed or oversized request, an upgrade elsewhere) goes to
//! actix-http as if it had read the connection from the start, with the bytes read so far put
//! back in front of it ([`Rewound`]), so it answers exactly as it would have.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::Protocol;
use actix_service::Service;
use actix_web::web;
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::state::AppState;
use crate::upgrade::{self, Headers, UpgradeRequest, WEBSOCKET_PATH};

/// Room made for the first read: a browser's upgrade request is 400–700 bytes.
const FIRST_READ: usize = 1024;

/// A head still incomplete at this size is left to actix-http, which refuses it as it refuses
/// any oversized head.
const MAX_HEAD: usize = 8 * 1024;

/// Headers parsed in place; a request with more is left to actix-http.
const MAX_HEADERS: usize = 32;

/// What the bytes read so far turned out to be.
#[derive(Debug, PartialEq, Eq)]
enum FirstRequest {
    /// A complete `GET /ws` asking for a WebSocket, whose head is this many bytes.
    WebSocket { head_len: usize },
    /// Anything else: actix-http's to answer.
    Other,
    /// Not known yet: read more.
    Incomplete,
}

/// Serves one plain TCP connection: a WebSocket upgrade at `/ws` here, anything else through
/// `http` (actix-http's service for the connection).
pub async fn serve<S>(mut stream: TcpStream, state: web::Data<AppState>, http: Rc<S>)
where
    S: Service<(Rewound<TcpStream>, Protocol, Option<SocketAddr>)>,
    S::Error: std::fmt::Debug,
{
    // Fans' frames are small and must not wait for Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    let deadline = Instant::now() + Duration::from_secs(state.config.request_timeout_secs.max(1));
    let mut head = BytesMut::with_capacity(FIRST_READ);
    loop {
        match tokio::time::timeout_at(deadline, stream.read_buf(&mut head)).await {
            Ok(Ok(0) | Err(_)) => return, // closed or broken: nobody to answer
            Ok(Ok(_)) => {}
            Err(_elapsed) => {
                let _ = stream.write_all(REQUEST_TIMEOUT).await;
                return;
            }
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match classify(&mut request, &head) {
            FirstRequest::WebSocket { head_len } => {
                let upgrade_request = UpgradeRequest {
                    method_is_get: true,
                    path: request.path.map_or("", path_only),
                    headers: &*request.headers,
                };
                match upgrade::admit(&upgrade_request, &state) {
                    Ok((answer, slot)) => {
                        upgrade::start(stream, &head[head_len..], answer, slot, &state);
                    }
                    Err(refusal) => upgrade::refuse(&mut stream, &refusal).await,
                }
                return;
            }
            FirstRequest::Incomplete if head.len() < MAX_HEAD => head.reserve(FIRST_READ),
            FirstRequest::Incomplete | FirstRequest::Other => break,
        }
    }
    let peer = stream.peer_addr().ok();
    let rewound = Rewound::new(head.freeze(), stream);
    if let Err(error) = http.call((rewound, Protocol::Http1, peer)).await {
        tracing::debug!(?error, "HTTP connection ended with an error");
    }
}

/// The answer to a connection that sent no whole request in time, as actix-http gives it.
const REQUEST_TIMEOUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// What `bytes`, the start of a connection, are, parsed into `request`. Decided as early as the
/// bytes allow: a request line that is not `GET /ws` is someone else's before its headers are
/// in.
fn classify<'b>(request: &mut httparse::Request<'_, 'b>, bytes: &'b [u8]) -> FirstRequest {
    let status = request.parse(bytes);
    let not_ours = request.method.is_some_and(|method| method != "GET")
        || request.path.is_some_and(|path| path_only(path) != WEBSOCKET_PATH)
        // HTTP/1.0 cannot upgrade.
        || request.version.is_some_and(|version| version != 1);
    match status {
        _ if not_ours => FirstRequest::Other,
        Ok(httparse::Status::Complete(head_len)) => {
            // Any `Upgrade` header makes it ours: `upgrade::admit` refuses one that does not
            // name websocket, as actix-http's upgrade hook would have had it refused.
            if request.headers.value("upgrade").is_some() {
                FirstRequest::WebSocket { head_len }
            } else {
                // `GET /ws` as a plain request: the app says what it expected instead.
                FirstRequest::Other
            }
        }
        Ok(httparse::Status::Partial) => FirstRequest::Incomplete,
        // Malformed, or more headers than parsed here: actix-http refuses or serves it.
        Err(_) => FirstRequest::Other,
    }
}

/// The path of a request target, without its query.
fn path_only(target: &str) -> &str {
    target.split_once('?').map_or(target, |(path, _)| path)
}

/// A connection with bytes already read from it put back in front: reads return them first.
/// What actix-http gets for a connection whose first bytes were read here.
#[derive(Debug)]
pub struct Rewound<T> {
    read: Bytes,
    io: T,
}

impl<T> Rewound<T> {
    /// `io`, whose next reads return `read` first.
    pub fn new(read: Bytes, io: T) -> Rewound<T> {
        Rewound { read, io }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewound<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.read.is_empty() {
            return Pin::new(&mut self.io).poll_read(cx, buf);
        }
        let n = self.read.len().min(buf.remaining());
        buf.put_slice(&self.read[..n]);
        self.read.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewound<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(bytes: &[u8]) -> FirstRequest {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        super::classify(&mut httparse::Request::new(&mut headers), bytes)
    }

    const UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn an_upgrade_to_the_websocket_path_is_ours_once_its_head_is_complete() {
        for end in 1..UPGRADE.len() {
            assert_eq!(
                classify(&UPGRADE[..end]),
                FirstRequest::Incomplete,
                "{end} bytes"
            );
        }
        let head_len = UPGRADE.len();
        assert_eq!(classify(UPGRADE), FirstRequest::WebSocket { head_len });
        // A first frame sent with the request stays after the head.
        let mut with_frame = UPGRADE.to_vec();
        with_frame.extend_from_slice(&[0x81, 0x80, 1, 2, 3, 4]);
        assert_eq!(classify(&with_frame), FirstRequest::WebSocket { head_len });
        let with_query = b"GET /ws?fan=1 HTTP/1.1\r\nUpgrade: websocket\r\n\r\n";
        assert_eq!(
            classify(with_query),
            FirstRequest::WebSocket {
                head_len: with_query.len()
            }
        );
    }

    #[test]
    fn everything_else_goes_to_http_as_soon_as_the_request_line_says_so() {
        assert_eq!(classify(b"GET / HTTP/1.1\r\nHo"), FirstRequest::Other);
        assert_eq!(classify(b"GET /wss HTTP/1.1\r\n"), FirstRequest::Other);
        assert_eq!(classify(b"POST /ws HTTP/1.1\r\n"), FirstRequest::Other);
        assert_eq!(
            classify(b"GET /api/matches HTTP/1.1\r\n"),
            FirstRequest::Other
        );
        assert_eq!(classify(b"GET /ws HTTP/1.0\r\n\r\n"), FirstRequest::Other);
        // `GET /ws` without asking for an upgrade: the app explains.
        assert_eq!(
            classify(b"GET /ws HTTP/1.1\r\nHost: a\r\n\r\n"),
            FirstRequest::Other
        );
        // Not HTTP at all.
        assert_eq!(classify(b"\x16\x03\x01\x02\x00"), FirstRequest::Other);
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: y\r\n"))
            .collect();
        let crowded = format!("GET /ws HTTP/1.1\r\n{many}\r\n");
        assert_eq!(classify(crowded.as_bytes()), FirstRequest::Other);
    }

    #[tokio::test]
    async fn what_was_read_is_read_again_first() {
        let (client, server) = tokio::io::duplex(64);
        let mut rewound = Rewound::new(Bytes::from_static(b"GET / HT"), server);
        let mut client = client;
        client.write_all(b"TP/1.1\r\n\r\n").await.unwrap();
        let mut read = vec![0; 18];
        rewound.read_exact(&mut read).await.unwrap();
        assert_eq!(read, b"GET / HTTP/1.1\r\n\r\n");
        rewound.write_all(b"ok").await.unwrap();
        let mut answer = [0; 2];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"ok");
    }
}

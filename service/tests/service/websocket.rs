//! The WebSocket layer against a raw TCP client that writes its own bytes: what a client we did
//! not write may do (send its first request together with the handshake, fragment a message,
//! close with its own code) works, and what breaks RFC 6455 gets the right close code.

use std::time::Duration;

use actix_http::ws::{CloseCode, Codec, Frame, Item, Message};
use bytes::{Bytes, BytesMut};
use scoreline_protocol::ServerMessage;
use scoreline_testkit::{PATIENCE, TestApp, http};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::{Decoder, Encoder};

use scoreline_service::telemetry::BAD_INPUTS;

use crate::metric;

/// A client speaking WebSocket byte by byte, with actix-http's codec in client mode (masking).
struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
    codec: Codec,
}

fn handshake(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Reads an HTTP response's head: the head, and the bytes read past it.
async fn response_head(stream: &mut TcpStream) -> (String, BytesMut) {
    let mut buf = BytesMut::new();
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let read = tokio::time::timeout(PATIENCE, stream.read_buf(&mut buf))
            .await
            .expect("no answer to the request")
            .unwrap();
        assert!(read > 0, "closed before answering: {buf:?}");
    };
    let head = String::from_utf8(buf.split_to(head_end).to_vec()).unwrap();
    (head, buf)
}

fn encode(messages: Vec<Message>) -> BytesMut {
    let mut codec = Codec::new().client_mode();
    let mut out = BytesMut::new();
    for message in messages {
        codec.encode(message, &mut out).unwrap();
    }
    out
}

impl RawClient {
    /// Sends the upgrade request for `path` and `then` in one write; returns the status line and
    /// the connection.
    async fn open(app: &TestApp, path: &str, then: &[u8]) -> (String, RawClient) {
        let mut stream = TcpStream::connect(("127.0.0.1", app.port())).await.unwrap();
        let mut request = handshake(path).into_bytes();
        request.extend_from_slice(then);
        stream.write_all(&request).await.unwrap();
        let (head, buf) = response_head(&mut stream).await;
        let status = head.lines().next().unwrap_or_default().to_owned();
        let codec = Codec::new().client_mode().max_size(1 << 20);
        (status, RawClient { stream, buf, codec })
    }

    /// Reads the answer to a handshake already sent on `stream`: a `101`, then the welcome.
    async fn welcomed(mut stream: TcpStream) -> RawClient {
        let (head, buf) = response_head(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let codec = Codec::new().client_mode().max_size(1 << 20);
        let mut client = RawClient { stream, buf, codec };
        assert!(matches!(
            client.message().await,
            ServerMessage::Welcome { .. }
        ));
        client
    }

    async fn upgraded(app: &TestApp, then: &[u8]) -> RawClient {
        let (status, client) = RawClient::open(app, "/ws", then).await;
        assert!(status.starts_with("HTTP/1.1 101"), "{status}");
        client
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next frame, or `None` at the end of the stream.
    async fn frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.codec.decode(&mut self.buf).unwrap() {
                return Some(frame);
            }
            let read = tokio::time::timeout(PATIENCE, self.stream.read_buf(&mut self.buf))
                .await
                .expect("the server said nothing")
                .unwrap();
            if read == 0 {
                return None;
            }
        }
    }

    async fn message(&mut self) -> ServerMessage {
        loop {
            match self.frame().await {
                Some(Frame::Text(text)) => {
                    return ServerMessage::from_json(std::str::from_utf8(&text).unwrap()).unwrap();
                }
                Some(Frame::Ping(_)) => {}
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The close code the server sends, then checks that it also ends the TCP stream.
    async fn close_code(&mut self) -> u16 {
        let code = loop {
            match self.frame().await {
                Some(Frame::Close(reason)) => break reason.map_or(1005, |r| u16::from(r.code)),
                Some(_) => {}
                None => panic!("the connection ended without a close frame"),
            }
        };
        assert!(
            self.frame().await.is_none(),
            "the server keeps the TCP connection open after its close frame"
        );
        code
    }
}

#[tokio::test]
async fn a_request_sent_with_the_handshake_is_answered() {
    let app = TestApp::in_memory().await.unwrap();
    let subscribe = encode(vec![Message::Text(
        r#"{"type":"subscribe","topics":["football"]}"#.into(),
    )]);
    let mut client = RawClient::upgraded(&app, &subscribe).await;
    assert!(matches!(
        client.message().await,
        ServerMessage::Welcome { .. }
    ));
    assert!(matches!(
        client.message().await,
        ServerMessage::Subscribed { .. }
    ));
}

#[tokio::test]
async fn a_fragmented_request_with_a_ping_between_its_fragments_is_joined() {
    let app = TestApp::in_memory().await.unwrap();
    let mut client = RawClient::upgraded(&app, &[]).await;
    assert!(matches!(
        client.message().await,
        ServerMessage::Welcome { .. }
    ));
    let part = |text: &'static str| Bytes::from_static(text.as_bytes());
    let frames = encode(vec![
        Message::Continuation(Item::FirstText(part(r#"{"type":"pi"#))),
        Message::Ping(part("are you there")),
        Message::Continuation(Item::Continue(part(r#"ng","#))),
        Message::Continuation(Item::Last(part(r#""id":42}"#))),
    ]);
    // One byte at a time, as a slow network might deliver them.
    for byte in frames.iter() {
        client.send(&[*byte]).await;
    }
    assert_eq!(
        client.frame().await,
        Some(Frame::Pong(part("are you there")))
    );
    assert!(matches!(
        client.message().await,
        ServerMessage::Pong { id: 42, .. }
    ));
}

#[tokio::test]
async fn the_clients_close_code_is_echoed_and_the_connection_ends() {
    let app = TestApp::in_memory().await.unwrap();
    let mut client = RawClient::upgraded(&app, &[]).await;
    client.message().await;
    client
        .send(&encode(vec![Message::Close(Some(
            CloseCode::Other(4000).into(),
        ))]))
        .await;
    assert_eq!(client.close_code().await, 4000);
}

#[tokio::test]
async fn broken_frames_close_with_the_code_that_names_the_problem() {
    let app = TestApp::in_memory().await.unwrap();

    // Text that is not UTF-8: 1007.
    let mut client = RawClient::upgraded(&app, &[]).await;
    client.message().await;
    let mut codec = Codec::new().client_mode();
    let mut bad_text = BytesMut::new();
    codec
        .encode(
            Message::Binary(Bytes::from_static(b"\xff\xfe")),
            &mut bad_text,
        )
        .unwrap();
    bad_text[0] = 0x81; // FIN + text opcode, same payload.
    client.send(&bad_text).await;
    assert_eq!(client.close_code().await, 1007);
    assert_eq!(
        metric(&app, BAD_INPUTS, r#"kind="invalid_utf8""#).await,
        1.0
    );

    // A frame a client must mask, unmasked: 1002.
    let mut client = RawClient::upgraded(&app, &[]).await;
    client.message().await;
    let mut unmasked = BytesMut::new();
    Codec::new()
        .encode(Message::Text("{}".into()), &mut unmasked)
        .unwrap();
    client.send(&unmasked).await;
    assert_eq!(client.close_code().await, 1002);

    // A continuation with nothing to continue: 1002.
    let mut client = RawClient::upgraded(&app, &[]).await;
    client.message().await;
    let mut stray = encode(vec![Message::Continuation(Item::FirstText(
        Bytes::from_static(b"x"),
    ))]);
    stray[0] = 0x80; // FIN + continuation opcode.
    client.send(&stray).await;
    assert_eq!(client.close_code().await, 1002);
}

#[tokio::test]
async fn upgrades_elsewhere_and_plain_requests_to_the_endpoint_are_refused_clearly() {
    let app = TestApp::in_memory().await.unwrap();
    let (status, mut client) = RawClient::open(&app, "/api/matches", &[]).await;
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");
    let mut body = Vec::new();
    tokio::time::timeout(PATIENCE, client.stream.read_to_end(&mut body))
        .await
        .expect("the refused connection stays open")
        .unwrap();
    let body = [&client.buf[..], &body[..]].concat();
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("connect to /ws"), "{body}");

    let plain = http("GET", &app.http_url("/ws"), vec![], None)
        .await
        .unwrap();
    assert_eq!(plain.status, 400, "{}", plain.body);
    assert!(plain.body.contains("WebSocket"), "{}", plain.body);
}

#[tokio::test]
async fn a_client_that_connects_and_says_nothing_does_not_hold_a_slot_forever() {
    let mut config = TestApp::config(None);
    config.idle_timeout_secs = 1;
    config.heartbeat_secs = 60;
    config.max_connections = 1;
    let app = TestApp::spawn(config).await.unwrap();
    let mut silent = RawClient::upgraded(&app, &[]).await;
    silent.message().await;
    assert_eq!(silent.close_code().await, 1000);
    drop(silent);
    // Its slot is free again once it has gone.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (status, mut next) = RawClient::open(&app, "/ws", &[]).await;
        if status.starts_with("HTTP/1.1 101") {
            assert!(matches!(
                next.message().await,
                ServerMessage::Welcome { .. }
            ));
            break;
        }
        assert!(status.starts_with("HTTP/1.1 503"), "{status}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was never freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_handshake_that_arrives_a_few_bytes_at_a_time_is_answered() {
    let app = TestApp::in_memory().await.unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", app.port())).await.unwrap();
    stream.set_nodelay(true).unwrap();
    for piece in handshake("/ws").as_bytes().chunks(7) {
        stream.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    RawClient::welcomed(stream).await;
}

#[tokio::test]
async fn an_upgrade_after_other_requests_on_the_same_connection_is_answered() {
    let app = TestApp::in_memory().await.unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", app.port())).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let (head, mut buf) = response_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .expect("a length")
        .trim()
        .parse()
        .unwrap();
    while buf.len() < length {
        stream.read_buf(&mut buf).await.unwrap();
    }
    assert_eq!(buf.len(), length, "nothing past the body");
    stream.write_all(handshake("/ws").as_bytes()).await.unwrap();
    RawClient::welcomed(stream).await;
}

#[tokio::test]
async fn a_handshake_of_another_version_is_told_which_one_is_spoken() {
    let app = TestApp::in_memory().await.unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", app.port())).await.unwrap();
    let request = handshake("/ws").replace("Version: 13", "Version: 8");
    stream.write_all(request.as_bytes()).await.unwrap();
    let (head, mut body) = response_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 426"), "{head}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("sec-websocket-version: 13"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    tokio::time::timeout(PATIENCE, async {
        while stream.read_buf(&mut body).await.unwrap() > 0 {}
    })
    .await
    .expect("the connection is closed after the refusal");
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("upgrade_required"), "{body}");
    assert!(body.contains("Sec-WebSocket-Version 13"), "{body}");
    assert_eq!(
        metric(&app, BAD_INPUTS, r#"kind="websocket_handshake""#).await,
        1.0
    );
}

#[tokio::test]
async fn a_request_that_never_completes_is_answered_408_and_closed() {
    let mut config = TestApp::config(None);
    config.request_timeout_secs = 1;
    let app = TestApp::spawn(config).await.unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", app.port())).await.unwrap();
    stream
        .write_all(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgr")
        .await
        .unwrap();
    let (head, _) = response_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    let mut rest = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest))
        .await
        .expect("closed after the 408")
        .unwrap();
}

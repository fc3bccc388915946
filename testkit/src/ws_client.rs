//! A typed WebSocket client for tests.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use scoreline_protocol::{ClientMessage, ServerMessage};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::PATIENCE;

/// A client that sends [`ClientMessage`]s and receives [`ServerMessage`]s, failing the test with a
/// clear message when the server sends something else or nothing in time.
pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What a connection ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The close code, if the server sent a close frame.
    pub code: Option<u16>,
    /// The close reason.
    pub reason: String,
}

impl WsClient {
    /// Connects to a `ws://` URL.
    pub async fn connect(url: &str) -> anyhow::Result<WsClient> {
        let (stream, _response) = tokio::time::timeout(PATIENCE, connect_async(url))
            .await
            .context("connect timed out")?
            .with_context(|| format!("connecting to {url}"))?;
        Ok(WsClient { stream })
    }

    /// Sends a typed message.
    pub async fn send(&mut self, message: &ClientMessage) -> anyhow::Result<()> {
        self.send_raw(Message::text(message.to_json())).await
    }

    /// Sends any frame, well-formed or not.
    pub async fn send_raw(&mut self, frame: Message) -> anyhow::Result<()> {
        self.stream.send(frame).await.context("sending a frame")
    }

    /// Receives the next server message, skipping pings; fails after [`PATIENCE`].
    pub async fn recv(&mut self) -> anyhow::Result<ServerMessage> {
        self.recv_within(PATIENCE).await
    }

    /// Receives the next server message within `patience`.
    pub async fn recv_within(&mut self, patience: Duration) -> anyhow::Result<ServerMessage> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .map_err(|_| anyhow!("no message within {patience:?}"))?
                .ok_or_else(|| anyhow!("connection ended"))?
                .context("reading a frame")?;
            match frame {
                Message::Text(text) => {
                    return ServerMessage::from_json(&text)
                        .with_context(|| format!("server sent an unparseable message: {text}"));
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                Message::Close(frame) => bail!("connection closed: {frame:?}"),
                Message::Binary(_) => bail!("server sent a binary frame"),
            }
        }
    }

    /// Receives messages until `pick` returns `Some`, failing after [`PATIENCE`] in all.
    pub async fn recv_until<T>(
        &mut self,
        mut pick: impl FnMut(ServerMessage) -> Option<T>,
    ) -> anyhow::Result<T> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if let Some(found) = pick(self.recv_within(left).await?) {
                return Ok(found);
            }
        }
    }

    /// Waits for the server to close the connection and returns its close code and reason;
    /// messages before the close are skipped.
    pub async fn closed(&mut self) -> anyhow::Result<Closed> {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .map_err(|_| anyhow!("connection not closed within {PATIENCE:?}"))?;
            match frame {
                Some(Ok(Message::Close(frame))) => return Ok(close_of(frame)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => {
                    return Ok(Closed {
                        code: None,
                        reason: String::new(),
                    });
                }
            }
        }
    }

    /// Closes the connection politely.
    pub async fn close(mut self) -> anyhow::Result<()> {
        self.stream.close(None).await.context("closing")
    }
}

fn close_of(frame: Option<CloseFrame>) -> Closed {
    match frame {
        Some(frame) => Closed {
            code: Some(frame.code.into()),
            reason: frame.reason.to_string(),
        },
        None => Closed {
            code: None,
            reason: String::new(),
        },
    }
}

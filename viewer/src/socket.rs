//! The socket adapter: the one place that touches the network. It turns `ewebsock` events into
//! calls on the [`Session`] and its [`Action`]s into frames, and holds
//! no decision of its own.

use std::sync::Arc;
use std::time::Duration;

use ewebsock::{Options, WsEvent, WsMessage, WsReceiver, WsSender};
use scoreline_protocol::ClientMessage;

use crate::session::{Action, Session};

/// Largest frame accepted from the server. A `subscribed` reply is bounded by the server's
/// `max_snapshots`; this only stops a broken server from exhausting memory.
pub const MAX_INCOMING_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// How long the socket thread blocks on a read before it checks for frames to send. Longer means
/// fewer idle wake-ups of that thread; shorter means requests leave sooner. 50 ms is invisible to
/// a fan and keeps an idle viewer at 20 cheap wake-ups a second on that thread (the UI thread
/// itself sleeps).
pub const READ_TIMEOUT: Duration = Duration::from_millis(50);

/// What the socket reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketEvent {
    /// The connection is open; requests may be sent.
    Opened,
    /// A text frame.
    Text(String),
    /// A binary frame of this many bytes (the protocol has none).
    Binary(usize),
    /// The connection failed or closed, with the reason.
    Closed(String),
}

/// One WebSocket connection. Dropping it closes the connection.
pub struct Socket {
    sender: WsSender,
    receiver: WsReceiver,
}

impl Socket {
    /// Starts connecting to `url`; `wake_up` is called on every event so the UI thread can sleep
    /// until something arrives.
    pub fn connect(
        url: &str,
        wake_up: impl Fn() + Send + Sync + 'static,
    ) -> Result<Socket, String> {
        let options = Options {
            max_incoming_frame_size: MAX_INCOMING_FRAME_BYTES,
            read_timeout: Some(READ_TIMEOUT),
            ..Options::default()
        };
        let (sender, receiver) = ewebsock::connect_with_wakeup(url, options, wake_up)?;
        Ok(Socket { sender, receiver })
    }

    /// Sends one request as a text frame.
    pub fn send(&mut self, message: &ClientMessage) {
        self.sender.send(WsMessage::Text(message.to_json()));
    }

    /// The next event, if one is waiting.
    pub fn try_recv(&self) -> Option<SocketEvent> {
        loop {
            let event = self.receiver.try_recv()?;
            return Some(match event {
                WsEvent::Opened => SocketEvent::Opened,
                WsEvent::Message(WsMessage::Text(text)) => SocketEvent::Text(text),
                WsEvent::Message(WsMessage::Binary(bytes)) => SocketEvent::Binary(bytes.len()),
                // Transport-level pings are answered by tungstenite itself.
                WsEvent::Message(WsMessage::Ping(_) | WsMessage::Pong(_)) => continue,
                WsEvent::Message(WsMessage::Unknown(text)) => SocketEvent::Binary(text.len()),
                WsEvent::Error(error) => SocketEvent::Closed(error),
                WsEvent::Closed => SocketEvent::Closed("the server closed the connection".into()),
            });
        }
    }
}

/// Joins a [`Session`] to at most one [`Socket`]: carries out the session's actions and feeds it
/// what the socket reports. The app calls [`Driver::pump`] once per frame; the integration test
/// drives the same code against the real service.
pub struct Driver {
    socket: Option<Socket>,
    wake_up: Arc<dyn Fn() + Send + Sync>,
}

impl Driver {
    /// A driver whose sockets call `wake_up` on every event.
    pub fn new(wake_up: impl Fn() + Send + Sync + 'static) -> Driver {
        Driver {
            socket: None,
            wake_up: Arc::new(wake_up),
        }
    }

    /// Feeds every waiting socket event to the session, answering as it goes (a `subscribed`
    /// may need repairs sent before later frames are read), then lets time move on.
    pub fn pump(&mut self, session: &mut Session, now_ms: u64) {
        self.perform(session, now_ms);
        while let Some(event) = self.socket.as_ref().and_then(Socket::try_recv) {
            match event {
                SocketEvent::Opened => session.opened(now_ms),
                SocketEvent::Text(text) => session.receive_text(&text, now_ms),
                SocketEvent::Binary(len_bytes) => session.receive_binary(len_bytes),
                SocketEvent::Closed(reason) => {
                    self.socket = None;
                    session.lost(now_ms, &reason);
                }
            }
            self.perform(session, now_ms);
        }
        session.tick(now_ms);
        self.perform(session, now_ms);
    }

    /// Carries out what the session asked for.
    pub fn perform(&mut self, session: &mut Session, now_ms: u64) {
        // A failed connect queues new actions (the retry schedule); loop until none are left.
        loop {
            let actions = session.take_actions();
            if actions.is_empty() {
                return;
            }
            for action in actions {
                match action {
                    Action::Connect(url) => {
                        self.socket = None;
                        let wake_up = Arc::clone(&self.wake_up);
                        match Socket::connect(&url, move || wake_up()) {
                            Ok(socket) => self.socket = Some(socket),
                            Err(error) => session.lost(now_ms, &error),
                        }
                    }
                    Action::Disconnect => self.socket = None,
                    Action::Send(message) => match &mut self.socket {
                        Some(socket) => socket.send(&message),
                        None => tracing::debug!(?message, "not connected; request dropped"),
                    },
                }
            }
        }
    }
}

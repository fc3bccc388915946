//! WebSocket framing on a connection the HTTP server has handed over after the upgrade.
//!
//! Why not actix-ws: it keeps each WebSocket inside actix-http's connection dispatcher, which
//! holds two 8 KiB buffers and a 32-slot channel for the life of the connection and passes every
//! outgoing frame through that channel, one frame per hop. With 10,000 idle fans that was 17.7 KB
//! of memory each, and at a million frames a second a large share of the CPU
//! (`docs/benchmarks.md`). Here the upgrade hands over the socket itself ([`crate::upgrade`]):
//! the [`FrameReader`] keeps a buffer only as large as the last request, and the [`FrameWriter`]
//! writes a whole queue of frames with one system call.
//!
//! Server frames are not masked (RFC 6455 §5.1), so a text frame's bytes are the same for every
//! client: a [`TextFrame`] is encoded once, header and payload together, by whoever builds the
//! message (the hub, for an event going to 10,000 fans), and each session queues a shared
//! reference to it. A session with one frame to send (a fan between two events) writes those
//! shared bytes as they are: nothing is encoded or copied per connection. A backlog of several
//! frames is copied into one buffer and written at once; on loopback a vectored write of 32
//! small frames took more kernel time than copying them (`docs/benchmarks.md`). Client frames
//! and the server's control frames go through actix-http's [`Codec`], the one actix-ws uses too.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use actix_http::ws::{CloseCode, CloseReason, Codec, Frame, Item, Message, ProtocolError};
use bytes::{Buf, Bytes, BytesMut};
use bytestring::ByteString;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::{Decoder, Encoder};

/// Room made in the read buffer before each read: client requests are small.
const READ_CHUNK: usize = 512;

/// A buffer that grew past this is released once empty, so a connection that once received a
/// burst (or sent a big request) does not keep the memory while idle.
const RETAINED_BUFFER: usize = 4096;

/// Longest header of a server frame: 2 bytes, then a 64-bit length (RFC 6455 §5.2).
const MAX_HEADER: usize = 10;

/// A text frame exactly as the server sends it, header and payload in one shared buffer. Cloning
/// it is a reference count, so one frame built for an event is written to every recipient.
///
/// It dereferences to its text, which is what tests and logs look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextFrame {
    /// The frame on the wire: FIN + text opcode, the length, the payload (servers do not mask).
    wire: Bytes,
    /// Where the payload starts in `wire`.
    header_len: u8,
}

impl TextFrame {
    /// Encodes `text` as one final, unmasked text frame.
    pub fn new(text: &str) -> TextFrame {
        let mut wire = BytesMut::with_capacity(MAX_HEADER + text.len());
        wire.extend_from_slice(&[0x80 | 0x1]); // FIN, opcode 1 (text)
        let len = text.len();
        if len < 126 {
            wire.extend_from_slice(&[len as u8]);
        } else if let Ok(len) = u16::try_from(len) {
            wire.extend_from_slice(&[126]);
            wire.extend_from_slice(&len.to_be_bytes());
        } else {
            wire.extend_from_slice(&[127]);
            wire.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let header_len = wire.len() as u8;
        wire.extend_from_slice(text.as_bytes());
        TextFrame {
            wire: wire.freeze(),
            header_len,
        }
    }

    /// The bytes to write.
    pub fn wire(&self) -> &Bytes {
        &self.wire
    }

    /// The message.
    pub fn as_str(&self) -> &str {
        // Built from a `str` in `new`, so this is always text: an empty string here would only
        // ever show a bug, never serve one.
        std::str::from_utf8(&self.wire[usize::from(self.header_len)..]).unwrap_or_default()
    }
}

impl std::ops::Deref for TextFrame {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for TextFrame {
    fn from(text: &str) -> TextFrame {
        TextFrame::new(text)
    }
}

impl From<String> for TextFrame {
    fn from(text: String) -> TextFrame {
        TextFrame::new(&text)
    }
}

impl From<ByteString> for TextFrame {
    fn from(text: ByteString) -> TextFrame {
        TextFrame::new(&text)
    }
}

/// A complete message from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A text message, fragments joined, checked to be UTF-8.
    Text(ByteString),
    /// A binary message, fragments joined. Scoreline's protocol has none (a session closes with
    /// 1003 on one); the bytes are kept for the conformance echo server, at no cost for a frame
    /// that arrives whole.
    Binary(Bytes),
    /// A ping, to be answered with this payload.
    Ping(Bytes),
    /// A pong.
    Pong,
    /// The client starts the closing handshake.
    Close(Option<CloseReason>),
}

/// Why a connection stopped yielding messages.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The client closed the TCP connection without a close frame.
    #[error("the client closed the connection")]
    Eof,
    /// The connection broke (reset, timed out...).
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
    /// A frame, or the fragments of one message, exceed the size limit.
    #[error("message larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// A text message that is not UTF-8.
    #[error("text message is not valid UTF-8")]
    NotUtf8,
    /// Frames that break RFC 6455 (unmasked, bad opcode, stray continuation...).
    #[error("WebSocket protocol error: {}", describe(.0))]
    Protocol(ProtocolError),
}

impl ReadError {
    /// Whether the client is simply gone (not bad input).
    pub fn is_disconnect(&self) -> bool {
        matches!(self, ReadError::Eof | ReadError::Io(_))
    }

    /// The close frame that answers this error, or `None` when the connection itself is gone
    /// (reset, or closed without a close frame) and there is nobody to answer.
    pub fn close_reason(&self) -> Option<CloseReason> {
        match self {
            ReadError::Eof | ReadError::Io(_) => None,
            ReadError::TooLarge { limit } => Some(reason(
                CloseCode::Size,
                &format!("message too large: the limit is {limit} bytes"),
            )),
            ReadError::NotUtf8 => Some(reason(CloseCode::Invalid, "text is not valid UTF-8")),
            // At most 105 bytes: a close reason must fit in a control frame (123 bytes).
            ReadError::Protocol(_) => Some(reason(CloseCode::Protocol, &self.to_string())),
        }
    }

    fn from_codec(error: ProtocolError, limit: usize) -> ReadError {
        match error {
            ProtocolError::Overflow => ReadError::TooLarge { limit },
            // Decoding does no I/O: the codec reports non-zero reserved bits (RFC 6455 §5.2) as
            // an I/O error, and that is the client breaking the protocol, answered with 1002,
            // not the connection breaking.
            other => ReadError::Protocol(other),
        }
    }
}

/// Joins fragmented messages (RFC 6455 §5.4) and applies the size limit to the whole message.
/// Control frames may arrive between fragments and pass straight through.
#[derive(Debug)]
pub struct Assembler {
    max_bytes: usize,
    /// The message being joined, if any.
    partial: Option<Partial>,
}

/// The fragments of a message received so far.
#[derive(Debug)]
struct Partial {
    bytes: BytesMut,
    /// A text message is checked to be UTF-8 as each fragment arrives, so a client sending
    /// invalid text is closed at once (RFC 6455 §8.1 "fail fast") rather than after the rest.
    is_text: bool,
    /// How far `bytes` is known to be UTF-8; the rest is a character cut between fragments.
    valid_up_to: usize,
}

impl Assembler {
    /// An assembler refusing messages over `max_bytes`.
    pub fn new(max_bytes: usize) -> Assembler {
        Assembler {
            max_bytes,
            partial: None,
        }
    }

    /// Takes one decoded frame; yields a message when the frame completes one. The codec has
    /// already refused continuations out of order.
    pub fn push(&mut self, frame: Frame) -> Result<Option<Incoming>, ReadError> {
        match frame {
            Frame::Text(bytes) => text(bytes).map(Some),
            Frame::Binary(bytes) => Ok(Some(Incoming::Binary(bytes))),
            Frame::Continuation(Item::FirstText(bytes)) => self.start(&bytes, true),
            Frame::Continuation(Item::FirstBinary(bytes)) => self.start(&bytes, false),
            Frame::Continuation(Item::Continue(bytes)) => {
                self.append(&bytes)?;
                Ok(None)
            }
            Frame::Continuation(Item::Last(bytes)) => {
                self.append(&bytes)?;
                match self.partial.take() {
                    Some(Partial {
                        bytes,
                        is_text: true,
                        ..
                    }) => text(bytes.freeze()).map(Some),
                    Some(Partial { bytes, .. }) => Ok(Some(Incoming::Binary(bytes.freeze()))),
                    // The codec yields `Last` only after a first fragment.
                    None => Err(ReadError::Protocol(ProtocolError::ContinuationNotStarted)),
                }
            }
            Frame::Ping(payload) => Ok(Some(Incoming::Ping(payload))),
            Frame::Pong(_) => Ok(Some(Incoming::Pong)),
            Frame::Close(reason) => Ok(Some(Incoming::Close(reason))),
        }
    }

    fn start(&mut self, bytes: &[u8], is_text: bool) -> Result<Option<Incoming>, ReadError> {
        self.partial = Some(Partial {
            bytes: BytesMut::new(),
            is_text,
            valid_up_to: 0,
        });
        self.append(bytes)?;
        Ok(None)
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), ReadError> {
        let Some(partial) = &mut self.partial else {
            return Err(ReadError::Protocol(ProtocolError::ContinuationNotStarted));
        };
        if partial.bytes.len() + bytes.len() > self.max_bytes {
            self.partial = None;
            return Err(ReadError::TooLarge {
                limit: self.max_bytes,
            });
        }
        partial.bytes.extend_from_slice(bytes);
        if partial.is_text {
            // Only the new bytes (and a character cut at the previous boundary) are checked.
            match std::str::from_utf8(&partial.bytes[partial.valid_up_to..]) {
                Ok(_) => partial.valid_up_to = partial.bytes.len(),
                // An incomplete character at the end may be completed by the next fragment.
                Err(error) if error.error_len().is_none() => {
                    partial.valid_up_to += error.valid_up_to();
                }
                Err(_) => {
                    self.partial = None;
                    return Err(ReadError::NotUtf8);
                }
            }
        }
        Ok(())
    }
}

/// What a protocol error means, in words a client developer can act on: the codec reuses two of
/// its variants for other faults (it reports reserved bits as an I/O error and a bad close frame
/// as a bad opcode; unknown opcodes have their own variant).
fn describe(error: &ProtocolError) -> std::borrow::Cow<'static, str> {
    match error {
        ProtocolError::Io(_) => "reserved bits set without an extension".into(),
        ProtocolError::BadOpCode => {
            "invalid close frame (a code that may not be sent, or a reason that is not UTF-8)"
                .into()
        }
        other => other.to_string().into(),
    }
}

/// A close reason with a description.
pub fn reason(code: CloseCode, description: &str) -> CloseReason {
    CloseReason {
        code,
        description: Some(description.to_owned()),
    }
}

/// The close to answer a client's close frame with: its own code, as RFC 6455 §5.5.1 asks, or
/// 1000 when it sent none. The codec has already refused codes that may not be sent (§7.4).
pub fn echo_close(code: Option<CloseCode>) -> CloseReason {
    let code = code.unwrap_or(CloseCode::Normal);
    let sendable = matches!(u16::from(code), 1000..=1003 | 1007..=1014 | 3000..=4999);
    if sendable {
        code.into()
    } else {
        reason(CloseCode::Protocol, "invalid close code")
    }
}

/// The closing handshake: sends the close frame after whatever is queued, ends the sending
/// direction (the server closes TCP first, RFC 6455 §7.1.1), and reads until the client closes
/// too, all within `grace`. A client that stopped reading never gets the frame; its connection
/// is dropped when the grace runs out.
pub async fn close<R, W>(
    reader: &mut FrameReader<R>,
    writer: &mut FrameWriter<W>,
    close: CloseReason,
    grace: Duration,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    writer.queue_close(Some(close));
    // Running out of grace only means the client did not finish its side; the connection is
    // dropped either way.
    let _ = tokio::time::timeout(grace, async {
        if writer.flush().await.is_ok() {
            // A failed shutdown means the peer is gone; draining will notice at once.
            let _ = writer.shutdown().await;
            reader.drain().await;
        }
    })
    .await;
}

fn text(bytes: Bytes) -> Result<Incoming, ReadError> {
    ByteString::try_from(bytes)
        .map(Incoming::Text)
        .map_err(|_| ReadError::NotUtf8)
}

/// The pure part of [`FrameReader`]: client messages out of the bytes received so far, with no
/// I/O, so tests and the fuzz targets (`fuzz/`) drive it with plain buffers.
#[derive(Debug)]
pub struct MessageDecoder {
    codec: Codec,
    assembler: Assembler,
    max_bytes: usize,
}

impl MessageDecoder {
    /// A decoder of a client's frames (masked, as RFC 6455 requires of clients), refusing frames
    /// and messages over `max_bytes`.
    pub fn new(max_bytes: usize) -> MessageDecoder {
        MessageDecoder {
            codec: Codec::new().max_size(max_bytes),
            assembler: Assembler::new(max_bytes),
            max_bytes,
        }
    }

    /// The next complete message in `buf`, consuming its frames; `None` when `buf` holds only
    /// part of one (what was consumed stays joined here). After an error the connection is to
    /// be closed: the stream cannot be trusted past it.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Incoming>, ReadError> {
        while let Some(frame) = self
            .codec
            .decode(buf)
            .map_err(|error| ReadError::from_codec(error, self.max_bytes))?
        {
            if let Some(message) = self.assembler.push(frame)? {
                return Ok(Some(message));
            }
        }
        Ok(None)
    }
}

/// Reads the client's messages from the receiving half of a connection.
#[derive(Debug)]
pub struct FrameReader<R> {
    io: R,
    buf: BytesMut,
    decoder: MessageDecoder,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader on `io`, starting with bytes the HTTP server already read past the upgrade
    /// request, refusing frames and messages over `max_bytes`.
    pub fn new(io: R, already_read: &[u8], max_bytes: usize) -> FrameReader<R> {
        FrameReader {
            io,
            buf: BytesMut::from(already_read),
            decoder: MessageDecoder::new(max_bytes),
        }
    }

    /// The next message. Cancel-safe: bytes read stay buffered and a half-joined message stays
    /// in the assembler, so this can sit in a `select!` beside other work.
    pub async fn next(&mut self) -> Result<Incoming, ReadError> {
        loop {
            if let Some(message) = self.decoder.decode(&mut self.buf)? {
                if self.buf.is_empty() && self.buf.capacity() > RETAINED_BUFFER {
                    self.buf = BytesMut::new();
                }
                return Ok(message);
            }
            if self.buf.capacity() - self.buf.len() < READ_CHUNK / 2 {
                self.buf.reserve(READ_CHUNK);
            }
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return Err(ReadError::Eof);
            }
        }
    }

    /// Reads and discards until the client closes or breaks the connection: after sending a
    /// close frame, so the socket is not closed under unread data (which would make the kernel
    /// send a reset, and the client might lose the close frame).
    pub async fn drain(&mut self) {
        loop {
            self.buf.clear();
            self.buf.reserve(READ_CHUNK);
            match self.io.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

/// Writes frames on the sending half of a connection: queue any number, then [`flush`] them
/// together.
///
/// [`flush`]: FrameWriter::flush
#[derive(Debug)]
pub struct FrameWriter<W> {
    io: W,
    /// Whole frames waiting, oldest first; the first may be partly written already. Text frames
    /// are shared with every other recipient; control frames are encoded here.
    queued: FrameQueue,
    /// Bytes in `queued`.
    pending: usize,
    /// Encodes the control frames (and the echo server's binary frames).
    codec: Codec,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    /// A writer on `io`.
    pub fn new(io: W) -> FrameWriter<W> {
        FrameWriter {
            io,
            queued: FrameQueue::Empty,
            pending: 0,
            codec: Codec::new(),
        }
    }

    /// Queues an encoded text frame behind those already queued.
    pub fn queue_text(&mut self, frame: TextFrame) {
        self.queue_wire(frame.wire);
    }

    /// Encodes a binary frame behind those already queued (the service itself sends none; the
    /// conformance echo server does).
    pub fn queue_binary(&mut self, bytes: Bytes) {
        self.queue(Message::Binary(bytes));
    }

    /// Encodes a ping.
    pub fn queue_ping(&mut self) {
        self.queue(Message::Ping(Bytes::new()));
    }

    /// Encodes the answer to a ping.
    pub fn queue_pong(&mut self, payload: Bytes) {
        self.queue(Message::Pong(payload));
    }

    /// Encodes a close frame.
    pub fn queue_close(&mut self, reason: Option<CloseReason>) {
        self.queue(Message::Close(reason));
    }

    fn queue(&mut self, message: Message) {
        let mut wire = BytesMut::new();
        // The server codec fails only on continuation frames, which are never sent.
        if let Err(error) = self.codec.encode(message, &mut wire) {
            tracing::error!(%error, "could not encode a WebSocket frame");
            return;
        }
        self.queue_wire(wire.freeze());
    }

    /// Queues bytes that are already on-the-wire form behind those queued: the handshake's `101`
    /// answer, so it leaves with the first frames.
    pub fn queue_encoded(&mut self, bytes: Bytes) {
        if !bytes.is_empty() {
            self.queue_wire(bytes);
        }
    }

    fn queue_wire(&mut self, wire: Bytes) {
        self.pending += wire.len();
        self.queued.push(wire);
    }

    /// Bytes queued and not yet written.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Writes everything queued. Cancel-safe: whatever was not written yet stays queued, in
    /// order, so frames are never cut in half by a `select!` that gives up on a slow client.
    pub async fn flush(&mut self) -> io::Result<()> {
        if let FrameQueue::Many(_) = self.queued {
            // Several frames (a fan catching up, or a ping behind an event): one buffer, one
            // write. A partly written first frame keeps its place at the front.
            let mut joined = BytesMut::with_capacity(self.pending);
            while let Some(wire) = self.queued.pop_front() {
                joined.extend_from_slice(&wire);
            }
            self.queued.push(joined.freeze());
        }
        while let Some(wire) = self.queued.front_mut() {
            let written = self.io.write(wire).await?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.consume(written);
        }
        self.io.flush().await?;
        Ok(())
    }

    /// Drops what a write took from the front of the queue.
    fn consume(&mut self, mut written: usize) {
        self.pending -= written;
        while let Some(front) = self.queued.front_mut() {
            if written < front.len() {
                front.advance(written);
                return;
            }
            written -= front.len();
            self.queued.pop_front();
        }
    }

    /// Ends the sending direction (TCP FIN, or TLS close-notify then FIN).
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.io.shutdown().await
    }
}

/// The frames a [`FrameWriter`] has waiting. Nearly always none or one (a fan gets one event per
/// wake-up), so those take no memory of their own; a backlog gets a queue that is freed as soon
/// as it is written, so an idle connection holds no buffer at all.
#[derive(Debug, Default)]
enum FrameQueue {
    /// Nothing waiting.
    #[default]
    Empty,
    /// One frame.
    One(Bytes),
    /// Two or more, oldest first.
    Many(VecDeque<Bytes>),
}

impl FrameQueue {
    fn push(&mut self, wire: Bytes) {
        *self = match std::mem::take(self) {
            FrameQueue::Empty => FrameQueue::One(wire),
            FrameQueue::One(first) => FrameQueue::Many(VecDeque::from([first, wire])),
            FrameQueue::Many(mut many) => {
                many.push_back(wire);
                FrameQueue::Many(many)
            }
        };
    }

    fn front_mut(&mut self) -> Option<&mut Bytes> {
        match self {
            FrameQueue::Empty => None,
            FrameQueue::One(only) => Some(only),
            FrameQueue::Many(many) => many.front_mut(),
        }
    }

    fn pop_front(&mut self) -> Option<Bytes> {
        match std::mem::take(self) {
            FrameQueue::Empty => None,
            FrameQueue::One(only) => Some(only),
            FrameQueue::Many(mut many) => {
                let front = many.pop_front();
                if !many.is_empty() {
                    *self = FrameQueue::Many(many);
                }
                front
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;

    use actix_http::ws::CloseCode;
    use tokio::io::duplex;

    use super::*;

    /// Encodes frames as a client would send them (masked).
    fn client_frames(messages: Vec<Message>) -> BytesMut {
        let mut codec = Codec::new().client_mode();
        let mut out = BytesMut::new();
        for message in messages {
            codec.encode(message, &mut out).unwrap();
        }
        out
    }

    fn first_text(text: &str) -> Message {
        Message::Continuation(Item::FirstText(Bytes::copy_from_slice(text.as_bytes())))
    }

    fn more(text: &str, last: bool) -> Message {
        let bytes = Bytes::copy_from_slice(text.as_bytes());
        Message::Continuation(if last {
            Item::Last(bytes)
        } else {
            Item::Continue(bytes)
        })
    }

    #[test]
    fn fragments_are_joined_and_control_frames_pass_between_them() {
        let mut assembler = Assembler::new(100);
        assert_eq!(
            assembler
                .push(Frame::Continuation(Item::FirstText("{\"ty".into())))
                .unwrap(),
            None
        );
        assert_eq!(
            assembler
                .push(Frame::Ping(Bytes::from_static(b"p")))
                .unwrap(),
            Some(Incoming::Ping(Bytes::from_static(b"p")))
        );
        assert_eq!(
            assembler
                .push(Frame::Continuation(Item::Continue("pe\":".into())))
                .unwrap(),
            None
        );
        assert_eq!(
            assembler
                .push(Frame::Continuation(Item::Last("1}".into())))
                .unwrap(),
            Some(Incoming::Text("{\"type\":1}".into()))
        );
    }

    #[test]
    fn fragmented_text_fails_on_the_fragment_that_breaks_utf8_and_a_split_character_is_fine() {
        // "é" is C3 A9: cut between two fragments it is still valid text.
        let mut assembler = Assembler::new(100);
        let first = Bytes::from_static(b"caf\xc3");
        assert_eq!(
            assembler
                .push(Frame::Continuation(Item::FirstText(first)))
                .unwrap(),
            None
        );
        let last = Bytes::from_static(b"\xa9!");
        assert_eq!(
            assembler
                .push(Frame::Continuation(Item::Last(last)))
                .unwrap(),
            Some(Incoming::Text("café!".into()))
        );

        // 0xF4 0x90 starts a code point above U+10FFFF: refused at once, not after the rest.
        let first = Bytes::from_static(b"ok\xf4");
        assembler
            .push(Frame::Continuation(Item::FirstText(first)))
            .unwrap();
        let error = assembler
            .push(Frame::Continuation(Item::Continue(Bytes::from_static(
                b"\x90",
            ))))
            .unwrap_err();
        assert!(matches!(error, ReadError::NotUtf8), "{error}");

        // A message that ends inside a character is not text either.
        let first = Bytes::from_static(b"ok");
        assembler
            .push(Frame::Continuation(Item::FirstText(first)))
            .unwrap();
        let last = Bytes::from_static(b"\xc3");
        let error = assembler
            .push(Frame::Continuation(Item::Last(last)))
            .unwrap_err();
        assert!(matches!(error, ReadError::NotUtf8), "{error}");
    }

    #[test]
    fn binary_fragments_are_joined_and_stray_continuations_refused() {
        let mut assembler = Assembler::new(100);
        let first = Bytes::from_static(b"\x00\xff");
        assembler
            .push(Frame::Continuation(Item::FirstBinary(first)))
            .unwrap();
        let last = Bytes::from_static(b"\xfe");
        assert_eq!(
            assembler
                .push(Frame::Continuation(Item::Last(last)))
                .unwrap(),
            Some(Incoming::Binary(Bytes::from_static(b"\x00\xff\xfe")))
        );
        let error = assembler
            .push(Frame::Continuation(Item::Last(Bytes::new())))
            .unwrap_err();
        assert!(matches!(error, ReadError::Protocol(_)), "{error}");
    }

    #[test]
    fn a_fragmented_message_over_the_limit_is_refused() {
        let mut assembler = Assembler::new(8);
        assembler
            .push(Frame::Continuation(Item::FirstText("12345".into())))
            .unwrap();
        let error = assembler
            .push(Frame::Continuation(Item::Continue("6789".into())))
            .unwrap_err();
        assert!(matches!(error, ReadError::TooLarge { limit: 8 }), "{error}");
    }

    #[test]
    fn a_client_close_is_echoed_unless_its_code_may_not_be_sent() {
        assert_eq!(echo_close(None).code, CloseCode::Normal);
        assert_eq!(echo_close(Some(CloseCode::Away)).code, CloseCode::Away);
        assert_eq!(
            echo_close(Some(CloseCode::Other(4000))).code,
            CloseCode::Other(4000)
        );
        for reserved in [999, 1004, 1005, 1006, 1015, 2000] {
            let echoed = echo_close(Some(CloseCode::from(reserved)));
            assert_eq!(echoed.code, CloseCode::Protocol, "{reserved}");
        }
    }

    #[test]
    fn text_that_is_not_utf8_is_refused() {
        let mut assembler = Assembler::new(8);
        let error = assembler
            .push(Frame::Text(Bytes::from_static(b"\xff\xfe")))
            .unwrap_err();
        assert!(matches!(error, ReadError::NotUtf8), "{error}");
    }

    #[tokio::test]
    async fn the_reader_yields_messages_across_reads_and_bytes_read_before_it_started() {
        let wire = client_frames(vec![
            Message::Text("hello".into()),
            first_text("wor"),
            more("ld", true),
            Message::Close(Some(CloseCode::Normal.into())),
        ]);
        // The first 3 bytes came with the upgrade request; the rest trickles in byte by byte.
        let (mut client, server) = duplex(64);
        let rest = wire[3..].to_vec();
        tokio::spawn(async move {
            for byte in rest {
                client.write_all(&[byte]).await.unwrap();
            }
        });
        let mut reader = FrameReader::new(server, &wire[..3], 1024);
        assert_eq!(reader.next().await.unwrap(), Incoming::Text("hello".into()));
        assert_eq!(reader.next().await.unwrap(), Incoming::Text("world".into()));
        assert_eq!(
            reader.next().await.unwrap(),
            Incoming::Close(Some(CloseCode::Normal.into()))
        );
        assert!(matches!(reader.next().await, Err(ReadError::Eof)));
    }

    #[tokio::test]
    async fn the_reader_refuses_oversize_and_unmasked_frames() {
        let (mut client, server) = duplex(4096);
        client
            .write_all(&client_frames(vec![Message::Text("x".repeat(65).into())]))
            .await
            .unwrap();
        let mut reader = FrameReader::new(server, &[], 64);
        assert!(matches!(
            reader.next().await,
            Err(ReadError::TooLarge { limit: 64 })
        ));

        let (mut client, server) = duplex(4096);
        let mut unmasked = BytesMut::new();
        Codec::new()
            .encode(Message::Text("hi".into()), &mut unmasked)
            .unwrap();
        client.write_all(&unmasked).await.unwrap();
        let mut reader = FrameReader::new(server, &[], 64);
        let error = reader.next().await.unwrap_err();
        assert!(matches!(error, ReadError::Protocol(_)), "{error}");
        assert!(!error.is_disconnect());
    }

    #[test]
    fn every_close_reason_fits_in_a_control_frame() {
        use actix_http::ws::OpCode;
        let errors = [
            ReadError::TooLarge { limit: usize::MAX },
            ReadError::NotUtf8,
            ReadError::Protocol(ProtocolError::UnmaskedFrame),
            ReadError::Protocol(ProtocolError::MaskedFrame),
            ReadError::Protocol(ProtocolError::InvalidOpcode(15)),
            ReadError::Protocol(ProtocolError::InvalidLength(usize::MAX)),
            ReadError::Protocol(ProtocolError::BadOpCode),
            ReadError::Protocol(ProtocolError::Overflow),
            ReadError::Protocol(ProtocolError::ContinuationNotStarted),
            ReadError::Protocol(ProtocolError::ContinuationStarted),
            ReadError::Protocol(ProtocolError::ContinuationFragment(OpCode::Close)),
            ReadError::Protocol(ProtocolError::Io(io::ErrorKind::InvalidData.into())),
        ];
        for error in errors {
            let close = error.close_reason().unwrap();
            let description = close.description.unwrap_or_default();
            // 125 bytes of payload, 2 of them the code.
            assert!(description.len() <= 123, "{description}");
        }
    }

    #[tokio::test]
    async fn reserved_bits_are_a_protocol_error_answered_with_1002() {
        let mut wire = client_frames(vec![Message::Text("hi".into())]);
        wire[0] |= 0b0100_0000; // RSV1, with no extension negotiated
        let mut reader = FrameReader::new(tokio::io::empty(), &wire, 64);
        let error = reader.next().await.unwrap_err();
        assert!(matches!(error, ReadError::Protocol(_)), "{error}");
        let close = error.close_reason().unwrap();
        assert_eq!(close.code, CloseCode::Protocol);
        assert_eq!(
            close.description.as_deref(),
            Some("WebSocket protocol error: reserved bits set without an extension")
        );
    }

    #[tokio::test]
    async fn queued_frames_go_out_together_and_decode_in_order() {
        let (client, server) = duplex(1 << 16);
        let mut writer = FrameWriter::new(server);
        writer.queue_text("one".into());
        writer.queue_text(TextFrame::new("two"));
        writer.queue_ping();
        writer.queue_close(Some(CloseCode::Away.into()));
        writer.flush().await.unwrap();
        assert_eq!(writer.pending(), 0);
        drop(writer);

        let mut wire = BytesMut::new();
        let mut client = client;
        client.read_buf(&mut wire).await.unwrap();
        let mut codec = Codec::new().client_mode();
        let mut frames = Vec::new();
        while let Some(frame) = codec.decode(&mut wire).unwrap() {
            frames.push(frame);
        }
        assert_eq!(
            frames,
            vec![
                Frame::Text(Bytes::from_static(b"one")),
                Frame::Text(Bytes::from_static(b"two")),
                Frame::Ping(Bytes::new()),
                Frame::Close(Some(CloseCode::Away.into())),
            ]
        );
    }

    #[tokio::test]
    async fn a_cancelled_flush_keeps_the_unwritten_rest_in_order() {
        // A 16-byte pipe nobody reads: the flush writes what fits and then waits.
        let (mut client, server) = duplex(16);
        let mut writer = FrameWriter::new(server);
        writer.queue_text("a frame longer than the pipe".into());
        let stuck = tokio::time::timeout(std::time::Duration::from_millis(50), writer.flush());
        assert!(stuck.await.is_err(), "the flush cannot finish yet");
        assert!(writer.pending() > 0);
        writer.queue_text("next".into());
        let reading = tokio::spawn(async move {
            let mut wire = Vec::new();
            client.read_to_end(&mut wire).await.unwrap();
            wire
        });
        writer.flush().await.unwrap();
        drop(writer);
        let mut wire = BytesMut::from(&reading.await.unwrap()[..]);
        let mut codec = Codec::new().client_mode();
        assert_eq!(
            codec.decode(&mut wire).unwrap(),
            Some(Frame::Text(Bytes::from_static(
                b"a frame longer than the pipe"
            )))
        );
        assert_eq!(
            codec.decode(&mut wire).unwrap(),
            Some(Frame::Text(Bytes::from_static(b"next")))
        );
    }

    #[test]
    fn a_text_frame_is_what_the_codec_would_send_at_every_length_class() {
        // 125 fits the 7-bit length, 126 and 65,535 take 16 bits, 65,536 takes 64.
        for len in [0, 1, 125, 126, 65_535, 65_536] {
            let text = "x".repeat(len);
            let frame = TextFrame::new(&text);
            let mut expected = BytesMut::new();
            Codec::new()
                .encode(Message::Text(text.clone().into()), &mut expected)
                .unwrap();
            assert_eq!(frame.wire(), &expected.freeze(), "length {len}");
            assert_eq!(frame.as_str(), text);
        }
    }

    /// A socket that takes at most `per_call` bytes per write, like a nearly full send buffer,
    /// recording what it got.
    struct Trickle {
        got: Vec<u8>,
        per_call: usize,
        calls: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<io::Result<usize>> {
            self.calls += 1;
            let take = buf.len().min(self.per_call);
            self.got.extend_from_slice(&buf[..take]);
            std::task::Poll::Ready(Ok(take))
        }

        fn poll_flush(
            self: Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn writes_cut_anywhere_still_send_every_frame_whole_and_in_order() {
        let shared = TextFrame::new("a goal, shared by every fan");
        for per_call in [1, 5, 7, 64, 4096] {
            let mut writer = FrameWriter::new(Trickle {
                got: Vec::new(),
                per_call,
                calls: 0,
            });
            writer.queue_text(shared.clone());
            writer.queue_ping();
            for n in 0..100 {
                writer.queue_text(TextFrame::new(&format!("event {n}")));
            }
            let queued = writer.pending();
            writer.flush().await.unwrap();
            assert_eq!(writer.pending(), 0);
            let Trickle { got, calls, .. } = writer.io;
            assert_eq!(got.len(), queued, "{per_call} bytes per write");
            if per_call == 4096 {
                // The whole backlog fits: one write.
                assert_eq!(calls, 1);
            }
            let mut wire = BytesMut::from(&got[..]);
            let mut codec = Codec::new().client_mode();
            assert_eq!(
                codec.decode(&mut wire).unwrap(),
                Some(Frame::Text(Bytes::from_static(
                    b"a goal, shared by every fan"
                )))
            );
            assert_eq!(
                codec.decode(&mut wire).unwrap(),
                Some(Frame::Ping(Bytes::new()))
            );
            for n in 0..100 {
                assert_eq!(
                    codec.decode(&mut wire).unwrap(),
                    Some(Frame::Text(Bytes::from(format!("event {n}"))))
                );
            }
            assert!(wire.is_empty());
        }
    }
}

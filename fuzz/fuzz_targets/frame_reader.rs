//! The WebSocket frame reader (`MessageDecoder`: actix-http's codec, then the `Assembler` that
//! joins fragments and checks UTF-8 and sizes) on whatever bytes a client could send.
//!
//! Checks, beyond "never panics": no message is over the size limit; and the bytes arriving in
//! any chunks give the same messages, and the same error, as arriving all at once (the reader
//! is called again after every read, with whatever has arrived).
//!
//! The first byte picks the size limit and the mode: raw bytes as they are, or the input turned
//! into well-formed masked frames with arbitrary opcodes, flags and payloads (so the fuzzer spends
//! its time past the framing, in fragments, control frames, close payloads and UTF-8).

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use scoreline_service::websocket::{Incoming, MessageDecoder};

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let max_bytes = 1 + usize::from(control >> 1) * 8; // 1 to 1017 bytes
    let wire = if control & 1 == 0 {
        rest.to_vec()
    } else {
        masked_frames(rest)
    };

    let whole = decode_in_chunks(&wire, &[], max_bytes);
    for message in &whole.0 {
        let len = match message {
            Incoming::Text(text) => text.len(),
            Incoming::Binary(bytes) | Incoming::Ping(bytes) => bytes.len(),
            Incoming::Pong | Incoming::Close(_) => 0,
        };
        assert!(
            len <= max_bytes,
            "a message of {len} bytes passed a limit of {max_bytes}"
        );
    }
    // Chunk sizes from the input itself, 1 to 16 bytes each, cycled.
    let sizes: Vec<usize> = rest
        .iter()
        .take(32)
        .map(|b| usize::from(b & 15) + 1)
        .collect();
    let chunked = decode_in_chunks(&wire, &sizes, max_bytes);
    assert_eq!(whole, chunked, "chunking changed the outcome");
});

/// Messages decoded until the first error (as its text) or the end of the bytes.
fn decode_in_chunks(
    wire: &[u8],
    sizes: &[usize],
    max_bytes: usize,
) -> (Vec<Incoming>, Option<String>) {
    let mut decoder = MessageDecoder::new(max_bytes);
    let mut buf = BytesMut::new();
    let mut messages = Vec::new();
    let mut offset = 0;
    let mut size = sizes.iter().cycle();
    while offset < wire.len() {
        let take = size
            .next()
            .copied()
            .unwrap_or(wire.len())
            .min(wire.len() - offset);
        buf.extend_from_slice(&wire[offset..offset + take]);
        offset += take;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(error) => return (messages, Some(error.to_string())),
            }
        }
    }
    (messages, None)
}

/// Turns fuzz input into masked client frames: per frame, a header byte (FIN, RSV, opcode as
/// given), a length byte (payload of 0 to 127 bytes, or a 16-bit length form for 126), a mask
/// key and the payload, all taken from the input.
fn masked_frames(mut input: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    while input.len() >= 6 {
        let (head, rest) = input.split_at(6);
        let (first, length, mask) = (
            head[0],
            head[1] & 0x7f,
            [head[2], head[3], head[4], head[5]],
        );
        let wanted = usize::from(length);
        let payload = &rest[..wanted.min(rest.len())];
        input = &rest[payload.len()..];
        wire.push(first);
        if payload.len() >= 126 {
            wire.push(0x80 | 126);
            wire.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        } else {
            wire.push(0x80 | payload.len() as u8);
        }
        wire.extend_from_slice(&mask);
        wire.extend(
            payload
                .iter()
                .enumerate()
                .map(|(i, byte)| byte ^ mask[i % 4]),
        );
    }
    wire
}

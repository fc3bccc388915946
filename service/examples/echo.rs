//! A WebSocket echo server on Scoreline's own WebSocket layer, for the Autobahn|Testsuite
//! conformance run (`scripts/conformance`, `docs/conformance.md`).
//!
//! ```text
//! cargo run --release -p scoreline-service --example echo -- 127.0.0.1:9001
//! ```
//!
//! One worker thread is enough for a suite that opens one connection at a time.
//!
//! It is not a route of the product: the service speaks JSON and closes on binary data, while the
//! suite needs every text and binary message sent back as it came. Everything else is the code
//! the service runs: actix-http hands the upgrade request and the connection to
//! [`upgrade::handshake`] and [`upgrade::switch_protocols`] (the same calls as `/ws`), frames are
//! read by [`FrameReader`] and written by [`FrameWriter`], and errors and close frames are
//! answered with [`ReadError::close_reason`], [`websocket::echo_close`] and the closing handshake
//! [`websocket::close`].

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::time::Duration;

use actix_codec::Framed;
use actix_http::{HttpService, Method, Request, Response, h1};
use actix_service::fn_service;
use anyhow::Context;
use scoreline_service::upgrade;
use scoreline_service::websocket::{self, FrameReader, FrameWriter, Incoming, ReadError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Largest message echoed: the suite's biggest cases (9.1.6, 9.2.6, run with
/// `AB_EXCLUDE='[]'`) send 16 MiB.
const MAX_MESSAGE_BYTES: usize = 32 << 20;

/// How long the closing handshake may take, as in the service.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let Some(address) = std::env::args().nth(1) else {
        eprintln!("usage: echo LISTEN_ADDRESS   (e.g. 127.0.0.1:9001)");
        return ExitCode::from(2);
    };
    match actix_web::rt::System::new().block_on(serve(&address)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Serves until ctrl-c: WebSocket upgrades on any path, 404 for plain HTTP. Prints the address
/// bound (port 0 picks a free one) as `listening on ws://HOST:PORT` for scripts to read.
async fn serve(address: &str) -> anyhow::Result<()> {
    let address: SocketAddr = address
        .parse()
        .with_context(|| format!("{address:?} is not a socket address"))?;
    let listener =
        TcpListener::bind(address).with_context(|| format!("cannot listen on {address}"))?;
    let address = listener.local_addr()?;
    let server = actix_server::Server::build()
        .workers(1)
        .listen("echo", listener, || {
            HttpService::build()
                .upgrade(fn_service(
                    |(request, framed): (Request, Framed<TcpStream, h1::Codec>)| async move {
                        accept(request, framed).await;
                        Ok::<_, actix_http::Error>(())
                    },
                ))
                .finish(fn_service(|_: Request| async {
                    Ok::<_, Infallible>(Response::not_found())
                }))
                .tcp()
        })
        .context("cannot serve on the listener")?
        .run();
    println!("listening on ws://{address}");
    server.await.context("the server failed")
}

async fn accept<T>(request: Request, framed: Framed<T, h1::Codec>)
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let handshake = upgrade::handshake(request.method() == Method::GET, &request.head().headers);
    let mut parts = framed.into_parts();
    let answer = match handshake {
        Ok(answer) => answer,
        Err(refusal) => return upgrade::refuse(&mut parts.io, &refusal.into()).await,
    };
    let (reader, mut writer) =
        upgrade::switch_protocols(parts.io, &parts.read_buf, answer, MAX_MESSAGE_BYTES);
    // The client waits for the 101 before sending anything: send it now.
    let answered = tokio::time::timeout(Duration::from_secs(5), writer.flush()).await;
    if matches!(answered, Ok(Ok(()))) {
        echo(reader, writer).await;
    }
}

/// Sends every message back until the client closes or breaks the protocol, then closes as the
/// service does.
async fn echo<R, W>(mut reader: FrameReader<R>, mut writer: FrameWriter<W>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let close = loop {
        match reader.next().await {
            Ok(Incoming::Text(text)) => writer.queue_text(text.into()),
            Ok(Incoming::Binary(bytes)) => writer.queue_binary(bytes),
            Ok(Incoming::Ping(payload)) => writer.queue_pong(payload),
            Ok(Incoming::Pong) => {}
            Ok(Incoming::Close(close)) => {
                break Some(websocket::echo_close(close.map(|close| close.code)));
            }
            Err(error) => break ReadError::close_reason(&error),
        }
        if writer.flush().await.is_err() {
            break None;
        }
    };
    if let Some(close) = close {
        websocket::close(&mut reader, &mut writer, close, CLOSE_GRACE).await;
    }
}

//! The yardstick: a minimal raw fan-out server, to run the load scenarios against next to
//! Scoreline (`SERVER=raw loadgen/bench-scenario.sh ...`, `loadgen/compare.sh ...`).
//!
//! It does the least a WebSocket fan-out over Redis can do and nothing of Scoreline's work (no
//! snapshots, no seq checks, no history, no priorities, no resume): one `PSUBSCRIBE scores:*`,
//! one shared frame per message, a bounded queue and a writer task per client, two runtime
//! workers. It speaks just enough of the protocol for the load generator: `subscribe` is
//! answered with an empty `subscribed`, and each event goes out as `{"type":"event",...}`.
//! A client whose queue fills is dropped. Ratios Scoreline / this server are the targets of
//! `docs/benchmarks.md`, because absolute figures drift on a shared machine.
//!
//! ```sh
//! cargo run --release -p scoreline-loadgen --bin raw-fanout -- 127.0.0.1:9100 redis://127.0.0.1:6379/
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Frames queued per client before it counts as too slow and is dropped.
const QUEUE: usize = 1024;

/// Bytes read from a client at a time (its requests are a few hundred bytes).
const READ_BUFFER: usize = 4096;

/// Connections the kernel may hold ready for `accept`: actix-server's default, which Scoreline
/// listens with. `TcpListener::bind` would take 128, and in a 100,002-client storm
/// (`SERVER=raw loadgen/c100k.sh s4`) 60,567 handshakes overflowed that queue and were retried.
const LISTEN_BACKLOG: u32 = 2048;

type Clients = HashMap<u64, mpsc::Sender<Utf8Bytes>>;

/// Who is subscribed to each topic (a sport, a competition or a match).
#[derive(Default)]
struct Subscriptions {
    topics: RwLock<HashMap<String, Clients>>,
    next_id: AtomicU64,
}

impl Subscriptions {
    fn add(&self, topic: &str, id: u64, queue: mpsc::Sender<Utf8Bytes>) {
        let mut topics = self
            .topics
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        topics
            .entry(topic.to_owned())
            .or_default()
            .insert(id, queue);
    }

    fn remove(&self, topics: &[String], id: u64) {
        let mut all = self
            .topics
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for topic in topics {
            if let Some(clients) = all.get_mut(topic) {
                clients.remove(&id);
            }
        }
    }

    /// Sends one shared frame to every client of the match topic and of its prefixes.
    fn publish(&self, match_topic: &str, frame: &Utf8Bytes) {
        let topics = self
            .topics
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let prefixes = match_topic
            .char_indices()
            .filter(|(_, c)| *c == '/')
            .map(|(at, _)| &match_topic[..at])
            .chain(std::iter::once(match_topic));
        for prefix in prefixes {
            if let Some(clients) = topics.get(prefix) {
                for queue in clients.values() {
                    // A full queue means a client too slow to keep up: the frame is dropped for
                    // it, and the load generator counts it as lost.
                    let _ = queue.try_send(frame.clone());
                }
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args
        .next()
        .context("usage: raw-fanout LISTEN_ADDR REDIS_URL")?
        .parse()
        .context("LISTEN_ADDR")?;
    let redis_url = args
        .next()
        .context("usage: raw-fanout LISTEN_ADDR REDIS_URL")?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(serve(listen, redis_url))
}

async fn serve(listen: SocketAddr, redis_url: String) -> anyhow::Result<()> {
    let subscriptions = Arc::new(Subscriptions::default());
    // The yardstick connects the plainest way on purpose, with none of Scoreline's code
    // (`scoreline_feed::connection` is what everything of Scoreline's uses).
    let client = redis::Client::open(redis_url.as_str())?;
    // bench-scenario.sh starts Redis and this server together: give Redis a few seconds.
    let mut attempts = 0;
    let mut pubsub = loop {
        match client.get_async_pubsub().await {
            Ok(pubsub) => break pubsub,
            Err(error) if attempts < 50 => {
                attempts += 1;
                eprintln!("raw-fanout: Redis not ready ({error}); retrying");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(error) => return Err(error.into()),
        }
    };
    pubsub.psubscribe("scores:*").await?;
    let fanout = Arc::clone(&subscriptions);
    tokio::spawn(async move {
        let mut messages = pubsub.into_on_message();
        while let Some(message) = messages.next().await {
            let Some(topic) = message.get_channel_name().strip_prefix("scores:") else {
                continue;
            };
            let payload = message.get_payload_bytes();
            if payload.first() != Some(&b'{') {
                continue;
            }
            let Ok(rest) = std::str::from_utf8(&payload[1..]) else {
                continue;
            };
            let frame = Utf8Bytes::from(format!("{{\"type\":\"event\",{rest}"));
            fanout.publish(topic, &frame);
        }
    });
    let socket = match listen {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }?;
    socket.set_reuseaddr(true)?;
    socket.bind(listen)?;
    let listener = socket.listen(LISTEN_BACKLOG)?;
    println!("raw-fanout listening on {listen}");
    loop {
        let (stream, _) = listener.accept().await?;
        let subscriptions = Arc::clone(&subscriptions);
        tokio::spawn(async move {
            // A client that fails its handshake or leaves is simply gone.
            let _ = connection(stream, &subscriptions).await;
        });
    }
}

async fn connection(stream: TcpStream, subscriptions: &Subscriptions) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    // tungstenite allocates a 128 KiB read buffer per connection by default; clients here send
    // one small request, and a fair yardstick should not pay for memory it never uses.
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let socket = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await?;
    let (mut sink, mut source) = socket.split();
    let id = subscriptions.next_id.fetch_add(1, Ordering::Relaxed);
    let (queue, mut frames) = mpsc::channel::<Utf8Bytes>(QUEUE);
    let mut topics: Vec<String> = Vec::new();
    let writer = tokio::spawn(async move {
        while let Some(frame) = frames.recv().await {
            sink.feed(Message::Text(frame)).await?;
            while let Ok(frame) = frames.try_recv() {
                sink.feed(Message::Text(frame)).await?;
            }
            sink.flush().await?;
        }
        anyhow::Ok(())
    });
    while let Some(message) = source.next().await {
        let Message::Text(text) = message? else {
            continue;
        };
        let request: serde_json::Value = serde_json::from_str(text.as_str())?;
        if request["type"] != "subscribe" {
            continue;
        }
        let asked: Vec<String> = request["topics"]
            .as_array()
            .map(|topics| {
                topics
                    .iter()
                    .filter_map(|topic| topic.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let reply = serde_json::json!({
            "type": "subscribed", "topics": asked, "snapshots": [], "omitted": 0
        });
        // The reply goes through the same queue as events, so it is written before them.
        if queue
            .send(Utf8Bytes::from(reply.to_string()))
            .await
            .is_err()
        {
            break;
        }
        for topic in &asked {
            subscriptions.add(topic, id, queue.clone());
        }
        topics.extend(asked);
    }
    subscriptions.remove(&topics, id);
    drop(queue);
    writer.abort();
    Ok(())
}

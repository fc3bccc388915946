//! The local port of each client's connection, chosen here instead of by the kernel.
//!
//! Left to itself, `connect()` finds a local port by walking the ephemeral range (32768–60999
//! here) from a point that depends on the destination, trying first the ports of one parity and
//! checking for each one whether the connection would collide with an existing one. Every client
//! of a run goes to the same address and port, so once a process has more clients than half the
//! range has ports (14,116), each further `connect()` walks that whole half before it tries the
//! other: a load generator with 16,667 clients (`loadgen/c100k.sh`) spent 202 µs of kernel time
//! per client, against 76 µs with 14,000, and in the C100k storm half of its CPU was in
//! `__inet_hash_connect` (docs/benchmarks.md, "C100k against the raw yardstick").
//!
//! A client bound to a port of its own (`bind()` before `connect()`) costs the kernel one lookup.
//! With `SO_REUSEADDR` on every such socket, one port can carry connections to several
//! destinations, as it does when the kernel chooses, so the load generators of a C100k run, each
//! with its own server, reuse the same ports. A port some other socket holds without
//! `SO_REUSEADDR` (or a listener) refuses the `bind()`, and the client takes the next one.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::net::{TcpSocket, TcpStream};

/// Where the kernel keeps the ephemeral range; the ports handed out stay inside it, where no
/// server of this machine expects to listen on a fixed port.
const RANGE_FILE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// Linux's default range, if the file cannot be read.
const DEFAULT_RANGE: (u16, u16) = (32768, 60999);

/// Ports tried for one connection before giving up: each refused one costs two system calls.
const ATTEMPTS: usize = 256;

/// Hands out the ephemeral range's ports in turn, one per connection.
#[derive(Debug)]
pub struct SourcePorts {
    low: u16,
    count: u32,
    next: AtomicU32,
}

impl SourcePorts {
    /// The machine's ephemeral range.
    pub fn ephemeral() -> SourcePorts {
        let (low, high) = ephemeral_range();
        SourcePorts::new(low, high)
    }

    /// Ports `low..=high`.
    pub fn new(low: u16, high: u16) -> SourcePorts {
        let (low, high) = (low.min(high), low.max(high));
        SourcePorts {
            low,
            count: u32::from(high - low) + 1,
            next: AtomicU32::new(0),
        }
    }

    /// The next port, wrapping around at the end of the range.
    pub fn next_port(&self) -> u16 {
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % self.count;
        // `turn < count <= 65536 - low`, so the sum is a port.
        self.low + turn as u16
    }

    /// A TCP connection to `server` from a port of its own, on the server's (loopback) address.
    /// `recv_buffer_bytes` sets the socket's receive buffer before connecting.
    pub async fn connect(
        &self,
        server: SocketAddr,
        recv_buffer_bytes: Option<u32>,
    ) -> io::Result<TcpStream> {
        let mut last_refusal = None;
        for _ in 0..ATTEMPTS {
            let socket = match server {
                SocketAddr::V4(_) => TcpSocket::new_v4(),
                SocketAddr::V6(_) => TcpSocket::new_v6(),
            }?;
            if let Some(bytes) = recv_buffer_bytes {
                socket.set_recv_buffer_size(bytes)?;
            }
            socket.set_reuseaddr(true)?;
            let local = SocketAddr::new(server.ip(), self.next_port());
            let attempt = match socket.bind(local) {
                Ok(()) => socket.connect(server).await,
                Err(error) => Err(error),
            };
            match attempt {
                // The port is held by a socket that does not share it (`bind`), or already
                // connects this address to `server` (`connect`): take the next one.
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::AddrInUse | io::ErrorKind::AddrNotAvailable
                    ) =>
                {
                    last_refusal = Some(error);
                }
                result => return result,
            }
        }
        Err(last_refusal.unwrap_or_else(|| io::Error::other("no source port attempted")))
    }
}

fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string(RANGE_FILE)
        .ok()
        .and_then(|text| parse_range(&text))
        .unwrap_or(DEFAULT_RANGE)
}

/// `low high` as the kernel writes it (`32768\t60999`).
fn parse_range(text: &str) -> Option<(u16, u16)> {
    let mut words = text.split_whitespace().map(str::parse::<u16>);
    match (words.next(), words.next()) {
        (Some(Ok(low)), Some(Ok(high))) if low <= high => Some((low, high)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use tokio::net::TcpListener;

    use super::*;

    #[test]
    fn the_kernel_range_is_read_as_written() {
        assert_eq!(parse_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_range("1024 65535"), Some((1024, 65535)));
        assert_eq!(parse_range("60999 32768"), None);
        assert_eq!(parse_range("32768"), None);
        assert_eq!(parse_range(""), None);
    }

    #[test]
    fn ports_are_handed_out_in_turn_and_wrap_around() {
        let ports = SourcePorts::new(65534, 65535);
        let handed: Vec<u16> = (0..5).map(|_| ports.next_port()).collect();
        assert_eq!(handed, [65534, 65535, 65534, 65535, 65534]);
    }

    #[tokio::test]
    async fn each_client_has_its_port_and_a_port_serves_several_servers() {
        let first = TcpListener::bind("127.0.0.1:0").await.expect("listener");
        let second = TcpListener::bind("127.0.0.1:0").await.expect("listener");
        let (first, second) = (
            first.local_addr().expect("address"),
            second.local_addr().expect("address"),
        );
        let (low, high) = ephemeral_range();
        let ports = SourcePorts::new(low, high);
        let mut to_first = Vec::new();
        let mut streams = Vec::new();
        for _ in 0..3 {
            let stream = ports.connect(first, None).await.expect("connected");
            to_first.push(stream.local_addr().expect("address").port());
            streams.push(stream);
        }
        assert_eq!(to_first.iter().collect::<BTreeSet<_>>().len(), 3);
        assert!(to_first.iter().all(|port| (low..=high).contains(port)));
        // Another process's client of another server, handed the very same port, gets it.
        let shared = to_first[0];
        let stream = SourcePorts::new(shared, shared)
            .connect(second, Some(4096))
            .await
            .expect("a port shared with a connection to another server");
        assert_eq!(stream.local_addr().expect("address").port(), shared);
        // The same connection twice cannot exist: that port is refused, and so is the client
        // that has no other.
        let again = SourcePorts::new(shared, shared).connect(first, None).await;
        assert_eq!(
            again.expect_err("the same connection twice").kind(),
            io::ErrorKind::AddrNotAvailable
        );
    }
}

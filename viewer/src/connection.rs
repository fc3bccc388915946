//! The connection state machine: when to connect, when to give up on a socket, when to retry, and
//! when to ping. It owns no socket; it is driven by plain values (events and the current time) and
//! answers with [`LinkAction`]s that the socket adapter carries out, so every rule here is tested
//! without a network.

use std::time::Duration;

/// First retry delay after a failure, before jitter.
pub const BACKOFF_BASE_MILLIS: u64 = 500;

/// Longest retry delay, before jitter: a fan whose server is down for an hour is back within
/// half a minute of it returning.
pub const BACKOFF_MAX_MILLIS: u64 = 30_000;

/// A connection that lasted this long was healthy; the next failure starts the backoff afresh.
/// Shorter ones keep growing the delay, so a server that accepts then drops at once (overloaded,
/// over its connection limit) is not hammered.
pub const STABLE_CONNECTION_MILLIS: u64 = 10_000;

/// A connect attempt that has not opened after this long is abandoned. The native WebSocket client
/// has no connect timeout of its own and a silently dropped SYN would otherwise hang for minutes.
pub const CONNECT_TIMEOUT_MILLIS: u64 = 10_000;

/// How often an application-level ping measures the round-trip time.
pub const PING_INTERVAL_MILLIS: u64 = 5_000;

/// A ping unanswered for this long means the connection is dead even if TCP has not noticed
/// (a laptop that slept, a NAT that forgot us); the socket is dropped and a reconnect scheduled.
pub const PONG_TIMEOUT_MILLIS: u64 = 15_000;

/// Exponential backoff with "equal jitter": half of the exponential delay is fixed, the other
/// half random. The fixed half gives the fan a real countdown; the random half spreads thousands
/// of viewers that lost the same server so they do not all come back in the same millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry, before jitter.
    pub base_millis: u64,
    /// Cap on the exponential delay, before jitter.
    pub max_millis: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base_millis: BACKOFF_BASE_MILLIS,
            max_millis: BACKOFF_MAX_MILLIS,
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (1 for the first retry), given a random `unit`
    /// value in `[0, 1)`.
    pub fn delay_millis(&self, attempt: u32, unit: f64) -> u64 {
        let exponent = attempt.saturating_sub(1).min(20);
        let capped = self
            .base_millis
            .saturating_mul(1u64 << exponent)
            .min(self.max_millis);
        let half = capped / 2;
        let unit = unit.clamp(0.0, 1.0);
        // `half` is at most `max_millis / 2`, far below f64's exact integer range.
        half + (half as f64 * unit) as u64
    }
}

/// A small deterministic random source for jitter (xorshift64*). Tests seed it; the app seeds it
/// from the clock. Jitter needs spread, not cryptographic quality, so no dependency is warranted.
#[derive(Debug, Clone)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    /// A generator from a seed; any seed works (zero is replaced).
    pub fn new(seed: u64) -> Jitter {
        Jitter { state: seed.max(1) }
    }

    /// The next value in `[0, 1)`.
    pub fn next_unit(&mut self) -> f64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let value = self.state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (value >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Where the connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// The fan switched the connection off; nothing happens until they switch it on.
    Offline,
    /// A socket is being opened.
    Connecting {
        /// 1 for the first try since the last healthy connection.
        attempt: u32,
        /// When this try started, to time it out.
        started_ms: u64,
    },
    /// The socket is open.
    Connected {
        /// When it opened, to tell a healthy connection from a flapping one.
        since_ms: u64,
        /// The try that opened it; a flapping connection keeps counting from here.
        attempt: u32,
    },
    /// The last try failed or the connection dropped; the next try is scheduled.
    Waiting {
        /// The try that will happen at `retry_at_ms`.
        attempt: u32,
        /// When to try again.
        retry_at_ms: u64,
        /// Why the last connection ended, for the status bar.
        reason: String,
    },
}

/// What the socket adapter must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkAction {
    /// Drop any socket and open a new one to the current URL.
    Connect,
    /// Drop the socket.
    Disconnect,
    /// Send an application-level ping with this id.
    Ping {
        /// Echoed back by the server's pong.
        id: u64,
    },
}

/// The connection state machine, its backoff, and round-trip-time measurement.
#[derive(Debug, Clone)]
pub struct Link {
    state: LinkState,
    backoff: Backoff,
    jitter: Jitter,
    /// Counts opened connections. Data is fresh only if it was confirmed on the current one, so
    /// the scoreboard stamps each match with the generation that last confirmed it.
    generation: u64,
    /// Id of the next ping.
    next_ping_id: u64,
    /// The ping awaiting its pong: its id and when it was sent.
    outstanding_ping: Option<(u64, u64)>,
    /// When the next ping is due.
    next_ping_ms: u64,
    /// The latest measured round trip.
    rtt_millis: Option<u64>,
}

impl Link {
    /// A link that is offline until [`Link::start`] is called.
    pub fn new(backoff: Backoff, jitter: Jitter) -> Link {
        Link {
            state: LinkState::Offline,
            backoff,
            jitter,
            generation: 0,
            next_ping_id: 1,
            outstanding_ping: None,
            next_ping_ms: 0,
            rtt_millis: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> &LinkState {
        &self.state
    }

    /// Whether messages can be sent now.
    pub fn is_connected(&self) -> bool {
        matches!(self.state, LinkState::Connected { .. })
    }

    /// Which opened connection this is (0 before the first).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The latest round-trip time, while connected.
    pub fn rtt_millis(&self) -> Option<u64> {
        self.rtt_millis.filter(|_| self.is_connected())
    }

    /// Connect now (first start, "retry now", or a new URL): drops any socket and opens another.
    pub fn start(&mut self, now_ms: u64) -> Vec<LinkAction> {
        let attempt = match &self.state {
            LinkState::Waiting { attempt, .. } => *attempt,
            _ => 1,
        };
        self.state = LinkState::Connecting {
            attempt,
            started_ms: now_ms,
        };
        self.outstanding_ping = None;
        vec![LinkAction::Connect]
    }

    /// The fan switched the connection off.
    pub fn stop(&mut self) -> Vec<LinkAction> {
        self.state = LinkState::Offline;
        self.outstanding_ping = None;
        vec![LinkAction::Disconnect]
    }

    /// The socket opened. Returns the new connection generation.
    pub fn opened(&mut self, now_ms: u64) -> u64 {
        self.generation += 1;
        let attempt = match &self.state {
            LinkState::Connecting { attempt, .. } => *attempt,
            _ => 1,
        };
        self.state = LinkState::Connected {
            since_ms: now_ms,
            attempt,
        };
        self.outstanding_ping = None;
        // Ping at once: the fan sees a round-trip time as soon as the status turns green.
        self.next_ping_ms = now_ms;
        self.generation
    }

    /// The socket failed or closed. Schedules the next try, unless the fan went offline.
    pub fn lost(&mut self, now_ms: u64, reason: impl Into<String>) -> Vec<LinkAction> {
        let attempt = match &self.state {
            LinkState::Offline => return Vec::new(),
            LinkState::Connecting { attempt, .. } => attempt.saturating_add(1),
            LinkState::Connected { since_ms, .. }
                if now_ms.saturating_sub(*since_ms) >= STABLE_CONNECTION_MILLIS =>
            {
                1
            }
            // A connection that dropped soon after opening counts as one more failed try.
            LinkState::Connected { attempt, .. } => attempt.saturating_add(1),
            // Already waiting (a late error from the dropped socket): keep the schedule.
            LinkState::Waiting { .. } => return Vec::new(),
        };
        let delay_millis = self
            .backoff
            .delay_millis(attempt.saturating_sub(1).max(1), self.jitter.next_unit());
        self.state = LinkState::Waiting {
            attempt,
            retry_at_ms: now_ms.saturating_add(delay_millis),
            reason: reason.into(),
        };
        self.outstanding_ping = None;
        vec![LinkAction::Disconnect]
    }

    /// A pong arrived; measures the round trip when it answers the outstanding ping.
    pub fn pong(&mut self, id: u64, now_ms: u64) {
        if let Some((ping_id, sent_ms)) = self.outstanding_ping
            && ping_id == id
        {
            self.rtt_millis = Some(now_ms.saturating_sub(sent_ms));
            self.outstanding_ping = None;
        }
    }

    /// Moves time forward: retries when due, times out a hung connect or a silent connection,
    /// and sends pings.
    pub fn tick(&mut self, now_ms: u64) -> Vec<LinkAction> {
        match &self.state {
            LinkState::Offline => Vec::new(),
            LinkState::Waiting { retry_at_ms, .. } if now_ms >= *retry_at_ms => self.start(now_ms),
            LinkState::Waiting { .. } => Vec::new(),
            LinkState::Connecting { started_ms, .. }
                if now_ms.saturating_sub(*started_ms) >= CONNECT_TIMEOUT_MILLIS =>
            {
                self.lost(now_ms, "connect timed out")
            }
            LinkState::Connecting { .. } => Vec::new(),
            LinkState::Connected { .. } => {
                if let Some((_, sent_ms)) = self.outstanding_ping {
                    if now_ms.saturating_sub(sent_ms) >= PONG_TIMEOUT_MILLIS {
                        return self.lost(now_ms, "the server stopped answering pings");
                    }
                    Vec::new()
                } else if now_ms >= self.next_ping_ms {
                    let id = self.next_ping_id;
                    self.next_ping_id += 1;
                    self.outstanding_ping = Some((id, now_ms));
                    self.next_ping_ms = now_ms.saturating_add(PING_INTERVAL_MILLIS);
                    vec![LinkAction::Ping { id }]
                } else {
                    Vec::new()
                }
            }
        }
    }

    /// When [`Link::tick`] next has something to do, so the UI sleeps until then instead of
    /// polling. `None` when only a socket event can change anything.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        match &self.state {
            LinkState::Offline => None,
            LinkState::Waiting { retry_at_ms, .. } => Some(*retry_at_ms),
            LinkState::Connecting { started_ms, .. } => {
                Some(started_ms.saturating_add(CONNECT_TIMEOUT_MILLIS))
            }
            LinkState::Connected { .. } => Some(match self.outstanding_ping {
                Some((_, sent_ms)) => sent_ms.saturating_add(PONG_TIMEOUT_MILLIS),
                None => self.next_ping_ms,
            }),
        }
    }

    /// How long until the next retry, for "reconnecting in 4 s".
    pub fn retry_in(&self, now_ms: u64) -> Option<Duration> {
        match &self.state {
            LinkState::Waiting { retry_at_ms, .. } => {
                Some(Duration::from_millis(retry_at_ms.saturating_sub(now_ms)))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> Link {
        Link::new(Backoff::default(), Jitter::new(7))
    }

    fn retry_at(link: &Link) -> u64 {
        match link.state() {
            LinkState::Waiting { retry_at_ms, .. } => *retry_at_ms,
            other => panic!("expected Waiting, got {other:?}"),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let backoff = Backoff::default();
        assert_eq!(backoff.delay_millis(1, 0.0), 250);
        assert_eq!(backoff.delay_millis(1, 0.999_999), 499);
        assert_eq!(backoff.delay_millis(2, 0.0), 500);
        assert_eq!(backoff.delay_millis(3, 0.5), 1_500);
        assert_eq!(backoff.delay_millis(30, 0.0), 15_000);
        assert!(backoff.delay_millis(u32::MAX, 0.999) < 30_000);
    }

    #[test]
    fn jitter_spreads_over_the_unit_interval() {
        let mut jitter = Jitter::new(42);
        let values: Vec<f64> = (0..1000).map(|_| jitter.next_unit()).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        let low = values.iter().filter(|v| **v < 0.5).count();
        assert!((400..600).contains(&low), "{low} of 1000 below 0.5");
    }

    #[test]
    fn refused_connects_back_off_exponentially() {
        let mut link = link();
        assert_eq!(link.start(0), vec![LinkAction::Connect]);
        let mut now = 0;
        let mut delays = Vec::new();
        for _ in 0..8 {
            assert_eq!(link.lost(now, "refused"), vec![LinkAction::Disconnect]);
            let at = retry_at(&link);
            delays.push(at - now);
            assert!(link.tick(at - 1).is_empty(), "retried early");
            assert_eq!(link.tick(at), vec![LinkAction::Connect]);
            now = at;
        }
        for pair in delays.windows(2) {
            // Each expected delay doubles; jitter keeps each within [half, full] of it.
            assert!(pair[1] >= pair[0] / 2, "{delays:?}");
        }
        assert!(delays[7] >= 15_000 && delays[7] < 30_000, "{delays:?}");
        assert!(delays[0] < 500, "{delays:?}");
    }

    #[test]
    fn a_healthy_connection_resets_the_backoff_a_flapping_one_does_not() {
        let mut link = link();
        link.start(0);
        for _ in 0..6 {
            link.lost(0, "refused");
            let at = retry_at(&link);
            link.tick(at);
        }
        link.opened(100_000);
        link.lost(100_000 + STABLE_CONNECTION_MILLIS, "closed");
        assert!(retry_at(&link) - (100_000 + STABLE_CONNECTION_MILLIS) < BACKOFF_BASE_MILLIS);

        let mut flapping = self::link();
        flapping.start(0);
        flapping.opened(10);
        flapping.lost(20, "closed");
        let first = retry_at(&flapping);
        flapping.tick(first);
        flapping.opened(first);
        flapping.lost(first + 10, "closed");
        assert_eq!(
            flapping.state(),
            &LinkState::Waiting {
                attempt: 3,
                retry_at_ms: retry_at(&flapping),
                reason: "closed".into()
            }
        );
    }

    #[test]
    fn pings_measure_rtt_and_a_missing_pong_drops_the_connection() {
        let mut link = link();
        link.start(0);
        assert_eq!(link.opened(5), 1);
        assert_eq!(link.tick(5), vec![LinkAction::Ping { id: 1 }]);
        assert!(link.tick(6).is_empty(), "one ping at a time");
        link.pong(99, 20);
        assert_eq!(link.rtt_millis(), None, "a stray pong measures nothing");
        link.pong(1, 17);
        assert_eq!(link.rtt_millis(), Some(12));
        assert_eq!(link.next_deadline_ms(), Some(5 + PING_INTERVAL_MILLIS));
        assert_eq!(
            link.tick(5 + PING_INTERVAL_MILLIS),
            vec![LinkAction::Ping { id: 2 }]
        );
        let silent_until = 5 + PING_INTERVAL_MILLIS + PONG_TIMEOUT_MILLIS;
        assert!(link.tick(silent_until - 1).is_empty());
        assert_eq!(link.tick(silent_until), vec![LinkAction::Disconnect]);
        assert!(matches!(link.state(), LinkState::Waiting { .. }));
        assert_eq!(link.rtt_millis(), None, "no RTT shown while disconnected");
    }

    #[test]
    fn a_hung_connect_times_out_and_offline_stays_offline() {
        let mut link = link();
        link.start(0);
        assert!(link.tick(CONNECT_TIMEOUT_MILLIS - 1).is_empty());
        assert_eq!(
            link.tick(CONNECT_TIMEOUT_MILLIS),
            vec![LinkAction::Disconnect]
        );
        assert!(matches!(
            link.state(),
            LinkState::Waiting { attempt: 2, .. }
        ));

        assert_eq!(link.stop(), vec![LinkAction::Disconnect]);
        assert!(link.lost(1, "late error from the old socket").is_empty());
        assert_eq!(link.state(), &LinkState::Offline);
        assert!(link.tick(u64::MAX).is_empty());
        assert_eq!(link.next_deadline_ms(), None);
    }

    #[test]
    fn generation_counts_opened_connections() {
        let mut link = link();
        link.start(0);
        assert_eq!(link.opened(1), 1);
        link.lost(2, "closed");
        link.start(3);
        assert_eq!(link.opened(4), 2);
        assert_eq!(link.generation(), 2);
    }
}

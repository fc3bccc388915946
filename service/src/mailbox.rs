//! Per-connection outbound queues, and the policy for clients that stop reading.
//!
//! The fan-out never writes to a socket: it pushes a shared frame into each recipient's
//! [`Mailbox`] and moves on, so one slow client cannot delay the others. Each mailbox is bounded:
//!
//! - frames whose content is superseded by a newer one (clock ticks, running statistics: see
//!   [`scoreline_protocol::Delivery`]) are *coalesced*: a newer frame with the same key replaces
//!   the queued one, so a lagging client skips stale clock readings instead of piling them up;
//! - every other frame (scores, periods, status, replies) is kept in order; when more than
//!   `max_critical` of them are waiting, the client has fallen too far behind to catch up and the
//!   mailbox *overflows*: it is emptied and closed, and the session disconnects the client with
//!   close code 1013 (try again later). A reconnecting client gets fresh snapshots.
//!
//! Disconnecting rather than replacing the backlog with snapshots keeps memory strictly bounded
//! and keeps a rule clients can rely on: a connection that is open has received every score event
//! of its subscriptions, in order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Instant;

use futures_util::task::AtomicWaker;
use smallvec::SmallVec;

use crate::websocket::TextFrame;

/// One frame on its way to a client, already encoded: the same bytes, shared, go to every
/// recipient.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The JSON text frame.
    pub text: TextFrame,
    /// When the service received the event this frame carries, for the latency histogram.
    pub received_at: Option<Instant>,
    /// When that event happened at its source (its `ts_ms`), for the source-to-screen histogram.
    pub source_ms: Option<u64>,
    /// Whether a newer frame may replace it.
    pub coalesce: Option<CoalesceId>,
}

impl Outbound {
    /// A frame that must be delivered in order.
    pub fn critical(text: impl Into<TextFrame>) -> Outbound {
        Outbound {
            text: text.into(),
            received_at: None,
            source_ms: None,
            coalesce: None,
        }
    }
}

/// Identifies frames that supersede each other, e.g. `football/pl/ars-che#clock`. Built once per
/// event and shared, so comparing is cheap and exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoalesceId(pub Arc<str>);

/// Bounds of one mailbox.
#[derive(Debug, Clone, Copy)]
pub struct MailboxLimits {
    /// Most frames that must be delivered (scores, replies) waiting at once before overflow.
    pub max_critical: usize,
    /// Most frames of any kind waiting at once before overflow.
    pub max_frames: usize,
}

/// What happened to a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Appended to the queue.
    Queued,
    /// Replaced an older frame with the same coalescing key.
    Coalesced,
    /// The mailbox overflowed with this push; it is now closed and empty.
    Overflowed,
    /// The mailbox was already closed; the frame was dropped.
    Closed,
}

/// Frames waiting for one connection, oldest first. One frame (the usual case: one event per
/// wake-up) is held inline, so neither its push nor its drain allocates; a backlog spills to the
/// heap, and its buffer leaves with the frames ([`Queue::take`]), so an idle connection holds no
/// buffer. A `VecDeque` kept its buffer (4 frames of 88 B from the first push) for the life of
/// the connection: 352–704 B of every idle connection (`docs/benchmarks.md`, issue 14, session 5).
pub type Frames = SmallVec<[Outbound; 1]>;

/// The queue itself: plain data, tested without any runtime.
#[derive(Debug)]
pub struct Queue {
    frames: Frames,
    /// How many frames the last backlog taken held: a new backlog gets room for as many at once,
    /// so a connection that is always a few frames behind pays one allocation per batch, not one
    /// per doubling.
    last_backlog: usize,
    critical: usize,
    limits: MailboxLimits,
    state: QueueState,
}

/// Whether a queue still accepts frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueState {
    /// Accepting frames.
    Open,
    /// Overflowed: the client fell too far behind and is being disconnected.
    Overflowed,
    /// Closed by the session (the client left).
    Closed,
}

impl Queue {
    /// An empty, open queue.
    pub fn new(limits: MailboxLimits) -> Queue {
        Queue {
            frames: Frames::new(),
            last_backlog: 0,
            critical: 0,
            limits,
            state: QueueState::Open,
        }
    }

    /// Adds a frame, coalescing or overflowing as the policy says.
    pub fn push(&mut self, frame: Outbound) -> Pushed {
        if self.state != QueueState::Open {
            return Pushed::Closed;
        }
        let mut result = Pushed::Queued;
        if let Some(id) = &frame.coalesce {
            // Scan from the back: a superseded frame is usually recent. The queue is short unless
            // the client is lagging, and then this is the slow path anyway.
            if let Some(index) = self
                .frames
                .iter()
                .rposition(|f| f.coalesce.as_ref() == Some(id))
            {
                self.frames.remove(index);
                result = Pushed::Coalesced;
            }
        } else {
            self.critical += 1;
        }
        if self.frames.len() == 1 && self.last_backlog > 1 {
            // About to spill to the heap: size the buffer like the last backlog.
            self.frames.reserve_exact(self.last_backlog - 1);
        }
        self.frames.push(frame);
        if self.critical > self.limits.max_critical || self.frames.len() > self.limits.max_frames {
            self.frames = Frames::new();
            self.critical = 0;
            self.state = QueueState::Overflowed;
            return Pushed::Overflowed;
        }
        result
    }

    /// Moves every waiting frame into `out`, oldest first.
    pub fn drain_into(&mut self, out: &mut Vec<Outbound>) {
        out.extend(self.take());
    }

    /// Takes every waiting frame, oldest first, with the buffer of a backlog (see [`Frames`]).
    pub fn take(&mut self) -> Frames {
        self.critical = 0;
        if self.frames.len() > 1 {
            self.last_backlog = self.frames.len();
        }
        std::mem::take(&mut self.frames)
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Open, overflowed or closed.
    pub fn state(&self) -> QueueState {
        self.state
    }
}

/// A [`Queue`] shared between the hub (which pushes) and one session task (which drains and
/// writes), with a wake-up for the session.
///
/// The wake-up is a flag and the one waker of the one task that waits, not a `tokio::sync::Notify`:
/// a `Notify` puts its waiter into a list under a lock and takes it out again at every wait,
/// which a session does for every frame it sends (callgrind: about 300 instructions a delivery,
/// `docs/benchmarks.md`).
#[derive(Debug)]
pub struct Mailbox {
    queue: Mutex<Queue>,
    /// Something was pushed (or the queue overflowed, or the service is shutting down) since
    /// the session last woke for it.
    signalled: AtomicBool,
    /// The service is shutting down: the session writes what is queued and closes with 1001.
    shutting_down: AtomicBool,
    /// The session's waker while it waits.
    waker: AtomicWaker,
}

impl Mailbox {
    /// An empty mailbox.
    pub fn new(limits: MailboxLimits) -> Mailbox {
        Mailbox {
            queue: Mutex::new(Queue::new(limits)),
            signalled: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue inconsistent (every method
        // finishes its update before returning), so a poisoned lock is still usable.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Pushes a frame and wakes the session when it may be waiting: the session drains the whole
    /// queue at every wake-up, so only the push into an empty queue (and an overflow, which a
    /// session stuck on a write must hear about) needs one. At a million pushes a second this
    /// saves most of the wake-ups.
    pub fn push(&self, frame: Outbound) -> Pushed {
        let (pushed, was_empty) = {
            let mut queue = self.lock();
            let was_empty = queue.is_empty();
            (queue.push(frame), was_empty)
        };
        if pushed == Pushed::Overflowed || (pushed != Pushed::Closed && was_empty) {
            self.wake();
        }
        pushed
    }

    fn wake(&self) {
        self.signalled.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Tells the session the service is shutting down (it wakes for it).
    pub fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::Release);
        self.wake();
    }

    /// Whether [`Mailbox::shut_down`] was called.
    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Takes every waiting frame, oldest first, with the queue's buffer (see [`Queue::take`]);
    /// returns the queue's state too.
    pub fn take(&self) -> (Frames, QueueState) {
        let mut queue = self.lock();
        (queue.take(), queue.state())
    }

    /// Takes every waiting frame into `out`; returns the queue's state.
    pub fn drain_into(&self, out: &mut Vec<Outbound>) -> QueueState {
        let mut queue = self.lock();
        queue.drain_into(out);
        queue.state()
    }

    /// Waits until something was pushed (or the mailbox overflowed) since the last wake-up.
    /// For the one session that drains this mailbox: a second waiter would replace its waker.
    pub async fn ready(&self) {
        std::future::poll_fn(|context| {
            if self.signalled.swap(false, Ordering::AcqRel) {
                return Poll::Ready(());
            }
            self.waker.register(context.waker());
            // A push between the check and the registration woke no one: look again.
            if self.signalled.swap(false, Ordering::AcqRel) {
                return Poll::Ready(());
            }
            Poll::Pending
        })
        .await;
    }

    /// Whether the mailbox overflowed.
    pub fn overflowed(&self) -> bool {
        self.lock().state() == QueueState::Overflowed
    }

    /// Marks the mailbox closed so the hub stops queueing for it.
    pub fn close(&self) {
        let mut queue = self.lock();
        if queue.state == QueueState::Open {
            queue.state = QueueState::Closed;
        }
        queue.frames.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: MailboxLimits = MailboxLimits {
        max_critical: 3,
        max_frames: 5,
    };

    fn critical(text: &str) -> Outbound {
        Outbound::critical(text.to_owned())
    }

    fn clock(match_topic: &str, text: &str) -> Outbound {
        Outbound {
            text: text.into(),
            received_at: None,
            source_ms: None,
            coalesce: Some(CoalesceId(format!("{match_topic}#clock").into())),
        }
    }

    fn texts(queue: &mut Queue) -> Vec<String> {
        let mut out = Vec::new();
        queue.drain_into(&mut out);
        out.into_iter()
            .map(|frame| frame.text.to_string())
            .collect()
    }

    #[test]
    fn one_frame_stays_inline_and_a_backlog_gets_the_room_of_the_last_one() {
        let mut queue = Queue::new(LIMITS);
        queue.push(critical("a"));
        assert!(!queue.frames.spilled(), "one waiting frame needs no buffer");
        assert_eq!(texts(&mut queue), ["a"]);
        for text in ["b", "c", "d"] {
            queue.push(critical(text));
        }
        assert_eq!(texts(&mut queue), ["b", "c", "d"]);
        assert!(!queue.frames.spilled(), "the backlog's buffer left with it");
        queue.push(critical("g"));
        queue.push(critical("h"));
        assert!(
            queue.frames.capacity() >= 3,
            "room for a backlog like the last"
        );
        assert_eq!(texts(&mut queue), ["g", "h"]);
    }

    #[test]
    fn keeps_critical_frames_in_order() {
        let mut queue = Queue::new(LIMITS);
        assert_eq!(queue.push(critical("a")), Pushed::Queued);
        assert_eq!(queue.push(critical("b")), Pushed::Queued);
        assert_eq!(texts(&mut queue), ["a", "b"]);
        assert!(queue.is_empty());
    }

    #[test]
    fn newer_clock_replaces_queued_clock_of_same_match_only() {
        let mut queue = Queue::new(LIMITS);
        queue.push(clock("m1", "m1 10s"));
        queue.push(critical("goal"));
        queue.push(clock("m2", "m2 10s"));
        assert_eq!(queue.push(clock("m1", "m1 11s")), Pushed::Coalesced);
        assert_eq!(texts(&mut queue), ["goal", "m2 10s", "m1 11s"]);
    }

    #[test]
    fn coalescing_never_overflows_on_its_own() {
        let mut queue = Queue::new(LIMITS);
        for second in 0..1000 {
            queue.push(clock("m1", &format!("{second}")));
        }
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.state(), QueueState::Open);
    }

    #[test]
    fn too_many_critical_frames_overflow_and_close() {
        let mut queue = Queue::new(LIMITS);
        for text in ["a", "b", "c"] {
            assert_eq!(queue.push(critical(text)), Pushed::Queued);
        }
        assert_eq!(queue.push(critical("d")), Pushed::Overflowed);
        assert!(queue.is_empty());
        assert_eq!(queue.push(critical("e")), Pushed::Closed);
        assert_eq!(queue.state(), QueueState::Overflowed);
    }

    #[test]
    fn too_many_frames_of_any_kind_overflow() {
        let mut queue = Queue::new(LIMITS);
        queue.push(critical("a"));
        for index in 0..4 {
            assert_ne!(
                queue.push(clock(&format!("m{index}"), "t")),
                Pushed::Overflowed
            );
        }
        assert_eq!(queue.push(clock("m9", "t")), Pushed::Overflowed);
    }

    #[test]
    fn draining_resets_the_backlog() {
        let mut queue = Queue::new(LIMITS);
        for round in 0..10 {
            for text in ["a", "b", "c"] {
                assert_eq!(queue.push(critical(text)), Pushed::Queued, "round {round}");
            }
            assert_eq!(texts(&mut queue).len(), 3);
        }
    }

    fn limits() -> MailboxLimits {
        MailboxLimits {
            max_critical: 4,
            max_frames: 8,
        }
    }

    /// Whether `ready()` completes without waiting.
    fn is_ready(mailbox: &Mailbox) -> bool {
        use futures_util::FutureExt;
        mailbox.ready().now_or_never().is_some()
    }

    #[test]
    fn a_push_before_the_session_waits_is_not_lost_and_wakes_it_once() {
        let mailbox = Mailbox::new(limits());
        assert!(!is_ready(&mailbox), "nothing pushed yet");
        mailbox.push(critical("a"));
        assert!(
            is_ready(&mailbox),
            "the push made while not waiting is kept"
        );
        assert!(!is_ready(&mailbox), "and taken by that one wake-up");
    }

    #[tokio::test]
    async fn a_push_wakes_the_waiting_session_and_an_overflow_wakes_it_again() {
        let mailbox = Arc::new(Mailbox::new(limits()));
        let waiting = tokio::spawn({
            let mailbox = Arc::clone(&mailbox);
            async move { mailbox.ready().await }
        });
        tokio::task::yield_now().await;
        mailbox.push(critical("a"));
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("the push woke the session")
            .unwrap();
        let (frames, state) = mailbox.take();
        assert_eq!((frames.len(), state), (1, QueueState::Open));

        // Pushes into a queue that is not empty wake no one (the session drains all at once)...
        mailbox.push(critical("b"));
        assert!(is_ready(&mailbox));
        for text in ["c", "d", "e"] {
            mailbox.push(critical(text));
            assert!(!is_ready(&mailbox), "{text}");
        }
        // ...but an overflow does: a session stuck on a write must hear of it.
        assert_eq!(mailbox.push(critical("f")), Pushed::Overflowed);
        assert!(is_ready(&mailbox));
        assert!(mailbox.overflowed());
    }

    #[test]
    fn shutting_down_wakes_the_session_and_stays_said() {
        let mailbox = Mailbox::new(limits());
        assert!(!mailbox.shutting_down());
        mailbox.shut_down();
        assert!(is_ready(&mailbox));
        assert!(mailbox.shutting_down());
        assert!(mailbox.shutting_down(), "read, not taken");
        // What is still pushed is queued, for the last flush.
        assert_eq!(mailbox.push(critical("a")), Pushed::Queued);
    }
}

//! Checks the delivery guarantee from a client's side: per match, every `seq` once and in order,
//! or an explicit `resync`.

use std::collections::BTreeMap;

use scoreline_protocol::{MatchSnapshot, MatchTopic, ResumePoint, ServerMessage, apply};

/// What one client has seen, per match. Feed it every message; it fails loudly on a duplicate, a
/// reordering or a silent gap.
#[derive(Debug, Default, Clone)]
pub struct DeliveryChecker {
    /// The position of each match: the last epoch and seq applied.
    positions: BTreeMap<MatchTopic, ResumePoint>,
    /// Events received per match.
    events: BTreeMap<MatchTopic, u64>,
    /// Resyncs received per match.
    resyncs: BTreeMap<MatchTopic, u64>,
    /// Seqs skipped per match that held only coalesced readings, as `prev_critical_seq` proved.
    skipped: BTreeMap<MatchTopic, u64>,
    /// The state of each match as this client builds it with the reducer, from the snapshots
    /// and events it received: what a fan would see.
    snapshots: BTreeMap<MatchTopic, MatchSnapshot>,
}

impl DeliveryChecker {
    /// A match's state starts over from `snapshot`, and its events are owed from there.
    fn start_from(&mut self, snapshot: &MatchSnapshot) {
        let point = ResumePoint {
            epoch: snapshot.epoch,
            seq: snapshot.seq,
        };
        self.positions.insert(snapshot.match_topic.clone(), point);
        self.snapshots
            .insert(snapshot.match_topic.clone(), snapshot.clone());
    }

    /// Takes one server message; an error describes a broken guarantee.
    pub fn observe(&mut self, message: &ServerMessage) -> anyhow::Result<()> {
        match message {
            ServerMessage::Subscribed { snapshots, .. } => {
                for snapshot in snapshots {
                    self.start_from(snapshot);
                }
            }
            ServerMessage::Resync { snapshot, .. } => {
                self.start_from(snapshot);
                *self
                    .resyncs
                    .entry(snapshot.match_topic.clone())
                    .or_default() += 1;
            }
            ServerMessage::Event(event) => {
                let expected = match self.positions.get(&event.match_topic) {
                    Some(point) if point.epoch == event.epoch => point.seq + 1,
                    Some(point) => anyhow::bail!(
                        "{}: event of epoch {} seq {} while at epoch {} without a resync",
                        event.match_topic,
                        event.epoch,
                        event.seq,
                        point.epoch
                    ),
                    None => 1,
                };
                // A skip is harmless when the event proves that everything skipped was a
                // coalesced reading: the previous critical event is one this client has.
                let harmless_skip = event.seq > expected
                    && event
                        .prev_critical_seq
                        .is_some_and(|previous| previous < expected);
                anyhow::ensure!(
                    event.seq == expected || harmless_skip,
                    "{}: got seq {} (prev_critical_seq {:?}) but expected {expected} (duplicate, reordering or gap)",
                    event.match_topic,
                    event.seq,
                    event.prev_critical_seq
                );
                if harmless_skip {
                    *self.skipped.entry(event.match_topic.clone()).or_default() +=
                        event.seq - expected;
                }
                let snapshot = self
                    .snapshots
                    .entry(event.match_topic.clone())
                    .or_insert_with(|| MatchSnapshot::new(event.match_topic.clone()));
                if snapshot.seq + 1 == expected || snapshot.seq == 0 {
                    apply(snapshot, event).map_err(|error| {
                        anyhow::anyhow!(
                            "{}: seq {} does not apply to the state built so far: {error}",
                            event.match_topic,
                            event.seq
                        )
                    })?;
                }
                let point = ResumePoint {
                    epoch: event.epoch,
                    seq: event.seq,
                };
                self.positions.insert(event.match_topic.clone(), point);
                *self.events.entry(event.match_topic.clone()).or_default() += 1;
            }
            _ => {}
        }
        Ok(())
    }

    /// Starts from a known position of a match, as a client that already holds it does.
    pub fn start_at(&mut self, topic: &MatchTopic, point: ResumePoint) {
        self.positions.insert(topic.clone(), point);
    }

    /// Where the client stands, to resume from after a reconnect.
    pub fn resume_points(&self) -> BTreeMap<String, ResumePoint> {
        self.positions
            .iter()
            .map(|(topic, point)| (topic.to_string(), *point))
            .collect()
    }

    /// The last seq seen of a match.
    pub fn position(&self, topic: &str) -> Option<ResumePoint> {
        self.positions.get(topic).copied()
    }

    /// Events received for a match.
    pub fn events(&self, topic: &str) -> u64 {
        self.events.get(topic).copied().unwrap_or(0)
    }

    /// Resyncs received for a match.
    pub fn resyncs(&self, topic: &str) -> u64 {
        self.resyncs.get(topic).copied().unwrap_or(0)
    }

    /// Resyncs received over all matches.
    pub fn total_resyncs(&self) -> u64 {
        self.resyncs.values().sum()
    }

    /// Seqs of a match skipped harmlessly (coalesced readings, proven by `prev_critical_seq`).
    pub fn skipped(&self, topic: &str) -> u64 {
        self.skipped.get(topic).copied().unwrap_or(0)
    }

    /// The match as this client shows it: the last snapshot received with every later event
    /// applied by the reducer.
    pub fn snapshot(&self, topic: &str) -> Option<&MatchSnapshot> {
        self.snapshots.get(topic)
    }
}

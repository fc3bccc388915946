//! The recent events of one match, as serialised frames, so a client that reconnects can be sent
//! exactly what it missed.
//!
//! Plain data, bounded: at most `capacity` events, oldest dropped first. After a restart it is
//! refilled from the match's Redis Stream (see `broker.rs`), so resuming survives a restart too.

use std::collections::VecDeque;

use crate::websocket::TextFrame;

/// One event of the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Its place in the match's history.
    pub seq: u64,
    /// The frame clients got; `None` for an event that could not apply and was skipped (a
    /// counted no-op that clients never see, but that holds its seq).
    pub frame: Option<TextFrame>,
    /// A digest of the event's content (see `hub::fingerprint`), to tell a duplicate from a
    /// different event published under the same seq.
    pub fingerprint: u64,
}

/// Frames of the latest events of one match, in `seq` order without holes.
#[derive(Debug, Default, Clone)]
pub struct RecentEvents {
    events: VecDeque<Recorded>,
}

impl RecentEvents {
    /// Records event `seq`, which must follow the newest one held; one that does not follow
    /// starts the record afresh (the match skipped values or was reset).
    pub fn push(&mut self, recorded: Recorded, capacity: usize) {
        if self
            .events
            .back()
            .is_some_and(|last| last.seq + 1 != recorded.seq)
        {
            self.events.clear();
        }
        if capacity == 0 {
            return;
        }
        if self.events.len() == capacity {
            self.events.pop_front();
        }
        self.events.push_back(recorded);
    }

    /// Adds older events in front, e.g. read back from Redis after a restart; events that do not
    /// end right before the oldest one held are ignored, so the record never gets holes.
    pub fn prepend(&mut self, older: Vec<Recorded>, capacity: usize) {
        let Some(first_held) = self.events.front().map(|first| first.seq) else {
            for recorded in older {
                self.push(recorded, capacity);
            }
            return;
        };
        let fits = older.last().is_some_and(|last| last.seq + 1 == first_held)
            && older.windows(2).all(|pair| pair[0].seq + 1 == pair[1].seq);
        if !fits {
            return;
        }
        let room = capacity.saturating_sub(self.events.len());
        for recorded in older.into_iter().rev().take(room) {
            self.events.push_front(recorded);
        }
    }

    /// The frames of every event after `after_seq`, if all of them are held (skipped events have
    /// none).
    pub fn after(&self, after_seq: u64) -> Option<impl Iterator<Item = &TextFrame>> {
        let first = self.events.front().map_or(u64::MAX, |first| first.seq);
        let last = self.events.back().map_or(0, |last| last.seq);
        if after_seq >= last || after_seq + 1 < first {
            return None;
        }
        let skip = usize::try_from(after_seq + 1 - first).unwrap_or(usize::MAX);
        Some(
            self.events
                .iter()
                .skip(skip)
                .filter_map(|recorded| recorded.frame.as_ref()),
        )
    }

    /// The fingerprint of event `seq`, if it is held.
    pub fn fingerprint(&self, seq: u64) -> Option<u64> {
        let first = self.events.front()?.seq;
        let index = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.events.get(index).map(|recorded| recorded.fingerprint)
    }

    /// Every event held, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Recorded> {
        self.events.iter()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Drops everything (the match's history was reset).
    pub fn clear(&mut self) {
        self.events.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(recent: &RecentEvents, after: u64) -> Option<Vec<String>> {
        recent
            .after(after)
            .map(|frames| frames.map(|f| f.to_string()).collect())
    }

    fn recorded(seq: u64) -> Recorded {
        Recorded {
            seq,
            frame: Some(seq.to_string().into()),
            fingerprint: seq * 7,
        }
    }

    fn filled(seqs: std::ops::RangeInclusive<u64>, capacity: usize) -> RecentEvents {
        let mut recent = RecentEvents::default();
        for seq in seqs {
            recent.push(recorded(seq), capacity);
        }
        recent
    }

    #[test]
    fn serves_exactly_what_was_missed_when_it_is_all_held() {
        let recent = filled(1..=10, 4);
        assert_eq!(frames(&recent, 8), Some(vec!["9".into(), "10".into()]));
        assert_eq!(
            frames(&recent, 6),
            Some(vec!["7".into(), "8".into(), "9".into(), "10".into()])
        );
        assert_eq!(frames(&recent, 5), None, "event 6 was dropped");
        assert_eq!(frames(&recent, 10), None, "nothing was missed");
    }

    #[test]
    fn a_hole_starts_the_record_afresh() {
        let mut recent = filled(1..=3, 10);
        recent.push(recorded(7), 10);
        assert_eq!(frames(&recent, 6), Some(vec!["7".into()]));
        assert_eq!(frames(&recent, 3), None);
    }

    #[test]
    fn prepending_history_read_back_extends_the_record_without_holes() {
        let mut recent = filled(5..=6, 10);
        recent.prepend(vec![recorded(3), recorded(4)], 10);
        assert_eq!(frames(&recent, 2).unwrap().len(), 4);
        recent.prepend(vec![recorded(1)], 10);
        assert_eq!(frames(&recent, 0), None, "1 does not touch 3: ignored");
        let mut empty = RecentEvents::default();
        empty.prepend(vec![recorded(1), recorded(2)], 10);
        assert_eq!(frames(&empty, 0).unwrap().len(), 2);
    }

    #[test]
    fn skipped_events_hold_their_seq_but_send_nothing() {
        let mut recent = filled(1..=2, 10);
        recent.push(
            Recorded {
                seq: 3,
                frame: None,
                fingerprint: 0,
            },
            10,
        );
        recent.push(recorded(4), 10);
        assert_eq!(frames(&recent, 1), Some(vec!["2".into(), "4".into()]));
        assert_eq!(recent.fingerprint(4), Some(28));
        assert_eq!(recent.fingerprint(3), Some(0));
        assert_eq!(recent.fingerprint(9), None);
    }
}

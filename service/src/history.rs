//! The recent events of one match, as serialised frames, so a client that reconnects can be sent
//! exactly what it missed.
//!
//! Plain data, bounded: at most `capacity` events, oldest dropped first. After a restart it is
//! refilled from the match's Redis Stream (see `broker.rs`), so resuming survives a restart too.

use std::collections::VecDeque;

use bytestring::ByteString;

/// Frames of the latest events of one match, in `seq` order without holes.
#[derive(Debug, Default, Clone)]
pub struct RecentEvents {
    frames: VecDeque<(u64, ByteString)>,
}

impl RecentEvents {
    /// Records the frame of event `seq`, which must follow the newest one held; a frame that does
    /// not follow starts the record afresh (the match skipped values or was reset).
    pub fn push(&mut self, seq: u64, frame: ByteString, capacity: usize) {
        if self.frames.back().is_some_and(|(last, _)| *last + 1 != seq) {
            self.frames.clear();
        }
        if capacity == 0 {
            return;
        }
        if self.frames.len() == capacity {
            self.frames.pop_front();
        }
        self.frames.push_back((seq, frame));
    }

    /// Adds older frames in front, e.g. read back from Redis after a restart; frames that do not
    /// end right before the oldest one held are ignored, so the record never gets holes.
    pub fn prepend(&mut self, older: Vec<(u64, ByteString)>, capacity: usize) {
        let Some(first_held) = self.frames.front().map(|(seq, _)| *seq) else {
            for (seq, frame) in older {
                self.push(seq, frame, capacity);
            }
            return;
        };
        let fits = older.last().is_some_and(|(seq, _)| seq + 1 == first_held)
            && older.windows(2).all(|pair| pair[0].0 + 1 == pair[1].0);
        if !fits {
            return;
        }
        let room = capacity.saturating_sub(self.frames.len());
        for item in older.into_iter().rev().take(room) {
            self.frames.push_front(item);
        }
    }

    /// The frames of every event after `after_seq`, if all of them are held.
    pub fn after(&self, after_seq: u64) -> Option<impl Iterator<Item = &ByteString>> {
        let first = self.frames.front().map_or(u64::MAX, |(seq, _)| *seq);
        let last = self.frames.back().map_or(0, |(seq, _)| *seq);
        if after_seq >= last || after_seq + 1 < first {
            return None;
        }
        let skip = usize::try_from(after_seq + 1 - first).unwrap_or(usize::MAX);
        Some(self.frames.iter().skip(skip).map(|(_, frame)| frame))
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Drops everything (the match's history was reset).
    pub fn clear(&mut self) {
        self.frames.clear();
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

    fn filled(seqs: std::ops::RangeInclusive<u64>, capacity: usize) -> RecentEvents {
        let mut recent = RecentEvents::default();
        for seq in seqs {
            recent.push(seq, seq.to_string().into(), capacity);
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
        recent.push(7, "7".into(), 10);
        assert_eq!(frames(&recent, 6), Some(vec!["7".into()]));
        assert_eq!(frames(&recent, 3), None);
    }

    #[test]
    fn prepending_history_read_back_extends_the_record_without_holes() {
        let mut recent = filled(5..=6, 10);
        recent.prepend(vec![(3, "3".into()), (4, "4".into())], 10);
        assert_eq!(frames(&recent, 2).unwrap().len(), 4);
        recent.prepend(vec![(1, "1".into())], 10);
        assert_eq!(frames(&recent, 0), None, "1 does not touch 3: ignored");
        let mut empty = RecentEvents::default();
        empty.prepend(vec![(1, "1".into()), (2, "2".into())], 10);
        assert_eq!(frames(&empty, 0).unwrap().len(), 2);
    }
}

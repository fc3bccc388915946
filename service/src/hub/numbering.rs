//! Numbering for the in-process broker: what the Redis publish script does, for a service that
//! runs without Redis (demos). Each match's next seq follows from its state in the hub.

use scoreline_protocol::{EventDraft, ScoreEvent};

use super::Hub;

impl Hub {
    /// Gives a draft the next place in its match's history (a new epoch when asked or new).
    pub(super) fn number(&self, draft: EventDraft, new_history: bool) -> ScoreEvent {
        let current = self.matches.get(draft.match_topic.as_str());
        let (epoch, seq) = match current {
            Some(snapshot) if !new_history && snapshot.seq > 0 => {
                (snapshot.epoch, snapshot.seq + 1)
            }
            Some(snapshot) => (crate::now_ms().max(snapshot.epoch + 1), 1),
            None => (crate::now_ms(), 1),
        };
        draft.numbered(epoch, seq)
    }
}

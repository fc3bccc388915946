//! What the fan follows: sports, competitions and single matches, as topics.
//!
//! Each followed topic is exactly one server subscription. Overlaps (a competition and one of its
//! matches) are allowed: the server may then send an event twice, and the reducer drops the
//! duplicate by `seq`. Keeping subscriptions equal to the list means following and unfollowing
//! never has to rewrite other subscriptions.

use std::collections::BTreeSet;

use scoreline_protocol::{MatchTopic, Topic};

/// The set of followed topics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FollowList {
    topics: BTreeSet<Topic>,
}

impl FollowList {
    /// A list from topics.
    pub fn new(topics: impl IntoIterator<Item = Topic>) -> FollowList {
        FollowList {
            topics: topics.into_iter().collect(),
        }
    }

    /// Parses persisted topic strings, logging and skipping any that are no longer valid, so a
    /// hand-edited or old settings file never stops the viewer from starting.
    pub fn from_strings<'a>(texts: impl IntoIterator<Item = &'a str>) -> FollowList {
        FollowList::new(texts.into_iter().filter_map(|text| {
            Topic::parse(text)
                .map_err(|error| tracing::warn!(topic = text, %error, "ignoring saved follow"))
                .ok()
        }))
    }

    /// The topics as strings, for persistence.
    pub fn to_strings(&self) -> Vec<String> {
        self.topics.iter().map(|topic| topic.to_string()).collect()
    }

    /// Follows `topic`; returns whether it was new.
    pub fn follow(&mut self, topic: Topic) -> bool {
        self.topics.insert(topic)
    }

    /// Stops following `topic` itself (not narrower topics); returns whether it was followed.
    pub fn unfollow(&mut self, topic: &Topic) -> bool {
        self.topics.remove(topic)
    }

    /// Whether `topic` itself is in the list.
    pub fn contains(&self, topic: &Topic) -> bool {
        self.topics.contains(topic)
    }

    /// The followed topic that covers `topic` and is broader than it, if any: the reason the
    /// fan cannot unfollow `topic` on its own ("followed through Football").
    pub fn covered_by_broader(&self, topic: &Topic) -> Option<&Topic> {
        self.topics
            .iter()
            .find(|followed| followed.depth() < topic.depth() && followed.covers(topic))
    }

    /// Whether the fan receives this match through any followed topic.
    pub fn covers(&self, match_topic: &MatchTopic) -> bool {
        self.topics
            .iter()
            .any(|followed| followed.covers(match_topic.topic()))
    }

    /// The followed topics, broadest and alphabetically first.
    pub fn topics(&self) -> impl Iterator<Item = &Topic> {
        self.topics.iter()
    }

    /// Whether nothing is followed.
    pub fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }

    /// How many topics are followed.
    pub fn len(&self) -> usize {
        self.topics.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(text: &str) -> Topic {
        Topic::parse(text).unwrap()
    }

    #[test]
    fn prefixes_cover_whole_segments_only() {
        let list = FollowList::new([topic("football/premier-league"), topic("tennis")]);
        let covered = MatchTopic::parse("football/premier-league/ars-che").unwrap();
        let similar = MatchTopic::parse("football/premier-league-2/ars-che").unwrap();
        let tennis = MatchTopic::parse("tennis/wimbledon/a-b").unwrap();
        assert!(list.covers(&covered));
        assert!(!list.covers(&similar));
        assert!(list.covers(&tennis));
    }

    #[test]
    fn broader_follow_is_reported_for_narrower_topics() {
        let list = FollowList::new([topic("football")]);
        assert_eq!(
            list.covered_by_broader(&topic("football/premier-league")),
            Some(&topic("football"))
        );
        assert_eq!(list.covered_by_broader(&topic("football")), None);
        assert_eq!(list.covered_by_broader(&topic("tennis/atp")), None);
    }

    #[test]
    fn saved_strings_round_trip_and_bad_ones_are_skipped() {
        let list = FollowList::from_strings(["tennis", "Not A Topic", "football/premier-league"]);
        assert_eq!(list.to_strings(), vec!["football/premier-league", "tennis"]);
    }

    #[test]
    fn follow_and_unfollow_report_changes() {
        let mut list = FollowList::default();
        assert!(list.follow(topic("basketball")));
        assert!(!list.follow(topic("basketball")));
        assert!(list.unfollow(&topic("basketball")));
        assert!(!list.unfollow(&topic("basketball")));
        assert!(list.is_empty());
    }
}

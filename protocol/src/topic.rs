//! Topics: the `sport/competition/match` paths that events are published under and that clients
//! subscribe to.
//!
//! A topic is one to three lowercase slugs joined by `/`. A three-segment topic names one match
//! ([`MatchTopic`]); a shorter one is a prefix that covers every match below it, so a fan can follow
//! a whole sport or competition with one subscription. Validation happens once, at the edge, in
//! [`Topic::parse`]; everything past it can rely on the invariants.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How many segments a match topic has: sport, competition, match.
pub const MATCH_DEPTH: usize = 3;

/// The longest segment accepted; long enough for `ars-che-2025-03-01-replay-2`, short enough that
/// a hostile client cannot make routing keys expensive.
pub const MAX_SEGMENT_LEN: usize = 64;

/// Why a string is not a valid topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The string was empty.
    #[error("topic is empty")]
    Empty,
    /// More segments than `sport/competition/match`.
    #[error("topic has {0} segments; at most 3 (sport/competition/match) are allowed")]
    TooDeep(usize),
    /// A segment is empty (leading, trailing or doubled `/`).
    #[error("topic has an empty segment (check for a leading, trailing or doubled '/')")]
    EmptySegment,
    /// A segment is longer than [`MAX_SEGMENT_LEN`].
    #[error("topic segment is {0} bytes long; at most {MAX_SEGMENT_LEN} are allowed")]
    SegmentTooLong(usize),
    /// A segment has a character other than `a-z`, `0-9` and inner `-`.
    #[error("topic segment {0:?} must be a lowercase slug: a-z, 0-9 and '-' between them")]
    NotASlug(String),
    /// A match was expected but the topic is a prefix.
    #[error("topic {0:?} is a prefix; a match topic has exactly 3 segments")]
    NotAMatch(String),
}

/// A validated topic: one to three lowercase slugs joined by `/`.
///
/// It borrows as `str`, so maps keyed by `Topic` can be searched with a plain `&str` prefix
/// without allocating (routing does this for every event). The text is shared: a clone is a
/// reference count, so the service's indexes (the topics a fan asked for, the ones routed, the
/// map keys) hold one copy of each topic a fan sent, and a subscribe allocates nothing more.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Arc<str>);

impl Topic {
    /// Parses and validates a topic such as `football` or `football/premier-league/ars-che`.
    pub fn parse(text: &str) -> Result<Topic, TopicError> {
        if text.is_empty() {
            return Err(TopicError::Empty);
        }
        let mut depth = 0;
        for segment in text.split('/') {
            depth += 1;
            if depth > MATCH_DEPTH {
                return Err(TopicError::TooDeep(text.split('/').count()));
            }
            check_segment(segment)?;
        }
        Ok(Topic(text.into()))
    }

    /// The topic as written, e.g. `football/premier-league`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segments from the sport down.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// Number of segments: 1 for a sport, 2 for a competition, 3 for a match.
    pub fn depth(&self) -> usize {
        self.0.bytes().filter(|&b| b == b'/').count() + 1
    }

    /// The first segment, which names the sport.
    pub fn sport_slug(&self) -> &str {
        self.segments().next().unwrap_or_default()
    }

    /// Whether this topic names a single match.
    pub fn is_match(&self) -> bool {
        self.depth() == MATCH_DEPTH
    }

    /// Whether a subscription to `self` receives events of `other`: equal, or a whole-segment prefix.
    pub fn covers(&self, other: &Topic) -> bool {
        covers(self.as_str(), other.as_str())
    }

    /// The topic itself and each prefix of it, shortest first: `a`, `a/b`, `a/b/c`.
    ///
    /// These are exactly the subscriptions that can cover the topic, so routing an event costs one
    /// map look-up per item, whatever else is subscribed.
    pub fn prefixes(&self) -> impl DoubleEndedIterator<Item = &str> {
        let text = self.as_str();
        text.match_indices('/')
            .map(move |(index, _)| &text[..index])
            .chain(std::iter::once(text))
    }
}

fn covers(prefix: &str, topic: &str) -> bool {
    match topic.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

fn check_segment(segment: &str) -> Result<(), TopicError> {
    if segment.is_empty() {
        return Err(TopicError::EmptySegment);
    }
    if segment.len() > MAX_SEGMENT_LEN {
        return Err(TopicError::SegmentTooLong(segment.len()));
    }
    let bytes = segment.as_bytes();
    let slug_byte = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    let hyphen_at_edge = bytes[0] == b'-' || bytes[bytes.len() - 1] == b'-';
    if !bytes.iter().all(slug_byte) || hyphen_at_edge {
        return Err(TopicError::NotASlug(segment.to_owned()));
    }
    Ok(())
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Topic({:?})", &*self.0)
    }
}

impl Borrow<str> for Topic {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Topic {
    type Err = TopicError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Topic::parse(text)
    }
}

impl Serialize for Topic {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Topic {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Topic::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A topic with exactly three segments: one match. Events always name one.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MatchTopic(Topic);

impl MatchTopic {
    /// Parses a `sport/competition/match` topic.
    pub fn parse(text: &str) -> Result<MatchTopic, TopicError> {
        MatchTopic::try_from(Topic::parse(text)?)
    }

    /// The topic as written.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The same value as a general [`Topic`].
    pub fn topic(&self) -> &Topic {
        &self.0
    }

    /// The middle segment, which names the competition.
    pub fn competition_slug(&self) -> &str {
        self.0.segments().nth(1).unwrap_or_default()
    }

    /// The last segment, which names the match within its competition.
    pub fn match_slug(&self) -> &str {
        self.0.segments().nth(2).unwrap_or_default()
    }
}

impl TryFrom<Topic> for MatchTopic {
    type Error = TopicError;
    fn try_from(topic: Topic) -> Result<Self, Self::Error> {
        if topic.is_match() {
            Ok(MatchTopic(topic))
        } else {
            Err(TopicError::NotAMatch(topic.as_str().to_owned()))
        }
    }
}

impl std::ops::Deref for MatchTopic {
    type Target = Topic;
    fn deref(&self) -> &Topic {
        &self.0
    }
}

impl Borrow<str> for MatchTopic {
    fn borrow(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for MatchTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for MatchTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MatchTopic({:?})", self.as_str())
    }
}

impl std::str::FromStr for MatchTopic {
    type Err = TopicError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        MatchTopic::parse(text)
    }
}

impl Serialize for MatchTopic {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for MatchTopic {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        MatchTopic::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<usize, TopicError>) {
        assert_eq!(
            Topic::parse(input).map(|t| t.depth()),
            expected,
            "input {input:?}"
        );
    }

    #[test]
    fn parses_valid_and_rejects_invalid_topics() {
        check("football", Ok(1));
        check("football/premier-league", Ok(2));
        check("football/premier-league/ars-che-2025-03-01", Ok(3));
        check("tennis/atp-wimbledon-2019/djokovic-federer", Ok(3));
        check("", Err(TopicError::Empty));
        check("a/b/c/d", Err(TopicError::TooDeep(4)));
        check("football/", Err(TopicError::EmptySegment));
        check("/football", Err(TopicError::EmptySegment));
        check("football//x", Err(TopicError::EmptySegment));
        check("Football", Err(TopicError::NotASlug("Football".into())));
        check("foot ball", Err(TopicError::NotASlug("foot ball".into())));
        check("-football", Err(TopicError::NotASlug("-football".into())));
        check("football-", Err(TopicError::NotASlug("football-".into())));
        check("foot*", Err(TopicError::NotASlug("foot*".into())));
        check("é", Err(TopicError::NotASlug("é".into())));
        check(&"x".repeat(65), Err(TopicError::SegmentTooLong(65)));
        check(&"x".repeat(64), Ok(1));
    }

    #[test]
    fn covers_whole_segments_only() {
        let topic = |s| Topic::parse(s).unwrap();
        let game = topic("football/pl/ars-che");
        assert!(topic("football").covers(&game));
        assert!(topic("football/pl").covers(&game));
        assert!(game.covers(&game));
        assert!(!topic("football/p").covers(&game));
        assert!(!topic("foot").covers(&game));
        assert!(!game.covers(&topic("football/pl")));
    }

    #[test]
    fn prefixes_run_from_sport_to_match() {
        let game = Topic::parse("football/pl/ars-che").unwrap();
        let prefixes: Vec<_> = game.prefixes().collect();
        assert_eq!(prefixes, ["football", "football/pl", "football/pl/ars-che"]);
        let sport = Topic::parse("tennis").unwrap();
        assert_eq!(sport.prefixes().collect::<Vec<_>>(), ["tennis"]);
    }

    #[test]
    fn match_topic_requires_three_segments() {
        assert!(MatchTopic::parse("football/pl/ars-che").is_ok());
        assert_eq!(
            MatchTopic::parse("football/pl"),
            Err(TopicError::NotAMatch("football/pl".into()))
        );
        let game = MatchTopic::parse("football/pl/ars-che").unwrap();
        assert_eq!(game.competition_slug(), "pl");
        assert_eq!(game.match_slug(), "ars-che");
        assert_eq!(game.sport_slug(), "football");
    }

    #[test]
    fn serde_validates() {
        let parsed: Result<Topic, _> = serde_json::from_str("\"Football\"");
        assert!(parsed.is_err());
        let parsed: Topic = serde_json::from_str("\"football/pl\"").unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), "\"football/pl\"");
    }
}

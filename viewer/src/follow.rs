//! What the fan follows: sports, competitions, single matches (as topics) and teams (by name).
//!
//! Topics are server subscriptions. A team is not a topic: following one means following every
//! match the server lists with that team, which the session finds in the catalogue and records
//! here with [`FollowList::set_team_matches`]. [`FollowList::subscriptions`] is then the exact
//! set of topics to subscribe: the followed topics plus the team matches no followed topic
//! already covers.
//!
//! The list never holds redundant follows: following a topic that a broader follow covers
//! changes nothing, and following a broader topic drops the narrower ones it covers. Callers
//! diff [`FollowList::subscriptions`] before and after a change to know what to subscribe and
//! unsubscribe, so a change never rewrites unrelated subscriptions.

use std::collections::{BTreeMap, BTreeSet};

use scoreline_protocol::{MatchSummary, MatchTopic, Topic};

/// A followed team (or tennis player): its name within a sport. Names are compared without
/// regard to case or surrounding spaces, so a catalogue that spells "Arsenal" the same way finds
/// its matches whatever the fan typed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TeamFollow {
    /// The sport's topic, e.g. `football`.
    pub sport: Topic,
    /// The team's name as the feeds spell it, e.g. `Arsenal`.
    pub name: String,
}

impl TeamFollow {
    /// A team of `sport` (a one-segment topic) called `name`; `None` when the sport is not a
    /// sport topic or the name is blank.
    pub fn new(sport: Topic, name: &str) -> Option<TeamFollow> {
        let name = name.trim();
        (sport.depth() == 1 && !name.is_empty()).then(|| TeamFollow {
            sport,
            name: name.to_owned(),
        })
    }

    /// Whether this team plays in the match `summary` describes.
    pub fn plays_in(&self, summary: &MatchSummary) -> bool {
        summary.match_topic.sport_slug() == self.sport.as_str()
            && [&summary.home.name, &summary.away.name]
                .iter()
                .any(|name| name.trim().eq_ignore_ascii_case(&self.name))
    }

    /// The persisted form, `sport:name`.
    pub fn to_setting(&self) -> String {
        format!("{}:{}", self.sport, self.name)
    }

    /// Reads the persisted form; `None` for anything malformed.
    pub fn from_setting(text: &str) -> Option<TeamFollow> {
        let (sport, name) = text.split_once(':')?;
        TeamFollow::new(Topic::parse(sport).ok()?, name)
    }
}

/// The set of followed topics and teams, and the matches the teams play in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FollowList {
    /// Followed sports, competitions and matches; none covers another.
    topics: BTreeSet<Topic>,
    /// Followed teams.
    teams: BTreeSet<TeamFollow>,
    /// The matches of followed teams that the server lists, with the team that brings each in
    /// (runtime state, not persisted: the catalogue is asked for on every connection).
    team_matches: BTreeMap<MatchTopic, TeamFollow>,
}

impl FollowList {
    /// A list from topics (redundant ones are dropped, as [`FollowList::follow`] does).
    pub fn new(topics: impl IntoIterator<Item = Topic>) -> FollowList {
        let mut list = FollowList::default();
        for topic in topics {
            list.follow(topic);
        }
        list
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

    /// Follows `topic`; returns whether that changed anything. A topic a broader follow already
    /// covers changes nothing; a broader topic replaces the narrower follows it covers.
    pub fn follow(&mut self, topic: Topic) -> bool {
        if self.topics.contains(&topic) || self.covered_by_broader(&topic).is_some() {
            return false;
        }
        self.topics.retain(|followed| !topic.covers(followed));
        self.topics.insert(topic)
    }

    /// Stops following `topic` itself (not narrower topics); returns whether it was followed.
    pub fn unfollow(&mut self, topic: &Topic) -> bool {
        self.topics.remove(topic)
    }

    /// Follows a team; returns whether it was new.
    pub fn follow_team(&mut self, team: TeamFollow) -> bool {
        self.teams.insert(team)
    }

    /// Stops following a team and forgets the matches found for it.
    pub fn unfollow_team(&mut self, team: &TeamFollow) -> bool {
        self.team_matches.retain(|_, found_for| found_for != team);
        self.teams.remove(team)
    }

    /// The followed teams.
    pub fn teams(&self) -> impl Iterator<Item = &TeamFollow> {
        self.teams.iter()
    }

    /// Whether `team` is followed.
    pub fn follows_team(&self, team: &TeamFollow) -> bool {
        self.teams.contains(team)
    }

    /// Records the matches the followed teams play in, as found in the server's catalogue.
    pub fn set_team_matches(&mut self, matches: BTreeMap<MatchTopic, TeamFollow>) {
        self.team_matches = matches;
    }

    /// The matches of followed teams among `summaries`, each with the team that plays in it.
    pub fn team_matches_in<'a>(
        &self,
        summaries: impl IntoIterator<Item = &'a MatchSummary>,
    ) -> BTreeMap<MatchTopic, TeamFollow> {
        summaries
            .into_iter()
            .filter_map(|summary| {
                let team = self.teams.iter().find(|team| team.plays_in(summary))?;
                Some((summary.match_topic.clone(), team.clone()))
            })
            .collect()
    }

    /// Whether `topic` itself is subscribed: a followed topic, or a match of a followed team
    /// that no followed topic covers.
    pub fn contains(&self, topic: &Topic) -> bool {
        self.topics.contains(topic)
            || MatchTopic::try_from(topic.clone()).is_ok_and(|match_topic| {
                self.team_matches.contains_key(&match_topic) && !self.topic_covers(&match_topic)
            })
    }

    /// The followed topic that covers `topic` and is broader than it, if any: the reason the
    /// fan cannot unfollow `topic` on its own ("followed through Football").
    pub fn covered_by_broader(&self, topic: &Topic) -> Option<&Topic> {
        self.topics
            .iter()
            .find(|followed| followed.depth() < topic.depth() && followed.covers(topic))
    }

    /// The followed team that brings in `match_topic`, if any.
    pub fn team_of(&self, match_topic: &MatchTopic) -> Option<&TeamFollow> {
        self.team_matches.get(match_topic)
    }

    fn topic_covers(&self, match_topic: &MatchTopic) -> bool {
        self.topics
            .iter()
            .any(|followed| followed.covers(match_topic.topic()))
    }

    /// Whether the fan receives this match through any follow.
    pub fn covers(&self, match_topic: &MatchTopic) -> bool {
        self.topic_covers(match_topic) || self.team_matches.contains_key(match_topic)
    }

    /// The topics to subscribe: the followed topics, and the matches of followed teams that no
    /// followed topic covers. Broadest and alphabetically first.
    pub fn subscriptions(&self) -> BTreeSet<Topic> {
        let mut subscriptions = self.topics.clone();
        for match_topic in self.team_matches.keys() {
            if !self.topic_covers(match_topic) {
                subscriptions.insert(match_topic.topic().clone());
            }
        }
        subscriptions
    }

    /// The followed topics, broadest and alphabetically first.
    pub fn topics(&self) -> impl Iterator<Item = &Topic> {
        self.topics.iter()
    }

    /// Whether nothing is followed (no topic and no team).
    pub fn is_empty(&self) -> bool {
        self.topics.is_empty() && self.teams.is_empty()
    }

    /// How many topics and teams are followed.
    pub fn len(&self) -> usize {
        self.topics.len() + self.teams.len()
    }
}

#[cfg(test)]
mod tests {
    use scoreline_protocol::{MatchSnapshot, Team};

    use super::*;

    fn topic(text: &str) -> Topic {
        Topic::parse(text).unwrap()
    }

    fn summary(topic: &str, home: &str, away: &str) -> MatchSummary {
        let mut snapshot = MatchSnapshot::new(MatchTopic::parse(topic).unwrap());
        snapshot.home = Team::new(home, "HOM");
        snapshot.away = Team::new(away, "AWA");
        MatchSummary::from(&snapshot)
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

    #[test]
    fn no_follow_is_redundant() {
        let mut list = FollowList::new([
            topic("football/premier-league/ars-che"),
            topic("football/la-liga"),
            topic("tennis/wimbledon"),
        ]);
        assert!(
            !list.follow(topic("tennis/wimbledon/a-b")),
            "covered already"
        );
        assert!(list.follow(topic("football")));
        assert_eq!(list.to_strings(), vec!["football", "tennis/wimbledon"]);
    }

    #[test]
    fn a_team_brings_in_its_matches_unless_a_topic_already_does() {
        let mut list = FollowList::new([topic("tennis")]);
        let arsenal = TeamFollow::new(topic("football"), " arsenal ").unwrap();
        assert!(list.follow_team(arsenal.clone()));
        assert!(!list.follow_team(arsenal.clone()));
        let catalogue = [
            summary("football/premier-league/ars-che", "Arsenal", "Chelsea"),
            summary("football/fa-cup/liv-ars", "Liverpool", "ARSENAL"),
            summary("football/premier-league/liv-che", "Liverpool", "Chelsea"),
            summary("basketball/x/ars-b", "Arsenal", "B"),
        ];
        let found = list.team_matches_in(&catalogue);
        assert_eq!(found.len(), 2, "{found:?}");
        list.set_team_matches(found);
        let arsenal_chelsea = MatchTopic::parse("football/premier-league/ars-che").unwrap();
        assert!(list.covers(&arsenal_chelsea));
        assert_eq!(list.team_of(&arsenal_chelsea), Some(&arsenal));
        assert!(list.contains(arsenal_chelsea.topic()));
        let strings = |list: &FollowList| -> Vec<String> {
            list.subscriptions().iter().map(Topic::to_string).collect()
        };
        assert_eq!(
            strings(&list),
            vec![
                "football/fa-cup/liv-ars",
                "football/premier-league/ars-che",
                "tennis"
            ]
        );
        // Following the competition makes one of the team's own subscriptions redundant.
        list.follow(topic("football/premier-league"));
        assert_eq!(
            strings(&list),
            vec![
                "football/fa-cup/liv-ars",
                "football/premier-league",
                "tennis"
            ]
        );
        assert!(!list.contains(arsenal_chelsea.topic()));
        assert_eq!(
            TeamFollow::from_setting(&arsenal.to_setting()),
            Some(arsenal.clone())
        );
        assert_eq!(TeamFollow::from_setting("no sport"), None);
        assert!(list.unfollow_team(&arsenal));
        assert_eq!(list.len(), 2);
    }
}

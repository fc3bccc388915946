//! Who is subscribed to what, and who receives an event.
//!
//! Subscriptions are indexed by topic. An event of match `a/b/c` can only be covered by the
//! subscriptions `a`, `a/b` and `a/b/c`, so routing it costs three map look-ups and then touches
//! only its recipients, whatever the number of other subscribers.
//!
//! A connection may subscribe to overlapping topics (`football` and `football/premier-league`);
//! only the minimal cover of its topics is indexed, so it still receives each event once.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use indexmap::IndexMap;
use scoreline_protocol::Topic;

use crate::mailbox::Mailbox;

/// Identifies one WebSocket connection for the lifetime of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// The subscription index.
#[derive(Debug, Default)]
pub struct Routes {
    /// Recipients per indexed topic. `IndexMap` iterates as fast as a `Vec` during fan-out and
    /// removes a recipient in O(1) when it leaves.
    by_topic: HashMap<Topic, IndexMap<ConnId, Arc<Mailbox>>>,
    /// Every connected client, subscribed or not.
    connections: HashMap<ConnId, Subscriber>,
    /// Total topics subscribed over all connections (as requested, overlaps included).
    subscriptions: usize,
    /// Per match topic, the connections that asked for that match itself (not only a prefix of
    /// it): the fans watching it, counted and told by [`crate::audience`]. Kept apart from
    /// `by_topic`, which indexes only each connection's minimal cover.
    watchers: HashMap<Topic, IndexMap<ConnId, Arc<Mailbox>>>,
}

#[derive(Debug)]
struct Subscriber {
    /// Where frames for this connection go.
    mailbox: Arc<Mailbox>,
    /// The topics the client asked for.
    topics: BTreeSet<Topic>,
    /// The minimal cover of `topics`: what is indexed in `by_topic`.
    indexed: BTreeSet<Topic>,
}

/// A subscribe request would exceed the per-connection limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("subscribing would make {would_have} topics; at most {max} are allowed per connection")]
pub struct TooManyTopics {
    /// Topics the connection would have after the request.
    pub would_have: usize,
    /// The limit.
    pub max: usize,
}

impl Routes {
    /// Registers a connection with no subscriptions.
    pub fn connect(&mut self, conn: ConnId, mailbox: Arc<Mailbox>) {
        let subscriber = Subscriber {
            mailbox,
            topics: BTreeSet::new(),
            indexed: BTreeSet::new(),
        };
        self.connections.insert(conn, subscriber);
    }

    /// Forgets a connection and all its subscriptions. Returns its mailbox, if it was known.
    pub fn disconnect(&mut self, conn: ConnId) -> Option<Arc<Mailbox>> {
        let subscriber = self.connections.remove(&conn)?;
        self.subscriptions -= subscriber.topics.len();
        for topic in &subscriber.indexed {
            self.unindex(topic, conn);
        }
        for topic in subscriber.topics.iter().filter(|topic| is_match(topic)) {
            remove_from(&mut self.watchers, topic, conn);
        }
        Some(subscriber.mailbox)
    }

    /// The mailbox of a connection.
    pub fn mailbox(&self, conn: ConnId) -> Option<&Arc<Mailbox>> {
        self.connections
            .get(&conn)
            .map(|subscriber| &subscriber.mailbox)
    }

    /// Adds topics to a connection's subscriptions, all or none.
    pub fn subscribe(
        &mut self,
        conn: ConnId,
        topics: &[Topic],
        max_topics: usize,
    ) -> Result<(), TooManyTopics> {
        let Some(subscriber) = self.connections.get(&conn) else {
            return Ok(());
        };
        let new_topics = topics
            .iter()
            .filter(|topic| !subscriber.topics.contains(*topic));
        let would_have = subscriber.topics.len() + new_topics.collect::<BTreeSet<_>>().len();
        if would_have > max_topics {
            return Err(TooManyTopics {
                would_have,
                max: max_topics,
            });
        }
        self.change(conn, |wanted| wanted.extend(topics.iter().cloned()));
        Ok(())
    }

    /// Removes topics from a connection's subscriptions; returns those it actually had.
    pub fn unsubscribe(&mut self, conn: ConnId, topics: &[Topic]) -> Vec<Topic> {
        let mut removed = Vec::new();
        self.change(conn, |wanted| {
            removed = topics
                .iter()
                .filter(|topic| wanted.remove(*topic))
                .cloned()
                .collect();
        });
        removed
    }

    /// Applies `edit` to a connection's topics, then re-indexes only what changed in its cover.
    fn change(&mut self, conn: ConnId, edit: impl FnOnce(&mut BTreeSet<Topic>)) {
        let Some(subscriber) = self.connections.get_mut(&conn) else {
            return;
        };
        let before = subscriber.topics.len();
        let matches_before: BTreeSet<Topic> = subscriber
            .topics
            .iter()
            .filter(|topic| is_match(topic))
            .cloned()
            .collect();
        edit(&mut subscriber.topics);
        for topic in subscriber.topics.iter().filter(|topic| is_match(topic)) {
            if !matches_before.contains(topic) {
                self.watchers
                    .entry(topic.clone())
                    .or_default()
                    .insert(conn, Arc::clone(&subscriber.mailbox));
            }
        }
        for topic in &matches_before {
            if !subscriber.topics.contains(topic) {
                remove_from(&mut self.watchers, topic, conn);
            }
        }
        self.subscriptions = self.subscriptions + subscriber.topics.len() - before;
        let cover = minimal_cover(&subscriber.topics);
        let dropped: Vec<Topic> = subscriber.indexed.difference(&cover).cloned().collect();
        let added: Vec<Topic> = cover.difference(&subscriber.indexed).cloned().collect();
        let mailbox = Arc::clone(&subscriber.mailbox);
        subscriber.indexed = cover;
        for topic in dropped {
            self.unindex(&topic, conn);
        }
        for topic in added {
            self.by_topic
                .entry(topic)
                .or_default()
                .insert(conn, Arc::clone(&mailbox));
        }
    }

    fn unindex(&mut self, topic: &Topic, conn: ConnId) {
        remove_from(&mut self.by_topic, topic, conn);
    }

    /// Every match some connection subscribed to by its own topic, with those connections'
    /// mailboxes: who watches what.
    pub fn watchers(&self) -> impl Iterator<Item = (&Topic, impl Iterator<Item = &Arc<Mailbox>>)> {
        self.watchers
            .iter()
            .map(|(topic, watchers)| (topic, watchers.values()))
    }

    /// Every connection that receives events of `topic`, each once: the topic's own subscribers
    /// first, then those of each shorter prefix (a match's followers, then its competition's,
    /// then its sport's). The session tasks run in the order they are woken, so a match's own
    /// fans are not queued behind every broad subscription, which receives far more frames and
    /// is the likelier to be slow.
    pub fn recipients<'a>(
        &'a self,
        topic: &'a Topic,
    ) -> impl Iterator<Item = (ConnId, &'a Arc<Mailbox>)> + 'a {
        topic
            .prefixes()
            .rev()
            .filter_map(|prefix| self.by_topic.get(prefix))
            .flat_map(|recipients| recipients.iter().map(|(conn, mailbox)| (*conn, mailbox)))
    }

    /// The topics a connection asked for.
    pub fn topics_of(&self, conn: ConnId) -> impl Iterator<Item = &Topic> {
        self.connections
            .get(&conn)
            .into_iter()
            .flat_map(|subscriber| subscriber.topics.iter())
    }

    /// Connections registered.
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Topics subscribed over all connections.
    pub fn subscription_count(&self) -> usize {
        self.subscriptions
    }

    /// Every connection's mailbox, for shutdown.
    pub fn mailboxes(&self) -> impl Iterator<Item = &Arc<Mailbox>> {
        self.connections
            .values()
            .map(|subscriber| &subscriber.mailbox)
    }
}

/// Whether a topic names one match (three segments).
fn is_match(topic: &Topic) -> bool {
    topic.depth() == scoreline_protocol::topic::MATCH_DEPTH
}

/// Removes `conn` from `topic`'s entry, and the entry when it is left empty.
fn remove_from(
    index: &mut HashMap<Topic, IndexMap<ConnId, Arc<Mailbox>>>,
    topic: &Topic,
    conn: ConnId,
) {
    if let Some(connections) = index.get_mut(topic) {
        connections.swap_remove(&conn);
        if connections.is_empty() {
            index.remove(topic);
        }
    }
}

/// The topics of `topics` that no other of them covers.
fn minimal_cover(topics: &BTreeSet<Topic>) -> BTreeSet<Topic> {
    topics
        .iter()
        .filter(|topic| {
            !topics
                .iter()
                .any(|other| other != *topic && other.covers(topic))
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::MailboxLimits;

    fn topic(text: &str) -> Topic {
        Topic::parse(text).unwrap()
    }

    fn mailbox() -> Arc<Mailbox> {
        Arc::new(Mailbox::new(MailboxLimits {
            max_critical: 10,
            max_frames: 10,
        }))
    }

    fn recipients(routes: &Routes, text: &str) -> Vec<u64> {
        let game = topic(text);
        let mut ids: Vec<u64> = routes.recipients(&game).map(|(conn, _)| conn.0).collect();
        ids.sort_unstable();
        ids
    }

    fn watcher_counts(routes: &Routes) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = routes
            .watchers()
            .map(|(topic, watchers)| (topic.to_string(), watchers.count()))
            .collect();
        counts.sort();
        counts
    }

    #[test]
    fn watchers_are_the_connections_that_asked_for_the_match_itself() {
        let mut routes = Routes::default();
        for id in 1..=3 {
            routes.connect(ConnId(id), mailbox());
        }
        let game = "football/pl/ars-che";
        // A sport and the match: the cover indexes only the sport, yet the fan watches the match.
        routes
            .subscribe(ConnId(1), &[topic("football"), topic(game)], 8)
            .unwrap();
        routes.subscribe(ConnId(2), &[topic(game)], 8).unwrap();
        routes
            .subscribe(ConnId(3), &[topic("football")], 8)
            .unwrap();
        assert_eq!(watcher_counts(&routes), [(game.to_owned(), 2)]);
        routes.unsubscribe(ConnId(1), &[topic(game)]);
        assert_eq!(watcher_counts(&routes), [(game.to_owned(), 1)]);
        routes.disconnect(ConnId(2));
        assert_eq!(watcher_counts(&routes), []);
        assert_eq!(recipients(&routes, game), [1, 3]);
    }

    #[test]
    fn routes_to_exact_and_prefix_subscribers_only() {
        let mut routes = Routes::default();
        for id in 1..=4 {
            routes.connect(ConnId(id), mailbox());
        }
        routes
            .subscribe(ConnId(1), &[topic("football")], 8)
            .unwrap();
        routes
            .subscribe(ConnId(2), &[topic("football/pl")], 8)
            .unwrap();
        routes
            .subscribe(ConnId(3), &[topic("football/pl/ars-che")], 8)
            .unwrap();
        routes
            .subscribe(ConnId(4), &[topic("tennis"), topic("football/pla")], 8)
            .unwrap();
        assert_eq!(recipients(&routes, "football/pl/ars-che"), [1, 2, 3]);
        assert_eq!(recipients(&routes, "football/pl/liv-eve"), [1, 2]);
        assert_eq!(recipients(&routes, "football/laliga/rma-fcb"), [1]);
        assert_eq!(recipients(&routes, "tennis/wimbledon/a-b"), [4]);
        assert_eq!(
            recipients(&routes, "basketball/nba/lal-bos"),
            Vec::<u64>::new()
        );
    }

    #[test]
    fn a_matchs_own_followers_come_before_its_competitions_and_sports() {
        let mut routes = Routes::default();
        for id in 1..=3 {
            routes.connect(ConnId(id), mailbox());
        }
        // Subscribed broadest first, so the order below is not the order of subscribing.
        let order = [
            (1, "football"),
            (2, "football/pl"),
            (3, "football/pl/ars-che"),
        ];
        for (id, text) in order {
            routes.subscribe(ConnId(id), &[topic(text)], 8).unwrap();
        }
        let game = topic("football/pl/ars-che");
        let ids: Vec<u64> = routes.recipients(&game).map(|(conn, _)| conn.0).collect();
        assert_eq!(ids, [3, 2, 1]);
    }

    #[test]
    fn overlapping_subscriptions_deliver_once_and_survive_unsubscribe() {
        let mut routes = Routes::default();
        routes.connect(ConnId(1), mailbox());
        routes
            .subscribe(
                ConnId(1),
                &[topic("football/pl/ars-che"), topic("football")],
                8,
            )
            .unwrap();
        assert_eq!(recipients(&routes, "football/pl/ars-che"), [1]);
        assert_eq!(
            routes.unsubscribe(ConnId(1), &[topic("football")]),
            [topic("football")]
        );
        assert_eq!(recipients(&routes, "football/pl/ars-che"), [1]);
        assert_eq!(
            recipients(&routes, "football/pl/liv-eve"),
            Vec::<u64>::new()
        );
        assert_eq!(routes.subscription_count(), 1);
    }

    #[test]
    fn unsubscribe_of_unknown_topic_changes_nothing() {
        let mut routes = Routes::default();
        routes.connect(ConnId(1), mailbox());
        routes
            .subscribe(ConnId(1), &[topic("football")], 8)
            .unwrap();
        assert!(routes.unsubscribe(ConnId(1), &[topic("tennis")]).is_empty());
        assert_eq!(recipients(&routes, "football/pl/x"), [1]);
    }

    #[test]
    fn limit_counts_distinct_new_topics_and_is_all_or_nothing() {
        let mut routes = Routes::default();
        routes.connect(ConnId(1), mailbox());
        routes
            .subscribe(ConnId(1), &[topic("a"), topic("b")], 3)
            .unwrap();
        routes
            .subscribe(ConnId(1), &[topic("a"), topic("c"), topic("c")], 3)
            .unwrap();
        let error = routes
            .subscribe(ConnId(1), &[topic("d"), topic("e")], 3)
            .unwrap_err();
        assert_eq!(
            error,
            TooManyTopics {
                would_have: 5,
                max: 3
            }
        );
        assert_eq!(routes.topics_of(ConnId(1)).count(), 3);
        assert_eq!(recipients(&routes, "d/x/y"), Vec::<u64>::new());
    }

    #[test]
    fn disconnect_removes_every_index_entry() {
        let mut routes = Routes::default();
        routes.connect(ConnId(1), mailbox());
        routes.connect(ConnId(2), mailbox());
        routes
            .subscribe(ConnId(1), &[topic("football"), topic("tennis")], 8)
            .unwrap();
        routes
            .subscribe(ConnId(2), &[topic("football")], 8)
            .unwrap();
        routes.disconnect(ConnId(1));
        assert_eq!(recipients(&routes, "football/pl/x"), [2]);
        assert_eq!(recipients(&routes, "tennis/w/x"), Vec::<u64>::new());
        assert_eq!(routes.subscription_count(), 1);
        assert_eq!(routes.connection_count(), 1);
        routes.disconnect(ConnId(2));
        assert!(routes.by_topic.is_empty());
    }
}

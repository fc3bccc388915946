//! The session: the viewer's whole model, without a socket or a screen.
//!
//! It joins the [`Scoreboard`], the [`FollowList`], the connection state machine ([`Link`]) and
//! the server's catalogue, and decides what to send: subscriptions after every (re)connect (with
//! the point each held match can be resumed from), a fresh snapshot for a match with a gap,
//! pings, catalogue refreshes. Inputs are plain values
//! (a frame's text, "the socket opened", the time); outputs are [`Action`]s queued for the socket
//! adapter. That makes reconnects, gaps and stale marking testable with nothing but values.

use std::collections::{BTreeMap, BTreeSet};

use scoreline_protocol::{
    ClientMessage, ErrorCode, Limits, MatchSummary, MatchTopic, PROTOCOL_VERSION, ResumePoint,
    ServerMessage, Topic,
};

use crate::connection::{Link, LinkAction, LinkState};
use crate::follow::FollowList;
use crate::scoreboard::{Scoreboard, TrackedMatch};

/// How often the catalogue is asked for again while connected, so new matches appear in the
/// browser without the fan doing anything.
pub const CATALOGUE_REFRESH_MILLIS: u64 = 30_000;

/// At most this many matches are re-subscribed one by one in a single request, so that a burst
/// of gaps never turns into a flood of requests the server would rate-limit.
pub const MAX_REPAIRS_PER_REQUEST: usize = 16;

/// How long to hold back after the server refused a request as rate-limited before sending it
/// again. The server allows bursts of twice its rate, so one second always clears one.
pub const RATE_LIMIT_RETRY_MILLIS: u64 = 1_000;

/// The frame limit assumed before any server announced its own (`limits.max_frame_bytes` in the
/// welcome, which comes after the first subscribe is sent): the protocol's documented default.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 * 1024;

/// While a score flashes, repaint at about this interval so the fade is smooth.
pub const FLASH_FRAME_MILLIS: u64 = 33;

/// The default server for the local demo.
pub const DEFAULT_URL: &str = "ws://127.0.0.1:8080/ws";

/// What the socket adapter must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Drop any socket and connect to this URL.
    Connect(String),
    /// Drop the socket.
    Disconnect,
    /// Send this message.
    Send(ClientMessage),
}

/// A request from the fan, produced by the UI and applied at the end of the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Follow a sport, competition or match.
    Follow(Topic),
    /// Stop following a topic.
    Unfollow(Topic),
    /// Show a match's detail.
    OpenMatch(MatchTopic),
    /// Close the detail view.
    CloseMatch,
    /// Use another server and connect to it now.
    SetUrl(String),
    /// Connect now, skipping the rest of the backoff (or leaving offline).
    ConnectNow,
    /// Disconnect and stay offline.
    GoOffline,
    /// Ask the server for its catalogue now.
    RefreshCatalogue,
}

/// What the server has, from the last `catalogue` reply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalogue {
    /// The matches, live first.
    pub matches: Vec<MatchSummary>,
    /// How many more the server left out.
    pub omitted: usize,
    /// When it was received; `None` before the first reply.
    pub received_ms: Option<u64>,
}

/// One sport of the catalogue, for the browser.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogueSport {
    /// The sport's topic, e.g. `football`.
    pub topic: Topic,
    /// Its competitions, by name.
    pub competitions: Vec<CatalogueCompetition>,
}

/// One competition of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogueCompetition {
    /// The competition's topic, e.g. `football/premier-league`.
    pub topic: Topic,
    /// Its display name.
    pub name: String,
    /// Its matches, in the server's order (live first).
    pub matches: Vec<MatchSummary>,
}

/// The catalogue as a sport → competition → match tree, sports and competitions by name.
pub fn catalogue_tree(catalogue: &Catalogue) -> Vec<CatalogueSport> {
    let mut sports: Vec<CatalogueSport> = Vec::new();
    for summary in &catalogue.matches {
        let topic = &summary.match_topic;
        let (Ok(sport_topic), Ok(competition_topic)) = (
            Topic::parse(topic.sport_slug()),
            Topic::parse(&format!(
                "{}/{}",
                topic.sport_slug(),
                topic.competition_slug()
            )),
        ) else {
            continue;
        };
        let sport = match sports.iter().position(|s| s.topic == sport_topic) {
            Some(index) => &mut sports[index],
            None => {
                sports.push(CatalogueSport {
                    topic: sport_topic,
                    competitions: Vec::new(),
                });
                sports.last_mut().expect("just pushed")
            }
        };
        let competition = match sport
            .competitions
            .iter()
            .position(|c| c.topic == competition_topic)
        {
            Some(index) => &mut sport.competitions[index],
            None => {
                sport.competitions.push(CatalogueCompetition {
                    name: summary.competition.clone().unwrap_or_else(|| {
                        crate::scoreboard::slug_to_title(topic.competition_slug())
                    }),
                    topic: competition_topic,
                    matches: Vec::new(),
                });
                sport.competitions.last_mut().expect("just pushed")
            }
        };
        competition.matches.push(summary.clone());
    }
    sports.sort_by(|a, b| a.topic.cmp(&b.topic));
    for sport in &mut sports {
        sport.competitions.sort_by(|a, b| a.name.cmp(&b.name));
    }
    sports
}

/// How the current connection brought the matches held from before it up to date: shown in the
/// status bar's tooltip, and what tests check to tell a resume from a fresh snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// Resume points sent with the subscribe.
    pub resume_points_sent: usize,
    /// Matches the server resumed: what they missed came as events.
    pub resumed: usize,
    /// Matches the server resynced: replaced by a snapshot, continuity not proven.
    pub resynced: usize,
    /// Held matches replaced by a snapshot in a `subscribed` reply (no resume point, a server
    /// without resume, or a repair).
    pub snapshots: usize,
}

/// What the server said about itself in its welcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// Server name and version.
    pub server: String,
    /// Its protocol version.
    pub protocol: u32,
    /// Its limits for this connection.
    pub limits: Limits,
}

/// The viewer's model. See the module documentation.
#[derive(Debug)]
pub struct Session {
    /// Server address; persisted.
    url: String,
    /// What the fan follows; persisted.
    follows: FollowList,
    /// The followed matches.
    scoreboard: Scoreboard,
    /// Connection state, backoff, pings.
    link: Link,
    /// What the server offers.
    catalogue: Catalogue,
    /// The welcome of the current connection.
    server: Option<ServerInfo>,
    /// The match shown in detail.
    open_match: Option<MatchTopic>,
    /// Matches to re-subscribe at the next flush.
    pending_repairs: BTreeSet<MatchTopic>,
    /// Matches a complete `subscribed` reply left out although this connection sent a resume
    /// point for them. The server follows its reply with a `resync` for each match it cannot
    /// resume; any still waiting when the frames at hand are done (the next tick) is repaired,
    /// since the server may no longer have it.
    awaiting_resync: BTreeSet<MatchTopic>,
    /// How this connection caught up the matches held from before it.
    catch_up: CatchUp,
    /// Matches re-subscribed for repair whose `subscribed` has not come yet; the temporary
    /// subscription is dropped when it does, unless the fan follows that exact match.
    repairs_in_flight: BTreeSet<MatchTopic>,
    /// When to ask for the catalogue again.
    next_catalogue_ms: Option<u64>,
    /// Requests the server refused as rate-limited, sent again at `retry_requests_at_ms`.
    retry_requests: Vec<ClientMessage>,
    /// When to resend `retry_requests`; while set, repairs wait too.
    retry_requests_at_ms: Option<u64>,
    /// The last problem worth telling the fan (a server error, a bad frame).
    last_problem: Option<String>,
    /// Frames that could not be understood, ignored since start.
    ignored_frames: u64,
    /// Queued work for the socket adapter.
    actions: Vec<Action>,
}

impl Session {
    /// A session for `url`, following `follows`, not yet connected.
    pub fn new(url: String, follows: FollowList, link: Link) -> Session {
        Session {
            url,
            follows,
            scoreboard: Scoreboard::new(),
            link,
            catalogue: Catalogue::default(),
            server: None,
            open_match: None,
            pending_repairs: BTreeSet::new(),
            repairs_in_flight: BTreeSet::new(),
            awaiting_resync: BTreeSet::new(),
            catch_up: CatchUp::default(),
            next_catalogue_ms: None,
            retry_requests: Vec::new(),
            retry_requests_at_ms: None,
            last_problem: None,
            ignored_frames: 0,
            actions: Vec::new(),
        }
    }

    /// Starts connecting.
    pub fn start(&mut self, now_ms: u64) {
        let actions = self.link.start(now_ms);
        self.push_link_actions(actions);
    }

    /// The socket opened: subscribe to everything followed, resuming each held match from its
    /// last applied `(epoch, seq)` (the server replays what was missed, or resyncs the match;
    /// matches without a resume point get a fresh snapshot), ask for the catalogue, and start
    /// pinging.
    pub fn opened(&mut self, now_ms: u64) {
        let generation = self.link.opened(now_ms);
        tracing::info!(url = %self.url, generation, "connected");
        // The welcome comes after the subscribe is sent: the last server's frame limit is the
        // best guess at this one's (usually the same deployment).
        let max_frame_bytes = self
            .server
            .take()
            .map_or(DEFAULT_MAX_FRAME_BYTES, |info| info.limits.max_frame_bytes);
        self.pending_repairs.clear();
        self.repairs_in_flight.clear();
        self.awaiting_resync.clear();
        self.catch_up = CatchUp::default();
        // The full subscription below supersedes anything refused on the old connection.
        self.retry_requests.clear();
        self.retry_requests_at_ms = None;
        if !self.follows.is_empty() {
            let request = self.resubscribe_request(max_frame_bytes, generation);
            self.actions.push(Action::Send(request));
        }
        self.request_catalogue(now_ms);
        self.tick(now_ms);
    }

    /// The subscribe sent on every connection: every followed topic, with a resume point for
    /// each held match that has one, as many as fit in `max_frame_bytes` (live matches first).
    /// A frame over the limit would make the server close the connection (1009) on every
    /// reconnect; a match left out simply gets a snapshot, as before resume existed.
    fn resubscribe_request(&mut self, max_frame_bytes: usize, generation: u64) -> ClientMessage {
        let plain = ClientMessage::subscribe(self.follows.topics());
        let mut size_bytes = plain.to_json().len() + r#","resume":{}"#.len();
        let mut resume = BTreeMap::new();
        let mut left_out = 0_usize;
        let points: Vec<(MatchTopic, ResumePoint)> = self
            .scoreboard
            .resume_points()
            .into_iter()
            .map(|(topic, point)| (topic.clone(), point))
            .collect();
        for (topic, point) in points {
            // Topics are slugs, so the JSON needs no escaping; the comma is counted for every
            // entry, one more than the frame has, which errs on the safe side.
            let entry_bytes = format!(
                r#""{topic}":{{"epoch":{},"seq":{}}},"#,
                point.epoch, point.seq
            )
            .len();
            if size_bytes + entry_bytes > max_frame_bytes {
                left_out += 1;
                continue;
            }
            size_bytes += entry_bytes;
            self.scoreboard.mark_resume_sent(&topic, generation);
            resume.insert(topic.to_string(), point);
        }
        self.catch_up.resume_points_sent = resume.len();
        if resume.is_empty() && left_out == 0 {
            return plain;
        }
        tracing::info!(
            resuming = resume.len(),
            left_out,
            "re-subscribing; held matches resume where they stopped"
        );
        ClientMessage::resume(self.follows.topics(), resume)
    }

    /// The socket failed or closed. Everything shown becomes possibly stale until the next
    /// connection confirms it.
    pub fn lost(&mut self, now_ms: u64, reason: &str) {
        if self.link.is_connected() {
            tracing::warn!(url = %self.url, reason, "connection lost");
        } else {
            tracing::debug!(url = %self.url, reason, "connect failed");
        }
        let actions = self.link.lost(now_ms, reason);
        self.push_link_actions(actions);
        self.next_catalogue_ms = None;
    }

    /// A text frame from the server. Anything malformed or unknown is logged, counted and
    /// ignored: a server newer than this viewer must not crash it.
    pub fn receive_text(&mut self, text: &str, now_ms: u64) {
        match scoreline_protocol::ServerMessage::from_json(text) {
            Ok(message) => self.receive(message, now_ms),
            Err(error) => {
                self.ignored_frames += 1;
                let excerpt: String = text.chars().take(120).collect();
                tracing::warn!(%error, frame = %excerpt, "ignoring a frame this viewer does not understand");
                self.last_problem = Some(format!("ignored a frame it could not read: {error}"));
            }
        }
    }

    /// A binary frame: the protocol has none, so it is counted and ignored.
    pub fn receive_binary(&mut self, len_bytes: usize) {
        self.ignored_frames += 1;
        tracing::warn!(len_bytes, "ignoring a binary frame");
    }

    /// One parsed server message.
    pub fn receive(&mut self, message: ServerMessage, now_ms: u64) {
        match &message {
            ServerMessage::Welcome {
                protocol,
                server,
                limits,
                ..
            } => {
                if *protocol != PROTOCOL_VERSION {
                    tracing::warn!(
                        server = protocol,
                        viewer = PROTOCOL_VERSION,
                        "protocol version differs"
                    );
                    self.last_problem = Some(format!(
                        "server speaks protocol {protocol}, this viewer {PROTOCOL_VERSION}"
                    ));
                }
                self.server = Some(ServerInfo {
                    server: server.clone(),
                    protocol: *protocol,
                    limits: *limits,
                });
            }
            ServerMessage::Pong { id, .. } => self.link.pong(*id, now_ms),
            ServerMessage::Catalogue { matches, omitted } => {
                self.catalogue = Catalogue {
                    matches: matches.clone(),
                    omitted: *omitted,
                    received_ms: Some(now_ms),
                };
            }
            ServerMessage::Error {
                code,
                message,
                request,
            } => {
                tracing::warn!(
                    code = code.as_str(),
                    message,
                    ?request,
                    "server refused a request"
                );
                self.last_problem = Some(format!("server: {message}"));
                if *code == ErrorCode::RateLimited {
                    self.retry_later(request.as_deref(), now_ms);
                }
            }
            ServerMessage::Subscribed {
                topics,
                snapshots,
                resumed,
                ..
            } => {
                let board = &self.scoreboard;
                self.catch_up.snapshots += snapshots
                    .iter()
                    .filter(|snapshot| board.get(&snapshot.match_topic).is_some())
                    .count();
                self.catch_up.resumed += resumed
                    .iter()
                    .filter(|topic| board.get(topic).is_some())
                    .count();
                self.finish_repairs(topics);
            }
            ServerMessage::Resync { snapshot, .. } => {
                self.catch_up.resynced += 1;
                // The resync is the fresh snapshot a queued repair would have asked for.
                self.pending_repairs.remove(&snapshot.match_topic);
                self.awaiting_resync.remove(&snapshot.match_topic);
            }
            ServerMessage::Unsubscribed { .. }
            | ServerMessage::Event(_)
            | ServerMessage::Watching { .. } => {}
        }
        let outcome =
            self.scoreboard
                .apply(&message, &self.follows, self.link.generation(), now_ms);
        self.pending_repairs.extend(outcome.needs_snapshot);
        self.awaiting_resync.extend(outcome.awaiting_resync);
        if let ServerMessage::Subscribed {
            topics, omitted, ..
        } = &message
            && *omitted > 0
        {
            // The reply was capped: matches we hold but got no snapshot for may have moved on.
            // Ask for each one on its own.
            let generation = self.link.generation();
            let unconfirmed: Vec<MatchTopic> = self
                .scoreboard
                .unconfirmed_under(topics, generation)
                .cloned()
                .collect();
            self.pending_repairs.extend(unconfirmed);
        }
        self.flush_repairs();
    }

    /// Queues a request the server refused as rate-limited to be sent again shortly: a follow
    /// or a repair must not be lost to a burst. Pings are not resent (the next one comes anyway).
    /// When the echoed request cannot be read back (the server cuts long ones), the repairs in
    /// flight are asked for again instead, which is what a long request would have been.
    fn retry_later(&mut self, request: Option<&str>, now_ms: u64) {
        match request.and_then(|text| serde_json::from_str::<ClientMessage>(text).ok()) {
            Some(ClientMessage::Ping { .. }) => {}
            Some(message) => self.retry_requests.push(message),
            None => {
                let refused = std::mem::take(&mut self.repairs_in_flight);
                self.pending_repairs.extend(refused);
            }
        }
        self.retry_requests_at_ms = Some(now_ms.saturating_add(RATE_LIMIT_RETRY_MILLIS));
    }

    /// Drops the temporary subscriptions of repairs that `subscribed` just answered.
    fn finish_repairs(&mut self, topics: &[Topic]) {
        let mut drop = Vec::new();
        for topic in topics {
            if let Ok(match_topic) = MatchTopic::try_from(topic.clone())
                && self.repairs_in_flight.remove(&match_topic)
                && !self.follows.contains(topic)
            {
                drop.push(topic.clone());
            }
        }
        if !drop.is_empty() {
            self.actions
                .push(Action::Send(ClientMessage::unsubscribe(drop.iter())));
        }
    }

    /// Asks for a fresh snapshot of every match with a pending repair.
    ///
    /// A resume point cannot help here: the match's `seq` already moved past the gap, so the
    /// way to get a snapshot is to subscribe to the match without one. If
    /// the fan follows that exact match, it is unsubscribed and subscribed again (the server
    /// handles requests in order, so nothing is lost in between); otherwise the match is
    /// subscribed on its own and unsubscribed once its snapshot came, while the broader follow
    /// keeps delivering. Duplicate events in the overlap are dropped by `seq`.
    fn flush_repairs(&mut self) {
        if !self.link.is_connected()
            || self.pending_repairs.is_empty()
            || self.retry_requests_at_ms.is_some()
        {
            return;
        }
        let mut batch: Vec<MatchTopic> = Vec::new();
        while batch.len() < MAX_REPAIRS_PER_REQUEST {
            let Some(topic) = self.pending_repairs.pop_first() else {
                break;
            };
            if self.repairs_in_flight.contains(&topic) || !self.follows.covers(&topic) {
                continue;
            }
            self.scoreboard.mark_repairing(&topic);
            batch.push(topic);
        }
        if batch.is_empty() {
            return;
        }
        let exact: Vec<Topic> = batch
            .iter()
            .map(|m| m.topic().clone())
            .filter(|t| self.follows.contains(t))
            .collect();
        if !exact.is_empty() {
            self.actions
                .push(Action::Send(ClientMessage::unsubscribe(exact.iter())));
        }
        tracing::info!(
            count = batch.len(),
            "re-subscribing matches for fresh snapshots"
        );
        self.actions.push(Action::Send(ClientMessage::subscribe(
            batch.iter().map(|m| m.topic()),
        )));
        self.repairs_in_flight.extend(batch);
    }

    fn request_catalogue(&mut self, now_ms: u64) {
        if self.link.is_connected() {
            self.actions.push(Action::Send(ClientMessage::List {
                prefix: None,
                status: None,
            }));
            self.next_catalogue_ms = Some(now_ms.saturating_add(CATALOGUE_REFRESH_MILLIS));
        }
    }

    /// Moves time forward: reconnects, pings, timeouts, catalogue refreshes, leftover repairs.
    ///
    /// The socket adapter ticks after handing over every frame that has arrived, so a match still
    /// awaiting its resync here did not get one with the reply: a repair asks for its snapshot,
    /// and a complete answer without it drops the match.
    pub fn tick(&mut self, now_ms: u64) {
        if !self.awaiting_resync.is_empty() {
            tracing::info!(
                count = self.awaiting_resync.len(),
                "no resync came for matches the server did not resume; asking for snapshots"
            );
            let awaiting = std::mem::take(&mut self.awaiting_resync);
            self.pending_repairs.extend(awaiting);
        }
        let actions = self.link.tick(now_ms);
        self.push_link_actions(actions);
        if self.next_catalogue_ms.is_some_and(|due| now_ms >= due) {
            self.request_catalogue(now_ms);
        }
        if self.retry_requests_at_ms.is_some_and(|due| now_ms >= due) && self.link.is_connected() {
            self.retry_requests_at_ms = None;
            for message in std::mem::take(&mut self.retry_requests) {
                tracing::info!(request = %message.to_json(), "resending a rate-limited request");
                self.actions.push(Action::Send(message));
            }
        }
        self.flush_repairs();
    }

    /// When [`Session::tick`] next has something to do, so the UI can sleep until then.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        [
            self.link.next_deadline_ms(),
            self.next_catalogue_ms,
            self.retry_requests_at_ms,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// When the screen next needs drawing without any socket event: the next session deadline
    /// (ping, retry, timeout, catalogue), the next whole second while a game clock runs or a
    /// retry countdown shows, or the next frame of a flash. `None` means sleep until the socket
    /// wakes the UI: this is what keeps an idle viewer's CPU near zero.
    pub fn next_repaint_ms(&self, now_ms: u64) -> Option<u64> {
        let board = self.scoreboard();
        let flashing = board
            .matches()
            .any(|tracked| tracked.flash_progress(now_ms).is_some());
        let clock_running = board.matches().any(|tracked| {
            tracked.snapshot.status.is_in_progress()
                && tracked.snapshot.clock.is_some_and(|clock| clock.running)
        });
        let counting_down = self.link.retry_in(now_ms).is_some();
        let next_second_ms = now_ms - now_ms % 1_000 + 1_000;
        [
            self.next_deadline_ms(),
            flashing.then(|| now_ms + FLASH_FRAME_MILLIS),
            (clock_running || counting_down).then_some(next_second_ms),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Applies a fan's command.
    pub fn command(&mut self, command: Command, now_ms: u64) {
        match command {
            Command::Follow(topic) => {
                if self.follows.follow(topic.clone()) {
                    tracing::info!(%topic, "following");
                    if self.link.is_connected() {
                        self.actions
                            .push(Action::Send(ClientMessage::subscribe([&topic])));
                    }
                }
            }
            Command::Unfollow(topic) => {
                if self.follows.unfollow(&topic) {
                    tracing::info!(%topic, "unfollowing");
                    if self.link.is_connected() {
                        self.actions
                            .push(Action::Send(ClientMessage::unsubscribe([&topic])));
                    }
                    self.scoreboard.retain_followed(&self.follows);
                    if self
                        .open_match
                        .as_ref()
                        .is_some_and(|open| self.scoreboard.get(open).is_none())
                    {
                        self.open_match = None;
                    }
                }
            }
            Command::OpenMatch(topic) => self.open_match = Some(topic),
            Command::CloseMatch => self.open_match = None,
            Command::SetUrl(url) => {
                let url = url.trim().to_owned();
                if url != self.url || !self.link.is_connected() {
                    tracing::info!(%url, "switching server");
                    self.url = url;
                    self.catalogue = Catalogue::default();
                    self.start(now_ms);
                }
            }
            Command::ConnectNow => self.start(now_ms),
            Command::GoOffline => {
                let actions = self.link.stop();
                self.push_link_actions(actions);
                self.next_catalogue_ms = None;
            }
            Command::RefreshCatalogue => self.request_catalogue(now_ms),
        }
    }

    fn push_link_actions(&mut self, actions: Vec<LinkAction>) {
        for action in actions {
            self.actions.push(match action {
                LinkAction::Connect => Action::Connect(self.url.clone()),
                LinkAction::Disconnect => Action::Disconnect,
                LinkAction::Ping { id } => Action::Send(ClientMessage::Ping { id }),
            });
        }
    }

    /// Takes the queued actions, oldest first.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Whether this match's state is confirmed by the current connection. Anything else is shown
    /// as possibly stale.
    pub fn is_fresh(&self, tracked: &TrackedMatch) -> bool {
        self.link.is_connected()
            && tracked.confirmed_generation == self.link.generation()
            && !tracked.repairing
    }

    /// How the current connection caught up the matches held from before it.
    pub fn catch_up(&self) -> CatchUp {
        self.catch_up
    }

    /// Whether the socket is open.
    pub fn is_connected(&self) -> bool {
        self.link.is_connected()
    }

    /// The server address.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What the fan follows.
    pub fn follows(&self) -> &FollowList {
        &self.follows
    }

    /// The followed matches.
    pub fn scoreboard(&self) -> &Scoreboard {
        &self.scoreboard
    }

    /// The connection state.
    pub fn link_state(&self) -> &LinkState {
        self.link.state()
    }

    /// The latest round-trip time.
    pub fn rtt_millis(&self) -> Option<u64> {
        self.link.rtt_millis()
    }

    /// How long until the next reconnect attempt.
    pub fn retry_in_millis(&self, now_ms: u64) -> Option<u64> {
        self.link
            .retry_in(now_ms)
            .map(|delay| u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))
    }

    /// What the server offers.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// The current server's welcome.
    pub fn server(&self) -> Option<&ServerInfo> {
        self.server.as_ref()
    }

    /// The match shown in detail, if it is still tracked.
    pub fn open_match(&self) -> Option<&TrackedMatch> {
        self.open_match
            .as_ref()
            .and_then(|topic| self.scoreboard.get(topic))
    }

    /// The last problem worth telling the fan.
    pub fn last_problem(&self) -> Option<&str> {
        self.last_problem.as_deref()
    }

    /// Frames ignored since start.
    pub fn ignored_frames(&self) -> u64 {
        self.ignored_frames
    }
}

#[cfg(test)]
mod tests {
    use scoreline_protocol::test_support::goal;
    use scoreline_protocol::{EventKind, MatchSnapshot, ScoreEvent, Side, Team, apply as reduce};

    use super::*;
    use crate::connection::{Backoff, Jitter};

    const MATCH: &str = "football/premier-league/ars-che";

    fn topic(text: &str) -> Topic {
        Topic::parse(text).unwrap()
    }

    fn match_topic() -> MatchTopic {
        MatchTopic::parse(MATCH).unwrap()
    }

    fn session(follows: &[&str]) -> Session {
        Session::new(
            DEFAULT_URL.into(),
            FollowList::new(follows.iter().map(|t| topic(t))),
            Link::new(Backoff::default(), Jitter::new(3)),
        )
    }

    fn event(seq: u64, kind: EventKind) -> ScoreEvent {
        scoreline_protocol::test_support::event(MATCH, seq, kind)
    }

    fn history(up_to_seq: u64) -> Vec<ScoreEvent> {
        let mut events = vec![
            event(
                1,
                EventKind::MatchScheduled {
                    home: Team::new("Arsenal", "ARS"),
                    away: Team::new("Chelsea", "CHE"),
                    kickoff_ms: 0,
                    competition: Some("Premier League".into()),
                    venue: None,
                    period_secs: None,
                    tennis: None,
                },
            ),
            event(2, EventKind::PeriodStarted { period: 1 }),
        ];
        for seq in 3..=up_to_seq {
            let side = if seq % 2 == 1 { Side::Home } else { Side::Away };
            events.push(event(seq, goal(side)));
        }
        events
    }

    fn snapshot(up_to_seq: u64) -> MatchSnapshot {
        let mut snapshot = MatchSnapshot::new(match_topic());
        for event in history(up_to_seq) {
            reduce(&mut snapshot, &event).unwrap();
        }
        snapshot
    }

    fn subscribed(topics: &[&str], snapshots: Vec<MatchSnapshot>) -> String {
        ServerMessage::Subscribed {
            topics: topics.iter().map(|t| topic(t)).collect(),
            snapshots,
            omitted: 0,
            resumed: Vec::new(),
        }
        .to_json()
    }

    fn sends(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|action| match action {
                Action::Send(message) => Some(message.to_json()),
                _ => None,
            })
            .collect()
    }

    fn connected(follows: &[&str]) -> Session {
        let mut session = session(follows);
        session.start(0);
        session.opened(10);
        session.take_actions();
        session
    }

    #[test]
    fn connecting_subscribes_the_follow_list_lists_the_catalogue_and_pings() {
        let mut session = session(&["football", "tennis/wimbledon"]);
        session.start(0);
        assert_eq!(
            session.take_actions(),
            vec![Action::Connect(DEFAULT_URL.into())]
        );
        session.opened(10);
        assert_eq!(
            sends(&session.take_actions()),
            vec![
                r#"{"type":"subscribe","topics":["football","tennis/wimbledon"]}"#,
                r#"{"type":"list"}"#,
                r#"{"type":"ping","id":1}"#,
            ]
        );
    }

    #[test]
    fn reconnect_marks_data_stale_then_resubscribes_and_the_snapshot_repairs_it() {
        let mut session = connected(&["football"]);
        session.receive_text(&subscribed(&["football"], vec![snapshot(3)]), 20);
        let tracked = session.scoreboard().get(&match_topic()).unwrap();
        assert!(session.is_fresh(tracked));

        session.lost(1_000, "connection reset");
        assert_eq!(session.take_actions(), vec![Action::Disconnect]);
        let tracked = session.scoreboard().get(&match_topic()).unwrap();
        assert!(!session.is_fresh(tracked), "stale while disconnected");
        assert_eq!(
            tracked.snapshot.score.home, 1,
            "last known score still shown"
        );

        let retry_ms = 1_000 + session.retry_in_millis(1_000).unwrap();
        session.tick(retry_ms);
        assert_eq!(
            session.take_actions(),
            vec![Action::Connect(DEFAULT_URL.into())]
        );
        session.opened(retry_ms + 5);
        assert_eq!(
            sends(&session.take_actions())[0],
            format!(
                r#"{{"type":"subscribe","topics":["football"],"resume":{{"{MATCH}":{{"epoch":0,"seq":3}}}}}}"#
            )
        );
        let tracked = session.scoreboard().get(&match_topic()).unwrap();
        assert!(
            !session.is_fresh(tracked),
            "stale until the new snapshot comes"
        );

        // Two goals were scored while the viewer was away. A server without resume ignores the
        // resume points and sends the snapshot, which repairs the match as before.
        session.receive_text(&subscribed(&["football"], vec![snapshot(5)]), retry_ms + 9);
        let tracked = session.scoreboard().get(&match_topic()).unwrap();
        assert!(session.is_fresh(tracked));
        assert_eq!(
            (tracked.snapshot.score.home, tracked.snapshot.score.away),
            (2, 1)
        );
        assert_eq!(tracked.score_changed_ms, Some(retry_ms + 9));
    }

    fn resumed_reply(topics: &[&str], resumed: Vec<MatchTopic>) -> ServerMessage {
        ServerMessage::Subscribed {
            topics: topics.iter().map(|t| topic(t)).collect(),
            snapshots: Vec::new(),
            omitted: 0,
            resumed,
        }
    }

    /// A session that held `held` matches, lost its connection and is connected again (as
    /// generation 2), with the requests of the new connection returned.
    fn reconnected(follows: &[&str], held: Vec<MatchSnapshot>) -> (Session, Vec<String>) {
        let mut session = connected(follows);
        session.receive_text(&subscribed(follows, held), 20);
        session.lost(1_000, "connection reset");
        session.command(Command::ConnectNow, 1_001);
        session.opened(1_002);
        let sent = sends(&session.take_actions());
        (session, sent)
    }

    #[test]
    fn a_reconnect_resumes_every_held_match_from_its_epoch_and_seq() {
        let mut other = MatchSnapshot::new(MatchTopic::parse("football/la-liga/rma-fcb").unwrap());
        other.epoch = 1_732_000_000_000;
        other.seq = 12;
        let (_, sent) = reconnected(&["football", "tennis"], vec![snapshot(4), other]);
        assert_eq!(
            sent[0],
            format!(
                r#"{{"type":"subscribe","topics":["football","tennis"],"resume":{{"football/la-liga/rma-fcb":{{"epoch":1732000000000,"seq":12}},"{MATCH}":{{"epoch":0,"seq":4}}}}}}"#
            )
        );

        // Nothing held: a plain subscribe, as on the first connection.
        let (_, sent) = reconnected(&["football"], Vec::new());
        assert_eq!(sent[0], r#"{"type":"subscribe","topics":["football"]}"#);
    }

    #[test]
    fn a_match_awaiting_a_repair_at_the_reconnect_gets_a_snapshot_not_a_resume() {
        let mut session = connected(&["football"]);
        session.receive_text(&subscribed(&["football"], vec![snapshot(3)]), 20);
        // seq 4 was lost: 5 moves the match's seq past a hole, so seq 5 is no place to resume.
        session.receive(ServerMessage::Event(history(5)[4].clone()), 30);
        session.take_actions();
        session.lost(40, "closed");
        session.command(Command::ConnectNow, 41);
        session.opened(42);
        assert_eq!(
            sends(&session.take_actions())[0],
            r#"{"type":"subscribe","topics":["football"]}"#
        );
        session.receive_text(&subscribed(&["football"], vec![snapshot(6)]), 50);
        let tracked = session.scoreboard().get(&match_topic()).unwrap();
        assert!(session.is_fresh(tracked));
        assert_eq!(tracked.snapshot.seq, 6);
    }

    #[test]
    fn resumed_matches_are_kept_confirmed_and_caught_up_by_the_missed_events() {
        let (mut session, _) = reconnected(&["football"], vec![snapshot(3)]);
        let tracked = session.scoreboard().get(&match_topic()).unwrap();
        assert!(!session.is_fresh(tracked), "stale until the server answers");

        session.receive(resumed_reply(&["football"], vec![match_topic()]), 1_010);
        let tracked = session.scoreboard().get(&match_topic()).expect("kept");
        assert!(session.is_fresh(tracked));
        for event in &history(5)[3..] {
            session.receive(ServerMessage::Event(event.clone()), 1_020);
        }
        let tracked = session.scoreboard().get(&match_topic()).unwrap();
        assert!(session.is_fresh(tracked));
        assert_eq!(
            (tracked.snapshot.score.home, tracked.snapshot.score.away),
            (2, 1)
        );
        assert_eq!(
            tracked.score_changed_ms,
            Some(1_020),
            "the missed goals flash"
        );
        assert!(
            sends(&session.take_actions()).is_empty(),
            "no repair needed"
        );
        assert_eq!(
            session.catch_up(),
            CatchUp {
                resume_points_sent: 1,
                resumed: 1,
                resynced: 0,
                snapshots: 0
            }
        );
    }

    #[test]
    fn a_gap_in_a_resumed_replay_is_repaired_by_a_snapshot() {
        let (mut session, _) = reconnected(&["football"], vec![snapshot(3)]);
        session.receive(resumed_reply(&["football"], vec![match_topic()]), 1_010);
        session.receive(ServerMessage::Event(history(5)[4].clone()), 1_020);
        assert_eq!(
            sends(&session.take_actions()),
            vec![format!(r#"{{"type":"subscribe","topics":["{MATCH}"]}}"#)]
        );
        let tracked = session.scoreboard().get(&match_topic()).unwrap();
        assert!(!session.is_fresh(tracked));
    }

    #[test]
    fn a_resync_replaces_the_match_confirms_it_and_drops_a_queued_repair() {
        let mut session = connected(&["football"]);
        session.receive_text(&subscribed(&["football"], vec![snapshot(3)]), 20);
        // A gap while requests are held back after a rate limit: the repair waits in the queue.
        let refused = ServerMessage::Error {
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
            request: Some(r#"{"type":"ping","id":9}"#.into()),
        };
        session.receive(refused, 25);
        session.receive(ServerMessage::Event(history(5)[4].clone()), 30);
        assert!(sends(&session.take_actions()).is_empty());

        let resync = ServerMessage::Resync {
            reason: scoreline_protocol::ResyncReason::EventsLost,
            snapshot: snapshot(6),
        };
        session.receive_text(&resync.to_json(), 40);
        let tracked = session.scoreboard().get(&match_topic()).unwrap();
        assert!(session.is_fresh(tracked));
        assert_eq!(
            (
                tracked.snapshot.seq,
                tracked.snapshot.score.home,
                tracked.snapshot.score.away
            ),
            (6, 2, 2)
        );
        assert_eq!(tracked.score_changed_ms, Some(40));
        session.tick(25 + RATE_LIMIT_RETRY_MILLIS);
        assert!(
            sends(&session.take_actions()).is_empty(),
            "the resync was the snapshot the repair would have fetched"
        );
    }

    #[test]
    fn a_resync_after_an_epoch_change_replaces_a_resumed_match() {
        let (mut session, _) = reconnected(&["football"], vec![snapshot(5)]);
        // The feed reset the match while the viewer was away; the new history is at seq 3.
        let mut reset = MatchSnapshot::new(match_topic());
        for mut event in history(3) {
            event.epoch = 1;
            reduce(&mut reset, &event).unwrap();
        }
        // The service's order: the reply, which neither resumes nor sends the match, then the
        // resync. The match is kept, stale, in between.
        session.receive(resumed_reply(&["football"], Vec::new()), 1_010);
        let tracked = session.scoreboard().get(&match_topic()).expect("kept");
        assert!(!session.is_fresh(tracked));
        let resync = ServerMessage::Resync {
            reason: scoreline_protocol::ResyncReason::EpochChanged,
            snapshot: reset,
        };
        session.receive(resync, 1_011);
        let tracked = session.scoreboard().get(&match_topic()).unwrap();
        assert!(session.is_fresh(tracked));
        assert_eq!((tracked.snapshot.epoch, tracked.snapshot.seq), (1, 3));
        assert_eq!(
            (tracked.snapshot.score.home, tracked.snapshot.score.away),
            (1, 0)
        );
        assert_eq!(tracked.score_changed_ms, Some(1_011), "2-1 became 1-0");
        assert_eq!(
            session.catch_up(),
            CatchUp {
                resume_points_sent: 1,
                resumed: 0,
                resynced: 1,
                snapshots: 0
            }
        );
        session.tick(1_012);
        assert!(
            sends(&session.take_actions()).is_empty(),
            "the resync answered; no repair"
        );
        // The next reconnect resumes from the new epoch.
        session.lost(2_000, "closed");
        session.command(Command::ConnectNow, 2_001);
        session.opened(2_002);
        assert_eq!(
            sends(&session.take_actions())[0],
            format!(
                r#"{{"type":"subscribe","topics":["football"],"resume":{{"{MATCH}":{{"epoch":1,"seq":3}}}}}}"#
            )
        );
    }

    #[test]
    fn a_resumed_match_the_server_no_longer_has_is_repaired_then_dropped() {
        let (mut session, _) = reconnected(&["football"], vec![snapshot(5)]);
        // Neither resumed nor sent, and no resync follows in the same batch of frames.
        session.receive(resumed_reply(&["football"], Vec::new()), 1_010);
        assert!(session.scoreboard().get(&match_topic()).is_some());
        session.tick(1_011);
        assert_eq!(
            sends(&session.take_actions()),
            vec![format!(r#"{{"type":"subscribe","topics":["{MATCH}"]}}"#)]
        );
        session.receive_text(&subscribed(&[MATCH], Vec::new()), 1_020);
        assert!(
            session.scoreboard().is_empty(),
            "the server does not have it"
        );
        assert_eq!(
            sends(&session.take_actions()),
            vec![format!(r#"{{"type":"unsubscribe","topics":["{MATCH}"]}}"#)]
        );
    }

    #[test]
    fn resume_points_stay_within_the_servers_frame_limit_live_matches_first() {
        let mut session = connected(&["football"]);
        let limits = Limits {
            max_topics: 64,
            max_frame_bytes: 1_024,
            max_requests_per_sec: 20,
            max_snapshots: 100,
        };
        session.receive(
            ServerMessage::Welcome {
                protocol: PROTOCOL_VERSION,
                server: "scoreline/test".into(),
                heartbeat_secs: 15,
                idle_timeout_secs: 45,
                limits,
            },
            15,
        );
        // Forty finished matches whose topics sort before the live one.
        let mut held: Vec<MatchSnapshot> = (0..40)
            .map(|index| {
                let topic = format!("football/archive-league/match-number-{index:03}");
                let mut snapshot = MatchSnapshot::new(MatchTopic::parse(&topic).unwrap());
                snapshot.seq = 90;
                snapshot.status = scoreline_protocol::MatchStatus::Finished;
                snapshot
            })
            .collect();
        held.push(snapshot(4));
        session.receive_text(&subscribed(&["football"], held), 20);
        session.lost(30, "closed");
        session.command(Command::ConnectNow, 31);
        session.opened(32);
        let request = session
            .take_actions()
            .into_iter()
            .find_map(|action| match action {
                Action::Send(message @ ClientMessage::Subscribe { .. }) => Some(message),
                _ => None,
            })
            .unwrap();
        assert!(request.to_json().len() <= limits.max_frame_bytes);
        let ClientMessage::Subscribe { resume, .. } = request else {
            unreachable!()
        };
        assert!(resume.contains_key(MATCH), "the live match is resumed");
        assert!(
            (5..41).contains(&resume.len()),
            "as many as fit: {}",
            resume.len()
        );
    }

    #[test]
    fn a_gap_under_a_prefix_follow_subscribes_the_match_then_drops_that_subscription() {
        let mut session = connected(&["football"]);
        session.receive_text(&subscribed(&["football"], vec![snapshot(3)]), 20);
        session.take_actions();
        let events = history(6);
        session.receive(ServerMessage::Event(events[5].clone()), 30);
        assert_eq!(
            sends(&session.take_actions()),
            vec![format!(r#"{{"type":"subscribe","topics":["{MATCH}"]}}"#)]
        );
        let tracked = session.scoreboard().get(&match_topic()).unwrap();
        assert!(tracked.repairing && !session.is_fresh(tracked));

        session.receive_text(&subscribed(&[MATCH], vec![snapshot(6)]), 40);
        assert_eq!(
            sends(&session.take_actions()),
            vec![format!(r#"{{"type":"unsubscribe","topics":["{MATCH}"]}}"#)]
        );
        let tracked = session.scoreboard().get(&match_topic()).unwrap();
        assert!(session.is_fresh(tracked));
        assert_eq!(
            (tracked.snapshot.score.home, tracked.snapshot.score.away),
            (2, 2)
        );
        // Events delivered twice while both subscriptions were active change nothing.
        session.receive(ServerMessage::Event(events[5].clone()), 41);
        let tracked = session.scoreboard().get(&match_topic()).unwrap();
        assert_eq!(tracked.snapshot.seq, 6);
        assert!(session.take_actions().is_empty());
    }

    #[test]
    fn a_gap_in_an_exactly_followed_match_resubscribes_it_and_keeps_it() {
        let mut session = connected(&[MATCH]);
        session.receive_text(&subscribed(&[MATCH], vec![snapshot(3)]), 20);
        session.receive(ServerMessage::Event(history(5)[4].clone()), 30);
        assert_eq!(
            sends(&session.take_actions()),
            vec![
                format!(r#"{{"type":"unsubscribe","topics":["{MATCH}"]}}"#),
                format!(r#"{{"type":"subscribe","topics":["{MATCH}"]}}"#),
            ]
        );
        session.receive_text(&subscribed(&[MATCH], vec![snapshot(5)]), 40);
        assert!(sends(&session.take_actions()).is_empty(), "still followed");
    }

    #[test]
    fn gaps_found_while_disconnected_wait_for_the_reconnect_which_repairs_everything() {
        let mut session = connected(&["football"]);
        session.receive_text(&subscribed(&["football"], vec![snapshot(3)]), 20);
        session.lost(25, "closed");
        session.take_actions();
        // A late frame that the socket thread had already queued.
        session.receive(ServerMessage::Event(history(6)[5].clone()), 26);
        assert_eq!(sends(&session.take_actions()), Vec::<String>::new());
    }

    #[test]
    fn malformed_and_unknown_frames_are_ignored_and_counted() {
        let mut session = connected(&["football"]);
        session.receive_text("not json", 1);
        session.receive_text(r#"{"type":"resync","match":"a/b/c"}"#, 2);
        session.receive_text(r#"{"type":"event","match":"football/x/y","seq":"one"}"#, 3);
        session.receive_binary(12);
        assert_eq!(session.ignored_frames(), 4);
        assert!(session.last_problem().is_some());
        assert!(session.scoreboard().is_empty());
    }

    #[test]
    fn follow_and_unfollow_send_requests_and_drop_uncovered_matches() {
        let mut session = connected(&["football"]);
        session.receive_text(&subscribed(&["football"], vec![snapshot(3)]), 20);
        session.command(Command::OpenMatch(match_topic()), 21);
        assert!(session.open_match().is_some());
        session.command(Command::Follow(topic("tennis")), 22);
        session.command(Command::Follow(topic("tennis")), 23);
        session.command(Command::Unfollow(topic("football")), 24);
        assert_eq!(
            sends(&session.take_actions()),
            vec![
                r#"{"type":"subscribe","topics":["tennis"]}"#,
                r#"{"type":"unsubscribe","topics":["football"]}"#,
            ]
        );
        assert!(session.scoreboard().is_empty());
        assert!(session.open_match().is_none());
        assert_eq!(session.follows().to_strings(), vec!["tennis"]);
    }

    #[test]
    fn following_while_offline_subscribes_on_the_next_connection() {
        let mut session = session(&[]);
        session.command(Command::Follow(topic("basketball")), 0);
        assert!(session.take_actions().is_empty());
        session.start(1);
        session.opened(2);
        assert_eq!(
            sends(&session.take_actions())[0],
            r#"{"type":"subscribe","topics":["basketball"]}"#
        );
    }

    #[test]
    fn a_capped_subscribed_reply_repairs_the_matches_it_left_out() {
        let mut session = connected(&["football"]);
        let other = MatchTopic::parse("football/premier-league/liv-mci").unwrap();
        let mut included = MatchSnapshot::new(other);
        included.seq = 1;
        session.receive_text(
            &subscribed(&["football"], vec![snapshot(3), included.clone()]),
            20,
        );
        assert_eq!(session.scoreboard().len(), 2);
        session.lost(30, "closed");
        session.start(40);
        session.opened(50);
        session.take_actions();
        // After the reconnect the server caps its reply: liv-mci is in it, ars-che is not.
        let capped = ServerMessage::Subscribed {
            topics: vec![topic("football")],
            snapshots: vec![included],
            omitted: 300,
            resumed: Vec::new(),
        };
        session.receive(capped, 60);
        assert_eq!(
            sends(&session.take_actions()),
            vec![format!(r#"{{"type":"subscribe","topics":["{MATCH}"]}}"#)]
        );
    }

    #[test]
    fn pong_gives_rtt_catalogue_is_kept_and_refreshed() {
        let mut session = connected(&[]);
        session.receive_text(r#"{"type":"pong","id":1,"server_ms":5}"#, 42);
        assert_eq!(session.rtt_millis(), Some(32));
        let summary = scoreline_protocol::MatchSummary::from(&snapshot(3));
        session.receive(
            ServerMessage::Catalogue {
                matches: vec![summary],
                omitted: 0,
            },
            50,
        );
        assert_eq!(session.catalogue().matches.len(), 1);
        session.tick(10 + CATALOGUE_REFRESH_MILLIS);
        assert!(sends(&session.take_actions()).contains(&r#"{"type":"list"}"#.to_owned()));
    }

    #[test]
    fn catalogue_tree_groups_by_sport_and_competition() {
        let summary = |topic: &str, competition: Option<&str>| {
            let mut snapshot = MatchSnapshot::new(MatchTopic::parse(topic).unwrap());
            snapshot.competition = competition.map(str::to_owned);
            MatchSummary::from(&snapshot)
        };
        let catalogue = Catalogue {
            matches: vec![
                summary("tennis/wimbledon/a-b", Some("Wimbledon")),
                summary("football/premier-league/ars-che", Some("Premier League")),
                summary("football/la-liga/rma-fcb", None),
                summary("football/premier-league/liv-mci", Some("Premier League")),
            ],
            omitted: 0,
            received_ms: Some(1),
        };
        let tree = catalogue_tree(&catalogue);
        let sports: Vec<&str> = tree.iter().map(|s| s.topic.as_str()).collect();
        assert_eq!(sports, vec!["football", "tennis"]);
        let competitions: Vec<(&str, usize)> = tree[0]
            .competitions
            .iter()
            .map(|c| (c.name.as_str(), c.matches.len()))
            .collect();
        assert_eq!(competitions, vec![("La Liga", 1), ("Premier League", 2)]);
        assert_eq!(
            tree[0].competitions[1].topic.as_str(),
            "football/premier-league"
        );
    }

    #[test]
    fn an_idle_viewer_sleeps_until_the_next_ping_and_a_running_clock_ticks_each_second() {
        let mut session = connected(&["football"]);
        let ping_due_ms = 10 + crate::connection::PING_INTERVAL_MILLIS;
        session.receive_text(r#"{"type":"pong","id":1,"server_ms":5}"#, 20);
        assert_eq!(session.next_repaint_ms(1_000), Some(ping_due_ms));

        // A live match with a running clock: one repaint per second for the clock.
        session.receive_text(&subscribed(&["football"], vec![snapshot(2)]), 1_000);
        assert_eq!(session.next_repaint_ms(1_250), Some(2_000));

        // A goal: the flash animates until it has faded.
        session.receive(ServerMessage::Event(history(3)[2].clone()), 1_300);
        assert_eq!(
            session.next_repaint_ms(1_300),
            Some(1_300 + FLASH_FRAME_MILLIS)
        );

        // Offline and nothing on screen moves: nothing to wake up for at all.
        let mut offline = self::session(&[]);
        offline.command(Command::GoOffline, 0);
        assert_eq!(offline.next_repaint_ms(0), None);
    }

    #[test]
    fn a_rate_limited_follow_or_repair_is_sent_again_a_second_later() {
        let mut session = connected(&["football"]);
        session.receive_text(&subscribed(&["football"], vec![snapshot(3)]), 20);
        session.command(Command::Follow(topic("tennis")), 100);
        session.take_actions();
        let refused = ServerMessage::Error {
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
            request: Some(r#"{"type":"subscribe","topics":["tennis"]}"#.into()),
        };
        session.receive(refused, 110);
        // A gap meanwhile waits for the burst to pass as well.
        session.receive(ServerMessage::Event(history(5)[4].clone()), 120);
        assert!(sends(&session.take_actions()).is_empty());
        assert_eq!(
            session.next_deadline_ms(),
            Some(110 + RATE_LIMIT_RETRY_MILLIS)
        );
        session.tick(110 + RATE_LIMIT_RETRY_MILLIS);
        assert_eq!(
            sends(&session.take_actions()),
            vec![
                r#"{"type":"subscribe","topics":["tennis"]}"#.to_owned(),
                format!(r#"{{"type":"subscribe","topics":["{MATCH}"]}}"#),
            ]
        );

        // A repair whose echoed request was cut short is asked for again.
        let cut = ServerMessage::Error {
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
            request: Some(r#"{"type":"subscribe","topics":["footb"#.into()),
        };
        session.receive(cut, 2_000);
        session.tick(2_000 + RATE_LIMIT_RETRY_MILLIS);
        assert_eq!(
            sends(&session.take_actions()),
            vec![format!(r#"{{"type":"subscribe","topics":["{MATCH}"]}}"#)]
        );
    }

    #[test]
    fn going_offline_stops_reconnecting_and_switching_url_connects_there() {
        let mut session = connected(&[]);
        session.command(Command::GoOffline, 100);
        assert_eq!(session.take_actions(), vec![Action::Disconnect]);
        session.lost(101, "closed");
        session.tick(1_000_000);
        assert!(session.take_actions().is_empty());
        assert_eq!(session.link_state(), &LinkState::Offline);
        session.command(Command::SetUrl(" ws://127.0.0.1:9/ws ".into()), 200);
        assert_eq!(
            session.take_actions(),
            vec![Action::Connect("ws://127.0.0.1:9/ws".into())]
        );
        assert_eq!(session.url(), "ws://127.0.0.1:9/ws");
    }
}

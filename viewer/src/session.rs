//! The session: the viewer's whole model, without a socket or a screen.
//!
//! It joins the [`Scoreboard`], the [`FollowList`], the connection state machine ([`Link`]) and
//! the server's catalogue, and decides what to send: subscriptions after every (re)connect (with
//! the point each held match can be resumed from), a fresh snapshot for a match with a gap,
//! pings, catalogue refreshes, the open match's own subscription (so the fan is counted among
//! those watching it and told how many they are), the spoiler delay. Inputs are plain values
//! (a frame's text, "the socket opened", the time); outputs are [`Action`]s queued for the socket
//! adapter. That makes reconnects, gaps and stale marking testable with nothing but values.

use std::collections::{BTreeMap, BTreeSet};

use scoreline_protocol::{
    ClientMessage, ErrorCode, Limits, MatchSummary, MatchTopic, PROTOCOL_VERSION, ResumePoint,
    ServerMessage, Topic,
};

use crate::connection::{Link, LinkAction, LinkState};
use crate::follow::{FollowList, TeamFollow};
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

/// Topics a connection may subscribe before any server announced its own limit
/// (`limits.max_topics`): the service's default.
pub const DEFAULT_MAX_TOPICS: usize = 64;

/// How long the spoiler delay must stay unchanged before it is sent: the fan may still be
/// dragging the control, and one subscribe per step of a drag would only be rate-limited.
pub const DELAY_SETTLE_MILLIS: u64 = 600;

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
    /// Follow a team (every match the server lists with it).
    FollowTeam(TeamFollow),
    /// Stop following a team.
    UnfollowTeam(TeamFollow),
    /// Follow every sport the server has: the first look for a fan who follows nothing.
    FollowEverything,
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
    /// Show every score this many seconds after it happened, to stay behind a video stream
    /// (0: live). Sent once the control has settled.
    SetDelay(u32),
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
    /// The competition's topic, e.g. `football/champions-league`.
    pub topic: Topic,
    /// Its display name: what every edition's name begins with (`UEFA Champions League` for
    /// `UEFA Champions League 1998-99` and `... 2004-05`), or the one name they all share.
    pub name: String,
    /// Its editions (seasons, or anything else the feeds put after the common name), by name.
    pub editions: Vec<CatalogueEdition>,
}

impl CatalogueCompetition {
    /// How many matches it has, over all editions.
    pub fn match_count(&self) -> usize {
        self.editions
            .iter()
            .map(|edition| edition.matches.len())
            .sum()
    }
}

/// The matches of one competition that share a display name, e.g. one season.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogueEdition {
    /// The full display name the snapshots give, e.g. `UEFA Champions League 1998-99`.
    pub name: String,
    /// What distinguishes it from the competition's other editions, e.g. `1998-99`; empty when
    /// the competition has a single edition.
    pub label: String,
    /// Its matches, in the server's order (live first).
    pub matches: Vec<MatchSummary>,
}

/// The catalogue as a sport → competition → edition → match tree, sports by topic and
/// competitions and editions by name.
///
/// A competition is one topic (`football/champions-league`), which is what a fan follows; the
/// snapshots may name its matches differently (`UEFA Champions League 1998-99`,
/// `UEFA Champions League 2004-05`), so each name is kept as an edition instead of taking
/// whichever came first.
pub fn catalogue_tree(catalogue: &Catalogue) -> Vec<CatalogueSport> {
    let mut sports: BTreeMap<Topic, BTreeMap<Topic, BTreeMap<String, Vec<MatchSummary>>>> =
        BTreeMap::new();
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
        let name = summary
            .competition
            .clone()
            .unwrap_or_else(|| crate::scoreboard::slug_to_title(topic.competition_slug()));
        sports
            .entry(sport_topic)
            .or_default()
            .entry(competition_topic)
            .or_default()
            .entry(name)
            .or_default()
            .push(summary.clone());
    }
    sports
        .into_iter()
        .map(|(topic, competitions)| {
            let mut competitions: Vec<CatalogueCompetition> = competitions
                .into_iter()
                .map(|(topic, editions)| {
                    let names: Vec<&str> = editions.keys().map(String::as_str).collect();
                    let name = common_name(&names);
                    let editions = editions
                        .into_iter()
                        .map(|(full, matches)| CatalogueEdition {
                            label: full[name.len().min(full.len())..]
                                .trim_start_matches([' ', ',', '-', '·'])
                                .trim()
                                .to_owned(),
                            name: full,
                            matches,
                        })
                        .collect();
                    CatalogueCompetition {
                        topic,
                        name,
                        editions,
                    }
                })
                .collect();
            competitions.sort_by(|a, b| a.name.cmp(&b.name));
            CatalogueSport {
                topic,
                competitions,
            }
        })
        .collect()
}

/// The words every name begins with (`UEFA Champions League` for `UEFA Champions League
/// 1998-99` and `UEFA Champions League 2004-05`), or the name itself when there is one; the
/// first name when they share no word.
fn common_name(names: &[&str]) -> String {
    let Some(first) = names.first() else {
        return String::new();
    };
    if names.len() == 1 {
        return (*first).to_owned();
    }
    let mut common: Vec<&str> = first.split_whitespace().collect();
    for name in &names[1..] {
        let words: Vec<&str> = name.split_whitespace().collect();
        let shared = common
            .iter()
            .zip(&words)
            .take_while(|(a, b)| a == b)
            .count();
        common.truncate(shared);
    }
    if common.is_empty() {
        (*first).to_owned()
    } else {
        common
            .join(" ")
            .trim_end_matches([',', '-', '·'])
            .to_owned()
    }
}

/// Checks and normalises a server address typed by the fan: `ws://host[:port][/path]`. The
/// error says what is wrong in words a fan understands, and suggests the likely fix.
pub fn parse_server_url(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("Enter the server's address, for example ws://127.0.0.1:8080/ws".to_owned());
    }
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("wss://") {
        return Err(
            "Secure server addresses (wss://) are not supported by this viewer yet; use ws://"
                .to_owned(),
        );
    }
    if let Some(rest) = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
    {
        return Err(format!(
            "That is a web address; the viewer needs the server's WebSocket address, for example ws://{}",
            suggested_rest(rest)
        ));
    }
    let Some(rest) = lower.strip_prefix("ws://") else {
        return Err(format!(
            "Not a server address: it must start with ws:// (for example ws://{})",
            suggested_rest(text)
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            (host, Some(port))
        }
        _ => (authority, None),
    };
    if host.is_empty() {
        return Err("Not a server address: the host is missing after ws://".to_owned());
    }
    if text.chars().any(char::is_whitespace) {
        return Err("Not a server address: it cannot contain spaces".to_owned());
    }
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|port| port > 0)
    {
        return Err(format!(
            "Not a server address: {port:?} is not a port number"
        ));
    }
    // Keep the fan's spelling of the path; only the scheme is made lower-case.
    Ok(format!("ws://{}", &text["ws://".len()..]))
}

/// `host:port/ws` from whatever followed the scheme a fan typed, for a suggestion.
fn suggested_rest(rest: &str) -> String {
    let rest = rest.trim_start_matches('/');
    if rest.contains('/') {
        rest.to_owned()
    } else {
        format!("{}/ws", rest.trim_end_matches('/'))
    }
}

/// Why the connection failed or ended, in a fan's words, from what the WebSocket library
/// reported (`Connect: URL error: Unable to connect to ws://...` for a server that is down).
pub fn connection_problem(raw: &str, url: &str) -> String {
    let place = url
        .trim_start_matches("ws://")
        .split(['/', '?', '#'])
        .next()
        .unwrap_or(url);
    let host = place.rsplit_once(':').map_or(place, |(host, _)| host);
    let lower = raw.to_ascii_lowercase();
    let http_status = lower
        .split_once("http error: ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|code| code.parse::<u16>().ok());
    if lower.contains("unable to connect") || lower.contains("connection refused") {
        format!("Server unreachable: nothing answers at {place}")
    } else if lower.contains("failed to lookup address")
        || lower.contains("name or service not known")
        || lower.contains("no address associated")
    {
        format!("Server unreachable: no host is called {host}")
    } else if lower.contains("connect timed out") {
        format!(
            "Server unreachable: {place} did not answer within {} s",
            crate::connection::CONNECT_TIMEOUT_MILLIS / 1_000
        )
    } else if let Some(status) = http_status {
        match status {
            503 => "The server is too busy to take the connection (HTTP 503)".to_owned(),
            401 | 403 => format!("The server refused this viewer (HTTP {status})"),
            _ => format!("{place} answered, but not as a Scoreline server (HTTP {status})"),
        }
    } else if lower.contains("closed the connection") {
        "The server closed the connection".to_owned()
    } else if lower.contains("reset") {
        "Connection lost: reset by the network or the server".to_owned()
    } else if lower.contains("stopped answering") {
        "Connection lost: the server stopped answering".to_owned()
    } else {
        format!("Connection lost: {raw}")
    }
}

/// Whether what a row shows can be trusted, and if not why: drawn beside the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Confirmed on the current connection (or finished, which no longer changes).
    Fresh,
    /// A gap was found; a fresh snapshot is on its way.
    Updating,
    /// Not confirmed since the connection was lost: may be behind.
    NotConfirmed,
    /// The server itself says it could not prove this is the latest state.
    ServerUnsure,
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

/// How far behind the stadium the board is, for the status bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelayStatus {
    /// Scores arrive as they happen.
    Live,
    /// Scores arrive this many seconds after they happened, as the fan chose.
    Delayed {
        /// The delay.
        secs: u32,
    },
    /// A new delay was chosen; the board shows the old one until the server's reply.
    Changing {
        /// The delay shown now.
        from_secs: u32,
        /// The delay asked for.
        to_secs: u32,
    },
    /// The server answered without the delay asked for (a server that does not have it).
    NotApplied {
        /// The delay asked for.
        asked_secs: u32,
        /// The delay the board has.
        shown_secs: u32,
    },
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
    /// Why the server address was refused, while it is: the viewer does not connect to an
    /// address that cannot work, and says so once instead of retrying it forever.
    url_problem: Option<String>,
    /// Follow every sport once the catalogue lists some: set for a fan who follows nothing yet
    /// (first run), so the first look is a scoreboard rather than an empty window.
    follow_everything_pending: bool,
    /// Frames that could not be understood, ignored since start.
    ignored_frames: u64,
    /// The limits of this server's last welcome, kept across reconnects: the guess for a new
    /// connection before its welcome, and the range of the spoiler delay control.
    last_limits: Option<Limits>,
    /// The spoiler delay the fan chose, in seconds (0: live); persisted.
    delay_secs: u32,
    /// When to send a changed spoiler delay, once the control has settled.
    delay_send_at_ms: Option<u64>,
    /// The spoiler delay this connection last asked for (a new connection is live).
    asked_delay_secs: u32,
    /// A subscribe asking for a delay was sent and no `subscribed` reply has come since.
    delay_reply_pending: bool,
    /// The full subscribe of this connection waits for the welcome: with a delay chosen, the
    /// server's limit on it must be known first, because a subscribe asking for more is refused
    /// whole and would leave the fan with nothing.
    subscribe_on_welcome: bool,
    /// How many fans watch each match, as the server last said, for matches whose own topic
    /// this connection subscribes (the server counts and tells only those). Dropped with the
    /// match, with that subscription and with the connection, so no count is shown stale.
    watching: BTreeMap<MatchTopic, u64>,
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
            url_problem: None,
            follow_everything_pending: false,
            ignored_frames: 0,
            last_limits: None,
            delay_secs: 0,
            delay_send_at_ms: None,
            asked_delay_secs: 0,
            delay_reply_pending: false,
            subscribe_on_welcome: false,
            watching: BTreeMap::new(),
            actions: Vec::new(),
        }
    }

    /// The same session with the spoiler delay the fan chose in an earlier run.
    pub fn with_delay_secs(mut self, delay_secs: u32) -> Session {
        self.delay_secs = delay_secs;
        self
    }

    /// Follows every sport the server lists as soon as its catalogue arrives, unless the fan
    /// follows something first: for the first run, so the first look is a scoreboard.
    pub fn follow_everything_once_listed(&mut self) {
        self.follow_everything_pending = true;
    }

    /// Starts connecting, unless the server address cannot work: then the session stays offline
    /// and [`Session::url_problem`] says why, once, instead of retrying forever.
    pub fn start(&mut self, now_ms: u64) {
        match parse_server_url(&self.url) {
            Ok(_) => {
                self.url_problem = None;
                let actions = self.link.start(now_ms);
                self.push_link_actions(actions);
            }
            Err(problem) => {
                tracing::warn!(url = %self.url, %problem, "not connecting");
                self.url_problem = Some(problem);
                let actions = self.link.stop();
                self.push_link_actions(actions);
            }
        }
    }

    /// The socket opened: subscribe to everything followed, resuming each held match from its
    /// last applied `(epoch, seq)` (the server replays what was missed, or resyncs the match;
    /// matches without a resume point get a fresh snapshot), ask for the catalogue, and start
    /// pinging.
    pub fn opened(&mut self, now_ms: u64) {
        let generation = self.link.opened(now_ms);
        tracing::info!(url = %self.url, generation, "connected");
        self.server = None;
        self.pending_repairs.clear();
        self.repairs_in_flight.clear();
        self.awaiting_resync.clear();
        self.watching.clear();
        self.catch_up = CatchUp::default();
        self.asked_delay_secs = 0;
        self.delay_reply_pending = false;
        // The full subscription below supersedes anything refused on the old connection.
        self.retry_requests.clear();
        self.retry_requests_at_ms = None;
        // The welcome comes first on every connection. Without a delay the subscribe goes at
        // once (the last welcome's limits are the best guess at this one's); with one, it
        // waits for the welcome, whose limit on the delay it must respect.
        self.subscribe_on_welcome = self.delay_secs > 0;
        if !self.subscribe_on_welcome {
            self.subscribe_everything(generation);
        }
        self.request_catalogue(now_ms);
        self.tick(now_ms);
    }

    /// Sends the subscribe every connection starts with: every subscribed topic, resuming the
    /// held matches, with the spoiler delay.
    fn subscribe_everything(&mut self, generation: u64) {
        let delay_secs = self.requested_delay_secs();
        self.scoreboard.set_stream_delay_secs(delay_secs);
        if self.wanted_subscriptions().is_empty() {
            return;
        }
        let max_frame_bytes = self
            .last_limits
            .map_or(DEFAULT_MAX_FRAME_BYTES, |limits| limits.max_frame_bytes);
        let request = self.resubscribe_request(max_frame_bytes, generation, delay_secs);
        let request = if delay_secs > 0 {
            // A new connection is live until it names a delay, so 0 needs no field.
            self.asked_delay_secs = delay_secs;
            self.delay_reply_pending = true;
            request.delayed(delay_secs)
        } else {
            request
        };
        self.actions.push(Action::Send(request));
    }

    /// The subscribe sent on every connection: every subscribed topic, with a resume point for
    /// each held match that has one (at the spoiler delay asked for: a match held at another
    /// needs a snapshot), as many as fit in `max_frame_bytes` (live matches first). A frame
    /// over the limit would make the server close the connection (1009) on every reconnect; a
    /// match left out simply gets a snapshot, as before resume existed.
    fn resubscribe_request(
        &mut self,
        max_frame_bytes: usize,
        generation: u64,
        delay_secs: u32,
    ) -> ClientMessage {
        let subscriptions = self.wanted_subscriptions();
        let plain = ClientMessage::subscribe(&subscriptions);
        let mut size_bytes = plain.to_json().len()
            + r#","resume":{}"#.len()
            + format!(r#","delay_secs":{delay_secs}"#).len();
        let mut resume = BTreeMap::new();
        let mut left_out = 0_usize;
        let points: Vec<(MatchTopic, ResumePoint)> = self
            .scoreboard
            .resume_points(delay_secs)
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
        ClientMessage::resume(&subscriptions, resume)
    }

    /// The socket failed or closed. Everything shown becomes possibly stale until the next
    /// connection confirms it.
    pub fn lost(&mut self, now_ms: u64, reason: &str) {
        if self.link.is_connected() {
            tracing::warn!(url = %self.url, reason, "connection lost");
        } else {
            tracing::debug!(url = %self.url, reason, "connect failed");
        }
        let actions = self
            .link
            .lost(now_ms, connection_problem(reason, &self.url));
        self.push_link_actions(actions);
        self.next_catalogue_ms = None;
        // Nobody tells this viewer the counts now; the next connection will.
        self.watching.clear();
        self.subscribe_on_welcome = false;
        self.delay_reply_pending = false;
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
                self.last_limits = Some(*limits);
                if std::mem::take(&mut self.subscribe_on_welcome) {
                    self.subscribe_everything(self.link.generation());
                }
            }
            ServerMessage::Pong { id, .. } => self.link.pong(*id, now_ms),
            ServerMessage::Catalogue { matches, omitted } => {
                self.catalogue = Catalogue {
                    matches: matches.clone(),
                    omitted: *omitted,
                    received_ms: Some(now_ms),
                };
                if self.follow_everything_pending && !matches.is_empty() {
                    self.follow_everything_pending = false;
                    self.follow_every_sport();
                }
                self.find_team_matches();
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
                if *code == ErrorCode::BadRequest && self.delay_reply_pending {
                    // Most likely the delay itself (its limit is checked before asking, so
                    // only a server whose limit changed under a live connection gets here):
                    // the status bar says the delay was not applied.
                    self.delay_reply_pending = false;
                }
                if *code == ErrorCode::RateLimited {
                    self.retry_later(request.as_deref(), now_ms);
                }
            }
            ServerMessage::Subscribed {
                topics,
                snapshots,
                resumed,
                delay_secs,
                ..
            } => {
                self.delay_reply_pending = false;
                if *delay_secs != self.asked_delay_secs {
                    tracing::warn!(
                        asked = self.asked_delay_secs,
                        got = delay_secs,
                        "the server did not apply the spoiler delay asked for"
                    );
                }
                let board = &self.scoreboard;
                // Snapshots of another spoiler delay are the reply to a delay change, not a
                // catch-up of matches held from before the connection.
                let same_delay = *delay_secs == board.stream_delay_secs();
                self.catch_up.snapshots += snapshots
                    .iter()
                    .filter(|snapshot| same_delay && board.get(&snapshot.match_topic).is_some())
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
            ServerMessage::Watching { match_topic, fans } => {
                // Kept only while this connection subscribes the match's own topic, which is
                // what keeps the count coming (see `prune_watching`).
                self.watching.insert(match_topic.clone(), *fans);
            }
            ServerMessage::Unsubscribed { .. } | ServerMessage::Event(_) => {}
        }
        let open_was_held = self.open_match().is_some();
        let outcome =
            self.scoreboard
                .apply(&message, &self.follows, self.link.generation(), now_ms);
        if open_was_held && self.open_match().is_none() {
            // The server no longer has the open match: its detail closes, and with it the
            // match's own subscription.
            let before = self.wanted_subscriptions();
            self.open_match = None;
            self.update_subscriptions(&before);
        }
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
        self.prune_watching();
    }

    /// Forgets the watching counts nobody keeps up to date any more: of matches gone from the
    /// board, and of matches whose own topic this connection no longer subscribes.
    fn prune_watching(&mut self) {
        if self.watching.is_empty() {
            return;
        }
        let wanted = self.wanted_subscriptions();
        let board = &self.scoreboard;
        self.watching
            .retain(|topic, _| wanted.contains(topic.topic()) && board.get(topic).is_some());
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
        let wanted = self.wanted_subscriptions();
        for topic in topics {
            if let Ok(match_topic) = MatchTopic::try_from(topic.clone())
                && self.repairs_in_flight.remove(&match_topic)
                && !wanted.contains(topic)
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
    /// way to get a snapshot is to subscribe to the match without one. If the fan follows that
    /// exact match (or has it open, which subscribes its own topic), it is unsubscribed and
    /// subscribed again (the server handles requests in order, so nothing is lost in between);
    /// otherwise the match is subscribed on its own and unsubscribed once its snapshot came,
    /// while the broader follow keeps delivering. Duplicate events in the overlap are dropped
    /// by `seq`.
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
        let wanted = self.wanted_subscriptions();
        let exact: Vec<Topic> = batch
            .iter()
            .map(|m| m.topic().clone())
            .filter(|t| wanted.contains(t))
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
        if self.delay_send_at_ms.is_some_and(|due| now_ms >= due) {
            self.delay_send_at_ms = None;
            self.send_delay();
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
            self.delay_send_at_ms,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// When the screen next needs drawing without any socket event: the next session deadline
    /// (ping, retry, timeout, catalogue), the next change of a clock on screen (a minute for
    /// football, a second for basketball), the end of a goal badge or score highlight, or the
    /// next second of a retry countdown. `None` means sleep until the socket wakes the UI: this
    /// is what keeps an idle viewer's CPU near zero. Nothing on screen fades or blinks, so
    /// nothing needs a frame between these moments.
    pub fn next_repaint_ms(&self, now_ms: u64) -> Option<u64> {
        let board = self.scoreboard();
        let highlights_end = board
            .matches()
            .filter_map(|tracked| tracked.highlight(now_ms))
            .map(|change| change.until_ms())
            .min();
        // A delayed match's clock reads as of its delay; whole seconds keep the rounding.
        let clocks_change = board
            .matches()
            .filter_map(|tracked| {
                let delay_ms = now_ms - tracked.shown_at_ms(now_ms);
                next_clock_change_ms(&tracked.snapshot, now_ms - delay_ms)
                    .map(|change_ms| change_ms + delay_ms)
            })
            .min();
        let counting_down = self.link.retry_in(now_ms).is_some();
        let next_second_ms = now_ms - now_ms % 1_000 + 1_000;
        [
            self.next_deadline_ms(),
            highlights_end,
            clocks_change,
            counting_down.then_some(next_second_ms),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Applies a fan's command.
    pub fn command(&mut self, command: Command, now_ms: u64) {
        match command {
            Command::Follow(topic) => {
                self.follow_everything_pending = false;
                let followed = topic.clone();
                if self.change_follows(|follows| follows.follow(followed)) {
                    tracing::info!(%topic, "following");
                }
            }
            Command::Unfollow(topic) => {
                if self.change_follows(|follows| follows.unfollow(&topic)) {
                    tracing::info!(%topic, "unfollowing");
                }
            }
            Command::FollowTeam(team) => {
                self.follow_everything_pending = false;
                tracing::info!(team = %team.name, sport = %team.sport, "following a team");
                let before = self.wanted_subscriptions();
                if self.follows.follow_team(team) {
                    let found = self.follows.team_matches_in(&self.catalogue.matches);
                    self.follows.set_team_matches(found);
                    self.update_subscriptions(&before);
                }
            }
            Command::UnfollowTeam(team) => {
                tracing::info!(team = %team.name, sport = %team.sport, "unfollowing a team");
                self.change_follows(|follows| follows.unfollow_team(&team));
            }
            Command::FollowEverything => {
                self.follow_everything_pending = false;
                self.follow_every_sport();
            }
            Command::OpenMatch(topic) => {
                let before = self.wanted_subscriptions();
                self.open_match = Some(topic);
                self.update_subscriptions(&before);
            }
            Command::CloseMatch => {
                let before = self.wanted_subscriptions();
                self.open_match = None;
                self.update_subscriptions(&before);
            }
            Command::SetUrl(text) => match parse_server_url(&text) {
                Err(problem) => {
                    tracing::info!(url = %text.trim(), %problem, "server address refused");
                    self.url_problem = Some(problem);
                }
                Ok(url) if url != self.url => {
                    tracing::info!(%url, "switching server");
                    self.switch_server(url);
                    self.start(now_ms);
                }
                Ok(_) => {
                    self.url_problem = None;
                    if !self.link.is_connected() {
                        self.start(now_ms);
                    }
                }
            },
            Command::ConnectNow => self.start(now_ms),
            Command::GoOffline => {
                let actions = self.link.stop();
                self.push_link_actions(actions);
                self.next_catalogue_ms = None;
            }
            Command::RefreshCatalogue => self.request_catalogue(now_ms),
            Command::SetDelay(secs) => {
                let chosen = match self.max_delay_secs() {
                    Some(max) if max > 0 => secs.min(max),
                    _ => secs,
                };
                if chosen != self.delay_secs {
                    tracing::info!(delay_secs = chosen, "spoiler delay chosen");
                    self.delay_secs = chosen;
                    self.delay_send_at_ms = Some(now_ms.saturating_add(DELAY_SETTLE_MILLIS));
                }
            }
        }
        self.prune_watching();
    }

    /// Sends the spoiler delay chosen, if this connection has not asked for it yet: one
    /// subscribe naming every topic it subscribes and the delay. The server moves them all to
    /// the new delay and replies with every match as of it, which replaces what is shown
    /// whatever its `seq` (see [`Scoreboard`]). Offline, the next connection asks for it.
    fn send_delay(&mut self) {
        let delay_secs = self.requested_delay_secs();
        if !self.link.is_connected() || self.subscribe_on_welcome {
            return;
        }
        let topics = self.wanted_subscriptions();
        if delay_secs == self.asked_delay_secs || topics.is_empty() {
            // Nothing subscribed: the next subscribe carries the delay (see
            // `update_subscriptions`).
            return;
        }
        tracing::info!(delay_secs, "asking the server for a spoiler delay");
        self.asked_delay_secs = delay_secs;
        self.delay_reply_pending = true;
        self.actions.push(Action::Send(
            ClientMessage::subscribe(&topics).delayed(delay_secs),
        ));
    }

    /// The delay to ask the server for: the fan's choice within the server's limit (0 when the
    /// server has no spoiler delay); the choice itself when no server has said yet.
    fn requested_delay_secs(&self) -> u32 {
        self.max_delay_secs()
            .map_or(self.delay_secs, |max| self.delay_secs.min(max))
    }

    /// The subscriptions this connection holds: the follows, and the open match's own topic
    /// when a broader follow brings it in. The server counts a fan as watching a match, and
    /// tells them how many watch it, only when the connection subscribes that exact topic; it
    /// delivers each event once however the topics overlap. Left out when the server's
    /// `max_topics` leaves no room: the count is a nicety, the follows are not.
    fn wanted_subscriptions(&self) -> BTreeSet<Topic> {
        let mut topics = self.follows.subscriptions();
        let max_topics = self
            .last_limits
            .map_or(DEFAULT_MAX_TOPICS, |limits| limits.max_topics);
        if let Some(open) = &self.open_match
            && self.follows.covers(open)
            && topics.len() < max_topics
        {
            topics.insert(open.topic().clone());
        }
        topics
    }

    /// Forgets everything that belonged to the old server: its matches, its catalogue (and the
    /// team matches found in it), its welcome and any repair in progress. What the fan follows
    /// stays: it is subscribed on the new server when it opens.
    fn switch_server(&mut self, url: String) {
        self.url = url;
        self.scoreboard = Scoreboard::new();
        self.catalogue = Catalogue::default();
        self.follows.set_team_matches(Default::default());
        self.server = None;
        self.last_limits = None;
        self.watching.clear();
        self.subscribe_on_welcome = false;
        self.delay_reply_pending = false;
        self.delay_send_at_ms = None;
        self.open_match = None;
        self.pending_repairs.clear();
        self.repairs_in_flight.clear();
        self.awaiting_resync.clear();
        self.retry_requests.clear();
        self.retry_requests_at_ms = None;
        self.catch_up = CatchUp::default();
        self.last_problem = None;
        self.url_problem = None;
    }

    /// Applies `change` to the follow list; when it changed anything, subscribes what became
    /// followed and unsubscribes what no longer is. Returns whether anything changed.
    fn change_follows(&mut self, change: impl FnOnce(&mut FollowList) -> bool) -> bool {
        let before = self.wanted_subscriptions();
        if !change(&mut self.follows) {
            return false;
        }
        self.update_subscriptions(&before);
        true
    }

    /// Sends the difference between the subscriptions `before` a change and now: new topics
    /// first, so a broader follow replacing narrower ones never leaves a moment uncovered. Drops
    /// matches no longer followed, and closes the detail of one.
    fn update_subscriptions(&mut self, before: &BTreeSet<Topic>) {
        self.scoreboard.retain_followed(&self.follows);
        if self
            .open_match
            .as_ref()
            .is_some_and(|open| !self.follows.covers(open))
        {
            self.open_match = None;
        }
        let after = self.wanted_subscriptions();
        // The first subscribe of a connection waiting for its welcome will name them all.
        if self.link.is_connected() && !self.subscribe_on_welcome {
            let added: Vec<&Topic> = after.difference(before).collect();
            let removed: Vec<&Topic> = before.difference(&after).collect();
            if !added.is_empty() {
                let mut request = ClientMessage::subscribe(added);
                let delay_secs = self.requested_delay_secs();
                if delay_secs != self.asked_delay_secs {
                    // A delay chosen while nothing was subscribed goes with the first topics.
                    self.asked_delay_secs = delay_secs;
                    self.delay_reply_pending = true;
                    request = request.delayed(delay_secs);
                }
                self.actions.push(Action::Send(request));
            }
            if !removed.is_empty() {
                self.actions
                    .push(Action::Send(ClientMessage::unsubscribe(removed)));
            }
        }
    }

    /// Follows every sport the catalogue lists, in one request.
    fn follow_every_sport(&mut self) {
        let sports: BTreeSet<Topic> = self
            .catalogue
            .matches
            .iter()
            .filter_map(|summary| Topic::parse(summary.match_topic.sport_slug()).ok())
            .collect();
        if sports.is_empty() {
            return;
        }
        tracing::info!(
            count = sports.len(),
            "following every sport the server lists"
        );
        self.change_follows(|follows| {
            let mut changed = false;
            for sport in sports {
                changed |= follows.follow(sport);
            }
            changed
        });
    }

    /// Finds the followed teams' matches in the catalogue and subscribes what changed.
    fn find_team_matches(&mut self) {
        let before = self.wanted_subscriptions();
        let found = self.follows.team_matches_in(&self.catalogue.matches);
        self.follows.set_team_matches(found);
        if self.wanted_subscriptions() != before {
            self.update_subscriptions(&before);
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

    /// Whether the fan can trust what a row shows, and if not why. A finished match is not
    /// marked while offline or reconnecting: it no longer changes (a rare late correction is
    /// caught up on the next connection like anything else).
    pub fn freshness(&self, tracked: &TrackedMatch) -> Freshness {
        if tracked.repairing && self.link.is_connected() {
            Freshness::Updating
        } else if tracked.snapshot.stale {
            Freshness::ServerUnsure
        } else if self.is_fresh(tracked) || tracked.snapshot.status.is_over() {
            Freshness::Fresh
        } else {
            Freshness::NotConfirmed
        }
    }

    /// Why the server address was refused, while it is.
    pub fn url_problem(&self) -> Option<&str> {
        self.url_problem.as_deref()
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

    /// How many fans watch this match now, this viewer included, while the server keeps
    /// saying so (the match open, or followed on its own, and connected).
    pub fn watching(&self, topic: &MatchTopic) -> Option<u64> {
        self.watching.get(topic).copied()
    }

    /// The spoiler delay the fan chose, in seconds (0: live).
    pub fn delay_secs(&self) -> u32 {
        self.delay_secs
    }

    /// The longest spoiler delay this server allows, in seconds, as its last welcome said: 0
    /// when it has none; `None` before any welcome.
    pub fn max_delay_secs(&self) -> Option<u32> {
        self.last_limits.map(|limits| limits.max_delay_secs)
    }

    /// Whether the board is delayed, changing delay, or not delayed as asked: for the status bar.
    pub fn delay_status(&self) -> DelayStatus {
        let shown_secs = self.scoreboard.stream_delay_secs();
        let requested_secs = self.requested_delay_secs();
        if self.link.is_connected()
            && self.delay_secs > 0
            && self.max_delay_secs() == Some(0)
            && shown_secs == 0
        {
            // The fan's delay is kept for servers that have one; this one does not.
            return DelayStatus::NotApplied {
                asked_secs: self.delay_secs,
                shown_secs,
            };
        }
        if shown_secs == requested_secs || !self.link.is_connected() {
            if shown_secs == 0 {
                DelayStatus::Live
            } else {
                DelayStatus::Delayed { secs: shown_secs }
            }
        } else if self.delay_send_at_ms.is_some()
            || self.delay_reply_pending
            || self.subscribe_on_welcome
        {
            DelayStatus::Changing {
                from_secs: shown_secs,
                to_secs: requested_secs,
            }
        } else {
            DelayStatus::NotApplied {
                asked_secs: requested_secs,
                shown_secs,
            }
        }
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

/// When the clock a row shows for this match next reads differently (football shows whole
/// minutes, other sports seconds), rounded up to the next whole second of wall time so that
/// every clock on screen moves on in the same frame rather than each in its own; `None` without
/// a running clock.
pub fn next_clock_change_ms(
    snapshot: &scoreline_protocol::MatchSnapshot,
    now_ms: u64,
) -> Option<u64> {
    let clock = snapshot.clock.filter(|clock| clock.running)?;
    if !snapshot.status.is_in_progress() {
        return None;
    }
    let step_secs = match snapshot.sport {
        scoreline_protocol::Sport::Football => 60,
        _ => 1,
    };
    let next_secs = (clock.secs_at(now_ms) / step_secs + 1) * step_secs;
    let change_ms = clock
        .at_ms
        .saturating_add(u64::from(next_secs.saturating_sub(clock.secs)) * 1_000);
    Some(change_ms.div_ceil(1_000).saturating_mul(1_000))
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
            delay_secs: 0,
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
            delay_secs: 0,
        }
    }

    /// A session that held `held` matches, lost its connection and is connected again (as
    /// generation 2), with the requests of the new connection returned.
    /// The connection is lost at `at_ms` and opened again straight away (a millisecond to ask,
    /// one to connect).
    fn reopen(session: &mut Session, at_ms: u64, reason: &str) {
        session.lost(at_ms, reason);
        session.command(Command::ConnectNow, at_ms + 1);
        session.opened(at_ms + 2);
    }

    fn reconnected(follows: &[&str], held: Vec<MatchSnapshot>) -> (Session, Vec<String>) {
        let mut session = connected(follows);
        session.receive_text(&subscribed(follows, held), 20);
        reopen(&mut session, 1_000, "connection reset");
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
        reopen(&mut session, 40, "closed");
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
        reopen(&mut session, 2_000, "closed");
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
            max_delay_secs: 0,
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
        reopen(&mut session, 30, "closed");
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
        session.take_actions();
        session.command(Command::Follow(topic("tennis")), 22);
        session.command(Command::Follow(topic("tennis")), 23);
        session.command(Command::Unfollow(topic("football")), 24);
        assert_eq!(
            sends(&session.take_actions()),
            vec![
                r#"{"type":"subscribe","topics":["tennis"]}"#.to_owned(),
                format!(r#"{{"type":"unsubscribe","topics":["football","{MATCH}"]}}"#),
            ],
            "the open match's own topic goes with the follow that brought it"
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
            delay_secs: 0,
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
    fn catalogue_tree_groups_by_sport_and_competition_and_keeps_each_season() {
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
                summary(
                    "football/champions-league/mil-liv-2005",
                    Some("UEFA Champions League 2004-05"),
                ),
                summary(
                    "football/champions-league/mun-bay-1999",
                    Some("UEFA Champions League 1998-99"),
                ),
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
            .map(|c| (c.name.as_str(), c.match_count()))
            .collect();
        assert_eq!(
            competitions,
            vec![
                ("La Liga", 1),
                ("Premier League", 2),
                ("UEFA Champions League", 2)
            ]
        );
        assert_eq!(
            tree[0].competitions[1].topic.as_str(),
            "football/premier-league"
        );
        let seasons: Vec<(&str, &str, usize)> = tree[0].competitions[2]
            .editions
            .iter()
            .map(|e| (e.name.as_str(), e.label.as_str(), e.matches.len()))
            .collect();
        assert_eq!(
            seasons,
            vec![
                ("UEFA Champions League 1998-99", "1998-99", 1),
                ("UEFA Champions League 2004-05", "2004-05", 1)
            ],
            "each season its own, whatever order the server listed them in"
        );
        assert_eq!(tree[0].competitions[1].editions[0].label, "");
    }

    #[test]
    fn the_viewer_repaints_only_when_something_on_screen_changes() {
        let mut session = connected(&["football"]);
        let ping_due_ms = 10 + crate::connection::PING_INTERVAL_MILLIS;
        session.receive_text(r#"{"type":"pong","id":1,"server_ms":5}"#, 20);
        assert_eq!(session.next_repaint_ms(1_000), Some(ping_due_ms));

        // A live football match: its clock reads in minutes, so the next repaint is when the
        // minute changes, not every second. The period started at ts 2000 with the clock at 0.
        session.receive_text(&subscribed(&["football"], vec![snapshot(2)]), 1_000);
        assert_eq!(session.next_repaint_ms(2_500), Some(ping_due_ms));
        assert_eq!(
            next_clock_change_ms(
                &session.scoreboard().get(&match_topic()).unwrap().snapshot,
                2_500
            ),
            Some(62_000)
        );

        // A goal: the badge stays, unchanged, until it expires; no frame in between.
        session.receive(ServerMessage::Event(history(3)[2].clone()), 3_000);
        let badge_end = 3_000 + crate::scoreboard::GOAL_BADGE_MILLIS;
        assert_eq!(
            session.next_repaint_ms(3_000),
            Some(ping_due_ms),
            "the ping comes first"
        );
        session.tick(ping_due_ms);
        session.receive_text(r#"{"type":"pong","id":2,"server_ms":5}"#, ping_due_ms);
        let later = ping_due_ms + 1;
        let next = session.next_repaint_ms(later).unwrap();
        assert!(next > later + 1_000, "no animation frames: {next}");
        assert!(next <= badge_end);

        // A basketball clock reads in seconds.
        let mut basketball = MatchSnapshot::new(MatchTopic::parse("basketball/nba/a-b").unwrap());
        basketball.status = scoreline_protocol::MatchStatus::Live;
        basketball.period = 1;
        basketball.clock = Some(scoreline_protocol::Clock {
            secs: 10,
            running: true,
            at_ms: 1_000,
        });
        assert_eq!(next_clock_change_ms(&basketball, 1_500), Some(2_000));
        assert_eq!(next_clock_change_ms(&basketball, 2_000), Some(3_000));
        // Clocks read at other instants still move on at whole seconds, all together.
        basketball.clock = Some(scoreline_protocol::Clock {
            secs: 10,
            running: true,
            at_ms: 1_250,
        });
        assert_eq!(next_clock_change_ms(&basketball, 1_300), Some(3_000));

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

    #[test]
    fn a_bad_server_address_is_refused_once_and_never_retried() {
        let mut session = connected(&["football"]);
        session.command(Command::SetUrl("127.0.0.1:8080/ws".into()), 100);
        assert!(session.take_actions().is_empty(), "no connect, no drop");
        assert_eq!(session.url(), DEFAULT_URL, "the working server is kept");
        assert!(session.is_connected());
        assert_eq!(
            session.url_problem(),
            Some(
                "Not a server address: it must start with ws:// (for example ws://127.0.0.1:8080/ws)"
            )
        );
        // A good address clears the problem.
        session.command(Command::SetUrl(DEFAULT_URL.into()), 101);
        assert_eq!(session.url_problem(), None);

        // A bad address saved from an earlier run: the viewer stays offline and says why,
        // however long it waits.
        let mut saved = Session::new(
            "http://scores.example:8080".into(),
            FollowList::default(),
            Link::new(Backoff::default(), Jitter::new(3)),
        );
        saved.start(0);
        assert_eq!(saved.take_actions(), vec![Action::Disconnect]);
        assert_eq!(saved.link_state(), &LinkState::Offline);
        assert!(
            saved
                .url_problem()
                .unwrap()
                .contains("ws://scores.example:8080/ws")
        );
        for now_ms in [1_000, 60_000, 3_600_000] {
            saved.tick(now_ms);
            assert!(saved.take_actions().is_empty());
        }
        assert_eq!(saved.next_repaint_ms(0), None);
        for bad in [
            "",
            "ws://",
            "ws://host:99999/ws",
            "wss://host/ws",
            "ws://a b/ws",
        ] {
            assert!(parse_server_url(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_server_url(" WS://Host:8080/ws "),
            Ok("ws://Host:8080/ws".to_owned())
        );
    }

    #[test]
    fn an_unreachable_server_is_called_unreachable() {
        let mut session = session(&["football"]);
        session.start(0);
        session.lost(
            5,
            "Connect: URL error: Unable to connect to ws://127.0.0.1:8080/ws",
        );
        let LinkState::Waiting { reason, .. } = session.link_state() else {
            panic!("{:?}", session.link_state())
        };
        assert_eq!(
            reason,
            "Server unreachable: nothing answers at 127.0.0.1:8080"
        );
        let url = "ws://scores.example:8080/ws";
        for (raw, expected) in [
            (
                "Connect: IO error: failed to lookup address information: Name or service not known",
                "Server unreachable: no host is called scores.example",
            ),
            (
                "connect timed out",
                "Server unreachable: scores.example:8080 did not answer within 10 s",
            ),
            (
                "Connect: HTTP error: 404 Not Found",
                "scores.example:8080 answered, but not as a Scoreline server (HTTP 404)",
            ),
            (
                "read: Connection reset without closing handshake",
                "Connection lost: reset by the network or the server",
            ),
        ] {
            assert_eq!(connection_problem(raw, url), expected);
            assert!(!connection_problem(raw, url).contains("URL error"));
        }
    }

    #[test]
    fn offline_finished_matches_are_not_marked_stale_but_live_ones_are() {
        let mut session = connected(&["football"]);
        let mut finished = MatchSnapshot::new(MatchTopic::parse("football/cup/a-b").unwrap());
        finished.seq = 9;
        finished.status = scoreline_protocol::MatchStatus::Finished;
        session.receive_text(
            &subscribed(&["football"], vec![snapshot(3), finished.clone()]),
            20,
        );
        session.command(Command::GoOffline, 30);
        let board = session.scoreboard();
        let live = board.get(&match_topic()).unwrap();
        let over = board.get(&finished.match_topic).unwrap();
        assert_eq!(session.freshness(live), Freshness::NotConfirmed);
        assert_eq!(session.freshness(over), Freshness::Fresh);

        // The server's own doubt is shown whatever the connection.
        let mut doubtful = snapshot(3);
        doubtful.stale = true;
        let mut session = connected(&["football"]);
        session.receive_text(&subscribed(&["football"], vec![doubtful]), 20);
        let tracked = session.scoreboard().get(&match_topic()).unwrap();
        assert_eq!(session.freshness(tracked), Freshness::ServerUnsure);
    }

    #[test]
    fn switching_servers_forgets_the_old_servers_matches() {
        let mut session = connected(&["football"]);
        session.receive_text(&subscribed(&["football"], vec![snapshot(3)]), 20);
        session.receive(
            ServerMessage::Catalogue {
                matches: vec![MatchSummary::from(&snapshot(3))],
                omitted: 0,
            },
            21,
        );
        session.command(Command::OpenMatch(match_topic()), 22);
        session.take_actions();
        session.command(Command::SetUrl("ws://other.example:9000/ws".into()), 30);
        assert_eq!(
            session.take_actions(),
            vec![Action::Connect("ws://other.example:9000/ws".into())]
        );
        assert!(session.scoreboard().is_empty());
        assert!(session.catalogue().matches.is_empty());
        assert!(session.open_match().is_none());
        assert!(session.server().is_none());
        assert_eq!(
            session.follows().to_strings(),
            vec!["football"],
            "follows stay"
        );
        session.opened(40);
        assert_eq!(
            sends(&session.take_actions())[0],
            r#"{"type":"subscribe","topics":["football"]}"#,
            "nothing of the old server's matches is resumed on the new one"
        );
    }

    #[test]
    fn a_first_run_follows_every_sport_the_server_lists() {
        let mut session = session(&[]);
        session.follow_everything_once_listed();
        session.start(0);
        session.opened(10);
        assert_eq!(
            sends(&session.take_actions()),
            vec![r#"{"type":"list"}"#, r#"{"type":"ping","id":1}"#],
            "nothing to subscribe before the catalogue"
        );
        let tennis = MatchSnapshot::new(MatchTopic::parse("tennis/open/a-b").unwrap());
        session.receive(
            ServerMessage::Catalogue {
                matches: vec![
                    MatchSummary::from(&snapshot(3)),
                    MatchSummary::from(&tennis),
                ],
                omitted: 0,
            },
            20,
        );
        assert_eq!(
            sends(&session.take_actions()),
            vec![r#"{"type":"subscribe","topics":["football","tennis"]}"#]
        );
        assert_eq!(session.follows().to_strings(), vec!["football", "tennis"]);
        // Only once: a later catalogue does not undo the fan's choices.
        session.command(Command::Unfollow(topic("tennis")), 30);
        session.take_actions();
        session.receive(
            ServerMessage::Catalogue {
                matches: vec![MatchSummary::from(&tennis)],
                omitted: 0,
            },
            40,
        );
        assert!(sends(&session.take_actions()).is_empty());
    }

    #[test]
    fn following_a_team_subscribes_its_matches_and_follows_them_to_new_ones() {
        let mut session = connected(&[]);
        let listed = |slug: &str, home: &str, away: &str| {
            let mut snapshot =
                MatchSnapshot::new(MatchTopic::parse(&format!("football/{slug}")).unwrap());
            snapshot.home = Team::new(home, "HOM");
            snapshot.away = Team::new(away, "AWA");
            MatchSummary::from(&snapshot)
        };
        session.receive(
            ServerMessage::Catalogue {
                matches: vec![
                    listed("premier-league/ars-che", "Arsenal", "Chelsea"),
                    listed("premier-league/liv-mci", "Liverpool", "Man City"),
                ],
                omitted: 0,
            },
            20,
        );
        let arsenal = TeamFollow::new(topic("football"), "Arsenal").unwrap();
        session.command(Command::FollowTeam(arsenal.clone()), 30);
        assert_eq!(
            sends(&session.take_actions()),
            vec![r#"{"type":"subscribe","topics":["football/premier-league/ars-che"]}"#]
        );
        // The next catalogue lists another Arsenal match: it is subscribed too.
        session.receive(
            ServerMessage::Catalogue {
                matches: vec![
                    listed("premier-league/ars-che", "Arsenal", "Chelsea"),
                    listed("fa-cup/ars-tot", "Arsenal", "Tottenham"),
                ],
                omitted: 0,
            },
            40,
        );
        assert_eq!(
            sends(&session.take_actions()),
            vec![r#"{"type":"subscribe","topics":["football/fa-cup/ars-tot"]}"#]
        );
        // Following all of football makes the team's own subscriptions redundant.
        session.command(Command::Follow(topic("football")), 50);
        assert_eq!(
            sends(&session.take_actions()),
            vec![
                r#"{"type":"subscribe","topics":["football"]}"#,
                r#"{"type":"unsubscribe","topics":["football/fa-cup/ars-tot","football/premier-league/ars-che"]}"#,
            ]
        );
        session.command(Command::Unfollow(topic("football")), 60);
        assert_eq!(
            sends(&session.take_actions()),
            vec![
                r#"{"type":"subscribe","topics":["football/fa-cup/ars-tot","football/premier-league/ars-che"]}"#,
                r#"{"type":"unsubscribe","topics":["football"]}"#,
            ]
        );
        session.command(Command::UnfollowTeam(arsenal), 70);
        assert_eq!(
            sends(&session.take_actions()),
            vec![
                r#"{"type":"unsubscribe","topics":["football/fa-cup/ars-tot","football/premier-league/ars-che"]}"#
            ]
        );
        assert!(session.follows().is_empty());
    }

    fn welcome(max_topics: usize, max_delay_secs: u32) -> ServerMessage {
        ServerMessage::Welcome {
            protocol: PROTOCOL_VERSION,
            server: "scoreline/test".into(),
            heartbeat_secs: 15,
            idle_timeout_secs: 45,
            limits: Limits {
                max_topics,
                max_frame_bytes: 16_384,
                max_requests_per_sec: 20,
                max_snapshots: 100,
                max_delay_secs,
            },
        }
    }

    fn watching(fans: u64) -> ServerMessage {
        ServerMessage::Watching {
            match_topic: match_topic(),
            fans,
        }
    }

    /// A `subscribed` reply sent at a spoiler delay.
    fn delayed_reply(topics: &[&str], snapshots: Vec<MatchSnapshot>, delay_secs: u32) -> String {
        ServerMessage::Subscribed {
            topics: topics.iter().map(|t| topic(t)).collect(),
            snapshots,
            omitted: 0,
            resumed: Vec::new(),
            delay_secs,
        }
        .to_json()
    }

    /// Following football on a server allowing 300 s of delay, holding the match at `seq`.
    fn holding(seq: u64) -> Session {
        let mut session = connected(&["football"]);
        session.receive(welcome(64, 300), 11);
        session.receive_text(&subscribed(&["football"], vec![snapshot(seq)]), 20);
        session.take_actions();
        session
    }

    #[test]
    fn opening_a_match_subscribes_its_own_topic_so_the_fan_is_counted_and_closing_drops_it() {
        let mut session = holding(3);
        session.command(Command::OpenMatch(match_topic()), 30);
        assert_eq!(
            sends(&session.take_actions()),
            vec![format!(r#"{{"type":"subscribe","topics":["{MATCH}"]}}"#)],
            "the match's own topic, beside the football follow that already brings its events"
        );
        // The reply repeats the snapshot the board holds: nothing changes, nothing is repaired.
        session.receive_text(&subscribed(&[MATCH], vec![snapshot(3)]), 31);
        assert!(session.take_actions().is_empty());
        assert_eq!(
            session
                .scoreboard()
                .get(&match_topic())
                .unwrap()
                .snapshot
                .seq,
            3
        );

        session.command(Command::CloseMatch, 40);
        assert_eq!(
            sends(&session.take_actions()),
            vec![format!(r#"{{"type":"unsubscribe","topics":["{MATCH}"]}}"#)]
        );

        // A match followed on its own is counted already: opening it sends nothing.
        let mut exact = connected(&[MATCH]);
        exact.receive_text(&subscribed(&[MATCH], vec![snapshot(3)]), 20);
        exact.take_actions();
        exact.command(Command::OpenMatch(match_topic()), 30);
        exact.command(Command::CloseMatch, 31);
        assert!(exact.take_actions().is_empty());

        // No room under the server's max_topics: the follows come first, the count is left out.
        let mut full = connected(&["football"]);
        full.receive(welcome(1, 300), 11);
        full.receive_text(&subscribed(&["football"], vec![snapshot(3)]), 20);
        full.take_actions();
        full.command(Command::OpenMatch(match_topic()), 30);
        assert!(full.take_actions().is_empty());
        assert!(full.open_match().is_some());
    }

    #[test]
    fn the_open_match_is_resubscribed_on_reconnect_and_repaired_without_losing_its_topic() {
        let mut session = holding(3);
        session.command(Command::OpenMatch(match_topic()), 30);
        session.take_actions();
        reopen(&mut session, 40, "closed");
        let subscribe = sends(&session.take_actions()).remove(0);
        assert!(
            subscribe.starts_with(&format!(
                r#"{{"type":"subscribe","topics":["football","{MATCH}"],"resume":"#
            )),
            "{subscribe}"
        );
        session.receive_text(&subscribed(&["football", MATCH], vec![snapshot(3)]), 43);
        session.take_actions();
        // A gap: the open match's own topic is subscribed, so it is renewed, not dropped.
        session.receive(ServerMessage::Event(history(5)[4].clone()), 50);
        assert_eq!(
            sends(&session.take_actions()),
            vec![
                format!(r#"{{"type":"unsubscribe","topics":["{MATCH}"]}}"#),
                format!(r#"{{"type":"subscribe","topics":["{MATCH}"]}}"#),
            ]
        );
        session.receive_text(&subscribed(&[MATCH], vec![snapshot(5)]), 60);
        assert!(
            session.take_actions().is_empty(),
            "the open match keeps its topic"
        );
    }

    #[test]
    fn watching_counts_are_kept_while_the_server_keeps_them_current_and_never_shown_stale() {
        let mut session = holding(3);
        // Not subscribed to the match's own topic: a count would not be kept current.
        session.receive(watching(7), 25);
        assert_eq!(session.watching(&match_topic()), None);

        session.command(Command::OpenMatch(match_topic()), 30);
        session.receive(watching(1_204), 31);
        assert_eq!(session.watching(&match_topic()), Some(1_204));
        session.receive(watching(1_205), 36);
        assert_eq!(session.watching(&match_topic()), Some(1_205), "the latest");

        // Closing the match ends the count's updates.
        session.command(Command::CloseMatch, 40);
        assert_eq!(session.watching(&match_topic()), None);

        // So does losing the connection.
        session.command(Command::OpenMatch(match_topic()), 50);
        session.receive(watching(9), 51);
        session.lost(52, "closed");
        assert_eq!(session.watching(&match_topic()), None);
        session.command(Command::ConnectNow, 53);
        session.opened(54);
        session.receive_text(&subscribed(&["football", MATCH], vec![snapshot(3)]), 55);
        assert_eq!(
            session.watching(&match_topic()),
            None,
            "until the server says"
        );
        session.receive(watching(10), 56);
        assert_eq!(session.watching(&match_topic()), Some(10));

        // And the match going away: a complete reply without it drops it, its count and its
        // detail, whose own subscription is dropped too.
        session.take_actions();
        session.receive_text(&subscribed(&["football"], vec![]), 60);
        assert!(session.scoreboard().get(&match_topic()).is_none());
        assert_eq!(session.watching(&match_topic()), None);
        assert!(session.open_match().is_none());
        assert_eq!(
            sends(&session.take_actions()),
            vec![format!(r#"{{"type":"unsubscribe","topics":["{MATCH}"]}}"#)]
        );
    }

    #[test]
    fn a_chosen_delay_is_sent_once_settled_in_one_subscribe_of_every_topic() {
        let mut session = holding(3);
        session.command(Command::OpenMatch(match_topic()), 30);
        session.take_actions();
        // The fan drags the control: nothing is sent until it rests.
        session.command(Command::SetDelay(10), 100);
        session.command(Command::SetDelay(40), 200);
        assert!(
            session
                .next_deadline_ms()
                .is_some_and(|due| due <= 200 + DELAY_SETTLE_MILLIS),
            "the UI wakes to send it"
        );
        session.tick(200 + DELAY_SETTLE_MILLIS - 1);
        assert!(sends(&session.take_actions()).is_empty());
        assert_eq!(
            session.delay_status(),
            DelayStatus::Changing {
                from_secs: 0,
                to_secs: 40
            }
        );
        session.tick(200 + DELAY_SETTLE_MILLIS);
        assert_eq!(
            sends(&session.take_actions()),
            vec![format!(
                r#"{{"type":"subscribe","topics":["football","{MATCH}"],"delay_secs":40}}"#
            )]
        );
        session.tick(2_000);
        assert!(sends(&session.take_actions()).is_empty(), "sent once");

        // Above the server's limit: held at the limit.
        session.command(Command::SetDelay(1_000), 3_000);
        assert_eq!(session.delay_secs(), 300);
        // Back where it was before it was sent: nothing to ask.
        session.command(Command::SetDelay(40), 3_100);
        session.tick(3_100 + DELAY_SETTLE_MILLIS);
        assert!(sends(&session.take_actions()).is_empty());

        // Live again is asked for explicitly: a connection keeps its delay until told.
        session.command(Command::SetDelay(0), 4_000);
        session.tick(4_000 + DELAY_SETTLE_MILLIS);
        assert_eq!(
            sends(&session.take_actions()),
            vec![format!(
                r#"{{"type":"subscribe","topics":["football","{MATCH}"],"delay_secs":0}}"#
            )]
        );
    }

    #[test]
    fn the_reply_to_a_delay_change_replaces_newer_matches_without_a_repair_or_a_badge() {
        let mut session = holding(5);
        session.command(Command::SetDelay(40), 100);
        session.tick(100 + DELAY_SETTLE_MILLIS);
        session.take_actions();
        // The server's state 40 s ago: two goals fewer, seq 3 against the 5 shown.
        session.receive_text(&delayed_reply(&["football"], vec![snapshot(3)], 40), 1_000);
        let tracked = session.scoreboard().get(&match_topic()).unwrap();
        assert_eq!(tracked.snapshot.seq, 3);
        assert_eq!(
            (tracked.snapshot.score.home, tracked.snapshot.score.away),
            (1, 0)
        );
        assert_eq!(tracked.delay_secs, 40);
        assert_eq!(
            tracked.highlight(1_000),
            None,
            "no NO GOAL for going back in time"
        );
        assert_eq!(session.freshness(tracked), Freshness::Fresh);
        assert!(sends(&session.take_actions()).is_empty(), "no repair");
        assert_eq!(session.delay_status(), DelayStatus::Delayed { secs: 40 });
        assert_eq!(session.catch_up().snapshots, 0, "not a catch-up");

        // The delayed events follow on from it: the first is no gap, and the second goal is
        // announced when the fan's stream shows it.
        let events = history(5);
        session.receive(ServerMessage::Event(events[3].clone()), 2_000);
        session.receive(ServerMessage::Event(events[4].clone()), 3_000);
        let tracked = session.scoreboard().get(&match_topic()).unwrap();
        assert_eq!(tracked.snapshot.seq, 5);
        assert!(!tracked.repairing && session.is_fresh(tracked));
        assert!(tracked.highlight(3_000).is_some());
        assert!(sends(&session.take_actions()).is_empty());

        // A later snapshot of the same delay that is older (a lagging instance) is still
        // ignored, as ever.
        session.receive_text(&delayed_reply(&[MATCH], vec![snapshot(4)], 40), 4_000);
        assert_eq!(
            session
                .scoreboard()
                .get(&match_topic())
                .unwrap()
                .snapshot
                .seq,
            5
        );

        // Going live again moves forward, and that is announced like any change.
        session.command(Command::SetDelay(0), 5_000);
        session.tick(5_000 + DELAY_SETTLE_MILLIS);
        session.take_actions();
        session.receive_text(&subscribed(&["football"], vec![snapshot(7)]), 6_000);
        let tracked = session.scoreboard().get(&match_topic()).unwrap();
        assert_eq!((tracked.snapshot.seq, tracked.delay_secs), (7, 0));
        assert!(tracked.highlight(6_000).is_some());
        assert_eq!(session.delay_status(), DelayStatus::Live);
    }

    #[test]
    fn a_capped_reply_to_a_delay_change_repairs_the_matches_it_left_out() {
        let mut session = holding(5);
        session.command(Command::SetDelay(40), 100);
        session.tick(100 + DELAY_SETTLE_MILLIS);
        session.take_actions();
        let capped = ServerMessage::Subscribed {
            topics: vec![topic("football")],
            snapshots: Vec::new(),
            omitted: 3,
            resumed: Vec::new(),
            delay_secs: 40,
        };
        session.receive(capped, 1_000);
        // The match still shows the live moment: a spoiler, so it is marked and asked for.
        let tracked = session.scoreboard().get(&match_topic()).unwrap();
        assert_eq!(session.freshness(tracked), Freshness::Updating);
        assert_eq!(
            sends(&session.take_actions()),
            vec![format!(r#"{{"type":"subscribe","topics":["{MATCH}"]}}"#)]
        );
        session.receive_text(&delayed_reply(&[MATCH], vec![snapshot(3)], 40), 1_100);
        let tracked = session.scoreboard().get(&match_topic()).unwrap();
        assert_eq!((tracked.snapshot.seq, tracked.delay_secs), (3, 40));
        assert_eq!(session.freshness(tracked), Freshness::Fresh);
    }

    #[test]
    fn every_connection_asks_for_the_delay_once_the_welcome_gives_its_limit() {
        let mut session = holding(3);
        session.command(Command::SetDelay(40), 100);
        session.tick(100 + DELAY_SETTLE_MILLIS);
        session.take_actions();
        session.receive_text(&delayed_reply(&["football"], vec![snapshot(3)], 40), 1_000);

        reopen(&mut session, 2_000, "closed");
        // The subscribe waits for the welcome: a delay above its limit would be refused whole.
        assert!(
            !sends(&session.take_actions())
                .iter()
                .any(|sent| sent.contains("subscribe"))
        );
        assert!(matches!(
            session.delay_status(),
            DelayStatus::Delayed { secs: 40 } | DelayStatus::Changing { .. }
        ));
        session.receive(welcome(64, 300), 2_010);
        assert_eq!(
            sends(&session.take_actions()),
            vec![format!(
                r#"{{"type":"subscribe","topics":["football"],"resume":{{"{MATCH}":{{"epoch":0,"seq":3}}}},"delay_secs":40}}"#
            )],
            "resumed where it stopped, at the same delay"
        );

        // A server with a lower limit gets its limit; its reply holds the match there.
        reopen(&mut session, 3_000, "closed");
        session.take_actions();
        session.receive(welcome(64, 30), 3_010);
        assert_eq!(
            sends(&session.take_actions()),
            vec![r#"{"type":"subscribe","topics":["football"],"delay_secs":30}"#],
            "the match held at 40 s gets a snapshot at 30 s, not a resume"
        );
        assert_eq!(
            session.delay_secs(),
            40,
            "the fan's choice is kept for other servers"
        );

        // A server without a spoiler delay: a live subscribe, and the board says so.
        reopen(&mut session, 4_000, "closed");
        session.take_actions();
        session.receive(welcome(64, 0), 4_010);
        assert_eq!(
            sends(&session.take_actions()),
            vec![r#"{"type":"subscribe","topics":["football"]}"#]
        );
        session.receive_text(&subscribed(&["football"], vec![snapshot(4)]), 4_020);
        assert_eq!(
            session.delay_status(),
            DelayStatus::NotApplied {
                asked_secs: 40,
                shown_secs: 0
            },
            "the fan who chose a delay is told the board is live"
        );
    }

    #[test]
    fn a_delay_chosen_offline_is_asked_for_on_connecting_without_stale_resume_points() {
        let mut session = holding(3);
        session.lost(50, "closed");
        session.command(Command::SetDelay(60), 60);
        session.tick(60 + DELAY_SETTLE_MILLIS);
        assert!(sends(&session.take_actions()).is_empty(), "offline");
        session.command(Command::ConnectNow, 1_000);
        session.opened(1_001);
        session.take_actions();
        session.receive(welcome(64, 300), 1_002);
        assert_eq!(
            sends(&session.take_actions()),
            vec![r#"{"type":"subscribe","topics":["football"],"delay_secs":60}"#],
            "the match held live cannot resume at 60 s"
        );
        session.receive_text(&delayed_reply(&["football"], vec![snapshot(2)], 60), 1_100);
        let tracked = session.scoreboard().get(&match_topic()).unwrap();
        assert_eq!((tracked.snapshot.seq, tracked.delay_secs), (2, 60));
        assert!(session.is_fresh(tracked));
    }

    #[test]
    fn a_server_that_ignores_the_delay_is_shown_as_live() {
        let mut session = holding(3);
        session.command(Command::SetDelay(40), 100);
        session.tick(100 + DELAY_SETTLE_MILLIS);
        session.take_actions();
        // A server from before the spoiler delay answers without one.
        session.receive_text(&subscribed(&["football"], vec![snapshot(3)]), 1_000);
        assert_eq!(
            session.delay_status(),
            DelayStatus::NotApplied {
                asked_secs: 40,
                shown_secs: 0
            }
        );
        assert!(sends(&session.take_actions()).is_empty());
    }

    #[test]
    fn a_delayed_matchs_clock_reads_as_of_its_delay() {
        let mut session = holding(3);
        session.command(Command::SetDelay(40), 100);
        session.tick(100 + DELAY_SETTLE_MILLIS);
        session.take_actions();
        let mut running = snapshot(3);
        running.status = scoreline_protocol::MatchStatus::Live;
        running.clock = Some(scoreline_protocol::Clock {
            secs: 600,
            running: true,
            at_ms: 1_000_000,
        });
        session.receive_text(&delayed_reply(&["football"], vec![running], 40), 1_050_000);
        // Offline, so that no ping or catalogue deadline comes first.
        session.command(Command::GoOffline, 1_050_000);
        let tracked = session.scoreboard().get(&match_topic()).unwrap();
        // 50 s after the reading the stadium is at 10:50; the fan's stream at 10:10.
        assert_eq!(tracked.shown_at_ms(1_050_000), 1_010_000);
        // The next minute of the delayed clock: 11:00 at the stadium's 1_060_000, 40 s later.
        assert_eq!(session.next_repaint_ms(1_050_000), Some(1_100_000));
    }
}

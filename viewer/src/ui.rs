//! Drawing. Every `*_ui` function reads the [`Session`] and returns the fan's [`Command`]s; the
//! caller applies them after the frame. Nothing here changes the model, so the same session can
//! be drawn by the app and by UI tests, and every change goes through one place.
//!
//! The only state drawn code owns is [`ViewState`]: what the fan is typing and how the window is
//! arranged, which belong to the widgets rather than to the model.
//!
//! The layout follows the width of the window ([`Mode`]): a phone-sized column shows one thing
//! at a time (the scoreboard, the menu, or a match) with buttons to move between them; a medium
//! window adds the match beside the scoreboard; a wide one keeps the menu open on the left and
//! shows the open match (or, when none is open, the first live one) on the right. Rows are laid
//! out in fixed columns, so statuses, names and scores line up in every row and no label can
//! push another aside.

use eframe::egui;
use egui::{
    Align, Color32, CornerRadius, FontId, Frame, Label, Layout, Margin, Rect, Response, RichText,
    Sense, Stroke, TextStyle, Ui, UiBuilder, Vec2, WidgetInfo, pos2, vec2,
};
use egui_plot::{AxisHints, Legend, Line, Plot};
use scoreline_protocol::{
    MatchSnapshot, MatchStatus, MatchSummary, MatchTopic, Side, Sport, Topic,
};

use crate::connection::LinkState;
use crate::follow::TeamFollow;
use crate::present;
use crate::scoreboard::{BoardFilter, ChangeKind, Group, TrackedMatch, slug_to_title};
use crate::session::{Command, DelayStatus, Freshness, Session, catalogue_tree};

/// Text the fan is editing and how the window is arranged; owned by the widgets, not the model.
#[derive(Debug, Clone, Default)]
pub struct ViewState {
    /// The scoreboard filter (the search box in the top bar).
    pub filter: String,
    /// All matches, or only those being played.
    pub board: BoardFilter,
    /// The server address being edited; applied with "Connect".
    pub url_draft: String,
    /// A topic typed by hand to follow (the advanced way).
    pub topic_draft: String,
    /// What the fan typed to find a team or competition to follow.
    pub team_query: String,
    /// Whether the menu (follows, search, catalogue, server) is shown; `None` until the fan
    /// chooses, which shows it on wide windows only.
    pub menu_open: Option<bool>,
}

impl ViewState {
    /// A view state whose server field shows the session's server.
    pub fn new(session: &Session) -> ViewState {
        ViewState {
            url_draft: session.url().to_owned(),
            ..ViewState::default()
        }
    }
}

/// How the window is arranged, by its width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Below [`MEDIUM_MIN_WIDTH`]: one thing at a time.
    Narrow,
    /// The scoreboard with the open match beside it; the menu when no match is open.
    Medium,
    /// From [`WIDE_MIN_WIDTH`]: menu, scoreboard and a match side by side.
    Wide,
}

/// The narrowest window that shows two panes side by side.
pub const MEDIUM_MIN_WIDTH: f32 = 720.0;
/// The narrowest window that shows the menu, the scoreboard and a match together.
pub const WIDE_MIN_WIDTH: f32 = 1180.0;
/// Width of the menu when it sits beside the scoreboard.
pub const MENU_WIDTH: f32 = 280.0;
/// Height of one scoreboard row: two lines, one per side, as on live-score apps.
pub const ROW_HEIGHT: f32 = 46.0;
/// A scoreboard this wide lays its competitions out in two columns.
pub const TWO_COLUMNS_MIN_WIDTH: f32 = 1000.0;

impl Mode {
    /// The arrangement for a window `width` logical pixels wide.
    pub fn for_width(width: f32) -> Mode {
        if width < MEDIUM_MIN_WIDTH {
            Mode::Narrow
        } else if width < WIDE_MIN_WIDTH {
            Mode::Medium
        } else {
            Mode::Wide
        }
    }
}

const LIVE_COLOUR: Color32 = Color32::from_rgb(0x3d, 0xd6, 0x7c);
const WARN_COLOUR: Color32 = Color32::from_rgb(0xf5, 0xa5, 0x24);
const BAD_COLOUR: Color32 = Color32::from_rgb(0xef, 0x53, 0x50);
const GOAL_COLOUR: Color32 = Color32::from_rgb(0x1f, 0xb8, 0x5c);
const QUIET_COLOUR: Color32 = Color32::from_rgb(0xff, 0xc4, 0x3d);
const HOME_COLOUR: Color32 = Color32::from_rgb(0x4d, 0xa3, 0xff);
const AWAY_COLOUR: Color32 = Color32::from_rgb(0xff, 0x8a, 0x3d);
const CARD_FILL: Color32 = Color32::from_rgb(0x1e, 0x23, 0x2b);
const PANEL_FILL: Color32 = Color32::from_rgb(0x13, 0x16, 0x1b);
const DIVIDER: Color32 = Color32::from_rgb(0x2b, 0x31, 0x3a);
const SERVE_COLOUR: Color32 = Color32::from_rgb(0xd4, 0xf0, 0x3c);
/// The colour of "Delayed": calm (nothing is wrong) but unlike the live green, so a fan never
/// takes a delayed board for a live one.
const DELAY_COLOUR: Color32 = Color32::from_rgb(0x9d, 0xb4, 0xff);

/// The app's look: a dark theme with card-coloured panels and text sizes made for reading
/// scores at a glance. Applied once at start.
pub fn set_style(ctx: &egui::Context) {
    ctx.set_visuals(egui::Visuals::dark());
    ctx.global_style_mut(|style| {
        style.visuals.panel_fill = PANEL_FILL;
        style.visuals.window_fill = CARD_FILL;
        style.visuals.faint_bg_color = CARD_FILL;
        style.visuals.extreme_bg_color = Color32::from_rgb(0x0d, 0x10, 0x14);
        style.visuals.selection.bg_fill = Color32::from_rgb(0x23, 0x4a, 0x7a);
        style.visuals.widgets.noninteractive.bg_stroke = Stroke::new(1.0, DIVIDER);
        style
            .text_styles
            .insert(TextStyle::Body, FontId::proportional(14.0));
        style
            .text_styles
            .insert(TextStyle::Button, FontId::proportional(14.0));
        style
            .text_styles
            .insert(TextStyle::Small, FontId::proportional(11.5));
        style
            .text_styles
            .insert(TextStyle::Heading, FontId::proportional(19.0));
        style.spacing.item_spacing = vec2(8.0, 5.0);
        style.spacing.button_padding = vec2(8.0, 3.0);
    });
}

/// The colour the window is cleared to before each frame: the panels' own colour, so panels
/// need not paint a fill of their own.
pub const BACKGROUND: Color32 = PANEL_FILL;

/// A panel's frame: its margins and no fill. The window is already cleared to [`BACKGROUND`];
/// with software rendering every layer of fill over the whole window costs CPU on every frame.
fn panel_frame(margin: Margin) -> Frame {
    Frame::new().inner_margin(margin)
}

/// The whole window: top bar, status bar, menu, scoreboard and a match.
pub fn viewer_ui(
    ui: &mut Ui,
    session: &Session,
    view: &mut ViewState,
    now_ms: u64,
) -> Vec<Command> {
    let mut commands = Vec::new();
    let mode = Mode::for_width(ui.available_width());
    let menu_open = view.menu_open.unwrap_or(mode == Mode::Wide);
    egui::Panel::top("top-bar")
        .frame(panel_frame(Margin::symmetric(10, 7)))
        .show(ui, |ui| {
            commands.extend(top_bar_ui(ui, session, view, mode, menu_open))
        });
    egui::Panel::bottom("status")
        .frame(panel_frame(Margin::symmetric(10, 4)))
        .show(ui, |ui| commands.extend(status_bar_ui(ui, session, now_ms)));
    if ui.input(|input| input.key_pressed(egui::Key::Escape)) {
        if session.open_match().is_some() {
            commands.push(Command::CloseMatch);
        } else if menu_open && mode != Mode::Wide {
            view.menu_open = Some(false);
        }
    }
    let open = session.open_match();
    match mode {
        Mode::Narrow => {
            egui::CentralPanel::default()
                .frame(panel_frame(Margin::same(8)))
                .show(ui, |ui| {
                    if menu_open {
                        if ui.button("‹ Scores").clicked() {
                            view.menu_open = Some(false);
                        }
                        commands.extend(menu_ui(ui, session, view));
                    } else if let Some(tracked) = open {
                        commands.extend(detail_ui(ui, session, tracked, now_ms, DetailFrame::Page));
                    } else {
                        commands.extend(scoreboard_ui(ui, session, view, now_ms));
                    }
                });
        }
        Mode::Medium | Mode::Wide => {
            // In a medium window the menu and a match take turns beside the scoreboard, so the
            // scoreboard never gets squeezed below a readable width.
            let show_menu = menu_open && (mode == Mode::Wide || open.is_none());
            if show_menu {
                egui::Panel::left("menu")
                    .resizable(false)
                    .exact_size(MENU_WIDTH)
                    .frame(panel_frame(Margin::same(10)))
                    .show(ui, |ui| commands.extend(menu_ui(ui, session, view)));
            }
            let featured = if mode == Mode::Wide && open.is_none() {
                featured_match(session, view)
            } else {
                None
            };
            if let Some((tracked, frame)) = open
                .map(|tracked| (tracked, DetailFrame::Panel))
                .or(featured.map(|tracked| (tracked, DetailFrame::Featured)))
            {
                let width = ui.available_width();
                let size = if mode == Mode::Wide {
                    (width * 0.36).clamp(420.0, 580.0)
                } else {
                    (width * 0.48).clamp(340.0, 480.0)
                };
                egui::Panel::right("detail")
                    .resizable(false)
                    .exact_size(size)
                    .frame(panel_frame(Margin::same(12)))
                    .show(ui, |ui| {
                        commands.extend(detail_ui(ui, session, tracked, now_ms, frame));
                    });
            }
            egui::CentralPanel::default()
                .frame(panel_frame(Margin::same(12)))
                .show(ui, |ui| {
                    commands.extend(scoreboard_ui(ui, session, view, now_ms))
                });
        }
    }
    commands
}

/// The match shown beside the scoreboard of a wide window when none is open: the first live
/// one in board order (so it does not jump around), else none.
fn featured_match<'a>(session: &'a Session, view: &ViewState) -> Option<&'a TrackedMatch> {
    session
        .scoreboard()
        .groups(&view.filter, BoardFilter::Live)
        .into_iter()
        .flat_map(|group| group.matches)
        .next()
}

/// Menu button, name, All/Live switch, search box and a connection light.
fn top_bar_ui(
    ui: &mut Ui,
    session: &Session,
    view: &mut ViewState,
    mode: Mode,
    menu_open: bool,
) -> Vec<Command> {
    let commands = Vec::new();
    ui.horizontal(|ui| {
        let menu = ui
            .add(egui::Button::new(RichText::new("☰").size(17.0)).selected(menu_open))
            .on_hover_text(if menu_open {
                "Hide the menu"
            } else {
                "Following, search and settings"
            });
        menu.widget_info(|| WidgetInfo::selected(egui::Role::Button, true, menu_open, "Menu"));
        if menu.clicked() {
            view.menu_open = Some(!menu_open);
        }
        if ui.available_width() > 560.0 {
            ui.label(RichText::new("Scoreline").size(19.0).strong());
        }
        let live = session.scoreboard().live_count();
        ui.add_space(4.0);
        let all = ui.selectable_label(view.board == BoardFilter::All, "All");
        if all.clicked() {
            view.board = BoardFilter::All;
        }
        let live_text = if live > 0 {
            RichText::new(format!("Live {live}")).color(LIVE_COLOUR)
        } else {
            RichText::new("Live")
        };
        if ui
            .selectable_label(view.board == BoardFilter::Live, live_text)
            .on_hover_text("Only matches being played now")
            .clicked()
        {
            view.board = BoardFilter::Live;
        }
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            connection_light_ui(ui, session);
            if !view.filter.is_empty() {
                let clear = ui.small_button("×").on_hover_text("Clear the search");
                clear.widget_info(|| WidgetInfo::labeled(egui::Role::Button, true, "Clear filter"));
                if clear.clicked() {
                    view.filter.clear();
                }
            }
            let width = ui
                .available_width()
                .min(if mode == Mode::Narrow { 400.0 } else { 340.0 });
            let search = ui.add(
                egui::TextEdit::singleline(&mut view.filter)
                    .desired_width(width)
                    .hint_text("Search teams, competitions…"),
            );
            search.widget_info(|| WidgetInfo::labeled(egui::Role::TextInput, true, "Filter"));
        });
    });
    commands
}

/// A small light for the connection, at the right of the top bar; the status bar has the words.
fn connection_light_ui(ui: &mut Ui, session: &Session) {
    let connected = match session.delay_status() {
        DelayStatus::Delayed { secs } => {
            format!("Connected: scores arrive {secs} s after they happen, as chosen")
        }
        _ => "Connected: scores arrive live".to_owned(),
    };
    let (colour, filled, hint) = match session.link_state() {
        LinkState::Connected { .. } => (LIVE_COLOUR, true, connected.as_str()),
        LinkState::Connecting { .. } => (WARN_COLOUR, false, "Connecting…"),
        LinkState::Waiting { .. } => (BAD_COLOUR, false, "Not connected; retrying"),
        LinkState::Offline => (BAD_COLOUR, false, "Offline"),
    };
    status_dot_ui(ui, colour, filled).on_hover_text(hint);
}

/// Connection status in words, what is on the board, and the last problem.
pub fn status_bar_ui(ui: &mut Ui, session: &Session, now_ms: u64) -> Vec<Command> {
    let mut commands = Vec::new();
    ui.horizontal(|ui| {
        match session.link_state() {
            LinkState::Connected { .. } => {
                status_dot_ui(ui, LIVE_COLOUR, true);
                let mut hint = format!("Connected to {}", session.url());
                if let Some(rtt_millis) = session.rtt_millis() {
                    hint.push_str(&format!("\nRound trip {rtt_millis} ms"));
                }
                if let Some(server) = session.server() {
                    hint.push_str(&format!("\nServer {}", server.server));
                }
                if let Some(text) = present::catch_up_label(&session.catch_up()) {
                    hint.push('\n');
                    hint.push_str(&text);
                }
                ui.colored_label(LIVE_COLOUR, "Connected")
                    .on_hover_text(hint);
            }
            LinkState::Connecting { .. } => {
                status_dot_ui(ui, WARN_COLOUR, false);
                ui.colored_label(WARN_COLOUR, "Connecting…");
            }
            LinkState::Waiting { reason, .. } => {
                let secs = session.retry_in_millis(now_ms).unwrap_or(0).div_ceil(1_000);
                status_dot_ui(ui, BAD_COLOUR, false);
                ui.colored_label(BAD_COLOUR, format!("Reconnecting in {secs} s"));
                if ui.small_button("Retry now").clicked() {
                    commands.push(Command::ConnectNow);
                }
                ui.add(Label::new(RichText::new(reason.as_str()).weak()).truncate());
            }
            LinkState::Offline => {
                status_dot_ui(ui, BAD_COLOUR, false);
                ui.colored_label(BAD_COLOUR, "Offline");
                if session.url_problem().is_none() && ui.small_button("Connect").clicked() {
                    commands.push(Command::ConnectNow);
                }
                if let Some(problem) = session.url_problem() {
                    ui.add(Label::new(RichText::new(problem).color(WARN_COLOUR)).truncate());
                }
            }
        }
        delay_status_ui(ui, session);
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            let board = session.scoreboard();
            let count = board.len();
            ui.label(if count == 1 {
                "1 match".to_owned()
            } else {
                format!("{count} matches")
            });
            let doubtful = board
                .matches()
                .filter(|tracked| session.freshness(tracked) != Freshness::Fresh)
                .count();
            if doubtful > 0 {
                ui.colored_label(WARN_COLOUR, format!("{doubtful} not up to date"))
                    .on_hover_text(
                        "These scores may be behind until the connection confirms them.",
                    );
            }
            if let Some(problem) = session.last_problem() {
                ui.add(Label::new(RichText::new(problem).weak()).truncate())
                    .on_hover_text(format!(
                        "{problem}\n{} frames ignored since start",
                        session.ignored_frames()
                    ));
            }
        });
    });
    commands
}

/// How far behind the stadium the board is, beside the connection status: a delayed board
/// must never pass for a live one.
fn delay_status_ui(ui: &mut Ui, session: &Session) {
    let status = session.delay_status();
    let Some(text) = present::delay_label(status) else {
        return;
    };
    let (colour, hint) = match status {
        DelayStatus::NotApplied { .. } => (
            WARN_COLOUR,
            "This server did not apply the delay chosen under \"Sync with my stream\" in the \
             menu: scores may reach you before your stream shows them."
                .to_owned(),
        ),
        _ => (
            DELAY_COLOUR,
            format!(
                "Scores reach you {} s after they happen, to stay behind your stream. Change it \
                 under \"Sync with my stream\" in the menu.",
                session.delay_secs()
            ),
        ),
    };
    ui.separator();
    ui.colored_label(colour, text).on_hover_text(hint);
}

/// A small round light: filled when all is well, a ring otherwise. Painted rather than typed so it
/// needs no font that has the glyph.
fn status_dot_ui(ui: &mut Ui, colour: Color32, filled: bool) -> Response {
    let (rect, response) = ui.allocate_exact_size(Vec2::splat(12.0), Sense::hover());
    if filled {
        ui.painter().circle_filled(rect.center(), 5.0, colour);
    } else {
        ui.painter()
            .circle_stroke(rect.center(), 4.5, Stroke::new(1.5, colour));
    }
    response
}

/// The menu: what is followed, finding a team or competition, the server's catalogue, and the
/// server address.
pub fn menu_ui(ui: &mut Ui, session: &Session, view: &mut ViewState) -> Vec<Command> {
    let mut commands = Vec::new();
    egui::ScrollArea::vertical()
        .id_salt("menu-scroll")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            following_ui(ui, session, &mut commands);
            ui.add_space(8.0);
            find_ui(ui, session, view, &mut commands);
            ui.add_space(8.0);
            browse_ui(ui, session, &mut commands);
            ui.add_space(8.0);
            ui.separator();
            delay_ui(ui, session, &mut commands);
            ui.add_space(8.0);
            server_ui(ui, session, view, &mut commands);
            ui.add_space(4.0);
            follow_topic_ui(ui, view, &mut commands);
        });
    commands
}

/// A section heading of the menu.
fn section_heading_ui(ui: &mut Ui, text: &str) {
    ui.label(RichText::new(text).size(15.5).strong());
}

/// The follows, each with a way to stop.
fn following_ui(ui: &mut Ui, session: &Session, commands: &mut Vec<Command>) {
    section_heading_ui(ui, "Following");
    let follows = session.follows();
    if follows.is_empty() {
        ui.weak("Nothing yet. Find a team below, tick a competition, or:");
        if ui
            .add_enabled(session.is_connected(), egui::Button::new("Show everything"))
            .on_hover_text("Follow every sport the server has")
            .clicked()
        {
            commands.push(Command::FollowEverything);
        }
        return;
    }
    for team in follows.teams() {
        ui.horizontal(|ui| {
            if ui
                .small_button("×")
                .on_hover_text(format!("Stop following {}", team.name))
                .clicked()
            {
                commands.push(Command::UnfollowTeam(team.clone()));
            }
            ui.label(&team.name);
            ui.weak(present::sport_name(team.sport.as_str()));
        });
    }
    for topic in follows.topics() {
        ui.horizontal(|ui| {
            let title = topic_title(session, topic);
            if ui
                .small_button("×")
                .on_hover_text(format!("Stop following {title}"))
                .clicked()
            {
                commands.push(Command::Unfollow(topic.clone()));
            }
            ui.add(Label::new(title).truncate());
        });
    }
}

/// One team (or player) the server lists, for the search.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct KnownTeam {
    sport: String,
    name: String,
    competitions: Vec<String>,
}

/// Teams and competitions whose names contain every word of `query`, from what the server lists
/// and what the board holds.
fn find_teams(session: &Session, query: &str) -> Vec<KnownTeam> {
    let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    if words.is_empty() {
        return Vec::new();
    }
    let mut teams: std::collections::BTreeMap<(String, String), KnownTeam> = Default::default();
    let summaries = session.catalogue().matches.iter().cloned().chain(
        session
            .scoreboard()
            .matches()
            .map(|tracked| MatchSummary::from(&tracked.snapshot)),
    );
    for summary in summaries {
        for team in [&summary.home, &summary.away] {
            let name = team.name.trim();
            let lower = name.to_lowercase();
            if name.is_empty() || !words.iter().all(|word| lower.contains(word.as_str())) {
                continue;
            }
            let sport = summary.match_topic.sport_slug().to_owned();
            let entry = teams
                .entry((sport.clone(), lower))
                .or_insert_with(|| KnownTeam {
                    sport,
                    name: name.to_owned(),
                    competitions: Vec::new(),
                });
            let competition = summary
                .competition
                .clone()
                .unwrap_or_else(|| slug_to_title(summary.match_topic.competition_slug()));
            if !entry.competitions.contains(&competition) {
                entry.competitions.push(competition);
            }
        }
    }
    teams.into_values().collect()
}

/// Find a team (or player) or a competition by name, and follow it.
fn find_ui(ui: &mut Ui, session: &Session, view: &mut ViewState, commands: &mut Vec<Command>) {
    section_heading_ui(ui, "Find a team");
    text_field_ui(
        ui,
        &mut view.team_query,
        "Team, player or competition",
        "Search teams",
    );
    let query = view.team_query.trim().to_owned();
    if query.is_empty() {
        return;
    }
    let teams = find_teams(session, &query);
    let lower = query.to_lowercase();
    let tree = catalogue_tree(session.catalogue());
    let competitions: Vec<(&Topic, &str)> = tree
        .iter()
        .flat_map(|sport| sport.competitions.iter())
        .filter(|competition| {
            let name = competition.name.to_lowercase();
            lower.split_whitespace().all(|word| name.contains(word))
        })
        .map(|competition| (&competition.topic, competition.name.as_str()))
        .collect();
    if teams.is_empty() && competitions.is_empty() {
        ui.weak(if session.catalogue().received_ms.is_some() {
            format!("Nothing called “{query}” on this server.")
        } else {
            "Teams can be found once connected.".to_owned()
        });
        return;
    }
    for known in teams.iter().take(8) {
        let Ok(sport) = Topic::parse(&known.sport) else {
            continue;
        };
        let Some(team) = TeamFollow::new(sport, &known.name) else {
            continue;
        };
        let followed = session.follows().follows_team(&team);
        // Following the whole sport already brings in every match of the team.
        let through = session
            .follows()
            .topics()
            .find(|followed| followed.covers(&team.sport));
        ui.horizontal(|ui| {
            let button = if followed {
                ui.button("Following").on_hover_text("Stop following")
            } else if let Some(broader) = through {
                ui.add_enabled(false, egui::Button::new("Following"))
                    .on_disabled_hover_text(format!(
                        "Already followed through {}",
                        topic_title(session, broader)
                    ))
            } else {
                ui.button("Follow")
            };
            if button.clicked() {
                commands.push(if followed {
                    Command::UnfollowTeam(team.clone())
                } else {
                    Command::FollowTeam(team.clone())
                });
            }
            ui.vertical(|ui| {
                ui.add(Label::new(&known.name).truncate());
                ui.add(
                    Label::new(
                        RichText::new(format!(
                            "{} · {}",
                            present::sport_name(&known.sport),
                            known.competitions.join(", ")
                        ))
                        .small()
                        .weak(),
                    )
                    .truncate(),
                );
            });
        });
    }
    for (topic, name) in competitions.into_iter().take(4) {
        commands.extend(follow_checkbox_ui(
            ui,
            session,
            topic,
            RichText::new(format!(
                "{name} · {}",
                present::sport_name(topic.sport_slug())
            )),
        ));
    }
}

/// The server's catalogue as sport → competition → season → match, with follow boxes.
fn browse_ui(ui: &mut Ui, session: &Session, commands: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        section_heading_ui(ui, "Browse");
        if ui
            .add_enabled(session.is_connected(), egui::Button::new("Refresh").small())
            .clicked()
        {
            commands.push(Command::RefreshCatalogue);
        }
    });
    let catalogue = session.catalogue();
    if catalogue.received_ms.is_none() {
        ui.weak("What the server has appears once connected.");
        return;
    } else if catalogue.matches.is_empty() {
        ui.weak("The server has no matches yet.");
        return;
    }
    for sport in catalogue_tree(catalogue) {
        commands.extend(follow_checkbox_ui(
            ui,
            session,
            &sport.topic,
            RichText::new(format!(
                "{} {}",
                present::sport_icon(scoreline_protocol::Sport::from_slug(sport.topic.as_str())),
                present::sport_name(sport.topic.as_str())
            ))
            .strong(),
        ));
        ui.indent(sport.topic.as_str(), |ui| {
            for competition in &sport.competitions {
                // The follow box is the header; its matches unfold beneath it on demand.
                let id = ui.make_persistent_id(("browse", competition.topic.as_str()));
                egui::collapsing_header::CollapsingState::load_with_default_open(
                    ui.ctx(),
                    id,
                    false,
                )
                .show_header(ui, |ui| {
                    commands.extend(follow_checkbox_ui(
                        ui,
                        session,
                        &competition.topic,
                        RichText::new(&competition.name),
                    ));
                    ui.weak(competition.match_count().to_string())
                        .on_hover_text("Matches the server lists");
                })
                .body(|ui| {
                    for edition in &competition.editions {
                        if !edition.label.is_empty() {
                            ui.label(RichText::new(&edition.label).small().weak());
                        }
                        for summary in &edition.matches {
                            commands.extend(catalogue_match_ui(ui, session, summary));
                        }
                    }
                });
            }
        });
    }
    if catalogue.omitted > 0 {
        ui.weak(format!(
            "{} more matches not listed by the server",
            catalogue.omitted
        ));
    }
}

/// One match of the catalogue: a follow box with its name, and how it stands.
fn catalogue_match_ui(ui: &mut Ui, session: &Session, summary: &MatchSummary) -> Vec<Command> {
    let mut snapshot = MatchSnapshot::new(summary.match_topic.clone());
    snapshot.home = summary.home.clone();
    snapshot.away = summary.away.clone();
    let title = present::match_title(&snapshot);
    let status = match summary.status {
        MatchStatus::Scheduled => "upcoming".to_owned(),
        status if status.is_in_progress() => {
            format!("live {}–{}", summary.score.home, summary.score.away)
        }
        _ => format!("FT {}–{}", summary.score.home, summary.score.away),
    };
    ui.horizontal(|ui| {
        let commands = follow_checkbox_ui(
            ui,
            session,
            summary.match_topic.topic(),
            RichText::new(title),
        );
        ui.weak(status);
        commands
    })
    .inner
}

/// One "follow" tick box. A topic followed through a broader one (or a team) shows ticked and
/// cannot be unticked on its own; the tooltip says why.
fn follow_checkbox_ui(
    ui: &mut Ui,
    session: &Session,
    topic: &Topic,
    label: RichText,
) -> Vec<Command> {
    let follows = session.follows();
    let broader = follows
        .covered_by_broader(topic)
        .map(|broader| topic_title(session, broader))
        .or_else(|| {
            MatchTopic::try_from(topic.clone())
                .ok()
                .and_then(|match_topic| follows.team_of(&match_topic).map(|team| team.name.clone()))
                .filter(|_| !follows.topics().any(|followed| followed == topic))
        });
    let mut followed = follows.topics().any(|followed| followed == topic) || broader.is_some();
    let response = ui.add_enabled(broader.is_none(), egui::Checkbox::new(&mut followed, label));
    let response = match &broader {
        Some(broader) => response.on_disabled_hover_text(format!("Followed through {broader}")),
        None => response,
    };
    if response.changed() {
        vec![if followed {
            Command::Follow(topic.clone())
        } else {
            Command::Unfollow(topic.clone())
        }]
    } else {
        Vec::new()
    }
}

/// "Sync with my stream": the spoiler delay, in whole seconds up to the server's limit (0 is
/// live). Disabled, saying why, when the server has no spoiler delay or none has said yet.
fn delay_ui(ui: &mut Ui, session: &Session, commands: &mut Vec<Command>) {
    section_heading_ui(ui, "Sync with my stream");
    let max_secs = session.max_delay_secs().unwrap_or(0);
    let mut secs = session.delay_secs().min(max_secs);
    let response = ui
        .add_enabled_ui(max_secs > 0, |ui| {
            // As wide as the menu allows beside its number field: 300 s over the default
            // 100 px would move 3 s per pixel.
            ui.spacing_mut().slider_width = (ui.available_width() - 80.0).clamp(100.0, 200.0);
            ui.add(
                egui::Slider::new(&mut secs, 0..=max_secs.max(1))
                    .integer()
                    .suffix(" s"),
            )
        })
        .inner;
    response
        .widget_info(|| WidgetInfo::slider(max_secs > 0, f64::from(secs), "Sync with my stream"));
    let response = match session.max_delay_secs() {
        None => response.on_disabled_hover_text(
            "Known once connected: the server says how long a delay it allows.",
        ),
        Some(0) => response.on_disabled_hover_text("This server has no spoiler delay."),
        Some(max) => response.on_hover_text(format!("0 is live; at most {max} s on this server.")),
    };
    if response.changed() {
        commands.push(Command::SetDelay(secs));
    }
    ui.weak(if secs == 0 {
        "Watching on TV or a stream? Delay the scores by as much as it runs behind, and no \
         goal reaches you before you see it."
    } else {
        "Every score reaches you this much later, so no goal spoils your stream."
    });
}

/// A one-line text field across the panel: `hint` shows while it is empty, and screen readers
/// (and the UI tests, through AccessKit) know it as `label`.
fn text_field_ui(ui: &mut Ui, text: &mut String, hint: &str, label: &str) -> egui::Response {
    let field = ui.add(
        egui::TextEdit::singleline(text)
            .desired_width(f32::INFINITY)
            .hint_text(hint),
    );
    field.widget_info(|| WidgetInfo::labeled(egui::Role::TextInput, true, label));
    field
}

/// The server address, with connect and offline buttons, and why an address was refused.
fn server_ui(ui: &mut Ui, session: &Session, view: &mut ViewState, commands: &mut Vec<Command>) {
    section_heading_ui(ui, "Server");
    let field = text_field_ui(
        ui,
        &mut view.url_draft,
        "ws://host:port/ws",
        "Server address",
    );
    let entered = field.lost_focus() && ui.input(|input| input.key_pressed(egui::Key::Enter));
    ui.horizontal(|ui| {
        if ui.button("Connect").clicked() || entered {
            commands.push(Command::SetUrl(view.url_draft.clone()));
        }
        let offline = matches!(session.link_state(), LinkState::Offline);
        if ui
            .add_enabled(!offline, egui::Button::new("Go offline"))
            .clicked()
        {
            commands.push(Command::GoOffline);
        }
    });
    if let Some(problem) = session.url_problem() {
        ui.colored_label(WARN_COLOUR, problem);
    }
}

/// Following by topic, typed by hand: for feeds the catalogue does not list yet.
fn follow_topic_ui(ui: &mut Ui, view: &mut ViewState, commands: &mut Vec<Command>) {
    egui::CollapsingHeader::new("Follow by topic")
        .id_salt("follow-by-topic")
        .show(ui, |ui| {
            ui.weak("A sport, competition or match as feeds publish it, e.g. tennis/wimbledon.");
            let parsed = Topic::parse(view.topic_draft.trim());
            let mut invalid = None;
            ui.horizontal(|ui| {
                let field = ui.add(
                    egui::TextEdit::singleline(&mut view.topic_draft)
                        .desired_width(170.0)
                        .hint_text("e.g. tennis/wimbledon"),
                );
                field.widget_info(|| WidgetInfo::labeled(egui::Role::TextInput, true, "Topic"));
                let entered =
                    field.lost_focus() && ui.input(|input| input.key_pressed(egui::Key::Enter));
                if (ui
                    .add_enabled(parsed.is_ok(), egui::Button::new("Add"))
                    .clicked()
                    || entered)
                    && let Ok(topic) = parsed.clone()
                {
                    commands.push(Command::Follow(topic));
                    view.topic_draft.clear();
                }
                invalid = parsed
                    .as_ref()
                    .err()
                    .filter(|_| !view.topic_draft.trim().is_empty())
                    .cloned();
            });
            if let Some(error) = invalid {
                ui.colored_label(
                    WARN_COLOUR,
                    format!("Not a topic: {}", topic_problem(&error)),
                );
            }
        });
}

/// Why a typed topic is not one, in plain words.
fn topic_problem(error: &scoreline_protocol::TopicError) -> String {
    use scoreline_protocol::TopicError;
    match error {
        TopicError::Empty => "it is empty".to_owned(),
        TopicError::TooDeep(_) => "at most sport/competition/match".to_owned(),
        TopicError::EmptySegment => "a part between '/' is empty".to_owned(),
        TopicError::SegmentTooLong(_) => "a part is too long".to_owned(),
        TopicError::NotASlug(part) => {
            format!("“{part}” may only use lower-case letters, digits and '-'")
        }
        TopicError::NotAMatch(_) => "a match needs sport/competition/match".to_owned(),
    }
}

/// A readable name for a followed topic: the competition or match name when known.
fn topic_title(session: &Session, topic: &Topic) -> String {
    let segments: Vec<&str> = topic.segments().collect();
    match segments.as_slice() {
        [sport] => present::sport_name(sport),
        [sport, competition] => {
            let name = catalogue_tree(session.catalogue())
                .into_iter()
                .flat_map(|sport| sport.competitions)
                .find(|known| known.topic == *topic)
                .map(|known| known.name)
                .or_else(|| {
                    session
                        .scoreboard()
                        .matches()
                        .find(|tracked| {
                            tracked.snapshot.match_topic.competition_slug() == *competition
                        })
                        .and_then(|tracked| tracked.snapshot.competition.clone())
                })
                .unwrap_or_else(|| slug_to_title(competition));
            format!("{name} ({})", present::sport_name(sport))
        }
        _ => MatchTopic::try_from(topic.clone())
            .ok()
            .and_then(|m| session.scoreboard().get(&m))
            .map_or_else(
                || topic.as_str().to_owned(),
                |tracked| present::match_title(&tracked.snapshot),
            ),
    }
}

/// The scoreboard: competitions as cards of rows, in two columns on a wide screen.
pub fn scoreboard_ui(
    ui: &mut Ui,
    session: &Session,
    view: &mut ViewState,
    now_ms: u64,
) -> Vec<Command> {
    let mut commands = Vec::new();
    let board = session.scoreboard();
    if board.is_empty() {
        ui.add_space(32.0);
        ui.vertical_centered(|ui| {
            if let Some(problem) = session.url_problem() {
                ui.colored_label(WARN_COLOUR, problem);
                ui.label("Correct the server address in the menu (☰).");
            } else if session.follows().is_empty() {
                ui.label(
                    RichText::new("Follow teams, competitions or sports to see their scores here.")
                        .size(16.0),
                );
                ui.add_space(6.0);
                if ui
                    .add_enabled(session.is_connected(), egui::Button::new("Show everything"))
                    .clicked()
                {
                    commands.push(Command::FollowEverything);
                }
                ui.weak("Or open the menu (☰) to find a team.");
            } else if session.is_connected() {
                ui.label("No matches under what you follow yet.");
            } else {
                ui.label("Waiting for the server…");
            }
        });
        return commands;
    }
    let groups = board.groups(&view.filter, view.board);
    if groups.is_empty() {
        ui.add_space(24.0);
        ui.vertical_centered(|ui| {
            if view.filter.trim().is_empty() {
                ui.label("No match is being played right now.");
                if ui.button("Show all matches").clicked() {
                    view.board = BoardFilter::All;
                }
            } else {
                ui.label(format!("No match matches “{}”.", view.filter.trim()));
            }
        });
        return commands;
    }
    egui::ScrollArea::vertical()
        .id_salt("scoreboard-scroll")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            let width = ui.available_width();
            if width >= TWO_COLUMNS_MIN_WIDTH && groups.len() > 1 {
                // Fill two columns top to bottom, each group into the shorter one, so both end
                // near the same height and the order still reads down each column.
                let gap = 12.0;
                let column_width = (width - gap) / 2.0;
                let mut columns: [Vec<Group<'_>>; 2] = [Vec::new(), Vec::new()];
                let mut heights = [0.0_f32; 2];
                for group in groups {
                    let shorter = usize::from(heights[1] < heights[0]);
                    heights[shorter] += 40.0 + ROW_HEIGHT * group.matches.len() as f32;
                    columns[shorter].push(group);
                }
                ui.horizontal_top(|ui| {
                    for column in columns {
                        ui.allocate_ui_with_layout(
                            vec2(column_width, 0.0),
                            Layout::top_down(Align::Min),
                            |ui| {
                                ui.set_width(column_width);
                                for group in &column {
                                    commands.extend(group_ui(ui, session, group, now_ms));
                                }
                            },
                        );
                    }
                });
            } else {
                for group in &groups {
                    commands.extend(group_ui(ui, session, group, now_ms));
                }
            }
        });
    commands
}

/// What a group's rows need room for beyond what every row has, so every row of it lines up.
/// The score column sits at the same place in every row of every group: the shoot-out has a
/// column of its own beside it in every row, and sets and game points go to its left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GroupShape {
    /// Tennis: how many set columns.
    sets: usize,
    /// Tennis: a column for the points of the game in play, and room for the serve marker.
    tennis: bool,
}

impl GroupShape {
    fn of(group: &Group<'_>) -> GroupShape {
        let tennis = group.sport == Sport::Tennis;
        GroupShape {
            sets: if tennis {
                group
                    .matches
                    .iter()
                    .map(|tracked| tracked.snapshot.periods.len())
                    .max()
                    .unwrap_or(0)
                    .min(5)
            } else {
                0
            },
            tennis,
        }
    }
}

/// One competition: a card with its name and its rows.
fn group_ui(ui: &mut Ui, session: &Session, group: &Group<'_>, now_ms: u64) -> Vec<Command> {
    let mut commands = Vec::new();
    let shape = GroupShape::of(group);
    Frame::new()
        .fill(CARD_FILL)
        .corner_radius(CornerRadius::same(10))
        .inner_margin(Margin::symmetric(0, 6))
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                ui.add_space(12.0);
                ui.add(
                    Label::new(
                        RichText::new(format!(
                            "{}  {} · {}",
                            present::sport_icon(group.sport),
                            present::sport_name(&group.sport_slug),
                            group.competition
                        ))
                        .size(13.0)
                        .strong()
                        .color(ui.visuals().weak_text_color()),
                    )
                    .truncate(),
                );
            });
            ui.add_space(2.0);
            for (index, tracked) in group.matches.iter().enumerate() {
                if index > 0 {
                    let y = ui.cursor().top();
                    let x = ui.max_rect().x_range().shrink(12.0);
                    ui.painter().hline(x, y, Stroke::new(1.0, DIVIDER));
                }
                commands.extend(match_row_ui(ui, session, tracked, shape, now_ms));
            }
        });
    ui.add_space(12.0);
    commands
}

/// Places `text` in `rect`, aligned left, right or centred, cut with "…" if it does not fit;
/// a real label, so screen readers and tests read it.
fn cell_ui(ui: &mut Ui, rect: Rect, align: Align, text: RichText) -> Response {
    let layout = match align {
        Align::Min => Layout::left_to_right(Align::Center),
        Align::Max => Layout::right_to_left(Align::Center),
        Align::Center => Layout::centered_and_justified(egui::Direction::LeftToRight),
    };
    ui.scope_builder(UiBuilder::new().max_rect(rect).layout(layout), |ui| {
        ui.add(Label::new(text).truncate().selectable(false))
    })
    .inner
}

/// One scoreboard row: status, the two sides on two lines (with the serve, red cards and latest
/// scorers), tennis sets and game, the score, the shoot-out, and whether it can be trusted. The
/// whole row opens the match; its accessible name is the match title.
fn match_row_ui(
    ui: &mut Ui,
    session: &Session,
    tracked: &TrackedMatch,
    shape: GroupShape,
    now_ms: u64,
) -> Vec<Command> {
    let snapshot = &tracked.snapshot;
    let open = session
        .open_match()
        .is_some_and(|open| open.snapshot.match_topic == snapshot.match_topic);
    let title = present::match_title(snapshot);
    let (row, response) =
        ui.allocate_exact_size(vec2(ui.available_width(), ROW_HEIGHT), Sense::click());
    let status = present::row_status(snapshot, tracked.shown_at_ms(now_ms));
    response.widget_info(|| WidgetInfo::selected(egui::Role::Button, true, open, &title));
    if !ui.is_rect_visible(row) {
        return clicked(&response, open, snapshot);
    }
    let painter = ui.painter().clone();
    if open {
        painter.rect_filled(
            row.shrink2(vec2(4.0, 1.0)),
            6.0,
            ui.visuals().selection.bg_fill.gamma_multiply(0.6),
        );
    } else if response.hovered() {
        painter.rect_filled(
            row.shrink2(vec2(4.0, 1.0)),
            6.0,
            ui.visuals().widgets.hovered.weak_bg_fill,
        );
    }
    let highlight = tracked.highlight(now_ms);
    let freshness = session.freshness(tracked);

    // Columns, from the right edge inwards, then the status on the left; the names take what
    // is left, so nothing else ever moves.
    let inner = row.shrink2(vec2(12.0, 0.0));
    let line_height = 19.0;
    let lines = [
        Rect::from_min_size(
            pos2(inner.left(), row.top() + 4.0),
            vec2(inner.width(), line_height),
        ),
        Rect::from_min_size(
            pos2(inner.left(), row.top() + 4.0 + line_height),
            vec2(inner.width(), line_height),
        ),
    ];
    let column = |right: f32, width: f32, line: usize| {
        Rect::from_x_y_ranges((right - width)..=right, lines[line].y_range())
    };
    let mut right = inner.right();
    let mark_rect = Rect::from_x_y_ranges((right - 16.0)..=right, row.y_range());
    right -= 20.0;
    let pens_right = right;
    right -= 30.0;
    let score_right = right;
    right -= 30.0 + 8.0;
    let game_right = right;
    if shape.tennis {
        right -= 30.0;
    }
    let sets_right = right;
    right -= 20.0 * shape.sets as f32;
    if shape.sets > 0 {
        right -= 4.0;
    }
    let status_width = 56.0;
    let status_rect =
        Rect::from_x_y_ranges(inner.left()..=(inner.left() + status_width), row.y_range());
    let teams_left = status_rect.right() + 8.0;
    let teams_right = right.max(teams_left + 40.0);

    // Status: the clock or state, or the goal badge while it shows.
    match highlight.filter(|change| change.kind != ChangeKind::Quiet) {
        Some(change) => {
            let (text, fill) = match change.kind {
                ChangeKind::GoalDisallowed => ("NO GOAL", BAD_COLOUR),
                _ => ("GOAL", GOAL_COLOUR),
            };
            let pill = Rect::from_center_size(status_rect.center(), vec2(status_width - 2.0, 20.0));
            painter.rect_filled(pill, 5.0, fill);
            cell_ui(
                ui,
                pill,
                Align::Center,
                RichText::new(text)
                    .size(11.5)
                    .strong()
                    .color(Color32::WHITE),
            );
        }
        None => {
            let colour = if status.live {
                LIVE_COLOUR
            } else {
                ui.visuals().weak_text_color()
            };
            let main = RichText::new(&status.main)
                .size(13.5)
                .strong()
                .color(colour);
            match &status.small {
                Some(small) => {
                    cell_ui(
                        ui,
                        Rect::from_x_y_ranges(status_rect.x_range(), lines[0].y_range()),
                        Align::Min,
                        main,
                    );
                    cell_ui(
                        ui,
                        Rect::from_x_y_ranges(status_rect.x_range(), lines[1].y_range()),
                        Align::Min,
                        RichText::new(small)
                            .size(11.5)
                            .color(colour.gamma_multiply(0.8)),
                    );
                }
                None => {
                    cell_ui(ui, status_rect, Align::Min, main);
                }
            }
        }
    }

    let finished = snapshot.status.is_over();
    let serving = present::serving(snapshot);
    let badge_side = highlight
        .filter(|change| change.kind != ChangeKind::Quiet)
        .and_then(|change| change.side);
    let quiet_side = highlight
        .filter(|change| change.kind == ChangeKind::Quiet)
        .and_then(|change| change.side);
    let show_scorers = snapshot.sport == Sport::Football && teams_right - teams_left >= 230.0;
    for (line, side) in [Side::Home, Side::Away].into_iter().enumerate() {
        let line_rect = Rect::from_x_y_ranges(teams_left..=teams_right, lines[line].y_range());
        if badge_side == Some(side) {
            painter.rect_filled(
                Rect::from_x_y_ranges(
                    (teams_left - 4.0)..=(score_right + 2.0),
                    lines[line].y_range(),
                ),
                4.0,
                GOAL_COLOUR.gamma_multiply(0.22),
            );
        }
        let mut name_left = teams_left;
        if shape.tennis {
            if serving == Some(side) {
                painter.circle_filled(
                    pos2(teams_left + 4.0, line_rect.center().y),
                    3.5,
                    SERVE_COLOUR,
                );
            }
            name_left += 14.0;
        }
        let mut name_right = teams_right;
        if show_scorers && let Some(scorer) = present::last_scorer(snapshot, side) {
            let max_width = (teams_right - name_left) * 0.5;
            let scorer_text = if badge_side == Some(side) {
                RichText::new(format!("⚽ {scorer}"))
                    .size(12.0)
                    .strong()
                    .color(LIVE_COLOUR)
            } else {
                RichText::new(scorer)
                    .size(12.0)
                    .color(ui.visuals().weak_text_color())
            };
            let scorer_rect =
                Rect::from_x_y_ranges((teams_right - max_width)..=teams_right, line_rect.y_range());
            let placed = cell_ui(ui, scorer_rect, Align::Max, scorer_text);
            name_right = placed.rect.left() - 10.0;
        }
        let winner = snapshot.winner == Some(side);
        let mut name = RichText::new(present::team_name(snapshot, side)).size(14.5);
        if winner || badge_side == Some(side) {
            name = name.strong();
        } else if finished && snapshot.winner.is_some() {
            name = name.color(ui.visuals().weak_text_color());
        }
        let name_rect = Rect::from_x_y_ranges(
            name_left..=name_right.max(name_left + 20.0),
            line_rect.y_range(),
        );
        let placed = cell_ui(ui, name_rect, Align::Min, name);
        let red = match side {
            Side::Home => snapshot.cards.home.red,
            Side::Away => snapshot.cards.away.red,
        };
        for index in 0..red.min(3) {
            let x = placed.rect.right() + 5.0 + 7.0 * index as f32;
            if x + 5.0 < name_right {
                painter.rect_filled(
                    Rect::from_min_size(pos2(x, line_rect.center().y - 6.0), vec2(5.0, 11.0)),
                    1.0,
                    BAD_COLOUR,
                );
            }
        }

        // Tennis: games per set (the set in play stands out) and the points of the game.
        if shape.tennis {
            let sets = &snapshot.periods;
            let first = sets.len().saturating_sub(shape.sets);
            for (index, set) in sets[first..].iter().enumerate() {
                let right = sets_right - 20.0 * (shape.sets - 1 - index) as f32;
                let in_play = index + first + 1 == sets.len() && snapshot.status.is_in_progress();
                let games = set.score().get(side);
                let won_set = set.score().get(side.opponent()) < games && !in_play;
                let mut text = RichText::new(games.to_string()).size(13.0).monospace();
                text = if in_play {
                    text.strong().color(ui.visuals().strong_text_color())
                } else if won_set {
                    text.color(ui.visuals().text_color())
                } else {
                    text.color(ui.visuals().weak_text_color())
                };
                cell_ui(ui, column(right, 18.0, line), Align::Max, text);
            }
            if let Some(game) = snapshot.game.filter(|_| snapshot.status.is_in_progress()) {
                cell_ui(
                    ui,
                    column(game_right, 28.0, line),
                    Align::Max,
                    RichText::new(game.call(side))
                        .size(13.0)
                        .monospace()
                        .color(LIVE_COLOUR),
                );
            }
        }

        // The score, and the shoot-out beside it.
        let score_text = if present::has_score(snapshot) {
            snapshot.score.get(side).to_string()
        } else {
            String::new()
        };
        let leading = snapshot.score.get(side) > snapshot.score.get(side.opponent());
        let mut score = RichText::new(score_text).size(15.5).monospace();
        score = if quiet_side == Some(side) {
            score.strong().color(QUIET_COLOUR)
        } else if freshness != Freshness::Fresh {
            score.color(ui.visuals().weak_text_color())
        } else if leading || winner || snapshot.status.is_in_progress() {
            score.strong().color(ui.visuals().strong_text_color())
        } else {
            score.color(ui.visuals().text_color())
        };
        cell_ui(ui, column(score_right, 30.0, line), Align::Max, score);
        if let Some(shootout) = snapshot.shootout {
            cell_ui(
                ui,
                column(pens_right, 28.0, line),
                Align::Max,
                RichText::new(format!("({})", shootout.get(side)))
                    .size(12.5)
                    .monospace()
                    .color(if quiet_side == Some(side) {
                        QUIET_COLOUR
                    } else {
                        ui.visuals().weak_text_color()
                    }),
            );
        }
    }

    // Whether the row can be trusted, in its own column so marks line up.
    let mark = match freshness {
        Freshness::Fresh => None,
        Freshness::Updating => Some((
            "↻",
            "Updating: a gap in this match's events was found; fetching its latest state.",
        )),
        Freshness::NotConfirmed => Some((
            "⏳",
            "May be behind: not confirmed since the connection was lost.",
        )),
        Freshness::ServerUnsure => Some((
            "⚠",
            "May be out of date: the server could not confirm this is the latest score.",
        )),
    };
    if let Some((icon, hint)) = mark {
        cell_ui(
            ui,
            mark_rect,
            Align::Center,
            RichText::new(icon).color(WARN_COLOUR),
        )
        .on_hover_text(hint);
    }
    let response = response
        .on_hover_cursor(egui::CursorIcon::PointingHand)
        .on_hover_text_at_pointer(status.full.clone());
    clicked(&response, open, snapshot)
}

/// What a click on a row asks for: open the match, or close it when it is the open one.
fn clicked(response: &Response, open: bool, snapshot: &MatchSnapshot) -> Vec<Command> {
    if response.clicked() {
        if open {
            vec![Command::CloseMatch]
        } else {
            vec![Command::OpenMatch(snapshot.match_topic.clone())]
        }
    } else {
        Vec::new()
    }
}

/// Where the match detail is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetailFrame {
    /// The whole window of a narrow layout: a Back button returns to the scoreboard.
    Page,
    /// Beside the scoreboard, opened by the fan: a Close button.
    Panel,
    /// Beside the scoreboard of a wide window when nothing is open: the first live match.
    Featured,
}

/// A match: header with the score, scorers and status, then the sport's detail (sets, periods,
/// shoot-out, statistics), the score progression and the timeline.
pub fn detail_ui(
    ui: &mut Ui,
    session: &Session,
    tracked: &TrackedMatch,
    now_ms: u64,
    frame: DetailFrame,
) -> Vec<Command> {
    let mut commands = Vec::new();
    let snapshot = &tracked.snapshot;
    ui.horizontal(|ui| {
        match frame {
            DetailFrame::Page => {
                if ui.button("‹ Back").clicked() {
                    commands.push(Command::CloseMatch);
                }
            }
            DetailFrame::Featured => {
                ui.label(
                    RichText::new("LIVE NOW")
                        .size(12.0)
                        .strong()
                        .color(LIVE_COLOUR),
                );
            }
            DetailFrame::Panel => {}
        }
        let mut context = vec![crate::scoreboard::competition_name(snapshot)];
        context.extend(snapshot.venue.clone());
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            if frame == DetailFrame::Panel && ui.button("Close").clicked() {
                commands.push(Command::CloseMatch);
            }
            ui.add(Label::new(RichText::new(context.join(" · ")).weak()).truncate());
        });
    });
    match session.freshness(tracked) {
        Freshness::Fresh => {}
        Freshness::Updating => {
            ui.colored_label(
                WARN_COLOUR,
                "↻ Updating: fetching this match's latest state…",
            );
        }
        Freshness::NotConfirmed => {
            ui.colored_label(
                WARN_COLOUR,
                "⏳ May be behind: not confirmed since the connection was lost.",
            );
        }
        Freshness::ServerUnsure => {
            ui.colored_label(
                WARN_COLOUR,
                "⚠ May be out of date: the server could not confirm the latest score.",
            );
        }
    }
    ui.add_space(4.0);
    header_ui(ui, tracked, session.watching(&snapshot.match_topic), now_ms);
    ui.add_space(8.0);
    egui::ScrollArea::vertical()
        .id_salt(("detail-scroll", snapshot.match_topic.as_str()))
        .auto_shrink([false, false])
        .show(ui, |ui| {
            match snapshot.sport {
                Sport::Tennis => tennis_ui(ui, snapshot),
                _ => periods_ui(ui, snapshot),
            }
            if snapshot.shootout.is_some() {
                shootout_ui(ui, snapshot);
            }
            if matches!(snapshot.sport, Sport::Football | Sport::Other) {
                football_extras_ui(ui, snapshot);
            }
            ui.add_space(8.0);
            progression_ui(ui, snapshot);
            ui.add_space(8.0);
            timeline_ui(ui, snapshot);
        });
    commands
}

/// Names beside a big score, in fixed columns so long names wrap within their own side; the
/// status beneath, and each side's scorers. Laid out in rectangles computed from the width, so
/// nothing can push the panel wider than it is.
fn header_ui(ui: &mut Ui, tracked: &TrackedMatch, watching: Option<u64>, now_ms: u64) {
    let snapshot = &tracked.snapshot;
    Frame::new()
        .fill(CARD_FILL)
        .corner_radius(CornerRadius::same(10))
        .inner_margin(Margin::same(12))
        .show(ui, |ui| {
            let width = ui.available_width();
            ui.set_width(width);
            let score_width = 130.0_f32.min(width * 0.36);
            let name_width = (width - score_width) / 2.0;
            let serving = present::serving(snapshot);
            let name_text = |side: Side| {
                let mut name = present::team_name(snapshot, side);
                if serving == Some(side) {
                    name = format!("🎾 {name}");
                }
                let text = RichText::new(name).size(16.5);
                if snapshot.winner == Some(side) {
                    text.strong()
                } else {
                    text
                }
            };
            let (top, _) = ui.allocate_exact_size(vec2(width, 62.0), Sense::hover());
            let place = |ui: &mut Ui, rect: Rect, add: &mut dyn FnMut(&mut Ui)| {
                ui.scope_builder(
                    UiBuilder::new()
                        .max_rect(rect)
                        .layout(Layout::top_down(Align::Center)),
                    |ui| add(ui),
                );
            };
            let home_rect = Rect::from_min_size(top.min, vec2(name_width, top.height()));
            let score_rect = Rect::from_min_size(
                pos2(top.left() + name_width, top.top()),
                vec2(score_width, top.height()),
            );
            let away_rect = Rect::from_min_size(
                pos2(score_rect.right(), top.top()),
                vec2(name_width, top.height()),
            );
            place(ui, home_rect, &mut |ui| {
                ui.add(
                    Label::new(name_text(Side::Home))
                        .wrap()
                        .halign(Align::Center),
                );
            });
            place(ui, away_rect, &mut |ui| {
                ui.add(
                    Label::new(name_text(Side::Away))
                        .wrap()
                        .halign(Align::Center),
                );
            });
            let colour = match tracked.highlight(now_ms).map(|change| change.kind) {
                Some(ChangeKind::Goal) => GOAL_COLOUR,
                Some(ChangeKind::GoalDisallowed) => BAD_COLOUR,
                _ => ui.visuals().strong_text_color(),
            };
            place(ui, score_rect, &mut |ui| {
                let score = if present::has_score(snapshot) {
                    format!("{} – {}", snapshot.score.home, snapshot.score.away)
                } else {
                    "–".to_owned()
                };
                ui.label(RichText::new(score).size(28.0).strong().color(colour));
                if let Some(shootout) = snapshot.shootout {
                    ui.label(
                        RichText::new(format!(
                            "{} – {} on penalties",
                            shootout.home, shootout.away
                        ))
                        .size(12.5)
                        .weak(),
                    );
                }
            });
            ui.vertical_centered(|ui| {
                let text = present::status_text(snapshot, tracked.shown_at_ms(now_ms));
                ui.label(
                    RichText::new(text).color(if snapshot.status.is_in_progress() {
                        LIVE_COLOUR
                    } else {
                        ui.visuals().weak_text_color()
                    }),
                );
                // Only while the server keeps it current (see `Session::watching`): an old
                // count shown as now would mislead.
                if let Some(fans) = watching {
                    ui.label(
                        RichText::new(present::watching_label(fans))
                            .size(12.5)
                            .weak(),
                    )
                    .on_hover_text(
                        "Fans with this match open right now in a Scoreline app, you included",
                    );
                }
            });
            if matches!(snapshot.sport, Sport::Football | Sport::Other) {
                let home = present::scorers(snapshot, Side::Home);
                let away = present::scorers(snapshot, Side::Away);
                let lines = home.len().max(away.len());
                if lines > 0 {
                    ui.add_space(2.0);
                    let (area, _) =
                        ui.allocate_exact_size(vec2(width, 17.0 * lines as f32), Sense::hover());
                    let half = (width - 16.0) / 2.0;
                    for (scorers, rect, align) in [
                        (
                            home,
                            Rect::from_min_size(area.min, vec2(half, area.height())),
                            Align::Max,
                        ),
                        (
                            away,
                            Rect::from_min_size(
                                pos2(area.right() - half, area.top()),
                                vec2(half, area.height()),
                            ),
                            Align::Min,
                        ),
                    ] {
                        ui.scope_builder(
                            UiBuilder::new()
                                .max_rect(rect)
                                .layout(Layout::top_down(align)),
                            |ui| {
                                ui.spacing_mut().item_spacing.y = 2.0;
                                for scorer in scorers {
                                    ui.add(
                                        Label::new(RichText::new(scorer).size(12.5).weak())
                                            .truncate(),
                                    );
                                }
                            },
                        );
                    }
                }
            }
        });
}

/// Period scores (halves and extra time, quarters and overtimes) with the total. A shoot-out is
/// not a period here: it has its own row of kicks below.
fn periods_ui(ui: &mut Ui, snapshot: &MatchSnapshot) {
    let periods: Vec<_> = snapshot
        .periods
        .iter()
        .filter(|period| snapshot.sport.has_clock_in(period.period))
        .collect();
    if periods.is_empty() {
        return;
    }
    section_title_ui(
        ui,
        match snapshot.sport {
            Sport::Basketball => "Quarters",
            Sport::Football => "Halves",
            _ => "Periods",
        },
    );
    egui::Grid::new("periods")
        .striped(true)
        .spacing([14.0, 4.0])
        .show(ui, |ui| {
            ui.label("");
            for period in &periods {
                ui.strong(short_period_name(snapshot.sport, period.period));
            }
            ui.strong("Total");
            ui.end_row();
            for side in [Side::Home, Side::Away] {
                ui.label(present::team_name(snapshot, side));
                for period in &periods {
                    ui.monospace(period.score().get(side).to_string());
                }
                ui.monospace(RichText::new(snapshot.score.get(side).to_string()).strong());
                ui.end_row();
            }
        });
}

fn short_period_name(sport: Sport, period: u8) -> String {
    match (sport, period) {
        (Sport::Football, 1) => "1H".to_owned(),
        (Sport::Football, 2) => "2H".to_owned(),
        (Sport::Football, 3) => "ET1".to_owned(),
        (Sport::Football, 4) => "ET2".to_owned(),
        (sport, period) => sport.period_name(period),
    }
}

/// A small heading inside the detail.
fn section_title_ui(ui: &mut Ui, text: &str) {
    ui.add_space(4.0);
    ui.label(
        RichText::new(text)
            .size(13.0)
            .strong()
            .color(ui.visuals().weak_text_color()),
    );
}

/// The shoot-out kick by kick: a green dot for each goal, a red ring for each miss.
fn shootout_ui(ui: &mut Ui, snapshot: &MatchSnapshot) {
    section_title_ui(ui, "Penalty shoot-out");
    for side in [Side::Home, Side::Away] {
        let kicks = present::shootout_kicks(snapshot, side);
        ui.horizontal(|ui| {
            let name_width = 130.0_f32.min(ui.available_width() * 0.4);
            ui.allocate_ui_with_layout(
                vec2(name_width, 18.0),
                Layout::left_to_right(Align::Center),
                |ui| {
                    ui.set_width(name_width);
                    ui.add(Label::new(present::team_name(snapshot, side)).truncate());
                },
            );
            for scored in &kicks {
                let (rect, _) = ui.allocate_exact_size(Vec2::splat(14.0), Sense::hover());
                if *scored {
                    ui.painter().circle_filled(rect.center(), 5.5, GOAL_COLOUR);
                } else {
                    ui.painter()
                        .circle_stroke(rect.center(), 5.0, Stroke::new(2.0, BAD_COLOUR));
                }
            }
            let total = snapshot.shootout.map_or(0, |shootout| shootout.get(side));
            ui.monospace(RichText::new(total.to_string()).strong());
        })
        .response
        .widget_info(|| {
            let scored = kicks.iter().filter(|scored| **scored).count();
            WidgetInfo::labeled(
                egui::Role::Label,
                true,
                format!(
                    "{}: {scored} of {} penalties scored",
                    present::team_name(snapshot, side),
                    kicks.len()
                ),
            )
        });
    }
}

/// Sets (games per set, tie-break points in brackets), sets won, and the game in play.
fn tennis_ui(ui: &mut Ui, snapshot: &MatchSnapshot) {
    if snapshot.periods.is_empty() {
        return;
    }
    section_title_ui(ui, "Sets");
    let serving = present::serving(snapshot);
    egui::Grid::new("sets")
        .striped(true)
        .spacing([14.0, 4.0])
        .show(ui, |ui| {
            ui.label("");
            for set in &snapshot.periods {
                ui.strong(format!("Set {}", set.period));
            }
            ui.strong("Sets");
            if snapshot.game.is_some() {
                ui.strong("Game");
            }
            ui.end_row();
            for side in [Side::Home, Side::Away] {
                let mut name = present::team_name(snapshot, side);
                if serving == Some(side) {
                    name = format!("🎾 {name}");
                }
                let name = ui.label(name);
                if serving == Some(side) {
                    name.on_hover_text("Serving");
                }
                for set in &snapshot.periods {
                    let games = set.score().get(side);
                    let text = match set.tiebreak {
                        Some(tiebreak) => format!("{games} ({})", tiebreak.get(side)),
                        None => games.to_string(),
                    };
                    ui.monospace(text);
                }
                ui.monospace(RichText::new(snapshot.score.get(side).to_string()).strong());
                if let Some(game) = snapshot.game {
                    ui.monospace(RichText::new(game.call(side)).color(LIVE_COLOUR));
                }
                ui.end_row();
            }
        });
}

/// Statistics as paired bars, and cards.
fn football_extras_ui(ui: &mut Ui, snapshot: &MatchSnapshot) {
    if !snapshot.stats.is_empty() {
        section_title_ui(ui, "Statistics");
        for (name, score) in &snapshot.stats {
            let width = ui.available_width();
            ui.horizontal(|ui| {
                ui.allocate_ui_with_layout(
                    vec2(40.0, 18.0),
                    Layout::left_to_right(Align::Center),
                    |ui| {
                        ui.monospace(score.home.to_string());
                    },
                );
                ui.allocate_ui_with_layout(
                    vec2((width - 104.0).max(60.0), 18.0),
                    Layout::centered_and_justified(egui::Direction::LeftToRight),
                    |ui| {
                        ui.label(RichText::new(present::stat_name(name)).size(12.5).weak());
                    },
                );
                ui.allocate_ui_with_layout(
                    vec2(40.0, 18.0),
                    Layout::right_to_left(Align::Center),
                    |ui| {
                        ui.monospace(score.away.to_string());
                    },
                );
            });
            let total = (score.home + score.away).max(1) as f32;
            let (bar, _) = ui.allocate_exact_size(vec2(width, 5.0), Sense::hover());
            let middle = bar.left() + bar.width() * score.home as f32 / total;
            ui.painter().rect_filled(
                Rect::from_x_y_ranges(bar.left()..=middle - 1.0, bar.y_range()),
                2.0,
                HOME_COLOUR,
            );
            ui.painter().rect_filled(
                Rect::from_x_y_ranges(middle + 1.0..=bar.right(), bar.y_range()),
                2.0,
                AWAY_COLOUR,
            );
            ui.add_space(3.0);
        }
    }
    let cards = snapshot.cards;
    if cards.home.yellow + cards.home.red + cards.away.yellow + cards.away.red > 0 {
        section_title_ui(ui, "Cards");
        for side in [Side::Home, Side::Away] {
            let tally = match side {
                Side::Home => cards.home,
                Side::Away => cards.away,
            };
            ui.label(format!(
                "{}: {} yellow, {} red",
                present::team_name(snapshot, side),
                tally.yellow,
                tally.red
            ));
        }
    }
}

/// The score over the match, one line per side.
fn progression_ui(ui: &mut Ui, snapshot: &MatchSnapshot) {
    let series = present::progression(snapshot);
    ui.label(
        RichText::new(format!("Score progression ({})", series.y_label))
            .size(13.0)
            .strong()
            .color(ui.visuals().weak_text_color()),
    );
    let mut plot = Plot::new(("progression", snapshot.match_topic.as_str()))
        .height(160.0)
        .legend(Legend::default())
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .include_y(0.0)
        .include_x(0.0)
        // Minute labels are two or three digits wide: egui_plot's default spacing (60 px, made
        // for long numbers) would leave a 90-minute axis in a side panel with only "0".
        .custom_x_axes(vec![
            AxisHints::new_x()
                .label(series.x_label)
                .label_spacing(28.0..=40.0),
        ])
        .custom_y_axes(vec![AxisHints::new_y().label_spacing(14.0..=22.0)]);
    if let Some(full_length) = series.full_length {
        plot = plot.include_x(full_length);
    }
    plot.show(ui, |plot| {
        plot.line(
            Line::new(present::team_name(snapshot, Side::Home), series.home)
                .color(HOME_COLOUR)
                .width(2.0)
                // Score steps are vertical jumps; band aggregation would fill between them.
                .allow_band(false),
        );
        plot.line(
            Line::new(present::team_name(snapshot, Side::Away), series.away)
                .color(AWAY_COLOUR)
                .width(2.0)
                .allow_band(false),
        );
    });
}

/// How many timeline lines the detail shows before "Show all": the recent ones are what a fan
/// looks for, and laying out hundreds of lines (a basketball game) on every frame costs CPU.
pub const TIMELINE_LINES: usize = 30;

/// Key events, newest first; scores stand out, disallowed ones are struck through.
fn timeline_ui(ui: &mut Ui, snapshot: &MatchSnapshot) {
    section_title_ui(ui, "Timeline");
    if snapshot.timeline.is_empty() {
        ui.weak("Nothing has happened yet.");
        return;
    }
    let id = ui.make_persistent_id(("timeline-all", snapshot.match_topic.as_str()));
    let show_all = ui.data(|data| data.get_temp::<bool>(id)).unwrap_or(false);
    let shown = if show_all {
        snapshot.timeline.len()
    } else {
        TIMELINE_LINES
    };
    for entry in snapshot.timeline.iter().rev().take(shown) {
        ui.horizontal_top(|ui| {
            ui.allocate_ui_with_layout(vec2(70.0, 16.0), Layout::left_to_right(Align::Min), |ui| {
                ui.set_width(70.0);
                ui.label(
                    RichText::new(present::entry_time(snapshot, entry))
                        .monospace()
                        .weak(),
                );
            });
            let mut text = RichText::new(present::entry_text(snapshot, entry));
            if entry.voided {
                text = text.strikethrough().weak();
            } else if present::is_scoring(entry) {
                text = text.strong().color(match entry.kind.side() {
                    Some(Side::Away) => AWAY_COLOUR,
                    _ => HOME_COLOUR,
                });
            }
            ui.add(Label::new(text).wrap());
        });
    }
    if !show_all
        && snapshot.timeline.len() > TIMELINE_LINES
        && ui
            .button(format!("Show all {} events", snapshot.timeline.len()))
            .clicked()
    {
        ui.data_mut(|data| data.insert_temp(id, true));
    }
}

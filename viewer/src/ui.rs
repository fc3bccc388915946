//! Drawing. Every `*_ui` function reads the [`Session`] and returns the fan's [`Command`]s; the
//! caller applies them after the frame. Nothing here changes the model, so the same session can
//! be drawn by the app and by UI tests, and every change goes through one place.
//!
//! The only state drawn code owns is [`ViewState`]: what the fan is typing, which belongs to the
//! widgets rather than to the model.

use eframe::egui;
use egui::{Align, Color32, Layout, RichText, Sense, Ui, Vec2, WidgetInfo};
use egui_plot::{AxisHints, Legend, Line, Plot};
use scoreline_protocol::{MatchSnapshot, MatchStatus, MatchTopic, Side, Sport, Topic};

use crate::connection::LinkState;
use crate::present;
use crate::scoreboard::{Section, TrackedMatch, slug_to_title};
use crate::session::{Command, Session};

/// Text the fan is editing; owned by the widgets, not the model.
#[derive(Debug, Clone, Default)]
pub struct ViewState {
    /// The scoreboard filter.
    pub filter: String,
    /// The server address being edited; applied with "Connect".
    pub url_draft: String,
    /// A topic typed by hand to follow.
    pub topic_draft: String,
}

impl ViewState {
    /// A view state whose URL field shows the session's server.
    pub fn new(session: &Session) -> ViewState {
        ViewState {
            url_draft: session.url().to_owned(),
            ..ViewState::default()
        }
    }
}

const LIVE_COLOUR: Color32 = Color32::from_rgb(0x2e, 0xcc, 0x71);
const WARN_COLOUR: Color32 = Color32::from_rgb(0xf3, 0x9c, 0x12);
const BAD_COLOUR: Color32 = Color32::from_rgb(0xe7, 0x4c, 0x3c);
const FLASH_COLOUR: Color32 = Color32::from_rgb(0xf1, 0xc4, 0x0f);
const HOME_COLOUR: Color32 = Color32::from_rgb(0x34, 0x98, 0xdb);
const AWAY_COLOUR: Color32 = Color32::from_rgb(0xe6, 0x7e, 0x22);

/// The whole window: toolbar, status bar, catalogue, scoreboard and, when a match is open, its
/// detail.
pub fn viewer_ui(
    ui: &mut Ui,
    session: &Session,
    view: &mut ViewState,
    now_ms: u64,
) -> Vec<Command> {
    let mut commands = Vec::new();
    egui::Panel::top("toolbar").show(ui, |ui| {
        commands.extend(toolbar_ui(ui, session, view));
    });
    egui::Panel::bottom("status").show(ui, |ui| {
        commands.extend(status_bar_ui(ui, session, now_ms));
    });
    egui::Panel::left("catalogue")
        .resizable(true)
        .default_size(270.0)
        .show(ui, |ui| {
            commands.extend(follow_ui(ui, session, view));
        });
    if let Some(tracked) = session.open_match() {
        egui::Panel::right("detail")
            .resizable(true)
            .default_size(440.0)
            .show(ui, |ui| {
                commands.extend(detail_ui(ui, session, tracked, now_ms));
            });
    }
    egui::CentralPanel::default().show(ui, |ui| {
        commands.extend(scoreboard_ui(ui, session, view, now_ms));
    });
    commands
}

/// Title and server address.
pub fn toolbar_ui(ui: &mut Ui, session: &Session, view: &mut ViewState) -> Vec<Command> {
    let mut commands = Vec::new();
    ui.horizontal(|ui| {
        ui.heading(RichText::new("Scoreline").strong());
        ui.separator();
        let (_, entered) = labelled_entry_ui(
            ui,
            "Server",
            &mut view.url_draft,
            260.0,
            "ws://host:port/ws",
        );
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
    commands
}

/// A text field with its label (so screen readers and tests find it by name); also says
/// whether Enter was pressed in it.
fn labelled_entry_ui(
    ui: &mut Ui,
    label: &str,
    text: &mut String,
    width: f32,
    hint: &str,
) -> (egui::Response, bool) {
    let label = ui.label(label);
    let field = ui
        .add(
            egui::TextEdit::singleline(text)
                .desired_width(width)
                .hint_text(hint),
        )
        .labelled_by(label.id);
    let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    (field, entered)
}

/// Connection status, round-trip time and the last problem.
pub fn status_bar_ui(ui: &mut Ui, session: &Session, now_ms: u64) -> Vec<Command> {
    let mut commands = Vec::new();
    ui.horizontal(|ui| {
        match session.link_state() {
            LinkState::Connected { .. } => {
                status_dot_ui(ui, LIVE_COLOUR, true);
                let connected = ui.colored_label(LIVE_COLOUR, "Connected");
                if let Some(text) = present::catch_up_label(&session.catch_up()) {
                    connected.on_hover_text(text);
                }
                ui.label(session.url());
                match session.rtt_millis() {
                    Some(rtt_millis) => ui.label(format!("RTT {rtt_millis} ms")),
                    None => ui.label("RTT …"),
                };
                if let Some(server) = session.server() {
                    ui.weak(&server.server);
                }
            }
            LinkState::Connecting { attempt, .. } => {
                status_dot_ui(ui, WARN_COLOUR, false);
                ui.colored_label(WARN_COLOUR, "Connecting…");
                ui.label(format!("{} (attempt {attempt})", session.url()));
            }
            LinkState::Waiting {
                attempt, reason, ..
            } => {
                let secs = session.retry_in_millis(now_ms).unwrap_or(0).div_ceil(1_000);
                status_dot_ui(ui, BAD_COLOUR, false);
                ui.colored_label(BAD_COLOUR, format!("Reconnecting in {secs} s"));
                ui.label(format!("(attempt {attempt}) — {reason}"));
                if ui.button("Retry now").clicked() {
                    commands.push(Command::ConnectNow);
                }
            }
            LinkState::Offline => {
                status_dot_ui(ui, BAD_COLOUR, false);
                ui.colored_label(BAD_COLOUR, "Offline");
                if ui.button("Connect").clicked() {
                    commands.push(Command::ConnectNow);
                }
            }
        }
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            let stale = session
                .scoreboard()
                .matches()
                .filter(|tracked| !session.is_fresh(tracked))
                .count();
            let count = session.scoreboard().len();
            ui.label(if count == 1 {
                "1 match".to_owned()
            } else {
                format!("{count} matches")
            });
            if stale > 0 {
                ui.colored_label(WARN_COLOUR, format!("{stale} not up to date"));
            }
            if let Some(problem) = session.last_problem() {
                ui.weak(problem).on_hover_text(format!(
                    "{} frames ignored since start",
                    session.ignored_frames()
                ));
            }
        });
    });
    commands
}

/// A small round light: filled when all is well, a ring otherwise. Painted rather than typed so it
/// needs no font that has the glyph.
fn status_dot_ui(ui: &mut Ui, colour: Color32, filled: bool) {
    let (rect, _) = ui.allocate_exact_size(Vec2::splat(12.0), Sense::hover());
    if filled {
        ui.painter().circle_filled(rect.center(), 5.0, colour);
    } else {
        ui.painter()
            .circle_stroke(rect.center(), 4.5, egui::Stroke::new(1.5, colour));
    }
}

/// The left panel: what is followed, and the server's catalogue to follow more.
pub fn follow_ui(ui: &mut Ui, session: &Session, view: &mut ViewState) -> Vec<Command> {
    let mut commands = Vec::new();
    ui.heading("Following");
    let follows = session.follows();
    if follows.is_empty() {
        ui.weak("Nothing yet: tick a sport, competition or match below.");
    }
    for topic in follows.topics() {
        ui.horizontal(|ui| {
            if ui
                .small_button("×")
                .on_hover_text("Stop following")
                .clicked()
            {
                commands.push(Command::Unfollow(topic.clone()));
            }
            ui.label(topic_title(session, topic));
        });
    }
    let invalid = ui.horizontal(|ui| {
        let (field, entered) = labelled_entry_ui(
            ui,
            "Topic",
            &mut view.topic_draft,
            150.0,
            "e.g. tennis/wimbledon",
        );
        let parsed = Topic::parse(view.topic_draft.trim());
        if (ui
            .add_enabled(parsed.is_ok(), egui::Button::new("Add"))
            .clicked()
            || entered)
            && let Ok(topic) = parsed.clone()
        {
            commands.push(Command::Follow(topic));
            view.topic_draft.clear();
        }
        let invalid = parsed.err().filter(|_| !view.topic_draft.trim().is_empty());
        if let Some(error) = &invalid {
            field.on_hover_text(error.to_string());
        }
        invalid
    });
    if let Some(error) = invalid.inner {
        ui.colored_label(WARN_COLOUR, format!("Not a topic: {error}"));
    }

    ui.separator();
    ui.horizontal(|ui| {
        ui.heading("Browse");
        if ui
            .add_enabled(session.is_connected(), egui::Button::new("Refresh"))
            .clicked()
        {
            commands.push(Command::RefreshCatalogue);
        }
    });
    let catalogue = session.catalogue();
    if catalogue.received_ms.is_none() {
        ui.weak("The server's catalogue appears once connected.");
    } else if catalogue.matches.is_empty() {
        ui.weak("The server has no matches yet.");
    }
    egui::ScrollArea::vertical()
        .id_salt("catalogue-scroll")
        .show(ui, |ui| {
            for sport in crate::session::catalogue_tree(catalogue) {
                let sport_topic = sport.topic.clone();
                commands.extend(follow_checkbox_ui(
                    ui,
                    session,
                    &sport_topic,
                    RichText::new(present::sport_name(sport_topic.as_str())).strong(),
                ));
                ui.indent(sport_topic.as_str(), |ui| {
                    for competition in &sport.competitions {
                        commands.extend(follow_checkbox_ui(
                            ui,
                            session,
                            &competition.topic,
                            RichText::new(&competition.name),
                        ));
                        let count = competition.matches.len();
                        egui::CollapsingHeader::new(if count == 1 {
                            "1 match".to_owned()
                        } else {
                            format!("{count} matches")
                        })
                        .id_salt(competition.topic.as_str())
                        .show(ui, |ui| {
                            for summary in &competition.matches {
                                let title =
                                    format!("{} v {}", summary.home.name, summary.away.name);
                                ui.horizontal(|ui| {
                                    commands.extend(follow_checkbox_ui(
                                        ui,
                                        session,
                                        summary.match_topic.topic(),
                                        RichText::new(title),
                                    ));
                                    let status = match summary.status {
                                        MatchStatus::Scheduled => "upcoming".to_owned(),
                                        status if status.is_in_progress() => format!(
                                            "live {}–{}",
                                            summary.score.home, summary.score.away
                                        ),
                                        _ => format!(
                                            "FT {}–{}",
                                            summary.score.home, summary.score.away
                                        ),
                                    };
                                    ui.weak(status);
                                });
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
        });
    commands
}

/// One "follow" tick box. A topic followed through a broader one shows ticked and cannot be
/// unticked on its own; the tooltip says why.
fn follow_checkbox_ui(
    ui: &mut Ui,
    session: &Session,
    topic: &Topic,
    label: RichText,
) -> Vec<Command> {
    let follows = session.follows();
    let broader = follows.covered_by_broader(topic);
    let mut followed = follows.contains(topic) || broader.is_some();
    let response = ui.add_enabled(broader.is_none(), egui::Checkbox::new(&mut followed, label));
    let response = match broader {
        Some(broader) => {
            response.on_disabled_hover_text(format!("Followed through {}", broader.as_str()))
        }
        None => response.on_hover_text(topic.as_str()),
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

/// A readable name for a followed topic: the competition or match name when known.
fn topic_title(session: &Session, topic: &Topic) -> String {
    let segments: Vec<&str> = topic.segments().collect();
    match segments.as_slice() {
        [sport] => present::sport_name(sport),
        [sport, competition] => {
            let name = session
                .catalogue()
                .matches
                .iter()
                .find(|m| m.match_topic.competition_slug() == *competition)
                .and_then(|m| m.competition.clone())
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

/// The scoreboard: filter box, then live, upcoming and finished sections grouped by sport and
/// competition.
pub fn scoreboard_ui(
    ui: &mut Ui,
    session: &Session,
    view: &mut ViewState,
    now_ms: u64,
) -> Vec<Command> {
    let mut commands = Vec::new();
    ui.horizontal(|ui| {
        let label = ui.label("Filter");
        ui.add(
            egui::TextEdit::singleline(&mut view.filter)
                .desired_width(320.0)
                .hint_text("Filter by team, competition or sport"),
        )
        .labelled_by(label.id);
        if !view.filter.is_empty() && ui.small_button("Clear filter").clicked() {
            view.filter.clear();
        }
    });
    ui.add_space(4.0);
    let board = session.scoreboard();
    if board.is_empty() {
        ui.add_space(24.0);
        ui.vertical_centered(|ui| {
            if session.follows().is_empty() {
                ui.label("Follow a sport, competition or match on the left to see its scores.");
            } else if session.is_connected() {
                ui.label("No matches under what you follow yet.");
            } else {
                ui.label("Waiting for the server…");
            }
        });
        return commands;
    }
    let sections = board.sections(&view.filter);
    if sections.is_empty() {
        ui.label(format!("No match matches “{}”.", view.filter.trim()));
        return commands;
    }
    egui::ScrollArea::vertical()
        .id_salt("scoreboard-scroll")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            for (section, groups) in sections {
                let count: usize = groups.iter().map(|group| group.matches.len()).sum();
                let title = RichText::new(format!("{} ({count})", section.title()))
                    .size(17.0)
                    .strong();
                let title = match section {
                    Section::Live => title.color(LIVE_COLOUR),
                    _ => title,
                };
                egui::CollapsingHeader::new(title)
                    .id_salt(section.title())
                    .default_open(true)
                    .show(ui, |ui| {
                        for group in groups {
                            ui.add_space(4.0);
                            ui.label(
                                RichText::new(format!(
                                    "{} {} · {}",
                                    present::sport_icon(group.sport),
                                    present::sport_name(
                                        group
                                            .matches
                                            .first()
                                            .map_or("", |m| m.snapshot.match_topic.sport_slug())
                                    ),
                                    group.competition
                                ))
                                .weak()
                                .strong(),
                            );
                            for tracked in group.matches {
                                commands.extend(match_row_ui(ui, session, tracked, now_ms));
                            }
                        }
                    });
                ui.add_space(6.0);
            }
        });
    commands
}

/// One scoreboard row: status or clock, home team, score, away team. The whole row opens the
/// match; its accessible name is the match title.
pub fn match_row_ui(
    ui: &mut Ui,
    session: &Session,
    tracked: &TrackedMatch,
    now_ms: u64,
) -> Vec<Command> {
    let snapshot = &tracked.snapshot;
    let fresh = session.is_fresh(tracked);
    let open = session
        .open_match()
        .is_some_and(|open| open.snapshot.match_topic == snapshot.match_topic);
    let title = present::match_title(snapshot);
    let row_height = 24.0;
    let background = ui.painter().add(egui::Shape::Noop);
    let inner = ui.horizontal(|ui| {
        ui.set_min_height(row_height);
        let label = present::status_label(snapshot, now_ms);
        let status_text = if snapshot.status.is_in_progress() {
            RichText::new(label).color(LIVE_COLOUR).strong()
        } else {
            RichText::new(label).weak()
        };
        fixed_width_ui(ui, 80.0, Align::Min, |ui| {
            ui.add(egui::Label::new(status_text).selectable(false));
        });
        fixed_width_ui(ui, 190.0, Align::Max, |ui| {
            red_cards_ui(ui, snapshot.cards.home.red);
            ui.add(
                egui::Label::new(team_text(snapshot, Side::Home))
                    .selectable(false)
                    .truncate(),
            );
        });
        let flash = tracked.flash_progress(now_ms);
        let (score_rect, _) = ui.allocate_exact_size(Vec2::new(96.0, row_height), Sense::hover());
        if let Some(progress) = flash {
            ui.painter().rect_filled(
                score_rect.shrink2(Vec2::new(4.0, 1.0)),
                4.0,
                FLASH_COLOUR.gamma_multiply(1.0 - progress),
            );
        }
        let mut score = RichText::new(present::score_label(snapshot))
            .monospace()
            .size(16.0)
            .strong();
        if flash.is_some_and(|progress| progress < 0.6) {
            score = score.color(Color32::BLACK);
        } else if !fresh {
            score = score.weak();
        }
        ui.put(score_rect, egui::Label::new(score).selectable(false));
        if snapshot.sport == Sport::Tennis
            && let Some(game) = snapshot.game
            && snapshot.status.is_in_progress()
        {
            ui.add(
                egui::Label::new(
                    RichText::new(format!(
                        "({}–{})",
                        game.call(Side::Home),
                        game.call(Side::Away)
                    ))
                    .monospace()
                    .weak(),
                )
                .selectable(false),
            );
        }
        fixed_width_ui(ui, 190.0, Align::Min, |ui| {
            ui.add(
                egui::Label::new(team_text(snapshot, Side::Away))
                    .selectable(false)
                    .truncate(),
            );
            red_cards_ui(ui, snapshot.cards.away.red);
        });
        if !fresh {
            let (text, hint) = if tracked.repairing {
                (
                    "↻ updating",
                    "A gap in this match's events was found; fetching a fresh snapshot.",
                )
            } else {
                (
                    "⏳ stale",
                    "Not confirmed since the connection was lost; may be behind.",
                )
            };
            ui.colored_label(WARN_COLOUR, text).on_hover_text(hint);
        }
    });
    let rect = inner.response.rect;
    let response = ui.interact(
        rect,
        egui::Id::unique(("match-row", snapshot.match_topic.as_str())),
        Sense::click(),
    );
    response.widget_info(|| WidgetInfo::selected(egui::Role::Button, true, open, &title));
    let visuals = ui.visuals();
    if open || response.hovered() {
        let fill = if open {
            visuals.selection.bg_fill.gamma_multiply(0.5)
        } else {
            visuals.widgets.hovered.weak_bg_fill
        };
        ui.painter().set(
            background,
            egui::Shape::rect_filled(rect.expand(2.0), 4.0, fill),
        );
    }
    let response = response.on_hover_cursor(egui::CursorIcon::PointingHand);
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

/// One small red card per player sent off, beside the team name, as fans know it from TV.
fn red_cards_ui(ui: &mut Ui, count: u32) {
    for _ in 0..count.min(5) {
        let (rect, response) = ui.allocate_exact_size(Vec2::new(8.0, 12.0), Sense::hover());
        ui.painter().rect_filled(rect, 1.0, BAD_COLOUR);
        response.on_hover_text(format!("{count} sent off"));
    }
}

fn team_text(snapshot: &MatchSnapshot, side: Side) -> RichText {
    let text = RichText::new(present::team_name(snapshot, side)).size(15.0);
    if snapshot.winner == Some(side) {
        text.strong()
    } else {
        text
    }
}

/// Lays `add` out in a box `width` wide, aligned left (`Align::Min`) or right (`Align::Max`),
/// so the rows of a group line up like a printed scoreboard.
fn fixed_width_ui(ui: &mut Ui, width: f32, align: Align, add: impl FnOnce(&mut Ui)) {
    let layout = match align {
        Align::Max => Layout::right_to_left(Align::Center),
        _ => Layout::left_to_right(Align::Center),
    };
    ui.allocate_ui_with_layout(Vec2::new(width, ui.available_height()), layout, |ui| {
        ui.set_width(width);
        add(ui);
    });
}

/// The open match: header, sport-specific score detail, the score progression and the timeline.
pub fn detail_ui(
    ui: &mut Ui,
    session: &Session,
    tracked: &TrackedMatch,
    now_ms: u64,
) -> Vec<Command> {
    let mut commands = Vec::new();
    let snapshot = &tracked.snapshot;
    if ui.input(|input| input.key_pressed(egui::Key::Escape)) {
        commands.push(Command::CloseMatch);
    }
    ui.horizontal(|ui| {
        ui.heading(present::match_title(snapshot));
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            if ui.button("Close").clicked() {
                commands.push(Command::CloseMatch);
            }
        });
    });
    let mut context = vec![crate::scoreboard::competition_name(snapshot)];
    context.extend(snapshot.venue.clone());
    ui.weak(context.join(" · "));
    if !session.is_fresh(tracked) {
        ui.colored_label(
            WARN_COLOUR,
            if tracked.repairing {
                "↻ Fetching a fresh snapshot after a gap in the events…"
            } else {
                "⏳ Possibly stale: not confirmed since the connection was lost."
            },
        );
    }
    ui.add_space(6.0);
    ui.vertical_centered(|ui| {
        ui.label(
            RichText::new(format!(
                "{}   {}   {}",
                present::team_name(snapshot, Side::Home),
                present::score_label(snapshot),
                present::team_name(snapshot, Side::Away)
            ))
            .size(22.0)
            .strong(),
        );
        let mut status = present::status_label(snapshot, now_ms);
        if snapshot.status.is_in_progress()
            && snapshot.period > 0
            && snapshot.sport != Sport::Tennis
        {
            status = format!("{status} · {}", snapshot.sport.period_name(snapshot.period));
        }
        ui.label(
            RichText::new(status).color(if snapshot.status.is_in_progress() {
                LIVE_COLOUR
            } else {
                ui.visuals().weak_text_color()
            }),
        );
    });
    ui.add_space(6.0);
    match snapshot.sport {
        Sport::Tennis => tennis_ui(ui, snapshot),
        _ => periods_ui(ui, snapshot),
    }
    if snapshot.sport == Sport::Football || snapshot.sport == Sport::Other {
        football_extras_ui(ui, snapshot);
    }
    ui.add_space(6.0);
    progression_ui(ui, snapshot);
    ui.add_space(6.0);
    timeline_ui(ui, snapshot);
    commands
}

/// Quarter (or half, or period) scores with a total column.
fn periods_ui(ui: &mut Ui, snapshot: &MatchSnapshot) {
    if snapshot.periods.is_empty() {
        return;
    }
    egui::Grid::new("periods")
        .striped(true)
        .spacing([14.0, 4.0])
        .show(ui, |ui| {
            ui.label("");
            for period in &snapshot.periods {
                ui.strong(short_period_name(snapshot.sport, period.period));
            }
            if snapshot.shootout.is_some() {
                ui.strong("Pens");
            }
            ui.strong("Total");
            ui.end_row();
            for side in [Side::Home, Side::Away] {
                ui.label(present::team_name(snapshot, side));
                for period in &snapshot.periods {
                    ui.monospace(period.score().get(side).to_string());
                }
                if let Some(shootout) = snapshot.shootout {
                    ui.monospace(shootout.get(side).to_string());
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

/// Sets (games per set, tie-break points in brackets) and the points of the game in progress.
fn tennis_ui(ui: &mut Ui, snapshot: &MatchSnapshot) {
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
                ui.label(present::team_name(snapshot, side));
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

/// Cards and running statistics.
fn football_extras_ui(ui: &mut Ui, snapshot: &MatchSnapshot) {
    let cards = snapshot.cards;
    if cards.home.yellow + cards.home.red + cards.away.yellow + cards.away.red > 0 {
        ui.label(format!(
            "Cards: {} {} yellow, {} red · {} {} yellow, {} red",
            snapshot.home.short(),
            cards.home.yellow,
            cards.home.red,
            snapshot.away.short(),
            cards.away.yellow,
            cards.away.red
        ));
    }
    if !snapshot.stats.is_empty() {
        egui::Grid::new("stats")
            .spacing([14.0, 2.0])
            .show(ui, |ui| {
                for (name, score) in &snapshot.stats {
                    ui.monospace(score.home.to_string());
                    ui.weak(name.replace('_', " "));
                    ui.monospace(score.away.to_string());
                    ui.end_row();
                }
            });
    }
}

/// The score over time, one line per side.
fn progression_ui(ui: &mut Ui, snapshot: &MatchSnapshot) {
    let series = present::progression(snapshot);
    ui.strong(format!("Score progression ({})", series.y_label));
    let mut plot = Plot::new(("progression", snapshot.match_topic.as_str()))
        .height(170.0)
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
            Line::new(
                present::team_name(snapshot, Side::Home).to_owned(),
                series.home,
            )
            .color(HOME_COLOUR)
            .width(2.0)
            // Score steps are vertical jumps; band aggregation would fill between them.
            .allow_band(false),
        );
        plot.line(
            Line::new(
                present::team_name(snapshot, Side::Away).to_owned(),
                series.away,
            )
            .color(AWAY_COLOUR)
            .width(2.0)
            // Score steps are vertical jumps; band aggregation would fill between them.
            .allow_band(false),
        );
    });
}

/// Key events, newest first; scores stand out, overturned ones are struck through.
fn timeline_ui(ui: &mut Ui, snapshot: &MatchSnapshot) {
    ui.strong("Timeline");
    if snapshot.timeline.is_empty() {
        ui.weak("Nothing has happened yet.");
        return;
    }
    egui::ScrollArea::vertical()
        .id_salt("timeline-scroll")
        .auto_shrink([false, true])
        .show(ui, |ui| {
            egui::Grid::new("timeline")
                .striped(true)
                .spacing([10.0, 3.0])
                .show(ui, |ui| {
                    for entry in snapshot.timeline.iter().rev() {
                        ui.monospace(present::entry_time(snapshot, entry));
                        let mut text = RichText::new(present::entry_text(snapshot, entry));
                        if entry.voided {
                            text = text.strikethrough().weak();
                        } else if present::is_scoring(entry) {
                            text = text.strong().color(match entry.kind.side() {
                                Some(Side::Away) => AWAY_COLOUR,
                                _ => HOME_COLOUR,
                            });
                        }
                        ui.label(text);
                        ui.end_row();
                    }
                });
        });
}

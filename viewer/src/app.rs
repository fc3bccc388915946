//! The eframe application: loads and saves [`Settings`], drains the socket into the
//! [`Session`] once per frame, draws with [`crate::ui`], applies the fan's commands, and sleeps
//! until the next thing that can change the screen.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eframe::egui;

use crate::connection::{Backoff, Jitter, Link};
use crate::follow::FollowList;
use crate::session::Session;
use crate::settings::{STORAGE_KEY, Settings};
use crate::socket::Driver;
use crate::ui::{ViewState, viewer_ui};

/// How long after a frame from the server arrives the screen is redrawn, so that frames
/// arriving meanwhile are drawn in the same redraw. A quarter of a second is below what a fan
/// notices on a score (a TV picture is seconds behind the stadium) and caps server-driven
/// redraws at four a second however busy the feeds are (a basketball game scores every few
/// seconds; every live match sends clock readings). Measured effect: `docs/viewer.md`.
pub const SOCKET_REDRAW_DELAY: Duration = Duration::from_millis(250);

/// Choices from the command line that override saved settings for this run.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Server to use instead of the saved one.
    pub url: Option<String>,
    /// Topics to follow in addition to the saved ones.
    pub follow: Vec<scoreline_protocol::Topic>,
}

/// The running viewer.
pub struct ViewerApp {
    /// The model.
    session: Session,
    /// What the fan is typing.
    view: ViewState,
    /// The socket adapter.
    driver: Driver,
}

/// Milliseconds since the Unix epoch, the unit of every timestamp in the protocol.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

impl ViewerApp {
    /// Builds the app from saved settings and the command line, and starts connecting.
    pub fn new(cc: &eframe::CreationContext<'_>, options: StartOptions) -> ViewerApp {
        let saved = cc
            .storage
            .and_then(|storage| storage.get_string(STORAGE_KEY));
        // A first run (nothing saved, nothing asked for) follows everything the server has,
        // so the first look is a scoreboard, not an empty window.
        let first_run = saved.is_none() && options.follow.is_empty();
        let settings = Settings::from_json(saved.as_deref());
        let url = options.url.unwrap_or(settings.server_url.clone());
        let mut follows: FollowList = settings.follow_list();
        for topic in options.follow {
            follows.follow(topic);
        }
        let now = now_ms();
        let link = Link::new(
            Backoff::default(),
            Jitter::new(now ^ u64::from(std::process::id())),
        );
        let mut session = Session::new(url, follows, link).with_delay_secs(settings.delay_secs);
        if first_run {
            session.follow_everything_once_listed();
        }
        session.start(now);
        crate::ui::set_style(&cc.egui_ctx);
        let ctx = cc.egui_ctx.clone();
        // The socket thread wakes the UI when frames arrive; otherwise the UI sleeps. Frames
        // that arrive close together are drawn together: a busy feed (a basketball game, clock
        // readings of several matches) would otherwise cost a full redraw per frame.
        // egui keeps the earliest redraw asked for, so the first frame after a redraw sets the
        // time and later ones join it.
        let mut driver = Driver::new(move || ctx.request_repaint_after(SOCKET_REDRAW_DELAY));
        driver.perform(&mut session, now);
        ViewerApp {
            view: ViewState::new(&session),
            session,
            driver,
        }
    }
}

impl eframe::App for ViewerApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        let now = now_ms();
        self.driver.pump(&mut self.session, now);
        if let Some(wake_ms) = self.session.next_repaint_ms(now) {
            ctx.request_repaint_after(Duration::from_millis(wake_ms.saturating_sub(now)));
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let now = now_ms();
        let commands = viewer_ui(ui, &self.session, &mut self.view, now);
        if !commands.is_empty() {
            // The frame just drawn shows the state before the fan's request: draw the next.
            ui.ctx().request_repaint();
        }
        for command in commands {
            self.session.command(command, now);
        }
        self.driver.perform(&mut self.session, now);
    }

    /// The panels' colour: they paint no fill of their own (see [`crate::ui::BACKGROUND`]).
    fn clear_color(&self, _visuals: &egui::Visuals) -> [f32; 4] {
        crate::ui::BACKGROUND.to_normalized_gamma_f32()
    }

    /// Save often: the settings are tiny, and a follow list lost to a crash or a kill (the
    /// window's close button is not the only way a desktop app ends) would annoy.
    fn auto_save_interval(&self) -> Duration {
        Duration::from_secs(5)
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        let settings = Settings::of(
            self.session.url(),
            self.session.follows(),
            self.session.delay_secs(),
        );
        storage.set_string(STORAGE_KEY, settings.to_json());
    }
}

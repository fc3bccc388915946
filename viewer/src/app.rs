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
        let mut session = Session::new(url, follows, link);
        session.start(now);
        let ctx = cc.egui_ctx.clone();
        // The socket thread wakes the UI on every event; otherwise the UI sleeps.
        let mut driver = Driver::new(move || ctx.request_repaint());
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
        for command in commands {
            self.session.command(command, now);
        }
        self.driver.perform(&mut self.session, now);
    }

    /// Save often: the settings are tiny, and a follow list lost to a crash or a kill (the
    /// window's close button is not the only way a desktop app ends) would annoy.
    fn auto_save_interval(&self) -> Duration {
        Duration::from_secs(5)
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        let settings = Settings {
            server_url: self.session.url().to_owned(),
            follows: self.session.follows().to_strings(),
        };
        storage.set_string(STORAGE_KEY, settings.to_json());
    }
}

//! What the viewer remembers between runs: the server address, what the fan follows (topics
//! and teams) and the spoiler delay ("sync with my stream"). Kept apart from runtime state (the scoreboard, the connection) so that nothing
//! transient is ever saved.

use serde::{Deserialize, Serialize};

use crate::follow::{FollowList, TeamFollow};
use crate::session::DEFAULT_URL;

/// The key the settings are stored under in eframe's storage.
pub const STORAGE_KEY: &str = "scoreline-viewer/settings";

/// Persisted settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// WebSocket URL of the service.
    pub server_url: String,
    /// Followed topics, as strings so an old or hand-edited file with a bad topic still loads.
    pub follows: Vec<String>,
    /// Followed teams, as `sport:name` (e.g. `football:Arsenal`).
    pub teams: Vec<String>,
    /// The spoiler delay, in seconds (0: live). A fan who watches on a stream behind the
    /// stadium watches the same way tomorrow.
    pub delay_secs: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            server_url: DEFAULT_URL.to_owned(),
            follows: Vec::new(),
            teams: Vec::new(),
            delay_secs: 0,
        }
    }
}

impl Settings {
    /// The follow list, skipping (and logging) topics and teams that no longer parse.
    pub fn follow_list(&self) -> FollowList {
        let mut list = FollowList::from_strings(self.follows.iter().map(String::as_str));
        for text in &self.teams {
            match TeamFollow::from_setting(text) {
                Some(team) => {
                    list.follow_team(team);
                }
                None => tracing::warn!(team = %text, "ignoring saved team"),
            }
        }
        list
    }

    /// The settings to save for this server, follow list and spoiler delay.
    pub fn of(server_url: &str, follows: &FollowList, delay_secs: u32) -> Settings {
        Settings {
            server_url: server_url.to_owned(),
            follows: follows.to_strings(),
            teams: follows.teams().map(TeamFollow::to_setting).collect(),
            delay_secs,
        }
    }

    /// Reads settings from their stored JSON; a missing or unreadable entry gives the defaults,
    /// so a corrupt file never keeps the viewer from starting.
    pub fn from_json(text: Option<&str>) -> Settings {
        match text.map(serde_json::from_str::<Settings>) {
            Some(Ok(settings)) => settings,
            Some(Err(error)) => {
                tracing::warn!(%error, "ignoring unreadable saved settings");
                Settings::default()
            }
            None => Settings::default(),
        }
    }

    /// The settings as JSON for storage.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_bad_input_gives_defaults() {
        let settings = Settings {
            server_url: "ws://example.invalid/ws".into(),
            follows: vec!["football".into(), "tennis/wimbledon".into()],
            teams: vec!["basketball:Lakers".into()],
            delay_secs: 40,
        };
        assert_eq!(
            Settings::of(&settings.server_url, &settings.follow_list(), 40),
            settings
        );
        assert_eq!(Settings::from_json(Some(&settings.to_json())), settings);
        assert_eq!(Settings::from_json(Some("{not json")), Settings::default());
        assert_eq!(Settings::from_json(None), Settings::default());
        let partial = Settings::from_json(Some(
            r#"{"follows":["tennis","Bad Topic"],"teams":["nonsense","tennis:Coco Gauff"]}"#,
        ));
        assert_eq!(partial.server_url, DEFAULT_URL);
        assert_eq!(
            partial.delay_secs, 0,
            "settings saved before the delay existed are live"
        );
        let list = partial.follow_list();
        assert_eq!(list.to_strings(), vec!["tennis"]);
        assert_eq!(list.teams().count(), 1);
    }
}

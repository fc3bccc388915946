//! `scoreline-viewer`: the desktop viewer. Parses the command line, sets up logging and hands
//! over to [`scoreline_viewer::app::ViewerApp`].

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use eframe::egui;
use scoreline_protocol::Topic;
use scoreline_viewer::app::{StartOptions, ViewerApp};

/// Follow live scores from a Scoreline service.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// WebSocket URL of the service. Defaults to the last one used, or the local demo
    /// (ws://127.0.0.1:8080/ws) on first run.
    #[arg(long, env = "SCORELINE_URL")]
    url: Option<String>,

    /// Follow this topic (a sport, `sport/competition` or a match), in addition to those saved.
    /// Repeat for several.
    #[arg(long, value_name = "TOPIC", value_parser = parse_topic)]
    follow: Vec<Topic>,
}

fn parse_topic(text: &str) -> Result<Topic, String> {
    Topic::parse(text).map_err(|error| error.to_string())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("scoreline-viewer: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,scoreline_viewer=info".into()),
        )
        .init();
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Scoreline")
            .with_app_id("scoreline-viewer")
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([800.0, 480.0]),
        ..Default::default()
    };
    let start = StartOptions {
        url: args.url,
        follow: args.follow,
    };
    eframe::run_native(
        "Scoreline",
        options,
        Box::new(move |cc| Ok(Box::new(ViewerApp::new(cc, start)))),
    )
    .map_err(|error| anyhow::anyhow!("{error}"))
    .context("the viewer window could not be opened")
}

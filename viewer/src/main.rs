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

    /// Size of the window in logical pixels, e.g. 1440x900 (a screenshot of a whole screen).
    #[arg(long, env = "SCORELINE_WINDOW_SIZE", value_name = "WIDTHxHEIGHT", value_parser = parse_size)]
    window_size: Option<[f32; 2]>,
}

fn parse_topic(text: &str) -> Result<Topic, String> {
    Topic::parse(text).map_err(|error| error.to_string())
}

/// Reads `WIDTHxHEIGHT` in pixels; both at least the smallest window the layout is made for.
fn parse_size(text: &str) -> Result<[f32; 2], String> {
    let (width, height) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{text:?} is not WIDTHxHEIGHT, e.g. 1440x900"))?;
    let number = |part: &str| {
        part.trim()
            .parse::<u16>()
            .map_err(|_| format!("{part:?} is not a number of pixels"))
    };
    let (width, height) = (number(width)?, number(height)?);
    if width < MIN_WINDOW[0] as u16 || height < MIN_WINDOW[1] as u16 {
        return Err(format!(
            "the window must be at least {}x{}",
            MIN_WINDOW[0], MIN_WINDOW[1]
        ));
    }
    Ok([f32::from(width), f32::from(height)])
}

/// The smallest window the layout holds at: a phone-sized column.
const MIN_WINDOW: [f32; 2] = [360.0, 400.0];

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
            .with_inner_size(args.window_size.unwrap_or([1280.0, 800.0]))
            .with_min_inner_size(MIN_WINDOW),
        // Dithering hides banding in gradients, which this app has none of; it costs a little
        // on every pixel of every frame, which software rendering pays in CPU.
        dithering: false,
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

//! `feed-replayer`: replays recorded matches live into Scoreline, and validates, records,
//! generates and imports the fixtures it plays. See `fixtures/README.md` and `docs/replayer.md`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use feed_replayer::fixture::{self, Fixture, FixtureError};
use feed_replayer::plan::{Pace, Plan, parse_from};
use feed_replayer::publish::{
    DEFAULT_CHANNEL_PREFIX, HttpPublisher, Publisher, RedisMode, RedisPublisher,
};
use feed_replayer::record::{self, RecordOptions};
use feed_replayer::replay::{ReplayOptions, describe, replay_all};
use feed_replayer::{generate, statsbomb, validate};
use indicatif::{MultiProgress, ProgressDrawTarget};
use scoreline_protocol::{MatchTopic, Topic};
use tokio_util::sync::CancellationToken;

/// Replays recorded matches live into Scoreline.
#[derive(Debug, Parser)]
#[command(name = "feed-replayer", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Publish fixtures live, every match at once, on the recording's schedule.
    Replay(ReplayArgs),
    /// Check fixtures: format, ordering, and that the events give the recorded result.
    Validate {
        /// Fixture files or directories (searched for *.jsonl).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Subscribe to the live channels and write each match that passes as a fixture.
    Record(RecordArgs),
    /// Write a synthetic match, the same one for the same seed.
    Generate(GenerateArgs),
    /// Convert data from another source into a fixture.
    #[command(subcommand)]
    Import(ImportCommand),
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// Fixture files or directories (searched recursively for *.jsonl).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Redis to publish into: redis://host:port/db, or
    /// redis+sentinel://host:port,host:port,…/master-name[/db] for a master kept by Redis
    /// Sentinel (publishing follows its failovers).
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379/")]
    redis_url: String,
    /// Channel prefix; events go to <prefix><match topic>.
    #[arg(long, default_value = DEFAULT_CHANNEL_PREFIX)]
    channel_prefix: String,
    /// Prefix of the keys holding each match's seq and history, as the service is configured.
    #[arg(long, env = "SCORELINE_KEY_PREFIX", default_value = "scoreline:")]
    key_prefix: String,
    /// Events kept in each match's history in Redis; older ones are trimmed.
    #[arg(long, default_value_t = scoreline_feed::Layout::default().history_len)]
    history_len: usize,
    /// Best-effort plain PUBLISH with the replayer's own seq and epoch, instead of the atomic
    /// numbering script: no history is kept, so whoever misses an event cannot get it back.
    #[arg(long, conflicts_with = "http")]
    plain: bool,
    /// Publish through the service's HTTP API at this base URL instead of Redis.
    #[arg(long, value_name = "URL", requires = "token")]
    http: Option<String>,
    /// Bearer token for --http.
    #[arg(long, env = "SCORELINE_PUBLISH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Recording time per wall time: 1 is real time, 60 plays a match minute per second.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Start this far into each match: football's game clock (70m is the 70th minute), other
    /// sports' time since kickoff. 45m30s, 1h and a bare number of minutes work too. Earlier
    /// events are published at once, so the state so far is there from the start.
    #[arg(long, value_parser = parse_from, value_name = "MATCH_TIME")]
    from: Option<u64>,
    /// Start each match again when it ends, in a new epoch, until ctrl-c.
    #[arg(long = "loop")]
    looping: bool,
    /// Seconds to wait between a match's end and its next round with --loop.
    #[arg(long, default_value_t = 10)]
    loop_pause_secs: u64,
    /// Print events as JSON lines on stdout instead of publishing.
    #[arg(long)]
    dry_run: bool,
    /// How long to keep retrying a broker that went away before giving up.
    #[arg(long, default_value_t = 30)]
    retry_secs: u64,
    /// Publish a clock reading every this many seconds of game clock while a period runs, so
    /// displays keep time at any --speed (0: only the fixture's own events).
    #[arg(long, default_value_t = 60)]
    clock_every_secs: u32,
}

#[derive(Debug, Args)]
struct RecordArgs {
    /// Directory to write fixtures into (as <sport>/<competition>/<match>.jsonl).
    #[arg(long)]
    out: PathBuf,
    /// Record only matches under this topic prefix, e.g. football or football/world-cup.
    #[arg(long, value_name = "PREFIX")]
    topic: Option<String>,
    /// Redis to subscribe to (redis://… or redis+sentinel://…, as for replay).
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379/")]
    redis_url: String,
    /// Channel prefix the feeds publish under.
    #[arg(long, default_value = DEFAULT_CHANNEL_PREFIX)]
    channel_prefix: String,
    /// Multiply recorded offsets by this, to undo the --speed of a replay being recorded.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Stop after this many matches have ended and been written.
    #[arg(long)]
    matches: Option<usize>,
}

#[derive(Debug, Args)]
struct GenerateArgs {
    /// The sport.
    #[arg(long, value_enum)]
    sport: SportArg,
    /// Seed: the same seed gives the same match.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Match topic (default: <sport>/synthetic/<home>-<away>-<seed>).
    #[arg(long)]
    topic: Option<String>,
    /// Tennis: the real set scores to fill in point by point, e.g. 6-4,6-7(5),7-5.
    #[arg(long, value_name = "SETS")]
    sets: Option<String>,
    /// Tennis: best of 3 or 5 sets.
    #[arg(long)]
    best_of: Option<u8>,
    /// Tennis: the final-set rule.
    #[arg(long, value_enum)]
    final_set: Option<FinalSetArg>,
    /// Basketball: the real quarter scores to fill in play by play, e.g. 22-23,20-26,33-26,18-14.
    #[arg(long, value_name = "QUARTERS")]
    quarters: Option<String>,
    /// Home team or player, as "Name" or "Name:CODE".
    #[arg(long)]
    home: Option<String>,
    /// Away team or player, as "Name" or "Name:CODE".
    #[arg(long)]
    away: Option<String>,
    /// Kickoff of the match being filled in, RFC 3339 (2016-06-20T01:00:00Z).
    #[arg(long, value_parser = parse_kickoff)]
    kickoff: Option<u64>,
    /// Display name of the competition.
    #[arg(long)]
    competition: Option<String>,
    /// Where it is played.
    #[arg(long)]
    venue: Option<String>,
    /// Write here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Reads an RFC 3339 time as milliseconds since the Unix epoch.
fn parse_kickoff(text: &str) -> Result<u64, String> {
    let time = humantime::parse_rfc3339_weak(text)
        .map_err(|error| format!("{text:?} is not a time like 2016-06-20T01:00:00Z: {error}"))?;
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| format!("{text} is before 1970"))?;
    u64::try_from(since.as_millis()).map_err(|_| format!("{text} is too far ahead"))
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SportArg {
    Football,
    Basketball,
    Tennis,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FinalSetArg {
    /// A first-to-7 tie-break at 6-6, as in every other set.
    TiebreakTo7,
    /// A first-to-10 tie-break at 6-6 (the Grand Slam rule since 2022).
    TiebreakTo10,
    /// No tie-break: play on until one player leads by two games.
    Advantage,
    /// A first-to-7 tie-break at 12-12 (Wimbledon 2019 to 2021).
    #[value(name = "tiebreak-at-12-all")]
    TiebreakAt12,
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// A StatsBomb open-data events file (events/<match_id>.json).
    Statsbomb {
        /// The events file.
        events: PathBuf,
        /// The matching lineups file, for team names when the events lack them.
        #[arg(long)]
        lineups: Option<PathBuf>,
        /// Match topic for the fixture, e.g. football/world-cup/arg-fra-2022-12-18.
        #[arg(long)]
        topic: String,
        /// Kickoff time in milliseconds since the Unix epoch (StatsBomb events carry none).
        #[arg(long, default_value_t = 0)]
        kickoff_ms: u64,
        /// Display name of the competition.
        #[arg(long)]
        competition: Option<String>,
        /// Write here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        // `replay --dry-run | head`: the reader has all it wanted; that is not a failure.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { paths } => validate_files(&paths),
        Command::Replay(args) => runtime()?.block_on(replay(args)),
        Command::Record(args) => runtime()?.block_on(record(args)),
        Command::Generate(args) => generate(args),
        Command::Import(ImportCommand::Statsbomb {
            events,
            lineups,
            topic,
            kickoff_ms,
            competition,
            out,
        }) => {
            let topic = MatchTopic::parse(&topic).with_context(|| format!("--topic {topic}"))?;
            let events_text = read_text(&events)?;
            let lineups_text = lineups.as_deref().map(read_text).transpose()?;
            let fixture = statsbomb::import(
                &events_text,
                lineups_text.as_deref(),
                statsbomb::ImportOptions {
                    match_topic: topic,
                    kickoff_ms,
                    competition,
                    source: format!("imported from StatsBomb events file {}", file_name(&events)),
                },
            )
            .with_context(|| format!("importing {}", events.display()))?;
            write_fixture(&fixture, out.as_deref())
        }
    }
}

/// A token cancelled by ctrl-c (SIGINT) or SIGTERM, so a terminal, `timeout`, systemd and
/// container runtimes all stop a replay or recording cleanly.
fn cancel_on_signal() -> CancellationToken {
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut terminate) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = terminate.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        on_signal.cancel();
    });
    cancel
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Every `*.jsonl` file named or under a named directory, sorted so runs are repeatable.
fn fixture_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let metadata =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if metadata.is_dir() {
            let mut found = Vec::new();
            collect_jsonl(path, &mut found, 0)?;
            if found.is_empty() {
                bail!("{} holds no *.jsonl fixtures", path.display());
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn collect_jsonl(dir: &Path, found: &mut Vec<PathBuf>, depth: usize) -> anyhow::Result<()> {
    // Fixture trees are a few levels deep; a bound keeps a symlink loop from recursing forever.
    if depth > 8 {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_jsonl(&path, found, depth + 1)?;
        } else if path.extension().is_some_and(|ext| ext == "jsonl") {
            found.push(path);
        }
    }
    Ok(())
}

/// Reads and fully checks every fixture, printing each problem as `file:line: message`.
fn load_valid(paths: &[PathBuf]) -> anyhow::Result<Result<Vec<Fixture>, usize>> {
    let files = fixture_files(paths)?;
    let mut fixtures = Vec::with_capacity(files.len());
    let mut invalid = 0;
    for file in &files {
        let checked = fixture::read(file).and_then(|fixture| {
            validate::check(&fixture)
                .map(|_| fixture)
                .map_err(|problems| FixtureError {
                    path: file.display().to_string(),
                    problems,
                })
        });
        match checked {
            Ok(fixture) => fixtures.push(fixture),
            Err(error) => {
                invalid += 1;
                eprintln!("{error}");
            }
        }
    }
    Ok(if invalid == 0 {
        Ok(fixtures)
    } else {
        Err(invalid)
    })
}

fn validate_files(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let files = fixture_files(paths)?;
    let mut invalid = 0;
    for file in &files {
        let checked = fixture::read(file).and_then(|fixture| {
            validate::check(&fixture).map_err(|problems| FixtureError {
                path: file.display().to_string(),
                problems,
            })
        });
        match checked {
            Ok(snapshot) => println!("ok   {}  {}", file.display(), describe(&snapshot)),
            Err(error) => {
                invalid += 1;
                eprintln!("{error}");
            }
        }
    }
    if invalid > 0 {
        bail!("{invalid} of {} fixtures are invalid", files.len());
    }
    println!("{} fixtures valid", files.len());
    Ok(ExitCode::SUCCESS)
}

async fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let pace = Pace::new(args.speed, args.from.unwrap_or(0)).context("--speed")?;
    let fixtures = match load_valid(&args.paths)? {
        Ok(fixtures) => fixtures,
        Err(invalid) => bail!("{invalid} fixture(s) are invalid; nothing was published"),
    };
    let mut plans = Vec::with_capacity(fixtures.len());
    let mut topics = std::collections::HashSet::new();
    for fixture in &fixtures {
        if !topics.insert(fixture.header.match_topic.clone()) {
            bail!(
                "two fixtures publish to {}; give each match its own topic",
                fixture.header.match_topic
            );
        }
        let plan = Plan::of(fixture).map_err(|problem| anyhow::anyhow!("{problem}"))?;
        plans.push(plan.with_clock_ticks(args.clock_every_secs));
    }
    let publisher = if args.dry_run {
        Publisher::Stdout
    } else if let Some(url) = &args.http {
        let token = args.token.as_deref().unwrap_or_default();
        let publisher = HttpPublisher::new(url, token);
        publisher
            .check_reachable()
            .await
            .context("cannot reach the service (is it running? check --http)")?;
        Publisher::Http(publisher)
    } else {
        let mode = if args.plain {
            RedisMode::Plain {
                channel_prefix: args.channel_prefix.clone(),
            }
        } else {
            RedisMode::Numbered(scoreline_feed::Layout {
                channel_prefix: args.channel_prefix.clone(),
                key_prefix: args.key_prefix.clone(),
                history_len: args.history_len.max(1),
            })
        };
        // A URL that cannot work is said so, not reported as an unreachable Redis.
        scoreline_feed::RedisTarget::parse(&args.redis_url).context("--redis-url")?;
        Publisher::Redis(Box::new(
            RedisPublisher::connect(&args.redis_url, mode)
                .await
                .context("cannot reach Redis (is it running? set --redis-url, or use --http or --dry-run)")?,
        ))
    };
    let progress = if args.dry_run {
        MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
    } else {
        MultiProgress::new()
    };
    let cancel = cancel_on_signal();
    let options = ReplayOptions {
        pace,
        looping: args.looping,
        loop_pause: Duration::from_secs(args.loop_pause_secs),
        retry_for: Duration::from_secs(args.retry_secs),
    };
    let outcomes = replay_all(plans, Arc::new(publisher), options, cancel, &progress).await?;
    let published: u64 = outcomes.iter().map(|outcome| outcome.published).sum();
    let stopped = outcomes.iter().any(|outcome| outcome.cancelled);
    eprintln!(
        "{} {published} events of {} matches",
        if stopped {
            "stopped by a signal after"
        } else {
            "published"
        },
        outcomes.len()
    );
    Ok(ExitCode::SUCCESS)
}

async fn record(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let topic = args
        .topic
        .as_deref()
        .map(Topic::parse)
        .transpose()
        .context("--topic")?;
    let options = RecordOptions {
        out_dir: args.out,
        topic,
        channel_prefix: args.channel_prefix,
        time_scale: args.time_scale,
        stop_after_matches: args.matches,
    };
    let cancel = cancel_on_signal();
    let redis = scoreline_feed::RedisConnection::open(
        &args.redis_url,
        scoreline_feed::ConnectionSettings::default(),
    )
    .context("--redis-url")?;
    let summary = record::record(&redis, &options, cancel, |written| {
        eprintln!("wrote {}", written.display());
    })
    .await?;
    eprintln!(
        "recorded {} matches ({} events, {} malformed messages skipped)",
        summary.written.len(),
        summary.events,
        summary.skipped
    );
    Ok(ExitCode::SUCCESS)
}

fn generate(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let team = |given: &Option<String>| given.as_deref().map(generate::parse_team);
    let request = generate::Request {
        seed: args.seed,
        topic: args
            .topic
            .as_deref()
            .map(MatchTopic::parse)
            .transpose()
            .context("--topic")?,
        home: team(&args.home),
        away: team(&args.away),
    };
    let mut fixture = match args.sport {
        SportArg::Football => generate::football(&request)?,
        SportArg::Basketball => {
            let quarters = args
                .quarters
                .as_deref()
                .map(generate::parse_quarters)
                .transpose()
                .context("--quarters")?;
            generate::basketball(&request, quarters.as_deref())?
        }
        SportArg::Tennis => {
            let sets = args
                .sets
                .as_deref()
                .map(generate::parse_sets)
                .transpose()
                .context("--sets")?;
            let mut format = scoreline_protocol::TennisFormat::default();
            if let Some(best_of) = args.best_of {
                format.best_of = best_of;
            }
            if let Some(final_set) = args.final_set {
                format.final_set = match final_set {
                    FinalSetArg::TiebreakTo7 => scoreline_protocol::FinalSet::TiebreakTo7,
                    FinalSetArg::TiebreakTo10 => scoreline_protocol::FinalSet::TiebreakTo10,
                    FinalSetArg::Advantage => scoreline_protocol::FinalSet::Advantage,
                    FinalSetArg::TiebreakAt12 => scoreline_protocol::FinalSet::TiebreakAt12,
                };
            }
            generate::tennis(&request, format, sets.as_deref())?
        }
    };
    if let Some(kickoff_ms) = args.kickoff {
        fixture.header.kickoff_ms = kickoff_ms;
    }
    if args.competition.is_some() {
        fixture.header.competition = args.competition;
    }
    if args.venue.is_some() {
        fixture.header.venue = args.venue;
    }
    validate::check(&fixture).map_err(|problems| {
        anyhow::anyhow!("generated fixture is invalid (a bug): {problems:?}")
    })?;
    write_fixture(&fixture, args.out.as_deref())
}

fn write_fixture(fixture: &Fixture, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let text = fixture.to_jsonl();
    match out {
        Some(path) => {
            if let Some(parent) = path.parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    let metadata =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if metadata.len() > statsbomb::MAX_INPUT_BYTES {
        bail!(
            "{} is {} bytes; at most {} are read",
            path.display(),
            metadata.len(),
            statsbomb::MAX_INPUT_BYTES
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

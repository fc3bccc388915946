//! `scoreline-service`: parses the configuration, sets up logging, and runs the service until
//! ctrl-c or SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use scoreline_service::startup::RunError;
use scoreline_service::{Application, Config, telemetry};

fn main() -> ExitCode {
    let config = Config::parse();
    telemetry::init_logging();
    // This thread only waits for a signal and supervises; the workers serve (`workers`).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        // A supervised task that stopped was logged with its cause when it happened.
        Err(error) if matches!(error.downcast_ref(), Some(RunError::TaskStopped(_))) => {
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let application = Application::build(config).await?;
    Ok(application.run_until(shutdown_signal()).await?)
}

/// Completes on ctrl-c or SIGTERM (what `docker stop` and systemd send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

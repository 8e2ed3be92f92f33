//! The `switchyard` command: `--config FILE` runs the pooler, `--check` validates the config
//! and exits. SIGTERM/SIGINT drain sessions and exit.

#![forbid(unsafe_code)]

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use switchyard::app::App;
use switchyard::app::Server;
use switchyard::config::{Config, LogFormat};

/// jemalloc rather than glibc's malloc: tokio aligns each task and each socket's registration
/// to 128 bytes, which glibc serves by over-allocating and splitting (idle clients cost
/// 1.09 KB each with glibc, 0.80 KB with jemalloc, whose size classes are aligned as they
/// are), and the hot path runs ~6% fewer instructions per transaction (callgrind).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "PostgreSQL connection pooler and read/write router"
)]
struct Cli {
    /// Path of the TOML configuration file.
    #[arg(long, short = 'c', default_value = "config/switchyard.toml")]
    config: PathBuf,
    /// Validate the configuration and exit.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchyard: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.operations.log_format);
    if config.secrets_in_file {
        switchyard::util::files::warn_if_others_can_read(
            &cli.config,
            "the config file (it holds passwords)",
        );
    }
    let workers = config.worker_thread_count();
    let listen = config.listen;
    let app = match App::new(config) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("switchyard: config {}: {e}", cli.config.display());
            return ExitCode::from(2);
        }
    };
    if cli.check {
        println!("switchyard: {} is valid", cli.config.display());
        return ExitCode::SUCCESS;
    }
    app.set_config_path(cli.config.clone());
    // One worker: a single-threaded runtime (no work stealing, no cross-thread wake-ups).
    let mut rt = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("switchyard: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let server = match Server::start(app.clone(), listen).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("switchyard: cannot listen on {listen}: {e}");
                return ExitCode::FAILURE;
            }
        };
        tokio::spawn(reload_on_sighup(server.app.clone()));
        tokio::select! {
            () = wait_for_signal() => tracing::info!("signal received: draining"),
            // The console's SHUTDOWN.
            _ = wait_shutdown(server.app.shutdown_signal()) => tracing::info!("SHUTDOWN: draining"),
        }
        server.stop().await;
        ExitCode::SUCCESS
    })
}

/// Logs to stdout, filtered by RUST_LOG (default `info`): text, or one JSON object a line.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => logs.json().with_current_span(false).init(),
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init(),
    }
}

/// SIGHUP reloads the config file (an invalid one changes nothing; the error is logged).
async fn reload_on_sighup(app: std::sync::Arc<App>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading the config file");
        let _ = app.reload();
    }
}

async fn wait_shutdown(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

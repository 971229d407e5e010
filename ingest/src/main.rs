//! `vantage-ingest` command line: `run` the server or `check-config`.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use vantage_ingest::{config, startup::Application};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "vantage-ingest", version, about = "RUM ingest server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Run {
        #[arg(short, long, default_value = "config/ingest.yaml")]
        config: PathBuf,
        /// Listen address (overrides `listen` in the config).
        #[arg(long)]
        listen: Option<String>,
        /// Log format: json or text.
        #[arg(long, default_value = "json")]
        log_format: String,
    },
    /// Validate the config file and exit (0 when valid).
    CheckConfig {
        #[arg(short, long, default_value = "config/ingest.yaml")]
        config: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::CheckConfig { config } => match config::load(&config) {
            Ok(s) => {
                println!("{}: ok ({} sites)", config.display(), s.sites.len());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Run {
            config,
            listen,
            log_format,
        } => {
            vantage_common::logging::init_with(
                &log_format,
                vantage_ingest::protocol_errors::ProtocolErrorLog,
            );
            let mut settings = match config::load(&config) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            if let Some(l) = listen {
                settings.listen = l;
            }
            match run(settings).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("vantage-ingest: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn run(settings: config::Settings) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind(&settings.listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
    // The bound address, so that `listen: 127.0.0.1:0` tells which port it got.
    let bound = listener.local_addr()?;
    tracing::info!(listen = %bound, "vantage-ingest listening");
    let (trigger, shutdown) = vantage_common::shutdown::channel();
    let app = Application::build(settings, listener).await?;
    tokio::spawn(async move {
        vantage_common::shutdown::os_signal().await;
        trigger.trigger();
    });
    app.run(shutdown).await
}

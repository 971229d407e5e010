//! `vantage-agent`: command-line wiring only (run, check-config, once).

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use vantage_agent::{app, report};

#[derive(Parser)]
#[command(
    name = "vantage-agent",
    version,
    about = "Synthetic monitoring probe agent"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the checks on their schedules and serve /metrics, /healthz, /readyz, /api/v1/checks.
    Run {
        #[arg(short, long, default_value = "config/agent.yaml")]
        config: PathBuf,
        /// Overrides `listen` from the config file.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Validate a config file: exit 1 printing file:line:column: field: reason.
    CheckConfig {
        #[arg(short, long, default_value = "config/agent.yaml")]
        config: PathBuf,
    },
    /// Run the checks once, print a table and exit non-zero if any failed.
    Once {
        #[arg(short, long, default_value = "config/agent.yaml")]
        config: PathBuf,
        /// Only this check (even when disabled).
        #[arg(long)]
        check: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let path = match &cli.command {
        Command::Run { config, .. }
        | Command::CheckConfig { config }
        | Command::Once { config, .. } => config.clone(),
    };
    let (config, redactor) = match app::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("start the tokio runtime");
    match cli.command {
        Command::CheckConfig { .. } => {
            let enabled = config.enabled_checks().count();
            println!(
                "{}: OK: region {}, {} checks ({} enabled, {} disabled), listen {}",
                path.display(),
                config.region,
                config.checks.len(),
                enabled,
                config.checks.len() - enabled,
                config.listen
            );
            for c in &config.checks {
                let state = if c.enabled { "" } else { " (disabled)" };
                println!(
                    "  {} [{}] {}{state}",
                    redactor.redact(c.name.as_str()),
                    c.check_type,
                    c.schedule
                );
            }
            for w in config.overrun_warnings() {
                eprintln!("warning: {}", redactor.redact(&w));
            }
            ExitCode::SUCCESS
        }
        Command::Once { check, .. } => {
            let results = match runtime.block_on(app::once(&config, check.as_deref())) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{}", redactor.redact(&e));
                    return ExitCode::from(2);
                }
            };
            print!("{}", report::table(&results, &redactor));
            if results.iter().all(|(_, r)| r.success()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Run { listen, .. } => {
            vantage_common::logging::init(&config.log_format);
            for w in config.overrun_warnings() {
                tracing::warn!("{}", redactor.redact(&w));
            }
            runtime.block_on(async {
                let (trigger, shutdown) = vantage_common::shutdown::channel();
                match app::start(&path, config, redactor, listen, shutdown).await {
                    Ok(_agent) => {
                        vantage_common::shutdown::os_signal().await;
                        tracing::info!("shutting down");
                        trigger.trigger();
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start");
                        eprintln!("cannot start: {e}");
                        ExitCode::FAILURE
                    }
                }
            })
        }
    }
}

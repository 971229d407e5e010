//! `vantage-agent`: command-line wiring only (run, check-config, once, blackbox, convert-blackbox).

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use vantage_agent::config::{AgentConfig, REGION_ENV};
use vantage_agent::reload::{self, LoadError, Loaded};
use vantage_agent::source::{ConfigSource, DEFAULT_TOKEN_ENV};
use vantage_agent::{app, blackbox, report};

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

/// Where the config comes from, and the region.
#[derive(Args)]
struct Source {
    /// A config file, or an http(s):// URL serving it (one config for a whole fleet).
    #[arg(short, long, default_value = "config/agent.yaml")]
    config: String,
    /// The agent's region: the `region` label of every series, what `regions:` of checks match, and what
    /// `${VANTAGE_REGION}` expands to. Overrides `region:` in the config.
    #[arg(long, env = REGION_ENV)]
    region: Option<String>,
    /// The environment variable holding a bearer token for a config URL.
    #[arg(long, default_value = DEFAULT_TOKEN_ENV, value_name = "NAME")]
    config_token_env: String,
    /// Where the last good copy of a config URL is kept, to start from when the URL is unreachable.
    #[arg(long, default_value = "data/agent", value_name = "DIR")]
    state_dir: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run the checks on their schedules and serve /metrics, /healthz, /readyz, /api/v1/checks.
    Run {
        #[command(flatten)]
        source: Source,
        /// Overrides `listen` from the config.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// How often a config URL is polled for changes.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        config_poll: Duration,
    },
    /// Validate a config: exit 1 printing file:line:column: field: reason; list the checks that run in the region.
    CheckConfig {
        #[command(flatten)]
        source: Source,
    },
    /// Run the checks once and print the results (a table, JSON or JUnit XML).
    ///
    /// Exit codes: 0 every check passed, 1 a check failed, 2 the config cannot be loaded or is invalid, or --check
    /// names no check.
    Once {
        #[command(flatten)]
        source: Source,
        /// Only this check (even when disabled or meant for other regions).
        #[arg(long)]
        check: Option<String>,
        /// How to print the results: `table` for people, `json` for scripts, `junit` for CI test reporters.
        #[arg(long, value_enum, default_value_t = report::Format::Table)]
        format: report::Format,
    },
    /// Serve blackbox_exporter's /probe from its module file, on its flags (a drop-in: change the binary name).
    Blackbox(blackbox::cli::BlackboxArgs),
    /// Print the Vantage checks that probe like a module file's modules, for a list of targets.
    ConvertBlackbox(blackbox::cli::ConvertArgs),
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = vantage_common::serde_duration::parse(s)?;
    if d < Duration::from_secs(1) {
        return Err("at least 1s".into());
    }
    Ok(d)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let source_args = match cli.command {
        Command::Blackbox(args) => return blackbox::cli::run(args),
        Command::ConvertBlackbox(args) => return blackbox::cli::convert(args),
        Command::Run { ref source, .. }
        | Command::CheckConfig { ref source }
        | Command::Once { ref source, .. } => source,
    };
    let token = std::env::var(&source_args.config_token_env)
        .ok()
        .filter(|t| !t.is_empty());
    // `once` keeps 1 for "a check failed", so CI can tell a broken config (2) from a failing target.
    let config_error = match cli.command {
        Command::Once { .. } => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    };
    let source = match ConfigSource::parse(&source_args.config, token, &source_args.state_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return config_error;
        }
    };
    let region = source_args.region.clone().filter(|r| !r.is_empty());
    let runtime = tokio::runtime::Runtime::new().expect("start the tokio runtime");
    // Only a running agent starts from the last good copy; check-config and once report what the URL serves.
    let fallback = matches!(cli.command, Command::Run { .. });
    let (loaded, boot_error) =
        match runtime.block_on(reload::load(&source, region.as_deref(), fallback)) {
            Ok(l) => l,
            Err(e @ LoadError::Invalid(_)) => {
                // Config errors carry their own `source:line:column: field:`.
                eprintln!("{e}");
                return config_error;
            }
            Err(e) => {
                eprintln!("{}: {e}", source.display());
                return config_error;
            }
        };
    match cli.command {
        Command::CheckConfig { .. } => {
            print!("{}", summary(&source, &loaded.config));
            for w in loaded.config.overrun_warnings() {
                eprintln!("warning: {w}");
            }
            ExitCode::SUCCESS
        }
        Command::Once { check, format, .. } => {
            let config = &loaded.config;
            let results = match runtime.block_on(app::once(config, check.as_deref())) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            print!(
                "{}",
                report::render(format, &results, &config.region, &config.secrets)
            );
            if results.iter().all(|(_, r)| r.success()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Blackbox(_) | Command::ConvertBlackbox(_) => unreachable!("handled above"),
        Command::Run {
            listen,
            config_poll,
            ..
        } => {
            vantage_common::logging::init(&loaded.config.log_format);
            match app::raise_fd_limit() {
                Ok(l) => tracing::info!(
                    soft = l.soft,
                    hard = l.hard,
                    soft_before = l.soft_before,
                    "open file limit (RLIMIT_NOFILE)"
                ),
                Err(e) => tracing::warn!(error = %e, "cannot raise the open file limit"),
            }
            run(
                &runtime,
                app::Options {
                    source,
                    region,
                    listen,
                    poll: config_poll,
                },
                loaded,
                boot_error,
            )
        }
    }
}

fn run(
    runtime: &tokio::runtime::Runtime,
    options: app::Options,
    loaded: Loaded,
    boot_error: Option<LoadError>,
) -> ExitCode {
    runtime.block_on(async {
        let (trigger, shutdown) = vantage_common::shutdown::channel();
        match app::start(options, loaded, boot_error, shutdown).await {
            Ok(agent) => {
                vantage_common::shutdown::os_signal().await;
                tracing::info!("shutting down");
                trigger.trigger();
                agent.pusher.shutdown().await;
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

/// `check-config`'s report: the region, and each check with whether it runs there.
fn summary(source: &ConfigSource, config: &AgentConfig) -> String {
    let active = config.active_checks().count();
    let mut out = format!(
        "{}: OK: region {}, {} checks ({active} run in this region), listen {}, config hash {}\n",
        source.display(),
        config.region,
        config.checks.len(),
        config.listen,
        config.hash
    );
    for c in &config.checks {
        let state = if !c.enabled {
            " (disabled)".to_string()
        } else if !c.runs_in(&config.region) {
            let patterns: Vec<&str> = c.regions.iter().map(|r| r.as_str()).collect();
            format!(
                " (not in {}: regions {})",
                config.region,
                patterns.join(", ")
            )
        } else {
            String::new()
        };
        out.push_str(&format!(
            "  {} [{}] {}{state}\n",
            c.name, c.check_type, c.schedule
        ));
    }
    for r in &config.remote_write {
        out.push_str(&format!(
            "  remote_write {} ({})\n",
            r.name,
            vantage_common::secrets::display_url(&r.url)
        ));
    }
    out
}

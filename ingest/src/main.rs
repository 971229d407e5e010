//! `vantage-ingest` command line: `run` the server, `check-config`, mint an admin `token`, or `sourcemaps upload`
//! (the CI client).

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use vantage_ingest::admin_token::TokenScope;
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
    /// Print an admin token signed with the config's `admin.secret` (HS256), for the explorer (/ui/), the stats
    /// API and source map uploads. Only the token goes to standard output.
    Token {
        #[arg(short, long, default_value = "config/ingest.yaml")]
        config: PathBuf,
        /// `read`: the stats API and the explorer; `admin`: also source maps and session deletion.
        #[arg(long, value_enum, default_value = "read")]
        scope: TokenScope,
        /// How long the token is valid, e.g. 30m, 8h, 7d (at most 90 days: it cannot be revoked short of
        /// changing admin.secret).
        #[arg(long, default_value = "8h", value_parser = humantime::parse_duration)]
        ttl: std::time::Duration,
    },
    /// Source maps of a release (for symbolicated error stacks).
    Sourcemaps {
        #[command(subcommand)]
        command: SourcemapsCommand,
    },
}

#[derive(Subcommand)]
enum SourcemapsCommand {
    /// Upload source maps: one line per map stored; stops at the first refusal (exit 1).
    Upload {
        /// The ingest's base URL, e.g. https://rum.example.com.
        #[arg(long)]
        url: String,
        /// Admin token (JWT, scope `admin`). Prefer the VANTAGE_TOKEN environment variable: arguments are
        /// visible to other users of the machine.
        #[arg(long, env = "VANTAGE_TOKEN", hide_env_values = true)]
        token: String,
        /// Site id, as in the ingest config.
        #[arg(long)]
        site: String,
        /// The release the maps belong to, as the page sends it (data-release).
        #[arg(long)]
        release: String,
        /// URL prefix of the scripts: the map of app.min.js is for <url-prefix>app.min.js.
        #[arg(long)]
        url_prefix: String,
        /// Seconds each upload may take.
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
        /// The maps, e.g. dist/*.js.map.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::CheckConfig { config } => {
            let checked = config::load(&config)
                .map_err(|e| e.to_string())
                .and_then(|s| {
                    s.check_exposure()
                        .map_err(|e| format!("{}: {e}", config.display()))?;
                    Ok(s)
                });
            match checked {
                Ok(s) => {
                    println!("{}: ok ({} sites)", config.display(), s.sites.len());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Token { config, scope, ttl } => {
            let key = match config::load_admin_key(&config) {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let now = jsonwebtoken::get_current_timestamp();
            match vantage_ingest::admin_token::mint(key.as_ref(), scope, ttl, now) {
                Ok(token) => {
                    println!("{token}");
                    eprintln!("{}", vantage_ingest::admin_token::summary(scope, ttl, now));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("vantage-ingest token: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Sourcemaps {
            command:
                SourcemapsCommand::Upload {
                    url,
                    token,
                    site,
                    release,
                    url_prefix,
                    timeout_secs,
                    files,
                },
        } => {
            let upload = vantage_ingest::upload::Upload {
                url,
                token,
                site,
                release,
                url_prefix,
                files,
                timeout: std::time::Duration::from_secs(timeout_secs),
            };
            match upload.run(&mut std::io::stdout()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("vantage-ingest sourcemaps upload: {e}");
                    ExitCode::FAILURE
                }
            }
        }
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
    settings.check_exposure().map_err(anyhow::Error::msg)?;
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

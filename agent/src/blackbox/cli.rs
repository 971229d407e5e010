//! `vantage-agent blackbox` (blackbox_exporter's own flags, so a migration changes the binary's name) and
//! `vantage-agent convert-blackbox`.

use super::server::{self, Exporter};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// blackbox_exporter's flags.
#[derive(Args, Debug)]
pub struct BlackboxArgs {
    /// The module file (blackbox_exporter's format).
    #[arg(
        long = "config.file",
        default_value = "blackbox.yml",
        value_name = "FILE"
    )]
    pub config_file: PathBuf,
    /// Where to listen: `:9115` (every interface), `127.0.0.1:9115`, `[::1]:9115`; port 0 picks one.
    #[arg(
        long = "web.listen-address",
        default_value = ":9115",
        value_name = "ADDRESS"
    )]
    pub listen: String,
    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", default_value = "info", value_parser = ["debug", "info", "warn", "error"])]
    pub log_level: String,
    /// `logfmt` logs as text lines, `json` as JSON lines.
    #[arg(long = "log.format", default_value = "json", value_parser = ["logfmt", "json"])]
    pub log_format: String,
    /// Seconds taken off the scrape's timeout (X-Prometheus-Scrape-Timeout-Seconds) to answer in time.
    #[arg(long = "timeout-offset", default_value_t = 0.5, value_name = "SECONDS")]
    pub timeout_offset: f64,
    /// Validate the module file and exit (0 when it is valid).
    #[arg(long = "config.check")]
    pub config_check: bool,
    // blackbox_exporter flags with no equivalent here: refused by name rather than ignored.
    #[arg(long = "web.config.file", hide = true)]
    web_config_file: Option<String>,
    #[arg(long = "history.limit", hide = true)]
    history_limit: Option<String>,
    #[arg(long = "web.external-url", hide = true)]
    external_url: Option<String>,
    #[arg(long = "web.route-prefix", hide = true)]
    route_prefix: Option<String>,
    #[arg(long = "web.systemd-socket", hide = true)]
    systemd_socket: bool,
}

/// `vantage-agent convert-blackbox`'s arguments.
#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// The module file.
    pub file: PathBuf,
    /// Targets, one per line: `TARGET` (probed with every module) or `MODULE TARGET`; `#` starts a comment.
    #[arg(long, value_name = "FILE")]
    pub targets: PathBuf,
    /// How often each converted check runs (blackbox_exporter probed at the scrape interval).
    #[arg(long, default_value = "15s")]
    pub interval: String,
    /// Only this module.
    #[arg(long)]
    pub module: Option<String>,
}

/// `:9115` -> every interface; otherwise an address with a port.
fn listen_address(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    let full = match text.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => text.to_string(),
    };
    full.parse()
        .map_err(|_| format!("--web.listen-address {text:?}: use host:port or :port"))
}

impl BlackboxArgs {
    /// The blackbox_exporter flag given that has no equivalent here.
    fn unsupported(&self) -> Option<&'static str> {
        [
            ("--web.config.file", self.web_config_file.is_some()),
            ("--history.limit", self.history_limit.is_some()),
            ("--web.external-url", self.external_url.is_some()),
            ("--web.route-prefix", self.route_prefix.is_some()),
            ("--web.systemd-socket", self.systemd_socket),
        ]
        .into_iter()
        .find(|(_, set)| *set)
        .map(|(flag, _)| flag)
    }
}

/// Runs the exporter until SIGTERM/SIGINT. Exit 1 for a bad flag or module file.
pub fn run(args: BlackboxArgs) -> ExitCode {
    if let Some(flag) = args.unsupported() {
        eprintln!("{flag} is a blackbox_exporter flag vantage-agent blackbox does not implement; remove it");
        return ExitCode::FAILURE;
    }
    let addr = match listen_address(&args.listen) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if !(args.timeout_offset >= 0.0 && args.timeout_offset.is_finite()) {
        eprintln!("--timeout-offset must be 0 or more seconds");
        return ExitCode::FAILURE;
    }
    let exporter = match Exporter::load(args.config_file.clone(), args.timeout_offset) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if args.config_check {
        println!(
            "{}: OK: {} modules",
            args.config_file.display(),
            exporter.modules().modules.len()
        );
        return ExitCode::SUCCESS;
    }
    let format = if args.log_format == "logfmt" {
        "text"
    } else {
        "json"
    };
    vantage_common::logging::init_at(format, &args.log_level);
    if let Err(e) = crate::app::raise_fd_limit() {
        tracing::warn!(error = %e, "cannot raise the open file limit");
    }
    let runtime = tokio::runtime::Runtime::new().expect("start the tokio runtime");
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let bound = listener.local_addr().map_or(addr, |a| a);
        tracing::info!(
            listen = %bound,
            modules = exporter.modules().modules.len(),
            file = %args.config_file.display(),
            "blackbox exporter started"
        );
        let (trigger, shutdown) = vantage_common::shutdown::channel();
        tokio::spawn(server::serve(listener, exporter, shutdown));
        vantage_common::shutdown::os_signal().await;
        tracing::info!("shutting down");
        trigger.trigger();
        ExitCode::SUCCESS
    })
}

/// Prints the converted checks as a `checks:` list; exit 1 naming the module option with no equivalent.
pub fn convert(args: ConvertArgs) -> ExitCode {
    let raw = match std::fs::read_to_string(&args.file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: cannot read the module file: {e}", args.file.display());
            return ExitCode::FAILURE;
        }
    };
    // `${VAR}` stays a reference in the checks printed (Vantage's config expands it too; a `:-default` is not
    // kept), so no secret of the environment is written out.
    let keep_reference = |name: &str| Some(format!("${{{name}}}"));
    let modules = match super::modules::Modules::parse(&args.file, &raw, keep_reference) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let text = match std::fs::read_to_string(&args.targets) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: {e}", args.targets.display());
            return ExitCode::FAILURE;
        }
    };
    match super::convert::checks(&modules, &text, args.module.as_deref(), &args.interval) {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", args.targets.display());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_as_blackbox_exporter_writes_them() {
        assert_eq!(
            listen_address(":9115").unwrap(),
            "0.0.0.0:9115".parse().unwrap()
        );
        assert_eq!(
            listen_address("127.0.0.1:0").unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        assert!(listen_address("localhost").is_err());
    }
}

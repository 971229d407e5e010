//! Starting the real processes of a monitoring stack on 127.0.0.1: Prometheus and Alertmanager (Debian packages),
//! `vantage-agent` and `vantage-ingest` (this workspace), each with its config in a temporary directory.

use crate::process::{free_port, system_binary, workspace_binary, ChildProcess};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a process may take to become ready on a loaded 2-core machine.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A started process and the base URL it serves.
pub struct Service {
    pub process: ChildProcess,
    pub base: String,
    pub addr: String,
}

/// What to run for one [`Service`]: the process (logging into `dir`), the port it listens on, and the
/// path that answers once it is ready.
struct Launch<'a> {
    name: &'a str,
    program: &'a Path,
    args: &'a [String],
    envs: &'a [(&'a str, &'a str)],
    dir: &'a Path,
    port: u16,
    ready_path: &'a str,
}

impl Service {
    async fn start(l: Launch<'_>) -> Result<Service> {
        let mut process = ChildProcess::spawn(l.name, l.program, l.args, l.envs, l.dir)?;
        let addr = format!("127.0.0.1:{}", l.port);
        let base = format!("http://{addr}");
        process
            .wait_ready(&format!("{base}{}", l.ready_path), READY_TIMEOUT)
            .await?;
        Ok(Service {
            process,
            base,
            addr,
        })
    }
}

/// `vantage-agent run` with a generated config: `region` (given by the environment, as a fleet deploys it), one
/// HTTP check per `(name, url)` plus `extra` YAML (list items for `checks:`, indented by two spaces, then
/// top-level sections) every second.
pub async fn start_agent(
    dir: &Path,
    region: &str,
    checks: &[(&str, String)],
    extra_checks: &str,
) -> Result<Service> {
    let mut yaml = "region: ${VANTAGE_REGION}\nchecks:\n".to_string();
    for (name, url) in checks {
        yaml.push_str(&format!(
            "  - name: {name}\n    type: http\n    target: {url}\n    every: 1s\n    timeout: 800ms\n"
        ));
    }
    yaml.push_str(extra_checks);
    let config = dir.join(format!("agent-{region}.yaml"));
    std::fs::write(&config, yaml)?;
    start_agent_process(
        dir,
        &format!("agent-{region}"),
        &config.display().to_string(),
        &[("VANTAGE_REGION", region)],
        &[],
    )
    .await
}

/// `vantage-agent run -c <config> --listen 127.0.0.1:0` (plus `args`) with `envs` (VANTAGE_REGION and whatever
/// the config expands), logging into `dir/<name>.log`. The agent binds port 0 and logs the address it got, so no
/// port is handed over with a race.
pub async fn start_agent_process(
    dir: &Path,
    name: &str,
    config: &str,
    envs: &[(&str, &str)],
    args: &[&str],
) -> Result<Service> {
    let mut all: Vec<String> = vec![
        "run".into(),
        "-c".into(),
        config.into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--state-dir".into(),
        dir.join(format!("{name}-state")).display().to_string(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let mut process =
        ChildProcess::spawn(name, &workspace_binary("vantage-agent")?, &all, envs, dir)?;
    let addr = process
        .wait_for_log_field("agent started", "listen", READY_TIMEOUT)
        .await?;
    let base = format!("http://{addr}");
    process
        .wait_ready(&format!("{base}/healthz"), READY_TIMEOUT)
        .await?;
    Ok(Service {
        process,
        base,
        addr,
    })
}

/// The API key of site `shop` in the example ingest config, as the tests set it (`RUM_SHOP_KEY`).
pub const SHOP_KEY: &str = "e2e-shop-key";

/// `vantage-ingest run` on the repository's example config (`config/ingest.yaml`), storing into `dir`, with
/// site `shop`'s key set to [`SHOP_KEY`].
pub async fn start_ingest(root: &Path, dir: &Path) -> Result<Service> {
    let port = free_port();
    let args = vec![
        "run".into(),
        "-c".into(),
        root.join("config/ingest.yaml").display().to_string(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
    ];
    let url = format!("sqlite://{}", dir.join("rum.db").display());
    Service::start(Launch {
        name: "ingest",
        program: &workspace_binary("vantage-ingest")?,
        args: &args,
        envs: &[("RUM_STORAGE_URL", &url), ("RUM_SHOP_KEY", SHOP_KEY)],
        dir,
        port,
        ready_path: "/healthz",
    })
    .await
}

/// Writes `config` to `dir/{name}.yml` and creates `dir/{name}-data`; returns both paths.
fn config_and_data_dir(dir: &Path, name: &str, config: &str) -> Result<(PathBuf, PathBuf)> {
    let cfg = dir.join(format!("{name}.yml"));
    std::fs::write(&cfg, config)?;
    let data = dir.join(format!("{name}-data"));
    std::fs::create_dir_all(&data)?;
    Ok((cfg, data))
}

/// Alertmanager with `config` (YAML text), no clustering.
pub async fn start_alertmanager(dir: &Path, config: &str) -> Result<Service> {
    let port = free_port();
    let (cfg, data) = config_and_data_dir(dir, "alertmanager", config)?;
    let args = vec![
        format!("--config.file={}", cfg.display()),
        format!("--storage.path={}", data.display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--cluster.listen-address=".into(),
    ];
    Service::start(Launch {
        name: "alertmanager",
        program: &system_binary("prometheus-alertmanager")?,
        args: &args,
        envs: &[],
        dir,
        port,
        ready_path: "/-/ready",
    })
    .await
}

/// Prometheus with `config` (YAML text) on `port` (the config's own scrape job may need it in advance).
pub async fn start_prometheus(dir: &Path, port: u16, config: &str) -> Result<Service> {
    start_prometheus_with(dir, port, config, &[]).await
}

/// [`start_prometheus`] with extra flags (`--web.enable-remote-write-receiver`).
pub async fn start_prometheus_with(
    dir: &Path,
    port: u16,
    config: &str,
    extra: &[&str],
) -> Result<Service> {
    let (cfg, data) = config_and_data_dir(dir, "prometheus", config)?;
    let mut args = vec![
        format!("--config.file={}", cfg.display()),
        format!("--storage.tsdb.path={}", data.display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        // Send firing alerts to Alertmanager at every evaluation instead of once a minute.
        "--rules.alert.resend-delay=1s".into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    Service::start(Launch {
        name: "prometheus",
        program: &system_binary("prometheus")?,
        args: &args,
        envs: &[],
        dir,
        port,
        ready_path: "/-/ready",
    })
    .await
}

/// One sample of an instant query.
#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Runs an instant query; an invalid expression is an error carrying Prometheus's message.
pub async fn query(prometheus: &str, expr: &str) -> Result<Vec<Sample>> {
    run_query(prometheus, &[("query", expr.to_string())]).await
}

/// An instant query evaluated at `time` (Unix seconds).
pub async fn query_at(prometheus: &str, expr: &str, time: f64) -> Result<Vec<Sample>> {
    run_query(
        prometheus,
        &[("query", expr.to_string()), ("time", format!("{time:.3}"))],
    )
    .await
}

async fn run_query(prometheus: &str, params: &[(&str, String)]) -> Result<Vec<Sample>> {
    let expr = &params[0].1;
    let resp: serde_json::Value = reqwest::Client::new()
        .get(format!("{prometheus}/api/v1/query"))
        .query(params)
        .send()
        .await?
        .json()
        .await?;
    if resp["status"] != "success" {
        bail!("query {expr:?}: {}", resp["error"]);
    }
    let result = resp["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    result
        .iter()
        .map(|r| {
            let labels = serde_json::from_value(r["metric"].clone())?;
            let value = match &r["value"] {
                serde_json::Value::Array(v) => v
                    .get(1)
                    .and_then(|s| s.as_str())
                    .context("value")?
                    .parse()?,
                _ => f64::NAN,
            };
            Ok(Sample { labels, value })
        })
        .collect()
}

/// Alerts Prometheus currently holds (pending and firing), as (alertname, state, labels).
pub async fn prometheus_alerts(
    prometheus: &str,
) -> Result<Vec<(String, String, BTreeMap<String, String>)>> {
    let resp: serde_json::Value = reqwest::Client::new()
        .get(format!("{prometheus}/api/v1/alerts"))
        .send()
        .await?
        .json()
        .await?;
    let mut out = Vec::new();
    for a in resp["data"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let labels: BTreeMap<String, String> = serde_json::from_value(a["labels"].clone())?;
        let name = labels.get("alertname").cloned().unwrap_or_default();
        out.push((
            name,
            a["state"].as_str().unwrap_or_default().to_string(),
            labels,
        ));
    }
    Ok(out)
}

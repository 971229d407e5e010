//! The documented deployment, as deployed: docker-compose.yml's Vantage services and its Prometheus run as
//! processes (no container engine here) with each service's own command, environment and mounted config files
//! (container paths mapped to the repository files mounted there). As on a compose network, every service name
//! resolves to an address of the service's own (a private `/etc/hosts` per process, through a mount namespace),
//! where the service listens on its compose port.
//!
//! What differs from containers, and only this: `0.0.0.0` in a listen address becomes the service's address
//! (processes share one host), Prometheus's data directory is a temporary one, and Grafana and Alertmanager are
//! not started (their configs are checked by `packaging.rs`).
//!
//! Then: every agent reports its region from the environment, verbatim, on its series; its checks reach the
//! other services by name; Prometheus scrapes the scraped agents and the ingest and receives the pushing agent's
//! series, so the same check is seen from every region.

use anyhow::{ensure, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;
use vantage_e2e::compose::{environment, host_path, strs, Compose};
use vantage_e2e::process::{system_binary, workspace_binary, workspace_root, ChildProcess};
use vantage_e2e::stack::{query, READY_TIMEOUT};
use vantage_e2e::wait::until;

/// The services run here: ours (built from the Dockerfile) and Prometheus.
fn runs_here(name: &str) -> bool {
    name.starts_with("agent-") || name == "ingest" || name == "prometheus"
}

struct Running {
    process: ChildProcess,
    base: String,
}

/// `program args` with `hosts` as its `/etc/hosts` (a private mount namespace), so compose service names resolve.
fn with_hosts(hosts: &Path, program: &Path, args: &[String]) -> Result<(PathBuf, Vec<String>)> {
    let root = std::process::Command::new("id").arg("-u").output()?.stdout == b"0\n";
    let mut all: Vec<String> = if root {
        vec!["--mount".into()]
    } else {
        // Without root, a user namespace gives the mount namespace its privilege.
        vec!["--map-root-user".into(), "--mount".into()]
    };
    all.extend([
        "--propagation".into(),
        "private".into(),
        "sh".into(),
        "-c".into(),
        r#"mount --bind "$1" /etc/hosts && shift && exec "$@""#.into(),
        "sh".into(),
        hosts.display().to_string(),
        program.display().to_string(),
    ]);
    all.extend(args.iter().cloned());
    Ok((PathBuf::from("/usr/bin/unshare"), all))
}

async fn get(url: &str) -> Result<String> {
    Ok(reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_stack_runs_as_documented() -> Result<()> {
    let root = workspace_root();
    let compose = Compose::load(&root)?;
    let dir = tempfile::tempdir()?;

    // An address per service, and the hosts file a compose network would give.
    let names = compose.names()?;
    let addr: BTreeMap<String, String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), format!("127.0.77.{}", 10 + i)))
        .collect();
    let hosts = dir.path().join("hosts");
    let mut text = "127.0.0.1 localhost\n".to_string();
    for (n, a) in &addr {
        text.push_str(&format!("{a} {n}\n"));
    }
    std::fs::write(&hosts, text)?;

    // The operator's own admin secret, as `RUM_ADMIN_SECRET=... docker compose up` passes it (compose requires it).
    let secret = format!("compose-admin-secret-{}", std::process::id()).repeat(2);
    let mut ingest_config = None;
    let mut running: BTreeMap<String, Running> = BTreeMap::new();
    let mut regions: BTreeMap<String, String> = BTreeMap::new();
    // The ingest and Prometheus first: the agents probe them.
    let mut order: Vec<&String> = names.iter().filter(|n| runs_here(n)).collect();
    order.sort_by_key(|n| n.starts_with("agent-"));
    for name in order {
        let svc = compose.service(name)?;
        let mounts = compose.bind_mounts(svc)?;
        let env = environment(svc, |k| (k == "RUM_ADMIN_SECRET").then(|| secret.clone()))?;
        let ip = &addr[name.as_str()];
        let work = dir.path().join(name);
        std::fs::create_dir_all(&work)?;
        let cmd = strs(svc.get("command"));
        let (program, args, base, ready) = if name == "prometheus" {
            let mut args = Vec::new();
            for a in &cmd {
                if let Some(c) = a.strip_prefix("--config.file=") {
                    let host = host_path(&mounts, c).context("prometheus config not mounted")?;
                    args.push(format!("--config.file={}", host.display()));
                } else if a.starts_with("--storage.tsdb.path=") {
                    args.push(format!(
                        "--storage.tsdb.path={}",
                        work.join("data").display()
                    ));
                } else {
                    args.push(a.clone());
                }
            }
            args.push(format!("--web.listen-address={ip}:9090"));
            (
                system_binary("prometheus")?,
                args,
                format!("http://{ip}:9090"),
                "/-/ready",
            )
        } else {
            let (bin, rest) = cmd.split_first().context("no command")?;
            let mut args = Vec::new();
            let mut port = None;
            let mut it = rest.iter();
            while let Some(a) = it.next() {
                args.push(a.clone());
                match a.as_str() {
                    "-c" => {
                        let c = it.next().context("-c without a path")?;
                        let host = host_path(&mounts, c)
                            .with_context(|| format!("{name}: {c} is not mounted"))?;
                        args.push(host.display().to_string());
                        if name == "ingest" {
                            ingest_config = Some(host);
                        }
                    }
                    "--listen" => {
                        let l = it.next().context("--listen without an address")?;
                        let p = l.rsplit(':').next().context("listen port")?.to_string();
                        args.push(l.replace("0.0.0.0", ip));
                        port = Some(p);
                    }
                    _ => {}
                }
            }
            let port = port.with_context(|| format!("{name}: no --listen"))?;
            (
                workspace_binary(bin)?,
                args,
                format!("http://{ip}:{port}"),
                "/healthz",
            )
        };
        if let Some(r) = env.get("VANTAGE_REGION") {
            regions.insert(name.clone(), r.clone());
        }
        let (program, args) = with_hosts(&hosts, &program, &args)?;
        let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut process = ChildProcess::spawn(name, &program, &args, &envs, &work)?;
        process
            .wait_ready(&format!("{base}{ready}"), READY_TIMEOUT)
            .await?;
        running.insert(name.clone(), Running { process, base });
    }
    ensure!(
        regions.len() >= 3,
        "a fleet of at least three agents: {regions:?}"
    );

    // Every agent: its region from the environment, verbatim; its checks reach the services by name.
    for (name, region) in &regions {
        let base = running[name].base.clone();
        until(
            &format!("{name}'s checks passing in {region}"),
            Duration::from_secs(90),
            || {
                let base = base.clone();
                async move {
                    let m = get(&format!("{base}/metrics")).await?;
                    Ok(["ingest-health", "ingest-sdk", "prometheus-ready"].iter().all(|c| {
                        m.contains(&format!(
                            "probe_success{{region=\"{region}\",endpoint=\"{c}\",check_type=\"http\"}} 1"
                        ))
                    }))
                }
            },
        )
        .await
        .with_context(|| running[name].process.tail(20))?;
        let m = get(&format!("{base}/metrics")).await?;
        ensure!(!m.contains("***"), "{name}: redacted text in /metrics");
        let api: serde_json::Value =
            serde_json::from_str(&get(&format!("{base}/api/v1/checks")).await?)?;
        ensure!(
            api["region"] == region.as_str(),
            "{name}: {}",
            api["region"]
        );
    }

    // The ingest takes admin tokens signed with the operator's secret, and not those signed with the example
    // config's published default.
    let config = ingest_config.context("the ingest's config")?;
    let sites = format!("{}/v1/stats/sites", running["ingest"].base);
    for (env, status) in [(Some(secret.as_str()), 200), (None, 401)] {
        let mut mint = std::process::Command::new(workspace_binary("vantage-ingest")?);
        mint.args(["token", "-c"]).arg(&config);
        match env {
            Some(s) => mint.env("RUM_ADMIN_SECRET", s),
            None => mint.env_remove("RUM_ADMIN_SECRET"),
        };
        let out = mint.output()?;
        ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8(out.stdout)?;
        let answer = reqwest::Client::new()
            .get(&sites)
            .bearer_auth(token.trim())
            .timeout(Duration::from_secs(5))
            .send()
            .await?;
        ensure!(
            answer.status() == status,
            "a token signed with {}: {}",
            if env.is_some() {
                "the operator's secret"
            } else {
                "the published default"
            },
            answer.status()
        );
    }

    // Prometheus (compose's config): the scraped agents and the ingest up, and the check seen from every region,
    // the pushing agent's included.
    let prom = running["prometheus"].base.clone();
    let all: BTreeSet<String> = regions.values().cloned().collect();
    until(
        "the check from every region in Prometheus",
        Duration::from_secs(90),
        || async {
            let up = query(&prom, "up{job=~\"vantage-.*\"}").await?;
            let seen: BTreeSet<String> =
                query(&prom, "probe_success{endpoint=\"ingest-health\"} == 1")
                    .await?
                    .iter()
                    .filter_map(|s| s.labels.get("region").cloned())
                    .collect();
            Ok(up.len() >= 3 && up.iter().all(|s| s.value == 1.0) && seen == all)
        },
    )
    .await
    .with_context(|| running["prometheus"].process.tail(20))?;
    for (_, r) in running.iter_mut() {
        r.process.ensure_running()?;
    }
    Ok(())
}

//! The Dockerfile and docker-compose.yml reference only things that exist: build-context paths, workspace members,
//! binaries, the embedded SDK, ports the binaries listen on, config files that pass `check-config`, Prometheus
//! targets that are compose services, and the Grafana provisioning paths. (No Docker engine here: this is the check.)

use anyhow::{ensure, Context, Result};
use regex::Regex;
use serde_norway::Value as Yaml;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use vantage_e2e::compose::{arg_after, environment, host_path, published, strs, Compose};
use vantage_e2e::process::{workspace_binary, workspace_root};

/// One Dockerfile instruction: keyword (upper case) and its arguments (continuations joined).
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

fn parse_dockerfile(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.starts_with('#') || trimmed.is_empty()) {
            continue;
        }
        if trimmed.starts_with('#') {
            continue;
        }
        if let Some(cont) = trimmed.strip_suffix('\\') {
            current.push_str(cont);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (kw, args) = current
            .split_once(char::is_whitespace)
            .unwrap_or((&current, ""));
        out.push(Instruction {
            keyword: kw.to_ascii_uppercase(),
            args: args.trim().to_string(),
        });
        current.clear();
    }
    out
}

/// COPY arguments without flags: (flags, sources, destination).
fn copy_parts(args: &str) -> (Vec<String>, Vec<String>, String) {
    let words: Vec<String> = if args.starts_with('[') {
        serde_json::from_str(args).unwrap_or_default()
    } else {
        args.split_whitespace().map(str::to_string).collect()
    };
    let (flags, rest): (Vec<String>, Vec<String>) =
        words.into_iter().partition(|w| w.starts_with("--"));
    let (dest, sources) = rest
        .split_last()
        .map(|(d, s)| (d.clone(), s.to_vec()))
        .unwrap_or_default();
    (flags, sources, dest)
}

fn dockerignore_patterns(root: &Path) -> Vec<String> {
    std::fs::read_to_string(root.join(".dockerignore"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches("**/")
                .trim_end_matches('/')
                .to_string()
        })
        .collect()
}

/// Workspace members (relative dirs) and every bin target name, from `cargo metadata`.
fn workspace_layout(root: &Path) -> Result<(Vec<String>, BTreeSet<String>)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(root)
        .output()?;
    ensure!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let mut members = Vec::new();
    let mut bins = BTreeSet::new();
    for p in meta["packages"].as_array().context("packages")? {
        let manifest = PathBuf::from(p["manifest_path"].as_str().context("manifest_path")?);
        let dir = manifest
            .parent()
            .context("manifest dir")?
            .strip_prefix(root)?
            .display()
            .to_string();
        members.push(dir);
        for t in p["targets"].as_array().context("targets")? {
            if t["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"))
            {
                bins.insert(t["name"].as_str().context("target name")?.to_string());
            }
        }
    }
    Ok((members, bins))
}

/// Ports the example configs listen on (`listen: host:PORT`).
fn listen_port(config: &Path) -> Result<u16> {
    let doc: Yaml = serde_norway::from_str(&std::fs::read_to_string(config)?)?;
    let listen = doc
        .get("listen")
        .and_then(Yaml::as_str)
        .with_context(|| format!("{}: no listen", config.display()))?;
    Ok(listen.rsplit(':').next().context("listen port")?.parse()?)
}

#[test]
fn dockerfile_references_exist() -> Result<()> {
    let root = workspace_root();
    let text = std::fs::read_to_string(root.join("Dockerfile"))?;
    let instructions = parse_dockerfile(&text);
    let ignored = dockerignore_patterns(&root);
    let (members, bins) = workspace_layout(&root)?;

    let froms: Vec<&Instruction> = instructions
        .iter()
        .filter(|i| i.keyword == "FROM")
        .collect();
    ensure!(froms.len() >= 2, "multi-stage build expected");
    ensure!(
        froms[0].args.starts_with("rust:1-bookworm"),
        "builder is {}",
        froms[0].args
    );
    ensure!(
        froms
            .last()
            .unwrap()
            .args
            .starts_with("debian:bookworm-slim"),
        "runtime is {}",
        froms.last().unwrap().args
    );

    // Build-context paths exist, are not excluded by .dockerignore, and cover every workspace member.
    let mut context_sources = Vec::new();
    let mut runtime_files: BTreeMap<String, String> = BTreeMap::new(); // path in image -> what
    let mut stage = 0;
    for i in &instructions {
        if i.keyword == "FROM" {
            stage += 1;
        }
        if i.keyword != "COPY" && i.keyword != "ADD" {
            continue;
        }
        let (flags, sources, dest) = copy_parts(&i.args);
        let from_stage = flags.iter().any(|f| f.starts_with("--from="));
        for s in &sources {
            if !from_stage {
                let p = root.join(s);
                ensure!(
                    p.exists(),
                    "Dockerfile: COPY {s}: {} does not exist",
                    p.display()
                );
                let s_norm = s.trim_end_matches('/');
                for pat in &ignored {
                    ensure!(
                        !(s_norm == pat || s_norm.starts_with(&format!("{pat}/"))),
                        "Dockerfile: COPY {s} is excluded by .dockerignore pattern {pat}"
                    );
                }
                context_sources.push(s_norm.to_string());
            }
            if stage == froms.len() {
                let name = Path::new(s)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .to_string();
                let target = if dest.ends_with('/') {
                    format!("{dest}{name}")
                } else {
                    dest.clone()
                };
                runtime_files.insert(target, s.clone());
            }
        }
    }
    for m in &members {
        ensure!(
            context_sources.iter().any(|s| s == m || m.starts_with(&format!("{s}/")) || s == "."),
            "workspace member {m} is not copied into the build stage (cargo cannot load the workspace without it)"
        );
    }
    for lock in ["Cargo.toml", "Cargo.lock"] {
        let copied = instructions
            .iter()
            .any(|i| i.keyword == "COPY" && copy_parts(&i.args).1.iter().any(|s| s == lock));
        ensure!(copied, "{lock} is not copied");
    }

    // Files embedded at compile time (the SDK in the ingest binary) are inside the build context.
    let include = Regex::new(r#"include_(?:bytes|str)!\("([^"]+)"\)"#)?;
    for dir in ["ingest/src", "agent/src"] {
        for file in walk(&root.join(dir))? {
            let src = std::fs::read_to_string(&file).unwrap_or_default();
            for c in include.captures_iter(&src) {
                let target = file.parent().unwrap().join(&c[1]);
                let rel = normalize(&target)
                    .strip_prefix(&root)?
                    .display()
                    .to_string();
                ensure!(
                    target.exists(),
                    "{} embeds {rel}, which does not exist",
                    file.display()
                );
                ensure!(
                    context_sources
                        .iter()
                        .any(|s| rel == *s || rel.starts_with(&format!("{s}/"))),
                    "{} embeds {rel}, which the Dockerfile does not copy into the build stage",
                    file.display()
                );
            }
        }
    }

    // The release build builds exactly the workspace's binaries, and the runtime gets them.
    let build = instructions
        .iter()
        .find(|i| i.keyword == "RUN" && i.args.contains("cargo build"))
        .context("no cargo build")?;
    ensure!(
        build.args.contains("--release") && build.args.contains("--locked"),
        "cargo build must be --release --locked"
    );
    for bin in ["vantage-agent", "vantage-ingest"] {
        ensure!(
            bins.contains(bin),
            "workspace has no binary {bin} (has {bins:?})"
        );
        ensure!(
            build.args.contains(&format!("--bin {bin}")),
            "cargo build does not build {bin}"
        );
        ensure!(
            build.args.contains(&format!("/out/{bin}")),
            "build stage does not put {bin} in /out"
        );
        ensure!(
            runtime_files.contains_key(&format!("/usr/local/bin/{bin}")),
            "runtime image lacks {bin}: {runtime_files:?}"
        );
    }

    // Runtime: non-root, healthcheck, ports, volume, config.
    let user = instructions
        .iter()
        .rev()
        .find(|i| i.keyword == "USER")
        .context("no USER")?;
    let user_name = user.args.split(':').next().unwrap();
    ensure!(user_name != "root" && user_name != "0", "runs as root");
    let health = instructions
        .iter()
        .find(|i| i.keyword == "HEALTHCHECK")
        .context("no HEALTHCHECK")?;
    ensure!(
        health.args.contains("VANTAGE_HEALTH_URL"),
        "HEALTHCHECK does not use VANTAGE_HEALTH_URL"
    );
    let env_health = instructions
        .iter()
        .find(|i| i.keyword == "ENV" && i.args.starts_with("VANTAGE_HEALTH_URL="))
        .context("no default VANTAGE_HEALTH_URL")?;
    ensure!(
        env_health.args.ends_with(":9480/healthz"),
        "default health URL must match the default command (ingest)"
    );
    let exposed: BTreeSet<u16> = instructions
        .iter()
        .filter(|i| i.keyword == "EXPOSE")
        .flat_map(|i| {
            i.args
                .split_whitespace()
                .map(|p| p.trim_end_matches("/tcp").parse::<u16>())
        })
        .collect::<Result<_, _>>()?;
    let agent_port = 9470;
    let ingest_port = listen_port(&root.join("config/ingest.yaml"))?;
    if root.join("config/agent.yaml").exists() {
        ensure!(
            listen_port(&root.join("config/agent.yaml"))? == agent_port,
            "config/agent.yaml does not listen on 9470"
        );
    }
    ensure!(
        exposed == BTreeSet::from([agent_port, ingest_port]),
        "EXPOSE {exposed:?}"
    );
    ensure!(
        instructions
            .iter()
            .any(|i| i.keyword == "VOLUME" && i.args.contains("/var/lib/vantage")),
        "no VOLUME"
    );
    let cmd = instructions
        .iter()
        .rev()
        .find(|i| i.keyword == "CMD")
        .context("no CMD")?;
    let cmd: Vec<String> = serde_json::from_str(&cmd.args).context("CMD must be exec form")?;
    ensure!(cmd[0] == "vantage-ingest", "default command {cmd:?}");
    let config = &cmd[cmd
        .iter()
        .position(|a| a == "-c")
        .context("CMD without -c")?
        + 1];
    ensure!(
        runtime_files.contains_key(config),
        "CMD config {config} is not in the image ({runtime_files:?})"
    );
    Ok(())
}

fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            out.extend(walk(&p)?);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    Ok(out)
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[test]
fn compose_references_exist() -> Result<()> {
    let root = workspace_root();
    let compose = Compose::load(&root)?;
    let services = compose.services()?;
    let svc = |name: &str| compose.service(name);
    let names: BTreeSet<String> = compose.names()?.into_iter().collect();
    let bind_mounts = |_root: &Path, s: &Yaml| compose.bind_mounts(s);
    for s in services.values() {
        bind_mounts(&root, s)?;
    }

    // Agents (two regions) and the ingest: built from this Dockerfile, configs that pass check-config, listen
    // ports that match what is published and what the health check probes.
    let mut listen_ports = BTreeMap::new();
    let agents: Vec<&String> = names.iter().filter(|n| n.starts_with("agent-")).collect();
    ensure!(
        agents.len() >= 2,
        "agents in at least two regions expected: {names:?}"
    );
    let mut regions = BTreeSet::new();
    let mut pushing = BTreeSet::new();
    for name in agents.iter().map(|s| s.as_str()).chain(["ingest"]) {
        let s = svc(name)?;
        ensure!(
            s.get("build").and_then(Yaml::as_str) == Some("."),
            "{name} is not built from the Dockerfile"
        );
        let cmd = strs(s.get("command"));
        let bin = cmd.first().context("no command")?.clone();
        ensure!(
            bin == "vantage-agent" || bin == "vantage-ingest",
            "{name} runs {bin}"
        );
        let listen = arg_after(&cmd, "--listen").with_context(|| format!("{name}: no --listen"))?;
        let port: u16 = listen.rsplit(':').next().unwrap().parse()?;
        listen_ports.insert(name.to_string(), port);
        ensure!(
            published(s).iter().any(|(_, c)| *c == port),
            "{name} does not publish its port {port}"
        );
        // As `RUM_ADMIN_SECRET=... docker compose up` runs it (the compose file requires the variable).
        let env = environment(s, |k| {
            (k == "RUM_ADMIN_SECRET").then(|| "a-secret-of-the-operators-own-32-bytes".to_string())
        })?;
        let health = env
            .get("VANTAGE_HEALTH_URL")
            .context("no VANTAGE_HEALTH_URL in its environment")?;
        ensure!(
            health.ends_with(&format!(":{port}/healthz")),
            "{name}: health URL {health} vs port {port}"
        );
        let config = arg_after(&cmd, "-c").context("no -c")?;
        let host_config = host_path(&bind_mounts(&root, s)?, &config)
            .with_context(|| format!("{name}: {config} is not mounted"))?;
        if let Some(r) = env.get("VANTAGE_REGION") {
            regions.insert(r.clone());
        }
        let out = Command::new(workspace_binary(&bin)?)
            .args(["check-config", "-c"])
            .arg(&host_config)
            .envs(&env)
            .current_dir(&root)
            .output()?;
        ensure!(
            out.status.success(),
            "{name}: {bin} check-config -c {} failed:\n{}{}",
            host_config.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // An agent whose region has a remote_write entry pushes; Prometheus need not reach it.
        if String::from_utf8_lossy(&out.stdout).contains("\n  remote_write ") {
            pushing.insert(name.to_string());
        }
    }
    ensure!(
        regions.len() >= 2,
        "agents must be in different regions: {regions:?}"
    );
    // The operators' tools answer on this machine only: Prometheus's lifecycle API stops it, Alertmanager takes
    // silences from anyone, Grafana's password falls back to "admin".
    for name in ["prometheus", "alertmanager", "grafana"] {
        let ports = strs(svc(name)?.get("ports"));
        ensure!(
            !ports.is_empty() && ports.iter().all(|p| p.starts_with("127.0.0.1:")),
            "{name} publishes {ports:?} beyond 127.0.0.1"
        );
    }
    let ingest = svc("ingest")?;
    // Without a secret of the operator's own, compose refuses to start rather than run the ingest on 0.0.0.0
    // with the example config's published one (which the ingest refuses too).
    let unset = environment(ingest, |_| None)
        .err()
        .context("the ingest must require RUM_ADMIN_SECRET")?;
    ensure!(
        format!("{unset:#}").contains("required variable RUM_ADMIN_SECRET is missing a value"),
        "the ingest must require RUM_ADMIN_SECRET: {unset:#}"
    );
    ensure!(
        strs(ingest.get("volumes"))
            .iter()
            .any(|v| v.ends_with(":/var/lib/vantage")),
        "ingest data volume must be the image's VOLUME /var/lib/vantage"
    );

    // Prometheus: its config and rules are mounted, and every target is a compose service on its listen port.
    let prom = svc("prometheus")?;
    let mounts = bind_mounts(&root, prom)?;
    let cmd = strs(prom.get("command"));
    let cfg_path = cmd
        .iter()
        .find_map(|a| a.strip_prefix("--config.file="))
        .context("prometheus without --config.file")?;
    let cfg_host = host_path(&mounts, cfg_path).context("prometheus config not mounted")?;
    let cfg: Yaml = serde_norway::from_str(&std::fs::read_to_string(&cfg_host)?)?;
    let cfg_dir = Path::new(cfg_path).parent().unwrap();
    for rf in strs(cfg.get("rule_files")) {
        let container = cfg_dir.join(&rf);
        let dir = container.parent().unwrap().display().to_string();
        let host =
            host_path(&mounts, &dir).with_context(|| format!("rule dir {dir} not mounted"))?;
        ensure!(
            host.join("synthetic.yml").exists(),
            "mounted rule dir {} lacks the rules",
            host.display()
        );
    }
    let mut scraped = BTreeSet::new();
    for job in cfg
        .get("scrape_configs")
        .and_then(Yaml::as_sequence)
        .context("no scrape_configs")?
    {
        for sc in job
            .get("static_configs")
            .and_then(Yaml::as_sequence)
            .into_iter()
            .flatten()
        {
            for t in strs(sc.get("targets")) {
                let (host, port) = t.rsplit_once(':').context("target without port")?;
                if host == "localhost" {
                    continue;
                }
                ensure!(
                    names.contains(host),
                    "prometheus scrapes {t}: no such compose service"
                );
                if let Some(p) = listen_ports.get(host) {
                    ensure!(
                        port.parse::<u16>()? == *p,
                        "prometheus scrapes {t} but {host} listens on {p}"
                    );
                }
                scraped.insert(host.to_string());
            }
        }
    }
    for name in listen_ports.keys() {
        ensure!(
            scraped.contains(name) || pushing.contains(name),
            "prometheus does not scrape {name}, and it does not push"
        );
    }
    for am in cfg
        .get("alerting")
        .and_then(|a| a.get("alertmanagers"))
        .and_then(Yaml::as_sequence)
        .into_iter()
        .flatten()
    {
        for sc in am
            .get("static_configs")
            .and_then(Yaml::as_sequence)
            .into_iter()
            .flatten()
        {
            for t in strs(sc.get("targets")) {
                let host = t
                    .rsplit_once(':')
                    .context("alertmanager target without port")?
                    .0;
                ensure!(
                    names.contains(host),
                    "prometheus sends alerts to {t}: no such service"
                );
            }
        }
    }

    // Alertmanager config mounted.
    let am = svc("alertmanager")?;
    let am_cfg = strs(am.get("command"))
        .iter()
        .find_map(|a| a.strip_prefix("--config.file=").map(str::to_string))
        .context("alertmanager without --config.file")?;
    host_path(&bind_mounts(&root, am)?, &am_cfg).context("alertmanager config not mounted")?;

    // Grafana: datasource points at the prometheus service, the dashboard provider's path is where the dashboards
    // directory is mounted, and it holds the dashboards.
    let graf = svc("grafana")?;
    let gm = bind_mounts(&root, graf)?;
    let ds_dir = host_path(&gm, "/etc/grafana/provisioning/datasources")
        .context("datasources not provisioned")?;
    let db_dir = host_path(&gm, "/etc/grafana/provisioning/dashboards")
        .context("dashboards not provisioned")?;
    let mut saw_ds = false;
    for f in std::fs::read_dir(&ds_dir)? {
        let ds: Yaml = serde_norway::from_str(&std::fs::read_to_string(f?.path())?)?;
        for d in ds
            .get("datasources")
            .and_then(Yaml::as_sequence)
            .into_iter()
            .flatten()
        {
            let url = d
                .get("url")
                .and_then(Yaml::as_str)
                .context("datasource without url")?;
            let host = url
                .split("//")
                .nth(1)
                .and_then(|r| r.split(':').next())
                .context("datasource url")?;
            ensure!(names.contains(host), "datasource {url}: no such service");
            saw_ds = true;
        }
    }
    ensure!(saw_ds, "no Grafana datasource");
    let mut dashboards = 0;
    for f in std::fs::read_dir(&db_dir)? {
        let p: Yaml = serde_norway::from_str(&std::fs::read_to_string(f?.path())?)?;
        for prov in p
            .get("providers")
            .and_then(Yaml::as_sequence)
            .into_iter()
            .flatten()
        {
            let path = prov
                .get("options")
                .and_then(|o| o.get("path"))
                .and_then(Yaml::as_str)
                .context("provider path")?;
            let host = host_path(&gm, path)
                .with_context(|| format!("dashboard path {path} is not mounted"))?;
            for d in std::fs::read_dir(&host)? {
                let d = d?.path();
                if d.extension().is_some_and(|e| e == "json") {
                    let json: serde_json::Value =
                        serde_json::from_str(&std::fs::read_to_string(&d)?)
                            .with_context(|| format!("{} is not JSON", d.display()))?;
                    ensure!(
                        json.get("uid").is_some() && json.get("panels").is_some(),
                        "{} is not a dashboard",
                        d.display()
                    );
                    dashboards += 1;
                }
            }
        }
    }
    ensure!(
        dashboards >= 2,
        "expected the probes and RUM dashboards, found {dashboards}"
    );
    if let Some(home) = graf
        .get("environment")
        .and_then(|e| e.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"))
        .and_then(Yaml::as_str)
    {
        ensure!(
            host_path(&gm, home).is_some_and(|p| p.exists()),
            "home dashboard {home} is not mounted"
        );
    }
    Ok(())
}

#[test]
fn dockerfile_parser_joins_continuations() {
    let i = parse_dockerfile(
        "FROM a AS b\n# c\nRUN x \\\n    && y\nCOPY --from=b /out/x /usr/local/bin/\n",
    );
    assert_eq!(i.len(), 3);
    assert_eq!(i[1].args, "x  && y");
    let (flags, sources, dest) = copy_parts(&i[2].args);
    assert_eq!(
        (flags.len(), sources, dest.as_str()),
        (1, vec!["/out/x".to_string()], "/usr/local/bin/")
    );
    assert!(parse_dockerfile("# only a comment\n").is_empty());
}

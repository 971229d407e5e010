//! The repository's monitoring config as data: Prometheus rule files, Grafana dashboards, `prometheus.yml` and
//! `alertmanager.yml` rewritten for a local run, and the duration scaling used by the end-to-end alerting test.
//!
//! # Duration scaling (documented substitution)
//! The real rules use windows and `for` durations of minutes to hours; the promtool tests
//! (`config/prometheus/tests/`) check them at their real durations. To run the same rules against live processes
//! in seconds, [`scale_durations`] divides every duration literal that is (a) the value of a `for:` key,
//! (b) a range selector `[5m]` or (c) an `offset 1d` by a factor (the test uses 60: minutes become seconds, `1h`
//! becomes `60s`, `1d` becomes `1440s`), never below `1s`. Nothing else changes: expressions, thresholds, labels and
//! annotations are the real ones.

use anyhow::{bail, Context, Result};
use regex::{Captures, Regex};
use serde_norway::Value as Yaml;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// `config/prometheus/rules/*.yml`, sorted.
pub fn rule_files(root: &Path) -> Result<Vec<PathBuf>> {
    files_with_ext(&root.join("config/prometheus/rules"), "yml")
}

/// `config/grafana/dashboards/*.json`, sorted.
pub fn dashboard_files(root: &Path) -> Result<Vec<PathBuf>> {
    files_with_ext(&root.join("config/grafana/dashboards"), "json")
}

fn files_with_ext(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    if out.is_empty() {
        bail!("no *.{ext} in {}", dir.display());
    }
    Ok(out)
}

/// One PromQL expression and where it came from (for error messages).
#[derive(Debug, Clone)]
pub struct Expr {
    pub origin: String,
    pub expr: String,
}

/// What the rule files define and use.
#[derive(Debug, Default)]
pub struct Rules {
    pub exprs: Vec<Expr>,
    /// Names defined by `record:` rules (they exist only inside Prometheus).
    pub recorded: BTreeSet<String>,
    pub alerts: Vec<String>,
}

/// Parses every rule file.
pub fn load_rules(files: &[PathBuf]) -> Result<Rules> {
    let mut rules = Rules::default();
    for file in files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
        let doc: Yaml =
            serde_norway::from_str(&text).with_context(|| format!("parse {}", file.display()))?;
        let groups = doc
            .get("groups")
            .and_then(Yaml::as_sequence)
            .context("no groups")?;
        for group in groups {
            for rule in group
                .get("rules")
                .and_then(Yaml::as_sequence)
                .into_iter()
                .flatten()
            {
                let expr = rule
                    .get("expr")
                    .and_then(Yaml::as_str)
                    .context("rule without expr")?;
                let name = if let Some(r) = rule.get("record").and_then(Yaml::as_str) {
                    rules.recorded.insert(r.to_string());
                    format!("record {r}")
                } else {
                    let a = rule
                        .get("alert")
                        .and_then(Yaml::as_str)
                        .context("rule without record or alert")?;
                    rules.alerts.push(a.to_string());
                    format!("alert {a}")
                };
                rules.exprs.push(Expr {
                    origin: format!("{}: {name}", file.display()),
                    expr: expr.to_string(),
                });
            }
        }
    }
    Ok(rules)
}

/// Every PromQL expression of the dashboards: panel targets and the metric of `label_values(metric, label)`
/// variable queries.
pub fn load_dashboard_exprs(files: &[PathBuf]) -> Result<Vec<Expr>> {
    let label_values =
        Regex::new(r"^\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$").expect("regex");
    let mut out = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
        let doc: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", file.display()))?;
        let mut found = Vec::new();
        collect_exprs(&doc, "", &mut found);
        for (path, expr) in found {
            let expr = match label_values.captures(&expr) {
                Some(c) => c[1].to_string(),
                None => expr,
            };
            out.push(Expr {
                origin: format!("{}: {path}", file.display()),
                expr,
            });
        }
    }
    Ok(out)
}

fn collect_exprs(v: &serde_json::Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(m) => {
            let title = m
                .get("title")
                .and_then(|t| t.as_str())
                .map(|t| format!("{path}/{t}"));
            let path = title.as_deref().unwrap_or(path);
            for (k, child) in m {
                match (k.as_str(), child) {
                    ("expr", serde_json::Value::String(e)) => {
                        out.push((path.to_string(), e.clone()))
                    }
                    // Variable queries: {"query": "...", "refId": ...} or a plain string.
                    ("query", serde_json::Value::String(e)) if e.contains("label_values(") => {
                        out.push((path.to_string(), e.clone()))
                    }
                    _ => collect_exprs(child, path, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|c| collect_exprs(c, path, out)),
        _ => {}
    }
}

/// Divides the durations of `for:` values, range selectors and offsets in a rule file by `factor` (see the
/// module docs). Fails on a duration it cannot parse rather than leaving it unscaled.
pub fn scale_durations(text: &str, factor: u64) -> Result<String> {
    let dur = r"(?:\d+(?:ms|[smhdwy]))+";
    let for_re = Regex::new(&format!(r"(?m)^([ \t]*for:[ \t]*)({dur})[ \t]*$")).expect("regex");
    let range_re = Regex::new(&format!(r"\[({dur})\]")).expect("regex");
    let offset_re = Regex::new(&format!(r"\boffset\s+({dur})")).expect("regex");
    let scale = |d: &str| -> String {
        let ms = parse_duration_ms(d).expect("matched by the duration regex");
        format!("{}s", (ms / 1000 / factor).max(1))
    };
    let text = for_re.replace_all(text, |c: &Captures| format!("{}{}", &c[1], scale(&c[2])));
    let text = range_re.replace_all(&text, |c: &Captures| format!("[{}]", scale(&c[1])));
    let text = offset_re.replace_all(&text, |c: &Captures| format!("offset {}", scale(&c[1])));
    if Regex::new(r"(?m)^\s*for:\s*\S*[0-9]+m\b")
        .expect("regex")
        .is_match(&text)
    {
        bail!("a for: duration was left unscaled");
    }
    Ok(text.into_owned())
}

/// `1h30m` -> milliseconds (Prometheus duration syntax).
pub fn parse_duration_ms(d: &str) -> Option<u64> {
    let re = Regex::new(r"(\d+)(ms|[smhdwy])").expect("regex");
    let mut total = 0u64;
    let mut consumed = 0;
    for c in re.captures_iter(d) {
        let n: u64 = c[1].parse().ok()?;
        let unit = match &c[2] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        total += n * unit;
        consumed += c[0].len();
    }
    (consumed == d.len() && consumed > 0).then_some(total)
}

/// Local addresses for the run: one entry per scrape job of `config/prometheus/prometheus.yml`.
pub struct LocalTargets<'a> {
    pub jobs: &'a [(&'a str, Vec<String>)],
    pub alertmanager: String,
    pub rule_files: Vec<PathBuf>,
    pub interval: &'a str,
}

/// `config/prometheus/prometheus.yml` with local targets, the given rule files and short intervals. Every job named
/// in `targets.jobs` must exist in the real file (so the test breaks when the real job names change); jobs not
/// named are dropped.
pub fn local_prometheus_config(root: &Path, targets: &LocalTargets) -> Result<String> {
    let path = root.join("config/prometheus/prometheus.yml");
    let mut doc: Yaml = serde_norway::from_str(&std::fs::read_to_string(&path)?)?;
    let map = doc
        .as_mapping_mut()
        .context("prometheus.yml is not a mapping")?;
    let global = map
        .get_mut("global")
        .and_then(Yaml::as_mapping_mut)
        .context("no global")?;
    global.insert("scrape_interval".into(), targets.interval.into());
    global.insert("evaluation_interval".into(), targets.interval.into());
    let files: Vec<Yaml> = targets
        .rule_files
        .iter()
        .map(|p| Yaml::from(p.display().to_string()))
        .collect();
    map.insert("rule_files".into(), Yaml::Sequence(files));
    let am: Yaml = serde_norway::from_str(&format!(
        "alertmanagers: [{{static_configs: [{{targets: ['{}']}}]}}]",
        targets.alertmanager
    ))?;
    map.insert("alerting".into(), am);
    let jobs = map
        .get_mut("scrape_configs")
        .and_then(Yaml::as_sequence_mut)
        .context("no scrape_configs")?;
    let mut kept = Vec::new();
    for (job, addrs) in targets.jobs {
        let mut cfg = jobs
            .iter()
            .find(|j| j.get("job_name").and_then(Yaml::as_str) == Some(job))
            .with_context(|| format!("prometheus.yml has no job {job}"))?
            .clone();
        let statics: Yaml = serde_norway::from_str(&format!("[{{targets: {addrs:?}}}]"))?;
        cfg.as_mapping_mut()
            .context("job is not a mapping")?
            .insert("static_configs".into(), statics);
        kept.push(cfg);
    }
    *jobs = kept;
    Ok(serde_norway::to_string(&doc)?)
}

/// `config/alertmanager/alertmanager.yml` with every receiver sending to `webhook_url` (resolved alerts too) and
/// second-scale grouping, so notifications leave as soon as Prometheus sends an alert. Routes and inhibition rules
/// are the real ones.
pub fn local_alertmanager_config(root: &Path, webhook_url: &str) -> Result<String> {
    let path = root.join("config/alertmanager/alertmanager.yml");
    let mut doc: Yaml = serde_norway::from_str(&std::fs::read_to_string(&path)?)?;
    let map = doc
        .as_mapping_mut()
        .context("alertmanager.yml is not a mapping")?;
    let route = map
        .get_mut("route")
        .and_then(Yaml::as_mapping_mut)
        .context("no route")?;
    route.insert("group_wait".into(), "1s".into());
    route.insert("group_interval".into(), "1s".into());
    route.insert("repeat_interval".into(), "1h".into());
    let receivers = map
        .get_mut("receivers")
        .and_then(Yaml::as_sequence_mut)
        .context("no receivers")?;
    for r in receivers.iter_mut() {
        let hook: Yaml =
            serde_norway::from_str(&format!("[{{url: '{webhook_url}', send_resolved: true}}]"))?;
        r.as_mapping_mut()
            .context("receiver is not a mapping")?
            .insert("webhook_configs".into(), hook);
    }
    Ok(serde_norway::to_string(&doc)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_for_ranges_and_offsets_only() {
        let src = "      - record: x:rate5m\n        expr: rate(a[5m]) > 3 * rate(b[1h] offset 1d)\n        for: 10m\n        annotations:\n          d: 'for 2m'\n";
        let out = scale_durations(src, 60).unwrap();
        assert_eq!(
            out,
            "      - record: x:rate5m\n        expr: rate(a[5s]) > 3 * rate(b[60s] offset 1440s)\n        for: 10s\n        annotations:\n          d: 'for 2m'\n"
        );
        assert_eq!(scale_durations("for: 30s\n", 60).unwrap(), "for: 1s\n");
        assert_eq!(parse_duration_ms("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration_ms("5x"), None);
    }
}

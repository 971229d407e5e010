//! `docker-compose.yml` as data: its services, their commands, environments and bind mounts, with each container
//! path mapped to the repository file mounted there. Used to check the compose file and to run its services as
//! plain processes (no container engine here).

use anyhow::{ensure, Context, Result};
use serde_norway::Value as Yaml;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The parsed compose file, `<<` merges applied.
pub struct Compose {
    root: PathBuf,
    doc: Yaml,
}

impl Compose {
    /// `docker-compose.yml` at the repository root `root`.
    pub fn load(root: &Path) -> Result<Compose> {
        let mut doc: Yaml =
            serde_norway::from_str(&std::fs::read_to_string(root.join("docker-compose.yml"))?)?;
        doc.apply_merge()?;
        Ok(Compose {
            root: root.to_path_buf(),
            doc,
        })
    }

    pub fn services(&self) -> Result<&serde_norway::Mapping> {
        self.doc
            .get("services")
            .and_then(Yaml::as_mapping)
            .context("no services")
    }

    pub fn service(&self, name: &str) -> Result<&Yaml> {
        self.services()?
            .get(name)
            .with_context(|| format!("compose has no service {name}"))
    }

    /// Names of every service.
    pub fn names(&self) -> Result<Vec<String>> {
        Ok(self
            .services()?
            .keys()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect())
    }

    /// (host source, container path) of a service's bind mounts; a mount of a missing path is an error.
    pub fn bind_mounts(&self, svc: &Yaml) -> Result<Vec<(PathBuf, String)>> {
        let mut out = Vec::new();
        for v in strs(svc.get("volumes")) {
            let parts: Vec<&str> = v.split(':').collect();
            if parts[0].starts_with("./") {
                let host = self.root.join(parts[0].trim_start_matches("./"));
                ensure!(
                    host.exists(),
                    "compose mounts {} which does not exist",
                    parts[0]
                );
                out.push((host, parts[1].to_string()));
            }
        }
        Ok(out)
    }
}

/// The strings of a YAML sequence (empty when absent).
pub fn strs(v: Option<&Yaml>) -> Vec<String> {
    v.and_then(Yaml::as_sequence)
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A service's `environment` mapping, interpolated as compose does it from the shell's variables (`host`):
/// `${VAR}`, `${VAR:-default}` (when unset or empty), `${VAR:?message}` (an error when unset or empty: compose
/// refuses to start) and `$$` for a `$`.
pub fn environment(
    svc: &Yaml,
    host: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>> {
    let Some(m) = svc.get("environment").and_then(Yaml::as_mapping) else {
        return Ok(BTreeMap::new());
    };
    let mut out = BTreeMap::new();
    for (k, v) in m {
        let k = k
            .as_str()
            .context("an environment key that is not a string")?;
        let v = match v {
            Yaml::String(s) => interpolate(s, &host).with_context(|| format!("environment {k}"))?,
            Yaml::Number(n) => n.to_string(),
            Yaml::Bool(b) => b.to_string(),
            _ => String::new(),
        };
        out.insert(k.to_string(), v);
    }
    Ok(out)
}

/// Compose's interpolation of one value (see [`environment`]).
fn interpolate(s: &str, host: &impl Fn(&str) -> Option<String>) -> Result<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        let inner = rest
            .strip_prefix('{')
            .and_then(|r| r.find('}').map(|j| &r[..j]))
            .with_context(|| format!("only ${{VAR}} forms are interpolated here: {s}"))?;
        rest = &rest[inner.len() + 2..];
        let set = |name: &str| host(name).filter(|v| !v.is_empty());
        let value = if let Some((name, default)) = inner.split_once(":-") {
            set(name).unwrap_or_else(|| default.to_string())
        } else if let Some((name, message)) = inner.split_once(":?") {
            set(name).with_context(|| {
                format!("required variable {name} is missing a value: {message}")
            })?
        } else {
            host(inner).unwrap_or_default()
        };
        out.push_str(&value);
    }
    out.push_str(rest);
    Ok(out)
}

/// The host file mounted at `container_path` (or inside a mounted directory).
pub fn host_path(mounts: &[(PathBuf, String)], container_path: &str) -> Option<PathBuf> {
    mounts.iter().find_map(|(host, c)| {
        if c == container_path {
            Some(host.clone())
        } else {
            container_path
                .strip_prefix(&format!("{c}/"))
                .map(|rest| host.join(rest))
        }
    })
}

/// The argument after `flag` in a command.
pub fn arg_after(cmd: &[String], flag: &str) -> Option<String> {
    cmd.iter()
        .position(|a| a == flag)
        .and_then(|i| cmd.get(i + 1).cloned())
}

/// (host, container) of a service's published ports.
pub fn published(svc: &Yaml) -> Vec<(u16, u16)> {
    strs(svc.get("ports"))
        .iter()
        .filter_map(|p| {
            let (h, c) = p.rsplit_once(':')?;
            Some((h.rsplit(':').next()?.parse().ok()?, c.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_as_compose_does() {
        let host = |k: &str| match k {
            "SET" => Some("value".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let ok = |s: &str| interpolate(s, &host).unwrap();
        assert_eq!(ok("plain"), "plain");
        assert_eq!(ok("a ${SET} b"), "a value b");
        assert_eq!(ok("${UNSET}"), "");
        assert_eq!(ok("${UNSET:-x y}|${EMPTY:-d}|${SET:-d}"), "x y|d|value");
        assert_eq!(ok("$${SET} costs $$5"), "${SET} costs $5");
        assert_eq!(ok("${SET:?needed}"), "value");
        for missing in ["${UNSET:?set it}", "${EMPTY:?set it}"] {
            let e = interpolate(missing, &host).unwrap_err().to_string();
            assert!(e.ends_with("is missing a value: set it"), "{e}");
        }
        assert!(interpolate("$SET", &host).is_err());
    }
}

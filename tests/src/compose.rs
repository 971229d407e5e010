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

/// A service's `environment` mapping.
pub fn environment(svc: &Yaml) -> BTreeMap<String, String> {
    svc.get("environment")
        .and_then(Yaml::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    let v = match v {
                        Yaml::String(s) => s.clone(),
                        Yaml::Number(n) => n.to_string(),
                        Yaml::Bool(b) => b.to_string(),
                        _ => String::new(),
                    };
                    Some((k.as_str()?.to_string(), v))
                })
                .collect()
        })
        .unwrap_or_default()
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

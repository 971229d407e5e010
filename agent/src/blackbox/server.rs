//! `vantage-agent blackbox`: blackbox_exporter's endpoints on its flags. `GET /probe?module=&target=` (with
//! `debug=true` and `hostname=`), `GET /metrics` (the exporter's own), `GET /-/healthy`, `POST /-/reload` and
//! SIGHUP to read the module file again (a bad file keeps the last good one, as blackbox_exporter does).
//! [`Exporter::probe_response`] also answers `/probe` on the agent's own server when its config has
//! `blackbox_modules:`.

use super::modules::Modules;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use vantage_common::Shutdown;

/// The module file and what the exporter counts about itself.
pub struct Exporter {
    path: PathBuf,
    modules: RwLock<Arc<Modules>>,
    /// Seconds taken off the scrape's timeout (`--timeout-offset`).
    offset: f64,
    unknown_module: AtomicU64,
    reload_ok: AtomicU64,
    reload_at: AtomicU64,
    probes_ok: AtomicU64,
    probes_failed: AtomicU64,
}

impl Exporter {
    /// Loads the module file; the error says where it is wrong.
    pub fn load(
        path: PathBuf,
        offset: f64,
    ) -> Result<Arc<Exporter>, vantage_common::config::ConfigError> {
        let modules = Arc::new(Modules::load(&path)?);
        Ok(Self::with(path, modules, offset))
    }

    /// An exporter on modules already read from `path` (which reloads read again).
    pub fn with(path: PathBuf, modules: Arc<Modules>, offset: f64) -> Arc<Exporter> {
        Arc::new(Exporter {
            path,
            modules: RwLock::new(modules),
            offset,
            unknown_module: AtomicU64::new(0),
            reload_ok: AtomicU64::new(1),
            reload_at: AtomicU64::new(now_secs()),
            probes_ok: AtomicU64::new(0),
            probes_failed: AtomicU64::new(0),
        })
    }

    pub fn modules(&self) -> Arc<Modules> {
        self.modules.read().expect("not poisoned").clone()
    }

    /// Reads the module file again; on error the modules in use stay.
    pub fn reload(&self) -> Result<usize, String> {
        match Modules::load(&self.path) {
            Ok(m) => {
                let n = m.modules.len();
                *self.modules.write().expect("not poisoned") = Arc::new(m);
                self.reload_ok.store(1, Ordering::Relaxed);
                self.reload_at.store(now_secs(), Ordering::Relaxed);
                tracing::info!(modules = n, file = %self.path.display(), "module file reloaded");
                Ok(n)
            }
            Err(e) => {
                self.reload_ok.store(0, Ordering::Relaxed);
                tracing::error!(error = %e, "module file not reloaded; the previous modules stay");
                Err(e.to_string())
            }
        }
    }

    /// Answers `/probe` for the query string `query` and the scrape's timeout header.
    pub async fn probe_response(
        &self,
        query: Option<&str>,
        scrape_timeout: Option<&str>,
    ) -> Response<Full<Bytes>> {
        let params: Vec<(String, String)> =
            url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let name = param("module")
            .filter(|m| !m.is_empty())
            .unwrap_or("http_2xx");
        let modules = self.modules();
        let Some(module) = modules.get(name) else {
            self.unknown_module.fetch_add(1, Ordering::Relaxed);
            return text(
                StatusCode::BAD_REQUEST,
                format!("Unknown module {name:?}\n"),
            );
        };
        let scrape = match scrape_timeout.map(|v| v.trim().parse::<f64>()) {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(e)) => {
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("Failed to parse timeout from Prometheus header: {e}\n"),
                )
            }
        };
        let Some(target) = param("target").filter(|t| !t.is_empty()) else {
            return text(
                StatusCode::BAD_REQUEST,
                "Target parameter is missing\n".into(),
            );
        };
        let timeout = super::probe_timeout(module, scrape, self.offset);
        let outcome = super::probe(name, module, target, param("hostname"), timeout).await;
        let counter = if outcome.success {
            &self.probes_ok
        } else {
            &self.probes_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let metrics = outcome.families.encode();
        if param("debug") == Some("true") {
            let config = serde_norway::to_string(module.as_ref()).unwrap_or_default();
            let body = format!(
                "Logs for the probe:\n{}\n\n\n\nMetrics that would have been returned:\n{metrics}\n\n\nModule configuration:\n{config}",
                outcome.log.lines().join("\n"),
            );
            return text(StatusCode::OK, body);
        }
        Response::builder()
            .header(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )
            .body(Full::new(Bytes::from(metrics)))
            .expect("static response parts are valid")
    }

    /// The exporter's own metrics (text format).
    fn own_metrics(&self) -> String {
        format!(
            "# HELP blackbox_exporter_config_last_reload_successful Blackbox exporter config loaded successfully.\n\
             # TYPE blackbox_exporter_config_last_reload_successful gauge\n\
             blackbox_exporter_config_last_reload_successful {}\n\
             # HELP blackbox_exporter_config_last_reload_success_timestamp_seconds Timestamp of the last successful configuration reload.\n\
             # TYPE blackbox_exporter_config_last_reload_success_timestamp_seconds gauge\n\
             blackbox_exporter_config_last_reload_success_timestamp_seconds {}\n\
             # HELP blackbox_module_unknown_total Count of unknown modules requested by probes\n\
             # TYPE blackbox_module_unknown_total counter\n\
             blackbox_module_unknown_total {}\n\
             # HELP vantage_blackbox_probes_total Probes answered on /probe, by result.\n\
             # TYPE vantage_blackbox_probes_total counter\n\
             vantage_blackbox_probes_total{{result=\"success\"}} {}\n\
             vantage_blackbox_probes_total{{result=\"failure\"}} {}\n\
             # HELP vantage_blackbox_modules Modules in the loaded module file.\n\
             # TYPE vantage_blackbox_modules gauge\n\
             vantage_blackbox_modules {}\n",
            self.reload_ok.load(Ordering::Relaxed),
            self.reload_at.load(Ordering::Relaxed),
            self.unknown_module.load(Ordering::Relaxed),
            self.probes_ok.load(Ordering::Relaxed),
            self.probes_failed.load(Ordering::Relaxed),
            self.modules().modules.len(),
        )
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

/// The scrape's timeout header, as blackbox_exporter reads it.
pub const SCRAPE_TIMEOUT_HEADER: &str = "x-prometheus-scrape-timeout-seconds";

async fn route(exporter: &Exporter, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    match (req.method(), path) {
        (&Method::GET, "/probe") => {
            let timeout = req
                .headers()
                .get(SCRAPE_TIMEOUT_HEADER)
                .and_then(|v| v.to_str().ok());
            exporter.probe_response(req.uri().query(), timeout).await
        }
        (&Method::GET, "/metrics") => Response::builder()
            .header(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )
            .body(Full::new(Bytes::from(exporter.own_metrics())))
            .expect("static response parts are valid"),
        (&Method::GET, "/-/healthy") => text(StatusCode::OK, "Healthy\n".into()),
        (&Method::POST | &Method::PUT, "/-/reload") => match exporter.reload() {
            Ok(_) => text(StatusCode::OK, "OK\n".into()),
            Err(e) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("failed to reload config: {e}\n"),
            ),
        },
        (_, "/-/reload") => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "This endpoint requires a POST request.\n".into(),
        ),
        (&Method::GET, "/") => {
            let names: Vec<String> = exporter.modules().modules.keys().cloned().collect();
            text(
                StatusCode::OK,
                format!(
                    "Vantage blackbox_exporter drop-in\n\nProbe: /probe?module=<module>&target=<target> (&debug=true)\nModules: {}\nOwn metrics: /metrics\n",
                    names.join(", ")
                ),
            )
        }
        _ => text(StatusCode::NOT_FOUND, "404 page not found\n".into()),
    }
}

/// Reads the module file again on every SIGHUP (a task of its own).
pub fn reload_on_sighup(exporter: Arc<Exporter>) {
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            let _ = exporter.reload();
        }
    });
}

/// Serves until shutdown; SIGHUP reloads the module file.
pub async fn serve(listener: TcpListener, exporter: Arc<Exporter>, shutdown: Shutdown) {
    reload_on_sighup(exporter.clone());
    crate::server::accept_loop(listener, shutdown, move |req| {
        let exporter = exporter.clone();
        async move { route(&exporter, req).await }
    })
    .await
}

//! Building and running the server on a given listener with a given shutdown signal (tests use this too).

use crate::body_budget::BodyBudget;
use crate::cardinality::Budgets;
use crate::config::Settings;
use crate::conn_watchdog::{ConnGuard, Watchdog};
use crate::http;
use crate::metrics::{route_label, Metrics};
use crate::ratelimit::RateLimiter;
use crate::shape::UaParser;
use crate::state::AppState;
use crate::store::{Store, StoreConfig};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpServer};
use prometheus_client::registry::Registry;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use vantage_common::{Shutdown, ShutdownTrigger};

/// A server bound to its listener, with its store open, not yet serving.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    state: web::Data<AppState>,
    stopping: ShutdownTrigger,
}

impl Application {
    /// Opens the store (migrations), registers metrics and binds the app to `listener`.
    pub async fn build(settings: Settings, listener: TcpListener) -> anyhow::Result<Self> {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        crate::protocol_errors::register(&mut registry);
        let s = &settings.storage;
        let store = Store::open(
            &StoreConfig {
                url: s.url.clone(),
                queue_capacity: s.queue_capacity,
                max_batch_events: s.max_batch_events,
                busy_retry_after_secs: s.busy_retry_after_secs,
                max_client_ahead_ms: settings.limits.max_future.as_millis() as i64,
                max_client_behind_ms: settings.limits.max_past.as_millis() as i64,
                write_timeout: s.write_timeout,
                spool: s.spool.clone(),
            },
            &mut registry,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}", settings.redactor.redact(&e.to_string())))?;
        let limits: Vec<_> = settings.sites.iter().map(|s| s.rate_limit).collect();
        let limiter = RateLimiter::new(&limits);
        let body_budget = BodyBudget::new(settings.limits.body_memory_bytes, &mut registry);
        let watchdog = Watchdog::new(
            settings.limits.head_timeout,
            settings.limits.answer_stall_timeout,
            &mut registry,
        );
        let (stopping, shutdown) = vantage_common::shutdown::channel();
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let max_connections = connection_cap(settings.limits.max_connections);
        let symbolicator = crate::jserror::symbolicate::Symbolicator::new(
            store.clone(),
            settings.sourcemaps.cache_bytes,
        );
        let state = web::Data::new(AppState {
            settings,
            store,
            symbolicator,
            known_groups: Default::default(),
            recent_batches: Default::default(),
            metrics,
            registry,
            budgets: Budgets::default(),
            limiter,
            ua: UaParser::default(),
            body_budget,
            watchdog: watchdog.clone(),
            shutdown,
        });
        let port = listener.local_addr()?.port();
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .wrap(from_fn(track_request))
                .service(
                    web::resource("/v1/events")
                        .wrap(from_fn(cors_headers))
                        .route(web::post().to(http::events::post))
                        .route(
                            web::method(actix_web::http::Method::OPTIONS)
                                .to(http::events::preflight),
                        ),
                )
                // Before `/v1/stats/{kind}`, which would take these names as unknown kinds.
                .route("/v1/stats/sites", web::get().to(http::stats::sites))
                .route("/v1/stats/timeline", web::get().to(http::stats::timeline))
                .route("/v1/stats/sessions", web::get().to(http::sessions::list))
                .route(
                    "/v1/stats/sessions/{id}",
                    web::get().to(http::sessions::events),
                )
                .route("/v1/stats/{kind}", web::get().to(http::stats::get))
                .route(
                    "/v1/stats/errors/{group}",
                    web::get().to(http::stats::error_group),
                )
                .service(
                    web::resource("/v1/admin/sourcemaps")
                        .route(web::post().to(http::sourcemaps::upload))
                        .route(web::get().to(http::sourcemaps::list))
                        .route(web::delete().to(http::sourcemaps::delete)),
                )
                .route(
                    "/v1/admin/sessions/{site}/{session_id}",
                    web::delete().to(http::admin::delete_session),
                )
                .route("/", web::get().to(http::ui::root))
                .route("/ui", web::get().to(http::ui::redirect))
                .route("/ui/{file:.*}", web::get().to(http::ui::get))
                .route("/ui/{file:.*}", web::head().to(http::ui::get))
                .route("/metrics", web::get().to(http::health::metrics))
                .route("/healthz", web::get().to(http::health::healthz))
                .route("/readyz", web::get().to(http::health::readyz))
                .route("/rum-sdk.js", web::get().to(http::sdk::get))
                // CDNs and uptime checks ask with HEAD; actix sends the same headers without the body.
                .route("/rum-sdk.js", web::head().to(http::sdk::get))
                .route(
                    "/rum-sdk.{version}.js",
                    web::get().to(http::sdk::get_versioned),
                )
                .route(
                    "/rum-sdk.{version}.js",
                    web::head().to(http::sdk::get_versioned),
                )
        })
        // Every plain TCP connection is registered with the watchdog for as long as actix keeps it.
        .on_connect(move |io, data| {
            if let Some(socket) = io.downcast_ref::<actix_web::rt::net::TcpStream>() {
                if let Some(guard) = watchdog.register(socket.as_raw_fd()) {
                    data.insert(guard);
                }
            }
        })
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
        .workers(workers)
        // actix counts connections per worker.
        .max_connections(max_connections.div_ceil(workers))
        // No lingering read after an answer that leaves a body unread: `http::events` has already read the
        // little it allows, and lingering would read whatever the client sends for another second.
        .client_disconnect_timeout(Duration::ZERO)
        .listen(listener)?
        .run();
        Ok(Self {
            port,
            server,
            state,
            stopping,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` fires; then stops accepting, finishes in-flight requests, drains and commits
    /// the store queue, and returns.
    pub async fn run(self, mut shutdown: Shutdown) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let retention = tokio::spawn(retention_loop(self.state.clone(), shutdown.clone()));
        let watchdog = tokio::spawn(self.state.watchdog.clone().run());
        let stopping = self.stopping;
        let stopper = tokio::spawn(async move {
            shutdown.recv().await;
            tracing::info!("shutdown: no longer accepting; finishing in-flight requests");
            // Requests still waiting for their body answer 503 now; idle connections are closed by actix's
            // graceful stop; requests being stored finish.
            stopping.trigger();
            handle.stop(true).await;
        });
        let served = self.server.await;
        stopper.abort();
        retention.abort();
        watchdog.abort();
        self.state.store.shutdown().await;
        tracing::info!("shutdown: store drained and committed");
        Ok(served?)
    }
}

/// Deletes events older than `storage.retention_days` every `storage.retention_interval`.
async fn retention_loop(state: web::Data<AppState>, mut shutdown: Shutdown) {
    let days = state.settings.storage.retention_days;
    if days == 0 {
        return;
    }
    let mut tick = tokio::time::interval(state.settings.storage.retention_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.recv() => return,
            _ = tick.tick() => {}
        }
        let cutoff = crate::clock::now_ms() - (days as i64) * 86_400_000;
        match state.store.delete_older_than(cutoff).await {
            Ok(n) => tracing::info!(
                deleted = n.events,
                dropped_partitions = n.partitions,
                retention_days = days,
                "retention pass"
            ),
            Err(e) => tracing::warn!(error = %e, "retention pass failed"),
        }
    }
}

/// Self-metrics for every request: count by route and status, latency by route.
async fn track_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    // A request in progress: the connection's head deadline waits for its end.
    let _in_progress = req.conn_data::<ConnGuard>().map(ConnGuard::request);
    let res = next.call(req).await?;
    if let Some(state) = state {
        let route = route_label(res.request().match_pattern().as_deref());
        state
            .metrics
            .request(route, res.status().as_u16(), start.elapsed().as_secs_f64());
    }
    Ok(res)
}

/// Responses to allowed browser origins carry `Access-Control-Allow-Origin`, errors included, so pages can read them.
async fn cors_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let allowed = match (&origin, req.app_data::<web::Data<AppState>>()) {
        (Some(o), Some(state)) => o.to_str().is_ok_and(|o| state.origin_allowed(o)),
        _ => false,
    };
    let mut res = next.call(req).await?;
    if let (true, Some(origin)) = (allowed, origin) {
        let h = res.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Retry-After"),
        );
    }
    Ok(res)
}

/// Grace period the HTTP layer has to finish in-flight requests at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// File descriptors kept for everything but client connections: the listener, the store's files or
/// database connections, the runtime's own.
pub const FD_RESERVE: u64 = 256;

/// The connection cap in force: `configured`, lowered so that two descriptors per connection stay
/// [`FD_RESERVE`] below the open-file limit,
/// which is first raised to its hard limit (the soft limit is often 1024 while the hard one is far higher).
pub fn connection_cap(configured: usize) -> usize {
    let files = raise_open_file_limit();
    // Each connection takes two descriptors: its socket, and the duplicate the connection watchdog holds.
    let cap = usize::try_from(files.saturating_sub(FD_RESERVE) / 2)
        .unwrap_or(usize::MAX)
        .clamp(1, configured.max(1));
    if cap < configured {
        tracing::warn!(
            max_connections = configured,
            open_file_limit = files,
            cap,
            "limits.max_connections is above what the open-file limit allows; capping connections"
        );
    } else {
        tracing::info!(
            max_connections = cap,
            open_file_limit = files,
            "connection cap"
        );
    }
    cap
}

/// Raises the soft RLIMIT_NOFILE to the hard limit where allowed; returns the soft limit in force.
fn raise_open_file_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

//! `vantage-ingest`: receives batched browser (RUM) events, validates and shapes them, stores them durably and
//! exposes bounded-cardinality Prometheus metrics and a stats API.
//!
//! # Layout
//! - [`config`]: the YAML config (`config/ingest.yaml`), defaults and semantic checks.
//! - [`conn_watchdog`]: deadlines actix leaves open on kept-alive connections (later heads, unread answers).
//! - [`startup`]: builds the state and the actix app on a given listener and runs it until a
//!   [`vantage_common::Shutdown`].
//! - [`state`]: [`state::AppState`], what every handler shares.
//! - [`auth`]: API keys, site tokens and admin tokens (JWT), allowed origins.
//! - [`admin_token`]: `vantage-ingest token`, an admin token signed with the config's HS256 secret.
//! - [`decode`]: content type, body size and time limits, bounded gzip inflation.
//! - [`body_budget`]: the server-wide budget of memory that request bodies in flight may hold.
//! - [`event`]: the wire format and per-event validation.
//! - [`envelope`]: the batch's own fields, `batch_id` and `dropped` (events the sender lost).
//! - [`recent_batches`]: the batches this node accepted lately (a retry of one is answered at once).
//! - [`jserror`]: error stacks parsed, symbolicated with uploaded source maps, and grouped.
//! - [`route_pattern`]: the route patterns a site configures (`/blog/:slug`, `/docs/*`).
//! - [`shape`]: validated events into store records and metric observations (route templates, endpoint
//!   labels, status classes, user agents).
//! - [`clock`]: the wall clock in Unix milliseconds.
//! - [`truncate`]: untrusted text cut to a byte budget on a character boundary.
//! - [`cardinality`]: per-site label budgets (values past the budget become `other`).
//! - [`ratelimit`]: per-site token buckets counted in events.
//! - [`metrics`]: RUM metrics and the server's own telemetry.
//! - [`protocol_errors`]: client mistakes at the HTTP level, counted instead of logged at ERROR.
//! - [`http`]: one module per endpoint group.
//! - [`store`]: the durable event store (SQLite / PostgreSQL) with group commit, its health while the database
//!   is away, and a PostgreSQL store's local spool; uploaded source maps and error groups.
//! - [`upload`]: `vantage-ingest sourcemaps upload`, the client CI runs to upload a release's maps.

pub mod admin_token;
pub mod auth;
pub mod body_budget;
pub mod cardinality;
pub mod clock;
pub mod config;
pub mod conn_watchdog;
pub mod decode;
pub mod envelope;
pub mod event;
pub mod http;
pub mod jserror;
pub mod metrics;
pub mod protocol_errors;
pub mod ratelimit;
pub mod recent_batches;
pub mod route_pattern;
pub mod shape;
pub mod shared_fields;
pub mod startup;
pub mod state;
pub mod store;
pub mod truncate;
pub mod upload;

//! `POST /v1/events` (and its CORS preflight): auth -> decode -> envelope (a retried batch answered at once) ->
//! validate -> errors (symbolicate, group) -> shape -> store -> metrics.

use crate::auth::{self, AuthError};
use crate::body_budget::{Exhausted, Reservation};
use crate::decode::{self, DecodeError};
use crate::envelope::{BatchId, Dropped};
use crate::event::{self, Batch, Rejection, ValidEvent};
use crate::metrics::Observation;
use crate::recent_batches::Accepted;
use crate::shape::Shaper;
use crate::shared_fields::Shared;
use crate::state::AppState;
use crate::store::{EventRecord, SubmitError, SubmitOutcome, Text};
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use std::borrow::Cow;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// Every way `POST /v1/events` can fail as a whole (single events fail inside a 202).
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("malformed JSON at line {line} column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("batch has {count} events; the limit is {limit}")]
    TooManyEvents { count: usize, limit: usize },
    #[error("site is over its rate limit; retry after {retry_after}s")]
    RateLimited { retry_after: u64 },
    #[error("the event store is behind; retry after {retry_after}s")]
    Busy { retry_after: u64 },
    /// The store cannot write now (database down, disk full, ...): nothing was stored, a retry will work.
    #[error("the event store is unavailable; retry after {retry_after}s")]
    Unavailable { retry_after: u64 },
    #[error("the server is shutting down; retry shortly")]
    Closed,
    /// Cause kept for the log; the body says nothing internal.
    #[error("internal error")]
    Store(String),
}

impl ResponseError for EventsError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Auth(AuthError::Origin(_)) => StatusCode::FORBIDDEN,
            Self::Auth(_) => StatusCode::UNAUTHORIZED,
            Self::Decode(DecodeError::TooLarge { .. } | DecodeError::InflatedTooLarge { .. })
            | Self::TooManyEvents { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Decode(DecodeError::ContentType(_) | DecodeError::ContentEncoding(_)) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::Decode(DecodeError::Timeout { .. } | DecodeError::TooSlow { .. }) => {
                StatusCode::REQUEST_TIMEOUT
            }
            Self::Decode(DecodeError::OverBudget | DecodeError::ShuttingDown)
            | Self::Busy { .. }
            | Self::Closed => StatusCode::SERVICE_UNAVAILABLE,
            Self::Decode(_) | Self::Json { .. } => StatusCode::BAD_REQUEST,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        match self {
            Self::RateLimited { retry_after }
            | Self::Busy { retry_after }
            | Self::Unavailable { retry_after } => {
                res.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            Self::Closed | Self::Decode(DecodeError::OverBudget | DecodeError::ShuttingDown) => {
                res.insert_header((header::RETRY_AFTER, "1"));
            }
            Self::Auth(_) => {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            _ => {}
        }
        res.json(serde_json::json!({ "error": self.to_string() }))
    }
}

/// The 202 body.
#[derive(Debug, Serialize)]
pub struct EventsResponse {
    /// Events stored (or already stored: retries with the same `event_id`).
    pub accepted: usize,
    pub rejected: Vec<RejectedEvent>,
    /// Fields dropped from accepted events, by index; the batch's own fields ignored, without one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    /// Of the accepted events, those already stored earlier (idempotent retries).
    pub duplicates: usize,
}

/// The 200 body for a batch recognised by its `batch_id` as a retry of one accepted lately: nothing was
/// done now; `accepted` is what its first attempt accepted, all of them stored already.
#[derive(Debug, Serialize)]
pub struct DuplicateBatchResponse {
    pub accepted: u32,
    pub duplicates: u32,
    pub duplicate_batch: bool,
}

#[derive(Debug, Serialize)]
pub struct RejectedEvent {
    pub index: usize,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct Warning {
    /// The event's index; absent for the batch's own fields (`batch_id`, `dropped`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub warning: String,
}

pub async fn post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let mut body = decode::Body::new(payload);
    match accept(&req, &mut body, &state).await {
        Ok(res) => res,
        Err(e) if body.ended() => e.error_response(),
        Err(e) => {
            let stalled = matches!(&e, EventsError::Decode(d) if d.is_stall());
            refuse_early(e, stalled, body).await
        }
    }
}

/// A request refused before its body was read to the end (bad key, too large, too slow, ...): the answer
/// goes out after at most a few KiB more of the body are read, and the connection is closed after it, so a
/// sender of an endless body costs neither reading nor memory. (`stalled`: the sender stopped sending, so
/// nothing more is read.)
pub(super) async fn refuse_early(
    e: impl ResponseError,
    stalled: bool,
    mut body: decode::Body,
) -> HttpResponse {
    if !stalled {
        body.drain_briefly().await;
    }
    let mut res = e.error_response();
    if body.ended() {
        return res;
    }
    res.head_mut().set_connection_type(ConnectionType::Close);
    let payload = body.into_payload();
    res.map_body(|_, answer| UnreadBody {
        answer,
        _payload: payload,
    })
    .map_into_boxed_body()
}

/// An answer that holds the unread request body until it is written: the HTTP layer then sees a body not
/// read to its end, not one given up, and closes the connection rather than draining a chunked body.
struct UnreadBody {
    answer: BoxBody,
    _payload: web::Payload,
}

impl MessageBody for UnreadBody {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.answer.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<web::Bytes, Self::Error>>> {
        Pin::new(&mut self.answer).poll_next(cx)
    }
}

/// Steps 1 to 6 for one request.
async fn accept(
    req: &HttpRequest,
    body: &mut decode::Body,
    state: &AppState,
) -> Result<HttpResponse, EventsError> {
    let site = authenticate(req, state)?;
    let mut reservation = state
        .body_budget
        .reserve()
        .map_err(|Exhausted| DecodeError::OverBudget)?;
    let body = decode(req, body, &mut reservation, state).await?;
    let batch = parse(&body, state)?;
    let site_id: Text = state.settings.sites[site].id.as_str().into();
    let (envelope, mut warnings) = envelope(&batch);
    if let Some(first) = envelope
        .batch_id
        .as_ref()
        .and_then(|id| state.recent_batches.get(site, id, Instant::now()))
    {
        state.metrics.duplicate_batch(&site_id);
        return Ok(HttpResponse::Ok().json(DuplicateBatchResponse {
            accepted: first.events,
            duplicates: first.events,
            duplicate_batch: true,
        }));
    }
    rate_limit(state, site, batch.events.len())?;
    let now_ms = crate::clock::now_ms();
    let (mut valid, mut rejected) = validate(&batch, state, site, now_ms, &mut reservation)?;
    default_user_agent(&mut valid, req, state.settings.limits.max_string_len);
    warnings.extend(collect_warnings(&valid));
    crate::jserror::analyze(&mut valid, &site_id, &state.symbolicator).await;
    let (records, observations) = shape(valid, &body, state, site, &site_id, now_ms);
    let groups = error_groups(&records);
    let outcome = store(state, records).await?;
    // An event already stored came again: in a retry of a batch acknowledged before (its answer was lost, or its
    // first attempt went to another node), or in a hide beacon that joined such a batch with new ones. Each
    // event is counted in the metrics once, when first stored. A batch of nothing new carries no new losses.
    observe(state, &site_id, &observations, &outcome.duplicates);
    let retry = !outcome.duplicates.is_empty() && outcome.inserted == 0 && outcome.spooled == 0;
    if !retry {
        state.metrics.sdk_dropped(&site_id, &envelope.dropped);
        record_groups(state, &site_id, &groups, now_ms).await;
    }
    // Only now, accepted: a batch answered 503 (or refused) is processed whole when it comes again.
    if let Some(id) = &envelope.batch_id {
        let events = u32::try_from(outcome.accepted()).unwrap_or(u32::MAX);
        state
            .recent_batches
            .insert(site, id, Accepted { events }, Instant::now());
    }
    rejected.sort_by_key(|r| r.index);
    Ok(HttpResponse::Accepted().json(EventsResponse {
        accepted: outcome.accepted(),
        rejected,
        warnings,
        duplicates: outcome.duplicates.len(),
    }))
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Step 1: which site sends, from an API key (header or query) or a site token, and whether its origin may.
fn authenticate(req: &HttpRequest, state: &AppState) -> Result<usize, EventsError> {
    let h = req.headers();
    let query_key = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "api_key")
        .map(|(_, v)| v.into_owned());
    let api_key = h
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or(query_key);
    let bearer = header_str(h, header::AUTHORIZATION).and_then(|a| {
        a.strip_prefix("Bearer ")
            .or_else(|| a.strip_prefix("bearer "))
    });
    Ok(auth::authenticate_sender(
        &state.settings.sites,
        state.settings.site_tokens.as_ref(),
        api_key.as_deref(),
        bearer.map(str::trim),
        header_str(h, header::ORIGIN),
    )?)
}

/// Step 2: the body as JSON text, size-checked before and after inflation, its bytes counted in the server's
/// body memory budget. Shared, because every stored event keeps its own JSON as a slice of it.
async fn decode(
    req: &HttpRequest,
    body: &mut decode::Body,
    reservation: &mut Reservation<'_>,
    state: &AppState,
) -> Result<Text, EventsError> {
    let h = req.headers();
    decode::check_content_type(header_str(h, header::CONTENT_TYPE))?;
    let gzip = decode::is_gzip(header_str(h, header::CONTENT_ENCODING))?;
    let limits = &state.settings.limits;
    let body_limits = decode::BodyLimits {
        max_bytes: limits.max_body_bytes,
        timeout: limits.body_timeout,
        min_rate: limits.body_min_rate,
    };
    let len = header_str(h, header::CONTENT_LENGTH).and_then(|v| v.parse().ok());
    let mut shutdown = state.shutdown.clone();
    let bytes = body
        .read(len, &body_limits, reservation, &mut shutdown)
        .await?;
    if gzip {
        let inflated = decode::gunzip(&bytes, limits.max_body_bytes)?;
        reservation
            .grow(inflated.len())
            .map_err(|Exhausted| DecodeError::OverBudget)?;
        text(&inflated)
    } else {
        text(&bytes)
    }
}

/// JSON text is UTF-8; the error says where it is not, as a JSON syntax error would.
fn text(bytes: &[u8]) -> Result<Text, EventsError> {
    std::str::from_utf8(bytes).map(Text::from).map_err(|e| {
        let valid = &bytes[..e.valid_up_to()];
        let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        EventsError::Json {
            line: 1 + valid.iter().filter(|b| **b == b'\n').count(),
            column: 1 + String::from_utf8_lossy(&valid[line_start..])
                .chars()
                .count(),
            message: "invalid UTF-8".into(),
        }
    })
}

/// The batch envelope, within the batch-size limit.
fn parse<'a>(body: &'a str, state: &AppState) -> Result<Batch<'a>, EventsError> {
    let batch: Batch = serde_json::from_str(body).map_err(|e| EventsError::Json {
        line: e.line(),
        column: e.column(),
        message: {
            let m = e.to_string();
            m.split(" at line ").next().unwrap_or(&m).to_string()
        },
    })?;
    let limit = state.settings.limits.max_events_per_batch;
    if batch.events.len() > limit {
        return Err(EventsError::TooManyEvents {
            count: batch.events.len(),
            limit,
        });
    }
    Ok(batch)
}

/// The batch's own fields as read: its idempotency key and the sender's losses (nothing when unusable).
struct Envelope {
    batch_id: Option<BatchId>,
    dropped: Dropped,
}

/// Step 2b: `batch_id` and `dropped`; an unusable one is ignored and reported as a warning without index.
fn envelope(batch: &Batch<'_>) -> (Envelope, Vec<Warning>) {
    let mut warnings = Vec::new();
    let mut warn = |warning| {
        warnings.push(Warning {
            index: None,
            warning,
        })
    };
    let batch_id = batch
        .batch_id
        .and_then(|raw| BatchId::parse(raw).map_err(&mut warn).ok());
    let dropped = batch
        .dropped
        .and_then(|raw| Dropped::parse(raw).map_err(&mut warn).ok())
        .unwrap_or_default();
    (Envelope { batch_id, dropped }, warnings)
}

/// The site's rate limit, counted in events (a retry recognised by its batch id costs none).
/// A batch costs its events, and at least one: an empty batch still carries `dropped` counts, which a page
/// holding the public key could otherwise send without limit.
fn rate_limit(state: &AppState, site: usize, events: usize) -> Result<(), EventsError> {
    state
        .limiter
        .take(site, events.max(1))
        .map_err(|retry_after| EventsError::RateLimited { retry_after })
}

/// The valid events of a body (by their index in it) and the refused ones.
type Validated<'a> = (Vec<(usize, ValidEvent<'a>)>, Vec<RejectedEvent>);

/// Step 3: each event on its own; the bad ones are reported by index and counted by reason. An event stored as
/// other text than the body's (one that took the shared fields of an earlier one, a `page_load` made whole)
/// holds its own copy until the request is answered: the copies count against the body memory budget.
fn validate<'a>(
    batch: &Batch<'a>,
    state: &AppState,
    site: usize,
    now_ms: i64,
    reservation: &mut Reservation<'_>,
) -> Result<Validated<'a>, EventsError> {
    let mut valid = Vec::with_capacity(batch.events.len());
    let mut rejected = Vec::new();
    let mut shared = Shared::default();
    for (index, raw) in batch.events.iter().enumerate() {
        match event::validate(raw, &state.settings.limits, now_ms, &mut shared) {
            Ok(ev) => {
                if let Cow::Owned(copy) = &ev.raw {
                    reservation
                        .grow(copy.len())
                        .map_err(|Exhausted| DecodeError::OverBudget)?;
                }
                valid.push((index, ev))
            }
            Err(Rejection { reason, message }) => {
                state
                    .metrics
                    .rejected(&state.settings.sites[site].id, reason);
                rejected.push(RejectedEvent {
                    index,
                    reason: message,
                });
            }
        }
    }
    Ok((valid, rejected))
}

/// Events without `user_agent` take the request's `User-Agent`: a browser sends its batches itself, so the
/// header names the page's browser (the SDK does not repeat it in every event). A header longer than the field
/// limit is cut rather than making the events invalid.
fn default_user_agent(valid: &mut [(usize, ValidEvent<'_>)], req: &HttpRequest, max: usize) {
    let Some(ua) = header_str(req.headers(), header::USER_AGENT) else {
        return;
    };
    let ua = crate::truncate::truncate(ua, max);
    for (_, ev) in valid.iter_mut().filter(|(_, ev)| ev.user_agent.is_empty()) {
        ev.user_agent = ua.clone().into();
    }
}

fn collect_warnings(valid: &[(usize, ValidEvent<'_>)]) -> Vec<Warning> {
    valid
        .iter()
        .flat_map(|(index, ev)| {
            ev.warnings.iter().map(|w| Warning {
                index: Some(*index),
                warning: w.clone(),
            })
        })
        .collect()
}

/// Step 4: route templates, endpoint labels, status classes, user agent, into store records ([`Shaper`]).
fn shape(
    valid: Vec<(usize, ValidEvent<'_>)>,
    body: &Text,
    state: &AppState,
    site: usize,
    site_id: &Text,
    now_ms: i64,
) -> (Vec<EventRecord>, Vec<Observation>) {
    let cfg = &state.settings.sites[site];
    Shaper {
        site,
        site_id,
        routes: &cfg.routes,
        label_budget: cfg.label_budget,
        keep_query: state.settings.storage.keep_query_params,
        budgets: &state.budgets,
        ua: &state.ua,
    }
    .shape(valid, body, now_ms)
}

/// Step 5: durable write; resolves only after COMMIT (or the spool's fsync).
async fn store(state: &AppState, records: Vec<EventRecord>) -> Result<SubmitOutcome, EventsError> {
    if records.is_empty() {
        return Ok(SubmitOutcome::default());
    }
    state.store.submit(records).await.map_err(|e| match e {
        SubmitError::Busy { retry_after_secs } => EventsError::Busy {
            retry_after: retry_after_secs.max(1),
        },
        // Logged by the store once per outage, not per request.
        SubmitError::Unavailable { retry_after_secs } => EventsError::Unavailable {
            retry_after: retry_after_secs.max(1),
        },
        SubmitError::Closed => EventsError::Closed,
        SubmitError::Failed(m) => {
            tracing::error!(error = %m, "event store write failed");
            EventsError::Store(m)
        }
    })
}

/// The error groups of a batch's records (each once).
fn error_groups(records: &[EventRecord]) -> Vec<String> {
    let mut groups: Vec<String> = records
        .iter()
        .filter_map(|r| r.fingerprint.clone())
        .collect();
    groups.sort();
    groups.dedup();
    groups
}

/// Step 6b: the groups of stored errors, and `rum_error_groups_new_total` for those seen first. The events
/// are stored already: a failure here is logged, the answer stays 202 (the group is written with its next
/// event).
async fn record_groups(state: &AppState, site: &Text, groups: &[String], now_ms: i64) {
    // While the database cannot write (events go to the spool, or are refused), neither can the groups: they
    // are recorded with their next event then, and the outage is logged once by the store, not per request.
    if groups.is_empty() || state.store.readiness() != crate::store::Readiness::Writing {
        return;
    }
    match state
        .known_groups
        .record(&state.store, site, groups, now_ms)
        .await
    {
        Ok(new) => state.metrics.new_error_groups(site, new),
        Err(e) => tracing::warn!(site = %site, error = %e, "error groups could not be recorded"),
    }
}

/// Step 6: metrics, for committed events only, and only those not stored before (`duplicates`: their indices
/// in `observations`, ascending).
fn observe(state: &AppState, site: &Text, observations: &[Observation], duplicates: &[u32]) {
    let mut duplicates = duplicates.iter().copied().peekable();
    for (i, o) in (0..).zip(observations) {
        if duplicates.next_if_eq(&i).is_none() {
            state.metrics.observe(site, o);
        }
    }
}

/// Headers senders use; preflights asking for others are still answered, the browser enforces the list.
const ALLOW_HEADERS: &str = "content-type, content-encoding, x-api-key, traceparent, authorization";

/// `OPTIONS /v1/events`: answered for origins some site allows (a preflight carries no key), else 403.
pub async fn preflight(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match header_str(req.headers(), header::ORIGIN) {
        Some(origin) if state.origin_allowed(origin) => HttpResponse::NoContent()
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST, OPTIONS"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
            .insert_header((header::VARY, "Origin"))
            .finish(),
        Some(_) => HttpResponse::Forbidden().json(serde_json::json!({
            "error": "origin is not allowed for any site"
        })),
        None => HttpResponse::BadRequest().json(serde_json::json!({
            "error": "a CORS preflight needs an Origin header"
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_is_a_json_error_with_its_place() {
        assert_eq!(&*text(b"{\"a\":1}").unwrap(), "{\"a\":1}");
        match text(b"{\"events\":[\n{\"x\":\"\xc3\xa9\xff\"}]}") {
            Err(EventsError::Json {
                line,
                column,
                message,
            }) => assert_eq!((line, column, message.as_str()), (2, 8, "invalid UTF-8")),
            other => panic!("{other:?}"),
        }
    }
}

//! The wire format of `POST /v1/events` and per-event validation into [`ValidEvent`].
//!
//! Lenient where real senders are messy (impossible numbers are dropped with a warning, `api.endpoint: {}`
//! becomes unknown, unknown fields are ignored), strict where data would be wrong (type, session, timestamp).

use crate::config::Limits;
use crate::shared_fields::{self, Shared};
use crate::truncate::truncate;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// The request body: `{"events":[...], "batch_id": "...", "dropped": ...}`. Events stay raw so each can fail
/// on its own; so do the batch's own fields, read by [`crate::envelope`] (a bad one is ignored with a warning).
#[derive(Debug, Deserialize)]
pub struct Batch<'a> {
    #[serde(borrow)]
    pub events: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    pub batch_id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub dropped: Option<&'a RawValue>,
}

/// Every event type the server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    PageLoad,
    ApiCall,
    ResourceLoad,
    LongTask,
    UserInteraction,
    Error,
    WebVital,
    RouteChange,
    Custom,
}

impl EventType {
    pub const ALL: [EventType; 9] = [
        Self::PageLoad,
        Self::ApiCall,
        Self::ResourceLoad,
        Self::LongTask,
        Self::UserInteraction,
        Self::Error,
        Self::WebVital,
        Self::RouteChange,
        Self::Custom,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PageLoad => "page_load",
            Self::ApiCall => "api_call",
            Self::ResourceLoad => "resource_load",
            Self::LongTask => "long_task",
            Self::UserInteraction => "user_interaction",
            Self::Error => "error",
            Self::WebVital => "web_vital",
            Self::RouteChange => "route_change",
            Self::Custom => "custom",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A web vital name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vital {
    Lcp,
    Inp,
    Cls,
    Fcp,
    Ttfb,
}

impl Vital {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "LCP" => Some(Self::Lcp),
            "INP" => Some(Self::Inp),
            "CLS" => Some(Self::Cls),
            "FCP" => Some(Self::Fcp),
            "TTFB" => Some(Self::Ttfb),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lcp => "LCP",
            Self::Inp => "INP",
            Self::Cls => "CLS",
            Self::Fcp => "FCP",
            Self::Ttfb => "TTFB",
        }
    }

    /// (good up to, poor above) in the vital's unit (ms; CLS unitless), per web.dev.
    pub fn thresholds(self) -> (f64, f64) {
        match self {
            Self::Lcp => (2500.0, 4000.0),
            Self::Inp => (200.0, 500.0),
            Self::Cls => (0.1, 0.25),
            Self::Fcp => (1800.0, 3000.0),
            Self::Ttfb => (800.0, 1800.0),
        }
    }

    /// Rating computed here from the thresholds, so stats do not depend on each sender's opinion.
    pub fn rating(self, value: f64) -> &'static str {
        let (good, poor) = self.thresholds();
        if value <= good {
            "good"
        } else if value <= poor {
            "needs-improvement"
        } else {
            "poor"
        }
    }
}

/// Why one event was refused (a closed set: it is a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    Malformed,
    UnknownType,
    MissingField,
    InvalidValue,
    TooLong,
    TimestampOutOfRange,
}

impl RejectReason {
    pub const ALL: [RejectReason; 6] = [
        Self::Malformed,
        Self::UnknownType,
        Self::MissingField,
        Self::InvalidValue,
        Self::TooLong,
        Self::TimestampOutOfRange,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnknownType => "unknown_type",
            Self::MissingField => "missing_field",
            Self::InvalidValue => "invalid_value",
            Self::TooLong => "too_long",
            Self::TimestampOutOfRange => "timestamp_out_of_range",
        }
    }
}

/// A refused event: the reason (metric label) and a message for the sender.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub reason: RejectReason,
    pub message: String,
}

fn reject(reason: RejectReason, message: impl Into<String>) -> Rejection {
    Rejection {
        reason,
        message: message.into(),
    }
}

/// A string of the body: borrowed from it unless it had escapes to undo. (serde borrows a `Cow` only as a
/// field of its own, not inside an `Option`, hence the newtype.)
#[derive(Debug, Deserialize)]
struct Str<'a>(#[serde(borrow)] Cow<'a, str>);

/// Fields every event may carry. Type-specific parts are optional here and required by their type's validator.
#[derive(Debug, Deserialize)]
struct WireEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Str<'a>,
    #[serde(default, borrow)]
    session_id: Option<Str<'a>>,
    #[serde(default)]
    timestamp: Option<f64>,
    #[serde(default, borrow)]
    event_id: Option<Str<'a>>,
    #[serde(default, borrow)]
    user_agent: Option<Str<'a>>,
    #[serde(default, borrow)]
    page: Option<WirePage<'a>>,
    /// (read only to know whether the event has its own, see [`crate::shared_fields`])
    #[serde(default, borrow)]
    viewport: Option<&'a RawValue>,
    #[serde(default, borrow)]
    user_id: Option<&'a RawValue>,
    #[serde(default)]
    metrics: Option<WireMetrics>,
    /// `page_load` from rum-sdk.js: the navigation timing marks of [`TIMING_MARKS`], made into `metrics` here.
    #[serde(default)]
    timing: Option<Value>,
    #[serde(default, borrow)]
    api: Option<WireApi<'a>>,
    #[serde(default)]
    resource: Option<WireResource>,
    #[serde(default)]
    duration: Option<Value>,
    #[serde(default)]
    interaction: Option<WireInteraction>,
    #[serde(default)]
    error: Option<WireError>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    props: Option<Map<String, Value>>,
    /// The release of the page's code (`data-release` / `init({release})`), on every event.
    #[serde(default)]
    release: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct WirePage<'a> {
    #[serde(default, borrow)]
    url: Option<Str<'a>>,
}

/// `page_load.metrics`: the fields of [`PAGE_LOAD_FIELDS`], numbers when the sender is sane.
#[derive(Debug, Deserialize)]
struct WireMetrics {
    #[serde(default)]
    dns_lookup: Option<Value>,
    #[serde(default)]
    tcp_connection: Option<Value>,
    #[serde(default)]
    tls_negotiation: Option<Value>,
    #[serde(default)]
    ttfb: Option<Value>,
    #[serde(default)]
    content_download: Option<Value>,
    #[serde(default)]
    dom_processing: Option<Value>,
    #[serde(default)]
    dom_complete: Option<Value>,
    #[serde(default)]
    onload: Option<Value>,
    #[serde(default)]
    total: Option<Value>,
}

impl WireMetrics {
    /// In the order of [`PAGE_LOAD_FIELDS`].
    fn values(&self) -> [Option<&Value>; 9] {
        [
            self.dns_lookup.as_ref(),
            self.tcp_connection.as_ref(),
            self.tls_negotiation.as_ref(),
            self.ttfb.as_ref(),
            self.content_download.as_ref(),
            self.dom_processing.as_ref(),
            self.dom_complete.as_ref(),
            self.onload.as_ref(),
            self.total.as_ref(),
        ]
    }
}

#[derive(Debug, Deserialize)]
struct WireApi<'a> {
    #[serde(default, borrow)]
    method: Option<Str<'a>>,
    #[serde(default)]
    endpoint: Option<Value>,
    #[serde(default)]
    duration: Option<Value>,
    #[serde(default)]
    status: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct WireResource {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    duration: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct WireInteraction {
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    duration: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct WireError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    stack: Option<Value>,
}

/// The page_load timing fields (ms).
pub const PAGE_LOAD_FIELDS: [&str; 9] = [
    "dns_lookup",
    "tcp_connection",
    "tls_negotiation",
    "ttfb",
    "content_download",
    "dom_processing",
    "dom_complete",
    "onload",
    "total",
];

/// `page_load.timing`: the navigation timing marks (ms from the page's time origin) rum-sdk.js sends, in this
/// order, instead of the breakdown: the arithmetic is done here, not on the page (or in the SDK's bytes).
pub const TIMING_MARKS: [&str; 12] = [
    "domainLookupStart",
    "domainLookupEnd",
    "connectStart",
    "secureConnectionStart",
    "connectEnd",
    "requestStart",
    "responseStart",
    "responseEnd",
    "domInteractive",
    "domComplete",
    "loadEventStart",
    "loadEventEnd",
];

/// Each of [`PAGE_LOAD_FIELDS`] but `total` as (start, end) indexes into [`TIMING_MARKS`].
const TIMING_PHASES: [(usize, usize); 8] = [
    (0, 1),   // dns_lookup
    (2, 4),   // tcp_connection
    (3, 4),   // tls_negotiation
    (5, 6),   // ttfb
    (6, 7),   // content_download
    (7, 8),   // dom_processing
    (8, 9),   // dom_complete
    (10, 11), // onload
];

/// Durations above this (1 hour, in ms) are treated as impossible.
const MAX_DURATION_MS: f64 = 3_600_000.0;
const MAX_SESSION_LEN: usize = 128;
/// Longest `release` (bytes). A longer one, or one that is not a string or holds control characters, is
/// dropped with a warning (the event is kept): a cut release would name no uploaded source maps.
pub const MAX_RELEASE_LEN: usize = 200;
const MAX_PROPS: usize = 32;

/// An event that passed validation; impossible fields are already removed from `raw`. Text borrows from the
/// request body where it can.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidEvent<'a> {
    pub kind: EventType,
    pub event_id: uuid::Uuid,
    pub session_id: Cow<'a, str>,
    pub timestamp_ms: i64,
    pub user_agent: Cow<'a, str>,
    /// Page URL (from `page.url`, or `error.page` for errors).
    pub url: Option<Cow<'a, str>>,
    pub value: Option<f64>,
    pub name: Option<Cow<'static, str>>,
    pub vital: Option<Vital>,
    /// api_call method and endpoint URL (`None`: the sender gave no usable URL).
    pub method: Option<Cow<'a, str>>,
    pub endpoint_url: Option<String>,
    pub status: Option<i32>,
    /// The event's JSON: the body's own text, or re-serialised without the dropped fields.
    pub raw: Cow<'a, str>,
    /// The page's release ([`MAX_RELEASE_LEN`]), when it sent a usable one.
    pub release: Option<String>,
    /// error: `error.stack` as sent, cut to `limits.max_string_len` like the message.
    pub stack: Option<String>,
    /// error: its group and symbolicated stack, added after validation (`jserror::analyze`).
    pub error: Option<crate::jserror::ErrorInfo>,
    /// What was dropped and why, reported back to the sender.
    pub warnings: Vec<String>,
}

/// Validates one raw event: the fields every event has here, then the type's own fields by the validator of
/// that type (one per type, dispatched below). `now_ms` bounds the timestamp by the configured skew limits.
/// `shared` carries the fields an event without `session_id` takes from the events before it in its body
/// ([`crate::shared_fields`]); the events of one body go through it in order.
pub fn validate<'a>(
    raw: &'a RawValue,
    limits: &Limits,
    now_ms: i64,
    shared: &mut Shared<'a>,
) -> Result<ValidEvent<'a>, Rejection> {
    let mut w: WireEvent = serde_json::from_str(raw.get()).map_err(|e| {
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg);
        let reason = if msg.starts_with("missing field") {
            RejectReason::MissingField
        } else {
            RejectReason::Malformed
        };
        reject(reason, msg)
    })?;
    let text = inherit(&mut w, raw, shared)?;
    let kind = EventType::parse(&w.kind.0).ok_or_else(|| {
        reject(
            RejectReason::UnknownType,
            format!("unknown event type `{}`", truncate(&w.kind.0, 64)),
        )
    })?;
    let max = limits.max_string_len;
    let session_id = required(
        w.session_id.map(|s| s.0).filter(|s| !s.is_empty()),
        "session_id",
    )?;
    if session_id.len() > MAX_SESSION_LEN {
        return Err(reject(
            RejectReason::TooLong,
            format!("session_id is longer than {MAX_SESSION_LEN} bytes"),
        ));
    }
    let ts = required(w.timestamp, "timestamp")?;
    let (past, future) = (
        limits.max_past.as_millis() as i64,
        limits.max_future.as_millis() as i64,
    );
    if !ts.is_finite() || (ts as i64) < now_ms - past || (ts as i64) > now_ms + future {
        return Err(reject(
            RejectReason::TimestampOutOfRange,
            format!(
                "timestamp {ts} is outside the accepted window ({}s in the past, {}s in the future)",
                past / 1000,
                future / 1000
            ),
        ));
    }
    let event_id = match &w.event_id {
        Some(id) => uuid::Uuid::parse_str(&id.0)
            .map_err(|_| reject(RejectReason::InvalidValue, "event_id is not a UUID"))?,
        None => uuid::Uuid::now_v7(),
    };
    let user_agent = w.user_agent.map(|u| u.0).unwrap_or_default();
    if user_agent.len() > max {
        return Err(reject(
            RejectReason::TooLong,
            format!("user_agent is longer than {max} bytes"),
        ));
    }
    let url = w
        .page
        .and_then(|p| p.url)
        .map(|u| u.0)
        .filter(|u| !u.is_empty());
    if url.as_ref().is_some_and(|u| u.len() > max) {
        return Err(reject(
            RejectReason::TooLong,
            format!("page.url is longer than {max} bytes"),
        ));
    }

    let mut d = Draft {
        out: ValidEvent {
            kind,
            event_id,
            session_id,
            timestamp_ms: ts as i64,
            user_agent,
            url,
            value: None,
            name: None,
            vital: None,
            method: None,
            endpoint_url: None,
            status: None,
            raw: Cow::Borrowed(""),
            release: None,
            stack: None,
            error: None,
            warnings: Vec::new(),
        },
        dropped: Vec::new(),
        max,
        metrics: None,
    };
    d.out.release = d.release(w.release);
    match kind {
        EventType::PageLoad => match (w.metrics, w.timing) {
            (Some(metrics), _) => validate_page_load(metrics.values(), &mut d),
            (None, Some(timing)) => {
                let metrics = metrics_from_timing(&timing)?;
                validate_page_load(PAGE_LOAD_FIELDS.map(|f| metrics.get(f)), &mut d);
                d.metrics = Some(metrics);
            }
            (None, None) => {
                return Err(reject(
                    RejectReason::MissingField,
                    "missing field `metrics` or `timing`",
                ))
            }
        },
        EventType::ApiCall => required(w.api, "api")?.validate(&mut d)?,
        EventType::ResourceLoad => required(w.resource, "resource")?.validate(&mut d),
        EventType::LongTask => validate_long_task(w.duration.as_ref(), &mut d)?,
        EventType::RouteChange => validate_route_change(w.duration.as_ref(), &mut d),
        EventType::UserInteraction => required(w.interaction, "interaction")?.validate(&mut d),
        EventType::Error => required(w.error, "error")?.validate(&mut d)?,
        EventType::WebVital => validate_web_vital(w.name, w.value, &mut d)?,
        EventType::Custom => validate_custom(w.name, w.value, w.props.as_ref(), &mut d)?,
    }
    let Draft {
        mut out,
        dropped,
        metrics,
        ..
    } = d;
    out.raw = if dropped.is_empty() && metrics.is_none() {
        text
    } else {
        Cow::Owned(rewrite(&text, metrics, &dropped))
    };
    Ok(out)
}

/// An event with a `session_id` is whole: the next ones may take its shared fields. One without takes those it
/// lacks from the last whole one ([`crate::shared_fields`]): into `w` for validation, and into its JSON, which
/// is returned (the body's own text otherwise).
fn inherit<'a>(
    w: &mut WireEvent<'a>,
    raw: &'a RawValue,
    shared: &mut Shared<'a>,
) -> Result<Cow<'a, str>, Rejection> {
    if w.session_id.is_some() {
        shared.whole(raw);
        return Ok(Cow::Borrowed(raw.get()));
    }
    let taken = shared.taken(|name| match name {
        "viewport" => w.viewport.is_some(),
        "page" => w.page.is_some(),
        "release" => w.release.is_some(),
        "user_id" => w.user_id.is_some(),
        _ => false,
    });
    if taken.is_empty() {
        return Ok(Cow::Borrowed(raw.get()));
    }
    let size = shared_fields::size(&taken);
    if size > shared_fields::MAX_TAKEN_BYTES {
        return Err(reject(
            RejectReason::TooLong,
            format!(
                "the shared fields it would take from an earlier event are {size} bytes, over {}: send them in the event",
                shared_fields::MAX_TAKEN_BYTES
            ),
        ));
    }
    for &(name, value) in &taken {
        match name {
            "session_id" => w.session_id = Some(parse_taken(name, value)?),
            "page" => w.page = Some(parse_taken(name, value)?),
            "release" => w.release = Some(parse_taken(name, value)?),
            _ => {}
        }
    }
    Ok(Cow::Owned(shared_fields::splice(raw.get(), &taken)))
}

/// One field taken from an earlier event, read as the event's own would be.
fn parse_taken<'a, T: Deserialize<'a>>(name: &str, value: &'a RawValue) -> Result<T, Rejection> {
    serde_json::from_str(value.get()).map_err(|e| {
        reject(
            RejectReason::Malformed,
            format!("{name} taken from an earlier event: {e}"),
        )
    })
}

/// An event whose common fields passed, while its type's validator adds the type's own.
struct Draft<'a> {
    out: ValidEvent<'a>,
    /// Paths (in the raw JSON) of fields dropped as impossible.
    dropped: Vec<Vec<&'static str>>,
    /// `limits.max_string_len`.
    max: usize,
    /// `page_load`: the breakdown made of `timing`, stored in its place.
    metrics: Option<Value>,
}

impl Draft<'_> {
    /// A duration that can be true, or `None` with the field dropped and a warning saying why.
    fn duration(&mut self, v: &Value, path: &[&'static str]) -> Option<f64> {
        let ms = plausible_duration(v);
        if ms.is_none() {
            self.out.warnings.push(format!(
                "{}: {} dropped (not a duration between 0 and 1h)",
                path.join("."),
                truncate(&v.to_string(), 32)
            ));
            self.dropped.push(path.to_vec());
        }
        ms
    }

    /// `release`: a non-empty string of at most [`MAX_RELEASE_LEN`] bytes without control characters, or
    /// dropped with a warning saying why.
    fn release(&mut self, v: Option<Value>) -> Option<String> {
        let why = match v? {
            Value::Null => return None,
            Value::String(s) if s.is_empty() => return None,
            Value::String(s) if s.len() > MAX_RELEASE_LEN => {
                format!("longer than {MAX_RELEASE_LEN} bytes")
            }
            Value::String(s) if s.chars().any(char::is_control) => {
                "holds control characters".to_string()
            }
            Value::String(s) => return Some(s),
            other => format!("{} is not a string", truncate(&other.to_string(), 32)),
        };
        self.out.warnings.push(format!(
            "release: dropped ({why}); source maps cannot apply"
        ));
        self.dropped.push(vec!["release"]);
        None
    }

    /// An optional duration field (serde reads `null` as absent).
    fn optional_duration(&mut self, v: Option<&Value>, path: &[&'static str]) -> Option<f64> {
        self.duration(v?, path)
    }
}

/// A field the event type needs.
fn required<T>(v: Option<T>, field: &str) -> Result<T, Rejection> {
    v.ok_or_else(|| {
        reject(
            RejectReason::MissingField,
            format!("missing field `{field}`"),
        )
    })
}

/// `page_load`: the timing fields that can be true are kept; the page load time is the best of them.
/// (`values`: the fields of [`PAGE_LOAD_FIELDS`], as sent in `metrics` or made of `timing`)
fn validate_page_load(values: [Option<&Value>; 9], d: &mut Draft<'_>) {
    let mut kept = [None; PAGE_LOAD_FIELDS.len()];
    for ((f, v), kept) in PAGE_LOAD_FIELDS.iter().zip(values).zip(&mut kept) {
        *kept = d.optional_duration(v, &["metrics", f]);
    }
    // The seed SDK measures inside the load handler, so onload/total are often missing; dom_complete
    // is the best remaining measure of page load.
    let [.., dom_complete, onload, total] = kept;
    d.out.value = total.or(onload).or(dom_complete);
}

/// `page_load.timing` made into the `metrics` object the SDK used to send and older ones still do, with the same
/// arithmetic: a phase whose start was not recorded (0) is 0, one without a usable end is left out (the
/// validator then drops what cannot be true), each rounded to 0.1 ms. `timing` is the marks by name (rum-sdk.js
/// sends the numbers above 0 of `PerformanceNavigationTiming.toJSON()`; other names are ignored, a mark left out
/// is one not recorded) or, as session 22's SDK sent them, an array in the order of [`TIMING_MARKS`] (later
/// elements ignored).
fn metrics_from_timing(timing: &Value) -> Result<Value, Rejection> {
    let number = |v: Option<&Value>| v.and_then(Value::as_f64).filter(|x| x.is_finite());
    let marks: Option<[Option<f64>; 12]> = match timing {
        Value::Object(o) => Some(TIMING_MARKS.map(|k| number(o.get(k)))),
        Value::Array(a) if a.len() >= TIMING_MARKS.len() => {
            Some(std::array::from_fn(|i| number(a.get(i))))
        }
        _ => None,
    };
    let Some(marks) = marks.filter(|m| m.iter().any(Option::is_some)) else {
        return Err(reject(
            RejectReason::InvalidValue,
            format!(
                "timing: {} holds none of the {} navigation timing marks ({}): an object of them by name, or an array in that order",
                truncate(&timing.to_string(), 32),
                TIMING_MARKS.len(),
                TIMING_MARKS.join(", ")
            ),
        ));
    };
    let round = |ms: f64| Value::from((ms * 10.0).round() / 10.0);
    let mut metrics = Map::new();
    for (field, (start, end)) in PAGE_LOAD_FIELDS.iter().zip(TIMING_PHASES) {
        let v = match (marks[start], marks[end]) {
            (Some(s), Some(e)) if s > 0.0 => round((e - s).max(0.0)),
            (Some(s), _) if s > 0.0 => continue,
            _ => Value::from(0),
        };
        metrics.insert(field.to_string(), v);
    }
    if let Some(end) = marks[TIMING_MARKS.len() - 1] {
        metrics.insert("total".to_string(), round(end));
    }
    Ok(Value::Object(metrics))
}

/// `api_call`: method, endpoint (unknown when it is not a URL), duration and status.
impl<'a> WireApi<'a> {
    fn validate(self, d: &mut Draft<'a>) -> Result<(), Rejection> {
        d.out.method = Some(self.method.map_or(Cow::Borrowed("GET"), |m| m.0));
        match self.endpoint {
            Some(Value::String(s)) if !s.is_empty() => {
                if s.len() > d.max {
                    return Err(reject(
                        RejectReason::TooLong,
                        format!("api.endpoint is longer than {} bytes", d.max),
                    ));
                }
                d.out.endpoint_url = Some(s);
            }
            other => d.out.warnings.push(format!(
                "api.endpoint: {} is not a URL, recorded as unknown",
                truncate(&other.unwrap_or(Value::Null).to_string(), 32)
            )),
        }
        d.out.value = d.optional_duration(self.duration.as_ref(), &["api", "duration"]);
        match self.status {
            None | Some(Value::Null) => {}
            Some(v) => match v.as_i64().filter(|s| (0..=999).contains(s)) {
                Some(s) => d.out.status = Some(s as i32),
                None => {
                    d.out
                        .warnings
                        .push("api.status: dropped (not an HTTP status)".into());
                    d.dropped.push(vec!["api", "status"]);
                }
            },
        }
        Ok(())
    }
}

/// `resource_load`: the resource type as the name, and its duration.
impl WireResource {
    fn validate(self, d: &mut Draft<'_>) {
        d.out.name = self.kind.map(|k| truncate(&k, 64).into());
        d.out.value = d.optional_duration(self.duration.as_ref(), &["resource", "duration"]);
    }
}

/// `user_interaction`: the action as the name, and its duration.
impl WireInteraction {
    fn validate(self, d: &mut Draft<'_>) {
        d.out.name = self.action.map(|a| truncate(&a, 64).into());
        d.out.value = d.optional_duration(self.duration.as_ref(), &["interaction", "duration"]);
    }
}

/// `error`: the message (cut to the string limit) as the name; `error.page` is the page when `page.url` is not.
impl WireError {
    fn validate(self, d: &mut Draft<'_>) -> Result<(), Rejection> {
        let msg = required(self.message, "error.message")?;
        d.out.name = Some(truncate(&msg, d.max).into());
        // Free text like the message: cut, not refused; a stack that is not a string is no stack.
        d.out.stack = match self.stack {
            Some(Value::String(s)) if !s.is_empty() => Some(truncate(&s, d.max)),
            _ => None,
        };
        if d.out.url.is_none() {
            let max = d.max;
            d.out.url = self
                .page
                .filter(|p| !p.is_empty() && p.len() <= max)
                .map(Cow::Owned);
        }
        Ok(())
    }
}

/// `long_task`: a duration is what it is about, so one that cannot be true refuses the event.
fn validate_long_task(duration: Option<&Value>, d: &mut Draft<'_>) -> Result<(), Rejection> {
    d.out.value = d.optional_duration(duration, &["duration"]);
    if d.out.value.is_none() {
        return Err(reject(
            RejectReason::MissingField,
            "long_task needs a `duration` between 0 and 1h",
        ));
    }
    Ok(())
}

/// `route_change`: an optional duration.
fn validate_route_change(duration: Option<&Value>, d: &mut Draft<'_>) {
    d.out.value = d.optional_duration(duration, &["duration"]);
}

/// `web_vital`: a known vital and a value in its range; the rating is computed later from the value.
fn validate_web_vital(
    name: Option<String>,
    value: Option<f64>,
    d: &mut Draft<'_>,
) -> Result<(), Rejection> {
    let name = required(name, "name")?;
    let vital = Vital::parse(&name).ok_or_else(|| {
        reject(
            RejectReason::InvalidValue,
            format!(
                "web vital `{}` is not one of LCP, INP, CLS, FCP, TTFB",
                truncate(&name, 32)
            ),
        )
    })?;
    let limit = if vital == Vital::Cls {
        100.0
    } else {
        MAX_DURATION_MS
    };
    let value = value
        .filter(|v| v.is_finite() && *v >= 0.0 && *v <= limit)
        .ok_or_else(|| {
            reject(
                RejectReason::InvalidValue,
                format!("web vital value must be between 0 and {limit}"),
            )
        })?;
    d.out.vital = Some(vital);
    d.out.name = Some(Cow::Borrowed(vital.as_str()));
    d.out.value = Some(value);
    Ok(())
}

/// `custom`: a name, an optional number, and a few scalar props.
fn validate_custom(
    name: Option<String>,
    value: Option<f64>,
    props: Option<&Map<String, Value>>,
    d: &mut Draft<'_>,
) -> Result<(), Rejection> {
    let name = required(name.filter(|n| !n.is_empty()), "name")?;
    if name.len() > 128 {
        return Err(reject(
            RejectReason::TooLong,
            "custom name is longer than 128 bytes",
        ));
    }
    if let Some(p) = props {
        if p.len() > MAX_PROPS
            || p.iter().any(|(k, v)| {
                k.len() > 128 || v.is_object() || v.is_array() || v.to_string().len() > 1024
            })
        {
            return Err(reject(
                RejectReason::InvalidValue,
                format!("props must be at most {MAX_PROPS} scalar values (keys <= 128 bytes, values <= 1024)"),
            ));
        }
    }
    d.out.name = Some(name.into());
    d.out.value = value.filter(|v| v.is_finite());
    Ok(())
}

/// A duration in ms that can be true: a finite number between 0 and 1 hour.
fn plausible_duration(v: &Value) -> Option<f64> {
    v.as_f64()
        .filter(|ms| ms.is_finite() && *ms >= 0.0 && *ms <= MAX_DURATION_MS)
}

/// Re-serialises the event with `metrics` in place of the `timing` it was made of, and without the dropped
/// fields (only messy events and rum-sdk.js's `page_load`, one per page view, pay for it).
fn rewrite(raw: &str, metrics: Option<Value>, dropped: &[Vec<&'static str>]) -> String {
    let Ok(mut v) = serde_json::from_str::<Value>(raw) else {
        return raw.to_string();
    };
    if let (Some(metrics), Some(event)) = (metrics, v.as_object_mut()) {
        event.remove("timing");
        event.insert("metrics".to_string(), metrics);
    }
    for path in dropped {
        let (last, parents) = path.split_last().expect("non-empty path");
        let pointer: String = parents.iter().map(|p| format!("/{p}")).collect();
        if let Some(obj) = v.pointer_mut(&pointer).and_then(Value::as_object_mut) {
            obj.remove(*last);
        }
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_732_350_000_000;

    fn check(json: &str) -> Result<ValidEvent<'_>, Rejection> {
        let raw: &RawValue = serde_json::from_str(json).unwrap();
        validate(raw, &Limits::default(), NOW, &mut Shared::default())
    }

    #[test]
    fn seed_page_load_drops_negative_fields() {
        let e = check(r#"{"type":"page_load","session_id":"s-1","timestamp":1732350000000,"user_agent":"x","viewport":{"width":1280,"height":720},"page":{"url":"https://shop.example.com/products/123?ref=x#top","referrer":""},"metrics":{"dns_lookup":12,"tcp_connection":20,"tls_negotiation":15,"ttfb":120,"content_download":30,"dom_processing":200,"dom_complete":450,"onload":-1732350000000,"total":-1732349999000}}"#).unwrap();
        assert_eq!(e.value, Some(450.0));
        assert_eq!(e.warnings.len(), 2, "{:?}", e.warnings);
        assert!(
            !e.raw.contains("onload") && !e.raw.contains("-173"),
            "{}",
            e.raw
        );
        assert!(e.raw.contains("dom_complete"));
    }

    /// rum-sdk.js sends the navigation timing marks; the breakdown is made here and stored in their place, as
    /// the SDK sent it before: a phase not recorded (TLS on http) is 0, each value rounded to 0.1 ms.
    #[test]
    fn page_load_timing_becomes_metrics() {
        let e = check(r#"{"type":"page_load","session_id":"s","timestamp":1732350000000,"timing":[3.1,5.2,5.2,0,9.9,10,130.04,160,360,810,812.3,815.45],"navigation_type":"navigate"}"#).unwrap();
        assert!(e.warnings.is_empty(), "{:?}", e.warnings);
        assert_eq!(e.value, Some(815.5));
        let stored: Value = serde_json::from_str(&e.raw).unwrap();
        assert_eq!(stored.get("timing"), None, "{stored}");
        assert_eq!(stored["navigation_type"], "navigate");
        let stored_first = stored.clone();
        assert_eq!(
            stored["metrics"],
            serde_json::json!({"dns_lookup": 2.1, "tcp_connection": 4.7, "tls_negotiation": 0, "ttfb": 120.0,
                "content_download": 30.0, "dom_processing": 200.0, "dom_complete": 450.0, "onload": 3.2,
                "total": 815.5})
        );

        // a mark the browser lacks (null) leaves its phase out; an impossible one is dropped with a warning
        let e = check(r#"{"type":"page_load","session_id":"s","timestamp":1732350000000,"timing":[3,null,4,0,5,6,7,8,9,10,11,7200000,"extra"]}"#).unwrap();
        let stored: Value = serde_json::from_str(&e.raw).unwrap();
        assert_eq!(stored["metrics"].get("dns_lookup"), None, "{stored}");
        assert_eq!(stored["metrics"].get("total"), None, "{stored}");
        assert_eq!(stored["metrics"]["ttfb"], 1.0);
        assert_eq!(
            e.value,
            Some(1.0),
            "dom_complete, as total and onload are impossible"
        );
        assert_eq!(e.warnings.len(), 2, "{:?}", e.warnings);

        // as rum-sdk.js sends them since session 23: PerformanceNavigationTiming.toJSON()'s numbers, by name (a
        // mark left out is one not recorded; other names are ignored)
        let e = check(r#"{"type":"page_load","session_id":"s","timestamp":1732350000000,"timing":{"startTime":0,"fetchStart":1,"domainLookupStart":3.1,"domainLookupEnd":5.2,"connectStart":5.2,"connectEnd":9.9,"requestStart":10,"responseStart":130.04,"responseEnd":160,"transferSize":300,"domInteractive":360,"domComplete":810,"loadEventStart":812.3,"loadEventEnd":815.45,"redirectCount":0},"navigation_type":"navigate"}"#).unwrap();
        assert!(e.warnings.is_empty(), "{:?}", e.warnings);
        let by_name: Value = serde_json::from_str(&e.raw).unwrap();
        assert_eq!(by_name.get("timing"), None, "{by_name}");
        assert_eq!(by_name["metrics"], stored_first["metrics"], "{by_name}");

        for bad in [
            r#"{"a":1}"#,
            r#"{"loadEventEnd":"5"}"#,
            "[1,2,3]",
            r#""0,1""#,
            "[null,null,null,null,null,null,null,null,null,null,null,null]",
        ] {
            let json = format!(
                r#"{{"type":"page_load","session_id":"s","timestamp":1732350000000,"timing":{bad}}}"#
            );
            let e = check(&json).unwrap_err();
            assert_eq!(e.reason, RejectReason::InvalidValue, "{bad}");
            assert!(
                e.message.starts_with("timing: ")
                    && e.message
                        .contains("none of the 12 navigation timing marks (domainLookupStart, "),
                "{}",
                e.message
            );
        }
    }

    /// An event takes at most MAX_TAKEN_BYTES of shared fields (a body could otherwise make many tiny events
    /// each cost a large copy); one that would take more is refused and says why.
    #[test]
    fn shared_fields_taken_are_bounded() {
        let mut shared = Shared::default();
        let raw = |s: String| -> Box<RawValue> { RawValue::from_string(s).unwrap() };
        let whole = raw(format!(
            r#"{{"type":"custom","name":"w","session_id":"s","timestamp":{NOW},"page":{{"url":"https://a/","referrer":"{}"}}}}"#,
            "r".repeat(5000)
        ));
        let lean = raw(format!(
            r#"{{"type":"custom","name":"x","timestamp":{NOW}}}"#
        ));
        let own = raw(format!(
            r#"{{"type":"custom","name":"y","timestamp":{NOW},"page":{{"url":"https://a/b"}}}}"#
        ));
        assert!(validate(&whole, &Limits::default(), NOW, &mut shared).is_ok());
        let e = validate(&lean, &Limits::default(), NOW, &mut shared).unwrap_err();
        assert_eq!(e.reason, RejectReason::TooLong);
        assert!(e.message.contains("over 4096"), "{}", e.message);
        // with its own page it takes only the session: well under
        let e = validate(&own, &Limits::default(), NOW, &mut shared).unwrap();
        assert_eq!(e.session_id, "s");
        assert!(e.raw.len() < 200, "{}", e.raw);
    }

    #[test]
    fn api_endpoint_object_is_unknown() {
        let e = check(r#"{"type":"api_call","session_id":"s","timestamp":1732350000500,"api":{"method":"GET","endpoint":{},"duration":85,"status":200}}"#).unwrap();
        assert_eq!(e.endpoint_url, None);
        assert_eq!(e.value, Some(85.0));
        assert_eq!(e.status, Some(200));
        assert_eq!(e.warnings.len(), 1);
    }

    #[test]
    fn long_task_with_attribution_array() {
        let e = check(r#"{"type":"long_task","session_id":"s","timestamp":1732350001000,"duration":120,"attribution":[{"name":"self","entryType":"taskattribution","startTime":0,"duration":0}]}"#).unwrap();
        assert_eq!(e.value, Some(120.0));
        assert!(e.warnings.is_empty());
    }

    #[test]
    fn rejections() {
        let r = |j| check(j).unwrap_err().reason;
        assert_eq!(
            r(r#"{"type":"nope","session_id":"s","timestamp":1732350000000}"#),
            RejectReason::UnknownType
        );
        assert_eq!(
            r(r#"{"type":"error","timestamp":1732350000000}"#),
            RejectReason::MissingField
        );
        assert_eq!(r(r#"{"session_id":"s"}"#), RejectReason::MissingField);
        assert_eq!(
            r(r#"{"type":"error","session_id":"s","timestamp":1}"#),
            RejectReason::TimestampOutOfRange
        );
        assert_eq!(
            r(
                r#"{"type":"web_vital","session_id":"s","timestamp":1732350000000,"name":"LCP","value":-3}"#
            ),
            RejectReason::InvalidValue
        );
        assert_eq!(
            r(
                r#"{"type":"web_vital","session_id":"s","timestamp":1732350000000,"name":"XYZ","value":3}"#
            ),
            RejectReason::InvalidValue
        );
        assert_eq!(
            r(r#"{"type":"error","session_id":"s","timestamp":"soon"}"#),
            RejectReason::Malformed
        );
        assert_eq!(r(r#"[1,2]"#), RejectReason::Malformed);
        assert_eq!(
            r(
                r#"{"type":"custom","session_id":"s","timestamp":1732350000000,"name":"x","props":{"a":{"b":1}}}"#
            ),
            RejectReason::InvalidValue
        );
        assert_eq!(
            r(
                r#"{"type":"error","session_id":"s","timestamp":1732350000000,"event_id":"nope","error":{"message":"m"}}"#
            ),
            RejectReason::InvalidValue
        );
    }

    /// Each type's own validator names the field it needs or drops.
    #[test]
    fn each_type_names_its_fields() {
        let base = r#""session_id":"s","timestamp":1732350000000"#;
        for (kind, field) in [
            ("page_load", "metrics` or `timing"),
            ("api_call", "api"),
            ("resource_load", "resource"),
            ("user_interaction", "interaction"),
            ("error", "error"),
            ("web_vital", "name"),
            ("custom", "name"),
        ] {
            let json = format!(r#"{{"type":"{kind}",{base}}}"#);
            let e = check(&json).unwrap_err();
            assert_eq!(e.reason, RejectReason::MissingField, "{kind}");
            assert_eq!(e.message, format!("missing field `{field}`"), "{kind}");
        }
        let json = format!(r#"{{"type":"error",{base},"error":{{}}}}"#);
        assert_eq!(
            check(&json).unwrap_err().message,
            "missing field `error.message`"
        );
        let json = format!(r#"{{"type":"long_task",{base},"duration":-1}}"#);
        let e = check(&json).unwrap_err();
        assert_eq!(e.reason, RejectReason::MissingField);
        assert!(e.message.contains("`duration`"), "{}", e.message);

        for (kind, fields, path) in [
            (
                "api_call",
                r#""api":{"endpoint":"/a","duration":-1}"#,
                "api.duration",
            ),
            (
                "resource_load",
                r#""resource":{"type":"img","duration":-5}"#,
                "resource.duration",
            ),
            (
                "user_interaction",
                r#""interaction":{"action":"click","duration":"x"}"#,
                "interaction.duration",
            ),
            ("route_change", r#""duration":7200000"#, "duration"),
        ] {
            let json = format!(r#"{{"type":"{kind}",{base},{fields}}}"#);
            let e = check(&json).unwrap();
            assert_eq!(e.value, None, "{kind}");
            assert_eq!(e.warnings.len(), 1, "{kind}: {:?}", e.warnings);
            assert!(
                e.warnings[0].starts_with(&format!("{path}: ")),
                "{kind}: {:?}",
                e.warnings
            );
            assert!(!e.raw.contains("duration"), "{kind}: {}", e.raw);
        }
        // A null duration is an absent one: no warning, the JSON kept as sent.
        let json =
            format!(r#"{{"type":"api_call",{base},"api":{{"endpoint":"/a","duration":null}}}}"#);
        let e = check(&json).unwrap();
        assert!(e.warnings.is_empty(), "{:?}", e.warnings);
        assert_eq!(e.raw, json);
    }

    #[test]
    fn release_kept_or_dropped_with_a_warning() {
        let base = r#""type":"error","session_id":"s","timestamp":1732350000000,"error":{"message":"m","stack":"at f (https://a.test/x.js:1:2)"}"#;
        let json = format!(r#"{{{base},"release":"shop@1.4.2"}}"#);
        let e = check(&json).unwrap();
        assert_eq!(e.release.as_deref(), Some("shop@1.4.2"));
        assert_eq!(e.stack.as_deref(), Some("at f (https://a.test/x.js:1:2)"));
        assert!(e.warnings.is_empty());
        let long = "r".repeat(MAX_RELEASE_LEN + 1);
        for (release, why) in [
            (format!("\"{long}\""), "longer than 200 bytes"),
            ("42".to_string(), "42 is not a string"),
            ("\"a\\nb\"".to_string(), "holds control characters"),
        ] {
            let json = format!(r#"{{{base},"release":{release}}}"#);
            let e = check(&json).unwrap();
            assert_eq!(e.release, None, "{release}");
            assert_eq!(
                e.warnings,
                vec![format!(
                    "release: dropped ({why}); source maps cannot apply"
                )]
            );
            assert!(!e.raw.contains("release"), "{}", e.raw);
        }
        let exact = "r".repeat(MAX_RELEASE_LEN);
        let json = format!(r#"{{{base},"release":"{exact}"}}"#);
        let e = check(&json).unwrap();
        assert_eq!(e.release.as_deref(), Some(exact.as_str()));
        // An empty or null release is no release; a stack that is not a string is no stack.
        let e = check(r#"{"type":"error","session_id":"s","timestamp":1732350000000,"release":"","error":{"message":"m","stack":{}}}"#).unwrap();
        assert_eq!((e.release, e.stack, e.warnings.len()), (None, None, 0));
    }

    #[test]
    fn vitals_are_rated_here() {
        let e = check(r#"{"type":"web_vital","session_id":"s","timestamp":1732350000000,"name":"CLS","value":0.2,"rating":"good"}"#).unwrap();
        assert_eq!(
            e.vital.unwrap().rating(e.value.unwrap()),
            "needs-improvement"
        );
        assert_eq!(Vital::Lcp.rating(2500.0), "good");
        assert_eq!(Vital::Lcp.rating(4001.0), "poor");
    }
}

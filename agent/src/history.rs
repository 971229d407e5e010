//! The last runs of each check, kept in memory in a bounded ring of compact records: what the agent page and
//! `/api/v1/checks/{name}/history` show.
//!
//! Memory is what matters here (an agent may run tens of thousands of checks): a run is a fixed 20-byte
//! [`RunRecord`] (start, duration and phase durations as [`CompactMicros`], error type, HTTP status, attempts;
//! 100 runs of 50,000 checks are 100 MB at 20 bytes, 180 MB at the first cut's 36). Only runs
//! that have more to say (a failure message, workflow steps) get a [`RunDetail`] beside it, and a detail reuses
//! the previous one's strings (`Arc<str>`) when they are the same, so a check failing the same way every run
//! stores its message once. Messages are redacted before they are kept and bounded in length.

use crate::result::{ErrorType, Phase, Phases, ProbeError, ProbeResult, StepResult};
use serde_json::{json, Map, Value};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use vantage_common::Redactor;

/// A message longer than this is cut (after redaction, so a secret is never cut into an unrecognisable prefix).
const MAX_MESSAGE_BYTES: usize = 512;
const STEP_SUCCESS: u8 = 1;
const STEP_SKIPPED: u8 = 2;
const STEP_TEARDOWN: u8 = 4;

/// One finished run, fixed size (20 bytes: 100 runs kept for each of 50,000 checks are 100 MB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunRecord {
    /// Wall-clock start, Unix seconds (the milliseconds are in `when`).
    started_s: u32,
    /// See [`When`].
    when: When,
    /// See [`Answer`].
    answer: Answer,
    /// Within 0.1% (exact below 2 ms).
    duration: CompactMicros,
    /// Per [`Phase::ALL`] index; [`CompactMicros::NONE`] when it did not happen.
    phases: [CompactMicros; 5],
}

/// The start's milliseconds (10 bits), the error code (5 bits: 0 on success, else 1 + the index in
/// [`ErrorType::ALL`]) and whether the run was a run-now (the top bit), in two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct When(u16);

impl When {
    const MANUAL: u16 = 0x8000;

    fn new(millis: u32, error: u8, manual: bool) -> Self {
        let manual = if manual { Self::MANUAL } else { 0 };
        When(manual | (u16::from(error & 0x1f) << 10) | (millis.min(999) as u16))
    }

    fn millis(self) -> u64 {
        u64::from(self.0 & 0x3ff)
    }

    fn error(self) -> u8 {
        ((self.0 >> 10) & 0x1f) as u8
    }

    fn manual(self) -> bool {
        self.0 & Self::MANUAL != 0
    }
}

/// The last response's HTTP status (10 bits, 0 when there was none) and the attempts made (6 bits: 1 + retries
/// used, at most [`MAX_ATTEMPTS`]), in two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Answer(u16);

/// Attempts above this are kept as this (retries are at most 10).
const MAX_ATTEMPTS: u32 = 0x3f;

impl Answer {
    fn new(http_status: u16, attempts: u32) -> Self {
        // hyper takes status codes up to 999: they fit in 10 bits.
        Answer(((attempts.min(MAX_ATTEMPTS) as u16) << 10) | (http_status & 0x3ff))
    }

    fn http_status(self) -> u16 {
        self.0 & 0x3ff
    }

    fn attempts(self) -> u32 {
        u32::from(self.0 >> 10)
    }
}

/// A duration in two bytes for the phase waterfall: microseconds, exact below 2,048 µs, above that with 11
/// significant bits (within 0.1%, far finer than a waterfall is drawn), up to over an hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactMicros(u16);

impl CompactMicros {
    /// A phase that did not happen.
    pub const NONE: CompactMicros = CompactMicros(u16::MAX);
    /// Mantissa bits; the 5 bits above them hold the shift.
    const BITS: u32 = 11;

    pub fn new(d: Duration) -> Self {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let shift = (64 - us.leading_zeros()).saturating_sub(Self::BITS);
        // u16::MAX itself is NONE: the largest shift keeps one mantissa value short of it.
        if shift >= 31 {
            return CompactMicros(u16::MAX - 1);
        }
        CompactMicros(((shift as u16) << Self::BITS) | (us >> shift) as u16)
    }

    pub fn get(self) -> Option<Duration> {
        (self != Self::NONE).then(|| {
            let shift = u32::from(self.0 >> Self::BITS);
            let mantissa = u64::from(self.0 & ((1 << Self::BITS) - 1));
            Duration::from_micros(mantissa << shift)
        })
    }
}

/// What a run has beyond its record: messages and workflow steps.
#[derive(Debug, PartialEq)]
pub struct RunDetail {
    message: Option<Arc<str>>,
    teardown_error: Option<Arc<str>>,
    steps: Box<[StepRecord]>,
}

/// One workflow step of a run.
#[derive(Debug, PartialEq)]
pub struct StepRecord {
    /// Shared with the same step of the previous run when equal (it nearly always is).
    meta: Arc<StepMeta>,
    message: Option<Arc<str>>,
    duration_us: u32,
    phases: [CompactMicros; 5],
    http_status: u16,
    error: u8,
    flags: u8,
}

/// What a step is, as opposed to how it went.
#[derive(Debug, PartialEq)]
struct StepMeta {
    name: Box<str>,
    /// Names (never values) of the variables the step extracted.
    extracted: Box<[Box<str>]>,
}

/// The kept runs of one check, oldest first.
#[derive(Debug)]
pub struct History {
    capacity: usize,
    runs: VecDeque<RunRecord>,
    /// The id of `runs[0]`; ids count every run of the check since it started, so they stay stable.
    first_id: u64,
    /// Details of the kept runs that have one, by run id, ascending.
    details: VecDeque<(u64, Arc<RunDetail>)>,
    /// When the current streak of failed runs began (kept even when the streak is longer than the ring).
    failing_since: Option<SystemTime>,
}

/// A kept run, as read.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    pub id: u64,
    record: &'a RunRecord,
    detail: Option<&'a RunDetail>,
}

/// What the check list shows about a check's history.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub runs: usize,
    pub successes: usize,
    pub failing_since: Option<SystemTime>,
}

impl History {
    /// An empty history keeping at most `capacity` runs (at least one). Nothing is allocated before the first run.
    pub fn new(capacity: usize) -> Self {
        History {
            capacity: capacity.max(1),
            runs: VecDeque::new(),
            first_id: 1,
            details: VecDeque::new(),
            failing_since: None,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Keeps at most `capacity` runs from now on, dropping the oldest if there are more.
    pub fn resize(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        while self.runs.len() > self.capacity {
            self.pop_oldest();
        }
        self.runs.shrink_to(self.capacity);
    }

    /// Adds a finished run (the oldest one leaves when the ring is full). `manual`: a run-now. Messages pass
    /// through `redactor` before they are kept.
    pub fn record(
        &mut self,
        result: &ProbeResult,
        started: SystemTime,
        manual: bool,
        redactor: &Redactor,
    ) {
        if self.runs.len() == self.capacity {
            self.pop_oldest();
        }
        if self.runs.capacity() < self.capacity {
            // Exactly the ring's size, once: growth by doubling would waste up to half of it.
            self.runs.reserve_exact(self.capacity - self.runs.len());
        }
        let since_epoch = started.duration_since(UNIX_EPOCH).unwrap_or_default();
        let record = RunRecord {
            started_s: u32::try_from(since_epoch.as_secs()).unwrap_or(u32::MAX),
            when: When::new(
                since_epoch.subsec_millis(),
                error_code(result.error.as_ref()),
                manual,
            ),
            answer: Answer::new(
                result.http.as_ref().map_or(0, |h| h.status),
                result.attempts,
            ),
            duration: CompactMicros::new(result.duration),
            phases: compact_phases(&result.phases),
        };
        let id = self.first_id + self.runs.len() as u64;
        self.runs.push_back(record);
        if result.error.is_some() || result.teardown_error.is_some() || !result.steps.is_empty() {
            let previous = self.details.back().map(|(_, d)| d.clone());
            let detail = detail(result, previous.as_deref(), redactor);
            // A check failing the same way run after run keeps one detail for all those runs.
            let detail = match previous {
                Some(p) if *p == detail => p,
                _ => Arc::new(detail),
            };
            self.details.push_back((id, detail));
        }
        match (&result.error, self.failing_since) {
            (None, _) => self.failing_since = None,
            (Some(_), None) => self.failing_since = Some(started),
            (Some(_), Some(_)) => {}
        }
    }

    fn pop_oldest(&mut self) {
        if self.runs.pop_front().is_some() {
            if self
                .details
                .front()
                .is_some_and(|(id, _)| *id == self.first_id)
            {
                self.details.pop_front();
            }
            self.first_id += 1;
        }
    }

    /// The kept runs, newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = Run<'_>> {
        let mut details = self.details.iter().rev().peekable();
        self.runs.iter().enumerate().rev().map(move |(i, record)| {
            let id = self.first_id + i as u64;
            while details.peek().is_some_and(|(d, _)| *d > id) {
                details.next();
            }
            let detail = match details.peek() {
                Some((d, detail)) if *d == id => Some(&**detail),
                _ => None,
            };
            Run { id, record, detail }
        })
    }

    /// The run with this id, while it is kept.
    pub fn get(&self, id: u64) -> Option<Run<'_>> {
        let i = usize::try_from(id.checked_sub(self.first_id)?).ok()?;
        let record = self.runs.get(i)?;
        let detail = self
            .details
            .binary_search_by_key(&id, |(d, _)| *d)
            .ok()
            .map(|j| &*self.details[j].1);
        Some(Run { id, record, detail })
    }

    pub fn latest(&self) -> Option<Run<'_>> {
        self.newest_first().next()
    }

    pub fn summary(&self) -> Summary {
        Summary {
            runs: self.runs.len(),
            successes: self.runs.iter().filter(|r| r.when.error() == 0).count(),
            failing_since: self.failing_since,
        }
    }

    /// The JSON of `/api/v1/checks/{name}/history` (newest run first). Messages pass through `redactor`, as in
    /// `/api/v1/checks`.
    pub fn to_json(&self, redactor: &Redactor) -> Value {
        let summary = self.summary();
        json!({
            "capacity": self.capacity,
            "kept": summary.runs,
            "successes": summary.successes,
            "failing_since": summary.failing_since.map(rfc3339),
            "runs": self.newest_first().map(|r| r.to_json(redactor)).collect::<Vec<_>>(),
        })
    }
}

impl<'a> Run<'a> {
    pub fn started(&self) -> SystemTime {
        UNIX_EPOCH
            + Duration::from_secs(self.record.started_s as u64)
            + Duration::from_millis(self.record.when.millis())
    }

    pub fn duration(&self) -> Duration {
        self.record.duration.get().unwrap_or_default()
    }

    pub fn success(&self) -> bool {
        self.record.when.error() == 0
    }

    pub fn error_type(&self) -> Option<ErrorType> {
        error_type(self.record.when.error())
    }

    pub fn manual(&self) -> bool {
        self.record.when.manual()
    }

    pub fn attempts(&self) -> u32 {
        self.record.answer.attempts()
    }

    pub fn http_status(&self) -> Option<u16> {
        let status = self.record.answer.http_status();
        (status != 0).then_some(status)
    }

    /// The phases that happened, in order.
    pub fn phases(&self) -> Vec<(Phase, Duration)> {
        expand_phases(&self.record.phases)
    }

    /// Already redacted when kept; pass it through the redactor again when showing it.
    pub fn message(&self) -> Option<&'a str> {
        self.detail.and_then(|d| d.message.as_deref())
    }

    pub fn teardown_error(&self) -> Option<&'a str> {
        self.detail.and_then(|d| d.teardown_error.as_deref())
    }

    pub fn steps(&self) -> &'a [StepRecord] {
        self.detail.map_or(&[], |d| &d.steps)
    }

    pub fn to_json(&self, r: &Redactor) -> Value {
        json!({
            "id": self.id,
            "started": rfc3339(self.started()),
            "duration_seconds": self.duration().as_secs_f64(),
            "success": self.success(),
            "manual": self.manual(),
            "attempts": self.attempts(),
            "http_status": self.http_status(),
            "error_type": self.error_type().map(ErrorType::as_str),
            "message": self.message().map(|m| r.redact(m)),
            "teardown_error": self.teardown_error().map(|m| r.redact(m)),
            "phases": phases_json(&self.phases()),
            "steps": self.steps().iter().map(|s| s.to_json(r)).collect::<Vec<_>>(),
        })
    }
}

impl StepRecord {
    pub fn name(&self) -> &str {
        &self.meta.name
    }

    pub fn success(&self) -> bool {
        self.flags & STEP_SUCCESS != 0
    }

    pub fn skipped(&self) -> bool {
        self.flags & STEP_SKIPPED != 0
    }

    pub fn teardown(&self) -> bool {
        self.flags & STEP_TEARDOWN != 0
    }

    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.duration_us as u64)
    }

    pub fn phases(&self) -> Vec<(Phase, Duration)> {
        expand_phases(&self.phases)
    }

    pub fn http_status(&self) -> Option<u16> {
        (self.http_status != 0).then_some(self.http_status)
    }

    pub fn error_type(&self) -> Option<ErrorType> {
        error_type(self.error)
    }

    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    pub fn extracted(&self) -> impl Iterator<Item = &str> {
        self.meta.extracted.iter().map(|n| &**n)
    }

    fn to_json(&self, r: &Redactor) -> Value {
        json!({
            "name": self.name(),
            "success": self.success(),
            "skipped": self.skipped(),
            "teardown": self.teardown(),
            "duration_seconds": self.duration().as_secs_f64(),
            "http_status": self.http_status(),
            "error_type": self.error_type().map(ErrorType::as_str),
            "message": self.message().map(|m| r.redact(m)),
            "phases": phases_json(&self.phases()),
            "extracted": self.extracted().collect::<Vec<_>>(),
        })
    }
}

fn detail(result: &ProbeResult, previous: Option<&RunDetail>, redactor: &Redactor) -> RunDetail {
    let mut known: Vec<&Arc<str>> = Vec::new();
    if let Some(p) = previous {
        known.extend(p.message.iter());
        known.extend(p.teardown_error.iter());
        for s in p.steps.iter() {
            known.extend(s.message.iter());
        }
    }
    let message = |e: &ProbeError| shared(&bounded(&redactor.redact(&e.message)), &known);
    let steps = result
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let before = previous.and_then(|p| p.steps.get(i));
            step_record(s, before, &known, redactor)
        })
        .collect();
    RunDetail {
        message: result.error.as_ref().map(message),
        teardown_error: result.teardown_error.as_ref().map(message),
        steps,
    }
}

fn step_record(
    s: &StepResult,
    before: Option<&StepRecord>,
    known: &[&Arc<str>],
    redactor: &Redactor,
) -> StepRecord {
    let meta = match before {
        Some(b)
            if *b.meta.name == *s.name
                && b.meta
                    .extracted
                    .iter()
                    .map(|n| &**n)
                    .eq(s.extracted.iter().map(String::as_str)) =>
        {
            b.meta.clone()
        }
        _ => Arc::new(StepMeta {
            name: s.name.as_str().into(),
            extracted: s.extracted.iter().map(|n| n.as_str().into()).collect(),
        }),
    };
    let mut flags = 0;
    if s.success {
        flags |= STEP_SUCCESS;
    }
    if s.skipped {
        flags |= STEP_SKIPPED;
    }
    if s.teardown {
        flags |= STEP_TEARDOWN;
    }
    StepRecord {
        meta,
        message: s
            .error
            .as_ref()
            .map(|e| shared(&bounded(&redactor.redact(&e.message)), known)),
        duration_us: micros(s.duration),
        phases: compact_phases(&s.phases),
        http_status: s.status.unwrap_or(0),
        error: error_code(s.error.as_ref()),
        flags,
    }
}

/// `text` as an `Arc<str>`, reusing one of `known` when equal.
fn shared(text: &str, known: &[&Arc<str>]) -> Arc<str> {
    for k in known {
        if &***k == text {
            return Arc::clone(k);
        }
    }
    Arc::from(text)
}

/// At most [`MAX_MESSAGE_BYTES`], cut at a character boundary with an ellipsis.
fn bounded(text: &str) -> String {
    if text.len() <= MAX_MESSAGE_BYTES {
        return text.to_string();
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX - 1)
}

fn compact_phases(p: &Phases) -> [CompactMicros; 5] {
    Phase::ALL.map(|phase| p.get(phase).map_or(CompactMicros::NONE, CompactMicros::new))
}

fn expand_phases(p: &[CompactMicros; 5]) -> Vec<(Phase, Duration)> {
    Phase::ALL
        .iter()
        .zip(p)
        .filter_map(|(phase, d)| Some((*phase, d.get()?)))
        .collect()
}

fn error_code(e: Option<&ProbeError>) -> u8 {
    e.map_or(0, |e| {
        1 + ErrorType::ALL
            .iter()
            .position(|t| *t == e.error_type)
            .expect("ALL lists every error type") as u8
    })
}

fn error_type(code: u8) -> Option<ErrorType> {
    code.checked_sub(1)
        .and_then(|i| ErrorType::ALL.get(i as usize).copied())
}

fn phases_json(p: &[(Phase, Duration)]) -> Value {
    Value::Object(
        p.iter()
            .map(|(phase, d)| (phase.as_str().to_string(), Value::from(d.as_secs_f64())))
            .collect::<Map<_, _>>(),
    )
}

/// RFC 3339 with milliseconds, UTC (as `/api/v1/checks` writes times).
pub fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::HttpFacts;

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_767_225_600 + s)
    }

    fn ok(ms: u64) -> ProbeResult {
        let mut phases = Phases::default();
        phases.add(Phase::Connect, Duration::from_millis(1));
        phases.add(Phase::Processing, Duration::from_millis(ms));
        ProbeResult {
            duration: Duration::from_millis(ms + 1),
            phases,
            http: Some(HttpFacts {
                status: 200,
                ..Default::default()
            }),
            attempts: 1,
            ..Default::default()
        }
    }

    fn failed(msg: &str) -> ProbeResult {
        ProbeResult::failed(
            ProbeError::new(ErrorType::HttpStatus, msg),
            Duration::from_millis(3),
        )
    }

    #[test]
    fn a_record_is_compact() {
        assert_eq!(std::mem::size_of::<RunRecord>(), 20);
        // Every error code fits in the five bits kept for it.
        assert!(ErrorType::ALL.len() < 32);
    }

    #[test]
    fn packed_fields_come_back_as_recorded() {
        let r = Redactor::default();
        let mut h = History::new(4);
        let started = UNIX_EPOCH + Duration::from_millis(1_764_000_000_999);
        for (status, error_type, manual) in [
            (999, None, true),
            (0, Some(ErrorType::Template), false),
            (503, Some(ErrorType::HttpStatus), true),
        ] {
            let mut res = ok(1);
            res.http.as_mut().unwrap().status = status;
            res.error = error_type.map(|t| ProbeError::new(t, "x"));
            res.attempts = 11;
            h.record(&res, started, manual, &r);
        }
        let runs: Vec<_> = h
            .newest_first()
            .map(|r| {
                (
                    r.started(),
                    r.http_status(),
                    r.error_type(),
                    r.manual(),
                    r.attempts(),
                )
            })
            .collect();
        assert_eq!(
            runs,
            [
                (started, Some(503), Some(ErrorType::HttpStatus), true, 11),
                (started, None, Some(ErrorType::Template), false, 11),
                (started, Some(999), None, true, 11),
            ]
        );
    }

    #[test]
    fn compact_durations_are_exact_when_short_and_within_a_thousandth_above() {
        for us in [0u64, 1, 999, 2047] {
            let d = Duration::from_micros(us);
            assert_eq!(CompactMicros::new(d).get(), Some(d));
        }
        let mut us = 2048u64;
        while us < 3_600_000_000 {
            let back = CompactMicros::new(Duration::from_micros(us)).get().unwrap();
            let err = us - back.as_micros() as u64;
            assert!(err * 1000 <= us, "{us} µs came back as {back:?}");
            assert_ne!(
                CompactMicros::new(Duration::from_micros(us)),
                CompactMicros::NONE
            );
            us = us * 3 / 2 + 7;
        }
        // Beyond the range: the largest value, never "did not happen".
        let huge = CompactMicros::new(Duration::from_secs(1 << 40));
        assert_ne!(huge, CompactMicros::NONE);
        assert!(huge.get().unwrap() > Duration::from_secs(3_600));
        assert_eq!(CompactMicros::NONE.get(), None);
    }

    #[test]
    fn attempts_saturate_and_run_now_is_kept() {
        let r = Redactor::default();
        let mut h = History::new(2);
        let mut res = failed("x");
        res.attempts = 3;
        h.record(&res, at(0), true, &r);
        res.attempts = 500;
        h.record(&res, at(1), false, &r);
        let runs: Vec<_> = h
            .newest_first()
            .map(|r| (r.attempts(), r.manual()))
            .collect();
        assert_eq!(runs, [(MAX_ATTEMPTS, false), (3, true)]);
    }

    #[test]
    fn the_ring_keeps_the_last_runs_with_stable_ids() {
        let r = Redactor::default();
        let mut h = History::new(3);
        for i in 0..5 {
            h.record(&failed(&format!("m{i}")), at(i), false, &r);
        }
        let ids: Vec<u64> = h.newest_first().map(|r| r.id).collect();
        assert_eq!(ids, [5, 4, 3]);
        let msgs: Vec<&str> = h.newest_first().filter_map(|r| r.message()).collect();
        assert_eq!(msgs, ["m4", "m3", "m2"]);
        assert_eq!(h.details.len(), 3);
        assert_eq!(h.get(4).unwrap().message(), Some("m3"));
        assert!(h.get(2).is_none());
        assert_eq!(h.summary().failing_since, Some(at(0)));
        h.record(&ok(5), at(9), true, &r);
        let latest = h.latest().unwrap();
        assert!(latest.success() && latest.manual());
        assert_eq!(latest.message(), None);
        assert_eq!(latest.http_status(), Some(200));
        assert_eq!(
            latest.phases(),
            [
                (Phase::Connect, Duration::from_millis(1)),
                (Phase::Processing, Duration::from_millis(5))
            ]
        );
        assert_eq!(h.summary().failing_since, None);
        assert_eq!(h.summary().successes, 1);
        h.resize(2);
        assert_eq!(h.newest_first().map(|r| r.id).collect::<Vec<_>>(), [6, 5]);
        assert_eq!(h.details.len(), 1);
    }

    #[test]
    fn repeated_messages_are_stored_once_redacted_and_bounded() {
        let r = Redactor::new(["s3cret".to_string()]);
        let mut h = History::new(10);
        h.record(&failed("got 500 for s3cret"), at(0), false, &r);
        h.record(&failed("got 500 for s3cret"), at(1), false, &r);
        assert!(Arc::ptr_eq(&h.details[0].1, &h.details[1].1));
        let a = h.details[0].1.message.clone().unwrap();
        assert_eq!(&*a, "got 500 for ***");
        // With another failure in between, a new detail (with the same text).
        h.record(&failed("other"), at(1), false, &r);
        h.record(&failed("got 500 for s3cret"), at(1), false, &r);
        assert!(!Arc::ptr_eq(&h.details[1].1, &h.details[3].1));
        assert_eq!(h.details[3].1.message.as_deref(), Some("got 500 for ***"));
        let long = format!("{}s3cret", "é".repeat(400));
        h.record(&failed(&long), at(2), false, &r);
        let m = h.latest().unwrap().message().unwrap();
        assert!(m.len() <= MAX_MESSAGE_BYTES + 3 && m.ends_with('…'), "{m}");
        assert!(!h.to_json(&r).to_string().contains("s3cret"));
    }
}

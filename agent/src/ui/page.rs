//! The page's HTML, rendered on the server so that it works without JavaScript: the check list (`/`) and a
//! check's page (`/checks/{name}`). Charts are inline SVG whose sizes are attributes (the CSP allows no inline
//! style). Every piece of text from the config or a run is HTML-escaped; free text (targets, messages) first
//! passes through the running config's `Redactor`, as in `/api/v1/checks`.

use crate::config::{CheckConfig, RunNow};
use crate::history::{History, Run, Summary};
use crate::result::Phase;
use crate::scheduler::{CheckView, Scheduler};
use std::fmt::Write;
use std::time::{Duration, SystemTime};
use vantage_common::Redactor;

/// Bars in a check's strip on the list.
const STRIP_RUNS: usize = 40;
/// Rows on the list; the rest is reached by filtering (the page stays a few MB at most, refreshed every 5 s).
const MAX_ROWS: usize = 200;
/// Bars in the chart of a check's page.
const CHART_RUNS: usize = 200;
/// Rows in the run table of a check's page.
const TABLE_RUNS: usize = 100;

/// HTML-escapes `s` for text and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `850 µs`, `12.3 ms`, `1.24 s`.
pub fn dur(d: Duration) -> String {
    let us = d.as_micros();
    if us < 1000 {
        format!("{us} µs")
    } else if us < 100_000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else if us < 1_000_000 {
        format!("{:.0} ms", us as f64 / 1000.0)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// `5s`, `3m`, `2h 5m`, `4d`.
fn span(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 if s % 3600 >= 60 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn utc(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// `<time>` reading "3m ago" / "in 12s", the exact UTC time as its tooltip.
fn when(t: SystemTime, now: SystemTime) -> String {
    let text = match t.duration_since(now) {
        Ok(ahead) if ahead < Duration::from_secs(1) => "now".to_string(),
        Ok(ahead) => format!("in {}", span(ahead)),
        Err(e) => format!("{} ago", span(e.duration())),
    };
    format!(
        "<time datetime=\"{}\" title=\"{}\">{text}</time>",
        crate::history::rfc3339(t),
        utc(t)
    )
}

/// When a check runs next: "in 12s", or "due now" once the time has come (it waits for a slot or is running).
fn next_run(t: SystemTime, now: SystemTime) -> String {
    if t <= now {
        return "due now".into();
    }
    when(t, now)
}

fn pct(part: usize, whole: usize) -> String {
    if whole == 0 {
        return "–".into();
    }
    if part == whole {
        return "100%".into();
    }
    // Rounded down, so a failure is never rounded away: 9999/10000 reads 99.9%, not 100%.
    let tenths = (part as u128 * 1000 / whole as u128) as u64;
    format!("{}.{}%", tenths / 10, tenths % 10)
}

/// What the list says about a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Passing,
    Failing(SystemTime),
    Pending,
    Disabled,
    /// Enabled, but its `regions:` leave this agent out.
    Elsewhere,
}

impl State {
    fn of(view: &CheckView, region: &str, summary: &Summary, latest_ok: Option<bool>) -> State {
        let cfg = &view.config;
        if !cfg.enabled {
            return State::Disabled;
        }
        if !cfg.runs_in(region) || view.state.is_none() {
            return State::Elsewhere;
        }
        match (latest_ok, summary.failing_since) {
            (None, _) => State::Pending,
            (Some(false), Some(since)) => State::Failing(since),
            (Some(false), None) => State::Failing(SystemTime::UNIX_EPOCH),
            (Some(true), _) => State::Passing,
        }
    }

    fn class(self) -> &'static str {
        match self {
            State::Passing => "passing",
            State::Failing(_) => "failing",
            State::Pending => "pending",
            State::Disabled | State::Elsewhere => "off",
        }
    }

    /// Sort key: what needs attention first.
    fn rank(self) -> u8 {
        match self {
            State::Failing(_) => 0,
            State::Pending => 1,
            State::Passing => 2,
            State::Elsewhere => 3,
            State::Disabled => 4,
        }
    }

    fn pill(self, now: SystemTime) -> String {
        let text = match self {
            State::Passing => "passing".to_string(),
            State::Failing(since) => format!("failing since {}", when(since, now)),
            State::Pending => "pending".to_string(),
            State::Disabled => "disabled".to_string(),
            State::Elsewhere => "not in this region".to_string(),
        };
        format!(
            "<span class=\"pill {}\" data-state=\"{}\">{text}</span>",
            self.class(),
            self.class_name()
        )
    }

    fn class_name(self) -> &'static str {
        match self {
            State::Passing => "passing",
            State::Failing(_) => "failing",
            State::Pending => "pending",
            State::Disabled => "disabled",
            State::Elsewhere => "elsewhere",
        }
    }
}

/// The page frame: head (stylesheet, script, CSP-friendly: no inline code), header and `main`.
fn frame(title: &str, region: &str, body_class: &str, main: &str) -> String {
    let v = env!("CARGO_PKG_VERSION");
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title>\
<link rel=\"icon\" href=\"/ui/favicon.svg?v={v}\" type=\"image/svg+xml\">\
<link rel=\"stylesheet\" href=\"/ui/app.css?v={v}\">\
<script src=\"/ui/app.js?v={v}\" defer></script></head>\
<body class=\"{body_class}\"><header class=\"top\"><a class=\"brand\" href=\"/\">\
<img src=\"/ui/favicon.svg?v={v}\" alt=\"\" width=\"22\" height=\"22\"> Vantage agent</a>\
<span class=\"region\" title=\"region\">{region}</span>\
<span class=\"live\" id=\"live-status\" hidden>live</span>\
<nav><a href=\"/api/v1/checks\">JSON</a><a href=\"/metrics\">metrics</a></nav></header>\
<main>{main}</main>\
<footer>vantage-agent {v} · times in UTC on hover · <noscript>reload to refresh</noscript>\
<span class=\"js-only\" hidden>refreshes every 5 s</span></footer></body></html>\n",
        title = esc(title),
        region = esc(region),
    )
}

/// A strip of runs, oldest left: height by duration (relative to the longest shown), colour by result.
fn strip(
    runs: &[Run<'_>],
    width_per_run: u32,
    height: u32,
    link: Option<&str>,
    selected: Option<u64>,
) -> String {
    let n = runs.len() as u32;
    if n == 0 {
        return "<span class=\"muted\">no runs yet</span>".into();
    }
    let max = runs
        .iter()
        .map(|r| r.duration())
        .max()
        .unwrap_or_default()
        .max(Duration::from_micros(1));
    let w = width_per_run * n;
    let mut svg = format!(
        "<svg class=\"strip\" viewBox=\"0 0 {w} {height}\" width=\"{w}\" height=\"{height}\" role=\"img\" \
         aria-label=\"last {n} runs\" preserveAspectRatio=\"none\">"
    );
    for (i, r) in runs.iter().enumerate() {
        let frac = r.duration().as_secs_f64() / max.as_secs_f64();
        // At least a third of the height, so a fast run is still visible (and clickable).
        let h = ((height as f64 * (0.33 + 0.67 * frac)).round() as u32).clamp(3, height);
        let x = i as u32 * width_per_run;
        let class = format!(
            "{}{}{}",
            if r.success() { "ok" } else { "bad" },
            if r.manual() { " manual" } else { "" },
            if Some(r.id) == selected { " sel" } else { "" }
        );
        let title = format!(
            "{} · {} · {}{}",
            utc(r.started()),
            if r.success() { "ok" } else { "failed" },
            dur(r.duration()),
            if r.manual() { " · run now" } else { "" }
        );
        let rect = format!(
            "<rect class=\"{class}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{h}\" rx=\"1\"><title>{}</title></rect>",
            x + 1,
            height - h,
            width_per_run.saturating_sub(2).max(1),
            esc(&title)
        );
        match link {
            Some(base) => {
                let _ = write!(
                    svg,
                    "<a href=\"{base}?run={id}#run\" data-run=\"{id}\">{rect}</a>",
                    id = r.id
                );
            }
            None => svg.push_str(&rect),
        }
    }
    svg.push_str("</svg>");
    svg
}

fn check_href(cfg: &CheckConfig) -> String {
    format!("/checks/{}", esc(cfg.name.as_str()))
}

/// `GET /` (`filter`: `?q=`, part of a check's name): every check of this agent, the ones that need attention
/// first, at most [`MAX_ROWS`] of them (an agent may run tens of thousands).
pub fn index(s: &Scheduler, filter: Option<&str>) -> String {
    let region = s.region();
    let redactor = s.redactor();
    let now = s.now();
    let views = s.checks();
    let filter = filter.map(str::trim).filter(|f| !f.is_empty());
    // First what every check's state is (cheap), then HTML for the rows shown.
    let mut entries: Vec<(State, usize)> = views
        .iter()
        .enumerate()
        .map(|(order, view)| {
            let (summary, latest_ok) = match &view.state {
                Some(st) => {
                    let h = st.history.lock().unwrap();
                    (h.summary(), h.latest().map(|r| r.success()))
                }
                None => (Summary::default(), None),
            };
            (State::of(view, &region, &summary, latest_ok), order)
        })
        .collect();
    let count = |f: fn(&State) -> bool| entries.iter().filter(|(s, _)| f(s)).count();
    let failing = count(|s| matches!(s, State::Failing(_)));
    let passing = count(|s| matches!(s, State::Passing));
    let pending = count(|s| matches!(s, State::Pending));
    let off = count(|s| matches!(s, State::Disabled | State::Elsewhere));
    entries.sort_by_key(|(state, order)| (state.rank(), *order));
    let matching: Vec<&(State, usize)> = entries
        .iter()
        .filter(|(_, order)| filter.is_none_or(|f| views[*order].config.name.as_str().contains(f)))
        .collect();
    let headline = headline(failing, passing, pending);
    let mut main = String::new();
    // The filter sits outside the refreshed part, so typing survives a refresh; it works without JavaScript.
    if views.len() > 10 || filter.is_some() {
        let _ = write!(
            main,
            "<form class=\"filter\" method=\"get\" action=\"/\"><input type=\"search\" name=\"q\" value=\"{}\" \
placeholder=\"Filter checks by name\" aria-label=\"filter checks by name\"><button type=\"submit\">Filter</button></form>",
            esc(filter.unwrap_or(""))
        );
    }
    let _ = write!(
        main,
        "<div id=\"live\">{headline}\
<ul class=\"tally\"><li class=\"failing\"><b>{failing}</b> failing</li><li class=\"passing\"><b>{passing}</b> passing</li>\
<li class=\"pending\"><b>{pending}</b> pending</li><li class=\"off\"><b>{off}</b> disabled or elsewhere</li>\
<li class=\"asof\">as of {}</li></ul>",
        utc(now)
    );
    if views.is_empty() {
        main.push_str("<p class=\"empty\">This agent has no checks. Add some under <code>checks:</code> in its config.</p>");
    } else if matching.is_empty() {
        let _ = write!(
            main,
            "<p class=\"empty\">No check name contains “{}”. <a href=\"/\">All checks</a></p>",
            esc(filter.unwrap_or(""))
        );
    } else {
        main.push_str(
            "<table class=\"checks\"><thead><tr><th>State</th><th>Check</th><th>Target</th>\
<th class=\"num\">Last</th><th class=\"num\">Success</th><th class=\"num\">Next run</th><th>Recent runs</th></tr></thead><tbody>",
        );
        for (state, order) in matching.iter().take(MAX_ROWS) {
            row(&mut main, &views[*order], *state, &redactor, now);
        }
        main.push_str("</tbody></table>");
        if matching.len() > MAX_ROWS {
            let _ = write!(
                main,
                "<p class=\"muted\">Showing {MAX_ROWS} of {} checks, the ones that need attention first: filter by name to \
find the others (or see <a href=\"/api/v1/checks\">all as JSON</a>).</p>",
                matching.len()
            );
        }
    }
    main.push_str("</div>");
    let title = if failing > 0 {
        format!("({failing} failing) Vantage agent · {region}")
    } else {
        format!("Vantage agent · {region}")
    };
    frame(&title, &region, "index", &main)
}

/// One check's row on the list.
fn row(main: &mut String, view: &CheckView, state: State, redactor: &Redactor, now: SystemTime) {
    let cfg = &view.config;
    let (summary, latest, strip_html, next_run) = match &view.state {
        Some(st) => {
            let h = st.history.lock().unwrap();
            let mut runs: Vec<Run<'_>> = h.newest_first().take(STRIP_RUNS).collect();
            runs.reverse();
            let latest = h.latest().map(|r| r.duration());
            (
                h.summary(),
                latest,
                strip(&runs, 6, 24, Some(&check_href(cfg)), None),
                st.status().next_run,
            )
        }
        None => (Summary::default(), None, String::new(), None),
    };
    let target = redactor.redact(&cfg.target());
    let _ = write!(
        main,
        "<tr class=\"row {cls}\" data-check=\"{name}\">\
<td data-label=\"State\" class=\"state\">{pill}</td>\
<td data-label=\"Check\" class=\"name\"><a href=\"{href}\">{name}</a> <span class=\"type\">{ty}</span></td>\
<td data-label=\"Target\" class=\"target\" title=\"{target}\">{target}</td>\
<td data-label=\"Last\" class=\"num last\">{last}</td>\
<td data-label=\"Success\" class=\"num ratio\" title=\"{ok} of {kept} kept runs\">{ratio}</td>\
<td data-label=\"Next run\" class=\"num next\">{next}</td>\
<td data-label=\"Recent runs\" class=\"spark\">{strip_html}</td></tr>",
        cls = state.class(),
        name = esc(cfg.name.as_str()),
        pill = state.pill(now),
        href = check_href(cfg),
        ty = esc(cfg.check_type),
        target = esc(&target),
        last = latest.map_or("–".into(), dur),
        ok = summary.successes,
        kept = summary.runs,
        ratio = pct(summary.successes, summary.runs),
        next = next_run.map_or("–".into(), |t| self::next_run(t, now)),
    );
}

/// The page for a check name this agent does not know (served with 404).
pub fn not_found(s: &Scheduler, name: &str) -> String {
    let main = format!(
        "<p class=\"crumbs\"><a href=\"/\">← All checks</a></p><h1>No check named “{}”</h1>",
        esc(name)
    );
    frame("No such check", &s.region(), "check", &main)
}

/// `GET /checks/{name}` (`run`: the selected run's id, else the newest). `None` when no check has that name.
pub fn check(s: &Scheduler, name: &str, run: Option<u64>) -> Option<String> {
    let view = s
        .checks()
        .into_iter()
        .find(|v| v.config.name.as_str() == name)?;
    let region = s.region();
    let redactor = s.redactor();
    let ui = s.ui();
    let now = s.now();
    let cfg = view.config.clone();
    let href = check_href(&cfg);
    let mut main = String::new();
    let (summary, latest_ok, next_run) = match &view.state {
        Some(st) => {
            let h = st.history.lock().unwrap();
            (
                h.summary(),
                h.latest().map(|r| r.success()),
                st.status().next_run,
            )
        }
        None => (Summary::default(), None, None),
    };
    let state = State::of(&view, &region, &summary, latest_ok);
    let target = redactor.redact(&cfg.target());
    let _ = write!(
        main,
        "<p class=\"crumbs\"><a href=\"/\">← All checks</a></p>\
<div class=\"check-head\"><div><h1>{name} <span class=\"type\">{ty}</span></h1>\
<p class=\"target mono\">{target}</p></div>",
        name = esc(cfg.name.as_str()),
        ty = esc(cfg.check_type),
        target = esc(&target),
    );
    // Run now sits outside the refreshed part, so a token being typed survives a refresh.
    let running_here = view.state.is_some();
    if running_here && ui.run_now != RunNow::Off {
        let needs_token = matches!(ui.run_now, RunNow::Token(_));
        let _ = write!(
            main,
            "<form class=\"run-now\" id=\"run-now\" data-check=\"{name}\" data-token=\"{tok}\" hidden>\
{input}<button type=\"submit\">Run now</button><output id=\"run-now-status\" aria-live=\"polite\"></output></form>",
            name = esc(cfg.name.as_str()),
            tok = if needs_token { "required" } else { "none" },
            input = if needs_token {
                "<input type=\"password\" id=\"run-now-token\" autocomplete=\"off\" placeholder=\"admin token\" \
                 aria-label=\"admin token\">"
            } else {
                ""
            },
        );
    }
    main.push_str("</div><div id=\"live\">");
    let mut facts = vec![
        ("State", state.pill(now)),
        ("Schedule", esc(&cfg.schedule.to_string())),
        (
            "Timeout",
            esc(&humantime::format_duration(cfg.timeout).to_string()),
        ),
        ("Retries", cfg.retries.to_string()),
        (
            "Success",
            format!(
                "{} <span class=\"muted\">({} of {} kept runs)</span>",
                pct(summary.successes, summary.runs),
                summary.successes,
                summary.runs
            ),
        ),
        (
            "Next run",
            next_run.map_or("–".into(), |t| self::next_run(t, now)),
        ),
    ];
    if let Some(st) = &view.state {
        let h = st.history.lock().unwrap();
        let mut d: Vec<Duration> = h.newest_first().map(|r| r.duration()).collect();
        if !d.is_empty() {
            d.sort();
            let q = |p: f64| d[((d.len() - 1) as f64 * p).round() as usize];
            facts.push((
                "Duration",
                format!(
                    "p50 {} · p95 {} · max {}",
                    dur(q(0.5)),
                    dur(q(0.95)),
                    dur(q(1.0))
                ),
            ));
        }
    }
    if !cfg.labels.is_empty() {
        let labels: Vec<String> = cfg
            .labels
            .iter()
            .map(|(k, v)| format!("<span class=\"chip\">{}={}</span>", esc(k), esc(v)))
            .collect();
        facts.push(("Labels", labels.join(" ")));
    }
    main.push_str("<dl class=\"facts\">");
    for (k, v) in facts {
        let wide = if matches!(k, "Duration" | "Labels") {
            " class=\"wide\""
        } else {
            ""
        };
        let _ = write!(main, "<div{wide}><dt>{k}</dt><dd>{v}</dd></div>");
    }
    main.push_str("</dl>");
    match &view.state {
        None => {
            let why = if cfg.enabled {
                "This check's <code>regions:</code> do not include this agent's region, so it does not run here."
            } else {
                "This check is disabled (<code>enabled: false</code>)."
            };
            let _ = write!(main, "<p class=\"empty\">{why}</p>");
        }
        Some(st) => {
            let h = st.history.lock().unwrap();
            history_section(&mut main, &h, run, &href, &redactor, now);
        }
    }
    main.push_str("</div>");
    let title = format!("{} · Vantage agent · {region}", cfg.name.as_str());
    Some(frame(&title, &region, "check", &main))
}

fn history_section(
    main: &mut String,
    h: &History,
    selected: Option<u64>,
    href: &str,
    r: &Redactor,
    now: SystemTime,
) {
    let Some(latest) = h.latest() else {
        main.push_str(
            "<p class=\"empty\">No runs yet: the first one is due at the next run time above.</p>",
        );
        return;
    };
    let mut chart: Vec<Run<'_>> = h.newest_first().take(CHART_RUNS).collect();
    chart.reverse();
    let shown = selected.unwrap_or(latest.id);
    let _ = write!(
        main,
        "<section class=\"card\"><h2>{} <span class=\"muted\">(kept: {} of {}; height by duration; click a bar)</span></h2>\
<div class=\"chart\">{}</div></section>",
        if chart.len() == 1 {
            "Last run".to_string()
        } else {
            format!("Last {} runs", chart.len())
        },
        h.summary().runs,
        h.capacity(),
        strip(&chart, 8, 56, Some(href), Some(shown))
    );
    let run = match selected {
        Some(id) => h.get(id),
        None => Some(latest),
    };
    match run {
        Some(run) => selected_run(main, &run, r, now),
        None => {
            let _ = write!(
                main,
                "<section class=\"card\" id=\"run\"><p class=\"empty\">Run #{} is no longer kept. \
<a href=\"{href}\">Show the latest</a>.</p></section>",
                selected.unwrap_or_default()
            );
        }
    }
    let selected_id = run.map(|r| r.id);
    let _ = write!(
        main,
        "<section class=\"card\"><h2>Runs</h2><table class=\"runs\"><thead><tr><th>Time</th><th>Result</th>\
<th class=\"num\">Duration</th><th class=\"num\">HTTP</th><th>Error</th><th>Message</th></tr></thead><tbody>"
    );
    for run in h.newest_first().take(TABLE_RUNS) {
        let message = run.message().map(|m| r.redact(m)).unwrap_or_default();
        let _ = write!(
            main,
            "<tr class=\"{sel}\" data-run=\"{id}\"><td data-label=\"Time\"><a href=\"{href}?run={id}#run\">{time}</a>{manual}</td>\
<td data-label=\"Result\">{result}</td><td data-label=\"Duration\" class=\"num\">{d}</td>\
<td data-label=\"HTTP\" class=\"num\">{status}</td><td data-label=\"Error\" class=\"err\">{et}</td>\
<td data-label=\"Message\" class=\"msg\">{msg}</td></tr>",
            sel = if Some(run.id) == selected_id { "selected" } else { "" },
            id = run.id,
            time = when(run.started(), now),
            manual = if run.manual() {
                " <span class=\"chip\">run now</span>"
            } else {
                ""
            },
            result = result_badge(run.success()),
            d = dur(run.duration()),
            status = run.http_status().map_or("–".into(), |s| s.to_string()),
            et = run.error_type().map_or("", |e| e.as_str()),
            msg = esc(&message),
        );
    }
    main.push_str("</tbody></table>");
    if h.summary().runs > TABLE_RUNS {
        let _ = write!(
            main,
            "<p class=\"muted\">The newest {TABLE_RUNS} runs; all kept runs: \
<a href=\"/api/v1/checks/{}/history\">JSON</a>.</p>",
            href.trim_start_matches("/checks/")
        );
    }
    main.push_str("</section>");
}

fn result_badge(ok: bool) -> &'static str {
    if ok {
        "<span class=\"badge ok\">ok</span>"
    } else {
        "<span class=\"badge bad\">failed</span>"
    }
}

/// The selected run: its facts, message and phase waterfall; for workflows one waterfall row per step.
fn selected_run(main: &mut String, run: &Run<'_>, r: &Redactor, now: SystemTime) {
    let _ = write!(
        main,
        "<section class=\"card selected-run\" id=\"run\" data-run=\"{id}\"><h2>Run #{id} {badge}{manual}</h2>\
<p class=\"muted\">started {time} · {utc} · took {d} · {attempts} attempt{s}{status}</p>",
        id = run.id,
        badge = result_badge(run.success()),
        manual = if run.manual() {
            " <span class=\"chip\">run now</span>"
        } else {
            ""
        },
        time = when(run.started(), now),
        utc = utc(run.started()),
        d = dur(run.duration()),
        attempts = run.attempts(),
        s = if run.attempts() == 1 { "" } else { "s" },
        status = run
            .http_status()
            .map_or(String::new(), |s| format!(" · HTTP {s}")),
    );
    if let (Some(et), Some(m)) = (run.error_type(), run.message()) {
        let _ = write!(
            main,
            "<div class=\"error\"><b>{}</b> {}</div>",
            et.as_str(),
            esc(&r.redact(m))
        );
    }
    if let Some(t) = run.teardown_error() {
        let _ = write!(
            main,
            "<div class=\"error\"><b>teardown</b> {}</div>",
            esc(&r.redact(t))
        );
    }
    let steps = run.steps();
    if steps.is_empty() {
        let phases = run.phases();
        if phases.is_empty() {
            main.push_str("<p class=\"muted\">No phase timings for this run (not an HTTP exchange, or it failed before one).</p>");
        } else {
            main.push_str("<h3>Waterfall</h3>");
            waterfall(main, &phases, run.duration());
        }
    } else {
        main.push_str("<h3>Steps</h3><div class=\"steps\">");
        let total = steps
            .iter()
            .map(|s| s.duration())
            .sum::<Duration>()
            .max(Duration::from_micros(1));
        let mut offset = Duration::ZERO;
        for s in steps {
            let state = if s.skipped() {
                "skipped"
            } else if s.success() {
                "ok"
            } else {
                "bad"
            };
            let _ = write!(
                main,
                "<div class=\"step {state}\" data-step=\"{name}\"><div class=\"step-head\"><span class=\"badge {state}\">{state_text}</span> \
<b>{name}</b>{teardown} <span class=\"muted\">{d}{status}</span></div>",
                name = esc(s.name()),
                state_text = match state {
                    "ok" => "ok",
                    "bad" => "failed",
                    _ => "skipped",
                },
                teardown = if s.teardown() {
                    " <span class=\"chip\">teardown</span>"
                } else {
                    ""
                },
                d = dur(s.duration()),
                status = s
                    .http_status()
                    .map_or(String::new(), |c| format!(" · HTTP {c}")),
            );
            // The step's place in the run, then its own phases.
            let _ = write!(
                main,
                "<div class=\"wf-row\"><span class=\"wf-label\">in run</span>{}<span class=\"wf-val\">{}</span></div>",
                bar(offset, s.duration(), total, "in-run"),
                dur(s.duration())
            );
            waterfall(main, &s.phases(), s.duration());
            if let (Some(et), Some(m)) = (s.error_type(), s.message()) {
                let _ = write!(
                    main,
                    "<div class=\"error\"><b>{}</b> {}</div>",
                    et.as_str(),
                    esc(&r.redact(m))
                );
            }
            let vars: Vec<String> = s
                .extracted()
                .map(|v| format!("<span class=\"chip var\">{}</span>", esc(v)))
                .collect();
            if !vars.is_empty() {
                let _ = write!(
                    main,
                    "<p class=\"vars\"><span class=\"muted\">extracted</span> {}</p>",
                    vars.join(" ")
                );
            }
            main.push_str("</div>");
            offset += s.duration();
        }
        main.push_str("</div>");
    }
    main.push_str("</section>");
}

/// One bar at `offset` of `len` in a track of `total`.
fn bar(offset: Duration, len: Duration, total: Duration, class: &str) -> String {
    let t = total.as_secs_f64().max(1e-9);
    let x = (offset.as_secs_f64() / t * 1000.0).clamp(0.0, 1000.0);
    let w = (len.as_secs_f64() / t * 1000.0).clamp(2.0, 1000.0 - x.min(998.0));
    format!(
        "<svg class=\"wf-track\" viewBox=\"0 0 1000 10\" preserveAspectRatio=\"none\" aria-hidden=\"true\">\
<rect class=\"track\" x=\"0\" y=\"0\" width=\"1000\" height=\"10\"/>\
<rect class=\"{class}\" x=\"{x:.1}\" y=\"0\" width=\"{w:.1}\" height=\"10\" rx=\"2\"/></svg>"
    )
}

/// Phases one after the other (they are sequential in an exchange), against the run's duration.
fn waterfall(main: &mut String, phases: &[(Phase, Duration)], total: Duration) {
    let sum: Duration = phases.iter().map(|(_, d)| *d).sum();
    let total = total.max(sum).max(Duration::from_micros(1));
    main.push_str("<div class=\"waterfall\">");
    let mut offset = Duration::ZERO;
    for (phase, d) in phases {
        let _ = write!(
            main,
            "<div class=\"wf-row\" data-phase=\"{p}\"><span class=\"wf-label\">{p}</span>{}<span class=\"wf-val\">{}</span></div>",
            bar(offset, *d, total, &format!("ph-{}", phase.as_str())),
            dur(*d),
            p = phase.as_str(),
        );
        offset += *d;
    }
    main.push_str("</div>");
}

/// The list's headline, what an operator reads first. A check that has not run yet is not counted as passing: "all
/// passing" would vouch for it.
fn headline(failing: usize, passing: usize, pending: usize) -> String {
    if failing > 0 {
        format!(
            "<h1 class=\"headline failing\">{failing} of {} checks failing</h1>",
            failing + passing + pending
        )
    } else if passing > 0 && pending == 0 {
        "<h1 class=\"headline passing\">All checks passing</h1>".to_string()
    } else if passing > 0 {
        "<h1 class=\"headline passing\">All checks that ran are passing</h1>".to_string()
    } else {
        "<h1 class=\"headline\">Waiting for the first runs</h1>".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_headline_vouches_only_for_checks_that_ran() {
        let h = |f, p, w| headline(f, p, w);
        assert!(h(1, 2, 1).contains(">1 of 4 checks failing<"));
        assert!(h(0, 3, 0).contains(">All checks passing<"));
        assert!(h(0, 1, 1).contains(">All checks that ran are passing<"));
        assert!(h(0, 0, 2).contains(">Waiting for the first runs<"));
    }

    #[test]
    fn escaping_and_formats() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(dur(Duration::from_micros(850)), "850 µs");
        assert_eq!(dur(Duration::from_micros(12_340)), "12.3 ms");
        assert_eq!(dur(Duration::from_millis(1240)), "1.24 s");
        assert_eq!(span(Duration::from_secs(3725)), "1h 2m");
        assert_eq!(pct(999, 1000), "99.9%");
        assert_eq!(pct(1000, 1000), "100%");
        assert_eq!(pct(0, 0), "–");
    }
}

//! Shaping validated events into store records and metric observations: route templates, API endpoint
//! labels, status classes, user agents, each label admitted through the site's budget.

use crate::cardinality::{Budgets, Label};
use crate::event::{EventType, ValidEvent};
use crate::metrics::Observation;
use crate::route_pattern::{split_path, RoutePattern};
use crate::store::{EventRecord, RawJson, Text};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;

/// What shaping the events of one sending site needs: its routes and label budget, and the server's label
/// budgets and user-agent parser.
pub struct Shaper<'a> {
    /// The site's index in the config (its label budgets are kept per index).
    pub site: usize,
    pub site_id: &'a Text,
    pub routes: &'a [RoutePattern],
    pub label_budget: usize,
    /// `storage.keep_query_params`: whether stored URLs keep their query.
    pub keep_query: bool,
    pub budgets: &'a Budgets,
    pub ua: &'a UaParser,
}

impl Shaper<'_> {
    /// The records to store and the observations to count once they are stored. `body` is the request body
    /// the events borrow from: each record keeps its JSON as a slice of it.
    pub fn shape(
        &self,
        valid: Vec<(usize, ValidEvent<'_>)>,
        body: &Text,
        now_ms: i64,
    ) -> (Vec<EventRecord>, Vec<Observation>) {
        let mut records = Vec::with_capacity(valid.len());
        let mut obs = Vec::with_capacity(valid.len());
        // The events of a batch nearly always come from one page, one browser and one session: shape each page
        // URL and user agent once per run of equal ones, not once per event, and share their text.
        let mut page: Option<PageShape> = None;
        let mut agent: Option<(String, UserAgent)> = None;
        let mut session: Option<Text> = None;
        for (_, ev) in valid {
            if page
                .as_ref()
                .is_some_and(|p| p.url.as_deref() != ev.url.as_deref())
            {
                page = None;
            }
            let PageShape {
                route,
                stored_url,
                label,
                ..
            } = page.get_or_insert_with(|| self.page(ev.url.as_deref()));
            if agent.as_ref().is_some_and(|(ua, _)| *ua != ev.user_agent) {
                agent = None;
            }
            let (_, ua) = agent
                .get_or_insert_with(|| (ev.user_agent.to_string(), self.ua.parse(&ev.user_agent)));
            if session.as_deref().is_some_and(|s| *s != *ev.session_id) {
                session = None;
            }
            let session_id = session.get_or_insert_with(|| ev.session_id.as_ref().into());
            let endpoint = (ev.kind == EventType::ApiCall).then(|| match &ev.endpoint_url {
                Some(e) => {
                    endpoint_label(ev.method.as_deref().unwrap_or("GET"), e, ev.url.as_deref())
                }
                None => "unknown".to_string(),
            });
            obs.push(Observation {
                kind: ev.kind,
                page: label.clone(),
                value_ms: ev.value,
                vital: ev.vital,
                endpoint: endpoint.as_deref().map(|e| {
                    self.budgets
                        .admit(self.site, Label::Endpoint, e, self.label_budget)
                }),
                status_class: status_class(ev.status),
            });
            records.push(EventRecord {
                event_id: ev.event_id,
                site: self.site_id.clone(),
                session_id: session_id.clone(),
                event_type: ev.kind.as_str().into(),
                client_ts_ms: ev.timestamp_ms,
                received_ms: now_ms,
                route: route.clone(),
                url: stored_url.clone(),
                browser: ua.browser.clone(),
                os: ua.os.clone(),
                device: ua.device.clone(),
                value: ev.value,
                rating: match (ev.vital, ev.value) {
                    (Some(v), Some(x)) => Some(v.rating(x).into()),
                    _ => None,
                },
                name: ev.name,
                endpoint,
                status: ev.status,
                raw: match ev.raw {
                    Cow::Borrowed(raw) => RawJson::within(body, raw),
                    Cow::Owned(raw) => raw.into(),
                },
                release: ev.release.map(Into::into),
                fingerprint: ev.error.as_ref().map(|e| e.fingerprint.clone()),
                stack: ev.error.and_then(|e| e.stack),
            });
        }
        (records, obs)
    }

    /// One page URL shaped.
    fn page(&self, url: Option<&str>) -> PageShape {
        let route = url
            .map(|u| route_template(u, self.routes))
            .unwrap_or_else(|| "unknown".into());
        let stored_url = url
            .map(|u| stored_url(u, self.keep_query))
            .unwrap_or_default();
        let label = self
            .budgets
            .admit(self.site, Label::Page, &route, self.label_budget);
        PageShape {
            url: url.map(str::to_string),
            route: route.into(),
            stored_url: stored_url.into(),
            label,
        }
    }
}

/// One page URL shaped: its route template, the URL as stored, and the route as a metric label (budgeted).
struct PageShape {
    url: Option<String>,
    route: Text,
    stored_url: Text,
    label: Text,
}

// URLs are sliced here rather than parsed by the `url` crate, which would rewrite what labels show
// (percent-encoding, deleted TAB/CR/LF, resolved `..`, punycode) and is 2.3x slower: bench/README.md.

/// The path of a URL (absolute or relative) as sent; origin, query and fragment dropped.
pub fn url_path(url: &str) -> &str {
    let no_frag = url.split('#').next().unwrap_or("");
    let no_query = no_frag.split('?').next().unwrap_or("");
    match no_query.find("://") {
        Some(i) => {
            let after = &no_query[i + 3..];
            after.find('/').map(|j| &after[j..]).unwrap_or("/")
        }
        None if no_query.starts_with("//") => {
            let after = &no_query[2..];
            after.find('/').map(|j| &after[j..]).unwrap_or("/")
        }
        None => no_query,
    }
}

/// The host of an absolute URL (lower case, port kept), if any.
pub fn url_host(url: &str) -> Option<String> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .or_else(|| url.strip_prefix("//"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = rest[..end].rsplit('@').next().unwrap_or("");
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The URL as stored: fragment always dropped, query dropped unless kept by config.
pub fn stored_url(url: &str, keep_query: bool) -> String {
    let no_frag = url.split('#').next().unwrap_or("");
    if keep_query {
        no_frag.to_string()
    } else {
        no_frag.split('?').next().unwrap_or("").to_string()
    }
}

/// Route template of a URL: configured patterns win; otherwise numeric segments become `:id`, UUIDs `:uuid`,
/// long hex or random-looking segments `:hash`.
pub fn route_template(url: &str, patterns: &[RoutePattern]) -> String {
    let path = url_path(url);
    let parts: Vec<&str> = split_path(path).collect();
    if let Some(p) = patterns.iter().find(|p| p.matches(&parts)) {
        return p.as_str().to_string();
    }
    if parts.is_empty() {
        return "/".into();
    }
    let mut out = String::with_capacity(path.len());
    for p in &parts {
        out.push('/');
        push_printable(&mut out, template_segment(p));
    }
    out
}

/// Appends `s` with control characters (C0 such as NUL, TAB, CR, ESC; DEL; C1) percent-encoded, as in a
/// URL: label values end up in `/metrics` text and in terminals, where raw ones break lines and parsers.
fn push_printable(out: &mut String, s: &str) {
    if !s.chars().any(char::is_control) {
        out.push_str(s);
        return;
    }
    for ch in s.chars() {
        if ch.is_control() {
            let mut utf8 = [0u8; 4];
            for b in ch.encode_utf8(&mut utf8).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(ch);
        }
    }
}

fn template_segment(seg: &str) -> &str {
    let b = seg.as_bytes();
    if b.iter().all(u8::is_ascii_digit) {
        return ":id";
    }
    if is_uuid(b) {
        return ":uuid";
    }
    if (b.len() >= 16 && b.iter().all(u8::is_ascii_hexdigit)) || looks_random(b) {
        return ":hash";
    }
    seg
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Tokens, base64 ids and other machine-made segments: long, mixing digits with letters, or very long.
fn looks_random(b: &[u8]) -> bool {
    if b.len() > 64 {
        return true;
    }
    if b.len() < 12 {
        return false;
    }
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let alpha = b.iter().filter(|c| c.is_ascii_alphabetic()).count();
    let has_sep = b.iter().any(|c| *c == b'-' || *c == b'_' || *c == b'.');
    // Words joined by dashes (`summer-sale-2024`) are human; a 20-char run with many digits is not.
    digits * 4 >= b.len() && alpha > 0 && !has_sep || (digits >= 6 && digits * 3 >= b.len())
}

/// `GET api.example.com/users/:id`. `page_url` supplies the host of relative endpoints.
pub fn endpoint_label(method: &str, endpoint: &str, page_url: Option<&str>) -> String {
    let host = url_host(endpoint)
        .or_else(|| page_url.and_then(url_host))
        .unwrap_or_else(|| "-".into());
    let mut label = format!("{} ", method_label(method));
    push_printable(&mut label, &host);
    label.push_str(&route_template(endpoint, &[]));
    label
}

/// Known HTTP methods upper-cased; anything else `OTHER`.
pub fn method_label(m: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(m))
        .copied()
        .unwrap_or("OTHER")
}

/// `2xx`...`5xx`; `0` (network error, CORS, aborted) -> `network_error`; nonsense -> `other`.
pub fn status_class(status: Option<i32>) -> &'static str {
    match status {
        Some(0) => "network_error",
        Some(100..=199) => "1xx",
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        _ => "other",
    }
}

/// Browser, OS and device class of a user agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAgent {
    pub browser: Text,
    pub os: Text,
    /// `desktop`, `mobile`, `tablet`, `bot`, `other`.
    pub device: Text,
}

/// User-agent parsing (woothee) with a bounded memo: a site sees few distinct agents, parsing is not free.
pub struct UaParser {
    parser: woothee::parser::Parser,
    cache: Mutex<HashMap<String, UserAgent>>,
}

const UA_CACHE_MAX: usize = 4096;

impl Default for UaParser {
    fn default() -> Self {
        Self {
            parser: woothee::parser::Parser::new(),
            cache: Mutex::new(HashMap::new()),
        }
    }
}

impl UaParser {
    pub fn parse(&self, ua: &str) -> UserAgent {
        if let Some(hit) = self.cache.lock().expect("ua cache").get(ua) {
            return hit.clone();
        }
        let parsed = match self.parser.parse(ua) {
            Some(r) => UserAgent {
                browser: clean(r.name),
                os: clean(r.os),
                device: match r.category {
                    "pc" => "desktop",
                    "smartphone" | "mobilephone" if r.os == "iPad" => "tablet",
                    "smartphone" | "mobilephone" => "mobile",
                    "crawler" => "bot",
                    _ => "other",
                }
                .into(),
            },
            None => UserAgent {
                browser: "unknown".into(),
                os: "unknown".into(),
                device: "other".into(),
            },
        };
        let mut cache = self.cache.lock().expect("ua cache");
        if cache.len() >= UA_CACHE_MAX {
            cache.clear();
        }
        cache.insert(ua.to_string(), parsed.clone());
        parsed
    }
}

fn clean(s: &str) -> Text {
    if s.is_empty() || s == "UNKNOWN" {
        "unknown".into()
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let t = |u| route_template(u, &[]);
        assert_eq!(
            t("https://shop.example.com/products/123?ref=x#top"),
            "/products/:id"
        );
        assert_eq!(
            t("/orders/3f2b8c1e-9a4d-4e2b-8f1a-0c9d8e7f6a5b/items"),
            "/orders/:uuid/items"
        );
        assert_eq!(t("/assets/0123456789abcdef0123"), "/assets/:hash");
        assert_eq!(t("/t/aZ3kP9qL2mX8vB7n"), "/t/:hash");
        assert_eq!(t("/blog/summer-sale-2024"), "/blog/summer-sale-2024");
        assert_eq!(t("https://shop.example.com"), "/");
        assert_eq!(t(""), "/");
        assert_eq!(t("/a//b/"), "/a/b");
    }

    /// Control characters never reach a label value raw: percent-encoded as in a URL (issue #17).
    #[test]
    fn control_characters_are_encoded_in_labels() {
        let t = |u| route_template(u, &[]);
        assert_eq!(t("/a\0b/c\rd/e\tf"), "/a%00b/c%0Dd/e%09f");
        assert_eq!(
            t("/esc\u{1b}[31m/del\u{7f}/c1\u{85}"),
            "/esc%1B[31m/del%7F/c1%C2%85"
        );
        assert_eq!(t("/caf\u{e9}"), "/caf\u{e9}");
        let label = endpoint_label("GET", "https://api.ex\u{1b}ample.com/a\nb", None);
        assert_eq!(label, "GET api.ex%1Bample.com/a%0Ab");
        assert!(!label.chars().any(char::is_control));
    }

    #[test]
    fn patterns_win() {
        let p = vec![
            RoutePattern::parse("/blog/:slug").unwrap(),
            RoutePattern::parse("/docs/*").unwrap(),
        ];
        assert_eq!(route_template("/blog/summer-sale", &p), "/blog/:slug");
        assert_eq!(route_template("/docs/a/b/c", &p), "/docs/*");
        assert_eq!(route_template("/docs", &p), "/docs");
        assert_eq!(route_template("/blog/a/b", &p), "/blog/a/b");
    }

    #[test]
    fn endpoints_and_status() {
        assert_eq!(
            endpoint_label("get", "https://api.example.com/users/42?x=1", None),
            "GET api.example.com/users/:id"
        );
        assert_eq!(
            endpoint_label("POST", "/api/cart", Some("https://shop.example.com/x")),
            "POST shop.example.com/api/cart"
        );
        assert_eq!(method_label("BREW"), "OTHER");
        assert_eq!(status_class(Some(404)), "4xx");
        assert_eq!(status_class(Some(0)), "network_error");
        assert_eq!(status_class(Some(9999)), "other");
    }

    #[test]
    fn user_agents() {
        let p = UaParser::default();
        let ua = p.parse("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36");
        assert_eq!(&*ua.browser, "Chrome");
        assert_eq!(&*ua.os, "Linux");
        assert_eq!(&*ua.device, "desktop");
        let bot =
            p.parse("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)");
        assert_eq!(&*bot.device, "bot");
        assert_eq!(&*p.parse("...").browser, "unknown");
    }

    #[test]
    fn stored_urls() {
        assert_eq!(stored_url("https://a.b/p?q=1#f", false), "https://a.b/p");
        assert_eq!(stored_url("https://a.b/p?q=1#f", true), "https://a.b/p?q=1");
    }
}

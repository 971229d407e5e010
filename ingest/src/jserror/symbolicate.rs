//! Symbolication: frames of a release's minified scripts rewritten to the original file, line, column and
//! function, with the source maps uploaded for that release (`POST /v1/admin/sourcemaps`).
//!
//! # When and at what cost
//! Stacks are symbolicated **at ingest**, before the event is stored: the error's group (its fingerprint)
//! depends on the top in-app frame after symbolication, and the `rum_error_groups_new_total` counter must
//! know a group when its first event arrives. A map uploaded after an error arrived does not rewrite that
//! error (upload maps in CI before the release goes live). The cost per error event with a `release`:
//! - one lookup of the release's map list, cached per (site, release) for [`RELEASE_TTL`] (a node learns
//!   of maps uploaded through another node within that time; uploads through this node apply at once);
//!   at most [`MAX_RELEASES_PER_BATCH`] releases are looked up per request, frames of others stay as
//!   they came;
//! - for each frame whose script has a map: a binary search in the parsed map (microseconds). Parsed maps
//!   are kept in an LRU cache bounded in bytes (`sourcemaps.cache_bytes`, default 128 MiB), estimated as the
//!   map's JSON size plus 40 bytes per mapping; a miss reads the map from the store and parses it on a
//!   blocking thread (about 10-20 ms per MiB of map). A map larger than the whole cache is parsed for the
//!   request and not kept.
//! - frames whose script has no map cost nothing more: the release's list says so.
//!
//! Hostile maps: a map is checked when uploaded ([`check_map`]: JSON, at most [`MAX_MAPPINGS`] mappings,
//! no index maps), parsed again on a blocking thread when loaded (a parser panic is an error there, not a
//! crash), and a map that fails to load is remembered as missing for [`RELEASE_TTL`].

use super::frames::{Frame, Location, Stack};
use crate::store::{Store, StoreError};
use regex::Regex;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a release's list of maps is trusted before it is read again.
pub const RELEASE_TTL: Duration = Duration::from_secs(60);
/// Releases whose maps one request may look up (a batch comes from one page, so from one release).
pub const MAX_RELEASES_PER_BATCH: usize = 4;
/// Most mappings (segments of `mappings`) a map may have: about 40 bytes each once parsed.
pub const MAX_MAPPINGS: usize = 2_000_000;
/// Cache cost of one parsed mapping (its token and index entry), bytes.
const BYTES_PER_MAPPING: usize = 40;
/// How far back in an original source the enclosing function is looked for (bytes).
const SCOPE_SCAN_BYTES: usize = 64 * 1024;

/// Why a map cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    #[error("not a source map: {0}")]
    Invalid(String),
    #[error("index source maps (with `sections`) are not supported; upload one map per script")]
    Indexed,
    #[error("map has {mappings} mappings; the limit is {MAX_MAPPINGS}")]
    TooManyMappings { mappings: usize },
}

/// What [`check_map`] learns about an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapFacts {
    /// The map's `file` field: the script it maps.
    pub file: Option<String>,
    pub mappings: usize,
}

/// Checks a map before it is stored (and before it is parsed at ingest): JSON with a `mappings` string
/// within [`MAX_MAPPINGS`], not an index map, and parseable by the source map parser.
pub fn check_map(bytes: &[u8]) -> Result<MapFacts, MapError> {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(default)]
        file: Option<String>,
        #[serde(default)]
        mappings: Option<String>,
        #[serde(default)]
        sections: Option<serde::de::IgnoredAny>,
    }
    let head: Head = serde_json::from_slice(bytes).map_err(|e| MapError::Invalid(e.to_string()))?;
    if head.sections.is_some() {
        return Err(MapError::Indexed);
    }
    let mappings = head
        .mappings
        .as_deref()
        .ok_or_else(|| MapError::Invalid("no `mappings` field".into()))?
        .split([',', ';'])
        .filter(|s| !s.is_empty())
        .count();
    if mappings > MAX_MAPPINGS {
        return Err(MapError::TooManyMappings { mappings });
    }
    sourcemap::SourceMap::from_slice(bytes).map_err(|e| MapError::Invalid(e.to_string()))?;
    Ok(MapFacts {
        file: head.file,
        mappings,
    })
}

/// Parses a checked map; its estimated size in memory.
fn parse(bytes: &[u8]) -> Result<(sourcemap::SourceMap, usize), MapError> {
    let facts = check_map(bytes)?;
    let map =
        sourcemap::SourceMap::from_slice(bytes).map_err(|e| MapError::Invalid(e.to_string()))?;
    Ok((map, bytes.len() + facts.mappings * BYTES_PER_MAPPING))
}

type ReleaseKey = (String, String);
type MapKey = (String, String, String);

/// The maps of one release: script URL -> upload time (ms), which tells a cached map from a replaced one.
type ReleaseMaps = Arc<HashMap<String, i64>>;

/// Symbolicates stacks with the maps in the store, through the two caches.
pub struct Symbolicator {
    store: Store,
    releases: Mutex<HashMap<ReleaseKey, (Instant, ReleaseMaps)>>,
    maps: Mutex<MapCache>,
}

impl Symbolicator {
    /// `cache_bytes` bounds the parsed maps kept in memory.
    pub fn new(store: Store, cache_bytes: usize) -> Self {
        Self {
            store,
            releases: Mutex::new(HashMap::new()),
            maps: Mutex::new(MapCache::new(cache_bytes)),
        }
    }

    /// Forgets what is cached about a release (its maps were uploaded or deleted through this node).
    pub fn invalidate(&self, site: &str, release: &str) {
        lock(&self.releases).remove(&(site.to_string(), release.to_string()));
        lock(&self.maps).remove_release(site, release);
    }

    /// Rewrites the frames of `stacks` (all of `site` and `release`) that a stored map covers. Store errors
    /// and unusable maps leave frames as they came (logged once per map and [`RELEASE_TTL`]).
    pub async fn symbolicate(&self, site: &str, release: &str, stacks: Vec<Stack>) -> Vec<Stack> {
        let listed = match self.release_maps(site, release).await {
            Ok(l) => l,
            Err(e) => {
                // During an outage the store logs once; here it would be once per request.
                if self.store.readiness() == crate::store::Readiness::Writing {
                    tracing::warn!(site, error = %e, "source maps of a release could not be listed; stacks stored as they came");
                } else {
                    tracing::debug!(site, error = %e, "source maps of a release could not be listed");
                }
                return stacks;
            }
        };
        if listed.is_empty() {
            return stacks;
        }
        let mut maps: HashMap<String, Arc<sourcemap::SourceMap>> = HashMap::new();
        for url in stacks
            .iter()
            .flat_map(|s| &s.frames)
            .filter_map(|f| f.location.as_ref())
            .map(|l| script_url(&l.url))
        {
            if maps.contains_key(url) {
                continue;
            }
            let Some(&uploaded_ms) = listed.get(url) else {
                continue;
            };
            if let Some(m) = self.map(site, release, url, uploaded_ms).await {
                maps.insert(url.to_string(), m);
            }
        }
        if maps.is_empty() {
            return stacks;
        }
        let fallback = stacks.clone();
        // On a blocking thread: lookups are quick, the scan for function names is bounded, and a panic in
        // the parser's lookups becomes an error here instead of taking the worker down.
        match tokio::task::spawn_blocking(move || {
            stacks
                .into_iter()
                .map(|s| symbolicate_stack(s, &maps))
                .collect()
        })
        .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(site, error = %e, "symbolication failed; stacks stored as they came");
                fallback
            }
        }
    }

    async fn release_maps(&self, site: &str, release: &str) -> Result<ReleaseMaps, StoreError> {
        let key = (site.to_string(), release.to_string());
        if let Some((at, maps)) = lock(&self.releases).get(&key) {
            if at.elapsed() < RELEASE_TTL {
                return Ok(maps.clone());
            }
        }
        let listed: HashMap<String, i64> = self
            .store
            .list_sourcemaps(site, Some(release))
            .await?
            .into_iter()
            .map(|m| (m.url, m.uploaded_ms))
            .collect();
        let listed = Arc::new(listed);
        let mut releases = lock(&self.releases);
        // Bounded: drop every expired list when the table grows (lists of random releases cost a query each).
        if releases.len() >= 10_000 {
            releases.retain(|_, (at, _)| at.elapsed() < RELEASE_TTL);
            if releases.len() >= 10_000 {
                releases.clear();
            }
        }
        releases.insert(key, (Instant::now(), listed.clone()));
        Ok(listed)
    }

    /// The parsed map of one script, from the cache or the store.
    async fn map(
        &self,
        site: &str,
        release: &str,
        url: &str,
        uploaded_ms: i64,
    ) -> Option<Arc<sourcemap::SourceMap>> {
        let key = (site.to_string(), release.to_string(), url.to_string());
        if let Some(hit) = lock(&self.maps).get(&key, uploaded_ms) {
            return hit;
        }
        let loaded = match self.store.get_sourcemap(site, release, url).await {
            Ok(Some(bytes)) => tokio::task::spawn_blocking(move || parse(bytes.as_bytes()))
                .await
                .unwrap_or_else(|e| Err(MapError::Invalid(format!("parser failed: {e}")))),
            Ok(None) => Err(MapError::Invalid("deleted meanwhile".into())),
            Err(e) => {
                tracing::warn!(site, error = %e, "source map could not be read");
                return None;
            }
        };
        let (map, bytes) = match loaded {
            Ok((m, b)) => (Some(Arc::new(m)), b),
            Err(e) => {
                tracing::warn!(site, url, error = %e, "stored source map is unusable; frames stay minified");
                (None, 0)
            }
        };
        lock(&self.maps).insert(key, uploaded_ms, map.clone(), bytes);
        map
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A frame's script URL as maps are stored: query and fragment dropped.
pub fn script_url(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

/// Rewrites the frames a map covers. A frame's original function is named by its caller's call site (the
/// map names the identifier called there, as Sentry does), else by the enclosing function found in the
/// map's `sourcesContent`, else keeps the name the browser reported.
pub fn symbolicate_stack(
    mut stack: Stack,
    maps: &HashMap<String, Arc<sourcemap::SourceMap>>,
) -> Stack {
    let lookup = |f: &Frame| {
        let l = f.location.as_ref()?;
        let map = maps.get(script_url(&l.url))?;
        let line = l.line.checked_sub(1)?;
        let token = map.lookup_token(line, l.col.checked_sub(1)?)?;
        // The greatest token at or before the place may sit on an earlier line: that maps nothing here.
        if token.get_dst_line() != line {
            return None;
        }
        token.get_source()?;
        Some((map.clone(), token.get_raw_token()))
    };
    let found: Vec<_> = stack.frames.iter().map(lookup).collect();
    for (i, frame) in stack.frames.iter_mut().enumerate() {
        let Some((map, raw)) = &found[i] else {
            continue;
        };
        let caller_name = found
            .get(i + 1)
            .and_then(Option::as_ref)
            .and_then(|(m, t)| m.get_name(t.name_id))
            .map(str::to_string);
        let scope_name = || {
            let content = map.get_source_contents(raw.src_id)?;
            enclosing_function(content, raw.src_line, raw.src_col)
        };
        let function = caller_name
            .or_else(scope_name)
            .or_else(|| frame.function.clone());
        let Some(source) = map.get_source(raw.src_id) else {
            continue;
        };
        *frame = Frame {
            function,
            location: Some(Location {
                url: display_source(source).to_string(),
                line: raw.src_line + 1,
                col: raw.src_col + 1,
            }),
        };
    }
    stack
}

/// A source path as shown: the `./` and `../` a bundler puts before paths relative to its output dropped
/// (`../src/cart.js` -> `src/cart.js`).
fn display_source(source: &str) -> &str {
    let mut s = source;
    loop {
        match s.strip_prefix("./").or_else(|| s.strip_prefix("../")) {
            Some(rest) => s = rest,
            None => return s,
        }
    }
}

/// The name of the function enclosing 0-based `(line, col)` of `source`, by walking back over balanced
/// braces to the first `{` that opens a function (`function f(...) {`, `f = (...) => {`, `f(...) {`).
/// A heuristic over text: braces in strings, comments or regular expressions can mislead it, and then the
/// caller keeps the browser's name. Looks at most [`SCOPE_SCAN_BYTES`] back.
pub fn enclosing_function(source: &str, line: u32, col: u32) -> Option<String> {
    let line_start = if line == 0 {
        0
    } else {
        source
            .match_indices('\n')
            .nth(line as usize - 1)
            .map(|(i, _)| i + 1)?
    };
    let line_text = source[line_start..].split('\n').next().unwrap_or("");
    let col_bytes = line_text
        .char_indices()
        .nth(col as usize)
        .map_or(line_text.len(), |(i, _)| i);
    let end = line_start + col_bytes;
    let mut start = end.saturating_sub(SCOPE_SCAN_BYTES);
    while !source.is_char_boundary(start) {
        start += 1;
    }
    let text = &source[start..end];
    let mut depth = 0usize;
    for (i, b) in text.bytes().enumerate().rev() {
        match b {
            b'}' => depth += 1,
            b'{' if depth > 0 => depth -= 1,
            b'{' => {
                if let Some(name) = function_header(&text[..i]) {
                    return name;
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether the text before a `{` ends with a function's head: `Some(Some(name))`, `Some(None)` for an
/// anonymous function, `None` for any other block.
fn function_header(before: &str) -> Option<Option<String>> {
    static HEADS: OnceLock<[Regex; 3]> = OnceLock::new();
    let heads = HEADS.get_or_init(|| {
        let id = r"[A-Za-z_$][\w$]*";
        let re = |p: String| Regex::new(&p).expect("valid pattern");
        [
            // function f(...) / x = function (...) / x: async function* (...)
            re(format!(
                r"(?:({id}(?:\.{id})*)\s*[:=]\s*)?(?:async\s+)?function\s*\*?\s*({id})?\s*\([^()]*\)\s*$"
            )),
            // f = (...) => / f: async x =>
            re(format!(
                r"(?:({id}(?:\.{id})*)\s*[:=]\s*)?(?:async\s*)?(?:\([^()]*\)|{id})\s*=>\s*$"
            )),
            // class and object methods: name(...) / async name(...) / get name()
            re(format!(r"(?:^|[\s;{{}},])(?:(?:async|static|get|set)\s+)*\*?\s*({id})\s*\([^()]*\)\s*$")),
        ]
    });
    let mut cut = before.len().saturating_sub(300);
    while !before.is_char_boundary(cut) {
        cut += 1;
    }
    let tail = &before[cut..];
    if let Some(c) = heads[0].captures(tail) {
        return Some(c.get(2).or(c.get(1)).map(|m| m.as_str().to_string()));
    }
    if let Some(c) = heads[1].captures(tail) {
        return Some(c.get(1).map(|m| m.as_str().to_string()));
    }
    const NOT_METHODS: [&str; 8] = [
        "if", "for", "while", "switch", "catch", "with", "function", "return",
    ];
    let c = heads[2].captures(tail)?;
    let name = c.get(1)?.as_str();
    (!NOT_METHODS.contains(&name)).then(|| Some(name.to_string()))
}

/// Parsed maps by (site, release, script URL), least recently used evicted past the byte budget. A map that
/// could not be loaded is kept as `None` (costing its key) so it is not read again on every error.
struct MapCache {
    budget: usize,
    bytes: usize,
    tick: u64,
    entries: HashMap<MapKey, CacheEntry>,
    by_use: BTreeMap<u64, MapKey>,
}

struct CacheEntry {
    map: Option<Arc<sourcemap::SourceMap>>,
    uploaded_ms: i64,
    bytes: usize,
    used: u64,
    loaded: Instant,
}

impl MapCache {
    fn new(budget: usize) -> Self {
        Self {
            budget,
            bytes: 0,
            tick: 0,
            entries: HashMap::new(),
            by_use: BTreeMap::new(),
        }
    }

    /// The cached map of the upload made at `uploaded_ms` (a replaced map is a miss); a failed load is
    /// retried after [`RELEASE_TTL`].
    fn get(&mut self, key: &MapKey, uploaded_ms: i64) -> Option<Option<Arc<sourcemap::SourceMap>>> {
        let e = self.entries.get_mut(key)?;
        if e.uploaded_ms != uploaded_ms || (e.map.is_none() && e.loaded.elapsed() >= RELEASE_TTL) {
            self.remove(key);
            return None;
        }
        self.tick += 1;
        self.by_use.remove(&e.used);
        e.used = self.tick;
        self.by_use.insert(self.tick, key.clone());
        Some(e.map.clone())
    }

    fn insert(
        &mut self,
        key: MapKey,
        uploaded_ms: i64,
        map: Option<Arc<sourcemap::SourceMap>>,
        bytes: usize,
    ) {
        self.remove(&key);
        let bytes = bytes + key.0.len() + key.1.len() + key.2.len() + 64;
        if bytes > self.budget {
            return;
        }
        while self.bytes + bytes > self.budget {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            if let Some(e) = self.entries.remove(&oldest) {
                self.bytes -= e.bytes;
            }
        }
        self.tick += 1;
        self.by_use.insert(self.tick, key.clone());
        self.bytes += bytes;
        self.entries.insert(
            key,
            CacheEntry {
                map,
                uploaded_ms,
                bytes,
                used: self.tick,
                loaded: Instant::now(),
            },
        );
    }

    fn remove(&mut self, key: &MapKey) {
        if let Some(e) = self.entries.remove(key) {
            self.by_use.remove(&e.used);
            self.bytes -= e.bytes;
        }
    }

    fn remove_release(&mut self, site: &str, release: &str) {
        let keys: Vec<MapKey> = self
            .entries
            .keys()
            .filter(|k| k.0 == site && k.1 == release)
            .cloned()
            .collect();
        for k in keys {
            self.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made map of `min.js`, one line: `function a(b){return b.x.y}a(1);` from `src/cart.js`:
    /// ```text
    /// 1 // cart
    /// 2 export function addToCart(item) {
    /// 3   return item.details.sku;
    /// 4 }
    /// 5 addToCart(1);
    /// ```
    /// Mappings: col 0 -> 2:0; col 9 (`a`) -> 2:16 name `addToCart`; col 11 (`b`) -> 2:26 name `item`;
    /// col 14 -> 3:2; col 21 (`b`) -> 3:9 name `item`; col 25 (`y`... the failing access) -> 3:22;
    /// col 28 (`a(1)`) -> 5:0 name `addToCart`.
    pub(crate) fn small_map() -> String {
        let content = "// cart\nexport function addToCart(item) {\n  return item.details.sku;\n}\naddToCart(1);\n";
        let mut b = sourcemap::SourceMapBuilder::new(Some("min.js"));
        let src = b.add_source("../src/cart.js");
        b.set_source_contents(src, Some(content));
        for (dst_col, src_line, src_col, name) in [
            (0, 1, 0, None),
            (9, 1, 16, Some("addToCart")),
            (11, 1, 26, Some("item")),
            (14, 2, 2, None),
            (21, 2, 9, Some("item")),
            (25, 2, 22, None),
            (28, 4, 0, Some("addToCart")),
        ] {
            b.add(
                0,
                dst_col,
                src_line,
                src_col,
                Some("../src/cart.js"),
                name,
                false,
            );
        }
        let mut out = Vec::new();
        b.into_sourcemap().to_writer(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn maps(json: &str) -> HashMap<String, Arc<sourcemap::SourceMap>> {
        let (m, _) = parse(json.as_bytes()).unwrap();
        HashMap::from([(
            "https://shop.example.com/assets/min.js".to_string(),
            Arc::new(m),
        )])
    }

    #[test]
    fn frames_map_to_original_file_line_and_function() {
        let stack = Stack::parse(
            "TypeError: Cannot read properties of undefined (reading 'sku')\n    at a (https://shop.example.com/assets/min.js?v=3:1:26)\n    at https://shop.example.com/assets/min.js:1:29\n    at other (https://cdn.test/lib.js:1:1)",
        );
        let out = symbolicate_stack(stack, &maps(&small_map()));
        assert_eq!(
            out.render(),
            "TypeError: Cannot read properties of undefined (reading 'sku')\n    at addToCart (src/cart.js:3:23)\n    at src/cart.js:5:1\n    at other (https://cdn.test/lib.js:1:1)"
        );
    }

    #[test]
    fn function_from_sources_content_when_no_caller_names_it() {
        // The top frame alone: no caller; the enclosing function in the original source names it.
        let stack = Stack::parse("at a (https://shop.example.com/assets/min.js:1:22)");
        let out = symbolicate_stack(stack, &maps(&small_map()));
        assert_eq!(out.frames[0].function.as_deref(), Some("addToCart"));
        assert_eq!(out.frames[0].location.as_ref().unwrap().line, 3);
    }

    #[test]
    fn enclosing_functions() {
        let src = "class Cart {\n  add(item) {\n    if (item) {\n      x();\n    }\n  }\n}\nconst load = async (id) => {\n  y({ a: 1 });\n};\nlet f = function () {\n  z();\n};\n";
        assert_eq!(enclosing_function(src, 3, 6).as_deref(), Some("add"));
        assert_eq!(enclosing_function(src, 8, 4).as_deref(), Some("load"));
        assert_eq!(enclosing_function(src, 11, 2).as_deref(), Some("f"));
        assert_eq!(enclosing_function(src, 0, 3), None);
        // Positions past the text are not a panic.
        assert_eq!(enclosing_function(src, 999, 0), None);
        assert_eq!(enclosing_function("a\u{e9}{", 0, 99), None);
    }

    #[test]
    fn hostile_maps_are_clear_errors() {
        assert!(matches!(check_map(b"not json"), Err(MapError::Invalid(_))));
        assert!(matches!(
            check_map(br#"{"version":3,"sources":[]}"#),
            Err(MapError::Invalid(_))
        ));
        assert!(matches!(
            check_map(br#"{"version":3,"sources":["a"],"names":[],"mappings":"!!!!"}"#),
            Err(MapError::Invalid(_))
        ));
        assert!(matches!(
            check_map(br#"{"version":3,"sections":[]}"#),
            Err(MapError::Indexed)
        ));
        let huge = format!(
            r#"{{"version":3,"sources":["a"],"names":[],"mappings":"{}"}}"#,
            "AAAA,".repeat(MAX_MAPPINGS + 1)
        );
        assert_eq!(
            check_map(huge.as_bytes()),
            Err(MapError::TooManyMappings {
                mappings: MAX_MAPPINGS + 1
            })
        );
        // Tokens pointing at sources and names that do not exist map nothing and do not panic.
        let bad_ids =
            r#"{"version":3,"sources":["a.js"],"names":[],"mappings":"AAAAA,CCCCC,gBAAgB"}"#;
        if let Ok((m, _)) = parse(bad_ids.as_bytes()) {
            let maps = HashMap::from([("https://x.test/a.js".to_string(), Arc::new(m))]);
            let s = Stack::parse("at f (https://x.test/a.js:1:1)\nat g (https://x.test/a.js:1:3)");
            let out = symbolicate_stack(s, &maps);
            assert_eq!(out.frames.len(), 2);
        }
        let facts = check_map(small_map().as_bytes()).unwrap();
        assert_eq!(facts.file.as_deref(), Some("min.js"));
        assert_eq!(facts.mappings, 7);
    }

    #[test]
    fn cache_evicts_least_recently_used_within_its_budget() {
        let map = Arc::new(parse(small_map().as_bytes()).unwrap().0);
        let key = |u: &str| ("s".to_string(), "r".to_string(), u.to_string());
        let mut c = MapCache::new(3 * (1_000 + 64 + 3));
        for u in ["a", "b", "c"] {
            c.insert(key(u), 1, Some(map.clone()), 1_000);
        }
        assert!(c.get(&key("a"), 1).is_some());
        c.insert(key("d"), 1, Some(map.clone()), 1_000);
        // "b" was used least recently.
        assert!(c.get(&key("b"), 1).is_none());
        assert!(c.get(&key("a"), 1).is_some());
        assert!(c.bytes <= c.budget);
        // A replaced upload is a miss; a map larger than the budget is not kept.
        assert!(c.get(&key("a"), 2).is_none());
        c.insert(key("big"), 1, Some(map), 10_000);
        assert!(c.get(&key("big"), 1).is_none());
        c.remove_release("s", "r");
        assert_eq!((c.bytes, c.entries.len(), c.by_use.len()), (0, 0, 0));
    }
}

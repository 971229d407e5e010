//! Samples to push, taken from the same text exposition `/metrics` serves (so the families, names and labels
//! are the same by construction). A series is the text that names it there (`name{a="b",...}`), interned per
//! check so that runs (and queued samples) share one allocation; labels are read out of it only when a batch is
//! encoded. That keeps a check's pushed state at about the size of its exposition.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

/// A series, as the exposition names it: `name{a="b",...}` (labels in exposition order).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Series(Arc<str>);

impl Series {
    /// The series named by `key`; an error says why `key` is not one.
    pub fn parse(key: &str) -> Result<Series, String> {
        parse_labels(key)?;
        Ok(Series(Arc::from(key)))
    }

    pub fn key(&self) -> &str {
        &self.0
    }

    /// Identity of the allocation (series interned by one cache share it).
    pub fn id(&self) -> *const u8 {
        self.0.as_ptr()
    }

    /// Its labels, `__name__` included, sorted by name (as remote write requires).
    pub fn labels(&self) -> Vec<(String, String)> {
        let mut labels = parse_labels(&self.0).expect("validated when made");
        labels.sort();
        labels
    }

    /// One label's value (`__name__` for the name).
    pub fn get(&self, name: &str) -> Option<String> {
        parse_labels(&self.0)
            .ok()?
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

/// One sample of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub series: Series,
    pub value: f64,
    pub timestamp_ms: i64,
}

/// Prometheus's staleness marker: this NaN bit pattern tells it a series has ended.
pub const STALE_NAN: f64 = f64::from_bits(0x7ff0_0000_0000_0002);

/// The series of the last exposition read.
#[derive(Debug, Default)]
pub struct SeriesCache {
    seen: HashSet<Series>,
}

impl std::borrow::Borrow<str> for Series {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl SeriesCache {
    /// The samples of an OpenMetrics or Prometheus text exposition, stamped `timestamp_ms`, with `extra`
    /// labels added to series that lack them; then a staleness marker for each series of the last parse that
    /// this exposition no longer has (as a scrape would record).
    pub fn parse(
        &mut self,
        text: &str,
        timestamp_ms: i64,
        extra: &[(&str, &str)],
    ) -> Result<Vec<Sample>, String> {
        let mut out = Vec::new();
        let mut seen: HashSet<Series> = HashSet::with_capacity(self.seen.len());
        for (n, line) in text.lines().enumerate() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = split_sample(line)
                .ok_or_else(|| format!("line {}: not a sample: {line:?}", n + 1))?;
            let value: f64 = value
                .parse()
                .map_err(|_| format!("line {}: bad value {value:?}", n + 1))?;
            let keyed;
            let key = if extra.is_empty() {
                key
            } else {
                keyed = with_extra(key, extra).map_err(|m| format!("line {}: {m}", n + 1))?;
                keyed.as_str()
            };
            let series = match self.seen.take(key) {
                Some(s) => s,
                None => Series::parse(key).map_err(|m| format!("line {}: {m}", n + 1))?,
            };
            out.push(Sample {
                series: series.clone(),
                value,
                timestamp_ms,
            });
            seen.insert(series);
        }
        let gone = std::mem::replace(&mut self.seen, seen);
        out.extend(gone.into_iter().map(|series| Sample {
            series,
            value: STALE_NAN,
            timestamp_ms,
        }));
        Ok(out)
    }

    /// A staleness marker for every series of the last parse, which is forgotten (the series has ended).
    pub fn end(&mut self, timestamp_ms: i64) -> Vec<Sample> {
        std::mem::take(&mut self.seen)
            .into_iter()
            .map(|series| Sample {
                series,
                value: STALE_NAN,
                timestamp_ms,
            })
            .collect()
    }
}

/// `key` with the labels of `extra` it lacks appended.
fn with_extra(key: &str, extra: &[(&str, &str)]) -> Result<String, String> {
    let labels = parse_labels(key)?;
    let missing: Vec<String> = extra
        .iter()
        .filter(|(n, _)| !labels.iter().any(|(have, _)| have == n))
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect();
    if missing.is_empty() {
        return Ok(key.to_string());
    }
    Ok(match key.strip_suffix('}') {
        Some(open) if open.ends_with('{') => format!("{open}{}}}", missing.join(",")),
        Some(open) => format!("{open},{}}}", missing.join(",")),
        None => format!("{key}{{{}}}", missing.join(",")),
    })
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `name{labels} value [timestamp]` -> (`name{labels}`, value).
fn split_sample(line: &str) -> Option<(&str, &str)> {
    let end = match line.find('{') {
        // Label values may contain spaces and braces: find the closing brace outside quotes.
        Some(open) => {
            let mut in_quotes = false;
            let mut escaped = false;
            let mut close = None;
            for (i, c) in line[open..].char_indices() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' if in_quotes => escaped = true,
                    '"' => in_quotes = !in_quotes,
                    '}' if !in_quotes => {
                        close = Some(open + i + 1);
                        break;
                    }
                    _ => {}
                }
            }
            close?
        }
        None => line.find(' ')?,
    };
    let key = &line[..end];
    let value = line[end..].split_whitespace().next()?;
    Some((key, value))
}

/// `name{a="x",b="y"}` -> labels with `__name__` first, in exposition order.
fn parse_labels(key: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    label_pairs(key, &mut out)?;
    Ok(out
        .into_iter()
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect())
}

/// Appends the labels of `key` to `out`, borrowing from it where no escape needs undoing (the encoder reads
/// every queued series this way, so it allocates nothing per label).
pub fn label_pairs<'a>(
    key: &'a str,
    out: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>,
) -> Result<(), String> {
    let (name, rest) = match key.find('{') {
        Some(i) => (
            &key[..i],
            key[i + 1..]
                .strip_suffix('}')
                .ok_or("labels without a closing `}`")?,
        ),
        None => (key, ""),
    };
    if name.is_empty() {
        return Err("a series without a name".into());
    }
    out.push((Cow::Borrowed("__name__"), Cow::Borrowed(name)));
    let mut rest = rest;
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or("label without `=`")?;
        let label = rest[..eq].trim();
        let quoted = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut escaped = false;
        let mut end = None;
        let mut has_escape = false;
        for (i, c) in quoted.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => {
                    escaped = true;
                    has_escape = true;
                }
                '"' => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let end = end.ok_or("unterminated label value")?;
        let raw = &quoted[..end];
        let value = if has_escape {
            let mut v = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some('n') => v.push('\n'),
                        Some(other) => v.push(other),
                        None => return Err("dangling escape".into()),
                    },
                    c => v.push(c),
                }
            }
            Cow::Owned(v)
        } else {
            Cow::Borrowed(raw)
        };
        out.push((Cow::Borrowed(label), value));
        rest = quoted[end + 1..].trim_start_matches(',');
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exposition_and_interns_series() {
        let text = "# HELP x X\n# TYPE x counter\nx_total{region=\"eu\",endpoint=\"a b{}\\\"\"} 3\nh_bucket{le=\"+Inf\"} 2\ng 0.5\n# EOF\n";
        let mut cache = SeriesCache::default();
        let first = cache.parse(text, 7, &[("region", "us")]).unwrap();
        assert_eq!(first.len(), 3);
        assert_eq!(first[0].value, 3.0);
        assert_eq!(first[0].timestamp_ms, 7);
        assert_eq!(first[0].series.get("__name__").as_deref(), Some("x_total"));
        assert_eq!(first[0].series.get("endpoint").as_deref(), Some("a b{}\""));
        assert_eq!(first[0].series.get("region").as_deref(), Some("eu"));
        assert_eq!(first[2].series.get("region").as_deref(), Some("us"));
        assert_eq!(first[2].series.key(), "g{region=\"us\"}");
        assert_eq!(
            first[0].series.labels(),
            [
                ("__name__".to_string(), "x_total".to_string()),
                ("endpoint".into(), "a b{}\"".into()),
                ("region".into(), "eu".into())
            ]
        );
        assert_eq!(first[1].value, 2.0);
        let again = cache.parse(text, 8, &[("region", "us")]).unwrap();
        assert_eq!(first[0].series.id(), again[0].series.id());
        // A series that is gone gets a staleness marker.
        let fewer = cache.parse("g 1\n", 9, &[("region", "us")]).unwrap();
        assert_eq!(fewer.len(), 3);
        let stale: Vec<String> = fewer
            .iter()
            .filter(|s| s.value.to_bits() == STALE_NAN.to_bits())
            .map(|s| s.series.get("__name__").unwrap())
            .collect();
        assert_eq!(stale.len(), 2, "{fewer:?}");
        assert!(stale.contains(&"x_total".to_string()) && stale.contains(&"h_bucket".to_string()));
        let end = cache.end(10);
        assert_eq!(end.len(), 1);
        assert!(cache.end(11).is_empty());
        assert!(cache.parse("x{a=b} 1\n", 9, &[]).is_err());
    }

    #[test]
    fn stale_nan_is_the_prometheus_marker() {
        assert!(STALE_NAN.is_nan());
        assert_eq!(STALE_NAN.to_bits(), 0x7ff0000000000002);
    }
}

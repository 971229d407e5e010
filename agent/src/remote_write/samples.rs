//! Samples to push, taken from the same text exposition `/metrics` serves (so the families, names and labels
//! are the same by construction), with each series' label set interned so runs share it.

use std::collections::HashMap;
use std::sync::Arc;

/// A series' labels, `__name__` included, sorted by name (as remote write requires).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SeriesLabels(pub Vec<(String, String)>);

impl SeriesLabels {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One sample of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub series: Arc<SeriesLabels>,
    pub value: f64,
    pub timestamp_ms: i64,
}

/// Prometheus's staleness marker: this NaN bit pattern tells it a series has ended.
pub const STALE_NAN: f64 = f64::from_bits(0x7ff0_0000_0000_0002);

/// Label sets seen before, by the text that names them in the exposition (`name{a="b"}`).
#[derive(Debug, Default)]
pub struct SeriesCache {
    by_key: HashMap<String, Arc<SeriesLabels>>,
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
        let mut seen: HashMap<String, Arc<SeriesLabels>> =
            HashMap::with_capacity(self.by_key.len());
        for (n, line) in text.lines().enumerate() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = split_sample(line)
                .ok_or_else(|| format!("line {}: not a sample: {line:?}", n + 1))?;
            let value: f64 = value
                .parse()
                .map_err(|_| format!("line {}: bad value {value:?}", n + 1))?;
            let series = match self.by_key.remove(key) {
                Some(s) => s,
                None => {
                    Arc::new(parse_series(key, extra).map_err(|m| format!("line {}: {m}", n + 1))?)
                }
            };
            out.push(Sample {
                series: series.clone(),
                value,
                timestamp_ms,
            });
            seen.insert(key.to_string(), series);
        }
        let gone = std::mem::replace(&mut self.by_key, seen);
        out.extend(gone.into_values().map(|series| Sample {
            series,
            value: STALE_NAN,
            timestamp_ms,
        }));
        Ok(out)
    }

    /// A staleness marker for every series of the last parse, which is forgotten (the series has ended).
    pub fn end(&mut self, timestamp_ms: i64) -> Vec<Sample> {
        std::mem::take(&mut self.by_key)
            .into_values()
            .map(|series| Sample {
                series,
                value: STALE_NAN,
                timestamp_ms,
            })
            .collect()
    }
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

/// `name{a="x",b="y"}` -> sorted labels with `__name__`.
fn parse_series(key: &str, extra: &[(&str, &str)]) -> Result<SeriesLabels, String> {
    let (name, rest) = match key.find('{') {
        Some(i) => (&key[..i], &key[i + 1..key.len() - 1]),
        None => (key, ""),
    };
    let mut labels = vec![("__name__".to_string(), name.to_string())];
    let mut rest = rest;
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or("label without `=`")?;
        let label = rest[..eq].trim().to_string();
        let quoted = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => return Err("dangling escape".into()),
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end.ok_or("unterminated label value")?;
        labels.push((label, value));
        rest = quoted[end + 1..].trim_start_matches(',');
    }
    for (n, v) in extra {
        if !labels.iter().any(|(have, _)| have == n) {
            labels.push((n.to_string(), v.to_string()));
        }
    }
    labels.sort();
    Ok(SeriesLabels(labels))
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
        assert_eq!(first[0].series.get("__name__"), Some("x_total"));
        assert_eq!(first[0].series.get("endpoint"), Some("a b{}\""));
        assert_eq!(first[0].series.get("region"), Some("eu"));
        assert_eq!(first[2].series.get("region"), Some("us"));
        assert_eq!(first[1].value, 2.0);
        let again = cache.parse(text, 8, &[("region", "us")]).unwrap();
        assert!(Arc::ptr_eq(&first[0].series, &again[0].series));
        // A series that is gone gets a staleness marker.
        let fewer = cache.parse("g 1\n", 9, &[]).unwrap();
        assert_eq!(fewer.len(), 3);
        let stale: Vec<&str> = fewer
            .iter()
            .filter(|s| s.value.to_bits() == STALE_NAN.to_bits())
            .map(|s| s.series.get("__name__").unwrap())
            .collect();
        assert_eq!(stale.len(), 2, "{fewer:?}");
        assert!(stale.contains(&"x_total") && stale.contains(&"h_bucket"));
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

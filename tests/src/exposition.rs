//! Sample names in a Prometheus text / OpenMetrics exposition, as Prometheus stores them after a scrape.

use std::collections::BTreeSet;

/// Every sample name (`foo_total`, `bar_bucket`, ...) in `text`.
pub fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// Sample name -> every label name seen on it.
pub fn sample_labels(text: &str) -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let label = regex::Regex::new(r#"([A-Za-z_][A-Za-z0-9_]*)="(?:[^"\\]|\\.)*""#).expect("regex");
    let mut out: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let Some(name) = line.split(['{', ' ']).next() else {
            continue;
        };
        let labels = out.entry(name.to_string()).or_default();
        if let Some(rest) = line.strip_prefix(name).and_then(|r| r.strip_prefix('{')) {
            let body = rest.rsplit_once('}').map(|(b, _)| b).unwrap_or(rest);
            labels.extend(label.captures_iter(body).map(|c| c[1].to_string()));
        }
    }
    out
}

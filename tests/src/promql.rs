//! Metric names referenced by a PromQL expression: every identifier that is not a function, an aggregation, a
//! keyword or inside label matchers, a label list, a range or a string. Grafana variables (`$region`,
//! `$__rate_interval`) are ignored where they appear.

use std::collections::BTreeSet;

/// Aggregation operators (they may be followed by `by`/`without` before their parentheses).
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];
/// Keywords between operands; `by`, `without`, `on`, `ignoring`, `group_left`, `group_right` take a label list.
const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
];
const LABEL_LIST_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names `expr` selects, in order of appearance without duplicates.
pub fn metric_names(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut seen = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => i = skip_string(&chars, i),
            '{' => i = skip_until(&chars, i, '}'),
            '[' => i = skip_until(&chars, i, ']'),
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '$' => {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            c if c.is_ascii_digit()
                || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                // Numbers, including 1e3, 0x1f and durations such as `5m` after `offset`.
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_')
                {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let ident: String = chars[start..i].iter().collect();
                let lower = ident.to_ascii_lowercase();
                let next = next_non_space(&chars, i);
                if LABEL_LIST_KEYWORDS.contains(&lower.as_str()) {
                    if let Some(j) = next.filter(|&j| chars[j] == '(') {
                        i = skip_until(&chars, j, ')');
                    }
                } else if lower == "offset" {
                    // The duration after it is skipped by the number branch.
                } else if KEYWORDS.contains(&lower.as_str())
                    || AGGREGATIONS.contains(&lower.as_str())
                {
                } else if next.is_some_and(|j| chars[j] == '(') {
                    // A function call.
                } else if seen.insert(ident.clone()) {
                    names.push(ident);
                }
            }
            _ => i += 1,
        }
    }
    names
}

fn next_non_space(chars: &[char], mut i: usize) -> Option<usize> {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    (i < chars.len()).then_some(i)
}

/// Index after the closing `close` of the bracket opened at `open`, skipping strings inside.
fn skip_until(chars: &[char], open: usize, close: char) -> usize {
    let mut i = open + 1;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => i = skip_string(chars, i),
            c if c == close => return i + 1,
            _ => i += 1,
        }
    }
    i
}

fn skip_string(chars: &[char], open: usize) -> usize {
    let quote = chars[open];
    let mut i = open + 1;
    while i < chars.len() {
        if chars[i] == '\\' && quote != '`' {
            i += 2;
            continue;
        }
        if chars[i] == quote {
            return i + 1;
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::metric_names;

    #[test]
    fn finds_metrics_not_functions_labels_or_durations() {
        let e = r#"histogram_quantile(0.95, sum by (le, region) (rate(synthetic_request_duration_seconds_bucket{region=~"$region",x="a{b}"}[$__rate_interval]))) > 2
            and on (site) sum without (instance) (increase(rum_errors_total[1h] offset 5m)) or 0 * vector(1)
            unless up{job="vantage-agent"} == 0 and count(ALERTS) > 1e3"#;
        assert_eq!(
            metric_names(e),
            [
                "synthetic_request_duration_seconds_bucket",
                "rum_errors_total",
                "up",
                "ALERTS"
            ]
        );
    }

    #[test]
    fn recording_rule_names_and_group_left() {
        let e =
            "region_endpoint:synthetic_request_failures:rate5m / on (a) group_left (b) foo_total";
        assert_eq!(
            metric_names(e),
            [
                "region_endpoint:synthetic_request_failures:rate5m",
                "foo_total"
            ]
        );
    }
}

/// Label names an expression uses: in selectors (`name{label="v"}` -> (Some(name), label); a bare `{...}` gives
/// None) and in `by`/`without`/`on`/`ignoring`/`group_left`/`group_right` lists (None).
pub fn label_uses(expr: &str) -> Vec<(Option<String>, String)> {
    let selector = regex::Regex::new(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^}]*)\}").expect("regex");
    let matcher = regex::Regex::new(r#"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*(?:"|'|`)"#)
        .expect("regex");
    let list =
        regex::Regex::new(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
            .expect("regex");
    let mut out = Vec::new();
    for c in selector.captures_iter(expr) {
        let name = c.get(1).map(|m| m.as_str().to_string());
        for m in matcher.captures_iter(&c[2]) {
            out.push((name.clone(), m[1].to_string()));
        }
    }
    for c in list.captures_iter(expr) {
        for l in c[1].split(',').map(str::trim).filter(|l| !l.is_empty()) {
            out.push((None, l.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod label_tests {
    use super::label_uses;

    #[test]
    fn selector_and_list_labels() {
        let uses = label_uses(
            r#"sum by (le, site) (rate(x_bucket{site=~"$site",page!="a}"}[5m])) / on(site) y"#,
        );
        assert_eq!(
            uses,
            [
                (Some("x_bucket".to_string()), "site".to_string()),
                (Some("x_bucket".to_string()), "page".to_string()),
                (None, "le".to_string()),
                (None, "site".to_string()),
                (None, "site".to_string())
            ]
        );
    }
}

//! `${VAR}` and `${VAR:-default}` expansion over raw config text.
//!
//! Expansion happens before YAML parsing so a variable may stand anywhere (a key, a list item, part of a URL).
//! Each variable that expanded to a non-empty value is reported back, so messages about secret fields can be
//! scrubbed of it.

use std::collections::BTreeSet;

/// A variable reference that could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingVar {
    pub name: String,
    /// 1-based line and column of the `$` in the original text.
    pub line: usize,
    pub column: usize,
}

/// The result of expanding a text.
#[derive(Debug, Default)]
pub struct Expanded {
    pub text: String,
    /// Values substituted from the environment (not defaults written in the file).
    pub substituted: BTreeSet<String>,
}

/// Expands `${NAME}` and `${NAME:-default}`; `$${` escapes a literal `${`.
/// `lookup` is the environment (a parameter so tests need not touch the process environment).
pub fn expand(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Expanded, Vec<MissingVar>> {
    let mut out = String::with_capacity(text.len());
    let mut substituted = BTreeSet::new();
    let mut missing = Vec::new();
    let mut rest = text;
    let mut consumed = 0usize;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(stripped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = stripped;
            consumed += pos + 3;
            continue;
        }
        if !after.starts_with("${") {
            out.push('$');
            rest = &after[1..];
            consumed += pos + 1;
            continue;
        }
        let Some(end) = after.find('}') else {
            // An unterminated reference is left as written; YAML or the field parser will complain if it matters.
            out.push_str(after);
            rest = "";
            break;
        };
        let inner = &after[2..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        let valid_name = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid_name {
            out.push_str(&after[..=end]);
        } else {
            match lookup(name) {
                Some(value) if !value.is_empty() || default.is_none() => {
                    if !value.is_empty() {
                        substituted.insert(value.clone());
                    }
                    out.push_str(&value);
                }
                _ => match default {
                    Some(d) => out.push_str(d),
                    None => {
                        let (line, column) = line_col(text, consumed + pos);
                        missing.push(MissingVar {
                            name: name.to_string(),
                            line,
                            column,
                        });
                    }
                },
            }
        }
        rest = &after[end + 1..];
        consumed += pos + end + 1;
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(Expanded {
            text: out,
            substituted,
        })
    } else {
        Err(missing)
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cr3t".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_and_records_substitutions() {
        let e = expand("a: ${TOKEN}\nb: ${NOPE:-fallback}\n", env).unwrap();
        assert_eq!(e.text, "a: s3cr3t\nb: fallback\n");
        assert!(e.substituted.contains("s3cr3t"));
        assert!(!e.substituted.contains("fallback"));
    }

    #[test]
    fn missing_variable_reports_position() {
        let err = expand("x: 1\ny: \"${MISSING}\"\n", env).unwrap_err();
        assert_eq!(
            err,
            vec![MissingVar {
                name: "MISSING".into(),
                line: 2,
                column: 5
            }]
        );
    }

    #[test]
    fn empty_value_takes_default_and_escape_is_literal() {
        let e = expand("${EMPTY:-d} $${TOKEN} $5 ${bad name}", env).unwrap();
        assert_eq!(e.text, "d ${TOKEN} $5 ${bad name}");
    }
}

//! Loading a YAML config file into a typed struct, with `${ENV}` expansion first.
//!
//! Every error names the file, line and column, and the field at fault (`checks[2].timeout`), and never shows a
//! secret value: a message about a field the config classifies as secret ([`Classify`]) is scrubbed of every value
//! that came from the environment; messages about other fields (names, regions, labels) are shown as they are.

use crate::env::{self, line_col};
use crate::redact::Redactor;
use crate::secrets::{self, Classify, FieldKind};
use serde::de::DeserializeOwned;
use std::fmt;
use std::path::{Path, PathBuf};

/// A parsed config together with what is needed to report on it later.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    pub value: T,
    pub file: PathBuf,
    /// The expanded text (for locating fields in later, semantic validation).
    pub text: String,
    /// Every value substituted from the environment: scrubbed from messages about secret fields only.
    pub env_values: Redactor,
    classify: Classify,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    Io {
        file: PathBuf,
        message: String,
    },
    Invalid {
        file: PathBuf,
        line: usize,
        column: usize,
        field: String,
        message: String,
    },
}

impl ConfigError {
    pub fn message(&self) -> &str {
        match self {
            ConfigError::Io { message, .. } | ConfigError::Invalid { message, .. } => message,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io { file, message } => write!(f, "{}: {message}", file.display()),
            ConfigError::Invalid {
                file,
                line,
                column,
                field,
                message,
            } if field.is_empty() => {
                write!(f, "{}:{line}:{column}: {message}", file.display())
            }
            ConfigError::Invalid {
                file,
                line,
                column,
                field,
                message,
            } => {
                write!(f, "{}:{line}:{column}: {field}: {message}", file.display())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Reads, expands and parses `path` using the process environment; every field counts as secret in messages.
pub fn load_config<T: DeserializeOwned>(path: &Path) -> Result<Loaded<T>, ConfigError> {
    let raw = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
        file: path.to_path_buf(),
        message: format!("cannot read config: {e}"),
    })?;
    parse_config(path, &raw, |name| std::env::var(name).ok())
}

/// Expands and parses `raw`; `path` is only used in messages. `lookup` is the environment. Every field counts
/// as secret in messages.
pub fn parse_config<T: DeserializeOwned>(
    path: &Path,
    raw: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Loaded<T>, ConfigError> {
    parse_config_classified(path, raw, lookup, secrets::all_secret)
}

/// [`parse_config`] with the config's own classification of its fields, so that messages about identity fields
/// (a check's name, a region) keep their values even when those came from the environment.
pub fn parse_config_classified<T: DeserializeOwned>(
    path: &Path,
    raw: &str,
    lookup: impl Fn(&str) -> Option<String>,
    classify: Classify,
) -> Result<Loaded<T>, ConfigError> {
    let expanded = expand(path, raw, lookup)?;
    let env_values = Redactor::new(expanded.substituted.iter().cloned());
    let de = serde_norway::Deserializer::from_str(&expanded.text);
    let value: T = serde_path_to_error::deserialize(de)
        .map_err(|e| invalid(path, &expanded.text, &env_values, classify, e))?;
    Ok(Loaded {
        value,
        file: path.to_path_buf(),
        text: expanded.text,
        env_values,
        classify,
    })
}

/// [`parse_config_classified`] for a config with a part handled apart from the typed rest (a long list whose
/// items are validated one by one): the text is read once into a YAML tree, `split` looks at the whole tree and
/// takes out what it wants, by value, and the rest is deserialized into `T`. A large config is then never held
/// twice (the typed config's trees beside a second parse for another purpose).
pub fn parse_config_split<T: DeserializeOwned, P>(
    path: &Path,
    raw: &str,
    lookup: impl Fn(&str) -> Option<String>,
    classify: Classify,
    split: impl FnOnce(&mut serde_norway::Value) -> P,
) -> Result<(Loaded<T>, P), ConfigError> {
    let expanded = expand(path, raw, lookup)?;
    let env_values = Redactor::new(expanded.substituted.iter().cloned());
    let fail = |e| invalid(path, &expanded.text, &env_values, classify, e);
    let de = serde_norway::Deserializer::from_str(&expanded.text);
    let mut tree: serde_norway::Value = serde_path_to_error::deserialize(de).map_err(fail)?;
    let part = split(&mut tree);
    // An empty document is an empty mapping, as it is for the typed parse.
    if tree.is_null() {
        tree = serde_norway::Value::Mapping(Default::default());
    }
    let value: T = serde_path_to_error::deserialize(tree).map_err(fail)?;
    Ok((
        Loaded {
            value,
            file: path.to_path_buf(),
            text: expanded.text,
            env_values,
            classify,
        },
        part,
    ))
}

/// `${ENV}` expansion of `raw`; a variable that is not set is an error at its position.
fn expand(
    path: &Path,
    raw: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<env::Expanded, ConfigError> {
    env::expand(raw, lookup).map_err(|missing| {
        let m = &missing[0];
        ConfigError::Invalid {
            file: path.to_path_buf(),
            line: m.line,
            column: m.column,
            field: String::new(),
            message: format!(
                "environment variable {} is not set (set it, or give a default: ${{{}:-value}})",
                m.name, m.name
            ),
        }
    })
}

/// A deserialization error of the config `text` as a [`ConfigError`]: the field's position in the text (or
/// the parser's), the field, and a message scrubbed of environment values unless the field is plainly identity.
fn invalid(
    path: &Path,
    text: &str,
    env_values: &Redactor,
    classify: Classify,
    e: serde_path_to_error::Error<serde_norway::Error>,
) -> ConfigError {
    let field = e.path().to_string();
    let inner = e.inner();
    let (line, column) = crate::locate::locate(text, &field)
        .filter(|_| !field.is_empty() && field != ".")
        .or_else(|| inner.location().map(|l| (l.line(), l.column())))
        .unwrap_or((1, 1));
    let mut message = scrub(
        env_values,
        classify,
        &field,
        &strip_location(&inner.to_string()),
    );
    // serde_norway prefixes its own (shorter) path; ours is more precise.
    if let Some((prefix, rest)) = message.split_once(": ") {
        if !prefix.contains(' ') && field.starts_with(prefix) {
            message = rest.to_string();
        }
    }
    ConfigError::Invalid {
        file: path.to_path_buf(),
        line,
        column,
        field: clean_field(&field),
        message,
    }
}

/// `message` about `field`, without environment values when the field is not plainly identity or settings.
fn scrub(env_values: &Redactor, classify: Classify, field: &str, message: &str) -> String {
    let field = field.trim_start_matches('.');
    if !field.is_empty() && classify(field) == FieldKind::Plain && !under_secret(classify, field) {
        message.to_string()
    } else {
        env_values.redact(message)
    }
}

/// Whether some parent of `field` is secret (a secret field is secret all the way down).
fn under_secret(classify: Classify, field: &str) -> bool {
    field
        .char_indices()
        .filter(|(_, c)| *c == '.' || *c == '[')
        .any(|(i, _)| classify(&field[..i]) == FieldKind::Secret)
}

impl<T> Loaded<T> {
    /// An error for semantic validation done after parsing (duplicate names, cross-field rules).
    /// The position is where `field` (a path like `checks[3].schedule`) stands in the file; when the path cannot
    /// be found, the `nth` occurrence (0-based) of `needle`; else line 1.
    pub fn error_at(
        &self,
        field: &str,
        needle: &str,
        nth: usize,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = crate::locate::locate(&self.text, field)
            .or_else(|| {
                self.text
                    .match_indices(needle)
                    .nth(nth)
                    .map(|(i, _)| line_col(&self.text, i))
            })
            .unwrap_or((1, 1));
        ConfigError::Invalid {
            file: self.file.clone(),
            line,
            column,
            field: field.to_string(),
            message: scrub(&self.env_values, self.classify, field, &message.into()),
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Loaded<U> {
        Loaded {
            value: f(self.value),
            file: self.file,
            text: self.text,
            env_values: self.env_values,
            classify: self.classify,
        }
    }
}

/// serde_norway appends " at line L column C"; we print the position ourselves, first.
fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => msg[..i].to_string(),
        _ => msg.to_string(),
    }
}

/// serde_path_to_error prints `.` for the root; show nothing instead.
fn clean_field(field: &str) -> String {
    if field == "." {
        String::new()
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        region: String,
        #[allow(dead_code)]
        checks: Vec<Check>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Check {
        #[allow(dead_code)]
        name: String,
        #[serde(deserialize_with = "crate::serde_duration::deserialize")]
        #[allow(dead_code)]
        timeout: std::time::Duration,
    }

    fn env(name: &str) -> Option<String> {
        (name == "REGION").then(|| "eu-west-1".to_string())
    }

    #[test]
    fn parses_with_env() {
        let l: Loaded<Cfg> =
            parse_config(Path::new("a.yaml"), "region: ${REGION}\nchecks: []\n", env).unwrap();
        assert_eq!(l.value.region, "eu-west-1");
        assert_eq!(l.env_values.redact("in eu-west-1"), "in ***");
    }

    #[test]
    fn unknown_field_names_line_and_field() {
        let text = "region: x\nchecks:\n  - name: a\n    timeout: 5s\n    tiemout: 3s\n";
        let e = parse_config::<Cfg>(Path::new("a.yaml"), text, env)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("a.yaml:5:5: checks[0].tiemout: unknown field `tiemout`"),
            "{e}"
        );
    }

    #[test]
    fn bad_duration_names_field() {
        let text = "region: x\nchecks:\n  - name: a\n    timeout: soon\n";
        let e = parse_config::<Cfg>(Path::new("a.yaml"), text, env)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("a.yaml:4:5: checks[0].timeout: invalid duration"),
            "{e}"
        );
    }

    #[test]
    fn missing_env_is_an_error_with_position() {
        let e = parse_config::<Cfg>(Path::new("a.yaml"), "region: ${NOPE}\nchecks: []\n", env)
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("a.yaml:1:9: environment variable NOPE is not set"),
            "{e}"
        );
    }

    #[test]
    fn identity_fields_keep_values_from_the_environment() {
        fn classify(field: &str) -> FieldKind {
            if field.ends_with("token") {
                FieldKind::Secret
            } else {
                FieldKind::Plain
            }
        }
        let e = parse_config_classified::<Cfg>(
            Path::new("a.yaml"),
            "region: x\nchecks: [{name: ${REGION}, timeout: ${REGION}}]\n",
            env,
            classify,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("eu-west-1"), "{e}");
        let l = parse_config_classified::<Cfg>(
            Path::new("a.yaml"),
            "region: ${REGION}\nchecks: []\n",
            env,
            classify,
        )
        .unwrap();
        assert!(l
            .error_at("checks[0].token", "x", 0, "bad eu-west-1")
            .to_string()
            .ends_with("bad ***"));
        assert!(l
            .error_at("checks[0].name", "x", 0, "bad eu-west-1")
            .to_string()
            .ends_with("bad eu-west-1"));
    }

    #[test]
    fn secrets_do_not_appear_in_errors() {
        let text = "region: x\nchecks: ${REGION}\n";
        let e = parse_config::<Cfg>(Path::new("a.yaml"), text, env)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("eu-west-1"), "{e}");
    }
}

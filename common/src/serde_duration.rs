//! Durations in config files: `500ms`, `5s`, `1m30s`, `2h` (humantime syntax).

use serde::{Deserialize, Deserializer};
use std::time::Duration;

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse(&s).map_err(serde::de::Error::custom)
}

/// For `Option<Duration>` fields: `#[serde(default, deserialize_with = "serde_duration::option")]`.
pub fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    s.map(|s| parse(&s).map_err(serde::de::Error::custom))
        .transpose()
}

pub fn parse(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration {s:?} ({e}); use e.g. 500ms, 5s, 1m30s"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_common_forms() {
        assert_eq!(super::parse("1m30s").unwrap().as_secs(), 90);
        assert_eq!(super::parse("250ms").unwrap().as_millis(), 250);
        assert!(super::parse("5 parsecs")
            .unwrap_err()
            .contains("invalid duration"));
    }
}

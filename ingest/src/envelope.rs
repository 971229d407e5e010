//! A batch's own fields beside its events: `batch_id` (its idempotency key, see [`crate::recent_batches`]) and
//! `dropped` (events the sender lost before sending, by reason), read from their raw JSON with bounded work.
//!
//! Neither ever fails the batch: an unusable value is ignored and the answer carries a warning naming the field.

use serde::de::{self, Deserializer, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// Longest `batch_id` kept (rum-sdk.js sends a 36-character UUID).
pub const MAX_BATCH_ID_LEN: usize = 64;

/// A batch's idempotency key as sent: 1 to [`MAX_BATCH_ID_LEN`] printable ASCII characters, no spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchId(String);

impl BatchId {
    /// The id in `raw` (the field's JSON), or the warning saying why it is not one.
    pub fn parse(raw: &RawValue) -> Result<BatchId, String> {
        let invalid = || {
            format!(
                "batch_id: must be a string of 1 to {MAX_BATCH_ID_LEN} printable ASCII characters; ignored \
                 (the batch is processed, a retry of it is not recognised)"
            )
        };
        let text = raw.get();
        // Longer JSON cannot be a short string (at most 6 bytes per escaped character): not even read.
        if text.len() > 2 + 6 * MAX_BATCH_ID_LEN {
            return Err(invalid());
        }
        let s: Cow<'_, str> = serde_json::from_str(text).map_err(|_| invalid())?;
        if s.is_empty() || s.len() > MAX_BATCH_ID_LEN || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid());
        }
        Ok(BatchId(s.into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a sender lost events before sending them (a metric label: a closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// rum-sdk.js: its event queue was full (`maxQueue`).
    Queue,
    /// rum-sdk.js: more batches than `maxBatches` were waiting to be sent.
    Outbox,
    /// rum-sdk.js: a batch given up after its retries (`maxRetries`).
    Retry,
    /// A reason this server does not know.
    Other,
    /// `dropped` sent as a plain number (older SDKs, other senders).
    Unspecified,
}

impl DropReason {
    pub const ALL: [DropReason; 5] = [
        Self::Queue,
        Self::Outbox,
        Self::Retry,
        Self::Other,
        Self::Unspecified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queue => "queue",
            Self::Outbox => "outbox",
            Self::Retry => "retry",
            Self::Other => "other",
            Self::Unspecified => "unspecified",
        }
    }

    /// The reason an object key names; keys not known here are [`Self::Other`].
    fn of_key(key: &str) -> Self {
        match key {
            "queue" => Self::Queue,
            "outbox" => Self::Outbox,
            "retry" => Self::Retry,
            _ => Self::Other,
        }
    }
}

/// Most events one batch may report lost per reason. A page holds at most a few hundred events in memory
/// (rum-sdk.js: `maxQueue + maxBatches × batchSize`, 1,200 by default) and reports its losses with its next
/// batch, so a larger count is not believed: the whole field is ignored with a warning.
pub const MAX_DROPPED_PER_REASON: u64 = 1_000_000;

/// Most keys read from a `dropped` object (rum-sdk.js sends at most 3); reading stops at the next one and
/// the field is ignored with a warning, so a huge object costs no more than this.
pub const MAX_DROPPED_KEYS: usize = 16;

/// `dropped` as read: events lost per reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    counts: [u64; DropReason::ALL.len()],
}

impl Dropped {
    /// The counts in `raw` (the field's JSON): a whole number (reason `unspecified`), an object of whole
    /// numbers by reason, or `null` (nothing lost). Otherwise the warning saying why the field is ignored.
    pub fn parse(raw: &RawValue) -> Result<Dropped, String> {
        let mut de = serde_json::Deserializer::from_str(raw.get());
        de.deserialize_any(DroppedVisitor).map_err(|e| {
            // serde_json appends the position in the field's own text, which means nothing to the sender.
            let m = e.to_string();
            m.split(" at line ").next().unwrap_or(&m).to_string()
        })
    }

    /// The reasons with a count above zero, and their counts.
    pub fn counts(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .zip(self.counts)
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| (*r, n))
    }

    fn add(&mut self, reason: DropReason, n: u64, key: &str) -> Result<(), String> {
        let count = &mut self.counts[reason as usize];
        *count = count.saturating_add(n);
        if *count > MAX_DROPPED_PER_REASON {
            return Err(format!(
                "{key}: more than {MAX_DROPPED_PER_REASON} events in one batch is not plausible; dropped ignored"
            ));
        }
        Ok(())
    }
}

const EXPECTED: &str = "a whole number from 0, or an object of such numbers by reason";

fn not_a_count(what: impl fmt::Display, key: &str) -> String {
    format!(
        "{key}: {what} is not a whole number from 0 to {MAX_DROPPED_PER_REASON}; dropped ignored"
    )
}

struct DroppedVisitor;

impl<'de> Visitor<'de> for DroppedVisitor {
    type Value = Dropped;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Dropped, E> {
        Ok(Dropped::default())
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Dropped, E> {
        let mut d = Dropped::default();
        d.add(DropReason::Unspecified, n, "dropped")
            .map_err(E::custom)?;
        Ok(d)
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Dropped, E> {
        Err(E::custom(not_a_count(n, "dropped")))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Dropped, E> {
        Err(E::custom(not_a_count(n, "dropped")))
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Dropped, E> {
        Err(E::custom(not_a_count(b, "dropped")))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Dropped, E> {
        Err(E::custom(not_a_count("a string", "dropped")))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Dropped, A::Error> {
        // Returning stops the parse here: the array's elements are never read.
        Err(de::Error::custom(not_a_count("an array", "dropped")))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Dropped, A::Error> {
        let mut d = Dropped::default();
        let mut keys = 0;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            keys += 1;
            if keys > MAX_DROPPED_KEYS {
                return Err(de::Error::custom(format!(
                    "dropped: more than {MAX_DROPPED_KEYS} reasons; dropped ignored"
                )));
            }
            let reason = DropReason::of_key(&key.0);
            // Named as sent for the known reasons; others are not echoed (any text, any length).
            let name = match reason {
                DropReason::Other => "dropped (a reason counted as `other`)".to_string(),
                r => format!("dropped.{}", r.as_str()),
            };
            let n = map
                .next_value::<Count>()
                .map_err(|_| de::Error::custom(not_a_count("the value", &name)))?;
            d.add(reason, n.0, &name).map_err(de::Error::custom)?;
        }
        Ok(d)
    }
}

/// An object key, borrowed from the body when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a reason")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// One count: a non-negative integer (serde refuses negatives, fractions and anything not a number
/// without reading further).
struct Count(u64);

impl<'de> de::Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u64::deserialize(d).map(Count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_string()).unwrap()
    }

    fn dropped(json: &str) -> Result<Vec<(&'static str, u64)>, String> {
        Dropped::parse(&raw(json)).map(|d| d.counts().map(|(r, n)| (r.as_str(), n)).collect())
    }

    #[test]
    fn dropped_number_object_and_null() {
        assert_eq!(dropped("3"), Ok(vec![("unspecified", 3)]));
        assert_eq!(dropped("0"), Ok(vec![]));
        assert_eq!(dropped("null"), Ok(vec![]));
        assert_eq!(dropped("{}"), Ok(vec![]));
        assert_eq!(
            dropped(r#"{"queue": 4, "outbox": 20, "retry": 1}"#),
            Ok(vec![("queue", 4), ("outbox", 20), ("retry", 1)])
        );
        // Unknown reasons are `other`, summed; an escaped known key is still known; zero counts nothing.
        assert_eq!(
            dropped(r#"{"cache": 2, "zzz": 5, "q\u0075eue": 1, "retry": 0}"#),
            Ok(vec![("queue", 1), ("other", 7)])
        );
        assert_eq!(
            dropped(&MAX_DROPPED_PER_REASON.to_string()),
            Ok(vec![("unspecified", MAX_DROPPED_PER_REASON)])
        );
    }

    #[test]
    fn dropped_refused_with_a_warning_naming_the_field() {
        for (json, says) in [
            ("-1", "dropped: -1 is not a whole number"),
            ("2.5", "dropped: 2.5 is not a whole number"),
            ("1e3", "dropped: 1000 is not a whole number"),
            (r#""3""#, "dropped: a string is not"),
            ("[1,2]", "dropped: an array is not"),
            ("true", "dropped: true is not"),
            (r#"{"queue": -2}"#, "dropped.queue: the value is not"),
            (r#"{"retry": "many"}"#, "dropped.retry: the value is not"),
            (
                r#"{"x": [1]}"#,
                "dropped (a reason counted as `other`): the value",
            ),
            ("1000001", "dropped: more than 1000000 events"),
            (
                "18446744073709551616",
                "dropped: 18446744073709552000 is not",
            ),
            (
                r#"{"outbox": 600000, "outbox": 600000}"#,
                "dropped.outbox: more than 1000000",
            ),
            (r#"{"a": 1, "b": 2, "c": 3}"#, ""),
        ] {
            match dropped(json) {
                Err(w) => {
                    assert!(w.starts_with(says), "{json}: {w}");
                    assert!(w.ends_with("ignored"), "{json}: {w}");
                }
                Ok(c) => assert_eq!((says, c), ("", vec![("other", 6)]), "{json}"),
            }
        }
    }

    #[test]
    fn dropped_reads_a_bounded_number_of_keys() {
        let many: Vec<String> = (0..100_000).map(|i| format!("\"k{i}\":1")).collect();
        let w = dropped(&format!("{{{}}}", many.join(","))).unwrap_err();
        assert_eq!(w, "dropped: more than 16 reasons; dropped ignored");
        let sixteen: Vec<String> = (0..16).map(|i| format!("\"k{i}\":1")).collect();
        assert_eq!(
            dropped(&format!("{{{}}}", sixteen.join(","))),
            Ok(vec![("other", 16)])
        );
    }

    #[test]
    fn batch_ids() {
        let id = |json: &str| BatchId::parse(&raw(json)).map(|b| b.as_str().to_string());
        let uuid = "7c0e2d1a-9b3f-4c1e-8a2d-5f6e7d8c9b0a";
        assert_eq!(id(&format!("\"{uuid}\"")).as_deref(), Ok(uuid));
        assert_eq!(id(&format!("\"{}\"", "a".repeat(64))), Ok("a".repeat(64)));
        for bad in [
            "\"\"".to_string(),
            format!("\"{}\"", "a".repeat(65)),
            format!("\"{}\"", "a".repeat(100_000)),
            "\"has space\"".into(),
            "\"tab\\there\"".into(),
            "\"é\"".into(),
            "42".into(),
            "{\"id\":1}".into(),
        ] {
            let w = id(&bad).unwrap_err();
            assert!(w.starts_with("batch_id: must be a string"), "{bad}: {w}");
        }
    }
}

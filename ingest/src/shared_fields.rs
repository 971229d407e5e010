//! The fields the events of a batch share: `session_id`, `viewport`, `page`, `release`, `user_id`.
//!
//! rum-sdk.js writes them in an event only when they differ from the event's before it in the same body (about
//! 140 of an `api_call`'s 330 characters), so that a batch of 100 calls is one request. An event without
//! `session_id` takes each of these fields it lacks from the nearest event before it in the body that has a
//! `session_id`, and is stored whole, as if it had been sent so. An event with `session_id` takes nothing.
//! Senders that write every field (older SDKs, other clients) pay nothing for this: the whole event's fields are
//! read only when a later event needs them.
//!
//! A body holding the public site key could make one event's shared fields large and every event after it take
//! them: what an event takes is at most [`MAX_TAKEN_BYTES`], and the request's copies count against the body
//! memory budget (`http::events`), so the memory a body costs stays bounded.

use serde::Deserialize;
use serde_json::value::RawValue;

/// Most bytes of shared fields one event may take (rum-sdk.js's are at most about 2,500: two URLs of at most
/// 1,000 characters, a session id, a viewport, a release and a user id).
pub const MAX_TAKEN_BYTES: usize = 4096;

/// The shared fields, in the order an event taking them gets them.
pub const SHARED_FIELDS: [&str; 5] = ["session_id", "viewport", "page", "release", "user_id"];

/// What the events of one body read so far leave for the next: the last event with a `session_id`.
#[derive(Default)]
pub struct Shared<'a> {
    whole: Option<&'a RawValue>,
    /// Its shared fields' JSON (in [`SHARED_FIELDS`] order, absent ones left out), read at first use.
    fields: Option<Vec<(&'static str, &'a RawValue)>>,
}

/// The shared fields of an event as JSON text, `null` read as absent.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(default, borrow)]
    session_id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    viewport: Option<&'a RawValue>,
    #[serde(default, borrow)]
    page: Option<&'a RawValue>,
    #[serde(default, borrow)]
    release: Option<&'a RawValue>,
    #[serde(default, borrow)]
    user_id: Option<&'a RawValue>,
}

impl<'a> Shared<'a> {
    /// `event` (its raw JSON) has a `session_id`: the events after it that have none take from it.
    pub fn whole(&mut self, event: &'a RawValue) {
        self.whole = Some(event);
        self.fields = None;
    }

    /// The shared fields an event without `session_id` takes: those of the last whole event that `has` (by
    /// name) says it lacks. Empty when no event before it had a `session_id`.
    pub fn taken(&mut self, has: impl Fn(&str) -> bool) -> Vec<(&'static str, &'a RawValue)> {
        let Some(whole) = self.whole else {
            return Vec::new();
        };
        let fields = self.fields.get_or_insert_with(|| read(whole));
        fields
            .iter()
            .filter(|(name, _)| !has(name))
            .copied()
            .collect()
    }
}

fn read(whole: &RawValue) -> Vec<(&'static str, &RawValue)> {
    let Ok(f) = serde_json::from_str::<Fields>(whole.get()) else {
        return Vec::new();
    };
    SHARED_FIELDS
        .into_iter()
        .zip([f.session_id, f.viewport, f.page, f.release, f.user_id])
        .filter_map(|(name, v)| Some((name, v?)))
        .collect()
}

/// The bytes `taken` adds to an event's JSON.
pub fn size(taken: &[(&str, &RawValue)]) -> usize {
    taken.iter().map(|(k, v)| k.len() + v.get().len() + 4).sum()
}

/// `event` (a JSON object's text) with `taken` written in front of its own fields.
pub fn splice(event: &str, taken: &[(&str, &RawValue)]) -> String {
    let own = event.strip_prefix('{').unwrap_or(event).trim_start();
    let mut out = String::with_capacity(event.len() + size(taken));
    out.push('{');
    for (i, (name, value)) in taken.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
        out.push_str(value.get());
    }
    if !taken.is_empty() && !own.starts_with('}') {
        out.push(',');
    }
    out.push_str(own);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> &RawValue {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn takes_what_the_event_lacks_from_the_last_whole_one() {
        let mut shared = Shared::default();
        assert!(shared.taken(|_| false).is_empty(), "nothing before it");
        let whole = raw(
            r#"{"type":"custom","session_id":"s1","viewport":{"width":800,"height":600},"page":{"url":"https://a/x","referrer":""},"user_id":null}"#,
        );
        shared.whole(whole);
        let taken = shared.taken(|k| k == "page");
        let names: Vec<_> = taken
            .iter()
            .map(|(k, v)| format!("{k}={}", v.get()))
            .collect();
        assert_eq!(
            names,
            [
                r#"session_id="s1""#,
                r#"viewport={"width":800,"height":600}"#
            ],
            "its own page kept, a null user_id is none"
        );
        let event = splice(
            r#"{ "type":"api_call","page":{"url":"https://a/y"}}"#,
            &taken,
        );
        assert_eq!(
            event,
            r#"{"session_id":"s1","viewport":{"width":800,"height":600},"type":"api_call","page":{"url":"https://a/y"}}"#
        );
        assert_eq!(
            splice("{}", &taken),
            r#"{"session_id":"s1","viewport":{"width":800,"height":600}}"#
        );
        assert_eq!(splice(r#"{"a":1}"#, &[]), r#"{"a":1}"#);
        serde_json::from_str::<serde_json::Value>(&event).unwrap();

        shared.whole(raw(r#"{"session_id":"s2"}"#));
        let taken = shared.taken(|_| false);
        assert_eq!(taken.len(), 1, "the nearest whole event's, not a mix");
    }
}

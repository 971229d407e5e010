//! Browser errors: stacks parsed, symbolicated with the source maps uploaded for the page's release, and
//! grouped by fingerprint. This is the ingest's step between validation and shaping for `error` events.
//!
//! # Layout
//! - [`frames`]: stack text (Chromium, Firefox, Safari) into frames, and frames back into text.
//! - [`symbolicate`]: frames rewritten with source maps; the parsed-map cache and what it costs.
//! - [`fingerprint`]: the error's type, normalised message and top in-app frame, hashed into its group.
//! - [`groups`]: which groups exist already, for the new-groups counter.

pub mod fingerprint;
pub mod frames;
pub mod groups;
pub mod symbolicate;

use crate::event::{EventType, ValidEvent};
use frames::Stack;
use symbolicate::{Symbolicator, MAX_RELEASES_PER_BATCH};

/// What the store keeps of an error beyond its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    /// The group (16 hex digits).
    pub fingerprint: String,
    /// The stack in Chromium's format, symbolicated where a map covers a frame; the text as sent when no
    /// line of it was a frame; `None` without a stack.
    pub stack: Option<String>,
}

/// Symbolicates and groups the error events of one request of `site` (fills [`ValidEvent::error`]).
/// Frames of the first [`MAX_RELEASES_PER_BATCH`] releases are symbolicated; others keep their frames.
pub async fn analyze(
    valid: &mut [(usize, ValidEvent<'_>)],
    site: &str,
    symbolicator: &Symbolicator,
) {
    let errors: Vec<usize> = (0..valid.len())
        .filter(|&i| valid[i].1.kind == EventType::Error)
        .collect();
    if errors.is_empty() {
        return;
    }
    let mut stacks: Vec<Stack> = errors
        .iter()
        .map(|&i| {
            valid[i]
                .1
                .stack
                .as_deref()
                .map(Stack::parse)
                .unwrap_or_default()
        })
        .collect();
    let mut releases: Vec<&str> = Vec::new();
    for &i in &errors {
        if let Some(r) = valid[i].1.release.as_deref() {
            if !releases.contains(&r) && releases.len() < MAX_RELEASES_PER_BATCH {
                releases.push(r);
            }
        }
    }
    for release in releases {
        let mine: Vec<usize> = (0..errors.len())
            .filter(|&k| valid[errors[k]].1.release.as_deref() == Some(release))
            .collect();
        let taken: Vec<Stack> = mine
            .iter()
            .map(|&k| std::mem::take(&mut stacks[k]))
            .collect();
        let done = symbolicator.symbolicate(site, release, taken).await;
        for (k, s) in mine.into_iter().zip(done) {
            stacks[k] = s;
        }
    }
    for (k, stack) in errors.into_iter().zip(stacks) {
        let ev = &mut valid[k].1;
        let group = fingerprint::group(ev.name.as_deref().unwrap_or(""), &stack);
        let stored = if stack.frames.is_empty() {
            ev.stack.clone()
        } else {
            Some(stack.render())
        };
        ev.error = Some(ErrorInfo {
            fingerprint: group.fingerprint,
            stack: stored,
        });
    }
}

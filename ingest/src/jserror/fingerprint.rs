//! Error groups: the fingerprint of an error is a hash of its type, its message with the parts that vary
//! between occurrences replaced by placeholders, and its top in-app frame (file and function, not line).

use super::frames::{Frame, Stack};
use regex::Regex;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// Longest normalised message kept (bytes): messages longer than this group by their first part.
pub const MAX_MESSAGE: usize = 200;

/// What an error is grouped by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `TypeError`, `RangeError`, `Error`, ... (the message's `Name:` prefix, or the stack header's).
    pub error_type: String,
    /// The message without its type prefix, numbers, ids, quoted strings and URLs replaced by placeholders.
    pub message: String,
    /// 16 hex digits: the first 8 bytes of SHA-256 over type, message and the top in-app frame.
    pub fingerprint: String,
}

/// Groups an error by its message and (symbolicated) stack.
pub fn group(message: &str, stack: &Stack) -> Group {
    let (error_type, message) = describe(message, stack.header.as_deref());
    let mut h = Sha256::new();
    for part in [error_type.as_str(), message.as_str()] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    if let Some(f) = top_in_app_frame(&stack.frames) {
        let file = f.location.as_ref().map(|l| file_key(&l.url));
        h.update(file.unwrap_or_default().as_bytes());
        h.update([0]);
        h.update(f.function.as_deref().unwrap_or("").as_bytes());
    }
    let digest = h.finalize();
    let fingerprint = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Group {
        error_type,
        message,
        fingerprint,
    }
}

/// The error's type and normalised message. The type is the message's `Name:` prefix (`Uncaught ` dropped),
/// else the stack header's, else `Error`.
pub fn describe(message: &str, header: Option<&str>) -> (String, String) {
    let message = message.trim();
    let message = message.strip_prefix("Uncaught ").unwrap_or(message);
    let (error_type, rest) = match type_prefix(message) {
        Some((t, rest)) => (t.to_string(), rest),
        None => {
            let t = header
                .map(|h| h.strip_prefix("Uncaught ").unwrap_or(h))
                .and_then(type_prefix)
                .map_or("Error", |(t, _)| t);
            (t.to_string(), message)
        }
    };
    (error_type, normalise(rest))
}

/// `TypeError: rest` -> (`TypeError`, `rest`): a JavaScript identifier ending in `Error` or `Exception`, or
/// one of the DOM's exception names, before a colon.
fn type_prefix(s: &str) -> Option<(&str, &str)> {
    let (name, rest) = s.split_once(':')?;
    let ident = !name.is_empty()
        && name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.');
    (ident && (name.ends_with("Error") || name.ends_with("Exception") || name == "Error"))
        .then(|| (name, rest.trim()))
}

/// Replaces what varies between occurrences of one error: URLs (`<url>`), quoted strings (`<str>`), UUIDs
/// (`<uuid>`), hex ids (`<hex>`) and numbers (`<n>`); collapses whitespace; cuts to [`MAX_MESSAGE`].
pub fn normalise(message: &str) -> String {
    struct Rules {
        url: Regex,
        quoted: Regex,
        uuid: Regex,
        hex: Regex,
        number: Regex,
    }
    static RULES: OnceLock<Rules> = OnceLock::new();
    let r = RULES.get_or_init(|| {
        let re = |p: &str| Regex::new(p).expect("valid pattern");
        Rules {
            url: re(r#"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'"`<>()]+"#),
            quoted: re(r#""[^"]*"|'[^']*'|`[^`]*`"#),
            uuid: re(
                r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
            ),
            hex: re(r"\b0x[0-9a-fA-F]+\b|\b[0-9a-fA-F]{6,}\b"),
            number: re(r"\b\d+(\.\d+)?\b"),
        }
    });
    // Bounded input: the regexes run in linear time, over at most a few KiB.
    let s = crate::truncate::truncate(message, 4 * 1024);
    let s = r.url.replace_all(&s, "<url>");
    let s = r.quoted.replace_all(&s, "<str>");
    let s = r.uuid.replace_all(&s, "<uuid>");
    // A hex id mixes digits and letters (`5f3a9c21e7`) or says so (`0x1f`); `deadbeef` or `facade` alone are
    // words, digits alone are numbers (next rule).
    let s = r.hex.replace_all(&s, |c: &regex::Captures<'_>| {
        let m = &c[0];
        let id = m.starts_with("0x")
            || (m.bytes().any(|b| b.is_ascii_digit())
                && m.bytes().any(|b| b.is_ascii_alphabetic()));
        if id {
            "<hex>".to_string()
        } else {
            m.to_string()
        }
    });
    let s = r.number.replace_all(&s, "<n>");
    let collapsed = s.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::truncate::truncate(&collapsed, MAX_MESSAGE)
}

/// The first frame of the page's own code: one with a place, not in `node_modules`, a browser extension or
/// the browser's own code; else the first frame with a place.
pub fn top_in_app_frame(frames: &[Frame]) -> Option<&Frame> {
    let placed = || frames.iter().filter(|f| f.location.is_some());
    placed()
        .find(|f| f.location.as_ref().is_some_and(|l| in_app(&l.url)))
        .or_else(|| placed().next())
}

fn in_app(url: &str) -> bool {
    const NOT_APP: [&str; 6] = [
        "chrome-extension://",
        "moz-extension://",
        "safari-extension://",
        "safari-web-extension://",
        "webkit-masked-url://",
        "chrome://",
    ];
    !url.contains("/node_modules/") && !NOT_APP.iter().any(|p| url.starts_with(p))
}

/// A frame's file as grouped: the path of its URL (origin, query and fragment dropped), with cache-busting
/// hashes in file names (`app.3f9a1c2b.js`) replaced by `*`, so an unsymbolicated error keeps its group
/// across deploys. Symbolicated frames carry source paths (`src/cart.js`) and keep them.
fn file_key(url: &str) -> String {
    let path = crate::shape::url_path(url);
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let name: Vec<String> = name
        .split(['.', '-', '_'])
        .map(|part| {
            let hashy = part.len() >= 8
                && part.chars().all(|c| c.is_ascii_hexdigit())
                && part.chars().any(|c| c.is_ascii_digit());
            if hashy {
                "*".to_string()
            } else {
                part.to_string()
            }
        })
        .collect();
    if dir.is_empty() && !path.starts_with('/') {
        name.join(".")
    } else {
        format!("{dir}/{}", name.join("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jserror::frames::Location;

    #[test]
    fn messages_normalised() {
        let n = normalise;
        assert_eq!(
            n("Cannot read properties of undefined (reading 'sku')"),
            "Cannot read properties of undefined (reading <str>)"
        );
        assert_eq!(
            n("Failed to fetch https://api.example.com/users/42?x=1 after 3 tries"),
            "Failed to fetch <url> after <n> tries"
        );
        assert_eq!(
            n("order 3f2b8c1e-9a4d-4e2b-8f1a-0c9d8e7f6a5b not found"),
            "order <uuid> not found"
        );
        assert_eq!(
            n("object 0xdeadBEEF and 5f3a9c21e7 at 12.5%"),
            "object <hex> and <hex> at <n>%"
        );
        assert_eq!(n("say \"hi\"  and\n`x`"), "say <str> and <str>");
        // Words made of hex letters alone are words.
        assert_eq!(n("bad face added"), "bad face added");
        assert_eq!(n(&"x".repeat(1000)).len(), MAX_MESSAGE);
    }

    #[test]
    fn types_from_message_or_header() {
        assert_eq!(
            describe("Uncaught TypeError: x is undefined", None),
            ("TypeError".into(), "x is undefined".into())
        );
        assert_eq!(
            describe("x is undefined", Some("TypeError: x is undefined")),
            ("TypeError".into(), "x is undefined".into())
        );
        assert_eq!(
            describe("DOMException: The operation was aborted.", None).0,
            "DOMException"
        );
        assert_eq!(
            describe("Script error.", None),
            ("Error".into(), "Script error.".into())
        );
        // A colon alone does not make a type.
        assert_eq!(
            describe("failed: status 500", None),
            ("Error".into(), "failed: status <n>".into())
        );
    }

    fn frame(function: &str, url: &str, line: u32) -> Frame {
        Frame {
            function: Some(function.into()),
            location: Some(Location {
                url: url.into(),
                line,
                col: 1,
            }),
        }
    }

    #[test]
    fn fingerprint_ignores_what_varies_and_keeps_what_does_not() {
        let stack = |line, file: &str| Stack {
            header: None,
            frames: vec![
                frame(
                    "dispatch",
                    "https://shop.example.com/node_modules/lib/x.js",
                    9,
                ),
                frame("addToCart", file, line),
            ],
        };
        let a = group(
            "TypeError: item 42 has no 'sku'",
            &stack(42, "https://shop.example.com/assets/app.3f9a1c2b.js"),
        );
        // Another line, another number, another quoted name, another build hash: the same group.
        let b = group(
            "TypeError: item 7 has no 'price'",
            &stack(43, "https://cdn.example.net/assets/app.9c0d11aa.js?v=2"),
        );
        assert_eq!(a, b);
        assert_eq!(a.fingerprint.len(), 16);
        assert_eq!(a.error_type, "TypeError");
        assert_eq!(a.message, "item <n> has no <str>");
        // Another function, another file, another type, another message: other groups.
        let mut other = stack(42, "https://shop.example.com/assets/app.js");
        other.frames[1].function = Some("removeFromCart".into());
        assert_ne!(group("TypeError: item 42 has no 'sku'", &other), a);
        assert_ne!(
            group(
                "TypeError: item 42 has no 'sku'",
                &stack(42, "https://shop.example.com/assets/vendor.js")
            ),
            a
        );
        assert_ne!(
            group(
                "RangeError: item 42 has no 'sku'",
                &stack(42, "https://shop.example.com/assets/app.3f9a1c2b.js")
            )
            .fingerprint,
            a.fingerprint
        );
        assert_ne!(
            group(
                "TypeError: cart is empty",
                &stack(42, "https://shop.example.com/assets/app.3f9a1c2b.js")
            )
            .fingerprint,
            a.fingerprint
        );
    }

    #[test]
    fn in_app_frames() {
        let frames = vec![
            Frame {
                function: Some("forEach".into()),
                location: None,
            },
            frame("inject", "chrome-extension://abc/content.js", 1),
            frame("f", "https://a.test/node_modules/react/index.js", 1),
            frame("mine", "src/cart.js", 42),
        ];
        assert_eq!(
            top_in_app_frame(&frames).unwrap().function.as_deref(),
            Some("mine")
        );
        assert_eq!(
            top_in_app_frame(&frames[..3]).unwrap().function.as_deref(),
            Some("inject")
        );
        assert_eq!(top_in_app_frame(&frames[..1]), None);
        assert_eq!(file_key("src/cart.js"), "src/cart.js");
        assert_eq!(
            file_key("https://a.test/assets/app-3f9a1c2b.min.js?x#y"),
            "/assets/app.*.min.js"
        );
    }
}

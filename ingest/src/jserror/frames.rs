//! Stack traces as browsers write them, parsed into frames: Chromium (`    at fn (url:line:col)`), Firefox and
//! Safari (`fn@url:line:col`). Lines that are neither (the `TypeError: ...` header, eval frames, blank lines)
//! are kept aside, never guessed at.

/// Most frames parsed from one stack; the rest are dropped (the top frames are the ones that matter).
pub const MAX_FRAMES: usize = 50;

/// Where a frame's code is: a script URL and 1-based line and column, as browsers report them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub url: String,
    pub line: u32,
    pub col: u32,
}

/// One frame of a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The function's name as reported (`add`, `Cart.add`, `async load`), `None` for anonymous code.
    pub function: Option<String>,
    /// `None` for frames without a place in a script (`native`, `<anonymous>`, `[native code]`).
    pub location: Option<Location>,
}

impl Frame {
    /// The frame in Chromium's format, whatever format it came in: `at fn (url:line:col)`.
    pub fn render(&self) -> String {
        let place = match &self.location {
            Some(l) => format!("{}:{}:{}", l.url, l.line, l.col),
            None => "native".into(),
        };
        match self.function.as_deref() {
            Some(f) => format!("at {f} ({place})"),
            None => format!("at {place}"),
        }
    }
}

/// A stack split into its header (the first line when it is not a frame, e.g. `TypeError: x is undefined`)
/// and its frames, top first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stack {
    pub header: Option<String>,
    pub frames: Vec<Frame>,
}

impl Stack {
    /// Parses every line that is a frame in one of the known formats, at most [`MAX_FRAMES`].
    pub fn parse(text: &str) -> Stack {
        let mut stack = Stack::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            match parse_frame(line) {
                Some(f) if stack.frames.len() < MAX_FRAMES => stack.frames.push(f),
                Some(_) => break,
                None if i == 0 => stack.header = Some(line.to_string()),
                None => {}
            }
        }
        stack
    }

    /// The header and the frames, one a line, frames in Chromium's format indented by four spaces.
    pub fn render(&self) -> String {
        let mut out = self.header.clone().unwrap_or_default();
        for f in &self.frames {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str("    ");
            out.push_str(&f.render());
        }
        out
    }
}

/// One line of a stack as a frame, or `None` when it is not one.
pub fn parse_frame(line: &str) -> Option<Frame> {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("at ") {
        return chromium(rest.trim());
    }
    gecko_webkit(line)
}

/// `fn (place)` or `place`, where place is `url:line:col`, `native` or `<anonymous>`.
fn chromium(rest: &str) -> Option<Frame> {
    if rest.ends_with(')') {
        if let Some(open) = rest.rfind(" (") {
            let function = rest[..open].trim();
            let place = &rest[open + 2..rest.len() - 1];
            if place.contains("eval at ") || function.is_empty() {
                return None;
            }
            return Some(Frame {
                function: Some(function.to_string()),
                location: place_or_native(place)?,
            });
        }
    }
    Some(Frame {
        function: None,
        location: place_or_native(rest)?,
    })
}

/// `fn@url:line:col`, `@url:line:col`, `fn@[native code]`, and Safari's bare `url:line:col`.
fn gecko_webkit(line: &str) -> Option<Frame> {
    let (function, place) = match line.split_once('@') {
        Some((f, p)) => (Some(f), p),
        None => (None, line),
    };
    // Firefox writes eval'd code as `url line 3 > eval:1:2`: no place to map.
    if place.contains(" > ") {
        return None;
    }
    let location = match place {
        "[native code]" => None,
        _ => Some(location(place)?),
    };
    Some(Frame {
        function: function.filter(|f| !f.is_empty()).map(str::to_string),
        location,
    })
}

fn place_or_native(place: &str) -> Option<Option<Location>> {
    match place {
        "native" | "<anonymous>" | "unknown location" => Some(None),
        p => location(p).map(Some),
    }
}

/// `url:line:col` (the URL may contain colons itself: `https://a.b:8443/x.js:1:2`).
fn location(place: &str) -> Option<Location> {
    let (rest, col) = place.rsplit_once(':')?;
    let (url, line) = rest.rsplit_once(':')?;
    let (line, col) = (line.parse().ok()?, col.parse().ok()?);
    if url.is_empty() || url.contains(char::is_whitespace) {
        return None;
    }
    Some(Location {
        url: url.to_string(),
        line,
        col,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(function: Option<&str>, url: &str, line: u32, col: u32) -> Frame {
        Frame {
            function: function.map(str::to_string),
            location: Some(Location {
                url: url.into(),
                line,
                col,
            }),
        }
    }

    #[test]
    fn chromium_stack() {
        let s = Stack::parse(
            "TypeError: Cannot read properties of undefined (reading 'sku')\n    at add (https://shop.example.com/assets/app.min.js:1:20417)\n    at https://shop.example.com/assets/app.min.js:1:301\n    at async Cart.load (https://shop.example.com:8443/a.js?v=2:10:5)\n    at new Widget (https://x.test/w.js:3:4)\n    at Array.forEach (<anonymous>)\n    at eval (eval at run (https://x.test/e.js:1:1), <anonymous>:1:1)",
        );
        assert_eq!(
            s.header.as_deref(),
            Some("TypeError: Cannot read properties of undefined (reading 'sku')")
        );
        assert_eq!(
            s.frames,
            vec![
                at(
                    Some("add"),
                    "https://shop.example.com/assets/app.min.js",
                    1,
                    20417
                ),
                at(None, "https://shop.example.com/assets/app.min.js", 1, 301),
                at(
                    Some("async Cart.load"),
                    "https://shop.example.com:8443/a.js?v=2",
                    10,
                    5
                ),
                at(Some("new Widget"), "https://x.test/w.js", 3, 4),
                Frame {
                    function: Some("Array.forEach".into()),
                    location: None
                },
            ]
        );
    }

    #[test]
    fn firefox_and_safari_stacks() {
        let firefox = Stack::parse(
            "add@https://shop.example.com/assets/app.min.js:1:20417\nCart/<.load@https://shop.example.com/assets/app.min.js:1:99\n@https://shop.example.com/assets/app.min.js:1:5\nrun@https://x.test/e.js line 2 > eval:1:3\n",
        );
        assert_eq!(firefox.header, None);
        assert_eq!(
            firefox.frames,
            vec![
                at(
                    Some("add"),
                    "https://shop.example.com/assets/app.min.js",
                    1,
                    20417
                ),
                at(
                    Some("Cart/<.load"),
                    "https://shop.example.com/assets/app.min.js",
                    1,
                    99
                ),
                at(None, "https://shop.example.com/assets/app.min.js", 1, 5),
            ]
        );
        let safari = Stack::parse(
            "add@https://shop.example.com/assets/app.min.js:1:20417\nforEach@[native code]\nglobal code@https://shop.example.com/:12:3\nhttps://shop.example.com/assets/app.min.js:1:7",
        );
        assert_eq!(
            safari.frames,
            vec![
                at(
                    Some("add"),
                    "https://shop.example.com/assets/app.min.js",
                    1,
                    20417
                ),
                Frame {
                    function: Some("forEach".into()),
                    location: None
                },
                at(Some("global code"), "https://shop.example.com/", 12, 3),
                at(None, "https://shop.example.com/assets/app.min.js", 1, 7),
            ]
        );
    }

    #[test]
    fn garbage_is_not_a_frame_and_frames_are_bounded() {
        for line in [
            "",
            "at",
            "at foo (bar)",
            "x@y",
            "x@https://a/b.js:one:2",
            "at f (:1:2)",
            "Error: boom",
        ] {
            assert_eq!(parse_frame(line), None, "{line:?}");
        }
        let many = "at f (https://a.test/x.js:1:1)\n".repeat(MAX_FRAMES * 3);
        assert_eq!(Stack::parse(&many).frames.len(), MAX_FRAMES);
    }

    #[test]
    fn renders_in_chromium_format() {
        let s = Stack::parse("Error: x\nf@https://a.test/x.js:3:4\n@https://a.test/y.js:1:2");
        assert_eq!(
            s.render(),
            "Error: x\n    at f (https://a.test/x.js:3:4)\n    at https://a.test/y.js:1:2"
        );
        assert_eq!(Stack::parse(&s.render()), s);
    }
}

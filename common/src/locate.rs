//! Finding where a field path (`checks[3].assert[1].regex`) stands in a YAML text, for error messages.
//!
//! Errors found after parsing (duplicate names, a bad cron in a field parsed later, a value deserialized from an
//! in-memory `Value` that lost its position) only know the field path; this walks the YAML events to turn the
//! path into a line and column.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Parses `a.b[2].c` (and `a.b.2`) into segments. Returns `None` for an empty path.
fn parse_path(path: &str) -> Option<Vec<Seg>> {
    let mut segs = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            match name.parse::<usize>() {
                Ok(i) => segs.push(Seg::Index(i)),
                Err(_) => segs.push(Seg::Key(name.to_string())),
            }
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let end = stripped.find(']')?;
            segs.push(Seg::Index(stripped[..end].parse().ok()?));
            rest = &stripped[end + 1..];
        }
    }
    (!segs.is_empty()).then_some(segs)
}

enum Frame {
    Map {
        base: Vec<Seg>,
        key: Option<String>,
        expect_key: bool,
    },
    Seq {
        base: Vec<Seg>,
        next: usize,
    },
}

struct Walker {
    target: Vec<Seg>,
    stack: Vec<Frame>,
    found: Option<Marker>,
    /// The deepest matching prefix seen, with its length, for paths that do not fully exist (unknown fields).
    best: Option<(usize, Marker)>,
    /// A list item that is a collection: the parser marks a block mapping at its first `:`, so the item's
    /// position is taken from its first key instead.
    pending_item: Option<Vec<Seg>>,
}

impl Walker {
    fn consider(&mut self, path: &[Seg], mark: Marker) {
        if self.found.is_some() {
            return;
        }
        if path == self.target.as_slice() {
            self.found = Some(mark);
        } else if self.target.starts_with(path) && self.best.is_none_or(|(n, _)| path.len() > n) {
            self.best = Some((path.len(), mark));
        }
    }

    /// Handles the start of a node; returns the node's path when it is a value (not a key).
    fn node_start(&mut self, scalar: Option<&str>, mark: Marker) -> Option<Vec<Seg>> {
        if let Some(item) = self.pending_item.take() {
            self.consider(&item, mark);
        }
        match self.stack.last_mut() {
            None => Some(Vec::new()),
            Some(Frame::Map {
                base,
                key,
                expect_key,
            }) if *expect_key => {
                *expect_key = false;
                let mut path = base.clone();
                *key = scalar.map(str::to_string);
                if let Some(k) = scalar {
                    path.push(Seg::Key(k.to_string()));
                    self.consider(&path, mark);
                }
                None
            }
            Some(Frame::Map { base, key, .. }) => {
                let mut path = base.clone();
                path.push(Seg::Key(key.clone().unwrap_or_default()));
                Some(path)
            }
            Some(Frame::Seq { base, next }) => {
                let mut path = base.clone();
                path.push(Seg::Index(*next));
                *next += 1;
                if scalar.is_some() {
                    self.consider(&path, mark);
                } else {
                    self.pending_item = Some(path.clone());
                }
                Some(path)
            }
        }
    }

    /// A value finished: the enclosing map expects a key next.
    fn value_done(&mut self) {
        if let Some(Frame::Map { expect_key, .. }) = self.stack.last_mut() {
            *expect_key = true;
        }
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(ref s, ..) if self.node_start(Some(s), mark).is_some() => {
                self.value_done()
            }
            // An alias stands for a value; `*` is never a key we look for.
            Event::Alias(_) if self.node_start(Some("*"), mark).is_some() => self.value_done(),
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                // A collection used as a map key is legal YAML but never a config field: give it an unused path.
                let base = self
                    .node_start(None, mark)
                    .unwrap_or_else(|| vec![Seg::Key("\0".into())]);
                self.stack.push(if matches!(ev, Event::MappingStart(..)) {
                    Frame::Map {
                        base,
                        key: None,
                        expect_key: true,
                    }
                } else {
                    Frame::Seq { base, next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.value_done();
            }
            _ => {}
        }
    }
}

/// The 1-based line and column where `path` stands in `text` (a key's position for map fields, an item's for
/// list indexes). When the full path does not exist, the deepest existing prefix; `None` when nothing matches or
/// the text is not YAML.
pub fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    let target = parse_path(path)?;
    let mut walker = Walker {
        target,
        stack: Vec::new(),
        found: None,
        best: None,
        pending_item: None,
    };
    // A scan error part-way still leaves what was walked before it usable.
    let _ = Parser::new_from_str(text).load(&mut walker, false);
    walker
        .found
        .or(walker.best.map(|(_, m)| m))
        .map(|m| (m.line(), m.col() + 1))
}

#[cfg(test)]
mod tests {
    use super::locate;

    const TEXT: &str = "region: x\nchecks:\n  - name: a\n    timeout: 5s\n  - name: b\n    assert:\n      - status: 200\n      - {json: \"$.x\", equals: 1}\n";

    #[test]
    fn finds_keys_and_items() {
        assert_eq!(locate(TEXT, "region"), Some((1, 1)));
        assert_eq!(locate(TEXT, "checks[1]"), Some((5, 5)));
        assert_eq!(locate(TEXT, "checks[1].name"), Some((5, 5)));
        assert_eq!(locate(TEXT, "checks[0].timeout"), Some((4, 5)));
        assert_eq!(locate(TEXT, "checks[1].assert[1].equals"), Some((8, 23)));
    }

    #[test]
    fn falls_back_to_deepest_prefix() {
        assert_eq!(locate(TEXT, "checks[1].nope"), Some((5, 5)));
        assert_eq!(locate(TEXT, "nothing"), None);
        assert_eq!(locate("a: [unclosed", "a"), Some((1, 1)));
    }
}

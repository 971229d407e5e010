//! Route patterns as configured per site (`/blog/:slug`, `/docs/*`): parsed once when the config loads.

/// A configured route pattern such as `/blog/:slug` or `/docs/*`; when a path matches, the pattern is the route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    text: String,
    segments: Vec<PatSeg>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PatSeg {
    Literal(String),
    Param,
    /// `*` as the last segment: matches the rest (one or more segments).
    Rest,
}

impl RoutePattern {
    pub fn parse(s: &str) -> Result<Self, String> {
        if !s.starts_with('/') {
            return Err(format!("route pattern `{s}` must start with /"));
        }
        let parts: Vec<&str> = split_path(s).collect();
        let mut segments = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            segments.push(if *p == "*" {
                if i + 1 != parts.len() {
                    return Err(format!(
                        "route pattern `{s}`: * may only be the last segment"
                    ));
                }
                PatSeg::Rest
            } else if p.starts_with(':') && p.len() > 1 {
                PatSeg::Param
            } else if p.contains('*') || p.contains(':') {
                return Err(format!(
                    "route pattern `{s}`: use :name for one segment or a final *"
                ));
            } else {
                PatSeg::Literal(p.to_string())
            });
        }
        Ok(Self {
            text: s.to_string(),
            segments,
        })
    }

    /// The pattern as written, which is the route of every path it matches.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether a path, split into its segments, matches.
    pub fn matches(&self, parts: &[&str]) -> bool {
        let mut i = 0;
        for seg in &self.segments {
            match seg {
                PatSeg::Rest => return parts.len() > i,
                PatSeg::Param => {
                    if i >= parts.len() {
                        return false;
                    }
                }
                PatSeg::Literal(l) => {
                    if parts.get(i) != Some(&l.as_str()) {
                        return false;
                    }
                }
            }
            i += 1;
        }
        i == parts.len()
    }
}

/// The non-empty segments of a path.
pub fn split_path(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse_strictly() {
        assert!(RoutePattern::parse("/blog/:slug").is_ok());
        assert!(RoutePattern::parse("/docs/*").is_ok());
        assert!(RoutePattern::parse("blog").is_err());
        assert!(RoutePattern::parse("/a/*/b").is_err());
        assert!(RoutePattern::parse("/a/b*").is_err());
        assert!(RoutePattern::parse("/a/x:y").is_err());
    }

    #[test]
    fn patterns_match_segments() {
        let p = |s| RoutePattern::parse(s).unwrap();
        let parts = |s| split_path(s).collect::<Vec<_>>();
        assert!(p("/blog/:slug").matches(&parts("/blog/summer-sale")));
        assert!(!p("/blog/:slug").matches(&parts("/blog")));
        assert!(!p("/blog/:slug").matches(&parts("/blog/a/b")));
        assert!(p("/docs/*").matches(&parts("/docs/a/b/c")));
        assert!(!p("/docs/*").matches(&parts("/docs")));
        assert_eq!(p("/docs/*").as_str(), "/docs/*");
    }
}

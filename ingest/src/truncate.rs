//! Cutting untrusted text to a byte budget before it is echoed in an error, used as a name or stored.

/// The longest prefix of `s` that fits in `max_bytes` and ends on a character boundary (never splits a
/// UTF-8 sequence, so never panics).
pub fn truncate(s: &str, max_bytes: usize) -> String {
    if s.len() <= max_bytes {
        return s.to_string();
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn fits_are_kept_whole() {
        assert_eq!(truncate("", 0), "");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abc", 64), "abc");
    }

    #[test]
    fn cuts_at_the_budget_in_bytes() {
        assert_eq!(truncate("abcdef", 4), "abcd");
        assert_eq!(truncate("abc", 0), "");
    }

    #[test]
    fn never_splits_a_character() {
        // `é` is 2 bytes, `😀` is 4: a budget inside either stops before it.
        assert_eq!(truncate("caf\u{e9}s", 4), "caf");
        assert_eq!(truncate("caf\u{e9}s", 5), "caf\u{e9}");
        for n in 0..=8 {
            let t = truncate("a\u{1f600}b\u{e9}", n);
            assert!(t.len() <= n, "{n}: {t:?}");
            assert!("a\u{1f600}b\u{e9}".starts_with(&t));
        }
        assert_eq!(truncate("a\u{1f600}b", 4), "a");
        assert_eq!(truncate("a\u{1f600}b", 5), "a\u{1f600}");
    }
}

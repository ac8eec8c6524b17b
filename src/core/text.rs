//! Byte-level searches for ASCII needles (issue 15): `str::contains(char)` and `&str`
//! patterns bring std's two-way `StrSearcher` (~2 KB of the .wasm) for non-ASCII needles,
//! which we never search for.

/// Whether `s` contains the ASCII byte `b`.
pub(crate) fn has(s: &str, b: u8) -> bool {
    s.as_bytes().contains(&b)
}

/// The byte offset of the first `needle` (a short ASCII string) in `s`.
pub(crate) fn find(s: &str, needle: &[u8]) -> Option<usize> {
    let h = s.as_bytes();
    (0..(h.len() + 1).saturating_sub(needle.len())).find(|&i| h[i..].starts_with(needle))
}

/// `s` split around its last `b` (ASCII), like `str::rsplit_once(char)`.
pub(crate) fn rsplit_once(s: &str, b: u8) -> Option<(&str, &str)> {
    let at = s.as_bytes().iter().rposition(|&c| c == b)?;
    Some((&s[..at], &s[at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_like_str_find() {
        for hay in [
            "", "a", "..", "a..b", "http://x", "é..", "x:/", "://", "a.b.c",
        ] {
            for needle in ["..", "://", "a", "", "é"] {
                assert_eq!(
                    find(hay, needle.as_bytes()),
                    hay.find(needle),
                    "{hay} {needle}"
                );
            }
            for b in [b'.', b'?', b'a', b'\0', b':'] {
                assert_eq!(has(hay, b), hay.contains(char::from(b)), "{hay} {b}");
                assert_eq!(rsplit_once(hay, b), hay.rsplit_once(char::from(b)));
            }
        }
    }
}

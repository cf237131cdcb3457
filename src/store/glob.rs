//! SQLite's `GLOB`, for filters applied outside the store (`exchanges FILE --host`)
//! that must mean what the same filter means on the store (`x.host GLOB ?`): `*` any
//! run of characters, `?` one character, `[...]` one of a set (`a-z` ranges, `^`
//! first to negate, `]` first to include it), everything else itself, case-sensitive,
//! no escape character. A set without its `]` matches nothing, as in SQLite.
//!
//! Every token but `*` matches exactly one character, so the match keeps only the
//! last `*` to go back to: time in O(pattern × text), whatever the pattern.

/// One element of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Star,
    Any,
    Char(char),
    /// Inclusive ranges (a single character is a range of one); negated with `^`.
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// An unterminated set: nothing matches.
    Never,
}

/// A compiled `GLOB` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
}

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' => Token::Star,
                '?' => Token::Any,
                '[' => set(&mut chars),
                c => Token::Char(c),
            });
        }
        Glob { tokens }
    }

    /// True when the whole of `text` matches the pattern.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let tokens = &self.tokens;
        let (mut t, mut p) = (0, 0);
        // The last `*` seen and the text position it is tried from.
        let mut back: Option<(usize, usize)> = None;
        loop {
            if p < tokens.len() {
                match &tokens[p] {
                    Token::Star => {
                        back = Some((p, t));
                        p += 1;
                        continue;
                    }
                    one if t < text.len() && matches_one(one, text[t]) => {
                        p += 1;
                        t += 1;
                        continue;
                    }
                    _ => {}
                }
            } else if t == text.len() {
                return true;
            }
            // A mismatch: the last `*` takes one more character, if there is one.
            match back {
                Some((star, from)) if from < text.len() => {
                    back = Some((star, from + 1));
                    p = star + 1;
                    t = from + 1;
                }
                _ => return false,
            }
        }
    }
}

/// The set after a `[`, as SQLite's `patternCompare` reads it: `^` first negates,
/// a `]` first (after any `^`) is a member, `x-y` is a range after a member and
/// before a character that is not the closing `]`.
fn set(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Token {
    let mut negated = false;
    let mut ranges = Vec::new();
    let mut next = chars.next();
    if next == Some('^') {
        negated = true;
        next = chars.next();
    }
    if next == Some(']') {
        ranges.push((']', ']'));
        next = chars.next();
    }
    // The member before, which a `-` may start a range from (none right after one).
    let mut prior: Option<char> = None;
    loop {
        match next {
            None => return Token::Never,
            Some(']') => return Token::Set { negated, ranges },
            Some('-') if prior.is_some() && chars.peek().is_some_and(|&c| c != ']') => {
                let (Some(low), Some(high)) = (prior, chars.next()) else {
                    return Token::Never;
                };
                // The low end stays a member of its own (as in SQLite, where
                // `[c-a]` matches `c`).
                ranges.push((low, high));
                prior = None;
            }
            Some(c) => {
                ranges.push((c, c));
                prior = Some(c);
            }
        }
        next = chars.next();
    }
}

fn matches_one(token: &Token, c: char) -> bool {
    match token {
        Token::Any => true,
        Token::Char(want) => *want == c,
        Token::Set { negated, ranges } => {
            ranges.iter().any(|&(low, high)| low <= c && c <= high) != *negated
        }
        Token::Star | Token::Never => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn host_patterns_match_as_expected() {
        let m = |p: &str, t: &str| Glob::new(p).matches(t);
        assert!(m("*.example.com", "api.example.com"));
        assert!(!m("*.example.com", "example.com"));
        assert!(m("*example.com", "example.com"));
        assert!(!m("*.example.com", "api.example.com.evil"));
        assert!(m("ads?.example", "ads1.example"));
        assert!(m("[a-c]*", "b.example"));
        assert!(!m("[^a-c]*", "b.example"));
        assert!(m("[]]", "]"));
        assert!(m("[a-]", "-"));
        assert!(m("[c-a]", "c") && !m("[c-a]", "b"));
        assert!(!m("[a-", "a"), "an unterminated set matches nothing");
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("*", ""));
        assert!(!m("A*", "a"), "case-sensitive");
    }

    /// SQLite's own GLOB, the meaning the store gives the same filter.
    fn sqlite_glob(conn: &rusqlite::Connection, pattern: &str, text: &str) -> bool {
        conn.query_row("SELECT ?1 GLOB ?2", (text, pattern), |r| r.get(0))
            .unwrap()
    }

    proptest! {
        /// Agrees with SQLite on patterns and texts made of the characters that
        /// mean something to GLOB, and a few that do not.
        #[test]
        fn agrees_with_sqlite(
            pattern in "[ab.*?\\[\\]^-]{0,8}",
            text in "[ab.\\]^-]{0,6}",
        ) {
            let conn = rusqlite::Connection::open_in_memory().unwrap();
            prop_assert_eq!(
                Glob::new(&pattern).matches(&text),
                sqlite_glob(&conn, &pattern, &text),
                "pattern {:?} text {:?}", pattern, text
            );
        }
    }
}

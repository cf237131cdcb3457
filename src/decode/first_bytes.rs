//! The bytes a list of field names can start with, in either ASCII case: a field no
//! name of the list can match is ruled out by one look-up before the list's
//! case-insensitive comparisons (most fields of a request: `adid`, `event`, `sid`).

/// Which bytes start a name of some list; built in a `const` with [`FirstBytes::with`].
pub(crate) struct FirstBytes([bool; 256]);

impl FirstBytes {
    /// No name yet.
    pub(crate) const NONE: FirstBytes = FirstBytes([false; 256]);

    /// `self` with `name`'s first byte added, in both cases.
    pub(crate) const fn with(mut self, name: &str) -> FirstBytes {
        if let Some(&b) = name.as_bytes().first() {
            self.0[b.to_ascii_lowercase() as usize] = true;
            self.0[b.to_ascii_uppercase() as usize] = true;
        }
        self
    }

    /// Whether `name` may equal one of the names, ASCII case-insensitively: `false`
    /// only when none of them starts with its first byte (an empty `name` included).
    #[inline]
    pub(crate) fn may_start(&self, name: &str) -> bool {
        name.as_bytes()
            .first()
            .is_some_and(|&b| self.0[usize::from(b)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_in_either_case_and_nothing_else() {
        const T: FirstBytes = FirstBytes::NONE.with("Lat").with("").with("gdpr");
        for name in ["lat", "LAT", "latitude", "GDPR", "gdpr_consent"] {
            assert!(T.may_start(name), "{name}");
        }
        for name in ["", "adid", "1lat", "\u{e9}t\u{e9}", "$.lat"] {
            assert!(!T.may_start(name), "{name}");
        }
    }
}

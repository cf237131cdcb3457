//! IAB US Privacy (CCPA) string, version 1: four characters, `1YNN`.
//!
//! Position 1 is the version, then notice given, opted out of sale and covered by the
//! LSPA, each `Y`, `N` or `-` (not applicable). Lower case is accepted because apps
//! send it, though the spec only defines upper case. The same string is GPP section 6
//! (`uspv1`, see [`super::gpp`]). Signal extraction reads [`UsPrivacy::opted_out`].

use serde::Serialize;

use super::bits::{DecodeError, DecodeErrorKind};

/// One position of a US Privacy string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Flag {
    #[serde(rename = "Y")]
    Yes,
    #[serde(rename = "N")]
    No,
    #[serde(rename = "-")]
    NotApplicable,
}

impl Flag {
    fn parse(c: char) -> Option<Flag> {
        match c {
            'Y' | 'y' => Some(Flag::Yes),
            'N' | 'n' => Some(Flag::No),
            '-' => Some(Flag::NotApplicable),
            _ => None,
        }
    }

    /// `Y`, `N` or `-`.
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::Yes => "Y",
            Flag::No => "N",
            Flag::NotApplicable => "-",
        }
    }
}

/// A decoded US Privacy string; field names follow the IAB spec (`@iabgpp/cmpapi`'s
/// `uspv1` uses `Notice`, `OptOutSale`, `LspaCovered`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsPrivacy {
    /// Always 1.
    pub version: u8,
    /// Explicit notice / opportunity to opt out was given.
    pub notice: Flag,
    /// The user opted out of the sale of personal information.
    pub opt_out_sale: Flag,
    /// The publisher is a signatory to the IAB Limited Service Provider Agreement.
    pub lspa_covered: Flag,
}

impl UsPrivacy {
    /// Parses `1YNN`-style strings (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<UsPrivacy, DecodeError> {
        let text = text.trim();
        let chars: Vec<(usize, char)> = text.char_indices().take(5).collect();
        if chars.is_empty() {
            return Err(DecodeError::new("version", 0, DecodeErrorKind::Empty));
        }
        let (_, v) = chars[0];
        if v != '1' {
            let reason = match v.to_digit(10) {
                Some(d) => format!("unsupported version {d}"),
                None => format!("{v:?} is not a version digit"),
            };
            return Err(DecodeError::invalid_text("version", 0, reason));
        }
        const NAMES: [&str; 3] = ["notice", "optOutSale", "lspaCovered"];
        let mut flags = [Flag::NotApplicable; 3];
        for (i, name) in NAMES.iter().enumerate() {
            let Some(&(at, c)) = chars.get(i + 1) else {
                return Err(DecodeError::invalid_text(
                    *name,
                    text.len(),
                    "string ends early (a US Privacy string has 4 characters)",
                ));
            };
            flags[i] = Flag::parse(c).ok_or_else(|| {
                DecodeError::invalid_text(*name, at, format!("{c:?} is not Y, N or -"))
            })?;
        }
        if let Some(&(at, _)) = chars.get(4) {
            return Err(DecodeError::invalid_text(
                "string",
                at,
                "extra characters after the 4 of a US Privacy string",
            ));
        }
        Ok(UsPrivacy {
            version: 1,
            notice: flags[0],
            opt_out_sale: flags[1],
            lspa_covered: flags[2],
        })
    }

    /// The user opted out of sale (`Y` in the third position).
    pub fn opted_out(&self) -> bool {
        self.opt_out_sale == Flag::Yes
    }

    /// CCPA does not apply (`1---`).
    pub fn not_applicable(&self) -> bool {
        [self.notice, self.opt_out_sale, self.lspa_covered]
            .iter()
            .all(|f| *f == Flag::NotApplicable)
    }

    /// The canonical four-character form.
    pub fn encode(&self) -> String {
        format!(
            "1{}{}{}",
            self.notice.as_str(),
            self.opt_out_sale.as_str(),
            self.lspa_covered.as_str()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spec_examples() {
        // The IAB spec's three examples.
        let u = UsPrivacy::parse("1YNN").unwrap();
        assert_eq!(
            (u.notice, u.opt_out_sale, u.lspa_covered),
            (Flag::Yes, Flag::No, Flag::No)
        );
        assert!(!u.opted_out());
        let u = UsPrivacy::parse("1NYN").unwrap();
        assert!(u.opted_out());
        let u = UsPrivacy::parse("1-Y-").unwrap();
        assert_eq!(u.notice, Flag::NotApplicable);
        assert!(u.opted_out());
        assert!(UsPrivacy::parse("1---").unwrap().not_applicable());
        assert!(!UsPrivacy::parse("1-Y-").unwrap().not_applicable());
    }

    #[test]
    fn lower_case_is_read() {
        assert!(UsPrivacy::parse("1nyn").unwrap().opted_out());
    }

    #[test]
    fn bad_strings_name_field_and_offset() {
        let e = UsPrivacy::parse("2YNN").unwrap_err();
        assert_eq!(e.to_string(), "version at char 0: unsupported version 2");
        let e = UsPrivacy::parse("1YXN").unwrap_err();
        assert_eq!((e.field.as_str(), e.offset), ("optOutSale", 2));
        let e = UsPrivacy::parse("1Y").unwrap_err();
        assert_eq!(e.field, "optOutSale");
        for bad in ["", "Z", "1", "1A", "1YNNN", "ZYN-", "\u{1F600}YNN"] {
            assert!(UsPrivacy::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn json_uses_spec_names() {
        let j = serde_json::to_value(UsPrivacy::parse("1YN-").unwrap()).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"version": 1, "notice": "Y", "optOutSale": "N", "lspaCovered": "-"})
        );
    }

    proptest! {
        #[test]
        fn valid_strings_round_trip(s in "1[YN-][YN-][YN-]") {
            prop_assert_eq!(UsPrivacy::parse(&s).unwrap().encode(), s);
        }

        #[test]
        fn random_strings_never_panic(s in "\\PC{0,8}") {
            let _ = UsPrivacy::parse(&s);
        }
    }
}

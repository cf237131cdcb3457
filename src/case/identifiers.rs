//! Shape checks for device identifiers in the case file: a wrong value here would
//! silently find nothing in traffic, so it is better refused with a reason.

use super::{IdentifierKind, IdentifierValue};
use crate::checksum::{luhn_valid, resident_id_valid};

/// Checks `value` for `kind` and returns it in canonical form, or the reason it is wrong.
pub fn validate_identifier(
    kind: &IdentifierKind,
    value: &toml::Value,
) -> Result<IdentifierValue, String> {
    if *kind == IdentifierKind::Location {
        return location(value);
    }
    let Some(raw) = value.as_str() else {
        return Err(format!("{kind} is a string"));
    };
    let text = raw.trim();
    if text.is_empty() {
        return Err(format!("{kind} is empty"));
    }
    let digits_only = text.bytes().all(|b| b.is_ascii_digit());
    let ok = match kind {
        IdentifierKind::AdvertisingId | IdentifierKind::Idfa | IdentifierKind::Idfv => {
            is_uuid(text)
                .then_some(())
                .ok_or("expected a UUID like 38400000-8cf0-11bd-b23e-10b96e40000d")
        }
        IdentifierKind::Oaid => (is_uuid(text) || is_hex_len(text, 16..=64))
            .then_some(())
            .ok_or("expected a UUID or 16–64 hex digits"),
        IdentifierKind::AndroidId => is_hex_len(text, 8..=16)
            .then_some(())
            .ok_or("expected 8–16 hex digits like 9774d56d682e549c"),
        IdentifierKind::Imei => {
            if !(digits_only && text.len() == 15) {
                Err("expected 15 digits")
            } else if !luhn_valid(text.as_bytes()) {
                Err("IMEI fails the Luhn check (last digit)")
            } else {
                Ok(())
            }
        }
        IdentifierKind::Meid => is_hex_len(text, 14..=14)
            .then_some(())
            .ok_or("expected 14 hex digits"),
        IdentifierKind::Imsi => (digits_only && (14..=15).contains(&text.len()))
            .then_some(())
            .ok_or("expected 14–15 digits"),
        IdentifierKind::Iccid => {
            let body = text.strip_suffix(['F', 'f']).unwrap_or(text);
            (body.bytes().all(|b| b.is_ascii_digit()) && (18..=22).contains(&body.len()))
                .then_some(())
                .ok_or("expected 18–22 digits")
        }
        IdentifierKind::Mac | IdentifierKind::Bssid => parse_mac(text)
            .map(|_| ())
            .ok_or("expected six octets like 02:00:00:44:55:66"),
        IdentifierKind::Phone => {
            let digits = text.strip_prefix('+').unwrap_or("");
            (!digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && (8..=15).contains(&digits.len()))
            .then_some(())
            .ok_or("expected E.164 form: '+', country code and number, e.g. +8613800138000")
        }
        IdentifierKind::Email => {
            let ok = text.split_once('@').is_some_and(|(l, d)| {
                !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
            }) && !text.contains(char::is_whitespace);
            ok.then_some(()).ok_or("expected an e-mail address")
        }
        IdentifierKind::ResidentId => resident_id_valid(text.as_bytes())
            .then_some(())
            .ok_or("expected 18 characters with a valid GB 11643 check character"),
        IdentifierKind::BankCard => {
            if !(digits_only && (12..=19).contains(&text.len())) {
                Err("expected 12–19 digits")
            } else if !luhn_valid(text.as_bytes()) {
                Err("bank card number fails the Luhn check")
            } else {
                Ok(())
            }
        }
        IdentifierKind::Serial
        | IdentifierKind::Ssid
        | IdentifierKind::Name
        | IdentifierKind::Location
        | IdentifierKind::Custom(_) => Ok(()),
    };
    ok.map(|()| IdentifierValue::Text(text.to_string()))
        .map_err(|m| format!("{m}, got {raw:?}"))
}

fn location(value: &toml::Value) -> Result<IdentifierValue, String> {
    let shape = "location is a table: location = { lat = 31.230416, lon = 121.473701 }";
    let table = value.as_table().ok_or(shape)?;
    let coord = |name: &str| -> Result<f64, String> {
        match table.get(name) {
            Some(toml::Value::Float(f)) => Ok(*f),
            Some(toml::Value::Integer(i)) => Ok(*i as f64),
            _ => Err(shape.to_string()),
        }
    };
    if let Some(extra) = table.keys().find(|k| *k != "lat" && *k != "lon") {
        return Err(format!("unknown key {extra:?} in location; {shape}"));
    }
    let (lat, lon) = (coord("lat")?, coord("lon")?);
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(format!(
            "lat must be within ±90 and lon within ±180, got {lat}, {lon}"
        ));
    }
    Ok(IdentifierValue::Location { lat, lon })
}

/// The six octets of a MAC address written with `:`, `-`, `.` (Cisco) or nothing.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let hex: String = text
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    let separated = hex.len() != text.len();
    if hex.len() != 12 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    if separated {
        // Every group must have an even number of digits: rejects "2:00:00:44:55:666".
        let groups_ok = text
            .split([':', '-', '.'])
            .all(|g| !g.is_empty() && g.len() % 2 == 0);
        if !groups_ok {
            return None;
        }
    }
    let mut out = [0u8; 6];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn is_uuid(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

fn is_hex_len(text: &str, len: std::ops::RangeInclusive<usize>) -> bool {
    len.contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: IdentifierKind, v: &str) -> Result<IdentifierValue, String> {
        validate_identifier(&kind, &toml::Value::String(v.into()))
    }

    #[test]
    fn accepts_good_values() {
        for (k, v) in [
            (
                IdentifierKind::AdvertisingId,
                "38400000-8cf0-11bd-b23e-10b96e40000d",
            ),
            (IdentifierKind::AndroidId, "9774d56d682e549c"),
            (IdentifierKind::Imei, "490154203237518"),
            (IdentifierKind::Mac, "02-00-00-44-55-66"),
            (IdentifierKind::Mac, "0200.0044.5566"),
            (IdentifierKind::Phone, "+8613800138000"),
            (IdentifierKind::Email, "tester@example.org"),
            (IdentifierKind::ResidentId, "11010519491231002X"),
            (IdentifierKind::BankCard, "6222020200112233446"),
            (IdentifierKind::Iccid, "89860012345678901234"),
        ] {
            assert!(
                check(k.clone(), v).is_ok(),
                "{k} {v}: {:?}",
                check(k.clone(), v)
            );
        }
    }

    #[test]
    fn rejects_wrong_shapes() {
        for (k, v) in [
            (IdentifierKind::AdvertisingId, "38400000-8cf0-11bd-b23e"),
            (IdentifierKind::Imei, "49015420323751"),
            (IdentifierKind::Mac, "02:00:00:44:55"),
            (IdentifierKind::Mac, "2:00:00:44:55:666"),
            (IdentifierKind::Phone, "13800138000"),
            (IdentifierKind::Email, "tester.example.org"),
            (IdentifierKind::ResidentId, "110105194912310021"),
            (IdentifierKind::BankCard, "6222020200112233447"),
        ] {
            assert!(check(k.clone(), v).is_err(), "{k} {v} should be rejected");
        }
        assert!(validate_identifier(&IdentifierKind::Imei, &toml::Value::Integer(1)).is_err());
    }

    #[test]
    fn location_bounds() {
        let t: toml::Value =
            toml::from_str::<toml::Table>("l = { lat = 91.0, lon = 0 }").unwrap()["l"].clone();
        assert!(validate_identifier(&IdentifierKind::Location, &t).is_err());
    }
}

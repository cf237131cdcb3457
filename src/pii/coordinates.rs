//! Suspected locations (DESIGN.md §3, confidence `pattern`): a latitude and a
//! longitude under the names apps give them (`lat`/`lng`, `latitude`/`longitude`,
//! `ll=31.23,121.47`, …) in one message, found without knowing the device's real
//! position. Known positions are matched exactly by [`super::location`]; this finds
//! the ones the case did not list.

use std::ops::Range;

use memchr::memmem;

use crate::decode::first_bytes::FirstBytes;
use crate::decode::{json, Part};

/// Names of a latitude (ASCII case-insensitive).
const LAT_KEYS: &[&str] = &["lat", "latitude", "gps_lat", "user_lat", "geo_lat", "la"];
/// Names of a longitude.
const LON_KEYS: &[&str] = &[
    "lng",
    "lon",
    "long",
    "longitude",
    "gps_lng",
    "gps_lon",
    "user_lng",
    "geo_lng",
    "lo",
];
/// Names of a `lat,lon` pair in one value.
const PAIR_KEYS: &[&str] = &[
    "ll",
    "latlng",
    "latlon",
    "lat_lng",
    "location",
    "loc",
    "coords",
    "coordinate",
    "gps",
];
/// Fewest decimals of a coordinate worth reporting (≈ 100 m).
const MIN_DECIMALS: usize = 3;

/// Where the latitude of a suspected position is: part index and byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub part: usize,
    pub range: Range<usize>,
}

#[derive(Clone, Copy, PartialEq)]
enum Axis {
    Lat,
    Lon,
}

/// Whether `key` names a latitude or a longitude (ASCII case-insensitive).
pub fn is_axis_key(key: &[u8]) -> bool {
    axis_of(key).is_some()
}

fn axis_of(key: &[u8]) -> Option<Axis> {
    let is = |names: &[&str]| names.iter().any(|n| key.eq_ignore_ascii_case(n.as_bytes()));
    if is(LAT_KEYS) {
        Some(Axis::Lat)
    } else if is(LON_KEYS) {
        Some(Axis::Lon)
    } else {
        None
    }
}

/// A coordinate written with at least [`MIN_DECIMALS`] decimals, within `limit`,
/// not zero.
fn coordinate(text: &[u8], limit: f64) -> bool {
    let t = text.trim_ascii();
    let Some(dot) = t.iter().position(|&b| b == b'.') else {
        return false;
    };
    let decimals = t[dot + 1..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if decimals < MIN_DECIMALS || dot + 1 + decimals != t.len() {
        return false;
    }
    std::str::from_utf8(t)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .is_some_and(|v| v.abs() <= limit && v != 0.0)
}

/// `31.2304,121.4737` (or with `;`/space): the latitude's range within `value`.
fn pair(value: &[u8]) -> Option<Range<usize>> {
    let sep = value
        .iter()
        .position(|&b| matches!(b, b',' | b';' | b' '))?;
    let (lat, lon) = (&value[..sep], value[sep + 1..].trim_ascii_start());
    (coordinate(lat, 90.0) && coordinate(lon, 180.0)).then_some(0..sep)
}

/// The first bytes of [`PAIR_KEYS`], [`LAT_KEYS`] and [`LON_KEYS`], in either case:
/// most fields (`adid`, `event`) are ruled out by one look-up instead of some thirty
/// comparisons.
const KEY_FIRST: FirstBytes = {
    let mut table = FirstBytes::NONE;
    let lists = [PAIR_KEYS, LAT_KEYS, LON_KEYS];
    let mut l = 0;
    while l < lists.len() {
        let mut i = 0;
        while i < lists[l].len() {
            table = table.with(lists[l][i]);
            i += 1;
        }
        l += 1;
    }
    table
};

/// Whether `key` may be a coordinate name (ASCII case-insensitively).
fn may_name_coordinate(key: &str) -> bool {
    KEY_FIRST.may_start(key)
}

/// The first suspected position in `parts`, if a latitude and a longitude both occur.
pub fn find(parts: &[Part<'_>]) -> Option<Hit> {
    let mut lat: Option<Hit> = None;
    let mut lon = false;
    for (pi, part) in parts.iter().enumerate() {
        if let Some((place, key)) = part.place_and_name() {
            if matches!(place, "query" | "form" | "cookie")
                && may_name_coordinate(key)
                && !key.contains('$')
            {
                let key = key.as_bytes();
                if PAIR_KEYS
                    .iter()
                    .any(|n| key.eq_ignore_ascii_case(n.as_bytes()))
                {
                    if let Some(range) = pair(&part.data) {
                        return Some(Hit { part: pi, range });
                    }
                }
                match axis_of(key) {
                    Some(Axis::Lat) if lat.is_none() && coordinate(&part.data, 90.0) => {
                        lat = Some(Hit {
                            part: pi,
                            range: 0..part.data.len(),
                        })
                    }
                    Some(Axis::Lon) if coordinate(&part.data, 180.0) => lon = true,
                    _ => {}
                }
            }
        }
        // The index is built only for texts that name a coordinate key. The decoder's
        // walk noted whether any value sits under one: if none does, nothing below
        // could match, and the text need not be searched.
        let named = part
            .json
            .as_ref()
            .map(|j| j.names_coordinate_key() != Some(false) && mentions_coordinates(&part.data));
        let index = if named == Some(true) {
            part.json_index()
        } else {
            None
        };
        if let Some(index) = index {
            for v in index.values() {
                let Some(key) = json::key_before(&part.data, v.range.start) else {
                    continue;
                };
                let Some(text) = part.data.get(v.range.clone()) else {
                    continue;
                };
                match axis_of(key) {
                    Some(Axis::Lat) if lat.is_none() && coordinate(text, 90.0) => {
                        lat = Some(Hit {
                            part: pi,
                            range: v.range.clone(),
                        })
                    }
                    Some(Axis::Lon) if coordinate(text, 180.0) => lon = true,
                    _ => {}
                }
            }
        }
        if lon && lat.is_some() {
            return lat;
        }
    }
    None
}

/// Whether a JSON text may hold coordinate keys: `"la…` and `"lo…`/`"ln…` (cheap
/// prefilter, so ordinary bodies are not walked value by value).
fn mentions_coordinates(json: &[u8]) -> bool {
    let has = |needle: &[u8]| memmem::find(json, needle).is_some();
    has(b"\"la") && (has(b"\"lo") || has(b"\"ln"))
        || memmem::find(json, b"\"gps_").is_some()
        || memmem::find(json, b"\"user_l").is_some()
        || memmem::find(json, b"\"geo_l").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{request_parts, Limits};
    use crate::exchange::{Exchange, Header, SourceKind};
    use crate::timestamp::Timestamp;

    /// The first-byte screen never rules out a coordinate name (every name in lower,
    /// upper and mixed case passes) and does rule out others.
    #[test]
    fn first_byte_screen_keeps_every_coordinate_name() {
        for n in PAIR_KEYS.iter().chain(LAT_KEYS).chain(LON_KEYS) {
            let mut mixed = n.to_string();
            mixed[..1].make_ascii_uppercase();
            for v in [n.to_string(), n.to_ascii_uppercase(), mixed] {
                assert!(may_name_coordinate(&v), "{v}");
            }
        }
        for name in ["adid", "event", "", "$.lat", "1lat"] {
            assert!(!may_name_coordinate(name), "{name}");
        }
    }

    fn hit(path: &str, body: &str) -> Option<String> {
        let mut x = Exchange::new("x", SourceKind::Har, Timestamp(0));
        x.host = "h.example".into();
        x.path = path.into();
        if !body.is_empty() {
            x.request_headers
                .push(Header::new("Content-Type", "application/json"));
            x.request_body = body.as_bytes().to_vec();
        }
        let parts = request_parts(&x, &Limits::default(), &mut Vec::new());
        find(&parts).map(|h| parts[h.part].location_at(h.range))
    }

    #[test]
    fn finds_pairs_under_their_names() {
        assert_eq!(
            hit("/p?lat=31.2304&lng=121.4737", "").as_deref(),
            Some("query:lat")
        );
        assert_eq!(hit("/p?ll=31.230,121.473", "").as_deref(), Some("query:ll"));
        assert_eq!(
            hit(
                "/p",
                r#"{"geo":{"latitude":-33.8688,"longitude":151.2093}}"#
            )
            .as_deref(),
            Some("body:$.geo.latitude")
        );
        assert_eq!(
            hit("/p", r#"{"loc":{"lat":"48.8566","lon":"2.3522"}}"#).as_deref(),
            Some("body:$.loc.lat")
        );
    }

    #[test]
    fn ignores_coarse_or_lone_or_invalid_values() {
        assert_eq!(
            hit("/p?lat=31.2&lng=121.4", ""),
            None,
            "one decimal is a city, not a position"
        );
        assert_eq!(hit("/p?lat=31.2304", ""), None, "latitude alone");
        assert_eq!(
            hit("/p?lat=131.2304&lng=121.4737", ""),
            None,
            "out of range"
        );
        assert_eq!(hit("/p?lat=0.000&lng=0.000", ""), None);
        assert_eq!(
            hit("/p", r#"{"last":31.2304,"long_ago":121.4737}"#),
            None,
            "other keys"
        );
        assert_eq!(hit("/p?lat=31.2304x&lng=121.4737", ""), None);
    }
}

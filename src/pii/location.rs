//! Pairing of coordinate hits into location matches.
//!
//! A latitude string alone (`31.230`) is not evidence of a location: many numbers look
//! like one. A location is reported only when a latitude variant AND a longitude
//! variant of the same device location occur in the same `scan` call (one message).
//! The one match reported per location carries the range and part of its latitude hit
//! (the earliest one, the longest at that position), since a match has one range.

use super::variants::Role;

/// One coordinate hit, before pairing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CoordHit {
    /// Global index of the location identifier (device and value).
    pub ident: u32,
    pub part: usize,
    pub start: usize,
    pub end: usize,
    pub lat: bool,
}

/// Whether a hit of a coordinate string at `start..end` stands alone: the byte before
/// must not continue a number (`131.230` is not latitude `31.230`, `-31.230` is the
/// other hemisphere), and an integer form (E6/E7) must not be followed by a digit.
pub fn coordinate_boundary_ok(data: &[u8], start: usize, end: usize, role: Role) -> bool {
    let before_ok = start == 0 || !matches!(data[start - 1], b'0'..=b'9' | b'-' | b'.');
    let after_ok = match role {
        Role::LatInt | Role::LonInt => !data.get(end).is_some_and(u8::is_ascii_digit),
        _ => true,
    };
    before_ok && after_ok
}

/// For each location identifier with both a latitude and a longitude hit, its chosen
/// latitude hit. `hits` is sorted in place; the result is in `ident` order.
pub fn pair(hits: &mut [CoordHit]) -> Vec<CoordHit> {
    // Order: ident, then latitude first, then earliest, then longest.
    hits.sort_unstable_by(|a, b| {
        (a.ident, !a.lat, a.part, a.start, std::cmp::Reverse(a.end)).cmp(&(
            b.ident,
            !b.lat,
            b.part,
            b.start,
            std::cmp::Reverse(b.end),
        ))
    });
    let mut out = Vec::new();
    let mut i = 0;
    while i < hits.len() {
        let ident = hits[i].ident;
        let j = hits[i..]
            .iter()
            .position(|h| h.ident != ident)
            .map_or(hits.len(), |p| i + p);
        let group = &hits[i..j];
        if group[0].lat && group.iter().any(|h| !h.lat) {
            out.push(group[0]);
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(ident: u32, part: usize, start: usize, end: usize, lat: bool) -> CoordHit {
        CoordHit {
            ident,
            part,
            start,
            end,
            lat,
        }
    }

    #[test]
    fn both_coordinates_needed() {
        let mut only_lat = vec![hit(0, 0, 5, 11, true), hit(0, 1, 2, 8, true)];
        assert!(pair(&mut only_lat).is_empty());
        let mut only_lon = vec![hit(0, 0, 5, 12, false)];
        assert!(pair(&mut only_lon).is_empty());
        let mut both = vec![
            hit(1, 0, 20, 27, false),
            hit(1, 1, 0, 6, true),
            hit(1, 0, 9, 15, true),
            hit(1, 0, 9, 17, true),
            hit(2, 0, 30, 36, true),
        ];
        assert_eq!(pair(&mut both), vec![hit(1, 0, 9, 17, true)]);
    }

    #[test]
    fn boundaries() {
        let d = b"x=131.230,y=31.230,z=-31.230,e=312304160,f=3123041601";
        let at = |s: &str| {
            let p = d.windows(s.len()).position(|w| w == s.as_bytes()).unwrap();
            (p, p + s.len())
        };
        let (s, e) = at("131.230");
        assert!(!coordinate_boundary_ok(d, s + 1, e, Role::Lat));
        let (s, e) = at("y=31.230");
        assert!(coordinate_boundary_ok(d, s + 2, e, Role::Lat));
        let (s, e) = at("-31.230");
        assert!(!coordinate_boundary_ok(d, s + 1, e, Role::Lat));
        let (s, e) = at("e=312304160");
        assert!(coordinate_boundary_ok(d, s + 2, e, Role::LatInt));
        let (s, e) = at("f=312304160");
        assert!(!coordinate_boundary_ok(d, s + 2, e, Role::LatInt));
    }
}

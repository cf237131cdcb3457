//! Check digits of identifiers: Luhn (IMEI, bank cards) and ISO 7064 MOD 11-2
//! (GB 11643 resident ids). Used to validate case files and pattern detectors.

/// Luhn check over ASCII digits; false for anything else or fewer than 2 digits.
pub fn luhn_valid(digits: &[u8]) -> bool {
    if digits.len() < 2 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// GB 11643-1999 check character (`0`–`9` or `X`) of the first 17 digits.
pub fn gb11643_check_char(first17: &[u8]) -> Option<u8> {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    if first17.len() != 17 || !first17.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(&b, w)| u32::from(b - b'0') * w)
        .sum();
    CHECK.get((sum % 11) as usize).copied()
}

/// A CN resident id (GB 11643-1999): 17 digits and a valid check character (`x`
/// accepted), a region code starting 1–8, and a birth date that exists between 1900
/// and 2099.
pub fn resident_id_valid(id: &[u8]) -> bool {
    if id.len() != 18 || gb11643_check_char(&id[..17]) != Some(id[17].to_ascii_uppercase()) {
        return false;
    }
    if !(b'1'..=b'8').contains(&id[0]) {
        return false;
    }
    let num = |r: std::ops::Range<usize>| {
        id[r]
            .iter()
            .fold(0u32, |acc, &b| acc * 10 + u32::from(b - b'0'))
    };
    let (year, month, day) = (num(6..10), num(10..12), num(12..14));
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1900..=2099).contains(&year) && (1..=days).contains(&day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn() {
        assert!(luhn_valid(b"490154203237518"));
        assert!(!luhn_valid(b"490154203237517"));
        assert!(luhn_valid(b"4111111111111111"));
        assert!(!luhn_valid(b"41111111111a1111"));
        assert!(!luhn_valid(b""));
    }

    #[test]
    fn resident_id() {
        // The standard's own worked example.
        assert!(resident_id_valid(b"11010519491231002X"));
        assert!(resident_id_valid(b"11010519491231002x"));
        assert!(!resident_id_valid(b"110105194912310021"));
        assert!(!resident_id_valid(b"1101051949123100"));
        // Valid check character but impossible birth date (1949-02-30).
        let mut bad_date = *b"11010519490230002?";
        bad_date[17] = gb11643_check_char(&bad_date[..17]).unwrap();
        assert!(!resident_id_valid(&bad_date));
    }
}

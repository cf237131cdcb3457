//! The walk behind [`strings_noting_keys`], written for what that sink needs and
//! nothing else: no container records, no parent links, no array indices, the limits
//! constants. The open containers are one bit each (object or array), and the key
//! class of the value being read is 0 outside objects, so that it is or-ed in at
//! every value without a test. The generic walk with that sink kept about a dozen
//! values on the stack around every member; this one has fewer to keep.
//!
//! It must end, fail and find exactly as [`walk_stops`] did with the sink it replaces
//! (a value's string and key class passed on as found): the same steps in the same
//! order, byte for byte. The tests in `model.rs` compare it with the model walk on
//! random, damaged and adversarial texts under several limits.

use super::*;

/// The open containers, one bit each (set: an object): the innermost 64 in a
/// register, bit 0 the innermost; each full 64 further out saved in a word.
struct Open {
    top: u64,
    saved: [u64; MAX_JSON_NESTING / 64],
}

impl Open {
    /// Opens level `depth + 1` (`depth` levels are open).
    #[inline(always)]
    fn push(&mut self, depth: usize, object: bool) {
        if depth >= 64 {
            self.save(depth);
        }
        self.top = self.top << 1 | u64::from(object);
    }

    /// Closes the innermost level, leaving `depth` open.
    #[inline(always)]
    fn pop(&mut self, depth: usize) {
        if depth >= 64 {
            self.restore(depth);
        } else {
            self.top >>= 1;
        }
    }

    /// Whether the innermost open container is an object.
    #[inline(always)]
    fn object(&self) -> bool {
        self.top & 1 == 1
    }

    /// Before level `depth + 1` opens, deep in: the register is saved when full.
    #[cold]
    #[inline(never)]
    fn save(&mut self, depth: usize) {
        if depth % 64 == 0 {
            // The mask keeps the index in bounds whatever `depth` is (no panic path).
            self.saved[(depth / 64 - 1) % (MAX_JSON_NESTING / 64)] = self.top;
        }
    }

    /// [`Open::pop`] deep in: the register comes back when its level is reached.
    #[cold]
    #[inline(never)]
    fn restore(&mut self, depth: usize) {
        if depth % 64 == 0 {
            self.top = self.saved[(depth / 64 - 1) % (MAX_JSON_NESTING / 64)];
        } else {
            self.top >>= 1;
        }
    }
}

/// The walk of [`strings_noting_keys`]: `each` string value in text order, and the
/// outcome and the union of `key_class` over the keys that string or number values
/// sit directly under. `MAX_NESTING` is at most [`MAX_JSON_NESTING`] (the size of the
/// container bits; larger is taken as that).
#[inline(never)]
pub(super) fn walk_strings<
    K: Fn(&[u8]) -> u8,
    E: FnMut(StringValue),
    const QUOTES_ONLY: bool,
    const MAX_NESTING: usize,
    const MAX_VALUES: usize,
>(
    data: &[u8],
    stops: &Stops,
    key_class: &K,
    mut each: E,
) -> (Outcome, u8) {
    let len = data.len();
    let max_nesting = MAX_NESTING.min(MAX_JSON_NESTING);
    let max_values = MAX_VALUES;
    let mut open = Open {
        top: 0,
        saved: [0; MAX_JSON_NESTING / 64],
    };
    let mut depth = 0usize;
    let mut seen_value = false;
    let mut values = 0usize;
    // The class of the key of the value about to be read: 0 in arrays and at the
    // top level, so that it can be or-ed in at every value without a test.
    let mut class = 0u8;
    let mut noted = 0u8;
    let mut i = len - strip_bom(data).len();
    let outcome = 'value: loop {
        let Some(b) = token(data, &mut i) else {
            break if depth == 0 && seen_value {
                Outcome::Complete
            } else {
                Outcome::Malformed { at: len }
            };
        };
        match b {
            b'{' | b'[' => {
                if depth >= max_nesting {
                    break Outcome::NestingLimit { at: i };
                }
                let object = b == b'{';
                open.push(depth, object);
                depth += 1;
                i += 1;
                let Some(first) = token(data, &mut i) else {
                    break Outcome::Malformed { at: len };
                };
                if first == if object { b'}' } else { b']' } {
                    // Empty: closed at once, then what follows a value.
                    depth -= 1;
                    open.pop(depth);
                    i += 1;
                } else if object {
                    match key_class_of_member::<K, QUOTES_ONLY>(data, stops, &mut i, key_class) {
                        Ok(c) => class = c,
                        Err(outcome) => break outcome,
                    }
                    continue 'value;
                } else {
                    class = 0;
                    continue 'value;
                }
            }
            b'"' => {
                let Some((end, escaped)) = string_end_as::<QUOTES_ONLY>(data, stops, i + 1) else {
                    break Outcome::Malformed { at: len };
                };
                if values >= max_values {
                    break Outcome::ValueLimit;
                }
                noted |= class;
                each(StringValue {
                    id: values,
                    range: i + 1..end,
                    escaped,
                });
                values += 1;
                i = end + 1;
            }
            b'-' | b'0'..=b'9' => {
                let end = number_end(data, i);
                if end == i + 1 && b == b'-' {
                    break Outcome::Malformed { at: i };
                }
                if values >= max_values {
                    break Outcome::ValueLimit;
                }
                noted |= class;
                values += 1;
                i = end;
            }
            b't' | b'f' | b'n' => match literal_end(data, i) {
                Ok(end) => i = end,
                Err(malformed) => break malformed,
            },
            _ => break Outcome::Malformed { at: i },
        }
        // What follows a value: `,` (then the next member's key, or the next
        // element), or the close of its container (then what follows that).
        loop {
            if depth == 0 {
                // Between top-level values (JSON lines, `1 2`).
                class = 0;
                seen_value = true;
                continue 'value;
            }
            let Some(b) = token(data, &mut i) else {
                break 'value Outcome::Malformed { at: len };
            };
            if b == b',' {
                i += 1;
                if open.object() {
                    match key_class_of_member::<K, QUOTES_ONLY>(data, stops, &mut i, key_class) {
                        Ok(c) => class = c,
                        Err(outcome) => break 'value outcome,
                    }
                } else {
                    class = 0;
                }
                continue 'value;
            }
            if b != if open.object() { b'}' } else { b']' } {
                break 'value Outcome::Malformed { at: i };
            }
            depth -= 1;
            open.pop(depth);
            i += 1;
        }
    };
    (outcome, noted)
}

/// [`member_key`] for [`walk_strings`]: the key's class instead of its span.
#[inline(always)]
fn key_class_of_member<K: Fn(&[u8]) -> u8, const QUOTES_ONLY: bool>(
    data: &[u8],
    stops: &Stops,
    i: &mut usize,
    key_class: &K,
) -> Result<u8, Outcome> {
    let len = data.len();
    match token(data, i) {
        Some(b'"') => {}
        Some(_) => return Err(Outcome::Malformed { at: *i }),
        None => return Err(Outcome::Malformed { at: len }),
    }
    let Some((end, _)) = string_end_as::<QUOTES_ONLY>(data, stops, *i + 1) else {
        return Err(Outcome::Malformed { at: len });
    };
    // Always there (`end` is a stop of `data`); 0 for the impossible rest.
    let class = match data.get(*i + 1..end) {
        Some(raw) => key_class(raw),
        None => 0,
    };
    *i = end + 1;
    match token(data, i) {
        Some(b':') => {
            *i += 1;
            Ok(class)
        }
        Some(_) => Err(Outcome::Malformed { at: *i }),
        None => Err(Outcome::Malformed { at: len }),
    }
}

/// [`next_token`] with the whitespace loop out of line: app JSON is mostly compact,
/// and the loop inlined at each of the walk's eight reads crowded its registers.
#[inline(always)]
fn token(data: &[u8], i: &mut usize) -> Option<u8> {
    let b = *data.get(*i)?;
    if b > b' ' {
        return Some(b);
    }
    // By value: a reference to `i` kept it in memory all through the walk.
    *i = after_whitespace(data, *i);
    data.get(*i).copied()
}

/// The first byte at or after `i` that is no JSON whitespace (`data.len()` if none).
/// Runs of spaces (indentation) are passed eight bytes a step. Not `#[cold]`: in a
/// pretty-printed text it runs before every token.
#[inline(never)]
fn after_whitespace(data: &[u8], mut i: usize) -> usize {
    loop {
        while let Some(word) = data.get(i..i + 8) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(word);
            // Zero bytes where there is a space.
            let other = u64::from_le_bytes(bytes) ^ 0x2020_2020_2020_2020;
            if other != 0 {
                i += (other.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        match data.get(i) {
            Some(b' ' | b'\t' | b'\n' | b'\r') => i += 1,
            _ => return i,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The eight-byte steps over spaces against the byte loop of `next_token`,
        /// with runs of every length and every JSON whitespace byte among others.
        #[test]
        fn after_whitespace_agrees_with_bytewise_reading(
            data in prop::collection::vec(
                prop_oneof![
                    6 => Just(b' '),
                    1 => prop::sample::select(b"\t\n\r\"a{0\x0b\x00\xa0".to_vec()),
                    1 => any::<u8>(),
                ],
                0..40,
            ),
            from in 0usize..42,
        ) {
            let mut naive = from;
            while matches!(data.get(naive), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                naive += 1;
            }
            prop_assert_eq!(after_whitespace(&data, from), naive);
        }
    }
}

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
        if depth.is_multiple_of(64) {
            // The mask keeps the index in bounds whatever `depth` is (no panic path).
            self.saved[(depth / 64 - 1) % (MAX_JSON_NESTING / 64)] = self.top;
        }
    }

    /// [`Open::pop`] deep in: the register comes back when its level is reached.
    #[cold]
    #[inline(never)]
    fn restore(&mut self, depth: usize) {
        if depth.is_multiple_of(64) {
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
    let mut word = StopWord::new();
    let mut i = len - strip_bom(data).len();
    let outcome = 'value: loop {
        let Some(b) = next_token(data, &mut i) else {
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
                let Some(first) = next_token(data, &mut i) else {
                    break Outcome::Malformed { at: len };
                };
                if first == if object { b'}' } else { b']' } {
                    // Empty: closed at once, then what follows a value.
                    depth -= 1;
                    open.pop(depth);
                    i += 1;
                } else if object {
                    match key_class_of_member::<K, QUOTES_ONLY>(
                        data, stops, &mut word, &mut i, key_class,
                    ) {
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
                let Some((end, escaped)) =
                    string_end_at::<QUOTES_ONLY>(data, stops, &mut word, i + 1)
                else {
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
                // Between top-level values (JSON lines, `1 2`, `{…},{…}`).
                class = 0;
                seen_value = true;
                if next_token(data, &mut i) == Some(b',') {
                    i += 1;
                }
                continue 'value;
            }
            let Some(b) = next_token_expecting(data, &mut i, b',') else {
                break 'value Outcome::Malformed { at: len };
            };
            if b == b',' {
                i += 1;
                if open.object() {
                    match key_class_of_member::<K, QUOTES_ONLY>(
                        data, stops, &mut word, &mut i, key_class,
                    ) {
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
    word: &mut StopWord,
    i: &mut usize,
    key_class: &K,
) -> Result<u8, Outcome> {
    let len = data.len();
    match next_token_expecting(data, i, b'"') {
        Some(b'"') => {}
        Some(_) => return Err(Outcome::Malformed { at: *i }),
        None => return Err(Outcome::Malformed { at: len }),
    }
    let Some((end, _)) = string_end_at::<QUOTES_ONLY>(data, stops, word, *i + 1) else {
        return Err(Outcome::Malformed { at: len });
    };
    // Always there (`end` is a stop of `data` past the quote); 0 for the impossible
    // rest. Cut from the text after the quote (in bounds: the quote was read), then
    // to the key's length: one bounds check where the range took two and a merge.
    let raw = data
        .get(*i + 1..)
        .and_then(|rest| rest.get(..end.wrapping_sub(*i + 1)));
    let class = raw.map_or(0, key_class);
    *i = end + 1;
    match next_token_expecting(data, i, b':') {
        Some(b':') => {
            *i += 1;
            Ok(class)
        }
        Some(_) => Err(Outcome::Malformed { at: *i }),
        None => Err(Outcome::Malformed { at: len }),
    }
}

/// [`next_token`] where the grammar expects `expected` next: that byte, right at
/// `*i` (compact JSON), is settled by one compare instead of a whitespace test and
/// then a compare; anything else is read as `next_token` reads it.
#[inline(always)]
fn next_token_expecting(data: &[u8], i: &mut usize, expected: u8) -> Option<u8> {
    match data.get(*i) {
        Some(&b) if b == expected => Some(b),
        _ => next_token(data, i),
    }
}

/// [`string_end_as`] with the stop word at hand.
#[inline(always)]
fn string_end_at<const QUOTES_ONLY: bool>(
    data: &[u8],
    stops: &Stops,
    word: &mut StopWord,
    from: usize,
) -> Option<(usize, bool)> {
    string_end_by::<QUOTES_ONLY>(data, |at| word.next(stops, at), from)
}

/// The word of the stop bitmap read last, and its index. App JSON is made of short
/// strings, so the next string mostly ends in the same 64 bytes as the one before:
/// its word is then at hand. Loaded afresh, it was a step on the walk's chain of
/// dependent steps (its address waits on where the token before ended).
struct StopWord {
    /// The index of `bits` among the words; `usize::MAX` (no index) before the first.
    at: usize,
    /// `stops.words[at]`, always.
    bits: u64,
}

impl StopWord {
    fn new() -> StopWord {
        StopWord {
            at: usize::MAX,
            bits: 0,
        }
    }

    /// [`Stops::next`]: the first `"` or `\` at or after `from`.
    #[inline(always)]
    fn next(&mut self, stops: &Stops, from: usize) -> Option<usize> {
        let w = from / 64;
        if w != self.at {
            self.bits = *stops.words.get(w)?;
            self.at = w;
        }
        let ahead = self.bits >> (from % 64);
        if ahead != 0 {
            return Some(from + ahead.trailing_zeros() as usize);
        }
        self.past(stops, w)
    }

    /// The first stop in a word after word `w`, whose word is then kept.
    #[inline(never)]
    fn past(&mut self, stops: &Stops, w: usize) -> Option<usize> {
        let (w, bits) = stops.word_after(w)?;
        self.at = w;
        self.bits = bits;
        Some(w * 64 + bits.trailing_zeros() as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The stop word at hand answers as the bitmap does, whatever the order of
        /// the questions: forward in small and large steps, back, the same again,
        /// across words and past the end.
        #[test]
        fn stop_word_agrees_with_stops(
            data in prop::collection::vec(prop::sample::select(vec![b'"', b'\\', b'a']), 0..400),
            froms in prop::collection::vec(
                prop_oneof![3 => 0usize..4, 1 => 0usize..70, 1 => 0usize..420],
                0..40,
            ),
            forward in any::<bool>(),
        ) {
            let stops = Stops::new(&data);
            let mut word = StopWord::new();
            let mut from = 0;
            for step in froms {
                // Forward: as the walk asks (each step past the last); else anywhere.
                from = if forward { from + step } else { step };
                prop_assert_eq!(word.next(&stops, from), stops.next(from), "from {}", from);
            }
        }
    }
}

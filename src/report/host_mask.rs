//! Host names as the lines and documents a person reads show them (the live
//! sources' finding lines, anomaly lines and notices, the tables of `analyze` and
//! `findings`, the case report): a name that itself carries personal data (a DNS
//! query for `<advertising id>.b.sdk.example`, a TLS server name or `Host` built
//! from an identifier) is shown with the labels that carry it masked,
//! `•••.b.sdk.example`, unless `--reveal`. The findings and exchanges written out
//! keep the name whole: they are the evidence; a terminal or a log collector is not.
//!
//! Which labels carry the data is decided by the case's own search ([`DataProbe`]),
//! not by the look of a label: the longest tail of the name in which it finds
//! nothing is kept (found by bisection: a hostile name costs a few searches),
//! everything left of it masked. A name is searched whatever the analysis found in
//! its exchange: a tunnel is named by the name a DNS answer gave its address, which
//! its own exchange never searches.

use std::borrow::Cow;
use std::collections::HashMap;

use super::model::MASK;
use crate::net::tap::{DataProbe, ProbeFn};

/// How the lines of one run show host names (see the module): each name is searched
/// once and shown the same way in every line; as it is with `--reveal`.
pub struct HostMask {
    /// The case's search; none with `--reveal`.
    carries: Option<DataProbe>,
    /// Each name searched so far, with how it is shown when masked.
    seen: HashMap<String, Option<String>>,
}

/// Names remembered by [`HostMask`] before it starts again: hostile traffic may
/// name a host per request (each at most [`MAX_NAME_BYTES`]: a few MB in all).
const MAX_HOSTS_REMEMBERED: usize = 4096;

impl HostMask {
    pub fn new(carries: DataProbe, reveal: bool) -> HostMask {
        HostMask {
            carries: (!reveal).then_some(carries),
            seen: HashMap::new(),
        }
    }

    /// `host` as [`shown_host`] shows it (as it is with `--reveal`).
    pub fn show<'h>(&mut self, host: &'h str) -> Cow<'h, str> {
        let Some(carries) = &self.carries else {
            return Cow::Borrowed(host);
        };
        if let Some(shown) = self.seen.get(host) {
            return shown
                .as_deref()
                .map_or(Cow::Borrowed(host), |s| Cow::Owned(s.to_string()));
        }
        let shown = shown_host(host, &*carries.0);
        // A longer "name" costs one search; remembering it could cost megabytes.
        if host.len() > MAX_NAME_BYTES {
            return shown;
        }
        if self.seen.len() >= MAX_HOSTS_REMEMBERED {
            self.seen.clear();
        }
        let masked = (*shown != *host).then(|| shown.to_string());
        self.seen.insert(host.to_string(), masked);
        shown
    }

    /// `text` as [`masked_text`] shows it (as it is with `--reveal`).
    pub fn mask_text<'t>(&self, text: &'t str) -> Cow<'t, str> {
        match &self.carries {
            Some(carries) => masked_text(text, &*carries.0),
            None => Cow::Borrowed(text),
        }
    }
}

/// Longest name searched label by label: a DNS name's most in text (RFC 1035). A
/// longer "host" (an HTTP `Host` may be any length) that carries data is masked
/// whole, so that one name costs a bounded search.
pub const MAX_NAME_BYTES: usize = 253;

/// Longest notice searched word by word; a longer one is cut (with `…`) first.
pub const MAX_TEXT_BYTES: usize = 1024;

/// `host` with every label up to the last one in which `carries` finds personal
/// data masked: `•••.b.sdk.example` for `<id>.b.sdk.example`, `•••` when even the
/// last label carries some (or the name is over [`MAX_NAME_BYTES`]). Unchanged when
/// the whole name carries none.
///
/// The tail kept is found by bisection over the labels (a tail of a tail that
/// carries nothing carries nothing, as a rule): about 1 + log2(labels) searches,
/// each of the kept tail's verdict checked, so what is shown carries nothing the
/// search finds whatever the rule's exceptions.
pub fn shown_host<'h>(host: &'h str, carries: &ProbeFn) -> Cow<'h, str> {
    if !carries(host.as_bytes()) {
        return Cow::Borrowed(host);
    }
    if host.len() > MAX_NAME_BYTES {
        return Cow::Borrowed(MASK);
    }
    // Tail `i` starts after the `i`th dot; tail 0 is the name, the last is empty.
    let starts: Vec<usize> = std::iter::once(0)
        .chain(host.match_indices('.').map(|(dot, _)| dot + 1))
        .chain(std::iter::once(host.len()))
        .collect();
    let tail = |i: usize| &host[starts[i]..];
    // Tail `carrying` carries data, tail `clean` none (the empty one by definition).
    let (mut carrying, mut clean) = (0, starts.len() - 1);
    while clean - carrying > 1 {
        let mid = carrying + (clean - carrying) / 2;
        if carries(tail(mid).as_bytes()) {
            carrying = mid;
        } else {
            clean = mid;
        }
    }
    match tail(clean) {
        "" => Cow::Borrowed(MASK),
        kept => Cow::Owned(format!("{MASK}.{kept}")),
    }
}

/// `text` (a notice about a connection) with every name or word in which `carries`
/// finds personal data shown as [`shown_host`] shows it: a notice names hosts, and
/// an error it quotes may name them again. A text over [`MAX_TEXT_BYTES`] is cut
/// first; one in which the search finds nothing is returned as it is after a single
/// search.
pub fn masked_text<'t>(text: &'t str, carries: &ProbeFn) -> Cow<'t, str> {
    if text.len() > MAX_TEXT_BYTES {
        let mut end = MAX_TEXT_BYTES - "…".len();
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let cut = format!("{}…", &text[..end]);
        return Cow::Owned(masked_words(&cut, carries).into_owned());
    }
    masked_words(text, carries)
}

/// [`masked_text`] of a text within [`MAX_TEXT_BYTES`].
fn masked_words<'t>(text: &'t str, carries: &ProbeFn) -> Cow<'t, str> {
    if !carries(text.as_bytes()) {
        return Cow::Borrowed(text);
    }
    let is_word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    let mut out = String::new();
    let mut copied = 0;
    let mut rest = text;
    let mut at = 0;
    while let Some(start) = rest.find(is_word) {
        let len = rest[start..]
            .find(|c| !is_word(c))
            .unwrap_or(rest.len() - start);
        let word = rest[start..start + len].trim_end_matches('.');
        let shown = shown_host(word, carries);
        if *shown != *word {
            out.push_str(&text[copied..at + start]);
            out.push_str(&shown);
            copied = at + start + word.len();
        }
        at += start + len;
        rest = &text[at..];
    }
    out.push_str(&text[copied..]);
    // Data across words (a number written in groups): nothing of the text is shown.
    if carries(out.as_bytes()) {
        return Cow::Borrowed(WITHHELD);
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    Cow::Owned(out)
}

/// What stands for a notice whose data no masking of its words hides.
pub const WITHHELD: &str = "(a notice carrying the case's data, withheld: --reveal shows it)";

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for the case's search: data is any run of 15 digits.
    fn imei(bytes: &[u8]) -> bool {
        bytes.windows(15).any(|w| w.iter().all(u8::is_ascii_digit))
    }

    #[test]
    fn the_labels_up_to_the_last_carrying_data_are_masked() {
        assert_eq!(
            shown_host("490154203237518.b.sdk.example", &imei),
            "•••.b.sdk.example"
        );
        assert_eq!(
            shown_host("a.490154203237518.sdk.example", &imei),
            "•••.sdk.example"
        );
        // Nothing found in the whole name: shown as it is.
        assert_eq!(
            shown_host("4901542.03237518.sdk.example", &imei),
            "4901542.03237518.sdk.example"
        );
        assert_eq!(shown_host("x.sdk.490154203237518", &imei), "•••");
        assert_eq!(shown_host("490154203237518", &imei), "•••");
        assert!(matches!(
            shown_host("api.sdk.example", &imei),
            Cow::Borrowed("api.sdk.example")
        ));
        assert_eq!(shown_host("", &imei), "");
    }

    #[test]
    fn notices_have_their_names_masked_and_nothing_else() {
        let n = "upstream 490154203237518.t.example failed: dns error: no address for 490154203237518.t.example.";
        assert_eq!(
            masked_text(n, &imei),
            "upstream •••.t.example failed: dns error: no address for •••.t.example."
        );
        let plain = "tunnel to api.example:443 failed: cannot connect: refused";
        assert!(matches!(masked_text(plain, &imei), Cow::Borrowed(t) if t == plain));
        assert_eq!(
            masked_text("490154203237518: rejected", &imei),
            "•••: rejected"
        );
        assert_eq!(masked_text("", &imei), "");
        // Not ASCII around the words: byte offsets stay on character boundaries.
        assert_eq!(masked_text("→490154203237518←", &imei), "→•••←");
    }

    proptest::proptest! {
        /// Whatever the text, what is shown carries nothing the search finds, and
        /// a text that carries nothing is shown as it is.
        #[test]
        fn nothing_shown_carries_data(
            text in "([0-9]{1,16}|[a-z]{1,3}|[.: →-]){0,24}"
        ) {
            let shown = masked_text(&text, &imei);
            proptest::prop_assert!(!imei(shown.as_bytes()), "{:?} → {:?}", text, shown);
            if !imei(text.as_bytes()) {
                proptest::prop_assert_eq!(&*shown, text.as_str());
            }
            let host = shown_host(&text, &imei);
            proptest::prop_assert!(!imei(host.as_bytes()), "{:?} → {:?}", text, host);
        }
    }

    /// `imei`, counting its searches.
    fn counted() -> (DataProbe, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = std::sync::Arc::clone(&asked);
        let probe = DataProbe(std::sync::Arc::new(move |b: &[u8]| {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            imei(b)
        }));
        (probe, asked)
    }

    /// A hostile name costs a bounded search: a few per name by bisection, one for
    /// a name too long to be one, one for a long notice cut first.
    #[test]
    fn a_name_or_notice_costs_a_bounded_search() {
        let (probe, asked) = counted();
        let searches = || asked.swap(0, std::sync::atomic::Ordering::Relaxed);
        let labels: Vec<String> = (0..110u8)
            .map(|i| char::from(b'a' + i % 26).into())
            .collect();
        let name = format!("490154203237518.{}", labels.join("."));
        assert!(name.len() <= MAX_NAME_BYTES);
        assert_eq!(
            shown_host(&name, &*probe.0),
            format!("•••.{}", labels.join("."))
        );
        assert!(
            searches() <= 1 + 7,
            "111 labels: the whole name, then bisection"
        );
        let deep = format!("{}.490154203237518.sdk.example", labels.join("."));
        assert_eq!(shown_host(&deep, &*probe.0), "•••.sdk.example");
        assert!(searches() <= 1 + 7);
        let long = format!("{}.490154203237518.example", "a".repeat(300));
        assert_eq!(shown_host(&long, &*probe.0), MASK);
        assert_eq!(searches(), 1);
        let notice = format!("upstream {} failed", "x.".repeat(5000));
        let shown = masked_text(&notice, &*probe.0);
        assert_eq!(
            (shown.len(), shown.ends_with("x.…")),
            (MAX_TEXT_BYTES, true)
        );
        assert_eq!(searches(), 1, "nothing in it: one search of what is shown");
        let notice = format!("upstream {} failed: 490154203237518", "x.".repeat(5000));
        assert!(!masked_text(&notice, &*probe.0).contains("490154203237518"));
    }

    #[test]
    fn a_notice_with_data_across_its_words_is_withheld() {
        let groups = |b: &[u8]| {
            let digits: Vec<u8> = b.iter().copied().filter(u8::is_ascii_digit).collect();
            imei(&digits)
        };
        assert_eq!(
            masked_text("dial 4901 5420 3237 518 now", &groups),
            WITHHELD
        );
        assert_eq!(masked_text("dial 4901 now", &groups), "dial 4901 now");
    }

    #[test]
    fn live_sources_search_each_name_once_and_not_with_reveal() {
        let (probe, asked) = counted();
        let searches = || asked.load(std::sync::atomic::Ordering::Relaxed);
        let mut hosts = HostMask::new(probe.clone(), false);
        let name = "490154203237518.b.sdk.example";
        assert_eq!(hosts.show(name), "•••.b.sdk.example");
        let before = searches();
        assert_eq!(hosts.show(name), "•••.b.sdk.example");
        assert_eq!(hosts.show("api.sdk.example"), "api.sdk.example");
        assert_eq!(hosts.show("api.sdk.example"), "api.sdk.example");
        assert_eq!(searches(), before + 1);
        // A "name" too long to be one is searched each time, never remembered.
        let long = "a.".repeat(200) + "example";
        assert_eq!(hosts.show(&long), long);
        assert_eq!(hosts.show(&long), long);
        assert_eq!((searches(), hosts.seen.len()), (before + 3, 2));
        let mut revealed = HostMask::new(probe, true);
        assert_eq!(revealed.show(name), name);
        assert_eq!(revealed.mask_text(name), name);
        assert_eq!(searches(), before + 3);
        assert_eq!(
            hosts.mask_text(&format!("to {name}:443")),
            "to •••.b.sdk.example:443"
        );
    }
}

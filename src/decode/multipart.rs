//! `multipart/form-data` bodies (RFC 7578): the boundary from the `Content-Type`, then
//! each part's name (from `Content-Disposition`) and content as slices of the body.
//!
//! Lenient like browsers and servers: CRLF or bare LF line ends, a missing closing
//! delimiter (the last part runs to the end of the body, and `truncated` says so).

use memchr::memmem;

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormPart<'a> {
    /// `name` parameter of `Content-Disposition`.
    pub name: Option<String>,
    /// `filename` parameter of `Content-Disposition`.
    pub filename: Option<String>,
    /// The part's own headers, raw.
    pub headers: &'a [u8],
    pub content: &'a [u8],
}

/// The parts of a body and whether it ended without its closing delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart<'a> {
    pub parts: Vec<FormPart<'a>>,
    pub truncated: bool,
    /// More than the `max_parts` asked for were present.
    pub too_many: bool,
}

/// The `boundary` parameter of a `Content-Type` value, unquoted.
pub fn boundary(content_type: &[u8]) -> Option<Vec<u8>> {
    let b = param(content_type, "boundary")?;
    (!b.is_empty() && b.len() <= 200).then_some(b)
}

/// Parameter `name` of a header value `x; a=1; b="q;s"` (unquoted, `\` escapes undone).
pub fn param(value: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut i = memchr::memchr(b';', value)? + 1;
    while i < value.len() {
        while i < value.len() && matches!(value[i], b' ' | b'\t' | b';') {
            i += 1;
        }
        let key_start = i;
        while i < value.len() && !matches!(value[i], b'=' | b';') {
            i += 1;
        }
        let key = value[key_start..i].trim_ascii();
        let mut v = Vec::new();
        if value.get(i) == Some(&b'=') {
            i += 1;
            while i < value.len() && matches!(value[i], b' ' | b'\t') {
                i += 1;
            }
            if value.get(i) == Some(&b'"') {
                i += 1;
                while i < value.len() && value[i] != b'"' {
                    if value[i] == b'\\' && i + 1 < value.len() {
                        i += 1;
                    }
                    v.push(value[i]);
                    i += 1;
                }
                i += 1;
                while i < value.len() && value[i] != b';' {
                    i += 1;
                }
            } else {
                let s = i;
                while i < value.len() && value[i] != b';' {
                    i += 1;
                }
                v.extend_from_slice(value[s..i].trim_ascii());
            }
        }
        if key.eq_ignore_ascii_case(name.as_bytes()) {
            return Some(v);
        }
    }
    None
}

/// Splits `body` on `boundary`, keeping at most `max_parts` parts. `None` when the body
/// holds no delimiter at all (not multipart after all).
pub fn parse<'a>(body: &'a [u8], boundary: &[u8], max_parts: usize) -> Option<Multipart<'a>> {
    let mut delim = Vec::with_capacity(boundary.len() + 2);
    delim.extend_from_slice(b"--");
    delim.extend_from_slice(boundary);
    let finder = memmem::Finder::new(&delim);
    let first = finder.find(body)?;
    let mut out = Multipart {
        parts: Vec::new(),
        truncated: false,
        too_many: false,
    };
    let mut at = first + delim.len();
    loop {
        if body[at..].starts_with(b"--") {
            return Some(out);
        }
        // Rest of the delimiter line (transport padding), then the part's headers.
        let Some(eol) = memchr::memchr(b'\n', &body[at..]) else {
            out.truncated = true;
            return Some(out);
        };
        let head_start = at + eol + 1;
        let (headers, content_start) = match header_end(&body[head_start..]) {
            Some((h, c)) => (&body[head_start..head_start + h], head_start + c),
            None => {
                out.truncated = true;
                return Some(out);
            }
        };
        let (content, next) = match next_delimiter(&finder, body, content_start) {
            Some((end, next)) => (&body[content_start..end], Some(next)),
            None => (&body[content_start..], None),
        };
        if out.parts.len() >= max_parts {
            out.too_many = true;
            return Some(out);
        }
        let disposition = part_header(headers, b"content-disposition");
        let text = |v: Vec<u8>| String::from_utf8_lossy(&v).into_owned();
        out.parts.push(FormPart {
            name: disposition.and_then(|d| param(d, "name")).map(text),
            filename: disposition.and_then(|d| param(d, "filename")).map(text),
            headers,
            content,
        });
        match next {
            Some(n) => at = n,
            None => {
                out.truncated = true;
                return Some(out);
            }
        }
    }
}

/// Length of the header block and offset of the content, after the blank line.
fn header_end(s: &[u8]) -> Option<(usize, usize)> {
    // A part without headers starts with its blank line.
    if s.starts_with(b"\r\n") {
        return Some((0, 2));
    }
    if s.starts_with(b"\n") {
        return Some((0, 1));
    }
    let mut i = 0;
    while let Some(nl) = memchr::memchr(b'\n', &s[i..]) {
        let after = i + nl + 1;
        if s[after..].starts_with(b"\r\n") {
            return Some((after, after + 2));
        }
        if s[after..].starts_with(b"\n") {
            return Some((after, after + 1));
        }
        i = after;
    }
    None
}

/// The end of the content starting at `from` (before the line end that precedes the
/// next delimiter) and the offset just after that delimiter.
fn next_delimiter(finder: &memmem::Finder<'_>, body: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut search = from;
    loop {
        let d = search + finder.find(&body[search..])?;
        // A delimiter counts only at the start of a line.
        if d > from && body[d - 1] == b'\n' {
            let end = if d >= from + 2 && body[d - 2] == b'\r' {
                d - 2
            } else {
                d - 1
            };
            return Some((end, d + finder.needle().len()));
        }
        if d == from {
            // Empty content with the delimiter right after the blank line.
            return Some((from, d + finder.needle().len()));
        }
        search = d + 1;
    }
}

/// The value of header `name` (lowercase) in a raw header block.
pub fn part_header<'a>(headers: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    headers.split(|&b| b == b'\n').find_map(|line| {
        let colon = memchr::memchr(b':', line)?;
        line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(name)
            .then(|| line[colon + 1..].trim_ascii())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_quoted_and_plain() {
        assert_eq!(
            boundary(b"multipart/form-data; boundary=\"a b;c\"").as_deref(),
            Some(&b"a b;c"[..])
        );
        assert_eq!(
            boundary(b"multipart/form-data;charset=utf-8;BOUNDARY=----xyz").as_deref(),
            Some(&b"----xyz"[..])
        );
        assert_eq!(boundary(b"multipart/form-data"), None);
        assert_eq!(boundary(b"multipart/form-data; boundary="), None);
    }

    #[test]
    fn crlf_body() {
        let body = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"imei\"\r\n\r\n490154203237518\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"log.txt\"\r\nContent-Type: text/plain\r\n\r\nline1\r\nline2\r\n--XyZ--\r\nepilogue";
        let m = parse(body, b"XyZ", 100).unwrap();
        assert!(!m.truncated);
        assert_eq!(m.parts.len(), 2);
        assert_eq!(m.parts[0].name.as_deref(), Some("imei"));
        assert_eq!(m.parts[0].content, b"490154203237518");
        assert_eq!(m.parts[1].filename.as_deref(), Some("log.txt"));
        assert_eq!(m.parts[1].content, b"line1\r\nline2");
        assert_eq!(
            part_header(m.parts[1].headers, b"content-type"),
            Some(&b"text/plain"[..])
        );
    }

    #[test]
    fn lf_body_fake_delimiters_and_truncation() {
        let body = b"--b\nContent-Disposition: form-data; filename=\"x.bin\"\n\nab--bc\n--b\nContent-Disposition: form-data; name=q\n\n\n--b\n\nlast part";
        let m = parse(body, b"b", 100).unwrap();
        assert!(m.truncated);
        assert_eq!(m.parts.len(), 3);
        assert_eq!(m.parts[0].name, None);
        assert_eq!(m.parts[0].filename.as_deref(), Some("x.bin"));
        assert_eq!(m.parts[0].content, b"ab--bc");
        assert_eq!(m.parts[1].name.as_deref(), Some("q"));
        assert_eq!(m.parts[1].content, b"");
        assert_eq!(m.parts[2].content, b"last part");
    }

    #[test]
    fn no_delimiter_and_part_limit() {
        assert_eq!(parse(b"{\"a\":1}", b"zz", 10), None);
        let body = b"--b\n\n1\n--b\n\n2\n--b\n\n3\n--b--";
        let m = parse(body, b"b", 2).unwrap();
        assert_eq!(m.parts.len(), 2);
        assert!(m.too_many);
    }
}

//! Fields named as distributed-tracing ids, where a digit run that passes a pattern
//! detector's checks is a coincidence, not personal data.
//!
//! Tracing SDKs put random numbers on every request. Datadog's trace and parent ids
//! are decimal 63-bit integers (up to 19 digits); a Luhn check passes one number in
//! ten and many start like a card issuer's, so one request in about sixty that
//! carried Datadog's two headers with random ids had a "bank card" in them, a
//! `sensitive-without-consent` finding against a monitoring vendor. Hex ids (W3C
//! Trace Context, B3, Jaeger, Sentry) are all digits far more rarely, but on every
//! request. Pattern hits inside these fields are dropped ([`super::Detector`]); the
//! case's known values are still searched there, so an SDK that puts a device id into
//! a trace header is caught.
//!
//! Only names with no other meaning are listed: the header fields the tracing
//! formats define (each value is ids and flags only), and header, member, query and
//! form names that spell `trace id`, `span id` or `parent span id` in any case with
//! `_`, `-` or `.` between the words (`trace_id`, `traceId`, `dd.span_id`,
//! `parentSpanId`, the header `X-Trace-Id`). A bare `parent_id` is not one: apps use
//! it for people.

/// Header (and trailer) fields whose whole value is tracing ids and flags, lower
/// case: W3C Trace Context, Zipkin B3 (multi and single header), Datadog, Jaeger,
/// Sentry, Google Cloud Trace, AWS X-Ray, Elastic APM.
const TRACE_HEADERS: &[&str] = &[
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "uber-trace-id",
    "sentry-trace",
    "x-cloud-trace-context",
    "x-amzn-trace-id",
    "elastic-apm-traceparent",
];

/// Field names, lower case with `_`, `-` and `.` removed, that name a tracing id:
/// OpenTelemetry's JSON (`traceId`, `spanId`, `parentSpanId`), Sentry and Datadog
/// events (`trace_id`, `span_id`, `_dd.trace_id`, `dd.span_id`).
const TRACE_KEYS: &[&str] = &["traceid", "spanid", "parentspanid", "ddtraceid", "ddspanid"];

/// Longest name in [`TRACE_KEYS`] once normalised; longer names are not compared.
const MAX_KEY: usize = 12;

/// Whether a header or trailer field named `name` carries tracing ids only.
pub fn is_trace_header(name: &str) -> bool {
    TRACE_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// Whether a query, form, cookie or JSON member name names a tracing id.
pub fn is_trace_key(key: &[u8]) -> bool {
    let mut folded = [0u8; MAX_KEY];
    let mut n = 0;
    for &b in key {
        if matches!(b, b'_' | b'-' | b'.') {
            continue;
        }
        let Some(slot) = folded.get_mut(n) else {
            return false;
        };
        *slot = b.to_ascii_lowercase();
        n += 1;
    }
    TRACE_KEYS.iter().any(|k| k.as_bytes() == &folded[..n])
}

/// Whether the part at `place:name` is a tracing field as a whole (its header or
/// its query, form or cookie name), so that no pattern hit in it counts. A header's
/// `X-` prefix is not part of the name (`X-Trace-Id`, `X-Span-Id`).
pub fn names_trace_field(place: &str, name: &str) -> bool {
    match place {
        "header" | "trailer" => {
            let unprefixed = match name.get(..2) {
                // Two ASCII bytes: index 2 is a character boundary.
                Some(prefix) if prefix.eq_ignore_ascii_case("x-") => &name[2..],
                _ => name,
            };
            is_trace_header(name) || is_trace_key(unprefixed.as_bytes())
        }
        "query" | "form" | "cookie" => is_trace_key(name.as_bytes()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracing_headers_in_any_case() {
        for name in [
            "traceparent",
            "X-Datadog-Trace-Id",
            "x-datadog-parent-id",
            "B3",
            "Sentry-Trace",
        ] {
            assert!(is_trace_header(name), "{name}");
        }
        for name in [
            "x-request-id",
            "user-agent",
            "x-datadog-origin",
            "baggage",
            "",
        ] {
            assert!(!is_trace_header(name), "{name}");
        }
    }

    #[test]
    fn tracing_keys_with_any_separator_and_case() {
        for key in [
            "trace_id",
            "traceId",
            "TRACE-ID",
            "span_id",
            "spanId",
            "parentSpanId",
            "dd.trace_id",
            "_dd.span_id",
        ] {
            assert!(is_trace_key(key.as_bytes()), "{key}");
        }
        // Not tracing names: a bare parent id (people), look-alikes, longer names.
        for key in [
            "parent_id",
            "trace",
            "id",
            "user_id",
            "traceidentifier",
            "x_trace_id_card",
            "",
        ] {
            assert!(!is_trace_key(key.as_bytes()), "{key}");
        }
    }

    #[test]
    fn whole_fields_by_place() {
        assert!(names_trace_field("header", "X-B3-SpanId"));
        assert!(names_trace_field("trailer", "traceparent"));
        assert!(names_trace_field("header", "X-Trace-Id"));
        assert!(names_trace_field("query", "trace_id"));
        assert!(names_trace_field("cookie", "spanId"));
        assert!(
            !names_trace_field("query", "traceparent"),
            "a header's name, not a key"
        );
        assert!(!names_trace_field("body", "trace_id"));
        assert!(!names_trace_field("path", ""));
        assert!(!names_trace_field("header", "x-datadog-origin"));
    }
}

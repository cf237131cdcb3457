//! DNS over HTTPS and lookups through HTTP DNS APIs (`net::http_dns`) in the proxy's
//! exchanges and a HAR file's: the names a query asks for, judged as the tap judges
//! them in a capture. A name reaches the name servers of its domain whatever
//! resolver carried it, so a name that carries personal data becomes an exchange of
//! its own, named by the name (`net::tap`'s `dns` exchanges); the request to the
//! resolver is judged as itself too. An HTTP DNS API's request is one only when its
//! answer reads as a lookup's.

use sha2::{Digest, Sha256};

use crate::exchange::Exchange;
use crate::net::tap::{DataProbe, MAX_DOH_NAMES};

/// The `dns` exchanges of `x`'s DNS-over-HTTPS query or HTTP DNS API lookup: one
/// for each name `probe` flags (at most [`MAX_DOH_NAMES`]), with `x`'s time,
/// connection, device and evidence (the request that carried it), the name as its
/// payload. None when `x` is no such query.
pub fn doh_name_exchanges(x: &Exchange, probe: &DataProbe) -> Vec<Exchange> {
    let Some(names) = asked_names(x) else {
        return Vec::new();
    };
    names
        .iter()
        .enumerate()
        .take(MAX_DOH_NAMES as usize)
        .filter(|(_, name)| !name.is_empty() && (probe.0)(name.as_bytes()))
        .map(|(i, name)| {
            let mut d = Exchange::blank(name_id(&x.id, i), x.source, x.at);
            d.evidence = x.evidence.clone();
            d.client = x.client.clone();
            d.server = x.server.clone();
            d.device = x.device.clone();
            d.app = x.app.clone();
            d.tls = x.tls.clone();
            d.digests = x.digests.clone();
            d.host = name.clone();
            d.scheme = "dns".to_string();
            d.metadata_only = true;
            d.request_body = name.as_bytes().to_vec();
            d
        })
        .collect()
}

/// The names `x` asked a resolver over HTTP for, if it is such a query.
fn asked_names(x: &Exchange) -> Option<Vec<String>> {
    if let Some(names) =
        crate::net::dns::doh_query(&x.method, &x.path, &x.request_headers, &x.request_body)
    {
        return Some(names);
    }
    let r = x.response.as_ref()?;
    let lookup = crate::net::http_dns::lookup_request(
        &x.path,
        &x.request_headers,
        &x.request_body,
        r.status,
        &r.headers,
        &r.body,
    )?;
    Some(lookup.asked)
}

/// The id of the `index`th name of exchange `id`'s query: `x-` and 16 hex digits,
/// as every exchange id, derived from the request's.
fn name_id(id: &str, index: usize) -> String {
    let mut h = Sha256::new();
    h.update(b"doh-name\0");
    h.update(id.as_bytes());
    h.update((index as u64).to_be_bytes());
    let digest = h.finalize();
    format!(
        "x-{}",
        crate::source::hex(digest.get(..8).unwrap_or_default())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{Header, SourceKind};
    use crate::timestamp::Timestamp;
    use std::sync::Arc;

    /// A DNS query for `names` (type A, class IN), id 0.
    fn query(names: &[&str]) -> Vec<u8> {
        crate::net::dns::test_query(0, names)
    }

    fn post(names: &[&str]) -> Exchange {
        let mut x = Exchange::blank(
            "x-0011223344556677",
            SourceKind::Proxy,
            Timestamp::from_micros(7),
        );
        x.method = "POST".into();
        x.host = "dns.resolver.example".into();
        x.scheme = "https".into();
        x.path = "/dns-query".into();
        x.device = Some("pixel7".into());
        x.client = Some("127.0.0.1:50000".into());
        x.evidence.locator = "record 3".into();
        x.request_headers = vec![Header::new("content-type", &b"application/dns-message"[..])];
        x.request_body = query(names);
        x
    }

    /// Flags names with a digit in them.
    fn digits() -> DataProbe {
        DataProbe(Arc::new(|b: &[u8]| b.iter().any(u8::is_ascii_digit)))
    }

    #[test]
    fn flagged_names_of_a_query_become_exchanges_of_their_own() {
        let x = post(&["app.example", "0eaed834.b.sdk.example"]);
        let names = doh_name_exchanges(&x, &digits());
        assert_eq!(names.len(), 1);
        let d = &names[0];
        assert_eq!(
            (d.host.as_str(), d.scheme.as_str(), d.metadata_only),
            ("0eaed834.b.sdk.example", "dns", true)
        );
        assert_eq!(d.request_body, b"0eaed834.b.sdk.example");
        assert_eq!((d.at, d.device.as_deref()), (x.at, Some("pixel7")));
        assert_eq!(d.evidence.locator, "record 3");
        assert_eq!(d.client, x.client);
        // Its own id, stable, and the same for the same request and name.
        assert!(d.id.starts_with("x-") && d.id.len() == 18 && d.id != x.id);
        assert_eq!(doh_name_exchanges(&x, &digits())[0].id, d.id);
        assert_ne!(name_id(&x.id, 0), d.id);
    }

    #[test]
    fn other_requests_give_none() {
        let probe = DataProbe(Arc::new(|_: &[u8]| true));
        let mut x = post(&["a1.example"]);
        x.request_headers.clear();
        assert!(doh_name_exchanges(&x, &probe).is_empty(), "untyped");
        let mut x = post(&["a1.example"]);
        x.request_body.truncate(5);
        assert!(doh_name_exchanges(&x, &probe).is_empty(), "not DNS");
        let mut x = post(&["a1.example"]);
        x.method = "PUT".into();
        assert!(doh_name_exchanges(&x, &probe).is_empty());
    }

    #[test]
    fn an_http_dns_lookup_names_its_flagged_names_once_its_answer_shows_it_is_one() {
        let mut x = post(&[]);
        x.method = "GET".into();
        x.request_headers.clear();
        x.request_body.clear();
        x.path = "/d?dn=0eaed834.b.sdk.example,app.example&ttl=1".into();
        // No answer yet: an ordinary request, as far as anyone can tell.
        assert!(doh_name_exchanges(&x, &digits()).is_empty());
        x.response = Some(crate::exchange::Response {
            status: 200,
            headers: Vec::new(),
            body: b"0eaed834.b.sdk.example.:192.0.2.7,60\napp.example.:192.0.2.8,60".to_vec(),
        });
        let names = doh_name_exchanges(&x, &digits());
        let hosts: Vec<&str> = names.iter().map(|d| d.host.as_str()).collect();
        assert_eq!(hosts, ["0eaed834.b.sdk.example"]);
        assert_eq!(names[0].scheme, "dns");
        // The same lookup posted as a form.
        let mut posted = x.clone();
        posted.method = "POST".into();
        posted.path = "/d".into();
        posted.request_headers = vec![crate::exchange::Header::new(
            "Content-Type",
            "application/x-www-form-urlencoded",
        )];
        posted.request_body = b"dn=0eaed834.b.sdk.example,app.example&ttl=1".to_vec();
        let hosts: Vec<String> = doh_name_exchanges(&posted, &digits())
            .into_iter()
            .map(|d| d.host)
            .collect();
        assert_eq!(hosts, ["0eaed834.b.sdk.example"]);
        // An answer that is no lookup's.
        x.response.as_mut().unwrap().body = b"<html>".to_vec();
        assert!(doh_name_exchanges(&x, &digits()).is_empty());
    }
}

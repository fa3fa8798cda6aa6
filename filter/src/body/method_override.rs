//! HTTP method overrides: a request line that says `POST` while a header or
//! parameter tells the upstream framework to act as `DELETE` (Rails,
//! Laravel, Express's `method-override`, Spring's `HiddenHttpMethodFilter`,
//! many API gateways). Rules judge the request line's method, so by default
//! such a request is refused before any rule runs (`inspection.method_overrides`).

use super::{classify, form, json, Form, Reading};

/// Header names frameworks read an override from (any case).
pub const HEADERS: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// The parameter (query, form field, JSON member) frameworks read.
pub const PARAM: &str = "_method";

/// Where a request's headers or query ask for another method, if they do.
pub fn in_head(headers: &[(String, String)], path: &str) -> Option<String> {
    if let Some((name, _)) = headers
        .iter()
        .find(|(k, _)| HEADERS.iter().any(|h| k.eq_ignore_ascii_case(h)))
    {
        return Some(format!("header {}", name.to_ascii_lowercase()));
    }
    let query = path.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or("");
    form::fields(query.as_bytes())
        .iter()
        .any(|f| is_param(&f.name))
        .then(|| format!("query parameter {PARAM}"))
}

/// Where a body asks for another method: a `_method` form field, multipart
/// part or top-level JSON member.
pub fn in_body(content_type: Option<&str>, body: &[u8]) -> Option<String> {
    in_read(content_type, body, None)
}

/// [`in_body`], on `reading`'s parse of `body` when it has one.
pub fn in_read(
    content_type: Option<&str>,
    body: &[u8],
    reading: Option<&Reading<'_>>,
) -> Option<String> {
    let found = match classify(content_type) {
        Form::UrlEncoded => form::fields(body).iter().any(|f| is_param(&f.name)),
        Form::Multipart(boundary) => super::multipart::parts(body, &boundary)
            .unwrap_or_default()
            .iter()
            .any(|p| is_param(p.name.as_bytes())),
        _ => match reading.and_then(|r| r.doc_of(body)) {
            Some(doc) => top_level_key(doc),
            None => json::Doc::parse(body, json::MAX_DEPTH_CEILING)
                .ok()
                .is_some_and(|doc| top_level_key(&doc)),
        },
    };
    found.then(|| format!("body field {PARAM}"))
}

fn is_param(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(PARAM.as_bytes())
}

/// A top-level object member named `_method`.
fn top_level_key(doc: &json::Doc<'_>) -> bool {
    let mut depth = 0usize;
    for t in &doc.tokens {
        match t.kind {
            json::Kind::ObjectStart | json::Kind::ArrayStart => depth += 1,
            json::Kind::ObjectEnd | json::Kind::ArrayEnd => depth = depth.saturating_sub(1),
            json::Kind::Key if depth == 1 && is_param(doc.text(t).as_bytes()) => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn overrides_in_headers_query_and_body_are_found() {
        assert!(in_head(&[h("X-HTTP-Method-Override", "DELETE")], "/a").is_some());
        assert!(in_head(&[h("x-http-method", "DELETE")], "/a").is_some());
        assert!(in_head(&[], "/a?x=1&_method=DELETE").is_some());
        assert!(in_head(&[], "/a?x=1&%5Fmethod=DELETE").is_some());
        assert!(in_head(&[h("x-other", "1")], "/a?method=x").is_none());
        let form = Some("application/x-www-form-urlencoded");
        assert!(in_body(form, b"a=1&_method=delete").is_some());
        assert!(in_body(form, b"a=_method").is_none());
        let json = Some("application/json");
        assert!(in_body(json, br#"{"_method":"DELETE"}"#).is_some());
        assert!(in_body(json, br#"{"a":{"_method":"DELETE"}}"#).is_none());
        assert!(in_body(json, br#"{"a":"_method"}"#).is_none());
    }
}

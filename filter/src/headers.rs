//! Reading HTTP headers as Envoy hands them over: a list of `(name, value)`
//! pairs, a repeated header being several pairs. The one place that knows
//! how to look a header up and how to read `content-type` and
//! `content-encoding`.

/// The headers of a request or response, as Envoy gives them.
pub type HeaderList = [(String, String)];

/// Every value of header `name` (any case), in order.
pub fn values<'a: 'n, 'n>(
    headers: &'a HeaderList,
    name: &'n str,
) -> impl Iterator<Item = &'a str> + 'n {
    headers
        .iter()
        .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The first value of header `name` (any case).
pub fn first<'a>(headers: &'a HeaderList, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A content type's essence, lowercase and without parameters, split into
/// type and subtype: `Application/JSON; charset=utf-8` -> `("application", "json")`.
pub fn media_type(content_type: &str) -> (String, String) {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some((top, sub)) => (top.trim().to_string(), sub.trim().to_string()),
        None => (essence, String::new()),
    }
}

/// `application/SUBTYPE` bodies that are text (XML, JavaScript, NDJSON, YAML,
/// GraphQL, SQL): read as text by the masker and the body reader alike.
pub fn is_textual_application(subtype: &str) -> bool {
    subtype.ends_with("+xml")
        || matches!(
            subtype,
            "xml"
                | "javascript"
                | "x-ndjson"
                | "ndjson"
                | "jsonl"
                | "x-jsonlines"
                | "yaml"
                | "x-yaml"
                | "graphql"
                | "sql"
        )
}

/// `text/event-stream`: a body that is never held whole (it would stop streaming).
pub fn is_event_stream(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        let (top, sub) = media_type(ct);
        top == "text" && sub == "event-stream"
    })
}

/// A `content-encoding` other than `identity`: the bytes are not text.
pub fn is_compressed(content_encoding: Option<&str>) -> bool {
    content_encoding.is_some_and(|e| {
        let e = e.trim();
        !e.is_empty() && !e.eq_ignore_ascii_case("identity")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn lookup_ignores_case_and_keeps_every_value() {
        let h = list(&[("X-A", "1"), ("x-b", "2"), ("x-a", "3")]);
        assert_eq!(first(&h, "x-a"), Some("1"));
        assert_eq!(values(&h, "X-A").collect::<Vec<_>>(), ["1", "3"]);
        assert_eq!(first(&h, "x-c"), None);
    }

    #[test]
    fn media_types_lose_parameters_and_case() {
        assert_eq!(
            media_type(" Application/JSON ; charset=utf-8"),
            ("application".into(), "json".into())
        );
        assert_eq!(media_type("garbage"), ("garbage".into(), String::new()));
        assert!(is_event_stream(Some("TEXT/Event-Stream; charset=utf-8")));
        assert!(!is_event_stream(Some("text/plain")));
        assert!(!is_event_stream(None));
    }

    #[test]
    fn identity_and_empty_encodings_are_not_compressed() {
        assert!(!is_compressed(None));
        assert!(!is_compressed(Some(" ")));
        assert!(!is_compressed(Some("Identity")));
        assert!(is_compressed(Some("gzip")));
        assert!(is_compressed(Some("br")));
    }
}

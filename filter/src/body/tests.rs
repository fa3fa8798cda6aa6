//! The issue-14 corpus at the reading step: what an upstream would read is
//! readable here, or refused with a reason.

use super::*;

const JSON: Option<&str> = Some("application/json");

fn code(ct: Option<&str>, body: &[u8]) -> Option<&'static str> {
    check(ct, body, 1000).err().map(|u| u.code)
}

fn nest(n: usize, inner: &str) -> String {
    format!("{}{inner}{}", "[".repeat(n), "]".repeat(n))
}

#[test]
fn what_upstreams_parse_is_readable() {
    for body in [
        nest(129, r#""drop\u0020table""#),
        nest(200, r#""x""#),
        r#"{"a":1e400,"q":"drop\u0020table"}"#.to_string(),
        r#"{"a":"\ud800","q":"x"}"#.to_string(),
        r#"{"a":NaN,"b":-Infinity}"#.to_string(),
        "\u{feff}{\"a\":1}".to_string(),
    ] {
        assert_eq!(code(JSON, body.as_bytes()), None, "{body:.60}");
    }
}

#[test]
fn what_cannot_be_read_is_refused_with_a_reason() {
    let deep = nest(100_000, r#""x""#);
    let cases: Vec<(Option<&str>, Vec<u8>, &str)> = vec![
        (JSON, deep.clone().into_bytes(), "body_too_deep"),
        (Some("text/plain"), deep.into_bytes(), "body_too_deep"),
        (JSON, b"{\"a\":1,}".to_vec(), "body_invalid_json"),
        (JSON, b"{\"a\":\"\xff\"}".to_vec(), "body_invalid_utf8"),
        (Some("text/plain"), b"drop \xff table".to_vec(), "body_invalid_utf8"),
        (
            JSON,
            "\u{feff}{\"q\":\"drop table\"}"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect(),
            "body_unsupported_charset",
        ),
        (
            JSON,
            "{\"q\":\"drop table\"}"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect(),
            "body_unsupported_charset",
        ),
        (
            Some("application/json; charset=utf-16"),
            b"{}".to_vec(),
            "body_unsupported_charset",
        ),
        (
            Some("text/plain; charset=utf-7"),
            b"+AGQ-rop table".to_vec(),
            "body_unsupported_charset",
        ),
        (
            Some("multipart/form-data; boundary=b"),
            b"--b\r\nContent-Disposition: form-data; name=\"f\"\r\nContent-Transfer-Encoding: base64\r\n\r\nZHJvcCB0YWJsZQ==\r\n--b--".to_vec(),
            "body_multipart_unreadable",
        ),
    ];
    for (ct, body, want) in cases {
        assert_eq!(
            code(ct, &body),
            Some(want),
            "{ct:?} {:?}",
            String::from_utf8_lossy(&body)
        );
    }
}

#[test]
fn ascii_bodies_in_ascii_compatible_charsets_are_readable() {
    assert_eq!(code(Some("text/plain; charset=ISO-8859-1"), b"hello"), None);
    assert_eq!(
        code(Some("text/plain; charset=ISO-8859-1"), b"caf\xe9"),
        Some("body_unsupported_charset")
    );
    assert_eq!(code(Some("image/png"), b"\x89PNG\x00\xff"), None);
    assert_eq!(code(Some("text/plain"), b"{not json"), None);
}

#[test]
fn rules_see_decoded_strings_of_every_readable_form() {
    let has = |ct: Option<&str>, body: &[u8], needle: &str| {
        Decoded::read(ct, body).any_string(|s| s.to_ascii_lowercase().contains(needle))
    };
    let form = Some("application/x-www-form-urlencoded");
    assert!(has(form, b"sql=DROP+TABLE+customers", "drop table"));
    assert!(has(form, b"sql=DROP%20TABLE%20customers", "drop table"));
    assert!(has(
        JSON,
        br#"{"a":1e400,"q":"drop\u0020table"}"#,
        "drop table"
    ));
    assert!(has(None, br#"{"q":"drop\u0020table"}"#, "drop table"));
    assert!(has(
        Some("text/plain"),
        br#"["drop\u0020table"]"#,
        "drop table"
    ));
    assert!(has(
        Some("multipart/form-data; boundary=b"),
        b"--b\r\nContent-Disposition: form-data; name=\"j\"\r\nContent-Type: application/json\r\n\r\n{\"q\":\"drop\\u0020table\"}\r\n--b--\r\n",
        "drop table"
    ));
}

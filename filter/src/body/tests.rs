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
        Reading::lenient(ct, body).any_string(|s| s.to_ascii_lowercase().contains(needle))
    };
    let form = Some("application/x-www-form-urlencoded");
    assert!(has(form, b"sql=DROP+TABLE+customers", "drop table"));
    assert!(has(form, b"sql=DROP%20TABLE%20customers", "drop table"));
    // JSON labelled as a form: both readings.
    assert!(has(form, br#"{"sql":"drop\u0020table"}"#, "drop table"));
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

/// JSONTestSuite's implementation-defined (`i_*`) inputs and more: before
/// issue 14 the masker and the rules parsed separately and disagreed on 15 of
/// 35. Now one reader: rules see JSON exactly when masks walk JSON, and the
/// readability check refuses exactly what neither can read.
#[test]
fn rules_masks_and_the_check_agree_on_implementation_defined_inputs() {
    use crate::mask::{compile, BodyKind, MaskingDoc};
    let doc: MaskingDoc = serde_json::from_str(
        r#"{"hash_key":"0123456789abcdef-test","profiles":{"p":{"detectors":["email"]}}}"#,
    )
    .unwrap();
    let masking = compile(&doc).unwrap();
    let masker = masking.profile("p").unwrap();
    let inputs: Vec<Vec<u8>> = vec![
        b"[1E400]".to_vec(),
        b"[-1e-400]".to_vec(),
        b"[123123e100000]".to_vec(),
        b"[100000000000000000000]".to_vec(),
        b"[-237462374673276894279832749832423479823246327846]".to_vec(),
        b"[0.4e00669999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999969999999006]".to_vec(),
        br#"["\uDADA"]"#.to_vec(),
        br#"["\uD888\u1234"]"#.to_vec(),
        br#"["\uDFAA"]"#.to_vec(),
        br#"["\ud800\ud800\n"]"#.to_vec(),
        br#"["\uDd1ea"]"#.to_vec(),
        b"[\"\xe6\x97\xa5\xd1\x88\xfa\"]".to_vec(),
        b"[\"\xed\xa0\x80\"]".to_vec(),
        b"[\"\xf4\xbf\xbf\xbf\"]".to_vec(),
        b"[\"\xc0\xaf\"]".to_vec(),
        b"[\"\xff\"]".to_vec(),
        b"\xef\xbb\xbf{}".to_vec(),
        b"\xff\xfe[\x00\"\x00a\x00\"\x00]\x00".to_vec(),
        b"\xfe\xff\x00[\x00\"\x00a\x00\"\x00]".to_vec(),
        b"[\x00\"\x00a\x00\"\x00]\x00".to_vec(),
        nest(500, "1").into_bytes(),
        nest(1001, "1").into_bytes(),
        b"[NaN]".to_vec(),
        b"[Infinity,-Infinity]".to_vec(),
        b"[\"a\tb\"]".to_vec(),
        br#"{"a":1,"a":2}"#.to_vec(),
        b"[1,]".to_vec(),
        b"[01]".to_vec(),
        b"{\"a\":1} x".to_vec(),
        b" ".to_vec(),
        br#"["\x"]"#.to_vec(),
        b"[\"a\"\x00]".to_vec(),
        b"[.5]".to_vec(),
        br#"[+1]"#.to_vec(),
        b"'a'".to_vec(),
    ];
    for input in &inputs {
        let rules_json = Reading::lenient(JSON, input).json.is_some();
        let kind = masker.mask(JSON, input).kind;
        let shown = String::from_utf8_lossy(input);
        let shown: String = shown.chars().take(60).collect();
        if check(JSON, input, 1000).is_ok() {
            assert!(rules_json, "readable but rules see no JSON: {shown:?}");
            assert_eq!(
                kind,
                BodyKind::Json,
                "readable but masks see no JSON: {shown:?}"
            );
        } else {
            // Refused by default; with scan_as_text both read it as text.
            assert_eq!(rules_json, kind == BodyKind::Json, "{shown:?}");
        }
    }
}

/// The check's reading is the lenient reading whenever the check passes:
/// the same documents and strings, so rules and masks read one parse.
#[test]
fn the_checked_reading_is_the_lenient_one_and_finds_its_own_documents() {
    let cases: [(Option<&str>, &[u8]); 7] = [
        (JSON, br#"{"q":"drop\u0020table","n":1e400}"#),
        (Some("text/plain"), b"{\"a\":1}\n{\"b\":\"x\"}\nplain"),
        (Some("text/plain"), br#"["a", "b"]"#),
        (Some("application/x-www-form-urlencoded"), b"sql=DROP+TABLE&x=1"),
        (Some("multipart/form-data; boundary=b"), b"--b\r\nContent-Disposition: form-data; name=\"j\"\r\nContent-Type: application/json\r\n\r\n{\"q\":\"v\"}\r\n--b--\r\n"),
        (Some("application/octet-stream"), br#"{"q":"v"}"#),
        (None, b"line one\nline two"),
    ];
    for (ct, body) in cases {
        let strict = read(ct, body, 128).unwrap();
        let lenient = Reading::lenient(ct, body);
        let strings = |r: &Reading<'_>| {
            let mut all = Vec::new();
            r.any_string(|s| {
                all.push(s.to_string());
                false
            });
            all
        };
        assert_eq!(strings(&strict), strings(&lenient), "{ct:?}");
        assert_eq!(strict.json.is_some(), lenient.json.is_some(), "{ct:?}");
        assert_eq!(strict.lines.len(), lenient.lines.len(), "{ct:?}");
        // Each document is found by the exact bytes it was parsed from, and
        // only by them (a masker given other bytes parses them itself).
        for doc in strict.json.iter().chain(&strict.lines) {
            assert!(std::ptr::eq(strict.doc_of(doc.src).unwrap(), doc));
        }
        let copy = body.to_vec();
        assert!(strict.doc_of(&copy).is_none(), "{ct:?}");
    }
    let lines = read(Some("text/plain"), b"{\"a\":1}\nx\n[2]", 128).unwrap();
    assert_eq!(lines.lines.len(), 2);
    assert!(
        lines.doc_of(&lines.raw[2..]).is_none(),
        "not a line's bytes"
    );
    // What the check refuses is never a reading.
    assert_eq!(read(JSON, b"{", 128).err(), Some(INVALID_JSON));
    assert_eq!(
        read(JSON, nest(200, "1").as_bytes(), 128).err(),
        Some(TOO_DEEP)
    );
}

/// A content type parameter upstreams read differently is refused: given
/// twice (Werkzeug and python-multipart keep the last, this reader read the
/// first), in RFC 2231's `name*=` form (Werkzeug decodes it), or quoted with
/// escapes or unbalanced quotes. Otherwise the upstream frames a multipart
/// body by another boundary (its base64 part hides `drop table` in what this
/// reader takes for one text part) or decodes another charset.
#[test]
fn content_type_parameters_upstreams_read_differently_are_refused() {
    let hidden = b"--a\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"q\"\r\nContent-Transfer-Encoding: base64\r\n\r\nZHJvcCB0YWJsZQ==\r\n--b--\r\n\r\n--a--\r\n";
    for ct in [
        "multipart/form-data; boundary=a; boundary=b",
        "multipart/form-data; boundary=a; BOUNDARY=b",
        "multipart/form-data; boundary=a; boundary*=utf-8''b",
        "multipart/form-data; boundary*0=a; boundary*1=b",
    ] {
        assert_eq!(
            code(Some(ct), hidden),
            Some("body_multipart_unreadable"),
            "{ct}"
        );
    }
    // The same body with one boundary is readable: the framing is its own.
    assert_eq!(code(Some("multipart/form-data; boundary=a"), hidden), None);
    assert_eq!(
        code(Some("multipart/form-data; boundary=\"a\""), hidden),
        None
    );
    // A boundary Werkzeug unquotes (`\"`, `%22`) or that is not RFC 2046's.
    let quoted = b"--a%22b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv\r\n--a%22b--\r\n";
    assert_eq!(
        code(Some("multipart/form-data; boundary=\"a%22b\""), quoted),
        Some("body_multipart_unreadable")
    );
    let escaped =
        b"--a\\\"b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv\r\n--a\\\"b--\r\n";
    assert_eq!(
        code(Some("multipart/form-data; boundary=\"a\\\"b\""), escaped),
        Some("body_multipart_unreadable")
    );
    // A charset given twice: an upstream may decode UTF-7's `+AGQ-rop`.
    for ct in [
        "text/plain; charset=utf-8; charset=utf-7",
        "text/plain; charset=utf-7; charset=utf-8",
        "text/plain; charset*=utf-8''utf-7",
        "text/plain; charset=\"utf-8",
    ] {
        assert_eq!(
            code(Some(ct), b"+AGQ-rop table"),
            Some("body_unsupported_charset"),
            "{ct}"
        );
    }
    assert_eq!(code(Some("text/plain; charset=\"UTF-8\""), b"x"), None);
    // Twice is refused even when both say UTF-8: one rule, no judging.
    assert_eq!(
        code(Some("text/plain; charset=utf-8; charset=utf8"), b"x"),
        Some("body_unsupported_charset")
    );
}

/// A part header given twice is read differently upstream: Rack takes the
/// first `Content-Disposition` (and the last `name=` in it), this reader
/// took the last header (and the first `name=`); a `_method` part then
/// escaped the method-override check. Refused as broken framing.
#[test]
fn a_multipart_part_whose_name_upstreams_read_differently_is_refused() {
    let ct = Some("multipart/form-data; boundary=b");
    for head in [
        "Content-Disposition: form-data; name=\"_method\"\r\nContent-Disposition: form-data; name=\"x\"",
        "Content-Disposition: form-data; name=\"x\"; name=\"_method\"",
        "Content-Disposition: form-data; name=\"x\"; name*=utf-8''_method",
        "Content-Disposition: form-data; name=\"x\"\r\nContent-Type: text/plain\r\nContent-Type: application/octet-stream",
    ] {
        let body = format!("--b\r\n{head}\r\n\r\nDELETE\r\n--b--\r\n");
        assert_eq!(
            code(ct, body.as_bytes()),
            Some("body_multipart_unreadable"),
            "{head}"
        );
    }
    let one = b"--b\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b--\r\n";
    assert_eq!(code(ct, one), None);
    assert!(method_override::in_body(ct, one).is_some());
}

/// The body reader and the masker read a content type's essence alike
/// (`headers::media_type`): `application/ json` is JSON to both, so a body
/// masks walk as JSON is checked as JSON, not passed on as binary.
#[test]
fn a_content_type_with_spaces_around_the_slash_is_read_as_masks_read_it() {
    use crate::mask::BodyKind;
    for ct in [
        "application/ json",
        "application /json",
        " Application / JSON ; charset=utf-8",
    ] {
        assert_eq!(BodyKind::of(Some(ct)), BodyKind::Json, "{ct}");
        assert_eq!(classify(Some(ct)), Form::Json, "{ct}");
        assert_eq!(
            code(Some(ct), b"{\"a\":1,}"),
            Some("body_invalid_json"),
            "{ct}"
        );
    }
    assert_eq!(
        classify(Some("multipart / form-data; boundary=b")),
        Form::Multipart("b".to_string())
    );
}

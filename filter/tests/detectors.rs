//! The built-in detectors one by one, through the public masking API: the
//! formats each must find, the look-alikes it must leave, and the context
//! words that gate the ambiguous forms.

// Test code: panicking is how it fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use transit_guard::mask::{compile, Masker, MaskingDoc};

fn masker(profile: &str) -> Masker {
    let doc: MaskingDoc =
        serde_json::from_str(&format!(r#"{{"profiles":{{"p":{profile}}}}}"#)).unwrap();
    compile(&doc).unwrap().profile("p").unwrap().clone()
}

fn all() -> Masker {
    masker("{}")
}

fn mask(m: &Masker, input: &str) -> (String, BTreeMap<String, u32>) {
    let (out, counts) = m.mask_text(input);
    (out.unwrap_or_else(|| input.to_string()), counts)
}

/// `before VALUE after` masks exactly VALUE, as `detector`.
#[track_caller]
fn finds(detector: &str, before: &str, value: &str) {
    let input = format!("{before}{value} ok");
    let (out, counts) = mask(&all(), &input);
    assert_eq!(
        out,
        format!("{before}[REDACTED:{detector}] ok"),
        "{value:?} as {detector}: {counts:?}"
    );
}

/// `before VALUE after` is left alone.
#[track_caller]
fn leaves(before: &str, value: &str) {
    let input = format!("{before}{value} ok");
    let (out, counts) = mask(&all(), &input);
    assert_eq!(out, input, "{value:?} was masked: {counts:?}");
}

#[test]
fn phones_with_extensions_dots_and_international_prefixes() {
    for v in [
        "206.269.0743x9150",
        "930.167.3943",
        "+1-780-563-6083x7783",
        "797-386-9073 ext. 12",
        "(235) 337-4068 x124",
        "415-555-2671 extension 7",
        "001-541-754-3010",
        "001-541-754-3010x123",
        "0044 20 7946 0958",
        "00 44 20 7946 0958",
        "00420 702 914 177",
        "+44(0)115 4960914",
        "+(370) 39150008",
        "(+358) 083778353",
        "+43 (0) 5369 07439150",
        "+7 (914) 177-76-31",
    ] {
        finds("phone", "see ", v);
    }
}

#[test]
fn national_phone_formats_with_a_trunk_zero() {
    for v in [
        "(08) 8747 6301",
        "0688 872 49 99",
        "020 7946 0958",
        "(0161) 4960066",
        "080-9141-7776",
        "04 15 39 15 00",
        "0247 914 177",
        "(0406)-812415",
        "058-1241586",
    ] {
        finds("phone", "see ", v);
    }
}

#[test]
fn ambiguous_phones_need_a_context_word() {
    for v in [
        "99 577450",
        "3420837783",
        "609 141 777",
        "8 812 415 86 83",
        "78/405 6206",
        "(75)/533-6264",
    ] {
        finds("phone", "Call me at ", v);
        finds("phone", "Tel.: ", v);
        finds("phone", r#"{"mobile": ""#, v);
        leaves("see ", v);
    }
    // Another number between the word and the value, or a word naming
    // another kind of number, ends the search.
    leaves(r#"{"phone":"n/a","id":"1234","ref":"#, "3420837783");
    leaves("Please call us with your order number ", "3420837783");
}

#[test]
fn phone_look_alikes_are_left() {
    // Shapes no phone number has: left even after a context word.
    for v in [
        "2024-01-15",
        "15.01.2024",
        "01.02.2024 10",
        "12:30:45",
        "v1.2.3",
        "10.0.19045.3803",
        "978-3-16-148410-0",
        "0-306-40615-2",
        "+1234",
        "$1,234,567.89",
        "7f9c0000-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
    ] {
        leaves("see ", v);
        leaves("Call me on ", v);
    }
    // Digit runs that could be phone numbers: left without a context word.
    for v in [
        "1700000000",
        "1700000000123",
        "0012345678",
        "1 234 567",
        "0660 7231 3406",
        "0061 0525 5433",
    ] {
        leaves("see ", v);
    }
}

#[test]
fn context_words_are_configurable() {
    let m = masker(r#"{"context":{"phone":["ruf"]}}"#);
    assert_eq!(mask(&m, "Ruf 3420837783 an").0, "Ruf [REDACTED:phone] an");
    assert_eq!(mask(&m, "Call 3420837783").0, "Call 3420837783");
    // An empty list turns the context-gated forms off; the others stay.
    let m = masker(r#"{"context":{"phone":[]}}"#);
    assert_eq!(mask(&m, "Call 3420837783").0, "Call 3420837783");
    assert_eq!(mask(&m, "Call 020 7946 0958").0, "Call [REDACTED:phone]");
}

#[test]
fn context_option_errors_name_the_field() {
    for (profile, path) in [
        (
            r#"{"context":{"email":["mail"]}}"#,
            "masking.profiles.p.context.email",
        ),
        (
            r#"{"detectors":["email"],"context":{"phone":["tel"]}}"#,
            "masking.profiles.p.context.phone",
        ),
        (
            r#"{"context":{"phone":[" "]}}"#,
            "masking.profiles.p.context.phone[0]",
        ),
    ] {
        let doc: MaskingDoc =
            serde_json::from_str(&format!(r#"{{"profiles":{{"p":{profile}}}}}"#)).unwrap();
        let err = compile(&doc).unwrap_err();
        assert_eq!(err.path, path, "{profile}: {err}");
    }
}

#[test]
fn maestro_twelve_digits_and_lowercase_ibans() {
    finds("credit_card", "card ", "579258991390");
    finds("credit_card", "card ", "5018 0000 0009");
    leaves("card ", "411111111116");
    // Luhn-valid, but no network issues these prefixes at these lengths.
    leaves("ts ", "1712781738835");
    leaves("ts ", "123332494745895");
    finds("iban", "pay ", "de89 3704 0044 0532 0130 00");
    finds("iban", "pay ", "gb82west12345698765432");
    leaves("pay ", "de88 3704 0044 0532 0130 00");
}

#[test]
fn aba_routing_numbers_in_context() {
    finds("aba_routing", "routing number ", "021000021");
    finds("aba_routing", "ABA ", "121000358");
    leaves("routing number ", "021000022");
    leaves("order ", "021000021");
    leaves("see ", "021000021");
}

#[test]
fn uk_nino_and_indian_pan() {
    finds("uk_nino", "NI ", "AB123456C");
    finds("uk_nino", "NI ", "AB 12 34 56 C");
    leaves("NI ", "GB123456C");
    leaves("NI ", "AB123456E");
    leaves("code ", "QQ123456C");
    finds("in_pan", "PAN ", "ABCPE1234F");
    leaves("PAN ", "ABCXE1234F");
    leaves("PAN ", "ABCPE1234FG");
}

#[test]
fn canadian_sin_in_context() {
    finds("ca_sin", "SIN: ", "130 692 544");
    finds("ca_sin", "social insurance number ", "271-934-879");
    leaves("SIN: ", "130 692 545");
    leaves("see ", "130692544");
}

#[test]
fn aadhaar_in_context() {
    finds("in_aadhaar", "Aadhaar ", "2345 6789 0124");
    finds("in_aadhaar", "Aadhaar ", "234567890124");
    // The same digits are a tracking number's shape: not without the word.
    leaves("tracking ", "2345 6789 0124");
    leaves("id ", "234567890124");
    leaves("Aadhaar ", "2345 6789 0123");
    // Also a Luhn-valid 12-digit Maestro number: an Aadhaar after its word.
    finds("in_aadhaar", "Aadhaar ", "504391500080");
    finds("credit_card", "card ", "504391500080");
}

#[test]
fn eu_vat_numbers_with_a_check() {
    for v in [
        "ATU13585627",
        "BE0428759497",
        "DE136695976",
        "DE 136695976",
        "DK13585628",
        "ESA28015865",
        "FR40303265045",
        "IT00743110157",
        "NL004495445B01",
        "PL8567346215",
        "SE556188840401",
    ] {
        finds("eu_vat", "VAT ", v);
    }
    for v in [
        "DE136695977",
        "FR41303265045",
        "IT00743110158",
        "XX136695976",
    ] {
        leaves("VAT ", v);
    }
}

#[test]
fn crypto_wallets() {
    finds("crypto_wallet", "to ", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa");
    finds("crypto_wallet", "to ", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy");
    finds(
        "crypto_wallet",
        "to ",
        "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
    );
    // Litecoin, a `1` where a bech32 address has its separator.
    finds("crypto_wallet", "to ", "LX1bB4g1xMj8bs37MwY5MkvZpdLWg47hDm");
    leaves("to ", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb");
    leaves("to ", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdr");
}

#[test]
fn passports_and_driver_licences_only_in_context() {
    finds("us_passport", "passport ", "796669725");
    finds("us_passport", "passport number ", "B27346468");
    leaves("see ", "B27346468");
    finds("us_driver_license", "driver's license ", "D1234567");
    finds("us_driver_license", "DL: ", "X940394029077");
    leaves("see ", "D1234567");
}

#[test]
fn context_gated_values_split_at_every_offset_in_a_stream() {
    let m = all();
    let text = "Call me at 3420837783 or routing 021000021; Aadhaar 234567890124. Bye";
    let whole = m.mask(Some("text/plain"), text.as_bytes()).body.unwrap();
    let whole = String::from_utf8(whole).unwrap();
    assert_eq!(
        whole,
        "Call me at [REDACTED:phone] or routing [REDACTED:aba_routing]; Aadhaar [REDACTED:in_aadhaar]. Bye"
    );
    for cut in 0..=text.len() {
        let mut s = transit_guard::mask::StreamMasker::new(&m, 64);
        let mut out = s.push(&text.as_bytes()[..cut]);
        out.extend(s.push(&text.as_bytes()[cut..]));
        let (rest, _) = s.finish();
        out.extend(rest);
        assert_eq!(String::from_utf8(out).unwrap(), whole, "cut at {cut}");
    }
}

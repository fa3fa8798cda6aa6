//! Context words: an ambiguous value (`0688 872 49 99`, a bare 9-digit
//! number) is taken as a phone number, routing number or passport number
//! only when a word naming it comes shortly before it, as Presidio's context
//! enhancement does for its weak patterns.
//!
//! Only what comes *before* the value is read (at most [`WINDOW`] bytes and
//! [`MAX_WORDS`] words): the stream masker keeps 256 bytes of look-behind
//! but never waits for what follows a value, so a check may not depend on it.
//!
//! The search stops early at anything that says the number is something
//! else: another number in between (`"phone":"555 0100","id":"123456789"`:
//! the id is not a phone number), or a word such as `order` or `invoice`.

/// How far back the words may be.
pub(crate) const WINDOW: usize = 48;
/// How many words back.
pub(crate) const MAX_WORDS: usize = 5;

/// Words that name another kind of number: the search stops at them.
const STOP_WORDS: &[&str] = &[
    "order",
    "invoice",
    "tracking",
    "sku",
    "isbn",
    "version",
    "serial",
    "ticket",
    "receipt",
    "ref",
    "reference",
];

/// Default context words per detector (lowercase). A word in the text
/// matches one of these when equal to it, or when it starts with it and the
/// context word has at least 5 characters (`phone` finds `phoneNumber`,
/// `telefon` finds `Telefonnummer`).
pub(crate) fn default_words(detector: &str) -> &'static [&'static str] {
    match detector {
        "phone" => &[
            "phone",
            "telephone",
            "tel",
            "tél",
            "tlf",
            "tfn",
            "ph",
            "mob",
            "mobile",
            "mobil",
            "móvil",
            "cell",
            "cellphone",
            "cellular",
            "celular",
            "cellulare",
            "handy",
            "fax",
            "call",
            "calls",
            "called",
            "calling",
            "dial",
            "ring",
            "sms",
            "text",
            "whatsapp",
            "hotline",
            "landline",
            "telefon",
            "telefono",
            "teléfono",
            "telefone",
            "téléphone",
            "telefoon",
            "portable",
            "puhelin",
            "gsm",
            "телефон",
            "тел",
            "電話",
            "电话",
            "手机",
            "携帯",
            "전화",
        ],
        "aba_routing" => &["routing", "aba", "rtn", "ach", "transit", "abartn"],
        "ca_sin" => &["sin", "social", "insurance", "nas", "assurance"],
        "in_aadhaar" => &["aadhaar", "aadhar", "uidai", "uid"],
        "us_passport" => &["passport", "passports"],
        "us_driver_license" => &[
            "driver", "drivers", "driving", "license", "licence", "dl", "dln", "permit",
        ],
        _ => &[],
    }
}

/// The detectors that have context-gated forms.
pub(crate) const DETECTORS: &[&str] = &[
    "phone",
    "aba_routing",
    "ca_sin",
    "in_aadhaar",
    "us_passport",
    "us_driver_license",
];

/// True if one of `words` (lowercase) is among the few words before `s`.
pub(crate) fn has_context(hay: &[u8], s: usize, words: &[Box<str>]) -> bool {
    if words.is_empty() {
        return false;
    }
    let from = s.saturating_sub(WINDOW);
    let Some(before) = hay.get(from..s) else {
        return false;
    };
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b >= 0x80;
    let mut end = before.len();
    for _ in 0..MAX_WORDS {
        // Skip back over separators, then take the word before them.
        while end > 0 && before.get(end - 1).is_some_and(|&b| !is_word(b)) {
            end -= 1;
        }
        let mut start = end;
        while start > 0 && before.get(start - 1).is_some_and(|&b| is_word(b)) {
            start -= 1;
        }
        // A word cut by the window's edge (or cut mid-character) is not read.
        if start == end || (start == 0 && from > 0) {
            return false;
        }
        let Some(word) = before.get(start..end) else {
            return false;
        };
        let digits = word.iter().filter(|b| b.is_ascii_digit()).count();
        if digits >= 3 {
            return false;
        }
        // Every number-shaped candidate comes here: an ASCII word (nearly
        // all of them) is lowercased on the stack, not through a String.
        let mut ascii = [0u8; WINDOW];
        let unicode;
        let word: &[u8] = match ascii.get_mut(..word.len()) {
            Some(buf) if word.is_ascii() => {
                buf.copy_from_slice(word);
                buf.make_ascii_lowercase();
                buf
            }
            _ => {
                unicode = String::from_utf8_lossy(word).to_lowercase();
                unicode.as_bytes()
            }
        };
        if words.iter().any(|w| matches(word, w)) {
            return true;
        }
        if STOP_WORDS.iter().any(|s| s.as_bytes() == word) {
            return false;
        }
        end = start;
    }
    false
}

/// `word` is `context`, or starts with it and `context` has 5 characters
/// or more (compared as UTF-8 bytes: equality and prefixes are the same).
fn matches(word: &[u8], context: &str) -> bool {
    let bytes = context.as_bytes();
    // Most words differ in the first byte: settle those without a compare.
    if word.first() != bytes.first() {
        return false;
    }
    word == bytes || (word.starts_with(bytes) && context.chars().count() >= 5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(text: &str, words: &[&str]) -> bool {
        let words: Vec<Box<str>> = words.iter().map(|w| (*w).into()).collect();
        has_context(text.as_bytes(), text.len(), &words)
    }

    #[test]
    fn words_before_the_value() {
        let phone = default_words("phone");
        assert!(ctx("Call me at ", phone));
        assert!(ctx("Tel.: ", phone));
        assert!(ctx("{\"phoneNumber\": \"", phone));
        assert!(ctx("Telefonnummer: ", phone));
        assert!(ctx("电话 ", phone));
        assert!(ctx("Mobile ", phone));
        // Too far back, or a number or a stop word in between.
        assert!(!ctx("phone one two three four five six ", phone));
        assert!(!ctx("{\"phone\":\"555 0100\",\"id\":\"", phone));
        assert!(!ctx("call about order ", phone));
        assert!(!ctx("the number is ", phone));
        assert!(!ctx("", phone));
        // `tel` is short: only the whole word.
        assert!(!ctx("television ", phone));
        assert!(!ctx("Call me at ", &[]));
    }
}

//! The phone and card checks as they were before their one-pass rewrite,
//! kept to prove the rewrite gives the same verdict on every input.

use super::{
    after, before, continues_number, digits, is_word, luhn, starts_inside_number, PhoneForm,
};

pub(crate) fn phone(hay: &[u8], s: usize, e: usize, text: &[u8], form: PhoneForm) -> bool {
    // The surroundings first: they reject most candidates, cheaply.
    let alone = !starts_inside_number(hay, s)
        && !is_word(before(hay, s))
        && !matches!(before(hay, s), Some(b'-' | b'.' | b'/' | b'+'))
        && !is_word(after(hay, e))
        && !continues_number(hay, e);
    if !alone {
        return false;
    }
    // The extension (`x565`, ` ext. 12`) starts at the first letter.
    let number = text
        .iter()
        .position(u8::is_ascii_alphabetic)
        .and_then(|i| text.get(..i))
        .unwrap_or(text)
        .trim_ascii_end();
    let n = digits(number).count();
    let digits_ok = match form {
        // `00` is the international call prefix, not part of the number;
        // written out without any separator it is a zero-padded id.
        PhoneForm::International if number.starts_with(b"00") => {
            (9..=17).contains(&n) && number.iter().skip(2).any(|b| !b.is_ascii_digit())
        }
        PhoneForm::International | PhoneForm::InContext => (7..=15).contains(&n),
        PhoneForm::NorthAmerican => (10..=11).contains(&n),
        PhoneForm::Trunk => (9..=13).contains(&n),
    };
    let opens = number.iter().filter(|&&b| b == b'(').count();
    let closes = number.iter().filter(|&&b| b == b')').count();
    if !digits_ok || opens != closes || opens > 2 {
        return false;
    }
    // A one-digit group after the first reads as an ISBN (`978-3-16-148410-0`)
    // or a version (`10.0.19045`), except after a country code (`+33 1 83`);
    // groups of 3-2-4 are an SSN's shape (a mistyped one is no phone either);
    // groups of four only (`0660 7231 3406`) are a card's or a tracking
    // number's shape, unless a `+` says it is dialled. (No allocation: this
    // runs for every phone-shaped candidate.)
    let mut lens = [0usize; 16];
    let mut count = 0;
    for g in number
        .split(|b| !b.is_ascii_digit())
        .filter(|g| !g.is_empty())
    {
        if let Some(slot) = lens.get_mut(count) {
            *slot = g.len();
        }
        count += 1;
    }
    let groups = lens.get(..count.min(16)).unwrap_or_default();
    let not_phone_shape = (form != PhoneForm::International
        && groups.iter().skip(1).any(|&g| g == 1))
        || groups == [3, 2, 4]
        || (groups.len() >= 3 && groups.iter().all(|&g| g == 4) && !number.contains(&b'+'));
    let first = digits(number).next();
    !not_phone_shape && !digits(number).all(|d| Some(d) == first) && !looks_like_date(number)
}

fn looks_like_date(text: &[u8]) -> bool {
    let num = |g: &[u8]| {
        g.iter()
            .fold(0u32, |a, b| a.saturating_mul(10) + u32::from(b - b'0'))
    };
    let day_month = |d: &[u8], m: &[u8]| {
        d.len() <= 2 && m.len() <= 2 && (1..=31).contains(&num(d)) && (1..=12).contains(&num(m))
    };
    let mut groups = text
        .split(|b| !b.is_ascii_digit())
        .filter(|g| !g.is_empty());
    let (Some(mut a), Some(mut b)) = (groups.next(), groups.next()) else {
        return false;
    };
    for c in groups {
        if (c.len() == 4 && (day_month(a, b) || day_month(b, a)))
            || (a.len() == 4 && day_month(c, b))
        {
            return true;
        }
        (a, b) = (b, c);
    }
    false
}

pub(crate) fn card(hay: &[u8], s: usize, e: usize, text: &[u8]) -> bool {
    let n = digits(text).count();
    let mut seps = text.iter().filter(|b| !b.is_ascii_digit());
    let sep = seps.next();
    let first = digits(text).next();
    let p4 = digits(text)
        .take(4)
        .fold(0u32, |a, d| a * 10 + u32::from(d));
    let p2 = p4 / 100;
    let network = match n {
        12 => matches!(p2, 50 | 56..=58 | 67) || matches!(p4, 604 | 6304 | 6390),
        13 => first == Some(4),
        14 => matches!(p2, 30 | 36 | 38 | 39),
        15 => matches!(p2, 34 | 37) || matches!(p4, 1800 | 2131),
        16..=19 => matches!(first, Some(2..=6)) || p4 == 604,
        _ => false,
    };
    network
        && seps.all(|b| Some(b) == sep)
        && !digits(text).all(|d| Some(d) == first)
        && luhn(text)
        && !starts_inside_number(hay, s)
        && !continues_number(hay, e)
}

"""A labelled masking corpus: PII planted in sentences, and negatives that
look like PII (order numbers, timestamps, versions, UUIDs, prices, ISBNs,
tracking numbers) but must never be masked.

Values come from Faker in many locales; identifiers Faker does not make valid
(VAT numbers, NINOs, wallets, PANs) are generated here and every checksummed
value is kept only if python-stdnum's independent implementation accepts it.

Usage: generate.py OUT_DIR [--records N] [--seed S] [--jsonl PATH]
Writes OUT_DIR/generated.txt (one record per line: what is masked) and
OUT_DIR/generated.labels.jsonl (per line: {"planted": [[detector, value]],
"negative": [kind, value] or null, "locale": ...}). `--jsonl` also writes
text and labels together, one JSON record a line (the sample the Rust test
`filter/tests/mask_generated.rs` reads).
"""

import argparse
import hashlib
import json
import os
import random
import string

from faker import Faker
from stdnum import isbn, luhn, verhoeff
from stdnum.ca import sin as ca_sin
from stdnum.eu import vat as eu_vat
from stdnum.in_ import aadhaar, pan
from stdnum.us import rtn
import stdnum.bitcoin as bitcoin

PHONE_LOCALES = [
    "en_US", "en_GB", "en_AU", "en_CA", "en_IN", "en_NZ", "en_IE", "de_DE", "de_AT",
    "de_CH", "fr_FR", "fr_CH", "es_ES", "es_MX", "it_IT", "nl_NL", "pt_BR", "pt_PT",
    "pl_PL", "sv_SE", "da_DK", "fi_FI", "cs_CZ", "sk_SK", "hu_HU", "ro_RO", "bg_BG",
    "hr_HR", "sl_SI", "lt_LT", "lv_LV", "el_GR", "tr_TR", "ru_RU", "uk_UA", "he_IL",
    "ja_JP", "ko_KR", "zh_CN", "zh_TW", "id_ID", "th_TH", "vi_VN", "hi_IN",
]
IBAN_LOCALES = ["de_DE", "fr_FR", "en_GB", "es_ES", "it_IT", "nl_NL", "pl_PL", "pt_PT",
                "fi_FI", "de_AT", "de_CH", "fr_CH", "no_NO", "da_DK", "sv_SE", "cs_CZ"]

# Sentences a value sits in. `{v}` is the value, `{name}`/`{city}` filler.
PHONE_TEMPLATES = [
    # With a word saying what it is.
    "Call me at {v} tomorrow.",
    "Phone: {v}",
    "My phone number is {v}, ask for {name}.",
    "Tel. {v} (office hours only)",
    "Mobile {v} / {name}",
    '{{"name": "{name}", "phone": "{v}", "city": "{city}"}}',
    "You can text {name} on {v} any time.",
    "Fax: {v}",
    # Without one.
    "You can reach {name} at {v} after 5pm.",
    "{name}, {city}, {v}",
    "Contact {name} ({v}) about the delivery.",
    "Leave a message for {name} at {v}.",
]
TEMPLATES = {
    "email": ["Send the report to {v} today.", "{name} <{v}>", '{{"email": "{v}"}}',
              "Reply from {v}: thanks."],
    "credit_card": ["Card number {v} was charged.", "Paid with {v} exp 04/27.",
                    "{name} used card {v} at the store.", '{{"card": "{v}"}}'],
    "ssn": ["SSN {v} on file for {name}.", "{name}'s social security number is {v}.",
            "Tax id: {v}"],
    "iban": ["Please wire the amount to {v} by Friday.", "IBAN: {v}",
             "{name} changed the account to {v}."],
    "ipv4": ["Login from {v} blocked.", "server={v} port=443", "{name} connected via {v}."],
    "ipv6": ["Login from {v} blocked.", "peer {v} reset the connection"],
    "aba_routing": ["Routing number {v}, account 00123.", "ABA {v} for the wire.",
                    "Use routing {v} for ACH transfers."],
    "ca_sin": ["SIN: {v}", "{name}'s social insurance number is {v}.", "NAS {v}"],
    "in_aadhaar": ["Aadhaar {v} verified.", "{name} gave Aadhaar number {v}.",
                   "UID {v}"],
    "in_pan": ["PAN {v} linked.", "{name} (PAN: {v}) filed the return.", "Tax id {v}"],
    "uk_nino": ["NI number {v}", "{name}'s National Insurance number is {v}.",
                "NINO: {v}"],
    "eu_vat": ["VAT ID {v}", "Invoice to {name}, VAT {v}, {city}.", "USt-IdNr. {v}"],
    "crypto_wallet": ["Send 0.1 BTC to {v}.", "Wallet: {v}", "{name} paid from {v}."],
    "us_passport": ["Passport {v} expires next year.", "{name}'s passport number is {v}."],
    "us_driver_license": ["Driver's license {v}", "{name} showed driver license {v}.",
                          "DL: {v}"],
}
NEGATIVE_TEMPLATES = [
    "Your order {v} has shipped.",
    "Reference: {v}",
    "{name} noted {v} in the ticket.",
    "Seen {v} in {city}.",
    "Please call us with your order number {v}.",
    '{{"id": "{v}", "name": "{name}"}}',
]


def luhn_complete(body):
    return body + luhn.calc_check_digit(body)


def card(r, fake):
    kind = r.choice(["visa16", "visa13", "mastercard", "amex", "discover", "jcb16",
                     "diners", "maestro"])
    n = fake.credit_card_number(card_type=kind)
    assert luhn.is_valid(n), n
    style = r.random()
    if style < 0.4 or len(n) not in (15, 16):
        return n
    if len(n) == 15:
        return f"{n[:4]} {n[4:10]} {n[10:]}"
    sep = " " if style < 0.8 else "-"
    return sep.join(n[i:i + 4] for i in range(0, 16, 4))


IBAN_FAKERS = {}


def iban_faker(r):
    loc = r.choice(IBAN_LOCALES)
    if loc not in IBAN_FAKERS:
        IBAN_FAKERS[loc] = Faker(loc)
        IBAN_FAKERS[loc].seed_instance(r.getrandbits(32))
    return IBAN_FAKERS[loc]


def iban(r):
    v = iban_faker(r).iban()
    style = r.random()
    if style < 0.4:
        return v
    spaced = " ".join(v[i:i + 4] for i in range(0, len(v), 4))
    return spaced.lower() if style > 0.85 else spaced


def aba(r, fake):
    while True:
        v = fake.aba()
        if rtn.is_valid(v):
            return v


def sin(r):
    while True:
        body = str(r.choice([1, 2, 3, 4, 5, 6, 7, 9])) + "".join(r.choice(string.digits) for _ in range(7))
        v = luhn_complete(body)
        if ca_sin.is_valid(v):
            return r.choice([v, f"{v[:3]} {v[3:6]} {v[6:]}", f"{v[:3]}-{v[3:6]}-{v[6:]}"])


def aadhaar_id(r):
    while True:
        body = str(r.randint(2, 9)) + "".join(r.choice(string.digits) for _ in range(10))
        v = body + verhoeff.calc_check_digit(body)
        if aadhaar.is_valid(v):
            return r.choice([f"{v[:4]} {v[4:8]} {v[8:]}", f"{v[:4]}-{v[4:8]}-{v[8:]}", v])


def pan_id(r):
    while True:
        letters = string.ascii_uppercase
        v = ("".join(r.choice(letters) for _ in range(3)) + r.choice("PCHFATBLJG") +
             r.choice(letters) + "".join(r.choice(string.digits) for _ in range(4)) +
             r.choice(letters))
        if pan.is_valid(v):
            return v


def nino(r):
    first = [c for c in string.ascii_uppercase if c not in "DFIQUV"]
    second = [c for c in string.ascii_uppercase if c not in "DFIOQUV"]
    while True:
        p = r.choice(first) + r.choice(second)
        if p not in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):
            break
    d = "".join(r.choice(string.digits) for _ in range(6))
    s = r.choice("ABCD")
    return r.choice([f"{p}{d}{s}", f"{p} {d[:2]} {d[2:4]} {d[4:]} {s}"])


VAT_SHAPES = {
    "AT": lambda r: "U" + digits(r, 8), "BE": lambda r: r.choice("01") + digits(r, 9),
    "DE": lambda r: str(r.randint(1, 9)) + digits(r, 8), "DK": lambda r: str(r.randint(1, 9)) + digits(r, 7),
    "EE": lambda r: "10" + digits(r, 7), "EL": lambda r: digits(r, 9),
    "ES": lambda r: r.choice("ABEHG") + digits(r, 8), "FI": lambda r: digits(r, 8),
    "FR": lambda r: digits(r, 11), "HR": lambda r: digits(r, 11), "HU": lambda r: digits(r, 8),
    "IT": lambda r: digits(r, 7) + r.choice(["001", "012", "045", "099"]) + digits(r, 1),
    "LU": lambda r: digits(r, 8), "NL": lambda r: digits(r, 9) + "B" + r.choice(["01", "02"]),
    "PL": lambda r: digits(r, 10), "PT": lambda r: str(r.randint(1, 9)) + digits(r, 8),
    "SE": lambda r: digits(r, 10) + "01", "SI": lambda r: str(r.randint(1, 9)) + digits(r, 7),
}


def digits(r, n):
    return "".join(r.choice(string.digits) for _ in range(n))


def vat(r, valid=True):
    cc = r.choice(sorted(VAT_SHAPES))
    while True:
        v = cc + VAT_SHAPES[cc](r)
        if eu_vat.is_valid(v) == valid:
            return v


B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58check(payload):
    raw = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    n = int.from_bytes(raw, "big")
    out = ""
    while n:
        n, m = divmod(n, 58)
        out = B58[m] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


BECH = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def bech32_polymod(values):
    gen = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3]
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1ffffff) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if ((top >> i) & 1) else 0
    return chk


def bech32_address(r, hrp="bc"):
    version = r.choice([0, 1])
    prog = bytes(r.getrandbits(8) for _ in range(20 if version == 0 else 32))
    acc, bits, data = 0, 0, [version]
    for b in prog:
        acc = (acc << 8) | b
        bits += 8
        while bits >= 5:
            bits -= 5
            data.append((acc >> bits) & 31)
    if bits:
        data.append((acc << (5 - bits)) & 31)
    const = 1 if version == 0 else 0x2bc830a3
    hrp_exp = [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]
    pm = bech32_polymod(hrp_exp + data + [0] * 6) ^ const
    data += [(pm >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(BECH[d] for d in data)


def wallet(r):
    if r.random() < 0.5:
        v = b58check(bytes([r.choice([0x00, 0x05])]) + bytes(r.getrandbits(8) for _ in range(20)))
        assert bitcoin.is_valid(v), v
        return v
    return bech32_address(r)


def passport(r, fake):
    return fake.passport_number()


def driver_license(r):
    shape = r.randrange(4)
    letters = string.ascii_uppercase
    if shape == 0:
        return r.choice(letters) + digits(r, 7)
    if shape == 1:
        return r.choice(letters) + digits(r, 12)
    if shape == 2:
        return digits(r, 9)
    return "".join(r.choice(letters) for _ in range(2)) + digits(r, 6)


def negative(r, fake):
    """A value that looks like PII and is not: (kind, value)."""
    kind = r.choice(["order", "timestamp", "version", "uuid", "price", "isbn", "tracking",
                     "invoice", "sku", "quantity", "bad_checksum"])
    if kind == "order":
        v = r.choice([digits(r, r.randint(6, 12)), "#" + digits(r, 8),
                      f"{r.randint(2019, 2026)}-{digits(r, 6)}", "ORD-" + digits(r, 9),
                      f"{digits(r, 3)}-{digits(r, 7)}-{digits(r, 7)}"])
    elif kind == "timestamp":
        dt = fake.date_time_between("-5y", "+1y")
        v = r.choice([dt.isoformat(), dt.strftime("%Y-%m-%d %H:%M:%S"), str(int(dt.timestamp())),
                      str(int(dt.timestamp() * 1000)), dt.strftime("%d.%m.%Y %H:%M"),
                      dt.strftime("%d/%m/%Y"), dt.strftime("%m/%d/%Y %I:%M %p"),
                      dt.strftime("%Y%m%d%H%M%S")])
    elif kind == "version":
        v = r.choice([f"v{r.randint(0, 20)}.{r.randint(0, 40)}.{r.randint(0, 99)}",
                      f"{r.randint(1, 12)}.{r.randint(0, 9)}.{r.randint(0, 30)}-rc.{r.randint(1, 5)}",
                      f"10.0.{r.randint(10000, 22999)}.{r.randint(100, 9999)}",
                      f"build {r.randint(2020, 2026)}.{r.randint(1, 12):02d}.{r.randint(1, 28):02d}.{r.randint(1, 999)}"])
    elif kind == "uuid":
        v = r.choice([fake.uuid4(), fake.uuid4().upper(), fake.uuid4().replace("-", "")])
    elif kind == "price":
        amount = r.uniform(1, 2_000_000)
        v = r.choice([f"${amount:,.2f}", f"{amount:,.2f} EUR".replace(",", " "),
                      f"{amount:,.2f} €".replace(",", "X").replace(".", ",").replace("X", "."),
                      f"JPY {int(amount):,}", f"{int(amount)} CHF", f"USD {amount:.2f}"])
    elif kind == "isbn":
        v13 = fake.isbn13()
        assert isbn.is_valid(v13)
        v = r.choice([v13, v13.replace("-", ""), fake.isbn10(), isbn.to_isbn10(v13.replace("-", "")) or v13])
    elif kind == "tracking":
        v = r.choice(["1Z" + "".join(r.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
                      digits(r, 12), digits(r, 15), "9400" + digits(r, 18), digits(r, 10),
                      "JD" + digits(r, 18), f"{digits(r, 4)} {digits(r, 4)} {digits(r, 4)}"])
    elif kind == "invoice":
        v = r.choice([f"INV-{r.randint(2020, 2026)}-{digits(r, 5)}", f"RE{digits(r, 10)}",
                      f"{digits(r, 4)}/{digits(r, 2)}/{digits(r, 4)}"])
    elif kind == "sku":
        v = r.choice(["".join(r.choice(string.ascii_uppercase) for _ in range(3)) + "-" + digits(r, 5),
                      "SKU" + digits(r, 8), fake.ean13(), fake.ean8()])
    elif kind == "quantity":
        v = r.choice([f"{r.randint(1000, 99999999):,} units", f"{r.randint(1, 999)} {r.randint(100, 999)} {r.randint(100, 999)} items"])
    else:  # an identifier whose check fails
        v = r.choice([bad_card(r), vat(r, valid=False), bad_iban(r)])
    return kind, v


def bad_card(r):
    n = "4" + digits(r, 14)
    n = luhn_complete(n)
    return n[:-1] + str((int(n[-1]) + 1 + r.randrange(9)) % 10)


def bad_iban(r):
    v = iban_faker(r).iban()
    return v[:2] + f"{(int(v[2:4]) + 1) % 100:02d}" + v[4:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--records", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--jsonl")
    args = ap.parse_args()
    r = random.Random(args.seed)
    Faker.seed(args.seed)
    fakers = {loc: Faker(loc) for loc in set(PHONE_LOCALES + ["en_US"])}
    en = fakers["en_US"]
    detectors = ["phone"] * 8 + sorted(TEMPLATES)
    os.makedirs(args.out, exist_ok=True)
    combined = open(args.jsonl, "w") if args.jsonl else None
    with open(os.path.join(args.out, "generated.txt"), "w") as text, \
            open(os.path.join(args.out, "generated.labels.jsonl"), "w") as labels:
        for i in range(args.records):
            loc = r.choice(PHONE_LOCALES)
            fake = fakers[loc]
            name, city = en.name(), en.city()
            label = {"planted": [], "negative": None, "locale": None}
            if i % 3 == 2:
                kind, v = negative(r, en)
                line = r.choice(NEGATIVE_TEMPLATES).format(v=v, name=name, city=city)
                label["negative"] = [kind, v]
            else:
                det = r.choice(detectors)
                if det == "phone":
                    v = fake.phone_number()
                    label["locale"] = loc
                    line = r.choice(PHONE_TEMPLATES).format(v=v, name=name, city=city)
                else:
                    v = {
                        "email": lambda: en.email(),
                        "credit_card": lambda: card(r, en),
                        "ssn": lambda: en.ssn(),
                        "iban": lambda: iban(r),
                        "ipv4": lambda: en.ipv4(),
                        "ipv6": lambda: en.ipv6(),
                        "aba_routing": lambda: aba(r, en),
                        "ca_sin": lambda: sin(r),
                        "in_aadhaar": lambda: aadhaar_id(r),
                        "in_pan": lambda: pan_id(r),
                        "uk_nino": lambda: nino(r),
                        "eu_vat": lambda: vat(r),
                        "crypto_wallet": lambda: wallet(r),
                        "us_passport": lambda: passport(r, en),
                        "us_driver_license": lambda: driver_license(r),
                    }[det]()
                    line = r.choice(TEMPLATES[det]).format(v=v, name=name, city=city)
                label["planted"].append([det, v])
            assert "\n" not in line
            text.write(line + "\n")
            labels.write(json.dumps(label, ensure_ascii=False) + "\n")
            if combined:
                combined.write(json.dumps({"text": line, **label}, ensure_ascii=False) + "\n")
    if combined:
        combined.close()


if __name__ == "__main__":
    main()

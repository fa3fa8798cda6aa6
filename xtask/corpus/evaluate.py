"""Per-detector precision and recall of `transit-guard mask` on a labelled corpus.

Usage:
  evaluate.py generated LABELS MASKED      # the generated corpus (one record a line)
  evaluate.py existing CORPUS CLI POLICY   # filter/tests/data/mask_corpus.jsonl

A planted value is found when it no longer appears in its masked record and
the record has a `[REDACTED:detector]` of its detector. Every other
`[REDACTED:d]` is a false positive of d. On the negatives (values that look
like PII and are not), the false-positive rate of d is the share of negative
records d masked anything in. Prints Markdown tables.
"""

import collections
import json
import re
import subprocess
import sys

MARK = re.compile(r"\[REDACTED:([a-z0-9_]+)\]")


class Score:
    def __init__(self):
        self.planted = self.found = self.fp = self.neg_hits = 0


def score_record(scores, masked, planted, negative):
    marks = collections.Counter(MARK.findall(masked))
    for det, *frags in planted:
        s = scores[det]
        s.planted += 1
        if marks[det] > 0 and all(f not in masked for f in frags):
            s.found += 1
            marks[det] -= 1
    for det, n in marks.items():
        scores[det].fp += n
        if negative is not None and n > 0:
            scores[det].neg_hits += 1


def table(scores, negatives=None):
    head = "| detector | planted | found | false positives | precision | recall |"
    sep = "| --- | ---: | ---: | ---: | ---: | ---: |"
    if negatives is not None:
        head += " FP rate on negatives |"
        sep += " ---: |"
    rows = [head, sep]
    tot = Score()
    for det in sorted(scores):
        s = scores[det]
        p = s.found / (s.found + s.fp) if s.found + s.fp else 1.0
        r = s.found / s.planted if s.planted else float("nan")
        row = f"| {det} | {s.planted} | {s.found} | {s.fp} | {p:.3f} | " + (
            f"{r:.3f} |" if s.planted else "- |")
        if negatives is not None:
            row += f" {100 * s.neg_hits / max(negatives, 1):.2f}% |"
        rows.append(row)
        tot.planted += s.planted
        tot.found += s.found
        tot.fp += s.fp
    p = tot.found / (tot.found + tot.fp) if tot.found + tot.fp else 1.0
    rows.append(f"| **all** | {tot.planted} | {tot.found} | {tot.fp} | {p:.3f} | "
                f"{tot.found / max(tot.planted, 1):.3f} |" + (" |" if negatives is not None else ""))
    return "\n".join(rows)


def generated(labels_path, masked_path):
    scores = collections.defaultdict(Score)
    by_locale = collections.defaultdict(lambda: [0, 0])
    by_negative = collections.Counter()
    negative_kinds = collections.Counter()
    misses = []
    negatives = 0
    with open(labels_path) as lf, open(masked_path) as mf:
        for label_line, masked in zip(lf, mf):
            label = json.loads(label_line)
            masked = masked.rstrip("\n")
            neg = label["negative"]
            before = {d: (s.found, s.fp) for d, s in scores.items()}
            score_record(scores, masked, label["planted"], neg)
            if neg is not None:
                negatives += 1
                negative_kinds[neg[0]] += 1
                if MARK.search(masked):
                    by_negative[neg[0]] += 1
                    misses.append(f"negative {neg[0]} masked: {masked}")
            for det, value in label["planted"]:
                found = scores[det].found > before.get(det, (0, 0))[0]
                if label.get("locale"):
                    by_locale[label["locale"]][0] += 1
                    by_locale[label["locale"]][1] += int(found)
                if not found:
                    misses.append(f"{det} missed: {masked}")
    out = ["### Generated corpus", "", table(scores, negatives), ""]
    out += [f"{negatives} negatives: " + ", ".join(
        f"{k} {by_negative[k]}/{n}" for k, n in sorted(negative_kinds.items())) + " masked.", ""]
    out += ["Phone recall by Faker locale: " + ", ".join(
        f"{loc} {f}/{n}" for loc, (n, f) in sorted(by_locale.items())) + ".", ""]
    return "\n".join(out), misses


def existing(corpus_path, cli, policy):
    scores = collections.defaultdict(Score)
    misses = []
    with open(corpus_path) as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            masked = subprocess.run([cli, "mask", policy, "--profile", "all"],
                                    input=rec["text"].encode(), capture_output=True,
                                    check=True).stdout.decode()
            score_record(scores, masked, rec["planted"], None)
            for d in rec["decoys"]:
                if d not in masked:
                    misses.append(f"decoy {d!r} masked: {masked}")
    return "\n".join(["### Existing corpus (filter/tests/data/mask_corpus.jsonl)", "",
                      table(scores), ""]), misses


def main():
    if sys.argv[1] == "generated":
        report, misses = generated(sys.argv[2], sys.argv[3])
    else:
        report, misses = existing(sys.argv[2], sys.argv[3], sys.argv[4])
    print(report)
    for m in misses:
        print("  " + m, file=sys.stderr)


if __name__ == "__main__":
    main()

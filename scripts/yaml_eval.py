"""YAML (CI workflows, manifests, schemas): ours against head truncation.

Items: the .yml / .yaml files of 3-60 KB under the folders given, at most --limit of them
(sorted, then shuffled with seed 7). For each, one block at the second level (a key ending in
`:` with 3 to 40 deeper lines under it) picked at random is named in the query, "what is under
`key`". Measures at 2x and 4x, with and without the query:
- shallow: the share of the file's lines at its two smallest indentations that are kept (the
  document's outline);
- block: the named block kept whole (with the query);
- verbatim: every output line an input line, indentation included, or an elision marker;
- parents: every kept line's parent (the nearest shallower line above it) kept too.
Head truncation keeps the longest prefix of whole lines within the same budget. Needs
tiktoken with cl100k (see shared/tools/README.md).

    python scripts/yaml_eval.py FOLDER... [--bin target/release/omnimemory] [--limit 150]
"""
import argparse, os, random, re, sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared", "tools"))
import compression_eval as ce  # noqa: E402
from batch import compress_all, head_lines, kept_lines  # noqa: E402

MARKER = re.compile(r"^\s*# … \d+ lines? omitted$")


def indent(l):
    return len(l) - len(l.lstrip())


def content(l):
    t = l.strip()
    return bool(t) and not t.startswith("#") and t not in ("---", "...")


def items(folders, limit):
    files = []
    for d in folders:
        for root, _, names in os.walk(d):
            files += [os.path.join(root, n) for n in names if n.endswith((".yml", ".yaml"))]
    files = sorted(f for f in files if 3000 < os.path.getsize(f) < 60000)
    rnd = random.Random(7)
    rnd.shuffle(files)
    out = []
    for f in files:
        text = open(f, encoding="utf-8", errors="replace").read()
        lines = text.split("\n")
        levels = sorted({indent(l) for l in lines if content(l)})
        if len(levels) < 3:
            continue
        shallow = [i for i, l in enumerate(lines) if content(l) and indent(l) <= levels[1]]
        blocks = []
        for i in shallow:
            t = lines[i].strip()
            if indent(lines[i]) != levels[1] or not t.endswith(":") or t.startswith("- "):
                continue
            j = i + 1
            while j < len(lines) and (not lines[j].strip() or indent(lines[j]) > indent(lines[i])):
                j += 1
            while j > i + 1 and not lines[j - 1].strip():
                j -= 1
            if 3 <= j - i - 1 <= 40:
                blocks.append((t[:-1].strip().strip("\"'"), i, j))
        keys = [b[0] for b in blocks]
        blocks = [b for b in blocks if keys.count(b[0]) == 1 and re.fullmatch(r"[\w.-]{3,}", b[0])]
        if not blocks:
            continue
        key, i, j = rnd.choice(blocks)
        out.append({"file": f, "query": f"what is under `{key}`", "block": (i, j), "shallow": shallow,
                    "context": text})
        if len(out) >= limit:
            break
    return out


def parents_kept(lines, kept):
    ks = set(kept)
    for i in kept:
        if indent(lines[i]) == 0:
            continue
        for j in range(i - 1, -1, -1):
            if content(lines[j]) and indent(lines[j]) < indent(lines[i]):
                if j not in ks:
                    return False
                break
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--bin", default="target/release/omnimemory")
    ap.add_argument("--limit", type=int, default=150)
    a = ap.parse_args()
    its = items(a.folders, a.limit)
    for ratio in (2, 4):
        for mode in ("n", "q"):
            r = dict.fromkeys(["n", "code", "shallow", "block", "verb", "par", "hshallow", "hblock"], 0.0)
            for it, o in zip(its, compress_all(a.bin, its, ratio, mode == "q")):
                lines = it["context"].split("\n")
                kept = kept_lines(lines, o["compressed_text"], MARKER, skip_blank=True)
                budget = int(ce.ntok(it["context"]) / ratio)
                head = head_lines(lines, budget)
                i, j = it["block"]
                block = [k for k in range(i, j) if lines[k].strip()]
                r["n"] += 1
                r["code"] += o["content_type"] == "code"
                r["verb"] += kept is not None
                ks = set(kept or [])
                r["par"] += kept is not None and parents_kept(lines, kept)
                r["shallow"] += sum(k in ks for k in it["shallow"]) / len(it["shallow"])
                r["block"] += all(k in ks for k in block)
                r["hshallow"] += sum(k in head for k in it["shallow"]) / len(it["shallow"])
                r["hblock"] += all(k in head for k in block)
            n = max(r["n"], 1)
            pct = lambda k: f"{100 * r[k] / n:5.1f}"  # noqa: E731
            print(f"{ratio}x {'query' if mode == 'q' else 'no query'}: n={int(r['n'])} outlined={int(r['code'])} "
                  f"shallow {pct('shallow')} block {pct('block')} verbatim {pct('verb')} parents {pct('par')} | "
                  f"head shallow {pct('hshallow')} block {pct('hblock')}")


if __name__ == "__main__":
    main()

"""Unified diffs: ours against head truncation.

Items: `git show` of the commits of a git repository (--repo, default this one), and `diff -u`
of the files that differ between two versions of a crate in the cargo registry (every crate
with two versions there), each 3-60 KB with at least two hunks; at most --limit of each kind.
For each, one changed file picked at random (seed 5) is named in the query, "what changed in
`path`". Measures at 2x and 4x, with and without the query:
- files: the share of the diff's files whose header (`diff --git` or `+++`) is kept;
- hunks: the share of hunks with at least one changed line kept;
- changed: the share of changed (`-` / `+`) lines kept;
- named: all the named file's changed lines kept (with the query; over the diffs of two files
  or more);
- verbatim: every output line an input line, in input order, or an elision marker.
Head truncation keeps the longest prefix of whole lines within the same budget. Needs tiktoken
with cl100k (see shared/tools/README.md).

    python scripts/diff_eval.py [--repo .] [--rev HEAD] [--registry ~/.cargo/registry/src/*] [--bin …] [--limit 60]
"""
import argparse, glob, os, random, re, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared", "tools"))
import compression_eval as ce  # noqa: E402
from batch import compress_all, head_lines, kept_lines  # noqa: E402

MARKER = re.compile(r"^\[… \d+ lines? omitted\]$")
HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


def parse(text):
    """File header lines, hunks (lists of changed line numbers) and, per file path, its
    changed line numbers."""
    lines = text.split("\n")
    files, hunks, by_file = [], [], {}
    path, i = None, 0
    while i < len(lines):
        l = lines[i]
        if l.startswith("diff --git ") or (l.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")):
            j = i
            while j < len(lines) and not lines[j].startswith("+++ "):
                j += 1
            if j == len(lines):
                break
            files.append(i if l.startswith("diff --git ") else j)
            path = lines[j][4:].split("\t")[0].removeprefix("b/")
            by_file.setdefault(path, [])
            i = j + 1
            continue
        m = HUNK.match(l)
        if m and path:
            old = int(m.group(1) or 1)
            new = int(m.group(2) or 1)
            changed, i = [], i + 1
            while i < len(lines) and (old > 0 or new > 0):
                c = lines[i][:1]
                if c == "-":
                    old -= 1
                    changed.append(i)
                elif c == "+":
                    new -= 1
                    changed.append(i)
                elif c in (" ", ""):
                    old, new = old - 1, new - 1
                i += 1
            hunks.append(changed)
            by_file[path] += changed
            continue
        i += 1
    return lines, files, hunks, by_file


def git_items(repo, rev, limit):
    shas = subprocess.run(["git", "-C", repo, "log", "--format=%H", "-n", "400", rev], capture_output=True, text=True,
                          check=True).stdout.split()
    out = []
    for sha in shas:
        text = subprocess.run(["git", "-C", repo, "show", "--stat", "-p", sha], capture_output=True, text=True,
                              errors="replace").stdout
        if 3000 < len(text) < 60000:
            out.append(("git", text))
        if len(out) >= limit:
            break
    return out


def crate_items(registry, limit):
    crates = {}
    for d in sorted(glob.glob(os.path.join(registry, "*"))):
        m = re.match(r"(.+)-(\d+\.\d+\.\d+.*)$", os.path.basename(d))
        if m:
            crates.setdefault(m.group(1), []).append(d)
    out = []
    for name, dirs in sorted(crates.items()):
        if len(dirs) < 2:
            continue
        a, b = dirs[0], dirs[-1]
        for root, _, names in os.walk(a):
            for n in sorted(names):
                if not n.endswith(".rs"):
                    continue
                fa = os.path.join(root, n)
                fb = os.path.join(b, os.path.relpath(fa, a))
                if not os.path.exists(fb):
                    continue
                text = subprocess.run(["diff", "-u", fa, fb], capture_output=True, text=True, errors="replace").stdout
                if 3000 < len(text) < 60000:
                    out.append(("crate", text))
    random.Random(3).shuffle(out)
    return out[:limit]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=".")
    ap.add_argument("--rev", default="HEAD", help="the commits of git log REV (pin it to compare builds)")
    ap.add_argument("--registry", default=glob.glob(os.path.expanduser("~/.cargo/registry/src/*"))[0])
    ap.add_argument("--bin", default="target/release/omnimemory")
    ap.add_argument("--limit", type=int, default=60)
    a = ap.parse_args()
    rnd = random.Random(5)
    its = []
    for kind, text in git_items(a.repo, a.rev, a.limit) + crate_items(a.registry, a.limit):
        lines, files, hunks, by_file = parse(text)
        changed_files = [p for p, c in by_file.items() if c]
        if len(hunks) < 2 or not changed_files:
            continue
        path = rnd.choice(changed_files)
        its.append({"kind": kind, "context": text, "lines": lines, "files": files, "hunks": hunks,
                    "named": by_file[path], "query": f"what changed in `{path}`"})
    for ratio in (2, 4):
        for mode in ("n", "q"):
            outs = compress_all(a.bin, its, ratio, mode == "q")
            for kind in ("git", "crate", "all"):
                r = dict.fromkeys(["n", "multi", "files", "hunks", "changed", "named", "verb",
                                   "hfiles", "hhunks", "hchanged", "hnamed"], 0.0)
                for it, o in zip(its, outs):
                    if kind != "all" and it["kind"] != kind:
                        continue
                    lines = it["lines"]
                    shown = kept_lines(lines, o["compressed_text"], MARKER, skip_blank=False)
                    ok, kept = shown is not None, set(shown or [])
                    budget = int(ce.ntok(it["context"]) / ratio)
                    head = head_lines(lines, budget)
                    changed = [c for h in it["hunks"] for c in h]
                    for prefix, ks in (("", kept), ("h", head)):
                        r[prefix + "files"] += sum(f in ks for f in it["files"]) / max(len(it["files"]), 1)
                        r[prefix + "hunks"] += sum(any(c in ks for c in h) for h in it["hunks"]) / len(it["hunks"])
                        r[prefix + "changed"] += sum(c in ks for c in changed) / max(len(changed), 1)
                        r[prefix + "named"] += len(it["files"]) > 1 and all(c in ks for c in it["named"])
                    r["n"] += 1
                    r["multi"] += len(it["files"]) > 1
                    r["verb"] += ok
                n = max(r["n"], 1)
                pct = lambda k: f"{100 * r[k] / n:5.1f}"  # noqa: E731
                m = max(r["multi"], 1)
                named = f" named {100 * r['named'] / m:5.1f} (of {int(r['multi'])})" if mode == "q" else ""
                hnamed = f" named {100 * r['hnamed'] / m:5.1f}" if mode == "q" else ""
                print(f"{ratio}x {'query   ' if mode == 'q' else 'no query'} {kind:5} n={int(r['n']):3} files {pct('files')} "
                      f"hunks {pct('hunks')} changed {pct('changed')}{named} verbatim {pct('verb')} | head files "
                      f"{pct('hfiles')} hunks {pct('hhunks')} changed {pct('hchanged')}{hnamed}")


if __name__ == "__main__":
    main()

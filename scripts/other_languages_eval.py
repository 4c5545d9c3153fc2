"""Code in languages without a grammar (Java, C, C++): ours against head truncation.

Items: up to 15 Java files of OpenJDK's java.util / java.net (from a JDK's lib/src.zip), 15 C
and 15 C++ files of aws-lc (from the cargo registry, aws-lc-sys), 6-60 KB each; for each, one
definition picked at random (seed 11) is named in the query, "how does `name` work". Measures,
at 2x and 4x, with and without the query: the definition's signature line kept (sig), the whole
definition kept (body), curly braces balanced, every output line an input line or an elision
marker (verbatim). Needs tiktoken with cl100k (see shared/tools/README.md).

    python scripts/other_languages_eval.py SRC_ZIP AWS_LC_DIR [--bin target/release/omnimemory]
"""
import argparse, glob, os, random, re, sys, tempfile, zipfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared", "tools"))
import compression_eval as ce  # noqa: E402
from batch import compress_all  # noqa: E402

DEF = {
    "java": re.compile(r"^    (?:public|private|protected|static|final|synchronized|abstract|default|<[^>]+>|\s)*[\w<>\[\],? ]+\s+(\w+)\s*\([^;]*\)\s*(?:throws [\w., ]+)?\{\s*$"),
    "c": re.compile(r"^(?:static\s+)?(?:const\s+)?[\w\s\*]+?\b(\w+)\s*\([^;]*\)\s*\{\s*$"),
    "cpp": re.compile(r"^(?:static\s+)?[\w:<>\s\*&]+?\b(\w+)\s*\([^;]*\)\s*(?:const\s*)?\{\s*$"),
}
MARKER = re.compile(r"^\s*(//|#|--) … \d+ lines? omitted$")


def items(src_zip, aws_lc, tmp):
    with zipfile.ZipFile(src_zip) as z:
        names = [n for n in z.namelist() if re.match(r"java\.base/java/(util|net)/[A-Z]\w*\.java$", n)]
        z.extractall(tmp, names)
    files = {
        "java": sorted(os.path.join(tmp, n) for n in names),
        "c": sorted(glob.glob(os.path.join(aws_lc, "crypto/*/*.c"))),
        "cpp": sorted(glob.glob(os.path.join(aws_lc, "crypto/*/*.cc"))),
    }
    rnd = random.Random(11)
    out = []
    for lang, fs in files.items():
        fs = [f for f in fs if 6000 < os.path.getsize(f) < 60000]
        rnd.shuffle(fs)
        for f in fs:
            text = open(f, encoding="utf-8", errors="replace").read()
            lines = text.split("\n")
            defs = []
            for i, l in enumerate(lines):
                m = DEF[lang].match(l)
                if m and m.group(1) not in ("if", "for", "while", "switch", "return"):
                    ind = len(l) - len(l.lstrip())
                    for j in range(i + 1, min(i + 200, len(lines))):
                        if lines[j].startswith(" " * ind + "}") and len(lines[j]) - len(lines[j].lstrip()) == ind:
                            if j - i >= 3:
                                defs.append((m.group(1), i, j))
                            break
            names_ = [d[0] for d in defs]
            defs = [d for d in defs if names_.count(d[0]) == 1]
            if len(defs) < 3:
                continue
            name, i, j = rnd.choice(defs)
            out.append({"lang": lang, "query": f"how does `{name}` work", "sig": lines[i],
                        "body": "\n".join(lines[i:j + 1]), "context": text})
            if sum(o["lang"] == lang for o in out) >= 15:
                break
    return out


def balanced(s):
    s = re.sub(r"/\*.*?\*/", "", s, flags=re.S)
    s = re.sub(r"//[^\n]*", "", s)
    s = re.sub(r'"(\\.|[^"\\])*"', '""', s)
    s = re.sub(r"'(\\.|[^'\\])*'", "''", s)
    depth = 0
    for c in s:
        depth += (c == "{") - (c == "}")
        if depth < 0:
            return False
    return depth == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src_zip")
    ap.add_argument("aws_lc")
    ap.add_argument("--bin", default="target/release/omnimemory")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        its = items(a.src_zip, a.aws_lc, tmp)
        for ratio in (2, 4):
            for mode in ("q", "n"):
                outs = compress_all(a.bin, its, ratio, mode == "q")
                for lang in ("java", "c", "cpp", "all"):
                    r = dict.fromkeys(["n", "code", "sig", "body", "bal", "verb", "hsig", "hbody", "hbal"], 0)
                    for it, o in zip(its, outs):
                        if lang != "all" and it["lang"] != lang:
                            continue
                        t = o["compressed_text"]
                        inl = set(it["context"].split("\n"))
                        budget = int(ce.ntok(it["context"]) / ratio)
                        h = ce.ENC.decode(ce.ENC.encode(it["context"], disallowed_special=())[:budget])
                        r["n"] += 1
                        r["code"] += o["content_type"] == "code"
                        r["sig"] += it["sig"] in t.split("\n")
                        r["body"] += it["body"] in t
                        r["bal"] += balanced(t) or not balanced(it["context"])
                        r["verb"] += all(l in inl or MARKER.match(l) for l in t.split("\n") if l.strip())
                        r["hsig"] += it["sig"] in h.split("\n")
                        r["hbody"] += it["body"] in h
                        r["hbal"] += balanced(h)
                    n = max(r["n"], 1)
                    pct = lambda k: f"{100 * r[k] / n:5.1f}"  # noqa: E731
                    print(f"{ratio}x {mode} {lang:5} n={r['n']:2} code={r['code']:2}  sig {pct('sig')} body {pct('body')} "
                          f"balanced {pct('bal')} verbatim {pct('verb')} | head sig {pct('hsig')} body {pct('hbody')} "
                          f"balanced {pct('hbal')}")


if __name__ == "__main__":
    main()

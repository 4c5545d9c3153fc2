"""What the structure scripts beside this one share: one `omnimemory compress --jsonl` run over
items at a ratio, head truncation by whole lines at the same budget, and the input lines an
output shows."""
import json, os, subprocess, sys, tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared", "tools"))
import compression_eval as ce  # noqa: E402


def compress_all(binary, items, ratio, with_query):
    """The `/compress` responses for every item's `context` at `ratio` (target 1 - 1/ratio),
    with its `query` when `with_query`, in item order."""
    with tempfile.TemporaryDirectory() as tmp:
        req, resp = os.path.join(tmp, "req.jsonl"), os.path.join(tmp, "resp.jsonl")
        with open(req, "w") as f:
            for it in items:
                body = {"context": it["context"], "target_compression": 1 - 1 / ratio}
                if with_query:
                    body["query"] = it["query"]
                f.write(json.dumps(body) + "\n")
        subprocess.run([binary, "compress", "--jsonl", req, "--out", resp], check=True)
        return [json.loads(l) for l in open(resp)]


def head_lines(lines, budget):
    """Line numbers of the longest prefix of whole lines within `budget` cl100k tokens."""
    n, used = 0, 0
    for l in lines:
        used += ce.ntok(l + "\n")
        if used > budget:
            break
        n += 1
    return set(range(n))


def kept_lines(lines, out_text, marker, skip_blank):
    """Input line numbers of the output's lines, matched in input order, the lines `marker` (a
    compiled regex) matches left out, and blank ones too when `skip_blank`; None when a line
    is not found."""
    kept, at = [], 0
    for l in out_text.split("\n"):
        if skip_blank and not l.strip() or marker.match(l):
            continue
        while at < len(lines) and lines[at] != l:
            at += 1
        if at == len(lines):
            return None
        kept.append(at)
        at += 1
    return kept

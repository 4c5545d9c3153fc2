#!/usr/bin/env python3
"""Latency and throughput of POST /compress against a running server, beside the engine's own
time on the same items, so the request path's overhead is a measured number.

  scripts/http_bench.py --url http://127.0.0.1:8001 --key om_… --items ITEMS.jsonl
                        [--target 0.75] [--clients 1,4] [--requests 300] [--no-query]
                        [--bin target/release/omnimemory]

ITEMS: one JSON object per line with `context` (and `query`, `answers` for the engine's side:
any QA file of shared/data). For each number of clients it sends `--requests` requests in all,
each client on its own keep-alive connection cycling through the items, and prints p50 / p90 /
p99 latency and requests per second; for requests the server compressed inline (up to 32 KiB), the
engine's time it reports in `Server-Timing` and what the request path added to it, request by
request. The engine's time is the median per-item compression
time that `omnimemory eval ITEMS --ratios R` measures in the same run (R = 1 / (1 - target)).
Python's standard library only; the key needs a quota and rate limits large enough for the run.
"""
import argparse
import http.client
import json
import subprocess
import threading
import time
import urllib.parse


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def engine_ms(server_timing):
    """The engine's share of one answer, from its `Server-Timing` header: counting + compressing."""
    steps = {}
    for part in (server_timing or "").split(","):
        name, _, dur = part.strip().partition(";dur=")
        if dur:
            steps[name] = float(dur)
    return steps["count"] + steps["engine"] if "count" in steps and "engine" in steps else None


def run_clients(url, key, bodies, clients, requests):
    parsed = urllib.parse.urlparse(url)
    latencies, errors, overheads = [], [], []
    lock = threading.Lock()
    per_client = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]

    def client(n, offset):
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port or 80, timeout=60)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        mine = []
        for i in range(n):
            body = bodies[(offset + i) % len(bodies)]
            t0 = time.perf_counter()
            conn.request("POST", "/compress", body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            ms = (time.perf_counter() - t0) * 1e3
            mine.append(ms)
            engine = engine_ms(resp.getheader("Server-Timing"))
            if engine is not None:
                with lock:
                    overheads.append((ms - engine, engine))
            if resp.status != 200:
                with lock:
                    errors.append(resp.status)
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(n, k * 7)) for k, n in enumerate(per_client)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors, overheads, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--items", required=True)
    ap.add_argument("--target", type=float, default=0.75)
    ap.add_argument("--clients", default="1,4")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--no-query", action="store_true")
    ap.add_argument("--bin", default="target/release/omnimemory")
    a = ap.parse_args()

    items = [json.loads(line) for line in open(a.items) if line.strip()]
    bodies = []
    for it in items:
        body = {"context": it["context"], "target_compression": a.target, "model_id": "gpt-4"}
        if it.get("query") and not a.no_query:
            body["query"] = it["query"]
        bodies.append(json.dumps(body).encode())
    print(f"{len(items)} items from {a.items}, target {a.target}, {'no query' if a.no_query else 'with query'}")

    # Warm up: one pass over a few items (connection set-up, the server's lazy tables).
    run_clients(a.url, a.key, bodies[:20], 1, min(20, len(bodies)))
    print(f"{'clients':>7} {'requests':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'req/s':>8} {'non-200':>8}"
          f" {'engine p50':>11} {'added p50':>10} {'added p90':>10}")
    for clients in [int(c) for c in a.clients.split(",") if c]:
        lat, errors, overheads, secs = run_clients(a.url, a.key, bodies, clients, a.requests)
        row = (f"{clients:>7} {len(lat):>9} {percentile(lat, 50):>8.2f} {percentile(lat, 90):>8.2f} "
               f"{percentile(lat, 99):>8.2f} {len(lat) / secs:>8.0f} {len(errors):>8}")
        if overheads:
            added, engine = [o for o, _ in overheads], [e for _, e in overheads]
            row += f" {percentile(engine, 50):>11.2f} {percentile(added, 50):>10.2f} {percentile(added, 90):>10.2f}"
        print(row)
    print("engine p50: the server's own counting + compressing per request (its Server-Timing header); "
          "added: each request's latency minus that, as the client saw it")

    if all("answers" in it for it in items):
        ratio = 1 / (1 - a.target)
        cmd = [a.bin, "eval", a.items, "--ratios", f"{ratio:g}", "--json"] + (["--no-query"] if a.no_query else [])
        report = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        print(f"engine alone (omnimemory eval, same items): median {report['rows'][0]['median_ms']:.2f} ms per item")
    else:
        print("engine alone: skipped (the items carry no `answers`; omnimemory eval needs them)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""How long the dashboard's data takes with many usage records (one instance; SQLite, or
PostgreSQL with --postgres).

  scripts/dashboard_load.py [--bin target/release/omnimemory] [--records 100000] [--keys 1000]
                            [--runs 7] [--postgres postgres://postgres@127.0.0.1:5432/test]

Makes a data folder in a temporary directory, creates a pro key and two others, writes
RECORDS usage records for the pro key evenly over the last 90 days, oldest first as the service
writes them (one SQL statement, as tests/it/dashboard.rs does; this month's share is charged to
the quota ledger), starts
`omnimemory serve` on it, and times what the page asks for when a customer signs in (or
changes the range): /usage/quota, /usage/daily and /usage/recent at once, then
/usage/stats?group_by=<the most used tag>, as the page does, for 7, 30 and 90 days; and the
operator's /admin/keys with KEYS more keys (written straight into api_keys, each with one
usage record). Prints the median and the slowest of RUNS runs, after one warm-up.
Python's standard library only (and `psql` for --postgres, which seeds and later drops a schema
of its own in that database). The browser's own time (drawing the charts and tables on top
of these answers) is printed by `cargo test --test it dashboard -- --nocapture`.
"""
import argparse
import http.client
import json
import os
import secrets
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time

SEED = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {records}),
r AS (SELECT i, 800 + (i * 37) % 1200 AS original, 20 + i % 15 AS kept_percent FROM n)
INSERT INTO usage_records (request_id, api_key, key_id, user_id, operation, original_tokens,
    compressed_tokens, tokens_saved, model_id, compression_ratio, quality_score, tool_id, session_id,
    metadata, timestamp)
SELECT 'seed-' || i, :public_id, :key_id, :user_id, 'compress', original,
    original * kept_percent / 100, original - original * kept_percent / 100,
    CASE WHEN i % 10 < 5 THEN 'gpt-4o' WHEN i % 10 < 8 THEN 'claude-3-5-sonnet' ELSE 'gpt-4' END,
    1.0 - (original * kept_percent / 100) * 1.0 / original, 0.85 + (i % 15) / 100.0, NULL, NULL,
    json_object('team', CASE i % 4 WHEN 0 THEN 'search' WHEN 1 THEN 'support' WHEN 2 THEN 'billing'
        ELSE 'research' END, 'env', CASE WHEN i % 7 = 0 THEN 'staging' ELSE 'production' END),
    strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || (({records} - i) * 7776000 / {records} + 60) || ' seconds')
FROM r
"""
LEDGER = """
INSERT INTO quota_ledger (key_id, period, used)
SELECT key_id, substr(timestamp, 1, 7), SUM(original_tokens) FROM usage_records
WHERE key_id = :key_id AND substr(timestamp, 1, 7) = strftime('%Y-%m', 'now') GROUP BY 1, 2
ON CONFLICT (key_id, period) DO UPDATE SET used = quota_ledger.used + excluded.used
"""


def cli(binary, env, *args):
    out = subprocess.run([binary, *args], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def get(addr, path, headers):
    host, port = addr.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    if resp.status != 200:
        raise SystemExit(f"GET {path}: {resp.status} {body[:200]!r}")
    return json.loads(body)


def at_once(addr, paths, headers):
    """GETs `paths` concurrently (as the page's Promise.all does); the answers, in order."""
    answers = [None] * len(paths)

    def one(i, path):
        answers[i] = get(addr, path, headers)

    threads = [threading.Thread(target=one, args=(i, p)) for i, p in enumerate(paths)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def sign_in(addr, key, days):
    bearer = {"Authorization": f"Bearer {key}"}
    paths = ["/usage/quota", f"/usage/daily?days={days}", "/usage/recent?limit=20"]
    _, daily, _ = at_once(addr, paths, bearer)
    group_by = f"&group_by={daily['tags'][0]['name']}" if daily["tags"] else ""
    get(addr, f"/usage/stats?days={days}{group_by}", bearer)
    return daily["totals"]["requests"]


def timed(runs, action):
    action()  # warm-up: the first queries fill the database's cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


PG_SEED = """
INSERT INTO api_keys (key_hash, public_id, user_id, tier, active, created_at)
SELECT sha256(convert_to('load-' || n, 'UTF8')), 'om_free_' || lpad(n::text, 8, '0'), 'user-' || n, 'free', TRUE,
       to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
FROM generate_series(0, {keys} - 1) AS n;
INSERT INTO usage_records (request_id, api_key, key_id, user_id, operation, original_tokens, compressed_tokens,
    tokens_saved, model_id, compression_ratio, quality_score, metadata, timestamp)
SELECT 'seed-' || i, k.public_id, k.id, k.user_id, 'compress', o, o * (20 + i % 15) / 100, o - o * (20 + i % 15) / 100,
    CASE WHEN i % 10 < 5 THEN 'gpt-4o' WHEN i % 10 < 8 THEN 'claude-3-5-sonnet' ELSE 'gpt-4' END,
    1.0 - (o * (20 + i % 15) / 100) * 1.0 / o, 0.85 + (i % 15) / 100.0,
    json_build_object('team', (ARRAY['search', 'support', 'billing', 'research'])[i % 4 + 1],
                      'env', CASE WHEN i % 7 = 0 THEN 'staging' ELSE 'production' END)::text,
    to_char((now() - make_interval(secs => ({records} - i) * 7776000.0 / {records} + 60)) AT TIME ZONE 'UTC',
            'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
FROM generate_series(1, {records}) AS i, LATERAL (SELECT 800 + (i * 37) % 1200 AS o) AS t, api_keys AS k
WHERE k.user_id = 'load';
INSERT INTO quota_ledger (key_id, period, used)
SELECT key_id, substr(timestamp, 1, 7), SUM(original_tokens) FROM usage_records
WHERE substr(timestamp, 1, 7) = to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM') GROUP BY 1, 2
ON CONFLICT (key_id, period) DO UPDATE SET used = quota_ledger.used + excluded.used;
INSERT INTO usage_records (request_id, api_key, key_id, user_id, operation, original_tokens, compressed_tokens,
    tokens_saved, model_id, compression_ratio, timestamp)
SELECT 'extra-' || id, public_id, id, user_id, 'compress', 100, 50, 50, 'gpt-4o', 0.5,
    to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
FROM api_keys WHERE user_id LIKE 'user-%';
ANALYZE usage_records;
ANALYZE api_keys;
"""


def seed_sqlite(home, records, keys):
    keys_db = sqlite3.connect(os.path.join(home, "api_keys.db"))
    key_id, public_id = keys_db.execute("SELECT id, public_id FROM api_keys WHERE user_id = 'load'").fetchone()
    # More keys for the operator's list: random hashes (nobody holds their secrets).
    keys_db.executemany(
        "INSERT INTO api_keys (key_hash, public_id, user_id, tier, active, created_at) "
        "VALUES (?, ?, ?, 'free', 1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
        [(secrets.token_bytes(32), f"om_free_{n:08d}", f"user-{n}") for n in range(keys)],
    )
    keys_db.commit()
    extra = keys_db.execute("SELECT id, public_id, user_id FROM api_keys WHERE user_id LIKE 'user-%'").fetchall()
    keys_db.close()
    usage_db = sqlite3.connect(os.path.join(home, "usage.db"))
    usage_db.execute(SEED.format(records=records), {"key_id": key_id, "public_id": public_id, "user_id": "load"})
    usage_db.execute(LEDGER, {"key_id": key_id})
    usage_db.executemany(
        "INSERT INTO usage_records (request_id, api_key, key_id, user_id, operation, original_tokens, "
        "compressed_tokens, tokens_saved, model_id, compression_ratio, timestamp) "
        "VALUES (?, ?, ?, ?, 'compress', 100, 50, 50, 'gpt-4o', 0.5, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
        [(f"extra-{i}", pid, i, user) for i, pid, user in extra],
    )
    usage_db.commit()
    usage_db.close()


def psql(url, sql):
    subprocess.run(["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-c", f"SET client_min_messages = warning; {sql}"],
                   check=True, stdout=subprocess.DEVNULL)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default="target/release/omnimemory")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL database to use (in a schema of its own, "
                        "dropped at the end) instead of SQLite; needs psql")
    args = parser.parse_args()

    schema = f"dashboard_load_{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory() as tmp:
        admin_key = secrets.token_urlsafe(32)
        env = dict(os.environ, OMNIMEMORY_HOME=os.path.join(tmp, "data"), OMNIMEMORY_ADMIN_KEY=admin_key,
                   RUST_LOG="warn,omnimemory=info")
        for name in ("OMNIMEMORY_DATABASE_URL", "OMNIMEMORY_REDIS_URL", "OMNIMEMORY_ADDR"):
            env.pop(name, None)
        if args.postgres:
            psql(args.postgres, f"CREATE SCHEMA {schema}")
            sep = "&" if "?" in args.postgres else "?"
            env["OMNIMEMORY_DATABASE_URL"] = f"{args.postgres}{sep}options[search_path]={schema}"
        try:
            key = cli(args.bin, env, "admin", "create-key", "--user-id", "load", "--tier", "pro", "--json")["api_key"]
            cli(args.bin, env, "admin", "create-key", "--user-id", "other", "--tier", "free", "--json")
            cli(args.bin, env, "admin", "create-key", "--user-id", "big", "--tier", "enterprise", "--json")
            started = time.perf_counter()
            if args.postgres:
                seed = PG_SEED.format(records=int(args.records), keys=int(args.keys))
                psql(args.postgres, f"SET search_path = {schema};\n{seed}")
            else:
                seed_sqlite(os.path.join(tmp, "data"), int(args.records), int(args.keys))
            backend = "PostgreSQL" if args.postgres else "SQLite"
            print(f"wrote {args.records:,} usage records ({backend}) in {time.perf_counter() - started:.1f} s")
            measure(args, env, key, admin_key)
        finally:
            if args.postgres:
                psql(args.postgres, f"DROP SCHEMA {schema} CASCADE")


def measure(args, env, key, admin_key):
    server = subprocess.Popen([args.bin, "serve", "--port", "0"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        addr = None
        for line in server.stderr:
            if "listening on http://" in line:
                addr = line.split("listening on http://")[1].split()[0]
                break
        if addr is None:
            raise SystemExit("the server did not start")
        threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()

        print(f"{'what':<58} {'median':>8} {'slowest':>8}")
        for days in (7, 30, 90):
            count = sign_in(addr, key, days)
            median, slowest = timed(args.runs, lambda: sign_in(addr, key, days))
            what = f"customer sign-in, {days} days ({count:,} records in range), 4 requests"
            print(f"{what:<58} {median:>6.1f} ms {slowest:>5.1f} ms")
        admin = {"X-Admin-Key": admin_key}
        median, slowest = timed(args.runs, lambda: get(addr, "/admin/keys", admin))
        what = f"operator: /admin/keys ({args.keys + 3:,} keys)"
        print(f"{what:<58} {median:>6.1f} ms {slowest:>5.1f} ms")
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()

"""Rollups of sufficient statistics against raw scans (issue 21; benchmark, not a test).

    python benches/rollup_bench.py --lake DIR [--lake DIR ...] [--bin target/release/cxlake]
                                   [--repeat 5] [--dashboard 50]

For each lake (a `cxlake generate` lake; its rollups are built first if it has none, timed):
- the size of the rollup tables as a fraction of the responses table;
- two W1-class queries, trust and satisfaction by agency x fiscal quarter and trust by service
  x month: DuckDB's raw-scan SQL over the same Parquet files (a warm connection, 2 threads,
  best of `repeat`) against a warm `cxlake serve` answering from rollups and one answering from
  raw rows (`--no-rollups`), each request with a new alias so the result cache never answers;
  ratios are to DuckDB's time in the same run;
- `dashboard` distinct dashboard queries (random filters, groupings, periods and measures from
  a fixed seed) on a warm server with rollups: p50 and p99 latency and what served them (the
  `x-cxlake-served` header), after a warm-up round of as many other queries.
Each cxlake answer is checked against DuckDB's (counts equal) before it is timed.
"""
import argparse
import datetime
import json
import random
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb

from benchlib import serve

W1 = {
    "agency x fiscal quarter": (
        "scores(groupBy: [AGENCY], period: FISCAL_QUARTER, measures: [TRUST, SATISFACTION]) { agency period measure n mean sd agreeShare }",
        """SELECT agency, fiscal_year, fiscal_quarter,
                  count(trust), avg(trust) FILTER (WHERE scale = 'likert5'), stddev_samp(trust) FILTER (WHERE scale = 'likert5'),
                  avg(CASE WHEN (scale = 'likert5' AND trust >= 4) OR (scale = 'thumbs' AND trust = 1) THEN 1.0 ELSE 0.0 END) FILTER (WHERE trust IS NOT NULL),
                  count(satisfaction), avg(satisfaction) FILTER (WHERE scale = 'likert5'), stddev_samp(satisfaction) FILTER (WHERE scale = 'likert5'),
                  avg(CASE WHEN (scale = 'likert5' AND satisfaction >= 4) OR (scale = 'thumbs' AND satisfaction = 1) THEN 1.0 ELSE 0.0 END) FILTER (WHERE satisfaction IS NOT NULL)
           FROM {scan} GROUP BY ALL""",
    ),
    "service x month": (
        "scores(groupBy: [SERVICE], period: MONTH, measures: [TRUST]) { service period n mean sd agreeShare }",
        """SELECT service_id, date_trunc('month', submitted_at AT TIME ZONE 'UTC'),
                  count(trust), avg(trust) FILTER (WHERE scale = 'likert5'), stddev_samp(trust) FILTER (WHERE scale = 'likert5'),
                  avg(CASE WHEN (scale = 'likert5' AND trust >= 4) OR (scale = 'thumbs' AND trust = 1) THEN 1.0 ELSE 0.0 END) FILTER (WHERE trust IS NOT NULL)
           FROM {scan} GROUP BY ALL""",
    ),
}


# Driver importance (moments rollup) and tapped importance (taps rollups), by groupings the
# rollups cover, weighted and not.
IMPORTANCE = {
    "driver importance": [
        f"driverImportance(groupBy: [{g}], period: {p}, weighted: {w}) {{ n r2 drivers {{ driver shapley }} }}"
        for g, p in [("SERVICE_TYPE", "FISCAL_YEAR"), ("AGENCY", "FISCAL_QUARTER"), ("SERVICE", "FISCAL_YEAR"), ("CHANNEL", "YEAR")]
        for w in ("true", "false")
    ],
    "tapped importance": [
        f"tappedDriverImportance(groupBy: [{g}], period: {p}, model: {m}) {{ n mcfadden r2 }}"
        for g, p in [("SERVICE_TYPE", "FISCAL_YEAR"), ("OFFICE", "FISCAL_YEAR"), ("REGION", "FISCAL_YEAR")]
        for m in ("LOGISTIC", "LINEAR")
    ],
}


def post(base, query):
    """(seconds, response headers, parsed body) of one GraphQL request."""
    req = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query}).encode(), headers={"content-type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as resp:
        body = resp.read()
        headers = dict(resp.headers)
    return time.perf_counter() - t, headers, json.loads(body)


class Server:
    """A warm `cxlake serve`; each request gets a fresh alias so the result cache never answers."""

    def __init__(self, binary, lake, *args):
        self.proc, self.base = serve(binary, lake, *args)
        self.n = 0

    def run(self, field):
        self.n += 1
        secs, headers, body = post(self.base, f"{{ q{self.n}: {field} }}")
        assert "errors" not in body, body
        return secs, headers, body["data"][f"q{self.n}"]

    def best(self, field, repeat):
        runs = [self.run(field) for _ in range(repeat + 1)][1:]  # the first warms it
        return min(r[0] for r in runs), runs[-1][1], runs[-1][2]

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def dashboard_queries(rng, con, n):
    """`n` distinct dashboard queries: groupings, periods, filters and measures a dashboard uses."""
    agencies = [r[0] for r in con.execute("SELECT DISTINCT agency FROM r ORDER BY 1").fetchall()]
    types = [r[0] for r in con.execute("SELECT DISTINCT service_type FROM r ORDER BY 1").fetchall()]
    last = con.execute("SELECT max(submitted_at)::DATE FROM r").fetchone()[0]
    out = set()
    while len(out) < n:
        group = rng.choice([[], ["AGENCY"], ["BUREAU"], ["SERVICE"], ["SERVICE_TYPE"], ["CHANNEL"], ["OFFICE"], ["REGION"],
                            ["AGENCY", "CHANNEL"], ["SERVICE_TYPE", "STAGE"], ["SERVICE", "CHANNEL"]])
        period = rng.choice([None, "MONTH", "QUARTER", "FISCAL_QUARTER", "FISCAL_YEAR", "YEAR", "WEEK"])
        measures = rng.sample(["TRUST", "SATISFACTION", "EASE", "EFFICIENCY", "EFFECTIVENESS", "HUMANITY"], rng.randint(1, 2))
        f = []
        if rng.random() < 0.5:
            f.append(f'agency: ["{rng.choice(agencies)}"]')
        if rng.random() < 0.3:
            f.append(f"serviceType: [{rng.choice(types).upper()}]")
        if rng.random() < 0.6:
            months = rng.choice([3, 6, 12, 24])
            start = last.replace(day=1)
            for _ in range(months):
                start = (start - datetime.timedelta(days=1)).replace(day=1)
            if rng.random() < 0.5:
                f.append(f'from: "{start}", to: "{last}"')  # whole months up to a partial last one
            else:
                f.append(f'from: "{start.replace(day=rng.randint(2, 27))}", to: "{last}"')
        args = [f"measures: [{', '.join(measures)}]"]
        if group:
            args.append(f"groupBy: [{', '.join(group)}]")
        if period:
            args.append(f"period: {period}")
        if f:
            args.append(f"filter: {{ {', '.join(f)} }}")
        out.add(f"scores({', '.join(args)}) {{ measure n mean agreeShare }}")
    return sorted(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lake", type=Path, action="append", required=True)
    ap.add_argument("--bin", type=Path, default=Path(__file__).resolve().parents[1] / "target" / "release" / "cxlake")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dashboard", type=int, default=50)
    args = ap.parse_args()
    for lake in args.lake:
        lake = lake.resolve()
        rows_total = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{lake}/responses/**/*.parquet')").fetchone()[0]
        print(f"\n== {lake} ({rows_total:,} rows)")
        if not (lake / "rollups").exists():
            t = time.perf_counter()
            out = subprocess.run([args.bin, "rollup", "build", "--lake", lake], check=True, capture_output=True, text=True).stdout.strip()
            print(f"rollup build: {time.perf_counter() - t:.1f} s ({out})")

        def size(d):
            return sum(f.stat().st_size for f in d.rglob("*.parquet"))
        data = size(lake / "responses")
        print(f"responses: {data / 1e6:.1f} MB")
        for kind in sorted(d.name for d in (lake / "rollups").iterdir() if d.is_dir()):
            s = size(lake / "rollups" / kind)
            rows = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{lake}/rollups/{kind}/**/*.parquet')").fetchone()[0]
            print(f"  rollup {kind}: {s / 1e6:.1f} MB ({s / data:.3f} of the responses), {rows:,} group rows ({rows_total / max(rows, 1):.0f} responses per row)")

        con = duckdb.connect()
        con.execute("SET threads = 2")
        con.execute("SET TimeZone = 'UTC'")
        scan = f"read_parquet('{lake}/responses/**/*.parquet', hive_partitioning = true)"
        con.execute(f"CREATE VIEW r AS SELECT * FROM {scan}")
        with_rollups = Server(args.bin, lake, "--min-cell", 0)
        raw = Server(args.bin, lake, "--min-cell", 0, "--no-rollups")
        try:
            for name, (field, sql) in W1.items():
                sql = sql.replace("{scan}", scan)
                runs = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    want = con.execute(sql).fetchall()
                    runs.append(time.perf_counter() - t)
                duck = min(runs)
                fast, headers, got = with_rollups.best(field, args.repeat)
                slow, raw_headers, got_raw = raw.best(field, args.repeat)
                n_want = sorted(r[3 if name.startswith("agency") else 2] for r in want)
                assert sorted(r["n"] for r in got if r.get("measure", "TRUST") == "TRUST") == n_want, f"{name}: counts differ from DuckDB's"
                assert headers.get("x-cxlake-served") == "rollup" and raw_headers.get("x-cxlake-served") == "raw", (headers, raw_headers)
                print(f"{name}: DuckDB {duck * 1e3:.1f} ms; cxlake rollups {fast * 1e3:.1f} ms ({fast / duck:.3f}x), "
                      f"raw rows {slow * 1e3:.1f} ms ({slow / duck:.3f}x); {len(got)} rows")
            rng = random.Random(21)
            warmup = dashboard_queries(random.Random(12), con, args.dashboard)
            for q in warmup:
                with_rollups.run(q)
            queries = [q for q in dashboard_queries(rng, con, args.dashboard * 2) if q not in warmup][: args.dashboard]
            times, paths, slowest = [], {}, []
            for q in queries:
                secs, headers, _ = with_rollups.run(q)
                times.append(secs)
                path = headers.get("x-cxlake-served", "none")
                paths[path] = paths.get(path, 0) + 1
                slowest.append((secs, path, q))
            times.sort()
            p99 = times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
            print(f"dashboard, {len(queries)} distinct queries on a warm server: p50 {statistics.median(times) * 1e3:.1f} ms, "
                  f"p99 {p99 * 1e3:.1f} ms, max {times[-1] * 1e3:.1f} ms; served by {paths}")
            for secs, path, q in sorted(slowest, reverse=True)[:5]:
                print(f"  {secs * 1e3:7.1f} ms {path:6} {q}")
            # Driver and tapped importance: the first query of each merges its rollup's files
            # (reported apart); then distinct queries, against the raw-rows server.
            for name, queries in IMPORTANCE.items():
                first, _, _ = with_rollups.run(queries[0])
                fast, slow = [], []
                for q in queries:
                    secs, headers, _ = with_rollups.run(q)
                    assert headers.get("x-cxlake-served") == "rollup", (q, headers)
                    fast.append(secs)
                    slow.append(raw.run(q)[0])
                print(f"{name}: first query {first * 1e3:.0f} ms (merges the rollup); then median {statistics.median(fast) * 1e3:.0f} ms "
                      f"from rollups, {statistics.median(slow) * 1e3:.0f} ms from raw rows ({statistics.median(fast) / statistics.median(slow):.3f}x) "
                      f"over {len(queries)} queries")
        finally:
            with_rollups.stop()
            raw.stop()


if __name__ == "__main__":
    sys.exit(main())

"""Warm repeated-query benchmark (not a test): a dashboard's scores query served by the release
build, measured with wrk (`apt-get install wrk`), 32 connections for 15 s.

    python benches/warm_query_bench.py [--lake bench-out/lake-10000000]

Prints the cold time of the first request (computes from the lake) as the same run's reference,
then wrk's throughput and latency percentiles for the repeated query (served from the result
cache: same query, same lake version). Goals: p50 <= 5 ms, >= 500 req/s on 2 cores.
"""
import argparse
import json
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from benchlib import ROOT, ensure_lake, serve

QUERY = "{ scores(groupBy: [AGENCY], period: FISCAL_QUARTER, measures: [TRUST, SATISFACTION]) { agency period measure n mean agreeShare agreeLow agreeHigh } }"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lake", type=Path, default=ROOT / "bench-out" / "lake-10000000")
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--seconds", type=int, default=15)
    args = ap.parse_args()
    binary = str(ROOT / "target" / "release" / "cxlake")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    ensure_lake(binary, args.lake, args.rows)
    server, base = serve(binary, args.lake)
    url = f"{base}/graphql"
    try:
        body = json.dumps({"query": QUERY})

        def once():
            req = urllib.request.Request(url, data=body.encode(), headers={"content-type": "application/json"})
            t = time.perf_counter()
            with urllib.request.urlopen(req) as resp:
                resp.read()
                cache = resp.headers.get("x-cache")
            return time.perf_counter() - t, cache

        cold, c1 = once()
        warm, c2 = once()
        print(f"first request (cache {c1}, scans the lake): {cold * 1e3:.1f} ms; second (cache {c2}): {warm * 1e3:.2f} ms; ratio {cold / warm:.0f}x")
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
            lua.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\nwrk.headers["Content-Type"] = "application/json"\n')
        out = subprocess.run(["wrk", "-t2", "-c32", f"-d{args.seconds}s", "--latency", "-s", lua.name, url],
                             capture_output=True, text=True, check=True).stdout
        print(out)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()

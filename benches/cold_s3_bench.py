"""Cold query over S3 against the same over local disk (benchmark, not a test).

    python benches/cold_s3_bench.py [--lake bench-out/lake-2000000] [--repeat 5]

Starts SeaweedFS on loopback (tests/python/s3server.py), copies the lake into it with pyarrow,
then runs each query as a fresh `cxlake query` process (release build: nothing cached, every
listing and footer read afresh) against the local directory and against `s3://`. The local
run is the same run's reference: the figure is the ratio S3 / local of the best of `repeat`
runs (and of the medians). Loopback S3 has no network latency; a real bucket adds ~10-30 ms
per request round trip, which this does not model.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import ROOT, ensure_lake

sys.path.insert(0, str(ROOT / "tests" / "python"))
from s3server import S3Server  # noqa: E402

QUERIES = {
    "scores, whole lake": "{ scores(groupBy: [AGENCY], period: FISCAL_YEAR, measures: [TRUST]) { agency period n mean } }",
    "scores, one agency (pruned)": '{ scores(filter: {agency: ["VA"]}, groupBy: [SERVICE], measures: [TRUST, SATISFACTION]) { service n mean } }',
    "driver importance": "{ driverImportance(groupBy: [SERVICE_TYPE], outcome: TRUST) { serviceType n r2 } }",
}


def timed(binary, lake, query, env):
    t = time.perf_counter()
    subprocess.run([binary, "query", "--lake", lake, "-"], input=query, capture_output=True, text=True, check=True, env=env)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lake", type=Path, default=ROOT / "bench-out" / "lake-2000000")
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    binary = str(ROOT / "target" / "release" / "cxlake")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    ensure_lake(binary, args.lake, args.rows)
    files = sum(1 for _ in (args.lake / "responses").rglob("*.parquet"))
    server = S3Server(Path(tempfile.mkdtemp(prefix="cold-s3-"))).start()
    try:
        t = time.perf_counter()
        server.upload(args.lake, "bench")
        print(f"lake: {args.lake} ({files} data files), uploaded to SeaweedFS in {time.perf_counter() - t:.1f}s")
        env = dict(os.environ, **server.env())
        print(f"{'query':32} {'local best':>10} {'s3 best':>10} {'ratio':>6} {'local med':>10} {'s3 med':>10} {'ratio':>6}")
        for name, query in QUERIES.items():
            local = [timed(binary, str(args.lake), query, env) for _ in range(args.repeat)]
            remote = [timed(binary, server.url("bench"), query, env) for _ in range(args.repeat)]
            lb, rb, lm, rm = min(local), min(remote), statistics.median(local), statistics.median(remote)
            print(f"{name:32} {lb * 1e3:8.0f}ms {rb * 1e3:8.0f}ms {rb / lb:6.2f} {lm * 1e3:8.0f}ms {rm * 1e3:8.0f}ms {rm / lm:6.2f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()

"""Ingestion and submit benchmark (not a test).

    python benches/ingest_bench.py [--rows 10000000] [--out bench-out]

1. CSV -> lake: the generated lake is exported by DuckDB as one CSV in the lake's columns and
   ingested with `cxlake ingest` (release build); rows/s and peak RSS, for the full file and a
   tenth of it (memory must not grow with the file). Reference in the same run: DuckDB's own
   CSV -> Parquet copy of the same file (no validation, no dedup, no partitioning).
2. Submit: `cxlake serve --submit` with 32 concurrent clients posting one response per request
   for 10 s: acknowledged responses/s and the p50/p99 acknowledgement latency.
"""
import argparse
import json
import shutil
import socket
import subprocess
import threading
import time
import http.client
from pathlib import Path

import duckdb

from benchlib import ROOT, ensure_lake


def peak_rss_mb(cmd):
    """Runs cmd and returns (seconds, peak RSS in MB) of that child alone."""
    t = time.perf_counter()
    proc = subprocess.run(["/usr/bin/env", "python3", "-c",
                           "import resource,subprocess,sys;"
                           "r=subprocess.run(sys.argv[1:]);"
                           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr);"
                           "sys.exit(r.returncode)", *map(str, cmd)], capture_output=True, text=True)
    secs = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed:\n{proc.stderr}")
    return secs, int(proc.stderr.strip().splitlines()[-1]) / 1024, proc.stdout


def fresh_lake(path, source):
    shutil.rmtree(path, ignore_errors=True)
    (path / "dimensions").mkdir(parents=True)
    for t in ["services", "offices"]:
        shutil.copytree(source / "dimensions" / t, path / "dimensions" / t)


def ingest_bench(binary, out, rows, repeat):
    source = out / f"lake-{rows}"
    ensure_lake(binary, source, rows)
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    scan = f"read_parquet('{source}/responses/**/*.parquet', hive_partitioning = true)"
    results = {}
    for label, n in [("tenth", rows // 10), ("full", rows)]:
        csv = out / f"export-{n}.csv"
        if not csv.exists():
            c.execute(f"COPY (SELECT * EXCLUDE (fiscal_year, fiscal_quarter) FROM {scan} LIMIT {n}) TO '{csv}' (HEADER)")
        size = csv.stat().st_size
        lake = out / f"ingested-{n}"
        runs = []
        for _ in range(repeat):  # best of `repeat`, each into a fresh lake
            fresh_lake(lake, source)
            runs.append(peak_rss_mb([binary, "ingest", "--lake", lake, csv]))
        secs, rss, stdout = min(runs)
        t = time.perf_counter()
        c.execute(f"COPY (SELECT * FROM read_csv('{csv}')) TO '{out}/duck-{n}.parquet' (FORMAT parquet, COMPRESSION zstd)")
        duck = time.perf_counter() - t
        results[label] = (n, secs, rss)
        print(f"ingest {label}: {n} rows, {size / 1e9:.2f} GB CSV in {secs:.2f}s = {n / secs / 1e3:.0f}k rows/s, "
              f"peak RSS {rss:.0f} MB; DuckDB CSV->Parquet {duck:.2f}s (cxlake/DuckDB time ratio {secs / duck:.2f}x)")
        print("   ", stdout.strip())
    print(f"peak RSS full/tenth: {results['full'][2] / results['tenth'][2]:.2f}x for {results['full'][0] / results['tenth'][0]:.0f}x the rows")
    return source


def submit_bench(binary, out, source, clients=32, seconds=10):
    lake = out / "submit-lake"
    shutil.rmtree(lake, ignore_errors=True)
    shutil.copytree(source, lake)
    c = duckdb.connect()
    svc = c.execute(f"SELECT service_id, agency, bureau, service_type FROM '{source}/dimensions/services/*.parquet' LIMIT 1").fetchone()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([binary, "serve", "--lake", lake, "--submit", "--listen", f"127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/health")
            break
        except OSError:
            time.sleep(0.05)
    latencies, lock, stop = [], threading.Lock(), time.perf_counter() + seconds

    def client(k):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine, i = [], 0
        while time.perf_counter() < stop:
            body = json.dumps({"response_id": f"b{k}-{i}", "agency": svc[1], "bureau": svc[2], "service_id": svc[0],
                               "service_type": svc[3], "channel": "digital", "collection_id": "bench", "scale": "likert5",
                               "trust": 4, "satisfaction": 5})
            t = time.perf_counter()
            conn.request("POST", "/v1/responses", body, {"content-type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200, resp.status
            mine.append(time.perf_counter() - t)
            i += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    server.terminate()
    server.wait()
    latencies.sort()
    pct = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1e3
    print(f"submit: {clients} clients, {len(latencies)} acknowledged in {elapsed:.1f}s = {len(latencies) / elapsed:.0f} responses/s; "
          f"latency p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms (each an fsynced log append)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench-out")
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    binary = str(ROOT / "target" / "release" / "cxlake")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    args.out.mkdir(parents=True, exist_ok=True)
    source = args.out / f"lake-{args.rows}"
    if not args.skip_ingest:
        source = ingest_bench(binary, args.out, args.rows, args.repeat)
    else:
        ensure_lake(binary, source, args.rows)
    submit_bench(binary, args.out, source)


if __name__ == "__main__":
    main()

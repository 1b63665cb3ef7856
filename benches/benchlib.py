"""Shared helpers of the benchmark scripts: timing, the lake under test, running cxlake."""
import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def best(f, repeat):
    """The shortest of `repeat` timed calls of f, and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), out


def ensure_lake(binary, lake, rows):
    """Generates the benchmark lake unless it exists; prints the generator's speed."""
    if (lake / "lake.json").exists():
        return
    lake.parent.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    subprocess.run([binary, "generate", "--out", lake, "--rows", str(rows)], check=True)
    secs = time.perf_counter() - t
    print(f"generate: {rows} rows in {secs:.2f}s = {rows / secs / 1e6:.2f}M rows/s")


def cxlake_query(binary, lake, query, variables):
    """Runs `cxlake query` as a whole process and returns the parsed data."""
    proc = subprocess.run([binary, "query", "--lake", lake, "-", "--variables", json.dumps(variables)],
                          input=query, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)["data"]


def serve(binary, lake, *args):
    """Starts `cxlake serve` on a free loopback port; returns the process and its base URL once
    it answers /health."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # BENCH_SERVER_LOG=FILE keeps the servers' logs (with RUST_LOG, e.g. cx_lake=debug).
    log = open(os.environ["BENCH_SERVER_LOG"], "ab") if os.environ.get("BENCH_SERVER_LOG") else subprocess.DEVNULL
    server = subprocess.Popen([binary, "serve", "--lake", str(lake), "--listen", f"127.0.0.1:{port}", *map(str, args)],
                              stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(f"{base}/health", timeout=1).read()
            return server, base
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError(f"the server at {base} did not start")

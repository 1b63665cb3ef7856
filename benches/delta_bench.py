"""Delta Lake tables against the listing layout they replaced (issue 20; benchmark, not a test).

    python benches/delta_bench.py --before BIN --v1-lake DIR [--after target/release/cxlake]
                                  [--delta-lake DIR] [--repeat 5] [--warm 20]

`--before` is a release build of the previous layout (format 1: files found by listing) and
`--v1-lake` a lake it generated; the Delta lake is a copy of it converted by `cxlake migrate`
(the same data files, plus logs), so both builds read the same bytes. For each query:
- cold: a fresh `cxlake query` process (catalog, file list, plan, scan), best of `repeat`;
- warm: a running `cxlake serve`, the query sent `warm` times with a new alias each time so
  the result cache never answers (data in the page cache, snapshot and catalog loaded);
locally and in SeaweedFS on loopback. The S3 requests of one cold query are counted by a small
proxy in front of SeaweedFS, by kind (LIST, GET, HEAD, PUT). The before build is the same run's
reference: ratios are after / before.
"""
import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from benchlib import ROOT

sys.path.insert(0, str(ROOT / "tests" / "python"))
from conftest import free_port, wait_healthy  # noqa: E402
from s3server import S3Server  # noqa: E402

QUERIES = {
    "scores by agency x FY, whole lake": "scores(groupBy: [AGENCY], period: FISCAL_YEAR, measures: [TRUST]) { agency period n mean }",
    "scores, one agency (pruned)": 'scores(filter: {agency: ["VA"]}, groupBy: [SERVICE], measures: [TRUST, SATISFACTION]) { service n mean }',
}


class Counting(BaseHTTPRequestHandler):
    """Forwards every request to the S3 server, counting them by kind."""
    upstream, counts, lock = None, Counter(), threading.Lock()

    def log_message(self, *args):
        pass

    def forward(self):
        kind = self.command
        if self.command == "GET" and ("list-type=" in self.path or "prefix=" in self.path):
            kind = "LIST"
        with Counting.lock:
            Counting.counts[kind] += 1
        body = self.rfile.read(int(self.headers.get("content-length", 0) or 0))
        conn = http.client.HTTPConnection(*Counting.upstream, timeout=60)
        conn.request(self.command, self.path, body=body, headers={k: v for k, v in self.headers.items()})
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        # A HEAD's length is the object's, not the (empty) body's.
        self.send_header("content-length", resp.getheader("content-length", "0") if self.command == "HEAD" else str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = forward


def cold(binary, lake, query, env):
    t = time.perf_counter()
    proc = subprocess.run([binary, "query", "--lake", lake, "-"], input="{ " + query + " }", capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{binary} query --lake {lake} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t


def warm(binary, lake, query, env, n):
    port = free_port()
    proc = subprocess.Popen([binary, "serve", "--lake", lake, "--listen", f"127.0.0.1:{port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, timeout=120)
        times = []
        for i in range(n + 1):
            body = json.dumps({"query": "{ q%d: %s }" % (i, query)}).encode()
            req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=body, headers={"content-type": "application/json"})
            t = time.perf_counter()
            with urllib.request.urlopen(req, timeout=120) as r:
                assert "errors" not in json.loads(r.read())
            times.append(time.perf_counter() - t)
        return min(times[1:]), statistics.median(times[1:])
    finally:
        proc.terminate()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", default=str(ROOT / "target" / "release" / "cxlake"))
    ap.add_argument("--v1-lake", type=Path, required=True)
    ap.add_argument("--delta-lake", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--warm", type=int, default=20)
    args = ap.parse_args()
    delta = args.delta_lake or args.v1_lake.with_name(args.v1_lake.name + "-delta")
    if not (delta / "responses" / "_delta_log").exists():
        shutil.rmtree(delta, ignore_errors=True)
        shutil.copytree(args.v1_lake, delta)
        subprocess.run([args.after, "migrate", str(delta)], check=True, capture_output=True)
    server = S3Server(Path(tempfile.mkdtemp(prefix="delta-bench-"))).start()
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    Counting.upstream = server.endpoint.removeprefix("http://").split(":")
    Counting.upstream[1] = int(Counting.upstream[1])
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        server.upload(args.v1_lake, "v1")
        server.upload(delta, "delta")
        env = dict(os.environ, **server.env())
        counted_env = dict(env, AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.server_address[1]}")
        files = sum(1 for _ in (delta / "responses").rglob("*.parquet") if "_delta_log" not in str(_))
        print(f"lakes: {args.v1_lake} (listing) and {delta} (Delta), {files} response files; best of {args.repeat} cold, {args.warm} warm")
        print(f"{'query':36} {'where':5} {'cold before':>11} {'cold after':>10} {'ratio':>5} {'warm before':>11} {'warm after':>10} {'ratio':>5}  S3 requests per cold query before / after")
        for name, query in QUERIES.items():
            for where, before_lake, after_lake in [("local", str(args.v1_lake), str(delta)), ("s3", server.url("v1"), server.url("delta"))]:
                cb = min(cold(args.before, before_lake, query, env) for _ in range(args.repeat))
                ca = min(cold(args.after, after_lake, query, env) for _ in range(args.repeat))
                wb, _ = warm(args.before, before_lake, query, env, args.warm)
                wa, _ = warm(args.after, after_lake, query, env, args.warm)
                requests = ""
                if where == "s3":
                    counts = []
                    for binary, lake in [(args.before, before_lake), (args.after, after_lake)]:
                        Counting.counts.clear()
                        cold(binary, lake, query, counted_env)
                        counts.append(dict(sorted(Counting.counts.items())))
                    requests = f"{counts[0]} / {counts[1]}"
                print(f"{name:36} {where:5} {cb * 1e3:9.0f}ms {ca * 1e3:8.0f}ms {ca / cb:5.2f} {wb * 1e3:9.1f}ms {wa * 1e3:8.1f}ms {wa / wb:5.2f}  {requests}")
    finally:
        proxy.shutdown()
        server.stop()


if __name__ == "__main__":
    main()

"""Mixed-load benchmark (not a test; issue 18): many clients against one server on a 2M-row lake,
30% of them asking heavy queries (driver importance with bootstraps, tapped-indicator models,
aggregates by many dimensions by day), some of those hanging up after a second, while
submitters post responses. Reports light-query latency under load against the same query on
the idle server (the reference measured in the same run), heavy completions and refusals
(BUSY, TIMEOUT, TOO_MANY_GROUPS), 5xx, the server's resident memory over time, and the
CPU-seconds it spends once the load stops (abandoned work still running shows up there).

    python benches/mixed_load.py [--lake bench-out/lake-2000000] [--seconds 60] [--clients 64]

The server runs with its defaults but `--rate-limit 0` (every client shares the loopback
address, so the per-address limit would refuse most requests) and `--submit`.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from benchlib import ROOT, ensure_lake, serve

LIGHT = [
    "{{ scores(filter: {{ agency: [\"{agency}\"] }}, groupBy: [SERVICE], period: FISCAL_QUARTER) {{ service period measure n mean agreeShare }} }}",
    "{{ benchmark(level: SERVICE, filter: {{ agency: [\"{agency}\"] }}) {{ entity n mean agreeShare }} }}",
    "{{ trends(groupBy: [AGENCY], period: MONTH, filter: {{ agency: [\"{agency}\"] }}) {{ agency period n mean }} }}",
    "{{ scores(groupBy: [CHANNEL], period: FISCAL_YEAR, filter: {{ agency: [\"{agency}\"] }}) {{ channel period n agreeShare }} }}",
]
HEAVY = [
    "{{ driverImportance(groupBy: [SERVICE_TYPE], bootstrap: 200, seed: {seed}) {{ serviceType n r2 drivers {{ driver shapley shapleyLow shapleyHigh }} }} }}",
    "{{ tappedDriverImportance(groupBy: [AGENCY], seed: {seed}) {{ agency n mcfadden drivers {{ topic share }} }} }}",
    "{{ scores(groupBy: [AGENCY, BUREAU, SERVICE, CHANNEL, OFFICE, REGION, SERVICE_TYPE, STAGE], period: DAY, filter: {{ agency: [\"{agency}\"] }}) {{ n mean }} }}",
]


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.light_ms, self.heavy_ms = [], []
        self.codes = {}

    def count(self, key):
        with self.lock:
            self.codes[key] = self.codes.get(key, 0) + 1


def post(url, query, timeout):
    req = urllib.request.Request(url, data=json.dumps({"query": query}).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, json.loads(resp.read())


def client(url, agencies, stats, until, rng, heavy):
    while time.time() < until:
        agency = rng.choice(agencies)
        if heavy:
            query = rng.choice(HEAVY).format(agency=agency, seed=rng.randrange(1 << 30))
            hang_up = rng.random() < 0.2
        else:
            query = rng.choice(LIGHT).format(agency=agency)
            hang_up = False
        t = time.perf_counter()
        try:
            status, body = post(url, query, 1.0 if hang_up else 120)
        except urllib.error.HTTPError as e:
            stats.count(f"http {e.code}")
            continue
        except (TimeoutError, OSError):
            stats.count("hung up" if hang_up else "client error")
            continue
        ms = (time.perf_counter() - t) * 1000
        errors = body.get("errors") or []
        kind = "heavy" if heavy else "light"
        if errors:
            code = errors[0].get('extensions', {}).get('code', 'error')
            stats.count(f"{kind} {code}")
            if code == "BUSY":
                time.sleep(0.2)  # what a client should do with BUSY: back off, then retry
        else:
            stats.count(f"{kind} ok")
            with stats.lock:
                (stats.heavy_ms if heavy else stats.light_ms).append(ms)


def submitter(base, template, stats, until, name):
    i = 0
    while time.time() < until:
        batch = [dict(template, response_id=f"{name}-{i}-{k}") for k in range(10)]
        i += 1
        req = urllib.request.Request(f"{base}/v1/responses", data=json.dumps(batch).encode(), headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                stats.count(f"submit {resp.status}")
        except urllib.error.HTTPError as e:
            stats.count(f"submit {e.code}")
        time.sleep(0.05)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lake", type=Path, default=ROOT / "bench-out" / "lake-2000000")
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--heavy-share", type=float, default=0.3)
    ap.add_argument("--submitters", type=int, default=4)
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--binary", help="a cxlake binary to measure instead of this checkout's release build (an earlier build, for a before/after)")
    args = ap.parse_args()
    binary = args.binary or str(ROOT / "target" / "release" / "cxlake")
    if not args.binary:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    ensure_lake(binary, args.lake, args.rows)
    import duckdb  # noqa: PLC0415
    c = duckdb.connect()
    agencies = [r[0] for r in c.execute(f"SELECT DISTINCT agency FROM '{args.lake}/dimensions/services/*.parquet'").fetchall()]
    svc = c.execute(f"SELECT service_id, agency, bureau, service_type FROM '{args.lake}/dimensions/services/*.parquet' LIMIT 1").fetchone()
    template = {"agency": svc[1], "bureau": svc[2], "service_id": svc[0], "service_type": svc[3], "channel": "digital",
                "collection_id": "mixed-load", "scale": "likert5", "trust": 4, "satisfaction": 3}
    wal = Path(f"/tmp/cxlake-mixed-load-wal-{os.getpid()}")
    server, base = serve(binary, args.lake, "--rate-limit", "0", "--submit", "--wal", wal)
    port = base.rsplit(":", 1)[1]
    try:
        # Reference: the light queries on the idle server (first run computes, the rest are cached
        # in the load too, so both are measured uncached: distinct agencies).
        idle = []
        for a in agencies[:20]:
            t = time.perf_counter()
            post(f"{base}/graphql", LIGHT[0].format(agency=a), 120)
            idle.append((time.perf_counter() - t) * 1000)
        def load(seconds, heavy_clients, light_clients, submitters):
            stats, rss = Stats(), []
            until = time.time() + seconds
            rng = random.Random(args.seed)
            threads = [threading.Thread(target=client, args=(f"{base}/graphql", agencies, stats, until, random.Random(rng.random()), i < heavy_clients))
                       for i in range(heavy_clients + light_clients)]
            threads += [threading.Thread(target=submitter, args=(base, template, stats, until, f"s{i}-{port}-{seconds}")) for i in range(submitters)]
            for t in threads:
                t.start()
            while time.time() < until:
                rss.append(rss_mb(server.pid))
                time.sleep(1)
            for t in threads:
                t.join()
            return stats, rss

        n_heavy = int(args.clients * args.heavy_share)
        # Reference in the same run: the light clients and submitters alone.
        alone, _ = load(args.seconds // 2, 0, args.clients - n_heavy, args.submitters)
        rss0 = rss_mb(server.pid)
        stats, rss = load(args.seconds, n_heavy, args.clients - n_heavy, args.submitters)
        ended = time.time()
        cpu_end = cpu_seconds(server.pid)
        time.sleep(5)
        cpu_after = cpu_seconds(server.pid) - cpu_end
        rss_after = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait()
    fivexx = sum(v for k, v in stats.codes.items() if k.startswith("http 5") or k.startswith("submit 5"))
    print(f"{args.clients} clients without think time but 200 ms after a BUSY ({args.heavy_share:.0%} heavy, 20% of those hang up after 1 s), {args.submitters} submitters, {args.seconds} s, {args.rows:,}-row lake")
    print(f"light query, one client, idle server: p50 {statistics.median(idle):.1f} ms, p99 {pct(idle, 99):.1f} ms")
    print(f"light clients alone ({args.seconds // 2} s, reference): {len(alone.light_ms)} answered ({len(alone.light_ms) / (args.seconds // 2):.1f}/s), "
          f"p50 {pct(alone.light_ms, 50):.1f} ms, p99 {pct(alone.light_ms, 99):.1f} ms; BUSY {alone.codes.get('light BUSY', 0)}")
    print(f"light clients beside the heavy ones: {len(stats.light_ms)} answered ({len(stats.light_ms) / args.seconds:.1f}/s), "
          f"p50 {pct(stats.light_ms, 50):.1f} ms, p99 {pct(stats.light_ms, 99):.1f} ms "
          f"(p99 ratio to light alone: {pct(stats.light_ms, 99) / pct(alone.light_ms, 99):.2f}x)")
    print(f"heavy completed: {len(stats.heavy_ms)}, p50 {pct(stats.heavy_ms, 50):.0f} ms")
    print("outcomes:", ", ".join(f"{k}: {v}" for k, v in sorted(stats.codes.items())))
    print(f"5xx: {fivexx}")
    print(f"RSS MB: start {rss0:.0f}, max {max(rss):.0f}, at 15 s intervals {[round(r) for r in rss[::15]]}, after {rss_after:.0f}")
    print(f"CPU-seconds in the 5 s after the load stopped: {cpu_after:.2f} (load ended {time.time() - ended:.0f} s before the end of the window)")


if __name__ == "__main__":
    main()

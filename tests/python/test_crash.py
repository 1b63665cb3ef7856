"""Crash test: `cxlake ingest` and `cxlake serve --submit` (with submitters posting) are killed
with SIGKILL at random moments while they write, 30 times. After every kill the lake must read
cleanly (every data file whole, no response id twice, queries succeed); at the end every
acknowledged submission and every ingested row is present exactly once. Fixed seed, bounded
time."""
import json
import random
import signal
import subprocess
import threading
import time
import urllib.request


from conftest import BIN, assert_stored_once, duck as con, free_port, graphql, run_cxlake, scan, wait_healthy, wait_stored, copy_dimensions, submission_template

# 15 rounds of a server and an ingest killed together (CI's time is bounded; 50 before).
KILLS = 30
FILES = 10


def check_readable(lake):
    """Every data file is a whole Parquet file and no response id is stored twice."""
    files = list((lake / "responses").rglob("*.parquet"))
    if not files:
        return 0
    n, distinct = con().execute(f"SELECT count(*), count(DISTINCT response_id) FROM {scan(lake)}").fetchone()
    assert n == distinct, f"{n - distinct} response ids stored twice"
    return n


class Submitters:
    """Threads posting small batches until the server dies; remembers acknowledged ids."""

    def __init__(self, port, template, prefix, threads=8):
        self.acked, self.stop = [], False
        self.lock = threading.Lock()
        # Daemons: a test failing before `join` must not keep pytest from exiting.
        self.threads = [threading.Thread(target=self.run, args=(port, template, f"{prefix}-{t}"), daemon=True) for t in range(threads)]
        for t in self.threads:
            t.start()

    def run(self, port, template, prefix):
        i = 0
        while not self.stop:
            batch = [dict(template, response_id=f"{prefix}-{i}-{k}") for k in range(5)]
            i += 1
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/responses", data=json.dumps(batch).encode(),
                                         headers={"content-type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:
                    body = json.loads(resp.read())
                with self.lock:
                    self.acked.extend(body["response_ids"])
            except OSError:
                time.sleep(0.02)  # not up yet, or killed: nothing acknowledged

    def join(self):
        self.stop = True
        for t in self.threads:
            t.join()


def wait_up(port, proc):
    wait_healthy(f"http://127.0.0.1:{port}", proc)


def test_kill_9_while_writing(tmp_path):
    started = time.time()
    rng = random.Random(2025)
    source = tmp_path / "source"
    run_cxlake("generate", "--out", source, "--rows", 150000, "--seed", 9, "--fiscal-years", 2, "--first-fiscal-year", 2024)
    c = con()
    exports = []
    for i in range(FILES):
        path = tmp_path / f"part{i}.csv"
        c.execute(f"""COPY (SELECT * EXCLUDE (fiscal_year, fiscal_quarter) FROM {scan(source)}
                      WHERE hash(response_id) % {FILES} = {i}) TO '{path}' (HEADER)""")
        exports.append(path)
    template = submission_template(source, "crash")

    lake = tmp_path / "lake"
    copy_dimensions(source, lake)
    run_cxlake("ingest", "--lake", lake, exports[0])  # creates the lake

    acked, killed_mid_ingest = [], 0
    for k in range(KILLS // 2):
        port = free_port()
        server = subprocess.Popen([str(BIN), "serve", "--lake", str(lake), "--submit", "--flush-ms", "50",
                                   "--listen", f"127.0.0.1:{port}"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        wait_up(port, server)
        subs = Submitters(port, template, f"k{k}")
        ingest = subprocess.Popen([str(BIN), "ingest", "--lake", str(lake), str(exports[1 + k % (FILES - 1)])],
                                  stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 0.6))
        ingest.send_signal(signal.SIGKILL)
        time.sleep(rng.uniform(0.0, 0.3))
        server.send_signal(signal.SIGKILL)
        killed_mid_ingest += ingest.wait() == -signal.SIGKILL
        server.wait()
        subs.join()
        acked.extend(subs.acked)
        check_readable(lake)
        assert "errors" not in graphql(lake, "{ scores { n } }")

    assert killed_mid_ingest >= KILLS // 4, f"only {killed_mid_ingest} ingests were killed before they finished"
    # Recovery: the server replays its log; ingesting every file again completes the lake.
    port = free_port()
    server = subprocess.Popen([str(BIN), "serve", "--lake", str(lake), "--submit", "--flush-ms", "50",
                               "--listen", f"127.0.0.1:{port}"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        wait_up(port, server)
        run_cxlake("ingest", "--lake", lake, *exports)
        assert len(acked) > 500, f"only {len(acked)} submissions acknowledged"
        stored = wait_stored(lake, acked, "crash")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()
    assert_stored_once(acked, stored)
    check_readable(lake)
    # Every ingested row exactly once: the lake minus submissions equals the source.
    cols = "* EXCLUDE (fiscal_year, fiscal_quarter)"
    for x, y in [(scan(source), f"{scan(lake)} WHERE collection_id <> 'crash'"), (f"{scan(lake)} WHERE collection_id <> 'crash'", scan(source))]:
        assert c.execute(f"SELECT count(*) FROM (SELECT {cols} FROM {x} EXCEPT ALL SELECT {cols} FROM {y})").fetchone()[0] == 0
    assert time.time() - started < 600

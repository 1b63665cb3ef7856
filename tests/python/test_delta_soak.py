"""Issue 20: under sustained submit load (eight clients posting small batches to one partition,
the flusher committing every 100 ms) the number of files per partition stays bounded, because
the flusher compacts a partition once it holds more than 16 files; and queries during those
automatic compactions never fail or count a row twice. Every few seconds the table version
cxlake reads is checked against an oracle at the same version: DuckDB over the files the Python
`deltalake` package lists for it. Ten minutes by default (`CXLAKE_SOAK_SECONDS` to change)."""
import os
import re
import subprocess
import time
from collections import Counter

from deltalake import DeltaTable

from conftest import BIN, assert_stored_once, duck, free_port, graphql, run_cxlake, scan, wait_healthy, wait_stored, submission_template
from test_crash import Submitters

SECONDS = int(os.environ.get("CXLAKE_SOAK_SECONDS", "600"))
# The flusher compacts after the commit that takes a partition past 16 files: a snapshot
# between the two holds 17.
BOUND = 17


def files_per_partition(lake, version=None):
    uris = DeltaTable(f"{lake}/responses", version=version).file_uris()
    return Counter(re.sub(r"/[^/]+$", "", u) for u in uris)


def test_file_count_stays_bounded_and_queries_stay_exact_under_submit_load(tmp_path):
    lake = tmp_path / "lake"
    run_cxlake("generate", "--out", lake, "--rows", 20000, "--seed", 31, "--fiscal-years", 1, "--first-fiscal-year", 2025)
    template = submission_template(lake, "soak")
    port = free_port()
    server = subprocess.Popen([str(BIN), "serve", "--lake", str(lake), "--submit", "--flush-ms", "100",
                               "--listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checks, most, versions = 0, 0, set()
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server)
        subs = Submitters(port, template, "soak")
        deadline = time.time() + SECONDS
        while time.time() < deadline:
            time.sleep(3)
            got = graphql(lake, "{ lakeVersions { tables { table version } } }")
            version = next(t["version"] for t in got["data"]["lakeVersions"]["tables"] if t["table"] == "responses")
            counted = graphql(lake, f"{{ responses(filter: {{ asOf: {{ version: {version} }} }}, first: 1) {{ totalCount }} }}")
            assert "errors" not in counted, counted
            n, distinct = duck().execute(f"SELECT count(*), count(DISTINCT response_id) FROM {scan(lake, version=version)}").fetchone()
            assert n == distinct, f"version {version}: {n - distinct} rows counted twice"
            assert counted["data"]["responses"]["totalCount"] == n, f"version {version}: cxlake counts {counted}, the oracle {n}"
            most = max(most, max(files_per_partition(lake, version).values()))
            assert most <= BOUND, f"version {version}: a partition holds {most} files"
            versions.add(version)
            checks += 1
        subs.join()
        stored = wait_stored(lake, subs.acked, "soak", timeout=60)
    finally:
        server.terminate()
        server.wait()
    assert_stored_once(subs.acked, stored)
    history = DeltaTable(f"{lake}/responses").history()
    compactions = sum(1 for h in history if h.get("operation") == "OPTIMIZE")
    flushes = sum(1 for h in history if h.get("operation") == "WRITE")
    print(f"{SECONDS} s: {len(subs.acked)} responses acknowledged, {flushes} commits, {compactions} compactions, "
          f"{checks} checks over {len(versions)} versions, at most {most} files in a partition")
    assert compactions > 0 and flushes > 2 * compactions and len(versions) > checks // 2

"""A lake in S3 (SeaweedFS on loopback) written by cxlake itself: generation gives the same
objects as on disk, ingestion round-trips exactly, writers take turns through the lease object,
and a writer killed mid-upload leaves no partial object visible. (The oracle suites and the
replica test also run on S3: see the `lake_url` fixture and test_replicas.py.)"""
import os
import random
import signal
import subprocess
import time

import pyarrow.parquet as pq
import pytest

from conftest import BIN, graphql, run_cxlake
from test_ingest_roundtrip import DRIVERS, SCORES, assert_same_rows, con, ingest, same, scan


def generate(out, seed=11):
    run_cxlake("generate", "--out", out, "--rows", 20000, "--seed", seed, "--fiscal-years", 2, "--first-fiscal-year", 2024)


def test_generate_to_s3_writes_the_same_objects_as_to_disk(s3, tmp_path):
    local = tmp_path / "local"
    generate(local)
    generate(s3.url("gen"))
    on_disk = {str(p.relative_to(local)): p.stat().st_size for p in local.rglob("*") if p.is_file()}
    assert s3.keys("gen") == on_disk
    copy = tmp_path / "copy"
    s3.download("gen", copy)
    for rel in on_disk:
        if rel.endswith(".parquet"):
            assert (copy / rel).read_bytes() == (local / rel).read_bytes(), rel
    # A second generate into the same place is refused, leaving the lake as it was.
    proc = run_cxlake("generate", "--out", s3.url("gen"), "--rows", 10, check=False)
    assert proc.returncode != 0 and "already holds a lake" in proc.stderr
    assert s3.keys("gen") == on_disk


def test_ingest_into_s3_round_trips(s3, tmp_path):
    original = tmp_path / "original"
    generate(original, seed=12)
    export = tmp_path / "export.csv"
    con().execute(f"COPY (SELECT * EXCLUDE (fiscal_year, fiscal_quarter) FROM {scan(original)}) TO '{export}' (HEADER)")
    lake = s3.url("rt")
    summaries = ingest(lake, export)
    assert summaries[0]["rows_stored"] == 20000 and summaries[0]["rows_quarantined"] == 0
    # Dimension tables are not part of an export: the original's go up beside the data.
    s3.upload(original / "dimensions", "rt/dimensions")
    for q in [SCORES, DRIVERS]:
        got, want = graphql(lake, q), graphql(original, q)
        assert "errors" not in got, got
        same(got, want)
    assert ingest(lake, export)[0]["already_ingested"]
    back = tmp_path / "back"
    s3.download("rt", back)
    assert assert_same_rows(original, back) == 20000
    # No staging, temporary or lock object is left in the bucket.
    assert not [k for k in s3.keys("rt") if "_staging" in k or ".tmp-" in k or k.endswith("writer.lock")]


def csv_of(tmp_path, original, name, ids):
    """A CSV of the original's rows with response ids prefixed (so each file's rows are new)."""
    path = tmp_path / f"{name}.csv"
    con().execute(f"""COPY (SELECT * EXCLUDE (fiscal_year, fiscal_quarter) REPLACE ('{ids}' || response_id AS response_id)
                   FROM {scan(original)}) TO '{path}' (HEADER)""")
    return path


def test_writers_take_turns_and_killed_uploads_leave_nothing_partial(s3, tmp_path):
    original = tmp_path / "original"
    generate(original, seed=13)
    lake = s3.url("kill")
    env = dict(os.environ, CXLAKE_LEASE_TTL_MS="1000")
    # Two ingests at once: the lease serialises them; both land, each row once.
    a, b = csv_of(tmp_path, original, "a", "a-"), csv_of(tmp_path, original, "b", "b-")
    procs = [subprocess.Popen([str(BIN), "ingest", "--lake", lake, str(f)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for f in (a, b)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    # Then ingests killed at random moments (listing, staging, uploading, committing).
    rng = random.Random(1)
    victim = csv_of(tmp_path, original, "victim", "k-")
    for _ in range(6):
        p = subprocess.Popen([str(BIN), "ingest", "--lake", lake, str(victim)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.1, 2.0))
        p.send_signal(signal.SIGKILL)
        p.wait()
        check_every_object_whole(s3, tmp_path / "check")
    # A final run completes (after the dead writer's lease expired) and stores what was missing.
    proc = subprocess.run([str(BIN), "ingest", "--lake", lake, str(victim)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    back = tmp_path / "back"
    s3.download("kill", back)
    c = con()
    n, distinct = c.execute(f"SELECT count(*), count(DISTINCT response_id) FROM {scan(back)}").fetchone()
    assert n == distinct == 60000


def check_every_object_whole(s3, local):
    """Every data object visible in the bucket is a complete Parquet file."""
    if local.exists():
        subprocess.run(["rm", "-rf", str(local)], check=True)
    s3.download("kill", local)
    for f in (local / "responses").rglob("*"):
        if f.is_file():
            assert f.name.endswith(".parquet") and not f.name.startswith(".tmp-"), f
            pq.read_metadata(f)  # raises on a partial file

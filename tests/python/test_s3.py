"""A lake in S3 (SeaweedFS on loopback) written by cxlake itself: generation gives the same
objects as on disk, ingestion round-trips exactly, writers take turns through the lease object,
and a writer killed mid-upload leaves no partial object visible. (The oracle suites and the
replica test also run on S3: see the `lake_url` fixture and test_replicas.py.)"""
import json
import os
import random
import signal
import subprocess
import time

import pyarrow.parquet as pq
import pytest

from conftest import BIN, dimension, graphql, run_cxlake
from test_ingest_roundtrip import DRIVERS, SCORES, assert_same_rows, con, ingest, same, scan


def generate(out, seed=11):
    run_cxlake("generate", "--out", out, "--rows", 20000, "--seed", seed, "--fiscal-years", 2, "--first-fiscal-year", 2024)


def test_generate_to_s3_writes_the_same_objects_as_to_disk(s3, tmp_path):
    local = tmp_path / "local"
    generate(local)
    generate(s3.url("gen"))
    # (Not the write lock: a file flocked locally, a lease object deleted on release in S3.)
    on_disk = {str(p.relative_to(local)): p.stat().st_size for p in local.rglob("*") if p.is_file() and p.name != "writer.lock"}
    in_s3 = s3.keys("gen")
    assert sorted(in_s3) == sorted(on_disk)
    # Data objects byte for byte; Delta commits (whose commit info names the location and the
    # time) action for action. The moments rollup is the exception: its float sums of sums
    # (polars' in-memory group-by over cells) are not added in the same order every run, so
    # its files differ in the last bits (1e-16 relative) and in size; rollup_vs_raw checks its
    # values against DuckDB to 1e-12 instead.
    assert {k: v for k, v in in_s3.items() if "_delta_log" not in k and "drivers_service_month" not in k} == \
        {k: v for k, v in on_disk.items() if "_delta_log" not in k and "drivers_service_month" not in k}
    copy = tmp_path / "copy"
    s3.download("gen", copy)
    for rel in on_disk:
        moments = "drivers_service_month" in rel  # see above: the same files, not the same bytes
        if rel.endswith(".parquet") and not moments:
            assert (copy / rel).read_bytes() == (local / rel).read_bytes(), rel
        elif "_delta_log" in rel:
            def files(root):
                actions = [json.loads(line) for line in (root / rel).read_text().splitlines()]
                return sorted((a["add"]["path"], None if moments else a["add"]["size"]) for a in actions if "add" in a)
            assert files(copy) == files(local), rel
    # A second generate into the same place is refused, leaving the lake as it was.
    proc = run_cxlake("generate", "--out", s3.url("gen"), "--rows", 10, check=False)
    assert proc.returncode != 0 and "already holds a lake" in proc.stderr
    assert s3.keys("gen") == in_s3


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


def check_every_object_whole(s3, local, prefix="kill"):
    """Every data object visible in the bucket is a complete Parquet file."""
    if local.exists():
        subprocess.run(["rm", "-rf", str(local)], check=True)
    s3.download(prefix, local)
    for f in (local / "responses").rglob("*"):
        if f.is_file() and "_delta_log" not in f.parts:
            assert f.name.endswith(".parquet") and not f.name.startswith(".tmp-"), f
            pq.read_metadata(f)  # raises on a partial file


def test_a_replica_killed_while_flushing_leaves_whole_objects_and_loses_no_acknowledged_response(s3, tmp_path):
    """A `serve --submit` replica on S3 is SIGKILLed while it moves submissions into the bucket,
    three times; every visible object stays a whole Parquet file, and after restarts (which
    replay the local submit log) every acknowledged response is stored exactly once."""
    import json
    import threading
    import urllib.request

    import duckdb

    from conftest import start_server

    local = tmp_path / "lake"
    generate(local, seed=14)
    s3.upload(local, "replica-kill")
    lake, wal = s3.url("replica-kill"), tmp_path / "wal"
    svc = duckdb.connect().execute(f"SELECT service_id, agency, bureau, service_type FROM {dimension(local, 'services')} LIMIT 1").fetchone()
    env = dict(os.environ, CXLAKE_LEASE_TTL_MS="1000")
    acknowledged, rng = [], random.Random(3)

    def start():
        return start_server("--lake", lake, "--submit", "--wal", wal, "--flush-ms", 100, env=env, timeout=60)

    def post_until_dead(url, stop):
        batch = 0
        while not stop.is_set():
            ids = [f"rk-{len(acknowledged)}-{batch}-{i}" for i in range(40)]
            body = [{"agency": svc[1], "response_id": i, "submitted_at": "2025-02-01T00:00:00Z", "collection_id": "rk", "bureau": svc[2],
                     "service_id": svc[0], "service_type": svc[3], "channel": "digital", "scale": "likert5", "trust": 4} for i in ids]
            req = urllib.request.Request(url + "/v1/responses", data=json.dumps(body).encode(), headers={"content-type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:
                    if resp.status == 200:
                        acknowledged.extend(ids)
            except OSError:
                return
            batch += 1

    for _ in range(3):
        proc, url = start()
        stop = threading.Event()
        poster = threading.Thread(target=post_until_dead, args=(url, stop))
        poster.start()
        time.sleep(rng.uniform(0.8, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stop.set()
        poster.join()
        check_every_object_whole(s3, tmp_path / "check", prefix="replica-kill")
    # A last start replays what the log still holds and flushes it.
    proc, url = start()
    time.sleep(1.5)
    proc.terminate()
    proc.wait()
    back = tmp_path / "back"
    s3.download("replica-kill", back)
    stored = dict(con().execute(f"SELECT response_id, count(*) FROM {scan(back)} WHERE collection_id = 'rk' GROUP BY 1").fetchall())
    print(f"{len(acknowledged)} acknowledged, {len(stored)} stored")
    assert len(acknowledged) > 100
    missing = [i for i in acknowledged if i not in stored]
    assert not missing, f"{len(missing)} acknowledged responses lost, e.g. {missing[:3]}"
    assert all(n == 1 for n in stored.values())


def test_inventory_edits_telemetry_and_the_hisp_report_work_the_same_on_s3(s3, tmp_path):
    """The same inventory edit and telemetry ingest on a local lake and on an S3 lake give the
    same telemetry aggregates and byte-identical HISP reports."""
    services = tmp_path / "services.csv"
    services.write_text(
        "service_id,name,description,agency,agency_name,bureau,bureau_name,org_unit,service_type,channels,designated,non_digital_reason,digitization_options\n"
        "ZZ-S1,Permits,Apply for a permit,ZZ,Test Agency,ZZ-B,Test Bureau,Permits office,regulatory,in_person,yes,Signatures in person,e-signature\n")
    telemetry = tmp_path / "telemetry.csv"
    telemetry.write_text("service_id,observed_at,metric,value,channel\n"
                         + "".join(f"ZZ-S1,2025-0{m}-01,transactions,{10 * m},in_person\n" for m in range(1, 10)))
    outputs = []
    for lake in [tmp_path / "local", s3.url("edits")]:
        generate(lake, seed=13)
        run_cxlake("ingest", "--lake", lake, "--table", "services", services)
        run_cxlake("ingest", "--lake", lake, "--table", "telemetry", telemetry)
        again = run_cxlake("ingest", "--lake", lake, "--table", "telemetry", telemetry)
        assert "already ingested" in again.stdout
        agg = graphql(str(lake), '{ telemetry(filter: {service: ["ZZ-S1"]}, period: FISCAL_QUARTER) { period count sum } services(designated: true, agency: ["ZZ"]) { id hasDigitalChannel } }')
        assert "errors" not in agg, agg
        report = tmp_path / f"r{len(outputs)}.csv"
        run_cxlake("report", "hisp", "--lake", lake, "--fiscal-year", 2025, "--quarter", 2, "--out", report)
        outputs.append((agg, report.read_bytes()))
    assert outputs[0] == outputs[1]
    assert outputs[0][0]["data"]["telemetry"] == [{"period": "FY2025Q2", "count": 3, "sum": 10.0 + 20.0 + 30.0},
                                                  {"period": "FY2025Q3", "count": 3, "sum": 40.0 + 50.0 + 60.0},
                                                  {"period": "FY2025Q4", "count": 3, "sum": 70.0 + 80.0 + 90.0}]
    assert outputs[0][0]["data"]["services"] == [{"id": "ZZ-S1", "hasDigitalChannel": False}]

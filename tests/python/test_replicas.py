"""Two `cxlake serve --submit` replicas over one lake (each with its own submit log), on local
disk and in S3 (SeaweedFS): a response submitted to either, and a file ingested by the CLI
meanwhile, become visible in both within the documented bound (the flush interval plus one
query), and each is stored once."""
import json
import signal
import subprocess
import time
import urllib.request

import duckdb
import pytest

from conftest import run_cxlake, start_server, scan, submission_template

FLUSH_MS = 200
BOUND_S = 5  # documented: visible within flush interval + one listing; generous for CI


def start(lake, wal):
    return start_server("--lake", lake, "--submit", "--wal", wal, "--flush-ms", FLUSH_MS, "--min-cell", 0)


def post(url, path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


def count(url, service):
    q = '{ scores(filter: {service: ["%s"]}, measures: [TRUST]) { n } }' % service
    rows = post(url, "/graphql", {"query": q})["data"]["scores"]
    return rows[0]["n"] if rows else 0


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_two_replicas_see_each_others_writes(tmp_path, oracle_lake, backend, request):
    if backend == "local":
        lake = tmp_path / "lake"
        subprocess.run(["cp", "-r", str(oracle_lake), str(lake)], check=True)
    else:
        s3 = request.getfixturevalue("s3")
        s3.upload(oracle_lake, "replicas")
        lake = s3.url("replicas")
    template = submission_template(oracle_lake, "replicas", trust=5)
    (a, url_a), (b, url_b) = start(lake, tmp_path / "wal-a"), start(lake, tmp_path / "wal-b")
    try:
        before = count(url_a, template['service_id'])
        assert count(url_b, template['service_id']) == before  # now cached in both
        post(url_a, "/v1/responses", [dict(template, response_id=f"a{i}") for i in range(3)])
        post(url_b, "/v1/responses", [dict(template, response_id=f"b{i}") for i in range(2)])
        # The CLI ingests a file meanwhile (a third writer, taking the same lake lock).
        csv = tmp_path / "more.csv"
        csv.write_text("agency,response_id,submitted_at,collection_id,bureau,service_id,service_type,channel,scale,trust\n"
                       + "".join(f"{template['agency']},c{i},2025-01-0{i + 1}T00:00:00Z,replicas,{template['bureau']},{template['service_id']},{template['service_type']},digital,likert5,4\n" for i in range(4)))
        run_cxlake("ingest", "--lake", lake, csv)
        started = time.time()
        while time.time() - started < BOUND_S and not (count(url_a, template['service_id']) == count(url_b, template['service_id']) == before + 9):
            time.sleep(0.05)
        took = time.time() - started
        print(f"visible in both replicas {took:.2f}s after the last write")
        assert count(url_a, template['service_id']) == count(url_b, template['service_id']) == before + 9, f"not visible in both after {took:.1f}s"
        health = [json.loads(urllib.request.urlopen(f"{u}/health").read())["lake_version"] for u in (url_a, url_b)]
        assert health[0] == health[1] >= 3
    finally:
        for p in (a, b):
            p.send_signal(signal.SIGTERM)
            p.wait()
    if backend == "s3":  # read back what is in the bucket, with another engine
        local = tmp_path / "downloaded"
        s3.download("replicas", local)
        lake = local
    n, distinct = duckdb.connect().execute(f"SELECT count(*), count(DISTINCT response_id) FROM {scan(lake)} WHERE collection_id = 'replicas'").fetchone()
    assert n == distinct == 9

"""Shared fixtures: the cxlake binary built by `cargo build`, and generated lakes (fixed seeds)."""
import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("CXLAKE_BIN", ROOT / "target" / "debug" / "cxlake"))


def run_cxlake(*args, check=True, **kw):
    """Runs the cxlake binary and returns the CompletedProcess."""
    proc = subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"cxlake {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}\n{proc.stdout}")
    return proc


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url, proc, timeout=30):
    """Waits until the server at url answers /health; fails if its process exits first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1).read()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"server at {url} did not start in {timeout}s")


def start_server(*args, env=None, timeout=30):
    """Starts `cxlake serve ARGS` on a free loopback port (with `env`, default the test's);
    returns the process and its URL once it answers /health."""
    port = free_port()
    if any(getattr(a, "no_rollups", False) for a in args):
        args = (*args, "--no-rollups")
    proc = subprocess.Popen([str(BIN), "serve", *map(str, args), "--listen", f"127.0.0.1:{port}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc, timeout=timeout)
    return proc, url


def live_files(lake, table="responses", version=None):
    """The data files of a lake's Delta table at its latest version (or `version`), as the
    Python `deltalake` package (an outside reader of the Delta log) finds them."""
    from deltalake import DeltaTable  # noqa: PLC0415
    return sorted(DeltaTable(f"{lake}/{table}", version=version).file_uris())


def scan(lake, table="responses", version=None):
    """A DuckDB table expression over the live files of a lake's table (hive partition columns
    included): DuckDB reads the files the Delta log lists, not a directory listing."""
    files = live_files(lake, table, version)
    assert files, f"{lake}/{table} has no data files"
    listed = ", ".join(f"'{f}'" for f in files)
    return f"read_parquet([{listed}], hive_partitioning = true)"


def copy_dimensions(source, lake):
    """Copies a lake's dimension tables (services, offices: Delta tables, log included) into
    another lake directory, as a lake built from an export needs them."""
    import shutil  # noqa: PLC0415
    for t in ["services", "offices"]:
        shutil.copytree(Path(source) / "dimensions" / t, Path(lake) / "dimensions" / t, dirs_exist_ok=True)


def submission_template(lake, collection, **answers):
    """A submission for the first service of a lake's inventory (`dimensions/services`), in
    `collection`, on a digital channel and the Likert scale; `answers` default to trust 4 and
    satisfaction 3. Tests add a response id."""
    svc = duck().execute(f"SELECT service_id, agency, bureau, service_type FROM {dimension(lake, 'services')} LIMIT 1").fetchone()
    return {"agency": svc[1], "bureau": svc[2], "service_id": svc[0], "service_type": svc[3], "channel": "digital",
            "collection_id": collection, "scale": "likert5", **(answers or {"trust": 4, "satisfaction": 3})}


def dimension(lake, name):
    """A DuckDB table expression over a dimension table (services, offices): its one live file."""
    return scan(lake, f"dimensions/{name}")


def stored_ids(lake, collection_id):
    """Response id -> times stored, for the responses of one collection in a lake."""
    return dict(duck().execute(f"SELECT response_id, count(*) FROM {scan(lake)} WHERE collection_id = '{collection_id}' GROUP BY 1").fetchall())


def wait_stored(lake, ids, collection_id, timeout=30):
    """Waits until every id is in the lake (or the time is up); returns what is stored."""
    deadline = time.time() + timeout
    while True:
        stored = stored_ids(lake, collection_id)
        if all(i in stored for i in ids) or time.time() > deadline:
            return stored
        time.sleep(0.2)


def assert_stored_once(acked, stored):
    """Every acknowledged id is stored, and nothing twice."""
    missing = [a for a in acked if a not in stored]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged responses lost, e.g. {missing[:3]}"
    assert all(v == 1 for v in stored.values()), "responses stored twice"


def duck():
    """A DuckDB connection reading timestamps in UTC, as the lake stores them."""
    import duckdb  # noqa: PLC0415 (not every test needs it)
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    return c


def graphql(lake, query, variables=None, suppress=False):
    """Runs a GraphQL query through `cxlake query` and returns the parsed response. Oracle tests
    compare every cell, so small-cell suppression is off unless asked for (it is tested in
    tests/it/suppression.rs)."""
    args = ["query", "--lake", lake, "-"]
    if getattr(lake, "no_rollups", False):
        args.append("--no-rollups")
    if not suppress:
        args += ["--min-cell", "0", "--min-cell-drivers", "0"]
    if variables is not None:
        args += ["--variables", json.dumps(variables)]
    proc = run_cxlake(*args, input=query, check=False)
    return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def oracle_lake(tmp_path_factory):
    """A 60k-row lake, seed 7, three fiscal years."""
    out = tmp_path_factory.mktemp("lakes") / "oracle"
    run_cxlake("generate", "--out", out, "--rows", 60000, "--seed", 7, "--fiscal-years", 3, "--first-fiscal-year", 2023)
    return out


class RawRows(str):
    """A lake location `graphql` queries with `--no-rollups`: every answer from raw rows."""
    no_rollups = True


@pytest.fixture(scope="session", params=["local", "local-raw", "s3"])
def lake_url(request, oracle_lake):
    """Where cxlake reads the oracle lake: its local directory answering from rollups where
    they cover a query, the same directory answering only from raw rows (`--no-rollups`), or a
    copy of it in S3 (SeaweedFS) made by pyarrow, another engine's writer. Tests taking it run
    on all three and are checked against the same independent oracle (DuckDB over the raw rows
    of the local copy)."""
    if request.param == "local":
        return str(oracle_lake)
    if request.param == "local-raw":
        return RawRows(oracle_lake)
    s3 = request.getfixturevalue("s3")
    if not s3.keys("oracle"):
        s3.upload(oracle_lake, "oracle")
    return s3.url("oracle")


# Of the seeded oracle cases (`case_seed`, `case`), S3 runs every fourth: what it adds is the
# reading of the lake over S3, while every case runs locally twice (from rollups, from raw rows).
S3_CASE_STRIDE = 4


def pytest_collection_modifyitems(config, items):
    dropped = []
    for item in items:
        params = item.callspec.params if hasattr(item, "callspec") else {}
        case = params.get("case_seed", params.get("case"))
        if params.get("lake_url") == "s3" and isinstance(case, int) and case % S3_CASE_STRIDE != 0:
            dropped.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if i not in dropped]


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """A SeaweedFS S3 server on loopback for the session; its AWS_* settings are put in the
    environment, so every cxlake process started afterwards reaches it."""
    from s3server import S3Server
    server = S3Server(tmp_path_factory.mktemp("seaweedfs")).start()
    saved = {k: os.environ.get(k) for k in server.env()}
    os.environ.update(server.env())
    yield server
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.stop()

"""Table downloads: the same query as JSON, Arrow IPC stream, CSV and Parquet (by Accept header
on POST and by format= on GET) gives the same table, read back with polars and pyarrow."""
import io
import json
import signal
import urllib.parse
import urllib.request

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from conftest import start_server, scan

SCORES = """{ scores(groupBy: [AGENCY, CHANNEL], period: FISCAL_YEAR, measures: [TRUST]) {
  agency channel period measure n mean sd agreeShare agreeLow suppressed } }"""
DRIVERS = """{ driverImportance(groupBy: [SERVICE_TYPE], outcome: TRUST) {
  serviceType n r2 drivers { driver shapleyShare rank quadrant } } }"""
TYPES = {"arrow": "application/vnd.apache.arrow.stream", "csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


@pytest.fixture(scope="module")
def server(lake_url):
    proc, url = start_server("--lake", lake_url, "--min-cell", 0, "--min-cell-drivers", 0)
    yield url
    proc.send_signal(signal.SIGTERM)
    proc.wait()


def post(url, query, accept="application/json"):
    req = urllib.request.Request(f"{url}/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"content-type": "application/json", "accept": accept})
    with urllib.request.urlopen(req) as resp:
        return resp.headers.get("content-type"), resp.read()


def get(url, query, fmt):
    with urllib.request.urlopen(f"{url}/graphql?" + urllib.parse.urlencode({"query": query, "format": fmt})) as resp:
        return resp.read()


def read(fmt, body):
    if fmt == "arrow":
        return pl.read_ipc_stream(io.BytesIO(body))
    if fmt == "csv":
        return pl.read_csv(io.BytesIO(body), infer_schema_length=None)
    return pl.read_parquet(io.BytesIO(body))


def flat(rows, nested=None):
    """The JSON result flattened the way the server documents: one nested list unnested."""
    out = []
    for r in rows:
        base = {k: v for k, v in r.items() if k != nested}
        for child in (r.get(nested) or [None]) if nested else [None]:
            row = dict(base)
            if child:
                row.update({f"{nested}_{k}": v for k, v in child.items()})
            out.append(row)
    return pl.DataFrame(out, infer_schema_length=None)


@pytest.mark.parametrize("query,field,nested", [(SCORES, "scores", None), (DRIVERS, "driverImportance", "drivers")])
def test_every_format_is_the_json_table(server, query, field, nested):
    _, body = post(server, query)
    want = flat(json.loads(body)["data"][field], nested)
    assert want.height > 5
    for fmt, media in TYPES.items():
        ctype, body = post(server, query, media)
        assert ctype.startswith(media.split(";")[0])
        got = read(fmt, body)
        assert got.columns == want.columns, fmt
        assert_frame_equal(got, want, check_dtypes=False, rel_tol=1e-12, abs_tol=0)
        assert_frame_equal(read(fmt, get(server, query, fmt)), got)
    # Typed: counts are integers and shares floats in the binary formats; pyarrow reads them too.
    arrow = pa.ipc.open_stream(post(server, query, TYPES["arrow"])[1]).read_all()
    parquet = pq.read_table(io.BytesIO(post(server, query, TYPES["parquet"])[1]))
    assert arrow.schema == parquet.schema
    assert arrow.schema.field("n").type == pa.int64()
    assert arrow.equals(parquet)


def test_a_query_that_is_not_one_list_is_a_clear_error(server):
    for query in ["{ scores { n } services { id } }", "{ scores(groupBy: [NOPE]) { n } }"]:
        with pytest.raises(urllib.error.HTTPError) as e:
            post(server, query, "text/csv")
        assert e.value.code == 400
        body = json.loads(e.value.read())
        assert "error" in body or "errors" in body


def export(url, **params):
    with urllib.request.urlopen(f"{url.removesuffix('/graphql')}/v1/export?" + urllib.parse.urlencode(params)) as resp:
        return resp.read()


def test_raw_export_streams_every_row_in_each_format(server, oracle_lake):
    c = duckdb_con()
    want = c.execute(f"SELECT count(*), sum(weight), count(trust), min(submitted_at)::VARCHAR FROM {scan(oracle_lake)}").fetchone()
    frames = {}
    for fmt in ["parquet", "arrow", "csv"]:
        got = read(fmt, export(server, format=fmt))
        frames[fmt] = got
        assert got.height == want[0]
        assert got["weight"].sum() == pytest.approx(want[1], rel=1e-12)
        assert got["trust"].count() == want[2]
        assert {"agency", "fiscal_year", "fiscal_quarter", "response_id", "positive_other"} <= set(got.columns)
    assert_frame_equal(frames["parquet"], frames["arrow"])
    assert frames["parquet"]["response_id"].to_list() == frames["csv"]["response_id"].to_list()
    # Filters select partitions: one agency, two fiscal quarters.
    agency = c.execute(f"SELECT agency FROM {scan(oracle_lake)} GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    n = c.execute(f"SELECT count(*) FROM {scan(oracle_lake)} WHERE agency = '{agency}' AND fiscal_year = 2024 AND fiscal_quarter IN (2, 3)").fetchone()[0]
    part = read("arrow", export(server, format="arrow", agency=agency, **{"from": "FY2024Q2", "to": "FY2024Q3"}))
    assert part.height == n > 0 and set(part["agency"].to_list()) == {agency}
    with pytest.raises(urllib.error.HTTPError) as e:
        export(server, **{"from": "2024"})
    assert e.value.code == 400


def duckdb_con():
    import duckdb
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    return c

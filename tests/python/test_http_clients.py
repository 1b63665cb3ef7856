"""What standard HTTP and GraphQL clients do with cxlake, with the clients themselves: polars,
pandas and DuckDB reading table downloads by URL (HEAD, Content-Length, single byte ranges),
compressed responses for clients that ask, and the standard introspection query of graphql-core
and the gql client (the one GraphiQL, Apollo and codegen send)."""
import gzip
import io
import json
import signal
import urllib.parse
import urllib.request

import pandas as pd
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from conftest import ROOT, start_server

SCORES = "{ scores(groupBy: [AGENCY, CHANNEL], period: FISCAL_YEAR, measures: [TRUST, EASE]) { agency channel period measure n mean meanLow agreeShare suppressed } }"


@pytest.fixture(scope="module")
def server():
    proc, url = start_server("--lake", ROOT / "data" / "sample")
    yield url
    proc.send_signal(signal.SIGTERM)
    proc.wait()


def url_of(server, fmt, query=SCORES):
    return f"{server}/graphql?" + urllib.parse.urlencode({"query": query, "format": fmt})


def fetch(url, method="GET", headers=None, data=None):
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers.items()), e.read()


def reference(server):
    """The same table from a plain POST with an Arrow Accept header (no URL reading)."""
    req = urllib.request.Request(f"{server}/graphql", data=json.dumps({"query": SCORES}).encode(),
                                 headers={"content-type": "application/json", "accept": "application/vnd.apache.arrow.stream"})
    with urllib.request.urlopen(req) as resp:
        return pl.read_ipc_stream(io.BytesIO(resp.read()))


def test_polars_pandas_and_duckdb_read_downloads_by_url(server):
    want = reference(server)
    assert want.height > 10
    assert_frame_equal(pl.read_csv(url_of(server, "csv"), schema=want.schema), want)
    assert_frame_equal(pl.read_parquet(url_of(server, "parquet")), want)
    assert_frame_equal(pl.scan_parquet(url_of(server, "parquet")).filter(pl.col("measure") == "EASE").collect(),
                       want.filter(pl.col("measure") == "EASE"))
    assert_frame_equal(pl.from_pandas(pd.read_parquet(url_of(server, "parquet"))), want, check_dtypes=False)
    assert len(pd.read_csv(url_of(server, "csv"))) == want.height


def test_head_and_single_byte_ranges(server):
    url = url_of(server, "parquet")
    status, headers, body = fetch(url)
    assert status == 200 and int(headers["content-length"]) == len(body) > 100
    assert headers["accept-ranges"] == "bytes" and headers["etag"].startswith('"')
    status, h, empty = fetch(url, method="HEAD")
    assert status == 200 and empty == b"" and h["content-length"] == headers["content-length"] and h["etag"] == headers["etag"]
    n = len(body)
    for spec, first, last in [("bytes=0-3", 0, 3), (f"bytes={n - 8}-", n - 8, n - 1), ("bytes=-8", n - 8, n - 1), (f"bytes=10-{n + 100}", 10, n - 1)]:
        part = body[first:last + 1]
        status, h, got = fetch(url, headers={"range": spec})
        assert status == 206 and got == part, spec
        assert h["content-range"] == f"bytes {first}-{last}/{n}" and int(h["content-length"]) == len(part), (spec, h)
    assert body[-4:] == b"PAR1"
    status, h, _ = fetch(url, headers={"range": f"bytes={n}-"})
    assert status == 416 and h["content-range"] == f"bytes */{n}"
    # Several ranges, or a range of another version (If-Range), get the whole body.
    assert fetch(url, headers={"range": "bytes=0-1,4-5"})[0] == 200
    assert fetch(url, headers={"range": "bytes=0-1", "if-range": '"other"'})[2] == body


def test_responses_are_compressed_when_asked(server):
    body = json.dumps({"query": SCORES}).encode()
    plain = fetch(f"{server}/graphql", "POST", {"content-type": "application/json"}, body)
    assert "content-encoding" not in plain[1]
    for enc, decode in [("gzip", gzip.decompress)]:
        status, h, packed = fetch(f"{server}/graphql", "POST", {"content-type": "application/json", "accept-encoding": f"{enc}, br"}, body)
        assert status == 200 and h["content-encoding"] == enc and "accept-encoding" in h["vary"].lower()
        assert len(packed) < len(plain[2]) / 3 and json.loads(decode(packed)) == json.loads(plain[2])
    import zstandard  # noqa: PLC0415 (only this test needs it)
    status, h, packed = fetch(url_of(server, "csv"), headers={"accept-encoding": "gzip;q=0.5, zstd"})
    assert h["content-encoding"] == "zstd"
    assert zstandard.ZstdDecompressor().decompressobj().decompress(packed) == fetch(url_of(server, "csv"))[2]
    # Parquet is compressed already: sent as it is.
    status, h, _ = fetch(url_of(server, "parquet"), headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in h
    # Streamed raw exports are compressed on the fly.
    status, h, packed = fetch(f"{server}/v1/export?format=csv&agency=VA", headers={"accept-encoding": "gzip"})
    assert status == 200 and h["content-encoding"] == "gzip"
    assert gzip.decompress(packed) == fetch(f"{server}/v1/export?format=csv&agency=VA")[2]


def test_the_standard_introspection_query_of_graphql_core_and_gql(server):
    from gql import Client  # noqa: PLC0415
    from gql.transport.requests import RequestsHTTPTransport  # noqa: PLC0415
    from graphql import build_client_schema, get_introspection_query, print_schema  # noqa: PLC0415

    for options in [{}, dict(descriptions=True, specified_by_url=True, directive_is_repeatable=True, schema_description=True,
                             input_value_deprecation=True, one_of=True)]:
        q = get_introspection_query(**options)
        status, _, body = fetch(f"{server}/graphql", "POST", {"content-type": "application/json"}, json.dumps({"query": q}).encode())
        result = json.loads(body)
        assert status == 200 and "errors" not in result, result.get("errors")
        schema = build_client_schema(result["data"])
        assert "scores" in schema.query_type.fields and "driverImportance" in schema.query_type.fields
        assert "type QueryRoot" in print_schema(schema)
    client = Client(transport=RequestsHTTPTransport(url=f"{server}/graphql"), fetch_schema_from_transport=True)
    with client as session:
        assert "services" in client.schema.query_type.fields
        from gql import gql as parse  # noqa: PLC0415
        rows = session.execute(parse("{ scores(groupBy: [AGENCY], measures: [TRUST]) { agency n } }"))["scores"]
        assert len(rows) > 5
    # Data queries keep their depth limit, and introspection has its own.
    def errors(q):
        body = fetch(f"{server}/graphql", "POST", {"content-type": "application/json"}, json.dumps({"query": q}).encode())[2]
        return " ".join(e["message"] for e in json.loads(body).get("errors", []))
    assert "nested 14 fields deep" in errors("{ " + "services { " * 13 + "id" + " }" * 13 + " }")
    chain = "{ __schema { types { ...T0 } } } " + " ".join(
        f"fragment T{i} on __Type {{ fields {{ type {{ ...T{i + 1} }} }} }}" for i in range(8)) + " fragment T8 on __Type { name }"
    assert "introspection is nested 19 fields deep" in errors(chain), errors(chain)

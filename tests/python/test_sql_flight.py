"""Issue 22: SQL over Arrow Flight SQL, with the real ADBC Flight SQL driver (adbc-driver-flightsql,
the Go driver in the wheel) and polars.read_database over it. The oracle is the GraphQL answer of
the same grouping over HTTP with the same key: the same rows, the same numbers to 1e-12, the same
suppression. Access: the password (or the bearer token) is a cxlake key; raw `responses` only for
the agency (its own rows) and admin roles; writes and unknown tables refused; TLS optional.
"""
import subprocess
import urllib.request

import pytest

from conftest import BIN, free_port, wait_healthy
from sql_oracle import SAMPLE, STATS, camel, close, gql_scores, role_keys


def start(keys, *extra):
    http, flight = free_port(), free_port()
    proc = subprocess.Popen([str(BIN), "serve", "--lake", SAMPLE, "--keys", keys, "--rate-limit", "0", "--listen", f"127.0.0.1:{http}",
                             "--flight-sql", f"127.0.0.1:{flight}", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{http}"
    wait_healthy(url, proc)
    return proc, url, flight


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The sample lake served over HTTP and Flight SQL, with analyst, agency and admin keys."""
    tmp = tmp_path_factory.mktemp("sql_flight")
    keys = tmp / "keys.json"
    made, agency = role_keys(keys)
    proc, url, flight = start(keys)
    yield {"url": url, "flight": flight, "keys": made, "agency": agency, "proc": proc, "keys_file": keys, "tmp": tmp}
    proc.terminate()
    proc.wait(timeout=30)


def connect(server, role, **kw):
    from adbc_driver_flightsql import dbapi  # noqa: PLC0415
    return dbapi.connect(f"grpc://127.0.0.1:{server['flight']}", db_kwargs={"username": role, "password": server["keys"][role]}, autocommit=True, **kw)


def test_adbc_reads_a_score_table_equal_to_graphql(server):
    import pyarrow as pa  # noqa: PLC0415
    with connect(server, "analyst") as conn, conn.cursor() as cur:
        cur.execute("SELECT service_id, period, period_start, measure, " + ", ".join(STATS) + ", suppressed FROM scores_by_service_fiscal_quarter")
        table = cur.fetch_arrow_table()
    # Types fixed by the table, not by its rows.
    assert table.schema.field("n").type == pa.int64() and table.schema.field("mean").type == pa.float64()
    assert table.schema.field("period_start").type == pa.date32() and table.schema.field("suppressed").type == pa.bool_()
    want = gql_scores(server, "analyst", "service", "fiscal_quarter")
    rows = table.to_pylist()
    assert len(rows) == len(want) > 100
    suppressed = 0
    for r in rows:
        g = want[(r["service_id"], r["period"], r["measure"])]
        assert r["suppressed"] == g["suppressed"]
        suppressed += r["suppressed"]
        for name in STATS:
            assert close(r[name], g[camel(name)]), (r, name, g)
    assert suppressed > 0, "the sample lake has small cells; they are suppressed in SQL as in GraphQL"


def test_polars_read_database_and_bound_parameters(server):
    import polars as pl  # noqa: PLC0415
    with connect(server, "analyst") as conn:
        frame = pl.read_database("SELECT agency, measure, n, mean FROM scores_by_agency ORDER BY agency, measure", connection=conn)
        with conn.cursor() as cur:
            cur.execute("SELECT n FROM scores_by_agency WHERE agency = $1 AND measure = $2", (server["agency"], "trust"))
            (n,) = cur.fetchone()
            cur.execute("SELECT count(*) AS k FROM services WHERE agency = $1", ("x' OR '1'='1",))
            (injected,) = cur.fetchone()
    row = frame.filter((pl.col("agency") == server["agency"]) & (pl.col("measure") == "trust"))
    assert row["n"].to_list() == [n] and n > 0
    assert frame.schema["n"] == pl.Int64 and frame.height > 8
    assert injected == 0, "a bound value is a value, never SQL"


def test_adbc_get_objects_lists_the_catalog_with_column_types(server):
    with connect(server, "analyst") as conn:
        objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
        types = conn.adbc_get_table_types()
    assert [c["catalog_name"] for c in objects] == ["cxlake"]
    schemas = objects[0]["catalog_db_schemas"]
    assert [s["db_schema_name"] for s in schemas] == ["public"]
    tables = {t["table_name"]: t for t in schemas[0]["db_schema_tables"]}
    assert {"scores_overall", "scores_by_service_fiscal_quarter", "services", "offices"} <= set(tables)
    assert "responses" not in tables, "the analyst role may not read raw rows, so it is not listed"
    columns = {c["column_name"]: c for c in tables["scores_by_agency_month"]["table_columns"]}
    assert list(columns)[:2] == ["agency", "period"] and "mean" in columns
    assert types == ["TABLE"]
    with connect(server, "admin") as conn:
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    assert "responses" in {t["table_name"] for t in objects[0]["catalog_db_schemas"][0]["db_schema_tables"]}


def test_raw_rows_by_role_and_refusals(server):
    import adbc_driver_manager  # noqa: PLC0415
    with connect(server, "agency") as conn, conn.cursor() as cur:
        cur.execute("SELECT DISTINCT agency FROM responses")
        assert [a for (a,) in cur.fetchall()] == [server["agency"]]
        cur.execute(f"SELECT count(*) FROM responses WHERE agency <> '{server['agency']}' "
                    f"UNION ALL SELECT count(*) FROM (SELECT * FROM responses) r WHERE r.agency IS NULL")
        assert [k for (k,) in cur.fetchall()] == [0, 0]
    for role, sql, words in (("analyst", "SELECT * FROM responses", "permission denied"),
                             ("admin", "DELETE FROM services", "only queries"),
                             ("admin", "SELECT * FROM read_parquet('data/sample/responses/x.parquet')", "table functions"),
                             ("admin", "SELECT * FROM nowhere", "does not exist")):
        with connect(server, role) as conn, conn.cursor() as cur:
            with pytest.raises(adbc_driver_manager.Error) as e:
                cur.execute(sql)
                cur.fetchall()
            assert words in str(e.value), (sql, e.value)
    assert server["proc"].poll() is None


def test_keys_sign_in_by_password_or_bearer_token(server):
    import adbc_driver_manager  # noqa: PLC0415
    from adbc_driver_flightsql import dbapi  # noqa: PLC0415
    header = {"adbc.flight.sql.authorization_header": f"Bearer {server['keys']['analyst']}"}
    with dbapi.connect(f"grpc://127.0.0.1:{server['flight']}", db_kwargs=header, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM services")
        assert cur.fetchone()[0] > 0
    with pytest.raises(adbc_driver_manager.Error):
        with dbapi.connect(f"grpc://127.0.0.1:{server['flight']}", db_kwargs={"username": "x", "password": "cxk_not_a_key"}, autocommit=True) as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
    bad = {"adbc.flight.sql.authorization_header": "Bearer cxk_nope_nope"}
    with dbapi.connect(f"grpc://127.0.0.1:{server['flight']}", db_kwargs=bad, autocommit=True) as conn, conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as e:
            cur.execute("SELECT count(*) FROM services")
        assert "not valid" in str(e.value)
    with urllib.request.urlopen(f"{server['url']}/metrics", timeout=30) as r:
        text = r.read().decode()
    assert 'cxlake_sql_statements_total{protocol="flight_sql",outcome="ok"}' in text
    assert 'cxlake_sql_statements_total{protocol="flight_sql",outcome="denied"}' in text


def test_tls(server):
    import trustme  # noqa: PLC0415
    from adbc_driver_flightsql import dbapi  # noqa: PLC0415
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    tmp = server["tmp"]
    cert.private_key_pem.write_to_path(str(tmp / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
    proc, _, port = start(server["keys_file"], "--flight-sql-tls-cert", str(tmp / "cert.pem"), "--flight-sql-tls-key", str(tmp / "key.pem"))
    try:
        kwargs = {"username": "analyst", "password": server["keys"]["analyst"],
                  "adbc.flight.sql.client_option.tls_root_certs": ca.cert_pem.bytes().decode()}
        with dbapi.connect(f"grpc+tls://127.0.0.1:{port}", db_kwargs=kwargs, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM services")
            assert cur.fetchone()[0] > 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)

"""Issue 22: SQL over the Postgres wire protocol, with real clients: psql (the simple query
protocol, Debian's postgresql-client) and psycopg 3 (the extended protocol, text and binary
results). The oracle is the GraphQL answer of the same grouping over HTTP with the same key:
the same rows and the same numbers to 1e-12. Access: the password is a cxlake key; raw
`responses` are for the agency (its own rows only) and admin roles; writes, DDL and table
functions are refused with their SQLSTATE, and the server stays up.
"""
import json
import os
import subprocess
import time
import urllib.request

import pytest

from conftest import BIN, ROOT, free_port, run_cxlake, wait_healthy

SAMPLE = ROOT / "data" / "sample"
MEASURES = ["TRUST", "SATISFACTION", "EFFECTIVENESS", "EASE", "EFFICIENCY", "TRANSPARENCY", "HUMANITY", "EMPLOYEE"]
STATS = ["n", "n_likert", "n_thumbs", "mean", "sd", "mean_low", "mean_high", "agree_share", "agree_low", "agree_high"]


def camel(name):
    head, *rest = name.split("_")
    return head + "".join(w.capitalize() for w in rest)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The sample lake served over HTTP and Postgres, with analyst, agency and admin keys."""
    tmp = tmp_path_factory.mktemp("sql_pg")
    keys = tmp / "keys.json"
    agency = json.loads(run_cxlake("query", "--lake", SAMPLE, "-", input="{ services { agency } }").stdout)["data"]["services"][0]["agency"]
    made = {}
    for role, extra in (("analyst", []), ("admin", []), ("agency", ["--agency", agency])):
        made[role] = run_cxlake("keys", "--keys", keys, "add", "--name", role, "--role", role, *extra).stdout.strip()
    http, pg = free_port(), free_port()
    proc = subprocess.Popen([str(BIN), "serve", "--lake", SAMPLE, "--keys", keys, "--rate-limit", "0", "--listen", f"127.0.0.1:{http}",
                             "--pg", f"127.0.0.1:{pg}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{http}"
    wait_healthy(url, proc)
    yield {"url": url, "pg": pg, "keys": made, "agency": agency, "proc": proc}
    proc.terminate()
    proc.wait(timeout=30)


def graphql(server, query, key):
    req = urllib.request.Request(f"{server['url']}/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"content-type": "application/json", "authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=120) as r:
        out = json.loads(r.read())
    assert not out.get("errors"), out
    return out["data"]


def connect(server, role, **kw):
    import psycopg  # noqa: PLC0415
    return psycopg.connect(host="127.0.0.1", port=server["pg"], user=role, password=server["keys"][role], dbname="cxlake",
                           connect_timeout=10, **kw)


def psql(server, role, sql):
    env = dict(os.environ, PGPASSWORD=server["keys"][role], PGCONNECT_TIMEOUT="10")
    return subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(server["pg"]), "-U", role, "-d", "cxlake", "-X", "-A", "-t", "-F", "|",
                           "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True, env=env, timeout=120)


def gql_scores(server, role, group, period):
    fields = " ".join(camel(s) for s in STATS)
    rows = graphql(server, f"{{ scores(groupBy: [{group.upper()}], period: {period.upper()}, measures: [{', '.join(MEASURES)}]) "
                           f"{{ {group} period measure {fields} suppressed }} }}", server["keys"][role])["scores"]
    return {(r[group], r["period"], r["measure"].lower()): r for r in rows}


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) <= 1e-12 * max(1.0, abs(float(b)))


def test_psql_reads_a_score_table_equal_to_graphql(server):
    out = psql(server, "analyst", "SELECT agency, period, measure, " + ", ".join(STATS) + " FROM scores_by_agency_fiscal_year ORDER BY agency, period, measure")
    assert out.returncode == 0, out.stderr
    lines = [ln.split("|") for ln in out.stdout.splitlines() if ln]
    want = gql_scores(server, "analyst", "agency", "fiscal_year")
    assert len(lines) == len(want) > 10
    for cells in lines:
        g = want[(cells[0], cells[1], cells[2])]
        for name, text in zip(STATS, cells[3:]):
            assert close(None if text == "" else text, g[camel(name)]), (cells, name, g)


@pytest.mark.parametrize("binary", [False, True])
def test_psycopg_extended_protocol_equals_graphql(server, binary):
    with connect(server, "analyst") as conn, conn.cursor(binary=binary) as cur:
        cur.execute("SELECT service_id, period, period_start, measure, " + ", ".join(STATS) + ", suppressed FROM public.scores_by_service_fiscal_quarter")
        names = [d.name for d in cur.description]
        rows = cur.fetchall()
    want = gql_scores(server, "analyst", "service", "fiscal_quarter")
    assert len(rows) == len(want) > 100
    suppressed = 0
    for row in rows:
        r = dict(zip(names, row))
        g = want[(r["service_id"], r["period"], r["measure"])]
        assert r["suppressed"] == g["suppressed"]
        suppressed += r["suppressed"]
        for name in STATS:
            assert close(r[name], g[camel(name)]), (r, name, g)
        assert r["period_start"].isoformat()[:4] in r["period"] or r["period"].startswith("FY")
    assert suppressed > 0, "the sample lake has small cells; they are suppressed in SQL as in GraphQL"


def test_filters_joins_and_aggregates_run_on_the_tables(server):
    with connect(server, "analyst") as conn:
        (n,) = conn.execute("SELECT sum(n) FROM scores_by_agency WHERE measure = 'trust'").fetchone()
        (total,) = conn.execute("SELECT n FROM scores_overall WHERE measure = 'trust'").fetchone()
        assert n == total > 0
        rows = conn.execute("SELECT s.service_type, count(*) FROM scores_by_service t JOIN services s ON s.id = t.service_id "
                            "WHERE t.measure = 'trust' GROUP BY s.service_type ORDER BY 1").fetchall()
        assert rows and all(c > 0 for _, c in rows)
        assert conn.execute("SHOW server_version").fetchone()[0].startswith("16")
        conn.execute("SET application_name = 'x'")
        # What clients ask on connect.
        assert conn.execute("SELECT version()").fetchone()[0].startswith("PostgreSQL 16")
        assert conn.execute("SELECT current_database()").fetchone()[0] == "cxlake"
        assert conn.execute("SELECT current_schema()").fetchone()[0] == "public"
    out = psql(server, "analyst", "SELECT current_catalog")
    assert out.returncode == 0 and out.stdout.strip() == "cxlake", out


def test_raw_responses_are_for_the_agency_role_and_only_its_own_rows(server):
    import psycopg  # noqa: PLC0415
    with connect(server, "agency") as conn:
        agencies = [a for (a,) in conn.execute("SELECT DISTINCT agency FROM responses").fetchall()]
        assert agencies == [server["agency"]]
        (others,) = conn.execute(f"SELECT count(*) FROM responses WHERE agency <> '{server['agency']}' OR agency IS NULL").fetchone()
        assert others == 0
    with connect(server, "admin") as conn:
        (everyone,) = conn.execute("SELECT count(DISTINCT agency) FROM responses").fetchone()
        assert everyone > 1
    with connect(server, "analyst") as conn:
        with pytest.raises(psycopg.Error) as e:
            conn.execute("SELECT * FROM responses")
        assert e.value.sqlstate == "42501", e.value


@pytest.mark.parametrize("sql,state", [
    ("INSERT INTO services VALUES ('x')", "42601"),
    ("DROP TABLE services", "42601"),
    ("COPY services FROM '/etc/passwd'", "42601"),
    ("SELECT * FROM read_parquet('data/sample/responses/x.parquet')", "42601"),
    ("SELECT * FROM pg_shadow", "42P01"),
    ("SELECT nope FROM services", "42703"),
    ("SELEKT 1", "42601"),
])
def test_writes_ddl_and_table_functions_are_refused_and_the_server_stays_up(server, sql, state):
    import psycopg  # noqa: PLC0415
    with connect(server, "admin") as conn:
        with pytest.raises(psycopg.Error) as e:
            conn.execute(sql)
        assert e.value.sqlstate == state, (sql, e.value)
    with connect(server, "analyst") as conn:
        assert conn.execute("SELECT count(*) FROM services").fetchone()[0] > 0
    assert server["proc"].poll() is None


def test_a_wrong_key_is_refused(server):
    import psycopg  # noqa: PLC0415
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=server["pg"], user="x", password="not-a-key", dbname="cxlake", connect_timeout=10)
    time.sleep(0.1)
    assert server["proc"].poll() is None


def test_bound_parameters_are_values_never_sql(server):
    """psycopg binds values server-side (the extended protocol): `%s` becomes `$1`."""
    with connect(server, "analyst") as conn:
        (n,) = conn.execute("SELECT n FROM scores_by_agency WHERE agency = %s AND measure = %s", (server["agency"], "trust")).fetchone()
        (want,) = conn.execute(f"SELECT n FROM scores_by_agency WHERE agency = '{server['agency']}' AND measure = 'trust'").fetchone()
        assert n == want > 0
        assert conn.execute("SELECT count(*) FROM scores_by_agency WHERE n > %s AND mean < %s", (10, 4.5)).fetchone()[0] > 0
        # An injection attempt is a string that matches nothing.
        assert conn.execute("SELECT count(*) FROM services WHERE agency = %s", ("x' OR '1'='1",)).fetchone()[0] == 0

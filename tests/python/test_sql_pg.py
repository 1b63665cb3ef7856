r"""Issue 22: SQL over the Postgres wire protocol, with real clients: psql (the simple query
protocol, `\dt` and `\d`, FETCH_COUNT cursors; Debian's postgresql-client), psycopg 3 (the
extended protocol, text and binary results) and SQLAlchemy with pandas.read_sql. The oracle is
the GraphQL answer of the same grouping over HTTP with the same key: the same rows and the
same numbers to 1e-12. Access: the password is a cxlake key; raw `responses` are for the agency
(its own rows only) and admin roles; writes, DDL and table functions are refused with their
SQLSTATE, and the server stays up. Answers past the row cap are cut and say so.
"""
import os
import subprocess
import time
import urllib.request

import pytest

from conftest import BIN, free_port, wait_healthy
from sql_oracle import SAMPLE, STATS, camel, close, gql_scores, role_keys

# The server's --sql-max-rows: above the largest score table of the sample, below its responses.
ROW_CAP = 150_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The sample lake served over HTTP and Postgres, with analyst, agency and admin keys."""
    tmp = tmp_path_factory.mktemp("sql_pg")
    keys = tmp / "keys.json"
    made, agency = role_keys(keys)
    http, pg = free_port(), free_port()
    proc = subprocess.Popen([str(BIN), "serve", "--lake", SAMPLE, "--keys", keys, "--rate-limit", "0", "--listen", f"127.0.0.1:{http}",
                             "--pg", f"127.0.0.1:{pg}", "--sql-max-rows", str(ROW_CAP)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{http}"
    wait_healthy(url, proc)
    yield {"url": url, "pg": pg, "keys": made, "agency": agency, "proc": proc}
    proc.terminate()
    proc.wait(timeout=30)


def connect(server, role, **kw):
    import psycopg  # noqa: PLC0415
    return psycopg.connect(host="127.0.0.1", port=server["pg"], user=role, password=server["keys"][role], dbname="cxlake",
                           connect_timeout=10, **kw)


def psql(server, role, sql, *options):
    env = dict(os.environ, PGPASSWORD=server["keys"][role], PGCONNECT_TIMEOUT="10")
    return subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(server["pg"]), "-U", role, "-d", "cxlake", "-X", "-A", "-t", "-F", "|",
                           "-v", "ON_ERROR_STOP=1", *options, "-c", sql], capture_output=True, text=True, env=env, timeout=120)


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


def test_psql_lists_the_tables_a_role_may_read_and_describes_one(server):
    out = psql(server, "analyst", "\\dt")
    assert out.returncode == 0, out.stderr
    tables = {cells[1]: cells for cells in (ln.split("|") for ln in out.stdout.splitlines() if ln)}
    for name in ("scores_overall", "scores_by_service_fiscal_quarter", "scores_by_office_month", "services", "offices"):
        assert tables[name][0] == "public" and tables[name][2] == "table", (name, tables.get(name))
    assert "responses" not in tables, "the analyst role may not read raw rows, so it is not listed"
    out = psql(server, "admin", "\\dt")
    assert out.returncode == 0 and "|responses|" in out.stdout, out
    # \d: the columns with their Postgres types, as the score tables are built.
    out = psql(server, "analyst", "\\d scores_by_agency_month")
    assert out.returncode == 0, out.stderr
    columns = dict(ln.split("|")[:2] for ln in out.stdout.splitlines() if ln.count("|") >= 2)
    assert columns["agency"] == "text" and columns["n"] == "bigint" and columns["mean"] == "double precision", columns
    assert columns["period_start"] == "date" and columns["suppressed"] == "boolean", columns
    # The same through information_schema, as BI tools ask.
    with connect(server, "analyst") as conn:
        rows = conn.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' "
                            "AND table_name = %s ORDER BY ordinal_position", ("scores_by_agency_month",)).fetchall()
        assert dict(rows) == columns
        listed = {t for (t,) in conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").fetchall()}
        assert listed == set(tables)


def test_psql_fetch_count_pages_through_a_cursor(server):
    """psql with FETCH_COUNT reads through DECLARE … CURSOR / FETCH FORWARD n / CLOSE, as Tableau does."""
    sql = "SELECT service_id, period, measure, n, mean FROM scores_by_service_month ORDER BY service_id, period, measure"
    whole = psql(server, "analyst", sql)
    paged = psql(server, "analyst", sql, "-v", "FETCH_COUNT=97")
    assert whole.returncode == 0 and paged.returncode == 0, (whole.stderr, paged.stderr)
    assert paged.stdout == whole.stdout and whole.stdout.count("\n") > 97 * 3


def test_declared_cursors_over_the_extended_protocol(server):
    import psycopg  # noqa: PLC0415
    with connect(server, "analyst") as conn:
        want = conn.execute("SELECT agency, measure, n FROM scores_by_agency ORDER BY agency, measure").fetchall()
        conn.execute("DECLARE c NO SCROLL CURSOR WITH HOLD FOR SELECT agency, measure, n FROM scores_by_agency WHERE n > %s ORDER BY agency, measure", (-1,))
        got = []
        while rows := conn.execute("FETCH 7 IN c").fetchall():
            got.extend(rows)
        assert got == want
        conn.execute("CLOSE c")
        with pytest.raises(psycopg.Error) as e:
            conn.execute("FETCH 1 FROM c")
        assert e.value.sqlstate == "34000"


def test_sqlalchemy_and_pandas_read_sql(server):
    import pandas as pd  # noqa: PLC0415
    import sqlalchemy  # noqa: PLC0415
    engine = sqlalchemy.create_engine(f"postgresql+psycopg://analyst:{server['keys']['analyst']}@127.0.0.1:{server['pg']}/cxlake")
    try:
        frame = pd.read_sql("SELECT agency, measure, n, mean, agree_share, suppressed FROM scores_by_agency", engine)
        with engine.connect() as conn:
            one = pd.read_sql(sqlalchemy.text("SELECT n FROM scores_by_agency WHERE agency = :a AND measure = 'trust'"), conn, params={"a": server["agency"]})
    finally:
        engine.dispose()
    want = gql_scores(server, "analyst", "agency", None)
    assert len(frame) == len(want) > 0
    for r in frame.itertuples():
        g = want[(r.agency, None, r.measure)]
        assert r.n == g["n"] and close(None if pd.isna(r.mean) else r.mean, g["mean"]), (r, g)
        assert bool(r.suppressed) == g["suppressed"]
    assert one["n"].tolist() == [want[(server["agency"], None, "trust")]["n"]]


def test_an_answer_past_the_row_cap_is_cut_and_says_so(server):
    notices = []
    with connect(server, "admin") as conn:
        conn.add_notice_handler(lambda d: notices.append((d.sqlstate, d.message_primary)))
        (total,) = conn.execute("SELECT count(*) FROM responses").fetchone()
        assert total > ROW_CAP, "the sample lake holds more responses than the cap"
        rows = conn.execute("SELECT response_id FROM responses").fetchall()
    assert len(rows) == ROW_CAP
    assert any(state == "01000" and f"cut at {ROW_CAP} rows" in msg for state, msg in notices), notices


def test_metrics_count_statements_per_protocol(server):
    import psycopg  # noqa: PLC0415
    with connect(server, "analyst") as conn:
        conn.execute("SELECT count(*) FROM services").fetchone()
        with pytest.raises(psycopg.Error):
            conn.execute("SELECT * FROM responses")
    with urllib.request.urlopen(f"{server['url']}/metrics", timeout=30) as r:
        text = r.read().decode()
    counts = {}
    for line in text.splitlines():
        if line.startswith("cxlake_sql_statements_total{"):
            labels, value = line.rsplit(" ", 1)
            counts[labels] = float(value)
    assert counts.get('cxlake_sql_statements_total{protocol="postgres",outcome="ok"}', 0) >= 1, counts
    assert counts.get('cxlake_sql_statements_total{protocol="postgres",outcome="denied"}', 0) >= 1, counts
    assert 'cxlake_sql_connections_total{protocol="postgres"}' in text

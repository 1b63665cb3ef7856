"""What the SQL protocol tests share (test_sql_pg.py, test_sql_flight.py): keys of the three
roles on the sample lake, and the oracle, the GraphQL `scores` answer over HTTP with a role's key,
compared to SQL answers to 1e-12."""
import contextlib
import json
import subprocess
import urllib.request

from conftest import BIN, ROOT, free_port, run_cxlake, wait_healthy

SAMPLE = ROOT / "data" / "sample"
MEASURES = ["TRUST", "SATISFACTION", "EFFECTIVENESS", "EASE", "EFFICIENCY", "TRANSPARENCY", "HUMANITY", "EMPLOYEE"]
STATS = ["n", "n_likert", "n_thumbs", "mean", "sd", "mean_low", "mean_high", "agree_share", "agree_low", "agree_high"]


def camel(name):
    head, *rest = name.split("_")
    return head + "".join(w.capitalize() for w in rest)


def role_keys(keys):
    """Adds analyst, admin and agency keys (the agency of the sample's first service) to the
    keys file `keys`; returns ({role: key}, agency)."""
    agency = json.loads(run_cxlake("query", "--lake", SAMPLE, "-", input="{ services { agency } }").stdout)["data"]["services"][0]["agency"]
    made = {}
    for role, extra in (("analyst", []), ("admin", []), ("agency", ["--agency", agency])):
        made[role] = run_cxlake("keys", "--keys", keys, "add", "--name", role, "--role", role, *extra).stdout.strip()
    return made, agency


def graphql(server, query, key):
    req = urllib.request.Request(f"{server['url']}/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"content-type": "application/json", "authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=120) as r:
        out = json.loads(r.read())
    assert not out.get("errors"), out
    return out["data"]


def gql_scores(server, role, group, period=None):
    """GraphQL scores of every measure by `group` (and `period`), keyed (group value, period, measure)."""
    fields = " ".join(camel(s) for s in STATS)
    per = f"period: {period.upper()}, " if period else ""
    rows = graphql(server, f"{{ scores(groupBy: [{group.upper()}], {per}measures: [{', '.join(MEASURES)}]) "
                           f"{{ {group} period measure {fields} suppressed }} }}", server["keys"][role])["scores"]
    return {(r[group], r["period"], r["measure"].lower()): r for r in rows}


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) <= 1e-12 * max(1.0, abs(float(b)))


@contextlib.contextmanager
def sql_server(tmp, env=None):
    """The sample lake served over HTTP, Postgres and Flight SQL (environment `env`), with
    analyst, admin, agency and public keys: yields its ports, keys and process."""
    keys = tmp / "keys.json"
    made, agency = role_keys(keys)
    made["public"] = run_cxlake("keys", "--keys", keys, "add", "--name", "public", "--role", "public").stdout.strip()
    http, pg, flight = free_port(), free_port(), free_port()
    proc = subprocess.Popen([str(BIN), "serve", "--lake", SAMPLE, "--keys", keys, "--rate-limit", "0", "--listen", f"127.0.0.1:{http}",
                             "--pg", f"127.0.0.1:{pg}", "--flight-sql", f"127.0.0.1:{flight}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    url = f"http://127.0.0.1:{http}"
    try:
        wait_healthy(url, proc)
        yield {"url": url, "pg": pg, "flight": flight, "keys": made, "agency": agency, "proc": proc}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def sql_connect(server, protocol, role, **kw):
    """A connection of `role` (autocommit): psycopg over Postgres ("pg"), or ADBC over Flight SQL."""
    if protocol == "pg":
        import psycopg  # noqa: PLC0415
        return psycopg.connect(host="127.0.0.1", port=server["pg"], user=role, password=server["keys"][role], dbname="cxlake",
                               connect_timeout=10, autocommit=True, **kw)
    from adbc_driver_flightsql import dbapi  # noqa: PLC0415
    return dbapi.connect(f"grpc://127.0.0.1:{server['flight']}", db_kwargs={"username": role, "password": server["keys"][role]}, autocommit=True, **kw)

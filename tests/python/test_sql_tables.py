"""Issue 22: SQL's result tables (benchmarks, trends, alerts, driver importance Likert and tapped,
telemetry, service levels, the HISP report) equal the GraphQL answer of the same query, over
both protocols (psycopg on the Postgres wire, ADBC on Flight SQL), for exact and public roles.

The oracle is GraphQL over HTTP with the same key, flattened here as the README documents the
tables: fields in snake case, nested objects as `parent_child` columns, the one unnested list
one row per item with its prefix dropped, lists of scalars joined with "; ", enum values in
lower case (as the scores tables write measures). Same rows, same
numbers to 1e-12, same suppression; the public role's perturbed numbers are the public's
GraphQL numbers, and what GraphQL refuses it (tapped importance) SQL refuses and does not list.
"""
import re

import pytest

from sql_oracle import close, graphql, sql_connect, sql_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The sample lake over HTTP, Postgres and Flight SQL, with analyst, admin, agency and public keys."""
    with sql_server(tmp_path_factory.mktemp("sql_tables")) as s:
        yield s


def sql_rows(server, protocol, role, sql):
    """The rows of `sql` as dicts, over `protocol` (pg: psycopg, binary results; flight: ADBC)."""
    if protocol == "pg":
        from psycopg.rows import dict_row  # noqa: PLC0415
        with sql_connect(server, "pg", role, row_factory=dict_row) as c:
            return [dict(r) for r in c.execute(sql, binary=True).fetchall()]
    with sql_connect(server, "flight", role) as c, c.cursor() as cur:
        cur.execute(sql)
        return cur.fetch_arrow_table().to_pylist()


def snake(name):
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


# The object-valued fields the cases select (null when absent, as `previous` in a first period).
NESTED = {"previous", "yearAgo", "change", "score"}
# The enum-valued fields the cases select.
ENUMS = {"measure", "outcome", "driver", "quadrant", "level", "comparison", "topic", "model"}


def flatten(obj, unnest=None, prefix=""):
    """A GraphQL object as table rows, as the README documents: snake case, nested objects as
    parent_child columns, the list `unnest` one row per item (its prefix dropped)."""
    base, rows_of_list = {}, None
    for k, v in obj.items():
        name = prefix + snake(k)
        if isinstance(v, dict):
            for sub in flatten(v, None, name + "_"):
                base.update(sub)
        elif v is None and k in NESTED:
            pass  # a null object: its columns are null (same_rows expects None where a row lacks one)
        elif isinstance(v, list) and k == unnest:
            rows_of_list = [r for item in v for r in flatten(item)]
        elif isinstance(v, list):
            base[name] = "; ".join(str(x) for x in v) if v else None
        else:
            base[name] = v.lower() if k in ENUMS and isinstance(v, str) else v
    if rows_of_list is None:
        return [base]
    return [{**base, **r} for r in rows_of_list] or [base]


def same_rows(got, want, key):
    """Both row lists hold the same rows (matched on `key`), every field of `want` equal."""
    index = lambda rows: {tuple(str(r.get(k)) for k in key): r for r in rows}  # noqa: E731
    g, w = index(got), index(want)
    assert len(g) == len(got) and len(w) == len(want), "key does not identify rows"
    assert set(g) == set(w), (sorted(set(g) ^ set(w))[:5], len(g), len(w))
    fields = {f for r in want for f in r}
    for k, want_row in w.items():
        for field in fields:
            value, have = want_row.get(field), g[k][field]
            if isinstance(value, float) or isinstance(have, float):
                assert close(have, value), (k, field, have, value)
            elif hasattr(have, "isoformat"):
                assert have.isoformat() == value, (k, field, have, value)
            else:
                assert have == value, (k, field, have, value)


# (table, SQL condition, GraphQL query, list to unnest, key columns, constants of the part)
CASES = {
    "benchmark": ("benchmark_by_agency_fiscal_year", "peers = 'same_channel' AND measure = 'ease'",
                  "{ benchmark(level: AGENCY, peers: SAME_CHANNEL, measure: EASE, period: FISCAL_YEAR) { agency: entity peerKey period periodStart n "
                  "nLikert mean sd agreeShare agreeLow agreeHigh suppressed suppressedReason perturbed peerEntities peerN peerMean peerAgreeShare "
                  "meanDifference meanDifferenceLow meanDifferenceP agreeDifference agreeDifferenceHigh agreeDifferenceP rank percentile "
                  "entitiesRanked peerSuppressedReason } }", None, ["agency", "peer_key", "period"]),
    "trends": ("trends_by_service_type_fiscal_quarter", "measure = 'satisfaction'",
               "{ trends(measure: SATISFACTION, groupBy: [SERVICE_TYPE], period: FISCAL_QUARTER) { serviceType period periodEnd measure n mean "
               "agreeShare suppressed previous { period n meanChange meanChangeLow agreeChange agreeChangeP suppressed } "
               "yearAgo { period agreeChange agreeChangeLow } } }", None, ["service_type", "period"]),
    "alerts": ("alerts_by_fiscal_quarter", "TRUE",
               "{ alerts(period: FISCAL_QUARTER, measures: [TRUST, SATISFACTION, EFFECTIVENESS, EASE, EFFICIENCY, TRANSPARENCY, HUMANITY, EMPLOYEE]) "
               "{ level entity measure period comparison n agreeShare pValue qValue effectSize change { period agreeChange agreeChangeLow } } }",
               None, ["level", "entity", "measure", "comparison"]),
    "drivers": ("driver_importance_by_channel", "outcome = 'satisfaction'",
                "{ driverImportance(outcome: SATISFACTION, groupBy: [CHANNEL]) { channel outcome n nEffective r2 adjR2 error warnings suppressed "
                "drivers { driver r beta first last pratt johnson johnsonShare shapley shapleyShare rank vif performance quadrant } } }",
                "drivers", ["channel", "driver"]),
    "tapped": ("tapped_driver_importance_by_service_type", "outcome = 'trust'",
               "{ tappedDriverImportance(outcome: TRUST, groupBy: [SERVICE_TYPE]) { serviceType outcome model n nDropped nNotShown events "
               "mcfadden nagelkerke intercept error suppressed drivers { topic importance share rank johnson johnsonShare } } }",
               "drivers", ["service_type", "topic"]),
    "telemetry": ("telemetry_by_channel_month", "TRUE",
                  "{ telemetry(groupBy: [CHANNEL], period: MONTH) { channel period periodStart metric count sum mean median min max } }",
                  None, ["channel", "period", "metric"]),
    "service_levels": ("service_level_scores_fiscal_quarter", "TRUE",
                       "{ serviceLevels(period: FISCAL_QUARTER) { rows { service_id: service period scores { measure score { n mean agreeShare suppressed } } } } }",
                       "scores", ["service_id", "period", "measure"]),
}


def graphql_rows(server, role, query, unnest, page=None):
    data = graphql(server, query, server["keys"][role])
    (value,) = data.values()
    items = value[page] if page else value
    rows = [r for item in items for r in flatten(item, unnest)]
    # The service-level scores' nested score: its fields without the prefix.
    return [{k.removeprefix("score_"): v for k, v in r.items()} for r in rows]


@pytest.mark.parametrize("protocol", ["pg", "flight"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_result_table_equals_graphql(server, protocol, case):
    table, where, query, unnest, key = CASES[case]
    role = "analyst"
    want = graphql_rows(server, role, query, unnest, page="rows" if case == "service_levels" else None)
    columns = sorted({c for r in want for c in r})
    got = sql_rows(server, protocol, role, f"SELECT {', '.join(columns)} FROM {table} WHERE {where}")
    assert len(got) == len(want), (len(got), len(want))
    assert want or case in ("alerts",), f"{case}: GraphQL gives no rows on the sample, the comparison is empty"
    same_rows(got, want, key)


@pytest.mark.parametrize("protocol", ["pg", "flight"])
def test_public_role_gets_the_publics_numbers_and_no_tapped_tables(server, protocol):
    query = ("{ benchmark(level: SERVICE, peers: SAME_SERVICE_TYPE, measure: TRUST, period: FISCAL_YEAR) { service_id: entity peerKey period n mean "
             "agreeShare suppressed suppressedReason perturbed peerN peerAgreeShare agreeDifference agreeDifferenceLow rank } }")
    want = graphql_rows(server, "public", query, None)
    columns = sorted({c for r in want for c in r})
    got = sql_rows(server, protocol, "public", f"SELECT {', '.join(columns)} FROM benchmark_by_service_fiscal_year "
                                               "WHERE peers = 'same_service_type' AND measure = 'trust'")
    same_rows(got, want, ["service_id", "peer_key", "period"])
    assert all(r["perturbed"] for r in got) and any(r["suppressed"] for r in got), "the public's benchmark is perturbed and suppresses small cells"
    exact = {(r["service_id"], r["period"]): r["n"] for r in sql_rows(server, protocol, "analyst", "SELECT service_id, period, n FROM "
             "benchmark_by_service_fiscal_year WHERE peers = 'same_service_type' AND measure = 'trust'")}
    assert sum(exact[(r["service_id"], r["period"])] != r["n"] for r in got) > len(got) // 4, "public counts differ from exact ones"
    # Tapped importance: refused to the public by GraphQL, so not listed and refused by SQL.
    listed = {r["table_name"] for r in sql_rows(server, "pg", "public", "SELECT table_name FROM information_schema.tables")}
    assert "benchmark_by_service_fiscal_year" in listed and not any(t.startswith("tapped_") for t in listed)
    with pytest.raises(Exception, match="(?i)permission denied|not offered"):
        sql_rows(server, protocol, "public", "SELECT * FROM tapped_driver_importance")


def test_hisp_report_table_holds_every_quarter_as_graphql(server):
    quarters = sql_rows(server, "pg", "admin", "SELECT DISTINCT fiscal_year, fiscal_quarter FROM hisp_report ORDER BY 1, 2")
    assert len(quarters) >= 4, quarters
    for q in (quarters[0], quarters[-1]):
        fy, fq = q["fiscal_year"], q["fiscal_quarter"]
        query = (f"{{ hispReport(fiscalYear: {fy}, quarter: {fq}) {{ rows {{ serviceId channel pointScale volumeOfRespondents "
                 f"questions {{ question: number question_text: text counts n suppressed }} }} }} }}")
        want = graphql_rows(server, "admin", query, "questions", page="rows")
        columns = sorted({c for r in want for c in r})
        got = sql_rows(server, "flight", "admin", f"SELECT {', '.join(columns)} FROM hisp_report WHERE fiscal_year = {fy} AND fiscal_quarter = {fq}")
        assert want
        same_rows(got, want, ["service_id", "channel", "question"])


def test_result_tables_are_listed_with_fixed_types(server):
    from psycopg import connect  # noqa: PLC0415
    with connect(host="127.0.0.1", port=server["pg"], user="analyst", password=server["keys"]["analyst"], dbname="cxlake") as c:
        types = dict(c.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'trends_by_agency_month'").fetchall())
        tables = [r[0] for r in c.execute("SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'driver_importance%'").fetchall()]
        # The types a client sees before any row: dates as dates, counts as bigint.
        assert types["period_start"] == "date" and types["n"] == "bigint" and types["previous_agree_change"] == "double precision", types
        assert len(tables) == 36, tables
        # A join of two result tables: each service's benchmark rank beside its trust trend.
        joined = c.execute("SELECT b.service_id, b.rank, t.previous_agree_change FROM benchmark_by_service_fiscal_year b "
                           "JOIN trends_by_service_fiscal_year t ON b.service_id = t.service_id AND b.period = t.period AND t.measure = 'trust' "
                           "WHERE b.peers = 'government_wide' AND b.measure = 'trust' AND b.rank IS NOT NULL").fetchall()
        assert joined, "services ranked with a trend"

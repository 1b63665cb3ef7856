"""Scores against an independent oracle: for random filters, groupings and periods on a
generated lake (fixed seed), every n, mean, sd and agree share equals what DuckDB computes from
the same Parquet files with plain SQL, to 1e-9; intervals equal Wilson and Student-t computed
here with scipy."""
import math
import random

import duckdb
import pytest
from scipy import stats

from conftest import graphql, scan

DIMS = {  # GraphQL enum -> (lake column, output field)
    "AGENCY": ("agency", "agency"),
    "BUREAU": ("bureau", "bureau"),
    "SERVICE": ("service_id", "service"),
    "SERVICE_TYPE": ("service_type", "serviceType"),
    "CHANNEL": ("channel", "channel"),
    "OFFICE": ("office_id", "office"),
    "REGION": ("region", "region"),
    "STAGE": ("stage", "stage"),
}
MEASURES = ["TRUST", "SATISFACTION", "EFFECTIVENESS", "EASE", "EFFICIENCY", "TRANSPARENCY", "HUMANITY", "EMPLOYEE"]
# Period labels computed independently from the timestamp (not from the partition columns).
PERIODS = {
    "DAY": "strftime(ts::DATE, '%Y-%m-%d')",
    "WEEK": "strftime(ts::DATE, '%G-W%V')",
    "MONTH": "strftime(ts::DATE, '%Y-%m')",
    "QUARTER": "year(ts)::VARCHAR || 'Q' || quarter(ts)::VARCHAR",
    "YEAR": "year(ts)::VARCHAR",
    "FISCAL_QUARTER": "'FY' || year(ts + INTERVAL 3 MONTH)::VARCHAR || 'Q' || quarter(ts + INTERVAL 3 MONTH)::VARCHAR",
    "FISCAL_YEAR": "'FY' || year(ts + INTERVAL 3 MONTH)::VARCHAR",
}
QUERY = """query($f: ResponseFilter, $g: [GroupDimension!], $p: PeriodUnit, $m: [MeasureName!], $w: Boolean) {
  scores(filter: $f, groupBy: $g, period: $p, measures: $m, weighted: $w) {
    agency bureau service serviceType channel office region stage period measure
    n nLikert nThumbs mean sd meanLow meanHigh nEffectiveLikert agreeShare agreeLow agreeHigh nEffective
    distribution { scale value count weightedCount }
  }
}"""


@pytest.fixture(scope="module")
def con(oracle_lake):
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    c.execute(
        f"""CREATE VIEW r AS SELECT *, submitted_at AS ts
            FROM {scan(oracle_lake)}"""
    )
    return c


def values_of(con, column):
    return [r[0] for r in con.execute(f"SELECT DISTINCT {column} FROM r WHERE {column} IS NOT NULL ORDER BY 1").fetchall()]


def random_case(rng, con):
    group = rng.sample(sorted(DIMS), rng.choice([0, 1, 1, 2, 2, 3]))
    period = rng.choice([None, None] + sorted(PERIODS))
    measures = rng.sample(MEASURES, rng.randint(1, 3))
    weighted = rng.random() < 0.4
    f, where = {}, []
    if rng.random() < 0.5:
        agencies = rng.sample(values_of(con, "agency"), rng.randint(1, 4))
        f["agency"] = agencies
        where.append("agency IN (" + ",".join(f"'{a}'" for a in agencies) + ")")
    if rng.random() < 0.3:
        channels = rng.sample(["digital", "phone", "in_person", "email", "mail", "kiosk", "chat"], 2)
        f["channel"] = [c.upper() for c in channels]
        where.append("channel IN (" + ",".join(f"'{c}'" for c in channels) + ")")
    if rng.random() < 0.4:
        # Any other coding dimension (a rollup covers some, not others).
        dim = rng.choice(["BUREAU", "SERVICE", "SERVICE_TYPE", "OFFICE", "REGION", "STAGE"])
        column, field = DIMS[dim]
        chosen = rng.sample(values_of(con, column), rng.randint(1, 2))
        f[field] = [c.upper() if dim in ("SERVICE_TYPE", "STAGE") else c for c in chosen]
        where.append(f"{column} IN (" + ",".join(f"'{c}'" for c in chosen) + ")")
    if rng.random() < 0.2:
        scale = rng.choice(["likert5", "thumbs"])
        f["scale"] = [{"likert5": "LIKERT_5", "thumbs": "THUMBS"}[scale]]
        where.append(f"scale = '{scale}'")
    if rng.random() < 0.4:
        start = rng.randint(0, 900)
        end = start + rng.randint(0, 300)
        lo = con.execute(f"SELECT (DATE '2022-10-01' + {start})::VARCHAR").fetchone()[0]
        hi = con.execute(f"SELECT (DATE '2022-10-01' + {end})::VARCHAR").fetchone()[0]
        f["from"], f["to"] = lo, hi
        where.append(f"ts >= TIMESTAMPTZ '{lo} 00:00:00+00' AND ts < TIMESTAMPTZ '{hi} 00:00:00+00' + INTERVAL 1 DAY")
    return group, period, measures, weighted, f, where


def oracle(con, group, period, measure, weighted, where):
    """Plain SQL statistics of one measure per group (weighted variance in two passes)."""
    m = measure.lower()
    # A row's scale is that of trust and satisfaction; driver items are 1-5 on every row.
    scale = "scale" if m in ("trust", "satisfaction") else "'likert5' AS scale"
    keys = [DIMS[g][0] for g in group] + ([f"{PERIODS[period]}"] if period else [])
    ks = [f"k{i}" for i in range(len(keys))]
    key_sel = "".join(f"{k} AS k{i}, " for i, k in enumerate(keys))
    w = "weight" if weighted else "1.0::DOUBLE"
    lik = "scale = 'likert5' AND x IS NOT NULL"
    agree = "CASE WHEN (scale = 'likert5' AND x >= 4) OR (scale = 'thumbs' AND x = 1) THEN 1.0 ELSE 0.0 END"
    group_by = f"GROUP BY {', '.join(ks)}" if keys else ""
    join = " AND ".join(f"b.{k} IS NOT DISTINCT FROM g.{k}" for k in ks) or "TRUE"
    sql = f"""
      WITH b AS (
        SELECT {key_sel} {m} AS x, {scale}, {w} AS w FROM r {'WHERE ' + ' AND '.join(where) if where else ''}
      ), g AS (
        SELECT {''.join(k + ', ' for k in ks)} sum(w * x) / sum(w) AS wmean FROM b WHERE {lik} {group_by}
      )
      SELECT {''.join('b.' + k + ' AS ' + k + ', ' for k in ks)}
        count(x) AS n,
        count(x) FILTER (WHERE scale = 'likert5') AS n_likert,
        count(x) FILTER (WHERE scale = 'thumbs') AS n_thumbs,
        sum(w) FILTER (WHERE {lik}) AS sw,
        sum(w * w) FILTER (WHERE {lik}) AS sw2,
        sum(w * x) FILTER (WHERE {lik}) AS swx,
        sum(w * (x - wmean) * (x - wmean)) FILTER (WHERE {lik}) AS ss,
        avg(x) FILTER (WHERE scale = 'likert5') AS mean_plain,
        stddev_samp(x) FILTER (WHERE scale = 'likert5') AS sd_plain,
        sum(w * {agree}) FILTER (WHERE x IS NOT NULL) AS sw_agree,
        sum(w) FILTER (WHERE x IS NOT NULL) AS sw_all,
        sum(w * w) FILTER (WHERE x IS NOT NULL) AS sw2_all
      FROM b LEFT JOIN g ON {join}
      {'GROUP BY ' + ', '.join('b.' + k for k in ks) if keys else ''}"""
    cur = con.execute(sql)
    cols = [d[0] for d in cur.description]
    out = {}
    for row in cur.fetchall():
        rec = dict(zip(cols, row))
        out[tuple(rec.get(k) for k in ks)] = rec
    return out


def close(a, b, tol=1e-9):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol * max(1.0, abs(b))


def expected_stats(rec, weighted):
    sw, sw2, swx, ss = (rec[k] or 0.0 for k in ("sw", "sw2", "swx", "ss"))
    mean = swx / sw if sw > 0 else None
    if weighted:
        neff = sw * sw / sw2 if sw2 > 0 else 0.0
        sd = math.sqrt(ss / sw * neff / (neff - 1)) if neff > 1 else None
    else:
        neff, sd = sw, rec["sd_plain"]
        assert close(mean, rec["mean_plain"]), (mean, rec["mean_plain"])
    agree = rec["sw_agree"] / rec["sw_all"] if rec["sw_all"] else None
    neff_all = rec["sw_all"] ** 2 / rec["sw2_all"] if rec["sw2_all"] else 0.0
    return mean, sd, neff, agree, neff_all


def wilson(p, n, conf=0.95):
    z = stats.norm.ppf(0.5 + conf / 2)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@pytest.mark.parametrize("case_seed", range(32))
def test_scores_equal_duckdb(con, lake_url, case_seed):
    rng = random.Random(1000 + case_seed)
    group, period, measures, weighted, f, where = random_case(rng, con)
    resp = graphql(lake_url, QUERY, {"f": f, "g": group, "p": period, "m": measures, "w": weighted})
    assert "errors" not in resp, resp
    rows = resp["data"]["scores"]
    fields = [DIMS[g][1] for g in group] + (["period"] if period else [])
    for measure in measures:
        expected = oracle(con, group, period, measure, weighted, where)
        got = {tuple(r[k] for k in fields): r for r in rows if r["measure"] == measure}
        assert set(got) == set(expected), f"groups differ for {measure}: {set(got) ^ set(expected)}"
        for key, rec in expected.items():
            r = got[key]
            ctx = f"{measure} {dict(zip(fields, key))} weighted={weighted}"
            assert (r["n"], r["nLikert"], r["nThumbs"]) == (rec["n"], rec["n_likert"], rec["n_thumbs"]), ctx
            mean, sd, neff, agree, neff_all = expected_stats(rec, weighted)
            assert close(r["mean"], mean), (ctx, r["mean"], mean)
            assert close(r["sd"], sd), (ctx, r["sd"], sd)
            assert close(r["agreeShare"], agree), (ctx, r["agreeShare"], agree)
            assert close(r["nEffective"], neff_all), ctx
            assert sum(d["count"] for d in r["distribution"]) == rec["n"], ctx
            if agree is not None:
                lo, hi = wilson(agree, neff_all)
                assert close(r["agreeLow"], lo) and close(r["agreeHigh"], hi), (ctx, r["agreeLow"], lo)
                assert r["agreeLow"] <= r["agreeShare"] <= r["agreeHigh"], ctx
            if sd is not None and neff >= 2:
                half = stats.t.ppf(0.975, neff - 1) * sd / math.sqrt(neff)
                assert close(r["meanLow"], mean - half, 1e-8) and close(r["meanHigh"], mean + half, 1e-8), ctx
                # The half-width itself, relative: catches a t quantile that drifts at large n
                # (statrs' inverse was 3e-7 off at 29,061 df, well inside 1e-8 of the bounds).
                got_half = (r["meanHigh"] - r["meanLow"]) / 2
                assert abs(got_half - half) <= 1e-10 * half + 1e-13, (ctx, neff, got_half, half)


def test_oracle_cases_cover_every_period_and_weighting(con):
    """The random cases above exercise every period unit, both weightings and grouped nulls."""
    cases = [random_case(random.Random(1000 + s), con) for s in range(32)]
    assert {c[1] for c in cases} >= set(PERIODS), "a period unit is never tested"
    assert {c[3] for c in cases} == {True, False}
    assert any("OFFICE" in c[0] for c in cases)
    filtered = {k for c in cases for k in c[4]}
    assert filtered >= {"agency", "channel", "from", "scale"}, filtered
    assert len(filtered & {"bureau", "service", "serviceType", "office", "region", "stage"}) >= 4, filtered

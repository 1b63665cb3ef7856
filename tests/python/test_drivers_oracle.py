"""Driver importance against independent oracles: weighted least squares in numpy on the rows
DuckDB selects from the same Parquet files (r, beta, R² to 1e-9), brute-force Shapley over all
subsets and Johnson's weights from numpy's eigendecomposition; the bootstrap against a per-row
Poisson bootstrap in numpy; recovery of the planted driver order; and `cxlake kda`."""
import itertools
import json
import math
import random
from pathlib import Path

import duckdb
import numpy as np
import pytest

from conftest import ROOT, graphql, run_cxlake, scan

DRIVERS = ["effectiveness", "ease", "efficiency", "transparency", "humanity", "employee"]
DIMS = {"AGENCY": ("agency", "agency"), "SERVICE_TYPE": ("service_type", "serviceType"),
        "CHANNEL": ("channel", "channel"), "OFFICE": ("office_id", "office"), "STAGE": ("stage", "stage")}
QUERY = """query($o: OutcomeName, $d: [DriverName!], $f: ResponseFilter, $g: [GroupDimension!], $p: PeriodUnit,
  $w: Boolean, $m: MissingPolicy, $b: Int, $s: Int) {
  driverImportance(outcome: $o, drivers: $d, filter: $f, groupBy: $g, period: $p, weighted: $w, missing: $m,
                   bootstrap: $b, seed: $s) {
    agency serviceType channel office stage period n nDropped nEffective r2 adjR2 error warnings bootstrapReplicates
    drivers { driver r beta first last pratt johnson johnsonShare shapley shapleyShare rank vif performance
              shapleyShareLow shapleyShareHigh johnsonLow johnsonHigh shapleyLow shapleyHigh }
  }
}"""


@pytest.fixture(scope="module")
def con(oracle_lake):
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    c.execute(f"CREATE VIEW r AS SELECT * FROM {scan(oracle_lake)}")
    return c


def wls(y, X, w):
    """Weighted least squares with intercept: standardized betas, R², weighted correlations."""
    w = w / w.sum()
    def wmean(v): return (w * v).sum()
    def wcov(a, b): return (w * (a - wmean(a)) * (b - wmean(b))).sum()
    A = np.column_stack([np.ones(len(y)), X])
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(A * sw[:, None], y * sw, rcond=None)
    resid = y - A @ coef
    r2 = 1 - (w * resid ** 2).sum() / wcov(y, y)
    sd = np.sqrt([wcov(X[:, j], X[:, j]) for j in range(X.shape[1])])
    beta = coef[1:] * sd / math.sqrt(wcov(y, y))
    r = np.array([wcov(X[:, j], y) / (sd[j] * math.sqrt(wcov(y, y))) for j in range(X.shape[1])])
    return beta, r2, r


def r2_of(y, X, w, cols):
    return wls(y, X[:, list(cols)], w)[1] if cols else 0.0


def shapley_brute(y, X, w):
    k = X.shape[1]
    cache = {S: r2_of(y, X, w, S) for size in range(k + 1) for S in itertools.combinations(range(k), size)}
    phi = []
    for j in range(k):
        total = 0.0
        for size in range(k):
            for S in itertools.combinations([i for i in range(k) if i != j], size):
                with_j = tuple(sorted(S + (j,)))
                total += math.factorial(size) * math.factorial(k - size - 1) / math.factorial(k) * (cache[with_j] - cache[S])
        phi.append(total)
    return np.array(phi)


def johnson_numpy(y, X, w):
    w = w / w.sum()
    Z = np.column_stack([y, X])
    mu = (w[:, None] * Z).sum(0)
    C = ((Z - mu) * w[:, None]).T @ (Z - mu)
    d = np.sqrt(np.diag(C))
    R = C / np.outer(d, d)
    rxx, rxy = R[1:, 1:], R[1:, 0]
    vals, vecs = np.linalg.eigh(rxx)
    lam = vecs @ np.diag(np.sqrt(vals)) @ vecs.T
    beta_z = np.linalg.solve(lam, rxy)
    return (lam ** 2) @ (beta_z ** 2)


def group_rows(con, outcome, drivers, weighted, where, key_cols, key):
    conds = ["scale = 'likert5'", f"{outcome} IS NOT NULL"] + [f"{d} IS NOT NULL" for d in drivers] + where
    for c, v in zip(key_cols, key):
        conds.append(f"{c} IS NULL" if v is None else f"{c} = '{v}'")
    cols = ", ".join([outcome] + drivers + ["weight" if weighted else "1.0::DOUBLE"])
    data = np.array(con.execute(f"SELECT {cols} FROM r WHERE {' AND '.join(conds)}").fetchall(), dtype=float)
    return data[:, 0], data[:, 1:-1], data[:, -1]


def close(a, b, tol=1e-9):
    return a is not None and abs(a - b) <= tol * max(1.0, abs(b))


@pytest.mark.parametrize("case_seed", range(8))
def test_driver_importance_equals_numpy(con, lake_url, case_seed):
    rng = random.Random(500 + case_seed)
    group = rng.sample(sorted(DIMS), rng.choice([1, 1, 2]))
    outcome = rng.choice(["TRUST", "SATISFACTION"])
    drivers = rng.sample(DRIVERS, rng.randint(2, 6))
    weighted = case_seed % 2 == 1
    f, where = {}, []
    if rng.random() < 0.5:
        f["channel"] = ["DIGITAL", "PHONE", "IN_PERSON"]
        where.append("channel IN ('digital', 'phone', 'in_person')")
    resp = graphql(lake_url, QUERY, {"o": outcome, "d": [d.upper() for d in drivers], "f": f, "g": group, "w": weighted})
    assert "errors" not in resp, resp
    groups = [g for g in resp["data"]["driverImportance"] if g["error"] is None and g["n"] >= 200]
    assert groups, "some groups have estimates"
    key_cols = [DIMS[g][0] for g in group]
    for g in groups[:6]:
        key = [g[DIMS[d][1]] for d in group]
        y, X, w = group_rows(con, outcome.lower(), drivers, weighted, where, key_cols, key)
        assert len(y) == g["n"], (key, len(y), g["n"])
        beta, r2, r = wls(y, X, w)
        assert close(g["r2"], r2), (key, g["r2"], r2)
        shap = shapley_brute(y, X, w)
        john = johnson_numpy(y, X, w)
        for j, d in enumerate(g["drivers"]):
            assert d["driver"].lower() == drivers[j]
            assert close(d["r"], r[j]) and close(d["beta"], beta[j]), (key, d["driver"])
            assert close(d["shapley"], shap[j]), (key, d["driver"], d["shapley"], shap[j])
            assert close(d["johnson"], john[j]), (key, d["driver"], d["johnson"], john[j])
            assert close(d["first"], r[j] ** 2) and close(d["pratt"], beta[j] * r[j])
            others = [i for i in range(len(drivers)) if i != j]
            assert close(d["last"], r2 - r2_of(y, X, w, others))
        assert close(sum(d["shapley"] for d in g["drivers"]), g["r2"])
        ranks = sorted(g["drivers"], key=lambda d: d["rank"])
        assert [d["shapley"] for d in ranks] == sorted((d["shapley"] for d in g["drivers"]), reverse=True)


def test_pairwise_correlations_use_each_pairs_rows(con, lake_url):
    resp = graphql(lake_url, QUERY, {"g": ["SERVICE_TYPE"], "m": "PAIRWISE", "d": ["EASE", "EMPLOYEE"]})
    for g in resp["data"]["driverImportance"]:
        for d in g["drivers"]:
            rows = np.array(con.execute(
                f"SELECT trust, {d['driver'].lower()} FROM r WHERE scale = 'likert5' AND service_type = '{g['serviceType']}' "
                f"AND trust IS NOT NULL AND {d['driver'].lower()} IS NOT NULL").fetchall(), dtype=float)
            assert close(d["r"], np.corrcoef(rows[:, 0], rows[:, 1])[0, 1])


def test_bootstrap_agrees_with_a_per_row_poisson_bootstrap(con, lake_url):
    variables = {"g": ["SERVICE_TYPE"], "f": {"serviceType": ["BENEFITS"]}, "b": 300, "s": 11}
    first = graphql(lake_url, QUERY, variables)["data"]["driverImportance"][0]
    again = graphql(lake_url, QUERY, variables)["data"]["driverImportance"][0]
    other = graphql(lake_url, QUERY, {**variables, "s": 12})["data"]["driverImportance"][0]
    assert first == again, "a fixed seed gives the same intervals"
    assert first["drivers"] != other["drivers"]
    assert first["bootstrapReplicates"] == 300
    y, X, w = group_rows(con, "trust", DRIVERS, False, [], ["service_type"], ["benefits"])
    gen = np.random.default_rng(3)
    reps = []
    for _ in range(300):
        pw = gen.poisson(1.0, len(y)).astype(float)
        phi = shapley_brute(y, X, pw)
        reps.append(phi / phi.sum())
    lo, hi = np.percentile(reps, [2.5, 97.5], axis=0)
    for j, d in enumerate(first["drivers"]):
        assert d["shapleyShareLow"] <= d["shapleyShare"] <= d["shapleyShareHigh"]
        assert d["johnsonLow"] <= d["johnson"] <= d["johnsonHigh"]
        ours, theirs = d["shapleyShareHigh"] - d["shapleyShareLow"], hi[j] - lo[j]
        assert 0.65 < ours / theirs < 1.5, (d["driver"], ours, theirs)


def test_planted_driver_order_is_recovered(tmp_path):
    lake = tmp_path / "truth"
    run_cxlake("generate", "--out", lake, "--rows", 2_000_000, "--seed", 2025)
    truth = json.loads((lake / "truth.json").read_text())
    for outcome, weights in [("TRUST", truth["trust_weights"]), ("SATISFACTION", truth["satisfaction_weights"])]:
        resp = graphql(lake, QUERY, {"o": outcome, "g": ["SERVICE_TYPE"]})
        groups = resp["data"]["driverImportance"]
        assert len(groups) == 7
        for g in groups:
            assert g["n"] >= 20_000, (g["serviceType"], g["n"])
            got = [d["driver"].lower() for d in sorted(g["drivers"], key=lambda d: d["rank"])]
            w = weights[g["serviceType"]]
            assert got == sorted(w, key=lambda k: -w[k]), (outcome, g["serviceType"], got)


def test_kda_reproduces_relaimpo_on_mtcars():
    out = run_cxlake("kda", "--csv", ROOT / "tests/fixtures/mtcars.csv", "--outcome", "mpg", "--drivers", "am,vs,cyl", "--json")
    report = json.loads(out.stdout)
    assert set(report) == {"outcome", "n", "rows_read", "r2", "adj_r2", "drivers"} and report["n"] == 32
    assert abs(report["r2"] - 0.7619773) < 5e-8
    assert [d["name"] for d in report["drivers"]] == ["am", "vs", "cyl"]
    for d, lmg in zip(report["drivers"], [0.1774892, 0.2027032, 0.3817849]):
        assert set(d) == {"name", "r", "beta", "first", "last", "pratt", "johnson", "johnson_share", "shapley", "shapley_share", "vif"}
        assert abs(d["shapley"] - lmg) < 5e-8


def test_kda_on_any_csv_equals_numpy(tmp_path):
    gen = np.random.default_rng(5)
    X = gen.normal(size=(500, 4)) + gen.normal(size=(500, 1))
    y = X @ [0.5, 0.2, -0.3, 0.1] + gen.normal(size=500)
    path = tmp_path / "mine.csv"
    lines = ["score,a,b,c,d"] + [",".join(f"{v:.17g}" for v in (y[i], *X[i])) for i in range(500)]
    lines[10] = lines[10].split(",", 1)[0] + ",,1,2,3"  # a missing cell: row dropped
    path.write_text("\n".join(lines) + "\n")
    report = json.loads(run_cxlake("kda", "--csv", path, "--outcome", "score", "--drivers", "a,b,c,d", "--json").stdout)
    keep = [i for i in range(500) if i != 9]
    beta, r2, r = wls(y[keep], X[keep], np.ones(len(keep)))
    assert report["n"] == 499 and close(report["r2"], r2)
    shap = shapley_brute(y[keep], X[keep], np.ones(len(keep)))
    n, k = len(keep), X.shape[1]
    assert close(report["adj_r2"], 1 - (1 - r2) * (n - 1) / (n - k - 1))
    # VIF: the diagonal of the inverse correlation matrix of the drivers (numpy, not our Cholesky).
    vif = np.diag(np.linalg.inv(np.corrcoef(X[keep], rowvar=False)))
    for j, d in enumerate(report["drivers"]):
        assert close(d["beta"], beta[j]) and close(d["shapley"], shap[j])
        assert close(d["vif"], vif[j])
    bad = tmp_path / "bad.csv"
    bad.write_text("score,a\n1,2\n3,x\n")
    proc = run_cxlake("kda", "--csv", bad, "--outcome", "score", "--drivers", "a", check=False)
    assert proc.returncode != 0 and "line 3" in proc.stderr and "'x'" in proc.stderr

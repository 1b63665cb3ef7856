"""Tapped-indicator driver importance (issue 17, `tappedDriverImportance`) against independent
oracles. Lakes are ingested from CSVs of random responses written here (fixed numpy seeds:
planted effects, partially offered indicators, rows without taps or outcome, weights), read back
by DuckDB and fitted with statsmodels: `Logit` (unweighted) or `GLM(Binomial, freq_weights)`
(weighted) for coefficients, standard errors, Wald intervals, p-values and log-likelihoods;
OLS/WLS for the 1-5 outcome; a brute-force loop over all subsets of topic sets (Shapley weights)
for dominance; Wilson and Newcombe's hybrid score interval (method 10) written out here for lift.
Degenerate groups (never tapped, tapped by everyone, separation, small n) must carry their
warning and no NaN; the planted tap effects of a generated lake (truth.json) must be recovered."""
import csv
import itertools
import json
import math
import re

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from threadpoolctl import threadpool_limits

from conftest import duck, run_cxlake, scan

TOPICS = ["effectiveness", "ease", "efficiency", "transparency", "humanity", "employee", "other"]
DRIVERS = TOPICS[:6]
INDICATORS = [f"positive_{t}" for t in TOPICS] + [f"negative_{t}" for t in TOPICS]
Z = stats.norm.ppf(0.975)
TOL = 1e-6
DIMS = {"AGENCY": ("agency", "agency"), "BUREAU": ("bureau", "bureau"), "SERVICE": ("service_id", "service"),
        "SERVICE_TYPE": ("service_type", "serviceType"), "CHANNEL": ("channel", "channel"), "STAGE": ("stage", "stage")}
PERIODS = {
    "MONTH": "strftime(submitted_at::DATE, '%Y-%m')",
    "QUARTER": "year(submitted_at)::VARCHAR || 'Q' || quarter(submitted_at)::VARCHAR",
    "FISCAL_QUARTER": "'FY' || year(submitted_at + INTERVAL 3 MONTH)::VARCHAR || 'Q' || quarter(submitted_at + INTERVAL 3 MONTH)::VARCHAR",
}
QUERY = """query($o: OutcomeName, $m: TappedModelName, $i: [TapIndicatorName!], $f: ResponseFilter, $g: [GroupDimension!],
  $p: PeriodUnit, $w: Boolean, $b: Int, $s: Int) {
  tappedDriverImportance(outcome: $o, model: $m, indicators: $i, filter: $f, groupBy: $g, period: $p, weighted: $w,
                         bootstrap: $b, seed: $s) {
    agency bureau service serviceType channel office region stage period
    outcome model n nDropped nNotShown nOutcomeMissing nEffective events logLikelihood nullLogLikelihood mcfadden nagelkerke estrella
    r2 adjR2 intercept error warnings bootstrapReplicates suppressed suppressedReason
    coefficients { indicator topic direction estimate oddsRatio stdError low high pValue dropped }
    drivers { topic importance share rank johnson johnsonShare importanceLow importanceHigh shareLow shareHigh }
    lift { indicator topic direction shown tapped agreeTapped agreeNotTapped difference low high suppressed suppressedReason }
  }
}"""
SMALL_N = re.compile(r"below|small n|small sample|too few", re.I)


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Thousands of small statsmodels fits: a multithreaded BLAS only contends (70x slower on 2 busy cores)."""
    with threadpool_limits(1):
        yield


# ---------------------------------------------------------------- lakes from CSVs written here

HEADER = ["response_id", "submitted_at", "collection_id", "agency", "bureau", "service_id", "service_type", "channel",
          "stage", "office_id", "region", "scale", "trust", "satisfaction", *DRIVERS, *INDICATORS,
          "free_text_1", "free_text_2", "weight"]
PARTIAL = {f"{d}_{t}" for d in ("positive", "negative") for t in ("effectiveness", "ease", "efficiency", "other")}


def coll(cid, agency, bureau, service, stype, channel, scale, form, office=None, region=None):
    return dict(collection_id=cid, agency=agency, bureau=bureau, service_id=service, service_type=stype, channel=channel,
                stage="transaction", office_id=office, region=region, scale=scale, form=form)


# The random lake: (collection, relative size). Forms: "full" = the 14 indicators offered,
# "partial" = only effectiveness, ease, efficiency and other offered, "v1" = Likert items, no taps.
RANDOM_COLLECTIONS = [
    (coll("VA-S01-digital", "VA", "VA-VBA", "VA-S01", "benefits", "digital", "thumbs", "full"), 3.0),
    (coll("VA-S01-phone", "VA", "VA-VBA", "VA-S01", "benefits", "phone", "likert5", "full"), 2.0),
    (coll("VA-S02-in_person", "VA", "VA-VHA", "VA-S02", "administrative", "in_person", "thumbs", "full", "VA-O01", "TX"), 2.5),
    (coll("VA-S02-v1", "VA", "VA-VHA", "VA-S02", "administrative", "digital", "likert5", "v1"), 1.0),
    (coll("SSA-S01-digital", "SSA", "SSA-OPS", "SSA-S01", "benefits", "digital", "thumbs", "partial"), 1.5),
    (coll("SSA-S02-phone", "SSA", "SSA-OPS", "SSA-S02", "informational", "phone", "thumbs", "full"), 2.0),
    (coll("SSA-S02-digital", "SSA", "SSA-OPS", "SSA-S02", "informational", "digital", "likert5", "full"), 1.5),
    (coll("IRS-S01-digital", "IRS", "IRS-WI", "IRS-S01", "compliance", "digital", "thumbs", "full"), 2.0),
    (coll("IRS-S01-phone", "IRS", "IRS-WI", "IRS-S01", "compliance", "phone", "likert5", "full"), 1.5),
    (coll("IRS-S02-digital", "IRS", "IRS-SBSE", "IRS-S02", "informational", "digital", "thumbs", "partial"), 1.0),
    (coll("IRS-S02-v1", "IRS", "IRS-SBSE", "IRS-S02", "informational", "phone", "likert5", "v1"), 1.0),
]
START = np.datetime64("2024-01-01T00:00:00")  # FY2024Q2 .. FY2025Q1
DAYS = 366


def effects(rng):
    """Planted log-odds of trust and satisfaction on the 14 indicators and tap probabilities."""
    beta = np.array([rng.uniform(0.2, 1.0) for _ in TOPICS] + [rng.uniform(-1.1, -0.3) for _ in TOPICS])
    sat = 0.8 * beta + rng.normal(0, 0.2, 14)
    taps = np.array([rng.uniform(0.15, 0.4) for _ in TOPICS] + [rng.uniform(0.1, 0.25) for _ in TOPICS])
    return dict(a_trust=rng.uniform(-0.3, 0.5), beta=beta, a_sat=rng.uniform(-0.3, 0.5), sat=sat, taps=taps)


def answers(rng, eta, scale):
    """Thumbs: up when a logistic latent is above 0; Likert: cut at -2.2, -1, 0, 1.3 (agree = 4-5
    is then the same logistic model)."""
    u = eta + rng.logistic(size=len(eta))
    if scale == "thumbs":
        return (u > 0).astype(int)
    return 1 + (u > -2.2).astype(int) + (u > -1.0) + (u > 0.0) + (u > 1.3)


def collection_rows(rng, c, n, eff, row_partial=0.04, row_none=0.05, miss_trust=0.04, miss_sat=0.03, start=START, days=DAYS):
    """n rows of one collection as dicts with the lake's columns; taps as 1/0/None."""
    ts = start + (rng.random(n) * days * 86400).astype("timedelta64[s]")
    rows = []
    if c["form"] == "v1":
        trust = answers(rng, np.full(n, eff["a_trust"]), "likert5")
        sat = answers(rng, np.full(n, eff["a_sat"]), "likert5")
        drivers = rng.integers(1, 6, size=(n, 6))
        shown = np.zeros((n, 14), bool)
        x = np.zeros((n, 14))
    else:
        offered = np.array([c["form"] == "full" or ind in PARTIAL for ind in INDICATORS])
        shown = np.tile(offered, (n, 1))
        for i in np.flatnonzero(rng.random(n) < row_partial):  # a form version offering fewer options
            cols = np.flatnonzero(offered)
            shown[i, rng.choice(cols, rng.integers(1, 4), replace=False)] = False
        shown[rng.random(n) < row_none] = False  # the tap list not shown / not reached
        x = (rng.random((n, 14)) < eff["taps"]).astype(float) * shown
        trust = answers(rng, eff["a_trust"] + x @ eff["beta"], c["scale"])
        sat = answers(rng, eff["a_sat"] + x @ eff["sat"], c["scale"])
        drivers = None
    no_trust = rng.random(n) < miss_trust
    no_sat = (rng.random(n) < miss_sat) & ~no_trust  # every row answers something
    weight = np.round(np.exp(rng.normal(0, 0.5, n)), 6)
    for i in range(n):
        row = {k: c[k] for k in ("collection_id", "agency", "bureau", "service_id", "service_type", "channel", "stage",
                                 "office_id", "region", "scale")}
        row["submitted_at"] = str(ts[i]) + "Z"
        row["trust"] = None if no_trust[i] else int(trust[i])
        row["satisfaction"] = None if no_sat[i] else int(sat[i])
        for j, d in enumerate(DRIVERS):
            row[d] = None if drivers is None else int(drivers[i, j])
        for j, ind in enumerate(INDICATORS):
            row[ind] = int(x[i, j]) if shown[i, j] else None
        row["weight"] = float(weight[i])
        rows.append(row)
    return rows


def write_csv(path, rows, prefix):
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        for i, r in enumerate(rows):
            r = {**r, "response_id": f"{prefix}-{i:06d}"}
            cells = []
            for k in HEADER:
                v = r.get(k)
                if v is None:
                    cells.append("")
                elif k in INDICATORS:
                    cells.append("true" if v else "false")
                elif k == "weight":
                    cells.append(repr(v))
                else:
                    cells.append(v)
            out.writerow(cells)


def ingest_lake(tmp_path_factory, name, rows):
    base = tmp_path_factory.mktemp(name)
    path = base / f"{name}.csv"
    write_csv(path, rows, name)
    lake = base / "lake"
    proc = run_cxlake("ingest", "--lake", lake, "--json", path)
    summaries = [json.loads(line) for line in proc.stdout.splitlines()]
    assert sum(s["rows_quarantined"] for s in summaries) == 0, summaries
    assert sum(s["rows_stored"] for s in summaries) == len(rows), summaries
    return lake


def random_rows(seed=17, total=24000):
    rng = np.random.default_rng(seed)
    by_type = {t: effects(rng) for t in sorted({c["service_type"] for c, _ in RANDOM_COLLECTIONS})}
    sizes = np.array([s for _, s in RANDOM_COLLECTIONS])
    counts = np.round(total * sizes / sizes.sum()).astype(int)
    rows = []
    for (c, _), n in zip(RANDOM_COLLECTIONS, counts):
        rows += collection_rows(rng, c, int(n), by_type[c["service_type"]])
    return rows


@pytest.fixture(scope="module")
def tap_lake(tmp_path_factory):
    return ingest_lake(tmp_path_factory, "taps", random_rows())


# ---------------------------------------------------------------- querying

def no_constants(token):
    raise AssertionError(f"the JSON answer holds {token}")


def query(lake, variables):
    """tappedDriverImportance through `cxlake query` (suppression off, as in conftest.graphql);
    fails on NaN/Infinity anywhere in the JSON text and on GraphQL errors."""
    proc = run_cxlake("query", "--lake", lake, "-", "--min-cell", "0", "--min-cell-drivers", "0",
                      "--variables", json.dumps(variables), input=QUERY, check=False)
    resp = json.loads(proc.stdout, parse_constant=no_constants)
    assert "errors" not in resp, f"tappedDriverImportance({variables}) answered errors: {resp.get('errors')}"
    return resp["data"]["tappedDriverImportance"]


def finite_everywhere(value, path="$"):
    if isinstance(value, float):
        assert math.isfinite(value), f"{path} = {value}"
    elif isinstance(value, dict):
        for k, v in value.items():
            finite_everywhere(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            finite_everywhere(v, f"{path}[{i}]")


# ---------------------------------------------------------------- raw rows from DuckDB

def load(lake, outcome, where, group, period):
    """The rows the filter selects: group key, scale, outcome, the 14 indicators (-1 = not
    shown), weight."""
    keys = [DIMS[g][0] for g in group] + ([PERIODS[period]] if period else [])
    ind = ", ".join(f"coalesce({i}::INT, -1)" for i in INDICATORS)
    key_sel = "".join(f"{k}, " for k in keys)
    sql = f"""SELECT {key_sel} scale, coalesce({outcome}::INT, -1), {ind}, weight FROM {scan(lake)}
              {'WHERE ' + ' AND '.join(where) if where else ''}"""
    rows = duck().execute(sql).fetchall()
    nk = len(keys)
    return dict(
        key=[tuple(r[:nk]) for r in rows],
        scale=np.array([r[nk] for r in rows]),
        y=np.array([r[nk + 1] for r in rows], dtype=float),
        X=np.array([r[nk + 2:nk + 16] for r in rows], dtype=float).reshape(len(rows), 14),
        w=np.array([r[-1] for r in rows], dtype=float),
    )


def groups_of(data):
    out = {}
    for i, k in enumerate(data["key"]):
        out.setdefault(k, []).append(i)
    return {k: np.array(v) for k, v in out.items()}


def agree_of(scale, y):
    return np.where(scale == "thumbs", y == 1, y >= 4).astype(float)


# ---------------------------------------------------------------- statsmodels oracles

def logit(y, X, w, weighted):
    """(params, bse, pvalues, ll) of the logistic fit with intercept, from statsmodels."""
    A = np.column_stack([np.ones(len(y)), X])
    if weighted:
        res = sm.GLM(y, A, family=sm.families.Binomial(), freq_weights=w).fit(tol=1e-13, maxiter=200)
    else:
        res = sm.Logit(y, A).fit(method="newton", tol=1e-12, maxiter=200, disp=0)
    assert np.all(np.abs(res.params) < 12), f"oracle fit separated (test data problem): {res.params}"
    return res.params, res.bse, res.pvalues, res.llf


def linear(y, X, w, weighted):
    A = np.column_stack([np.ones(len(y)), X])
    return (sm.WLS(y, A, weights=w) if weighted else sm.OLS(y, A)).fit()


def shapley(players, value):
    """General dominance: Shapley values of value(frozenset) over the players, brute force."""
    m = len(players)
    cache = {}
    for size in range(m + 1):
        for S in itertools.combinations(range(m), size):
            cache[S] = value([players[i] for i in S])
    phi = []
    for j in range(m):
        total = 0.0
        for size in range(m):
            for S in itertools.combinations([i for i in range(m) if i != j], size):
                weight = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
                total += weight * (cache[tuple(sorted(S + (j,)))] - cache[S])
        phi.append(total)
    return np.array(phi)


def johnson(y, X, w):
    """Johnson's relative weights from the weighted correlation matrix (numpy eigh)."""
    w = w / w.sum()
    Zm = np.column_stack([y, X])
    mu = (w[:, None] * Zm).sum(0)
    C = ((Zm - mu) * w[:, None]).T @ (Zm - mu)
    d = np.sqrt(np.diag(C))
    R = C / np.outer(d, d)
    vals, vecs = np.linalg.eigh(R[1:, 1:])
    lam = vecs @ np.diag(np.sqrt(vals)) @ vecs.T
    return (lam ** 2) @ (np.linalg.solve(lam, R[1:, 0]) ** 2)


def wilson(p, n):
    c = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    h = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return max(0.0, c - h), min(1.0, c + h)


def newcombe(p1, n1, p2, n2):
    """Newcombe (1998) method 10: hybrid score interval of p1 - p2 from the two Wilson intervals."""
    l1, u1 = wilson(p1, n1)
    l2, u2 = wilson(p2, n2)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


# ---------------------------------------------------------------- comparing

class Checker:
    """Collects every mismatch (group, statistic, expected, got) and fails once with all of them."""

    def __init__(self, label):
        self.label, self.problems, self.checked = label, [], 0

    def num(self, ctx, stat, got, want, tol=TOL):
        self.checked += 1
        if want is None:
            if got is not None:
                self.problems.append(f"{ctx}: {stat} expected null, got {got}")
        elif got is None or not math.isfinite(got) or abs(got - want) > tol * max(1.0, abs(want)):
            self.problems.append(f"{ctx}: {stat} expected {want!r}, got {got!r}")

    def eq(self, ctx, stat, got, want):
        self.checked += 1
        if got != want:
            self.problems.append(f"{ctx}: {stat} expected {want!r}, got {got!r}")

    def true(self, ctx, what, cond):
        self.checked += 1
        if not cond:
            self.problems.append(f"{ctx}: {what}")

    def done(self):
        assert not self.problems, f"{self.label}: {len(self.problems)} of {self.checked} checks failed:\n" + "\n".join(self.problems[:60])


def enum(ind):
    return ind.upper()


def model_frame(d, idx, outcome_model, asked):
    """The rows a group's model uses and the counts around them (see the API: the model holds
    the asked indicators of the group's most common form, the set offered to the most responses
    answering the outcome, ties to the larger set, then to the smaller bit mask over the asked
    order; n dropped = answered the outcome on a form without some of them; not shown =
    answered, shown none of the asked; outcome missing = shown an asked indicator, no answer)."""
    scale, y, X = d["scale"][idx], d["y"][idx], d["X"][idx]
    cols = [INDICATORS.index(a) for a in asked]
    in_scope = scale == "likert5" if outcome_model == "LINEAR" else np.ones(len(y), bool)
    answered = (y >= 0) & in_scope
    shown_asked = X[:, cols] >= 0
    any_shown = shown_asked.any(1)
    masks = shown_asked.astype(np.int64) @ (1 << np.arange(len(cols), dtype=np.int64))
    forms = {}
    for m in masks[answered & any_shown]:
        forms[int(m)] = forms.get(int(m), 0) + 1
    best = max(forms, key=lambda m: (forms[m], bin(m).count("1"), -m)) if forms else 0
    effective = [cols[j] for j in range(len(cols)) if best >> j & 1]
    covers = (masks & best) == best
    used = answered & any_shown & covers
    dropped = answered & any_shown & ~covers
    not_shown = answered & ~any_shown
    missing = in_scope & (y < 0) & any_shown
    return dict(effective=effective, used=idx[used], n_dropped=int(dropped.sum()), n_not_shown=int(not_shown.sum()),
                n_outcome_missing=int(missing.sum()))


def check_group(ck, ctx, g, d, idx, model, asked, weighted, dominance):
    fr = model_frame(d, idx, model, asked)
    used = fr["used"]
    n = len(used)
    ck.eq(ctx, "n", g["n"], n)
    ck.eq(ctx, "nDropped", g["nDropped"], fr["n_dropped"])
    ck.eq(ctx, "nNotShown", g["nNotShown"], fr["n_not_shown"])
    ck.eq(ctx, "nOutcomeMissing", g["nOutcomeMissing"], fr["n_outcome_missing"])
    ck.eq(ctx, "model", g["model"], model)
    ck.eq(ctx, "suppressed", g["suppressed"], False)
    for c in INDICATORS:
        if fr["effective"] and c in asked and INDICATORS.index(c) not in fr["effective"]:
            ck.true(ctx, f"a warning names {c}, left out of the group's model (warnings: {g['warnings']})",
                    any(c.split("_")[1] in w.lower() for w in g["warnings"]))
    if n == 0:
        ck.true(ctx, "no rows used but no error", g["error"] is not None)
        return
    scale, w = d["scale"][used], d["w"][used] if weighted else np.ones(n)
    y = agree_of(scale, d["y"][used]) if model == "LOGISTIC" else d["y"][used]
    Xall = d["X"][used]
    taps = {c: Xall[:, c].sum() for c in fr["effective"]}
    kept = [c for c in fr["effective"] if 0 < taps[c] < n]
    ck.num(ctx, "nEffective", g["nEffective"], w.sum() ** 2 / (w * w).sum())
    if model == "LOGISTIC" and (y.sum() == 0 or y.sum() == n):
        ck.true(ctx, "outcome constant but no error", g["error"] is not None)
        return
    ck.eq(ctx, "error", g["error"], None)
    X = Xall[:, kept]
    coefs = {c["indicator"]: c for c in g["coefficients"]}
    for c in coefs:
        ck.true(ctx, f"coefficient of {c} which was not asked", c.lower() in asked)
    if model == "LOGISTIC":
        params, bse, pvals, ll = logit(y, X, w, weighted)
        sw, events = w.sum(), (w * y).sum()
        p0 = events / sw
        ll0 = sw * (p0 * math.log(p0) + (1 - p0) * math.log(1 - p0))  # intercept-only, closed form
        ck.num(ctx, "events", g["events"], events)
        ck.num(ctx, "logLikelihood", g["logLikelihood"], ll)
        ck.num(ctx, "nullLogLikelihood", g["nullLogLikelihood"], ll0)
        fit_r2 = 1 - ll / ll0
        ck.num(ctx, "mcfadden", g["mcfadden"], fit_r2)
        nn = sw  # survey weights are frequency weights: the model's n is their sum
        ck.num(ctx, "nagelkerke", g["nagelkerke"], (1 - math.exp(2 * (ll0 - ll) / nn)) / (1 - math.exp(2 * ll0 / nn)))
        ck.num(ctx, "estrella", g["estrella"], 1 - (ll / ll0) ** (-(2 / nn) * ll0))
        ck.num(ctx, "r2", g["r2"], None)
        crit = np.full(len(params), Z)
    else:
        res = linear(y, X, w, weighted)
        params, bse, pvals, fit_r2 = res.params, res.bse, res.pvalues, res.rsquared
        ck.num(ctx, "r2", g["r2"], res.rsquared)
        ck.num(ctx, "adjR2", g["adjR2"], res.rsquared_adj)
        ck.num(ctx, "mcfadden", g["mcfadden"], None)
        crit = np.full(len(params), stats.t.ppf(0.975, n - len(kept) - 1))
    ck.num(ctx, "intercept", g["intercept"], params[0])
    for j, c in enumerate(kept):
        name = enum(INDICATORS[c])
        got = coefs.get(name)
        if got is None:
            ck.true(ctx, f"no coefficient for {name}", False)
            continue
        cx = f"{ctx} {name}"
        ck.eq(cx, "topic", got["topic"], INDICATORS[c].split("_")[1].upper())
        ck.eq(cx, "direction", got["direction"], INDICATORS[c].split("_")[0].upper())
        ck.num(cx, "estimate", got["estimate"], params[j + 1])
        ck.num(cx, "stdError", got["stdError"], bse[j + 1])
        ck.num(cx, "low", got["low"], params[j + 1] - crit[j + 1] * bse[j + 1])
        ck.num(cx, "high", got["high"], params[j + 1] + crit[j + 1] * bse[j + 1])
        ck.num(cx, "pValue", got["pValue"], pvals[j + 1])
        ck.num(cx, "oddsRatio", got["oddsRatio"], math.exp(params[j + 1]) if model == "LOGISTIC" else None)
        ck.eq(cx, "dropped", got["dropped"], None)
    for c in fr["effective"]:
        if c not in kept:
            got = coefs.get(enum(INDICATORS[c]))
            reason = "never tapped" if taps[c] == 0 else "tapped by everyone"
            ck.true(ctx, f"{INDICATORS[c]} is {reason} among the {n} rows used: expected a null estimate and a reason, got {got}",
                    got is not None and got["estimate"] is None and bool(got["dropped"]))
    # Dominance over topic sets (a topic's positive and negative indicator together).
    drivers = {d_["topic"]: d_ for d_ in g["drivers"]}
    asked_topics = sorted({a.split("_")[1] for a in asked}, key=TOPICS.index)
    players = [t for t in asked_topics if any(INDICATORS[c].endswith("_" + t) for c in kept)]
    ck.true(ctx, f"driver topics {sorted(drivers)}: expected every topic with an estimable indicator {players} "
            f"and only asked topics {asked_topics}",
            {t.upper() for t in players} <= set(drivers) <= {t.upper() for t in asked_topics})
    total = sum(d_["importance"] or 0.0 for d_ in g["drivers"])
    ck.num(ctx, "sum of importance (= full model's McFadden R2 / R2)", total, fit_r2)
    if not dominance:
        return
    members = {t: [j for j, c in enumerate(kept) if INDICATORS[c].endswith("_" + t)] for t in players}

    def value(topics):
        if not topics:
            return 0.0
        cols = [j for t in topics for j in members[t]]
        if model == "LOGISTIC":
            return 1 - logit(y, X[:, cols], w, weighted)[3] / ll0
        return linear(y, X[:, cols], w, weighted).rsquared

    phi = shapley(players, value)
    order = sorted(range(len(players)), key=lambda i: -phi[i])
    if model == "LINEAR":
        jw = johnson(y, X, w)
        jt = {t: sum(jw[j] for j in members[t]) for t in players}
    for i, t in enumerate(players):
        got = drivers.get(t.upper())
        if got is None:
            continue
        cx = f"{ctx} driver {t.upper()}"
        ck.num(cx, "importance", got["importance"], phi[i])
        ck.num(cx, "share", got["share"], phi[i] / phi.sum())
        ck.eq(cx, "rank", got["rank"], order.index(i) + 1)
        if model == "LINEAR":
            ck.num(cx, "johnson", got["johnson"], jt[t])
            ck.num(cx, "johnsonShare", got["johnsonShare"], jt[t] / sum(jt.values()))
    for t in asked_topics:
        if t not in players and t.upper() in drivers:
            ck.true(ctx, f"driver {t.upper()} has no estimable indicator: importance should be 0 or null, got "
                    f"{drivers[t.upper()]['importance']}", drivers[t.upper()]["importance"] in (None, 0.0))


def check_lift(ck, ctx, g, d, idx, asked):
    """Unweighted lift: among rows of the group answering the outcome and shown the indicator."""
    lift = {x["indicator"]: x for x in g["lift"]}
    scale, y, X = d["scale"][idx], d["y"][idx], d["X"][idx]
    for a in asked:
        c = INDICATORS.index(a)
        rows = (y >= 0) & (X[:, c] >= 0)
        got = lift.get(enum(a))
        if not rows.any():
            if got is not None:
                ck.eq(f"{ctx} lift {enum(a)}", "shown", got["shown"], 0)
            continue
        cx = f"{ctx} lift {enum(a)}"
        if got is None:
            ck.true(ctx, f"no lift row for {enum(a)} (shown to {rows.sum()})", False)
            continue
        ag, t = agree_of(scale[rows], y[rows]), X[rows, c] == 1
        n1, n2 = int(t.sum()), int((~t).sum())
        ck.eq(cx, "shown", got["shown"], int(rows.sum()))
        ck.eq(cx, "tapped", got["tapped"], n1)
        ck.eq(cx, "suppressed", got["suppressed"], False)
        p1 = ag[t].mean() if n1 else None
        p2 = ag[~t].mean() if n2 else None
        ck.num(cx, "agreeTapped", got["agreeTapped"], p1, 1e-9)
        ck.num(cx, "agreeNotTapped", got["agreeNotTapped"], p2, 1e-9)
        if n1 and n2:
            lo, hi = newcombe(p1, n1, p2, n2)
            ck.num(cx, "difference", got["difference"], p1 - p2, 1e-9)
            ck.num(cx, "low", got["low"], lo, 1e-9)
            ck.num(cx, "high", got["high"], hi, 1e-9)
        else:
            ck.num(cx, "difference", got["difference"], None)


CASES = {
    "trust-by-type-fiscal-quarter": dict(o="TRUST", g=["SERVICE_TYPE"], p="FISCAL_QUARTER", w=False),
    "satisfaction-by-agency-weighted": dict(o="SATISFACTION", g=["AGENCY"], w=True),
    "trust-thumbs-by-channel-six-indicators": dict(
        o="TRUST", g=["CHANNEL"], f={"scale": ["THUMBS"]}, w=False,
        i=["POSITIVE_EASE", "NEGATIVE_EASE", "POSITIVE_EFFECTIVENESS", "NEGATIVE_EFFICIENCY", "POSITIVE_HUMANITY", "NEGATIVE_OTHER"]),
    "trust-by-service-weighted": dict(o="TRUST", g=["SERVICE"], f={"serviceType": ["BENEFITS", "INFORMATIONAL"]}, w=True),
    "trust-date-range-by-quarter": dict(o="TRUST", g=[], p="QUARTER", f={"from": "2024-02-15", "to": "2024-10-31"}, w=False),
    "satisfaction-by-type-channel-weighted": dict(o="SATISFACTION", g=["SERVICE_TYPE", "CHANNEL"], f={"agency": ["VA", "IRS"]}, w=True),
    "linear-trust-by-type": dict(o="TRUST", m="LINEAR", g=["SERVICE_TYPE"], w=False),
    "linear-satisfaction-by-agency-weighted": dict(o="SATISFACTION", m="LINEAR", g=["AGENCY"], w=True),
}


def where_of(f):
    """The SQL of a ResponseFilter used by CASES."""
    where = []
    if "scale" in f:
        where.append("scale IN (" + ", ".join("'likert5'" if s == "LIKERT_5" else "'thumbs'" for s in f["scale"]) + ")")
    if "serviceType" in f:
        where.append("service_type IN (" + ", ".join(f"'{s.lower()}'" for s in f["serviceType"]) + ")")
    if "agency" in f:
        where.append("agency IN (" + ", ".join(f"'{a}'" for a in f["agency"]) + ")")
    if "from" in f:
        where.append(f"submitted_at >= TIMESTAMPTZ '{f['from']} 00:00:00+00'")
    if "to" in f:
        where.append(f"submitted_at < TIMESTAMPTZ '{f['to']} 00:00:00+00' + INTERVAL 1 DAY")
    return where


@pytest.mark.parametrize("case", sorted(CASES))
def test_tapped_importance_equals_statsmodels(tap_lake, case):
    spec = CASES[case]
    model = spec.get("m", "LOGISTIC")
    asked = [i.lower() for i in spec["i"]] if "i" in spec else INDICATORS
    variables = {k: v for k, v in spec.items() if k != "i"}
    if "i" in spec:
        variables["i"] = spec["i"]
    got = query(tap_lake, variables)
    finite_everywhere(got)
    d = load(tap_lake, spec["o"].lower(), where_of(spec.get("f", {})), spec["g"], spec.get("p"))
    groups = groups_of(d)
    fields = [DIMS[x][1] for x in spec["g"]] + (["period"] if spec.get("p") else [])
    got_by_key = {tuple(g[f] for f in fields): g for g in got}
    ck = Checker(f"tappedDriverImportance({json.dumps(variables)})")
    expected_keys = {k for k, idx in groups.items() if len(model_frame(d, idx, model, asked)["used"]) > 0}
    ck.true("groups", f"groups with rows used missing from the answer: {sorted(expected_keys - set(got_by_key), key=str)}",
            expected_keys <= set(got_by_key))
    ck.true("groups", f"groups not in the lake: {sorted(set(got_by_key) - set(groups), key=str)}", set(got_by_key) <= set(groups))
    for key, g in sorted(got_by_key.items(), key=lambda kv: str(kv[0])):
        if key not in groups:
            continue
        ctx = f"group {dict(zip(fields, key))}"
        ck.eq(ctx, "outcome", g["outcome"], spec["o"])
        ck.eq(ctx, "bootstrapReplicates", g["bootstrapReplicates"], 0)
        check_group(ck, ctx, g, d, groups[key], model, asked, spec["w"], dominance=True)
        if model == "LOGISTIC" and not spec["w"]:
            check_lift(ck, ctx, g, d, groups[key], asked)
    ck.done()


def test_random_lake_has_what_the_cases_need(tap_lake):
    """The random lake exercises partial offers, rows without taps and without outcome, pooled scales."""
    d = load(tap_lake, "trust", [], ["SERVICE_TYPE"], None)
    shown = d["X"] >= 0
    assert ((shown.any(1)) & ~shown.all(1)).sum() > 500, "partially offered rows"
    assert (~shown.any(1) & (d["y"] >= 0)).sum() > 1000, "rows answering trust without a tap list"
    assert (d["y"] < 0).sum() > 500, "rows without trust"
    assert set(d["scale"][shown.all(1)]) == {"thumbs", "likert5"}, "taps on both scales"


# ---------------------------------------------------------------- degenerate groups

def degenerate_rows():
    rng = np.random.default_rng(23)
    eff = effects(rng)
    rows = []

    def thumbs(stype, n, tweak=None, **kw):
        c = coll(f"D-{stype}", "GSA", "GSA-FAS", f"GSA-{stype}", stype, "digital", "thumbs", "full")
        e = dict(eff, taps=eff["taps"].copy())
        if tweak:
            tweak(e)
        return collection_rows(rng, c, n, e, **kw)

    rows += thumbs("benefits", 600, lambda e: e["taps"].__setitem__(INDICATORS.index("negative_other"), 0.0))
    rows += thumbs("recreation", 600, lambda e: e["taps"].__setitem__(INDICATORS.index("positive_employee"), 1.0))
    comp = thumbs("compliance", 600)
    for r in comp:  # complete separation: trust up exactly when effectiveness went well
        if r["positive_effectiveness"] is not None and r["trust"] is not None:
            r["trust"] = r["positive_effectiveness"]
    rows += comp
    reg = thumbs("regulatory", 600)
    for r in reg:  # quasi-complete separation: whoever tapped humanity trusts
        if r["positive_humanity"] == 1 and r["trust"] is not None:
            r["trust"] = 1
    rows += reg
    rows += thumbs("informational", 100, row_partial=0, row_none=0, miss_trust=0)
    rows += thumbs("data_research", 25, row_partial=0, row_none=0, miss_trust=0)
    v1 = coll("D-administrative", "GSA", "GSA-FAS", "GSA-administrative", "administrative", "digital", "likert5", "v1")
    rows += collection_rows(rng, v1, 300, eff)
    return rows


@pytest.fixture(scope="module")
def degenerate_lake(tmp_path_factory):
    return ingest_lake(tmp_path_factory, "degenerate", degenerate_rows())


@pytest.fixture(scope="module")
def degenerate(degenerate_lake):
    got = query(degenerate_lake, {"g": ["SERVICE_TYPE"]})
    finite_everywhere(got)
    return {g["serviceType"]: g for g in got}


def coefficient(g, indicator):
    found = [c for c in g["coefficients"] if c["indicator"] == indicator]
    assert found, f"{g['serviceType']}: no coefficient row for {indicator} (coefficients: {g['coefficients']})"
    return found[0]


@pytest.mark.parametrize("stype,indicator,reason", [("benefits", "NEGATIVE_OTHER", r"never"),
                                                    ("recreation", "POSITIVE_EMPLOYEE", r"every|all")])
def test_never_or_always_tapped_indicator_is_dropped_with_reason(degenerate_lake, degenerate, stype, indicator, reason):
    g = degenerate[stype]
    c = coefficient(g, indicator)
    assert c["estimate"] is None and c["stdError"] is None and c["pValue"] is None, f"{stype} {indicator}: {c}"
    topic = indicator.split("_")[1].lower()
    assert any(topic in w.lower() for w in g["warnings"]), f"{stype}: no warning names {indicator}: {g['warnings']}"
    driver = [d for d in g["drivers"] if d["topic"] == indicator.split("_")[1]]
    assert driver and driver[0]["importance"] is not None and math.isfinite(driver[0]["importance"]), \
        f"{stype}: importance of {indicator.split('_')[1]} (the other indicator still in the model): {driver}"
    # The rest of the model equals statsmodels without the constant column, dominance included.
    d = load(degenerate_lake, "trust", [], ["SERVICE_TYPE"], None)
    ck = Checker(f"tappedDriverImportance(groupBy: [SERVICE_TYPE]) {stype}")
    check_group(ck, f"group {stype}", g, d, groups_of(d)[(stype,)], "LOGISTIC", INDICATORS, False, dominance=True)
    ck.done()
    # The reason says which degenerate case it is (never tapped vs not offered vs tapped by all).
    assert c["dropped"] and re.search(reason, c["dropped"], re.I), f"{stype} {indicator}: dropped = {c['dropped']!r}"


@pytest.mark.parametrize("stype,indicator", [("compliance", "POSITIVE_EFFECTIVENESS"), ("regulatory", "POSITIVE_HUMANITY")])
def test_separation_gives_null_coefficient_with_reason(degenerate, stype, indicator):
    g = degenerate[stype]
    c = coefficient(g, indicator)
    assert c["estimate"] is None and c["oddsRatio"] is None and c["stdError"] is None, f"{stype} {indicator}: {c}"
    assert c["dropped"] and "separat" in c["dropped"].lower(), f"{stype} {indicator}: dropped = {c['dropped']!r}"
    assert any("separat" in w.lower() for w in g["warnings"]), f"{stype}: no separation warning: {g['warnings']}"
    assert g["mcfadden"] is not None and math.isfinite(g["mcfadden"]), f"{stype}: mcfadden {g['mcfadden']}"
    imp = [d["importance"] for d in g["drivers"]]
    assert all(v is not None and math.isfinite(v) for v in imp), f"{stype}: importance {g['drivers']}"
    assert abs(sum(imp) - g["mcfadden"]) <= TOL, f"{stype}: importance sums to {sum(imp)}, McFadden {g['mcfadden']}"
    others = [x for x in g["coefficients"] if x["indicator"] != indicator]
    assert all(x["estimate"] is None or abs(x["estimate"]) < 20 for x in others), f"{stype}: runaway estimates {others}"


def test_small_group_warns(degenerate_lake, degenerate):
    # 14 indicators: max(30, 10 x 14) = 140 (150 counting the intercept); both groups are below.
    for stype in ["informational", "data_research"]:
        g = degenerate[stype]
        assert any(SMALL_N.search(w) for w in g["warnings"]), f"{stype} (n = {g['n']}, 14 indicators): no small-n warning: {g['warnings']}"
    for stype in ["benefits", "recreation"]:
        g = degenerate[stype]
        assert not any(SMALL_N.search(w) for w in g["warnings"]), f"{stype} (n = {g['n']}): unexpected warning {g['warnings']}"
    # Two indicators: max(30, 10 x 2) = 30: 25 rows are below it, 100 are not.
    two = {g["serviceType"]: g for g in query(degenerate_lake, {"g": ["SERVICE_TYPE"], "i": ["POSITIVE_EASE", "NEGATIVE_EASE"]})}
    finite_everywhere(list(two.values()))
    assert two["data_research"]["n"] == 25
    assert any(SMALL_N.search(w) for w in two["data_research"]["warnings"]), f"data_research n = 25: {two['data_research']['warnings']}"
    assert two["informational"]["n"] == 100
    assert not any(SMALL_N.search(w) for w in two["informational"]["warnings"]), two["informational"]["warnings"]


def test_group_without_taps_has_an_error_not_estimates(degenerate):
    g = degenerate.get("administrative")
    if g is not None:  # Likert v1 rows only: answered trust, shown no tap list
        assert g["n"] == 0 and g["error"], g
        assert g["nNotShown"] > 250, g
        assert all(c["estimate"] is None for c in g["coefficients"]), g


def test_likert_driver_importance_on_thumbs_says_why_and_points_to_tapped(degenerate_lake):
    q = """{ driverImportance(outcome: TRUST, groupBy: [SERVICE_TYPE], filter: {scale: [THUMBS]}) {
      serviceType n r2 error warnings drivers { driver shapley } } }"""
    proc = run_cxlake("query", "--lake", degenerate_lake, "-", "--min-cell", "0", "--min-cell-drivers", "0", input=q, check=False)
    resp = json.loads(proc.stdout, parse_constant=no_constants)
    assert "errors" not in resp, resp
    groups = {g["serviceType"]: g for g in resp["data"]["driverImportance"]}
    want = {"benefits", "recreation", "compliance", "regulatory", "informational", "data_research"}
    assert set(groups) == want, f"driverImportance on thumbs rows returned groups {sorted(groups)}, expected {sorted(want)} with a warning"
    for st, g in groups.items():
        text = " ".join(g["warnings"]).lower()
        assert "likert" in text and "tapped" in text, f"{st}: warnings {g['warnings']} should say there are no Likert driver answers and point to tappedDriverImportance"
        assert g["n"] == 0 and g["r2"] is None, g


# ---------------------------------------------------------------- bootstrap

def test_bootstrap_intervals_and_seed(tap_lake):
    """200 replicates on one group (each replicate refits the 127 subset models: a debug build
    takes about a minute), then the seed's effect on a three-topic model (7 subsets)."""
    one = {"g": ["SERVICE_TYPE"], "f": {"serviceType": ["COMPLIANCE"]}}
    boot = query(tap_lake, {**one, "b": 200, "s": 11})
    plain = query(tap_lake, one)
    three = {**one, "b": 200, "i": ["POSITIVE_EASE", "NEGATIVE_EASE", "POSITIVE_EFFECTIVENESS", "NEGATIVE_EFFECTIVENESS",
                                    "POSITIVE_EMPLOYEE", "NEGATIVE_EMPLOYEE"]}
    first = query(tap_lake, {**three, "s": 11})
    again = query(tap_lake, {**three, "s": 11})
    other = query(tap_lake, {**three, "s": 12})
    assert first == again, "the same seed gives identical output"
    assert [g["drivers"] for g in first] != [g["drivers"] for g in other], "another seed gives other intervals"
    assert len(boot) == len(plain) == len(first) == 1
    inside = total = 0
    for g, p in [(boot[0], plain[0]), (first[0], None)]:
        assert g["bootstrapReplicates"] == 200, g["bootstrapReplicates"]
        for j, d in enumerate(g["drivers"]):
            ctx = f"compliance {d['topic']} (bootstrap 200, {len(g['drivers'])} topics)"
            if p is not None:
                q = p["drivers"][j]
                assert d["topic"] == q["topic"] and abs(d["importance"] - q["importance"]) <= 1e-9 * max(1e-3, q["importance"]), \
                    f"{ctx}: the bootstrap changed the point estimate ({d['importance']} vs {q['importance']})"
                assert q["shareLow"] is None and q["importanceLow"] is None, f"{ctx}: intervals without bootstrap: {q}"
            for lo, hi in [("importanceLow", "importanceHigh"), ("shareLow", "shareHigh")]:
                assert d[lo] is not None and d[hi] is not None and d[lo] <= d[hi], f"{ctx}: {lo}/{hi} = {d[lo]}, {d[hi]}"
            assert 0 <= d["shareLow"] and d["shareHigh"] <= 1, f"{ctx}: {d}"
            total += 1
            inside += d["shareLow"] <= d["share"] <= d["shareHigh"]
    assert inside >= 0.8 * total, f"share inside its bootstrap interval for {inside} of {total} drivers"


# ---------------------------------------------------------------- planted truth

# FY2025 only: every designated collection has switched to the v2 form (staggered from FY2024Q2).
# 1.2M rows give >= 20k v2 responses for six of the seven service types (compliance, the
# smallest of them, ~21k); recreation's services are mostly not designated (~0.4% of rows are
# its v2 responses: 20k would need ~5M rows), so its order is not checked, its intervals are.
TRUTH_ROWS = 1_200_000


def test_planted_tap_effects_are_recovered(tmp_path):
    lake = tmp_path / "truth"
    run_cxlake("generate", "--out", lake, "--rows", TRUTH_ROWS, "--seed", 2025, "--fiscal-years", 1, "--first-fiscal-year", 2025)
    truth = json.loads((lake / "truth.json").read_text())
    assert "tapped" in truth, f"truth.json has no 'tapped' section (planted tap effects, issue 17); keys: {sorted(truth)}"
    planted = truth["tapped"].get("by_service_type", truth["tapped"])
    got = {g["serviceType"]: g for g in query(lake, {"g": ["SERVICE_TYPE"]})}
    assert set(got) == set(planted), f"service types {sorted(got)} vs truth {sorted(planted)}"
    big = {st for st, g in got.items() if g["n"] >= 20_000}
    assert len(big) >= len(planted) - 1, \
        f"only {sorted(big)} have >= 20k v2 responses at {TRUTH_ROWS} rows: {({st: g['n'] for st, g in got.items()})}"
    inside, total, misses = 0, 0, []
    for st, g in sorted(got.items()):
        t = planted[st]
        finite_everywhere(g)
        if st in big:
            # driver_order: the six drivers (and "other" when the truth ranks it too), largest first.
            order = [d["topic"].lower() for d in sorted(g["drivers"], key=lambda d: d["rank"]) if d["topic"].lower() in t["driver_order"]]
            assert order == t["driver_order"], f"{st} (n = {g['n']}): recovered driver order {order}, planted {t['driver_order']}"
        for ind, want in t["log_odds"].items():
            c = [x for x in g["coefficients"] if x["indicator"] == ind.upper()]
            total += 1
            if c and c[0]["low"] is not None and c[0]["low"] <= want <= c[0]["high"]:
                inside += 1
            else:
                misses.append((st, ind, want, (c[0]["low"], c[0]["high"]) if c else None))
    assert total == 14 * len(planted)
    assert inside >= 0.9 * total, f"planted log-odds inside the 95% interval in {inside} of {total}; misses: {misses}"

"""Issue 18: small cells recovered by differencing. A battery of differencing attacks, as the
public role, on the sample lake (data/sample): find cells that are suppressed (1 to 9 answers to
trust) by service and fiscal quarter, by month, by channel, by office, by scale and by their
combinations, and try to recover each one's answer distribution as the difference of two
unsuppressed queries (the agency minus its other services, a date range minus one ending a
month earlier, a service minus its other channels, offices or scale, ...). The true
distributions come from DuckDB over the lake's Parquet.

Two protections hold for the public role. Its counts are perturbed by the cell-key method, so
a difference is the cell's distribution plus the difference of two independent perturbations:
it equals the truth only by chance (probability 0.27 per bin holding the cell's answers under
the ptable), which the attacker cannot tell from the many times it does not. And it sees only
cells of the published grid (one fiscal quarter, one fiscal year or the whole lake; one value
of a dimension unless grouped by it), so the routes that take many distinct pairs (date ranges
from many starts, lists of other services) are refused, and averaging the few routes left does
not converge. The same queries with an analyst key recover every cell exactly (the battery has
teeth, and exact roles are exact); a public query gives the same numbers when repeated, by
another path and on another server with the same secret (consistency). And what the
perturbation costs the public's numbers, by cell size (the table of ARCHITECTURE.md).
"""
import datetime as dt
import hashlib
import json
import os
import urllib.request
from collections import Counter

import pytest

from conftest import BIN, ROOT, duck, run_cxlake, scan, start_server

SAMPLE = ROOT / "data" / "sample"
# A fixed secret (the server's --cell-key-secret), so the lake's own file is never created and
# the outcome is reproducible. Derived from a fixed phrase, chosen before the battery first ran.
SECRET = hashlib.blake2b(b"cxlake issue 18 differencing battery", digest_size=32).hexdigest()
MIN_CELL = 10
CELLS_PER_KIND = 6
LAKE_START = dt.date(2021, 10, 1)

CHANNELS = {"digital": "DIGITAL", "in_person": "IN_PERSON", "phone": "PHONE", "email": "EMAIL", "mail": "MAIL",
            "kiosk": "KIOSK", "chat": "CHAT"}
SCALES = {"likert5": "LIKERT_5", "thumbs": "THUMBS"}
FIELDS = "n nLikert nThumbs suppressed perturbed distribution { scale value count }"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server on the sample lake with keys: none (public), analyst, admin."""
    tmp = tmp_path_factory.mktemp("differencing")
    keys = tmp / "keys.json"
    made = {}
    for role in ("analyst", "admin"):
        made[role] = run_cxlake("keys", "--keys", keys, "add", "--name", role, "--role", role).stdout.strip()
    env = dict(os.environ, CXLAKE_CELL_KEY_SECRET=SECRET)
    proc, url = start_server("--lake", SAMPLE, "--keys", keys, "--rate-limit", 0, env=env)
    yield {"url": url, "keys": made, "env": env, "keys_file": keys}
    proc.terminate()
    proc.wait(timeout=30)


def ask(url, query, variables=None, key=None):
    """The data and errors of a GraphQL request (errors are answers here, not failures)."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(f"{url}/graphql", data=body, headers={"content-type": "application/json"})
    if key:
        req.add_header("authorization", f"Bearer {key}")
    with urllib.request.urlopen(req, timeout=120) as r:
        out = json.loads(r.read())
    return out.get("data"), out.get("errors") or []


def post(url, query, variables=None, key=None):
    data, errors = ask(url, query, variables, key)
    assert not errors, errors
    return data


def fiscal_year_bounds(day):
    start = dt.date(day.year - (day.month < 10), 10, 1)
    return start, dt.date(start.year + 1, 9, 30)


def on_grid(f):
    """The published grid as the issue's rule states it (an oracle written from the rule, not
    from the code): no dates, or exactly one fiscal quarter or one fiscal year; at most one
    value of each dimension (these filters group by nothing)."""
    if any(len(v) > 1 for k, v in f.items() if k not in ("from", "to")):
        return False
    if "from" not in f and "to" not in f:
        return True
    if "from" not in f or "to" not in f:
        return False
    day = f["from"]
    quarter = fiscal_quarter(day.year + (day.month >= 10), (day.month - 10) % 12 // 3 + 1)
    return (f["from"], f["to"]) in (quarter, fiscal_year_bounds(day))


def gql_filter(f):
    out = {}
    for k, v in f.items():
        if k == "channel":
            out[k] = [CHANNELS[c] for c in v]
        elif k == "scale":
            out[k] = [SCALES[s] for s in v]
        elif k in ("from", "to"):
            out[k] = v.isoformat()
        else:
            out[k] = list(v)
    return out


def score(url, f, key=None, refusable=False):
    """The overall trust score of the responses selected by filter `f`; with `refusable`, a
    refusal is an answer: {"refused": the argument named}."""
    data, errors = ask(url, f"query($f: ResponseFilter) {{ scores(filter: $f, measures: [TRUST]) {{ {FIELDS} }} }}",
                       {"f": gql_filter(f)}, key)
    if errors and refusable:
        assert len(errors) == 1 and errors[0]["extensions"]["code"] == "BAD_USER_INPUT", errors
        assert "public role" in errors[0]["message"], errors
        return {"refused": errors[0]["extensions"]["argument"]}
    assert not errors, (f, errors)
    rows = data["scores"]
    assert len(rows) <= 1, rows
    return rows[0] if rows else {"n": 0, "nLikert": 0, "nThumbs": 0, "suppressed": False, "perturbed": None, "distribution": []}


def distribution(row):
    lake = {v: k for k, v in SCALES.items()}
    return Counter({(lake[d["scale"]], d["value"]): d["count"] for d in row["distribution"]})


def difference(a, b):
    """A's distribution minus B's, zero bins dropped (negative differences kept)."""
    out = {k: distribution(a).get(k, 0) - distribution(b).get(k, 0) for k in set(distribution(a)) | set(distribution(b))}
    return {k: v for k, v in out.items() if v != 0}


def where(f):
    quote = lambda v: "'" + str(v).replace("'", "''") + "'"  # noqa: E731
    parts = []
    for k, col in (("agency", "agency"), ("bureau", "bureau"), ("service", "service_id"), ("channel", "channel"),
                   ("office", "office_id"), ("scale", "scale")):
        if k in f:
            parts.append(f"{col} IN ({', '.join(quote(v) for v in f[k])})")
    if "from" in f:
        parts.append(f"submitted_at >= TIMESTAMPTZ '{f['from']} 00:00:00+00'")
    if "to" in f:
        parts.append(f"submitted_at < TIMESTAMPTZ '{f['to'] + dt.timedelta(days=1)} 00:00:00+00'")
    return " AND ".join(parts) or "TRUE"


def lake_table():
    """DuckDB with the sample lake's responses (the columns the battery needs) in table `r`."""
    con = duck()
    con.execute(f"""CREATE TABLE r AS SELECT agency, bureau, service_id, channel, office_id, scale, submitted_at,
        fiscal_year, fiscal_quarter, trust FROM {scan(SAMPLE)}""")
    return con


def truth(con, f):
    """The true trust distribution of filter `f` (DuckDB over the lake's files)."""
    rows = con.execute(f"SELECT scale, trust, count(*) FROM r WHERE {where(f)} AND trust IS NOT NULL GROUP BY ALL").fetchall()
    return {(s, int(v)): c for s, v, c in rows}


def fiscal_quarter(year, quarter):
    """First and last day of a federal fiscal quarter (FY starts 1 October)."""
    start = dt.date(year - 1, 10, 1) if quarter == 1 else dt.date(year, 3 * quarter - 5, 1)
    nxt = dt.date(start.year + (start.month + 2) // 12, (start.month + 2) % 12 + 1, 1)
    return start, nxt - dt.timedelta(days=1)


def month_bounds(first):
    nxt = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, nxt - dt.timedelta(days=1)


def months_before(day, k):
    y, m = day.year, day.month - k
    while m < 1:
        y, m = y - 1, m + 12
    return dt.date(y, m, 1)


def battery(con):
    """Targets (kind, cell filter) and the differencing routes (A, B) of each, A ⊃ B and
    A minus B = the cell, both with at least the minimum of answers."""
    services = con.execute(f"SELECT service_id, any_value(agency), any_value(bureau) FROM r GROUP BY 1").fetchall()
    agency_of = {s: a for s, a, _ in services}
    bureau_of = {s: b for s, _, b in services}
    by_agency, by_bureau = {}, {}
    for s, a, b in sorted(services):
        by_agency.setdefault(a, []).append(s)
        by_bureau.setdefault(b, []).append(s)
    offices = {}
    for o, a in con.execute(f"SELECT DISTINCT office_id, agency FROM r WHERE office_id IS NOT NULL ORDER BY 1").fetchall():
        offices.setdefault(a, []).append(o)
    channels_of = {}
    for s, c in con.execute(f"SELECT DISTINCT service_id, channel FROM r ORDER BY 1, 2").fetchall():
        channels_of.setdefault(s, []).append(c)

    def small(sql):
        """Cells of 1 to 9 trust answers, smallest first (a fixed order)."""
        rows = con.execute(f"SELECT * FROM ({sql}) WHERE n BETWEEN 1 AND {MIN_CELL - 1}").fetchall()
        return sorted(rows, key=lambda r: (r[-1], r))

    def others(items, one):
        return [x for x in items if x != one]

    kinds = {}
    # Service and fiscal quarter: the agency (or bureau) minus its other services; the service
    # over a year to the quarter's end minus the year to the quarter's start.
    cells = []
    for s, fy, fq, _n in small(f"SELECT service_id, fiscal_year, fiscal_quarter, count(trust) n FROM r GROUP BY 1, 2, 3"):
        start, end = fiscal_quarter(fy, fq)
        q = {"from": start, "to": end}
        cell = {"service": [s], **q}
        a, b = agency_of[s], bureau_of[s]
        routes = [({"agency": [a], **q}, {"agency": [a], "service": others(by_agency[a], s), **q})]
        if len(by_bureau[b]) > 1:
            routes.append(({"bureau": [b], **q}, {"bureau": [b], "service": others(by_bureau[b], s), **q}))
        year_before = dt.date(start.year - 1, start.month, 1)
        routes.append(({"service": [s], "from": year_before, "to": end}, {"service": [s], "from": year_before, "to": start - dt.timedelta(days=1)}))
        cells.append((cell, routes))
    kinds["service-quarter"] = cells
    # Service and month: two date ranges ending a month apart (from two starts).
    cells = []
    for s, month, _n in small(f"SELECT service_id, date_trunc('month', submitted_at)::DATE m, count(trust) n FROM r GROUP BY 1, 2"):
        first, last = month_bounds(month)
        cell = {"service": [s], "from": first, "to": last}
        routes = [({"service": [s], "from": f, "to": last}, {"service": [s], "from": f, "to": first - dt.timedelta(days=1)})
                  for f in (LAKE_START, months_before(first, 6)) if f < first]
        cells.append((cell, routes))
    kinds["month"] = cells
    # Service and channel: the service minus its other channels; the agency's channel minus
    # the agency's other services on it.
    cells = []
    for s, c, _n in small(f"SELECT service_id, channel, count(trust) n FROM r GROUP BY 1, 2"):
        a = agency_of[s]
        cell = {"service": [s], "channel": [c]}
        routes = [({"service": [s]}, {"service": [s], "channel": others(channels_of[s], c)}),
                  ({"agency": [a], "channel": [c]}, {"agency": [a], "channel": [c], "service": others(by_agency[a], s)})]
        cells.append((cell, routes))
    kinds["channel"] = cells
    # Office and fiscal quarter: the agency's offices minus the others.
    cells = []
    for o, a, fy, fq, _n in small(f"SELECT office_id, agency, fiscal_year, fiscal_quarter, count(trust) n FROM r WHERE office_id IS NOT NULL GROUP BY 1, 2, 3, 4"):
        start, end = fiscal_quarter(fy, fq)
        q = {"from": start, "to": end}
        cell = {"office": [o], **q}
        routes = [({"agency": [a], "office": offices[a], **q}, {"agency": [a], "office": others(offices[a], o), **q})]
        cells.append((cell, routes))
    kinds["office-quarter"] = cells
    # Service and scale: the service minus its other scale (also within a fiscal year).
    cells = []
    for s, sc, _n in small(f"SELECT service_id, scale, count(trust) n FROM r GROUP BY 1, 2"):
        other = "likert5" if sc == "thumbs" else "thumbs"
        cell = {"service": [s], "scale": [sc]}
        routes = [({"service": [s]}, {"service": [s], "scale": [other]})]
        cells.append((cell, routes))
    kinds["scale"] = cells
    # Combinations: service x channel x quarter (the service's quarter minus its other
    # channels); service x channel x month (date ranges on the service's channel); service x
    # scale x quarter (the quarter minus the other scale).
    cells = []
    for s, c, fy, fq, _n in small(f"SELECT service_id, channel, fiscal_year, fiscal_quarter, count(trust) n FROM r GROUP BY 1, 2, 3, 4"):
        start, end = fiscal_quarter(fy, fq)
        q = {"from": start, "to": end}
        cell = {"service": [s], "channel": [c], **q}
        routes = [({"service": [s], **q}, {"service": [s], "channel": others(channels_of[s], c), **q})]
        cells.append((cell, routes))
    kinds["service-channel-quarter"] = cells
    cells = []
    for s, c, month, _n in small(f"SELECT service_id, channel, date_trunc('month', submitted_at)::DATE m, count(trust) n FROM r GROUP BY 1, 2, 3"):
        first, last = month_bounds(month)
        cell = {"service": [s], "channel": [c], "from": first, "to": last}
        routes = [({"service": [s], "channel": [c], "from": LAKE_START, "to": last},
                   {"service": [s], "channel": [c], "from": LAKE_START, "to": first - dt.timedelta(days=1)})]
        cells.append((cell, routes))
    kinds["service-channel-month"] = cells
    cells = []
    for s, sc, fy, fq, _n in small(f"SELECT service_id, scale, fiscal_year, fiscal_quarter, count(trust) n FROM r GROUP BY 1, 2, 3, 4"):
        start, end = fiscal_quarter(fy, fq)
        q = {"from": start, "to": end}
        other = "likert5" if sc == "thumbs" else "thumbs"
        cell = {"service": [s], "scale": [sc], **q}
        routes = [({"service": [s], **q}, {"service": [s], "scale": [other], **q})]
        cells.append((cell, routes))
    kinds["service-scale-quarter"] = cells

    # Keep, per kind, cells of as many sizes as there are (1 to 9 answers, round robin, the
    # smallest first) with a valid route: both sides at least the minimum (shown), and A minus
    # B exactly the cell (checked against DuckDB).
    out = []
    for kind, candidates in kinds.items():
        by_size = {}
        for cell, routes in candidates:
            want = truth(con, cell)
            by_size.setdefault(sum(want.values()), []).append((cell, want, routes))
        kept = []
        while len(kept) < CELLS_PER_KIND and any(by_size.values()):
            for size in sorted(by_size):
                while by_size[size] and len(kept) < CELLS_PER_KIND:
                    cell, want, routes = by_size[size].pop(0)
                    valid = []
                    for a, b in routes:
                        if any(v == [] for v in list(a.values()) + list(b.values())):
                            continue
                        ta, tb = truth(con, a), truth(con, b)
                        if sum(ta.values()) < MIN_CELL or sum(tb.values()) < MIN_CELL:
                            continue
                        diff = {k: ta.get(k, 0) - tb.get(k, 0) for k in set(ta) | set(tb)}
                        if {k: v for k, v in diff.items() if v} == want:
                            valid.append((a, b))
                    if valid:
                        kept.append((kind, cell, want, valid))
                        break
        out.extend(kept)
    return out


@pytest.fixture(scope="module")
def con():
    return lake_table()


@pytest.fixture(scope="module")
def attacks(con):
    found = battery(con)
    kinds = Counter(kind for kind, *_ in found)
    assert all(kinds[k] > 0 for k in ("service-quarter", "month", "channel", "office-quarter", "scale")), kinds
    return found


# Under the ptable (stats::cellkey) the difference of two perturbed counts of different records
# equals the true difference with probability sum(p^2) = 0.2746: the chance that an attacker's
# difference is exact in one bin holding the cell's answers, without any way to know it.
CHANCE = 0.383 ** 2 + 2 * 0.2447 ** 2 + 2 * 0.0638 ** 2


def test_differencing_recovers_no_suppressed_cell_for_the_public(server, attacks):
    url, analyst = server["url"], server["keys"]["analyst"]
    attempts, refused, exact_public, exact_analyst, errors, expected, variance = 0, Counter(), [], 0, [], 0.0, 0.0
    per_cell = []
    for kind, cell, want, routes in attacks:
        # The cell itself is suppressed for the public (with a perturbed n below the minimum),
        # or not a cell of the public's grid at all.
        direct = score(url, cell, refusable=True)
        assert ("refused" in direct) == (not on_grid(cell)), (kind, cell, direct)
        if "refused" not in direct:
            assert direct["suppressed"] and direct["perturbed"] and direct["distribution"] == [], (kind, cell, direct)
            assert direct["n"] < MIN_CELL, direct
        recovered = []
        for a, b in routes:
            attempts += 1
            pa, pb = score(url, a, refusable=True), score(url, b, refusable=True)
            # Exactly the selections off the grid are refused, naming the argument.
            for f, p in ((a, pa), (b, pb)):
                assert ("refused" in p) == (not on_grid(f)), (f, p)
                assert "refused" not in p or p["refused"].startswith("filter."), p
            if "refused" in pa or "refused" in pb:
                refused[kind] += 1
                recovered.append("refused")
            else:
                assert not pa["suppressed"] and not pb["suppressed"] and pa["perturbed"] and pb["perturbed"], (a, b)
                got = difference(pa, pb)
                recovered.append(got)
                if got == want:
                    exact_public.append((kind, cell, a, b, got))
                errors.extend(got.get(k, 0) - want.get(k, 0) for k in set(got) | set(want))
                chance = CHANCE ** len(want)
                expected += chance
                variance += chance * (1 - chance)
            # The same two queries with an analyst key: the cell, exactly.
            ea, eb = score(url, a, analyst), score(url, b, analyst)
            assert not ea["perturbed"] and not eb["perturbed"]
            assert difference(ea, eb) == want, (kind, cell, a, b, difference(ea, eb), want)
            assert ea["n"] - eb["n"] == sum(want.values())
            exact_analyst += 1
        per_cell.append((kind, cell, want, recovered))
    served = attempts - sum(refused.values())
    print(f"\n{len(attacks)} suppressed cells ({dict(Counter(k for k, *_ in attacks))}), {attempts} attempts: "
          f"{sum(refused.values())} refused to the public ({dict(refused)}); of the {served} served, "
          f"{len(exact_public)} differences equal to the truth (chance under the ptable: "
          f"{expected:.1f} +- {variance ** 0.5:.1f}); {exact_analyst} exact for an analyst; errors {sorted(Counter(errors).items())}")
    for kind, cell, want, recovered in per_cell:
        print(f"  {kind:24} true {dict(sorted(want.items()))}  public differences "
              f"{[r if r == 'refused' else dict(sorted(r.items())) for r in recovered]}")
    assert attempts >= 40, attempts
    # An analyst recovers every cell: the battery would succeed without the protections.
    assert exact_analyst == attempts
    # The routes of many distinct pairs are refused: date ranges a month apart, lists of the
    # other services, channels or offices.
    assert refused["month"] > 0 and refused["service-quarter"] > 0 and refused["office-quarter"] > 0
    # The public does not recover the rest: most differences are wrong, and the ones that
    # happen to be right are no more than the ptable's chance (the attacker cannot tell them
    # from the wrong ones).
    assert served >= 10, served
    assert len(exact_public) <= 0.4 * served, exact_public
    assert len(exact_public) <= expected + 3 * variance ** 0.5, (len(exact_public), expected, exact_public)
    # Each bin of a difference is off by at most 4 (two perturbations of at most 2).
    assert all(abs(e) <= 4 for e in errors)
    assert sum(1 for e in errors if e != 0) >= 0.5 * len(errors)


def test_public_counts_are_consistent_across_repeats_paths_and_servers(server, attacks):
    url = server["url"]
    cells = [(cell, a) for _, cell, _, routes in attacks for a, _ in routes if on_grid(cell) and on_grid(a)][:12]
    assert len(cells) >= 6, cells
    for cell, shown in cells:
        for f in (cell, shown):
            one = score(url, f)
            # The same question in other words (the result cache does not answer it).
            again = post(url, f"query($f: ResponseFilter) {{ again: scores(filter: $f, measures: [TRUST]) {{ {FIELDS} }} }}",
                         {"f": gql_filter(f)})["again"]
            assert again == ([one] if one["perturbed"] is not None else []), (f, one, again)
    # The same cells reached by another path: a service's quarter as a row of its agency's
    # services, of its trend, and as a benchmark entity.
    checked = 0
    for kind, cell, _, routes in attacks:
        if kind != "service-quarter":
            continue
        s, start, end = cell["service"][0], cell["from"], cell["to"]
        agency = routes[0][0]["agency"][0]
        year_start, year_end = fiscal_year_bounds(start)
        for f in (cell, {"service": [s], "from": year_start, "to": year_end}):
            direct = score(url, f)
            rows = post(url, f"query($f: ResponseFilter) {{ scores(filter: $f, groupBy: [SERVICE], measures: [TRUST]) {{ service {FIELDS} }} }}",
                        {"f": gql_filter({"agency": [agency], "from": f["from"], "to": f["to"]})})["scores"]
            row = next(r for r in rows if r["service"] == s)
            assert {k: row[k] for k in direct} == direct, (f, row, direct)
            bench = post(url, """query($f: ResponseFilter) { benchmark(level: SERVICE, peers: SAME_AGENCY, filter: $f) {
                entity n nLikert nThumbs suppressed perturbed } }""", {"f": gql_filter({"agency": [agency], "from": f["from"], "to": f["to"]})})["benchmark"]
            own = next(r for r in bench if r["entity"] == s)
            assert {k: own[k] for k in ("n", "nLikert", "nThumbs", "perturbed")} == {k: direct[k] for k in ("n", "nLikert", "nThumbs", "perturbed")}
            checked += 1
        trend = post(url, """query($f: ResponseFilter) { trends(filter: $f, period: FISCAL_QUARTER) { period n nLikert nThumbs suppressed perturbed } }""",
                     {"f": gql_filter({"service": [s]})})["trends"]
        label = f"FY{start.year + (start.month >= 10)}Q{(start.month - 10) % 12 // 3 + 1}"
        row = next(t for t in trend if t["period"] == label)
        direct = score(url, cell)
        assert {k: row[k] for k in ("n", "nLikert", "nThumbs", "suppressed", "perturbed")} == {k: direct[k] for k in ("n", "nLikert", "nThumbs", "suppressed", "perturbed")}
    assert checked >= 4
    # Another server with the same secret publishes the same numbers; one with another secret
    # other numbers.
    same, same_url = start_server("--lake", SAMPLE, "--keys", server["keys_file"], "--rate-limit", 0, env=server["env"])
    other_env = dict(server["env"], CXLAKE_CELL_KEY_SECRET="0" * 63 + "1")
    other, other_url = start_server("--lake", SAMPLE, "--keys", server["keys_file"], "--rate-limit", 0, env=other_env)
    try:
        differs = 0
        for _, shown in cells:
            here = score(url, shown)
            assert score(same_url, shown) == here
            differs += score(other_url, shown) != here
        assert differs > 0
    finally:
        for p in (same, other):
            p.terminate()
            p.wait(timeout=30)


def average_guess(diffs):
    """The attacker's guess from several differences: the mean of each bin, rounded."""
    bins = set().union(*diffs)
    mean = {k: sum(d.get(k, 0) for d in diffs) / len(diffs) for k in bins}
    return {k: round(v) for k, v in mean.items() if round(v) != 0}, mean


def test_averaging_many_date_ranges_is_refused(server, con):
    """The averaging attack that recovered cells under perturbation alone (2 of 5): a month of a
    service as the difference of two date ranges ending a month apart, from each of up to 36
    starts, averaged and rounded. Each pair is refused to the public; with an analyst key every
    pair gives the cell (the attack has teeth)."""
    url, analyst = server["url"], server["keys"]["analyst"]
    cells = con.execute(f"""SELECT service_id, date_trunc('month', submitted_at)::DATE m, count(trust) n FROM r
        WHERE submitted_at >= TIMESTAMPTZ '2024-10-01 00:00:00+00' GROUP BY 1, 2 HAVING n BETWEEN 1 AND {MIN_CELL - 1}
        ORDER BY n DESC, 1, 2""").fetchall()
    tried, pairs = 0, 0
    for s, first, _n in cells:
        if tried == 5:
            break
        _, last = month_bounds(first)
        want = truth(con, {"service": [s], "from": first, "to": last})
        routes = []
        for k in range(1, 37):
            start = months_before(first, k)
            b = {"service": [s], "from": start, "to": first - dt.timedelta(days=1)}
            if start >= LAKE_START and sum(truth(con, b).values()) >= MIN_CELL:
                routes.append(({"service": [s], "from": start, "to": last}, b))
        if len(routes) < 24:
            continue
        tried += 1
        for a, b in routes:
            pairs += 1
            pa, pb = score(url, a, refusable=True), score(url, b, refusable=True)
            assert "refused" in pa or "refused" in pb, (a, b, pa, pb)
            assert difference(score(url, a, analyst), score(url, b, analyst)) == want
    print(f"\n{pairs} date-range pairs on {tried} month cells: every one refused to the public, exact for an analyst")
    assert tried >= 3, tried


def test_averaging_every_route_the_grid_leaves(server, con):
    """The averaging attack on what the public may still select: a suppressed service-quarter
    as each cell of the grid containing it minus that cell's other parts (its fiscal year minus
    its other quarters, the lake minus its other quarters, its agency's and its bureau's quarter
    minus their other services), each route usable when none of the parts is suppressed, the
    usable routes averaged and rounded. The public recovers no cell; an analyst recovers every
    cell by every route (the attack has teeth)."""
    url, analyst = server["url"], server["keys"]["analyst"]
    cells = con.execute(f"""SELECT service_id, any_value(agency), any_value(bureau), fiscal_year, fiscal_quarter, count(trust) n
        FROM r GROUP BY service_id, fiscal_year, fiscal_quarter HAVING n BETWEEN 1 AND {MIN_CELL - 1} ORDER BY n DESC, 1, 4, 5""").fetchall()

    def rows(f, key, group_by=None, period=None):
        q = (f"query($f: ResponseFilter, $g: [GroupDimension!], $p: PeriodUnit) {{ scores(filter: $f, groupBy: $g, period: $p, "
             f"measures: [TRUST]) {{ service period {FIELDS} }} }}")
        return post(url, q, {"f": gql_filter(f), "g": group_by, "p": period}, key)["scores"]

    def routes(s, agency, bureau, fy, fq, key):
        """Each route's difference (the whole minus its other parts), or None where a part is
        suppressed (a suppressed cell has no distribution to subtract)."""
        start, end = fiscal_quarter(fy, fq)
        label = f"FY{fy}Q{fq}"
        year_start, year_end = fiscal_year_bounds(start)
        out = {}
        for name, whole, parts in (
            ("fiscal year", {"service": [s], "from": year_start, "to": year_end},
             [r for r in rows({"service": [s], "from": year_start, "to": year_end}, key, period="FISCAL_QUARTER") if r["period"] != label]),
            ("lake", {"service": [s]}, [r for r in rows({"service": [s]}, key, period="FISCAL_QUARTER") if r["period"] != label]),
            ("agency", {"agency": [agency], "from": start, "to": end},
             [r for r in rows({"agency": [agency], "from": start, "to": end}, key, group_by=["SERVICE"]) if r["service"] != s]),
            ("bureau", {"bureau": [bureau], "from": start, "to": end},
             [r for r in rows({"bureau": [bureau], "from": start, "to": end}, key, group_by=["SERVICE"]) if r["service"] != s]),
        ):
            total = score(url, whole, key)
            if total["suppressed"] or any(p["suppressed"] for p in parts):
                out[name] = None
                continue
            got = distribution(total)
            for p in parts:
                got.subtract(distribution(p))
            out[name] = {k: v for k, v in got.items() if v != 0}
        return out

    tried, recovered, bin_errors = 0, [], []
    for s, agency, bureau, fy, fq, _n in cells:
        if tried == 8:
            break
        start, end = fiscal_quarter(fy, fq)
        want = truth(con, {"service": [s], "from": start, "to": end})
        exact = routes(s, agency, bureau, fy, fq, analyst)
        usable = [k for k, v in exact.items() if v is not None]
        if not usable:
            continue
        tried += 1
        assert all(exact[k] == want for k in usable), (s, fy, fq, exact, want)
        public = routes(s, agency, bureau, fy, fq, None)
        assert [k for k, v in public.items() if v is not None] == usable, "suppression is decided on the true counts"
        guess, mean = average_guess([public[k] for k in usable])
        bin_errors.extend(abs(mean.get(k, 0) - want.get(k, 0)) for k in set(mean) | set(want))
        print(f"  {s} FY{fy}Q{fq}: true {dict(sorted(want.items()))}, routes {usable}, "
              f"mean {({k: round(v, 2) for k, v in sorted(mean.items())})}")
        if guess == want:
            recovered.append((s, fy, fq))
    print(f"averaging the grid's routes recovered {len(recovered)} of {tried} service-quarter cells; mean abs error per bin "
          f"{sum(bin_errors) / max(len(bin_errors), 1):.2f}")
    assert tried >= 3, tried
    assert recovered == [], recovered


SIZES = [(10, 19), (20, 49), (50, 99), (100, 499), (500, 10 ** 9)]


def test_what_the_perturbation_costs_the_public_numbers(server):
    """The published score of cells of each size, public against exact (the sample lake, every
    service by fiscal quarter and by fiscal year, trust): how far n, the mean and the agree share
    move. Printed as the table of ARCHITECTURE.md; bounded here."""
    url, analyst = server["url"], server["keys"]["analyst"]
    q = "query($p: PeriodUnit) { scores(groupBy: [SERVICE], period: $p, measures: [TRUST]) { service period n mean agreeShare suppressed } }"
    deltas = {s: [] for s in SIZES}
    for period in ("FISCAL_QUARTER", "FISCAL_YEAR"):
        public = post(url, q, {"p": period})["scores"]
        exact = post(url, q, {"p": period}, analyst)["scores"]
        assert len(public) == len(exact)
        for p, e in zip(public, exact):
            assert (p["service"], p["period"]) == (e["service"], e["period"])
            if e["suppressed"]:
                continue
            size = next(s for s in SIZES if s[0] <= e["n"] <= s[1])
            dm = abs(p["mean"] - e["mean"]) if p["mean"] is not None and e["mean"] is not None else None
            deltas[size].append((abs(p["n"] - e["n"]), dm, abs(p["agreeShare"] - e["agreeShare"]) * 100))
    print("\n| cell size n | cells | mean abs change of n | of the mean (1-5) | of the agree share (points) | 95th percentile (points) |")
    print("|---|---|---|---|---|---|")
    for (lo, hi), rows in deltas.items():
        if not rows:
            continue
        dn = sum(r[0] for r in rows) / len(rows)
        means = [r[1] for r in rows if r[1] is not None]
        dmean = sum(means) / len(means) if means else float("nan")
        agree = sorted(r[2] for r in rows)
        p95 = agree[int(0.95 * (len(agree) - 1))]
        label = f"{lo}-{hi}" if hi < 10 ** 9 else f"{lo}+"
        print(f"| {label} | {len(rows)} | {dn:.2f} | {dmean:.3f} | {sum(agree) / len(agree):.2f} | {p95:.2f} |")
        # Bounded by the perturbation: every count moves at most 2, so a share of a cell of n
        # moves by about 2 * sqrt(bins) / n at most.
        assert sum(agree) / len(agree) <= 100 * 3.0 / lo, (lo, sum(agree) / len(agree))
        assert dn <= 1.2

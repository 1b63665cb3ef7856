"""Issue 21: rollups of sufficient statistics. A query a rollup covers is served from it (the
`x-cxlake-served` header and `/metrics` say so) with the answer raw rows give; a writer killed
with SIGKILL between its data commit and its rollup commit, or in the middle of either, leaves
rollups that agree exactly with the raw rows of the files they sum (checked for every data file
by DuckDB, an outside reader of both tables), answers that stay those of raw rows, and nothing
`cxlake rollup build` cannot complete. Fixed seeds, bounded time."""
import json
import random
import shutil
import signal
import subprocess
import time
import urllib.request

from deltalake import DeltaTable

from conftest import BIN, copy_dimensions, duck, graphql, live_files, run_cxlake, scan, start_server, RawRows

MEASURES = ["trust", "satisfaction", "effectiveness", "ease", "efficiency", "transparency", "humanity", "employee"]
# TapIndicator::all(): every topic's "went well" indicator, then every topic's "didn't go well".
TOPICS = ["effectiveness", "ease", "efficiency", "transparency", "humanity", "employee", "other"]
TAPS = [f"positive_{t}" for t in TOPICS] + [f"negative_{t}" for t in TOPICS]
SERVICE = ["bureau", "service_id", "service_type", "channel", "stage", "scale"]
PLACE = ["office_id", "region", "service_type", "channel", "scale"]


def bins():
    """(measure, value) of every bin a rollup sums."""
    return [(m, v) for m in MEASURES for v in (range(0, 6) if m in ("trust", "satisfaction") else range(1, 6))]


def bin_sums():
    """(column, DuckDB sum over the raw rows, exact) of every bin."""
    out = []
    for m, v in bins():
        out += [(f"{m}__{v}__n", f"count(*) FILTER (WHERE {m} = {v})", True),
                (f"{m}__{v}__w", f"coalesce(sum(weight) FILTER (WHERE {m} = {v}), 0)", False),
                (f"{m}__{v}__w2", f"coalesce(sum(weight * weight) FILTER (WHERE {m} = {v}), 0)", False)]
    return out


def moment_sums():
    """(column, DuckDB sum, exact) of every moment: answers shifted by 3, a missing one 0."""
    x = {m: f"coalesce({m} - 3, 0)" for m in MEASURES}
    out = [("sum_w", "sum(weight)", False), ("sum_w2", "sum(weight * weight)", False)]
    for m in MEASURES:
        out += [(f"{m}__x", f"sum({x[m]})", False), (f"{m}__wx", f"sum(weight * {x[m]})", False),
                (f"{m}__agree", f"count(*) FILTER (WHERE {m} >= 4)", True),
                (f"{m}__wagree", f"coalesce(sum(weight) FILTER (WHERE {m} >= 4), 0)", False)]
    for i, a in enumerate(MEASURES):
        for b in MEASURES[i:]:
            out += [(f"{a}__{b}__xx", f"sum({x[a]} * {x[b]})", False), (f"{a}__{b}__wxx", f"sum(weight * {x[a]} * {x[b]})", False)]
    return out


def bits(expr):
    return " + ".join(f"CASE WHEN {expr(c)} THEN {1 << j} ELSE 0 END" for j, c in enumerate(TAPS))


PATTERN = " + ".join(f"CASE WHEN {m} IS NOT NULL THEN {1 << i} ELSE 0 END" for i, m in enumerate(MEASURES))
TAP_KEYS = {"trust": "trust", "satisfaction": "satisfaction", "shown": bits(lambda c: f"{c} IS NOT NULL"), "tapped": bits(lambda c: f"coalesce({c}, false)")}
TAP_ROWS = "trust IS NOT NULL OR satisfaction IS NOT NULL OR " + " OR ".join(f"{c} IS NOT NULL" for c in TAPS)
WEIGHTS = [("sum_w", "sum(weight)", False), ("sum_w2", "sum(weight * weight)", False)]

# Each rollup: its group keys beside the partition (name -> DuckDB expression over the raw rows),
# the UTC day or month of submitted_at, the raw rows it sums, and its sum columns.
SPECS = {
    "service_month": ({k: k for k in SERVICE}, "%Y-%m-01", "true", bin_sums()),
    "place_month": ({k: k for k in PLACE}, "%Y-%m-01", "true", bin_sums()),
    "service_day": ({k: k for k in SERVICE}, "%Y-%m-%d", "true", bin_sums()),
    "drivers_service_month": ({**{k: k for k in SERVICE if k != "stage"}, "pattern": PATTERN}, "%Y-%m-01", "true", moment_sums()),
    "taps_service_month": ({**{k: k for k in SERVICE}, **TAP_KEYS}, "%Y-%m-01", TAP_ROWS, WEIGHTS),
    "taps_place_month": ({**{k: k for k in PLACE}, **TAP_KEYS}, "%Y-%m-01", TAP_ROWS, WEIGHTS),
}
KINDS = list(SPECS)


def rollup_vs_raw(lake):
    """For every live data file of the responses whose rollup is live in a rollup table, the
    rollup's rows equal DuckDB's own group-by of the file's raw rows: the same groups (file,
    keys, UTC day or month), the same row count and counts exactly, the same sums of weights,
    squared weights and products of answers to 1e-12. Returns (data files, data files without a
    rollup, rollups of files no longer live), summed over the rollups."""
    data = set(live_files(lake))
    if not data:
        return 0, 0, 0
    missing = stale = 0
    for kind, (keys, day, rows, sums) in SPECS.items():
        table = lake / "rollups" / kind
        if not (table / "_delta_log").exists():
            missing += len(data)
            continue
        covered = {r: r.replace(f"/rollups/{kind}/", "/responses/") for r in DeltaTable(str(table)).file_uris()}
        stale += sum(1 for d in covered.values() if d not in data)
        missing += len(data - set(covered.values()))
        live = {r: d for r, d in covered.items() if d in data}
        if not live:
            continue
        raw_keys = ", ".join(f"coalesce(CAST({e} AS VARCHAR), '<null>') AS {k}" for k, e in keys.items())
        roll_keys = ", ".join(f"coalesce(CAST({k} AS VARCHAR), '<null>') AS {k}" for k in keys)
        raw_files = ", ".join(f"'{d}'" for d in sorted(live.values()))
        roll_files = ", ".join(f"'{r}'" for r in sorted(live))
        columns = [("rows", "count(*)", True)] + sums
        when = " OR ".join(f"a.{c} <> b.{c}" if exact else f"abs(a.{c} - b.{c}) > 1e-12 * greatest(1, abs(b.{c}))" for c, _, exact in columns)
        join = " AND ".join(f"a.{k} = b.{k}" for k in ["f", "t", *keys])
        sums_sql = ", ".join(f"{e} AS {c}" for c, e, _ in columns)
        unmatched, differing, groups = duck().execute(f"""
            WITH a AS (
              SELECT filename AS f, strftime(submitted_at AT TIME ZONE 'UTC', '{day}') AS t, {raw_keys}, {sums_sql}
              FROM read_parquet([{raw_files}], filename = true, hive_partitioning = false) WHERE {rows} GROUP BY ALL),
            b AS (
              SELECT replace(filename, '/rollups/{kind}/', '/responses/') AS f, strftime(submitted_at AT TIME ZONE 'UTC', '%Y-%m-%d') AS t,
                     {roll_keys}, {", ".join(c for c, _, _ in columns)}
              FROM read_parquet([{roll_files}], filename = true, hive_partitioning = false))
            SELECT count(*) FILTER (WHERE a.f IS NULL OR b.f IS NULL),
                   count(*) FILTER (WHERE a.f IS NOT NULL AND b.f IS NOT NULL AND ({when})),
                   count(*)
            FROM a FULL OUTER JOIN b ON {join}""").fetchone()
        assert (unmatched, differing) == (0, 0), f"{kind}: of {groups} groups, {unmatched} in one side only, {differing} with other sums"
    return len(data), missing, stale


QUERIES = [
    "{ scores(groupBy: [AGENCY], period: FISCAL_QUARTER, measures: [TRUST, EASE], weighted: true) { agency period measure n mean sd agreeShare } }",
    "{ scores(filter: { from: \"2025-01-10\", to: \"2025-08-20\" }, groupBy: [SERVICE], period: MONTH) { service period measure n mean } }",
    "{ scores(groupBy: [OFFICE], period: FISCAL_YEAR, measures: [TRUST]) { office period n mean agreeShare } }",
    "{ scores(groupBy: [CHANNEL], period: WEEK, measures: [SATISFACTION]) { channel period n mean } }",
]


def same_answers(lake):
    """Every query answers the same with rollups and from raw rows only (small cells
    suppressed alike)."""
    for q in QUERIES:
        proc = run_cxlake("query", "--lake", lake, "-", input=q, check=False)
        assert proc.returncode == 0, proc.stderr
        a, b = json.loads(proc.stdout), graphql(RawRows(lake), q, suppress=True)
        assert "errors" not in a, a
        key = lambda r: json.dumps({k: v for k, v in r.items() if k not in ("mean", "sd", "agreeShare")}, sort_keys=True)  # noqa: E731
        ra, rb = sorted(a["data"]["scores"], key=key), sorted(b["data"]["scores"], key=key)
        assert len(ra) == len(rb), q
        for x, y in zip(ra, rb):
            assert key(x) == key(y), (q, x, y)
            for f in ("mean", "sd", "agreeShare"):
                if f in x:
                    assert (x[f] is None) == (y[f] is None) and (x[f] is None or abs(x[f] - y[f]) <= 1e-12 * max(1, abs(y[f]))), (q, f, x, y)


def test_served_from_rollups_as_headers_and_metrics_say(oracle_lake):
    proc, url = start_server("--lake", oracle_lake, "--min-cell", 0, "--min-cell-drivers", 0)
    try:
        def post(query):
            req = urllib.request.Request(f"{url}/graphql", data=json.dumps({"query": query}).encode(), headers={"content-type": "application/json"})
            with urllib.request.urlopen(req, timeout=60) as resp:
                return dict(resp.headers), json.loads(resp.read())
        headers, body = post(QUERIES[0])
        assert "errors" not in body, body
        assert headers["x-cxlake-served"] == "rollup" and headers["x-cxlake-rollups"] == "service_month", headers
        assert headers["x-cxlake-raw-files"] == "0" and int(headers["x-cxlake-rollup-rows"]) > 0
        # The oracle: DuckDB over the raw rows.
        want = dict(((a, f"FY{y}Q{q}"), n) for a, y, q, n in duck().execute(
            f"SELECT agency, fiscal_year, fiscal_quarter, count(trust) FROM {scan(oracle_lake)} GROUP BY ALL").fetchall())
        got = {(r["agency"], r["period"]): r["n"] for r in body["data"]["scores"] if r["measure"] == "TRUST"}
        assert got == want
        # A range cutting months: whole months from the monthly rollup, the edges from the daily.
        headers, _ = post(QUERIES[1])
        assert headers["x-cxlake-served"] == "rollup" and headers["x-cxlake-rollups"] == "service_month,service_day", headers
        # Office by service has no rollup: raw rows.
        headers, _ = post("{ scores(groupBy: [OFFICE, SERVICE]) { office service n } }")
        assert headers["x-cxlake-served"] == "raw" and headers["x-cxlake-rollup-rows"] == "0", headers
        # Driver importance by service type and fiscal year from the moments rollup, as raw rows
        # answer it.
        drivers = "{ driverImportance(groupBy: [SERVICE_TYPE], period: FISCAL_YEAR, weighted: true) { serviceType period n nDropped r2 drivers { driver shapley performance } } }"
        headers, body = post(drivers)
        assert "errors" not in body and body["data"]["driverImportance"], body
        assert headers["x-cxlake-served"] == "rollup" and headers["x-cxlake-rollups"] == "drivers_service_month", headers
        raw = graphql(RawRows(oracle_lake), drivers)["data"]["driverImportance"]
        assert len(raw) == len(body["data"]["driverImportance"])
        for g, h in zip(body["data"]["driverImportance"], raw):
            assert (g["serviceType"], g["period"], g["n"], g["nDropped"]) == (h["serviceType"], h["period"], h["n"], h["nDropped"])
            assert (g["r2"] is None) == (h["r2"] is None) and (g["r2"] is None or abs(g["r2"] - h["r2"]) <= 1e-12), (g, h)
            for d, e in zip(g["drivers"], h["drivers"]):
                assert d["driver"] == e["driver"], (d, e)
                for f in ("shapley", "performance"):
                    assert (d[f] is None) == (e[f] is None) and (d[f] is None or abs(d[f] - e[f]) <= 1e-12), (f, d, e)
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:
            metrics = resp.read().decode()
        assert 'cxlake_score_computations_total{path="rollup"} 3' in metrics, metrics
        assert 'cxlake_score_computations_total{path="raw"} 1' in metrics, metrics
    finally:
        proc.terminate()
        proc.wait()
    proc, url = start_server("--lake", RawRows(oracle_lake))
    try:
        req = urllib.request.Request(f"{url}/graphql", data=json.dumps({"query": QUERIES[0]}).encode(), headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            assert resp.headers["x-cxlake-served"] == "raw"
    finally:
        proc.terminate()
        proc.wait()


KILLS = 8


def test_kill_9_between_and_during_data_and_rollup_commits(tmp_path):
    started = time.time()
    rng = random.Random(2121)
    source = tmp_path / "source"
    run_cxlake("generate", "--out", source, "--rows", 60000, "--seed", 21, "--fiscal-years", 1, "--first-fiscal-year", 2025)
    export = tmp_path / "all.csv"
    duck().execute(f"COPY (SELECT * EXCLUDE (fiscal_year, fiscal_quarter) FROM {scan(source)}) TO '{export}' (HEADER)")

    # When the data commit lands in a whole run, and when the run ends (rollups committed).
    timed = tmp_path / "timed"
    copy_dimensions(source, timed)
    t = time.time()
    proc = subprocess.Popen([str(BIN), "ingest", "--lake", str(timed), str(export)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Version 0 creates the empty table; version 1 is the ingest's data commit.
    first_commit = timed / "responses" / "_delta_log" / "00000000000000000001.json"
    while proc.poll() is None and not first_commit.exists():
        time.sleep(0.005)
    committed_at = time.time() - t
    assert proc.wait() == 0
    ended_at = time.time() - t
    assert rollup_vs_raw(timed)[1:] == (0, 0), "a whole run leaves every file with its rollups"

    lake = tmp_path / "lake"
    copy_dimensions(source, lake)
    between = during = 0
    for i in range(KILLS):
        # Half the kills while the data is written, half after its commit (maintaining rollups).
        at = rng.uniform(0.05, 1.0) * committed_at if i % 2 == 0 else rng.uniform(committed_at, ended_at)
        proc = subprocess.Popen([str(BIN), "ingest", "--lake", str(lake), str(export)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(at)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not (lake / "responses" / "_delta_log" / "00000000000000000001.json").exists():
            during += 1
            continue  # killed before the data commit: nothing new to read
        files, missing, stale = rollup_vs_raw(lake)
        assert stale == 0
        between += missing > 0
        same_answers(lake)
        # Start again, so every kill meets a run in progress.
        shutil.rmtree(lake)
        copy_dimensions(source, lake)
    assert between >= 2, f"only {between} kills landed between the data commit and the rollups"
    print(f"ingest of 60k rows: data commit at {committed_at:.2f} s, rollups by {ended_at:.2f} s; "
          f"{KILLS} SIGKILLs: {during} before the data commit, {between} between it and the rollups; rollups agreed with raw rows each time")

    # A kill after the data commit, then the build completes what the writer left.
    proc = subprocess.Popen([str(BIN), "ingest", "--lake", str(lake), str(export)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and not (lake / "responses" / "_delta_log" / "00000000000000000001.json").exists():
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_cxlake("rollup", "build", "--lake", lake)
    files, missing, stale = rollup_vs_raw(lake)
    assert files > 0 and (missing, stale) == (0, 0)
    same_answers(lake)
    again = run_cxlake("rollup", "build", "--lake", lake).stdout
    assert "added 0 files" in again and "removed 0" in again, again

    # Compaction killed in its data commit or its rollups: the rollups of the live files stay
    # right, the replaced files' are dropped by the next build.
    for i in range(4):
        part = tmp_path / f"more{i}.csv"
        duck().execute(f"COPY (SELECT * EXCLUDE (fiscal_year, fiscal_quarter) FROM {scan(source)} WHERE hash(response_id) % 50 = {i}) "
                       f"TO '{part}' (HEADER)")
        small = tmp_path / "small"
        if i == 0:
            copy_dimensions(source, small)
        run_cxlake("ingest", "--lake", small, part)
    pristine = tmp_path / "pristine"
    shutil.copytree(small, pristine)
    t = time.time()
    run_cxlake("compact", "--lake", small)
    compact_duration = time.time() - t
    for i in range(4):
        shutil.rmtree(small)
        shutil.copytree(pristine, small)
        proc = subprocess.Popen([str(BIN), "compact", "--lake", str(small)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.0) * compact_duration)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        rollup_vs_raw(small)
        same_answers(small)
        run_cxlake("rollup", "build", "--lake", small)
        assert rollup_vs_raw(small)[1:] == (0, 0)
    assert time.time() - started < 600

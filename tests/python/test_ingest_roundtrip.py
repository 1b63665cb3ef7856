"""Round trip through ingestion: a generated lake is written out by DuckDB (an independent
writer) as CSV, JSON lines, Parquet (one file, and hive-partitioned by agency) and as Touchpoints
A-11 v2 and v1 exports with sidecar mappings; each is ingested into a fresh lake, which must hold
exactly the same rows (DuckDB EXCEPT ALL both ways) and answer queries identically."""
import json

import pytest

from conftest import duck as con, graphql, run_cxlake, scan, copy_dimensions

SCORES = """{ scores(groupBy: [AGENCY, SERVICE, CHANNEL], period: FISCAL_QUARTER, weighted: true) {
  agency service channel period measure n mean sd agreeShare agreeLow agreeHigh nEffective } }"""
DRIVERS = """{ driverImportance(groupBy: [SERVICE_TYPE], outcome: TRUST) { serviceType n r2 drivers { driver shapley beta } } }"""


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    out = tmp_path_factory.mktemp("rt") / "original"
    run_cxlake("generate", "--out", out, "--rows", 30000, "--seed", 5, "--fiscal-years", 2, "--first-fiscal-year", 2024)
    return out


def same(a, b, path="$"):
    """Equal JSON, floats to 1e-9 relative (rows arrive in another order, so sums round
    differently in the last bits)."""
    if isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


def same_bag(c, want, got):
    """The two queries return the same rows, with multiplicity; returns how many."""
    for x, y in [(want, got), (got, want)]:
        diff = c.execute(f"SELECT count(*) FROM ({x} EXCEPT ALL {y})").fetchone()[0]
        assert diff == 0, f"{diff} rows of ({x}) are not in ({y})"
    n = c.execute(f"SELECT count(*) FROM ({want})").fetchone()[0]
    assert n == c.execute(f"SELECT count(*) FROM ({got})").fetchone()[0]
    return n


def assert_same_rows(a, b):
    return same_bag(con(), f"SELECT * FROM {scan(a)}", f"SELECT * FROM {scan(b)}")


def ingest(lake, *files, extra=()):
    proc = run_cxlake("ingest", "--lake", lake, "--json", *extra, *files)
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet", "hive"])
def test_lake_formats_round_trip(original, tmp_path, fmt):
    c = con()
    src = scan(original)
    target = tmp_path / "export"
    if fmt == "csv":
        c.execute(f"COPY (SELECT * EXCLUDE (fiscal_year, fiscal_quarter) FROM {src}) TO '{target}.csv' (HEADER)")
        files = [f"{target}.csv"]
    elif fmt == "jsonl":
        c.execute(f"COPY (SELECT * FROM {src}) TO '{target}.jsonl' (FORMAT json)")
        files = [f"{target}.jsonl"]
    elif fmt == "parquet":
        c.execute(f"COPY (SELECT * FROM {src}) TO '{target}.parquet' (FORMAT parquet)")
        files = [f"{target}.parquet"]
    else:
        c.execute(f"COPY (SELECT * EXCLUDE (fiscal_year, fiscal_quarter) FROM {src}) TO '{target}' (FORMAT parquet, PARTITION_BY (agency))")
        files = sorted(str(p) for p in target.rglob("*.parquet"))
    lake = tmp_path / "lake"
    summaries = ingest(lake, *files)
    assert sum(s["rows_quarantined"] for s in summaries) == 0, summaries
    n = assert_same_rows(original, lake)
    assert sum(s["rows_stored"] for s in summaries) == n == 30000
    # Identical answers (dimension tables are not part of an export: the original's are copied).
    copy_dimensions(original, lake)
    for q in [SCORES, DRIVERS]:
        got, want = graphql(lake, q), graphql(original, q)
        assert "errors" not in want and len(want["data"]) == 1
        same(got, want)
    # Idempotent: the same files again store nothing.
    again = ingest(lake, *files)
    assert all(s["already_ingested"] for s in again)
    assert_same_rows(original, lake)


TP_TAPS = [f"{s}_{t}" for s in ["positive", "negative"] for t in ["effectiveness", "ease", "efficiency", "transparency", "humanity", "employee", "other"]]


# The generated lake's forms (a collection moves from the first to the second from FY2024 Q2):
# the A-11 2022 Likert design has no taps, the Touchpoints A-11 v2 form (thumbs) always has them.
FORM = {"likert5": "scale = 'likert5' AND positive_ease IS NULL", "thumbs": "scale = 'thumbs'"}


def collections(c, original, scale):
    """The collections with responses on the form of `scale`, largest first."""
    return c.execute(
        f"""SELECT collection_id, agency, bureau, service_id, channel FROM {scan(original)}
            WHERE {FORM[scale]} GROUP BY ALL ORDER BY count(*) DESC, 1"""
    ).fetchall()


def sidecar(path, coll, agency, bureau, service, channel, scale, questions, service_type=None):
    lines = [f'service_type = "{service_type}"'] if service_type else []
    lines += [f'agency = "{agency}"', f'bureau = "{bureau}"', f'service_id = "{service}"', f'channel = "{channel}"',
             f'collection_id = "{coll}"', f'scale = "{scale}"', "[questions]"]
    lines += [f'{k} = "{v}"' for k, v in questions.items()]
    path.write_text("\n".join(lines) + "\n")


def test_touchpoints_v2_round_trip(original, tmp_path):
    """Thumbs collections exported as Touchpoints v2 (question_1 = trust, the 14 taps, question_4 =
    free text, created_at), one sidecar per collection."""
    c = con()
    lake = tmp_path / "lake"
    # The new lake gets the original's inventory, so the service type comes from it.
    copy_dimensions(original, lake)
    colls = collections(c, original, "thumbs")
    assert len(colls) >= 2
    for i, (coll, agency, bureau, service, channel) in enumerate(colls):
        csv = tmp_path / f"tp{i}.csv"
        taps = ", ".join(f"CASE WHEN {t} THEN 'true' ELSE 'false' END AS {t}" for t in TP_TAPS)
        c.execute(
            f"""COPY (SELECT response_id AS external_id, trust AS question_1, {taps}, free_text_1 AS question_4,
                       strftime(submitted_at, '%Y-%m-%dT%H:%M:%S.%fZ') AS created_at
                FROM {scan(original)} WHERE collection_id = '{coll}' AND {FORM["thumbs"]}) TO '{csv}' (HEADER)"""
        )
        mapping = tmp_path / f"tp{i}.toml"
        sidecar(mapping, coll, agency, bureau, service, channel, "thumbs", {"question_1": "trust"})
        summaries = ingest(lake, csv, extra=["--format", "touchpoints-v2", "--mapping", mapping])
        # Rows answering nothing once satisfaction is not exported are quarantined, nothing else.
        for s in summaries:
            assert set(s["quarantined_by_column"]) <= {"trust"}, s
    cols = "response_id, submitted_at, agency, bureau, service_id, channel, collection_id, scale, trust, " + ", ".join(TP_TAPS) + ", free_text_1"
    answered = "(trust IS NOT NULL OR " + " OR ".join(TP_TAPS) + ")"
    assert same_bag(c, f"SELECT {cols} FROM {scan(original)} WHERE scale = 'thumbs' AND {answered}", f"SELECT {cols} FROM {scan(lake)}") > 1000


def test_touchpoints_v1_round_trip(original, tmp_path):
    """Likert collections exported in the v1 layout: question_1..question_8 mapped explicitly."""
    c = con()
    lake = tmp_path / "lake"
    questions = {"question_1": "satisfaction", "question_2": "trust", "question_3": "effectiveness", "question_4": "ease",
                 "question_5": "efficiency", "question_6": "transparency", "question_7": "humanity", "question_8": "employee"}
    colls = collections(c, original, "likert5")[:12]
    types = dict(c.execute(f"SELECT DISTINCT service_id, service_type FROM {scan(original)}").fetchall())
    for i, (coll, agency, bureau, service, channel) in enumerate(colls):
        csv = tmp_path / f"v1-{i}.csv"
        qs = ", ".join(f"{v} AS {k}" for k, v in questions.items())
        c.execute(
            f"""COPY (SELECT response_id AS external_id, {qs}, strftime(submitted_at, '%Y-%m-%d %H:%M:%S.%f') AS created_at
                FROM {scan(original)} WHERE collection_id = '{coll}' AND {FORM["likert5"]}) TO '{csv}' (HEADER)"""
        )
        mapping = tmp_path / f"v1-{i}.toml"
        sidecar(mapping, coll, agency, bureau, service, channel, "likert5", questions, types[service])
        summaries = ingest(lake, csv, extra=["--format", "touchpoints-v1", "--mapping", mapping])
        assert all(s["rows_quarantined"] == 0 for s in summaries), summaries
    cols = "response_id, submitted_at, agency, bureau, service_id, service_type, channel, collection_id, scale, " + ", ".join(questions.values())
    chosen = ", ".join(f"'{x[0]}'" for x in colls)
    assert same_bag(c, f"SELECT {cols} FROM {scan(original)} WHERE collection_id IN ({chosen}) AND {FORM['likert5']}", f"SELECT {cols} FROM {scan(lake)}") > 1000


def test_touchpoints_without_mapping_is_a_clear_error(original, tmp_path):
    csv = tmp_path / "tp.csv"
    csv.write_text("external_id,question_1," + ",".join(TP_TAPS) + ",question_4\nx,1" + ",false" * 14 + ",\n")
    proc = run_cxlake("ingest", "--lake", tmp_path / "lake", "--format", "touchpoints-v2", csv, check=False)
    assert proc.returncode != 0
    assert "missing: agency, bureau, service_id, channel, collection_id, scale" in proc.stderr
    proc = run_cxlake("ingest", "--lake", tmp_path / "lake", "--format", "touchpoints-v2", "--agency", "VA", "--bureau", "VA-VBA",
                      "--service-id", "VA-S01", "--service-type", "benefits", "--channel", "digital", "--collection-id", "c",
                      "--scale", "thumbs", csv, check=False)
    assert "questions.question_1" in proc.stderr


def export_v2(c, original, coll, csv, repeat=1):
    """One collection as a Touchpoints v2 export; `repeat` > 1 repeats every row (as re-exports do)."""
    taps = ", ".join(f"CASE WHEN {t} THEN 'true' ELSE 'false' END AS {t}" for t in TP_TAPS)
    rows = f"""SELECT response_id AS external_id, trust AS question_1, {taps}, free_text_1 AS question_4,
                      strftime(submitted_at, '%Y-%m-%dT%H:%M:%S.%fZ') AS created_at
               FROM {scan(original)} WHERE collection_id = '{coll}' AND {FORM["thumbs"]}"""
    union = " UNION ALL ".join([f"({rows})"] * repeat)
    c.execute(f"COPY ({union} ORDER BY external_id) TO '{csv}' (HEADER)")


def lake_state(lake):
    """What a run may change: the files under the lake (data, quarantine, digests, commits)."""
    return sorted(str(p.relative_to(lake)) for p in lake.rglob("*") if p.is_file() and "_staging" not in p.parts)


def test_a_failed_touchpoints_run_does_not_block_the_corrected_retry(original, tmp_path):
    """The issue's trap: a sidecar saying scale = "likert" used to quarantine every row, record
    the file's digest, and make the corrected retry print "already ingested"."""
    c = con()
    lake = tmp_path / "lake"
    (coll, agency, bureau, service, channel) = collections(c, original, "thumbs")[0]
    service_type = c.execute(f"SELECT any_value(service_type) FROM {scan(original)} WHERE service_id = '{service}'").fetchone()[0]
    csv = tmp_path / "export.csv"
    export_v2(c, original, coll, csv)
    wrong, right = tmp_path / "wrong.toml", tmp_path / "right.toml"
    sidecar(wrong, coll, agency, bureau, service, channel, "likert", {"question_1": "trust"}, service_type)
    sidecar(right, coll, agency, bureau, service, channel, "thumbs", {"question_1": "trust"}, service_type)
    run_cxlake("ingest", "--lake", lake, "--json", str(tmp_path / "none.csv"), check=False)  # creates the lake
    before = lake_state(lake)

    # A value that can never be valid fails before any row is read, naming the key; nothing is left behind.
    proc = run_cxlake("ingest", "--lake", lake, "--format", "touchpoints-v2", "--mapping", wrong, csv, check=False)
    assert proc.returncode == 1, proc
    assert "scale: unknown Scale 'likert' (expected one of: likert5, thumbs)" in proc.stderr, proc.stderr
    assert "no row was read" in proc.stderr
    assert lake_state(lake) == before

    # The corrected sidecar stores the file.
    [first] = ingest(lake, csv, extra=["--format", "touchpoints-v2", "--mapping", right])
    answered = "(trust IS NOT NULL OR " + " OR ".join(TP_TAPS) + ")"
    expected = c.execute(f"SELECT count(*) FROM {scan(original)} WHERE collection_id = '{coll}' AND {FORM['thumbs']} AND {answered}").fetchone()[0]
    assert first["rows_stored"] == expected > 0, first
    assert first["already_ingested"] is False
    stored = c.execute(f"SELECT count(*) FROM {scan(lake)}").fetchone()[0]
    assert stored == expected

    # Again: rows with problems were quarantined, so the file is read again; nothing is stored
    # twice, no problem recorded twice, and the lake version stays.
    after_first = lake_state(lake)
    [again] = ingest(lake, csv, extra=["--format", "touchpoints-v2", "--mapping", right])
    if first["rows_quarantined"]:
        assert again["already_ingested"] is False
        assert again["quarantine_already_recorded"] == again["rows_quarantined"] == first["rows_quarantined"], again
        assert again["quarantine_file"] is None
    else:
        assert again["already_ingested"] is True
    assert again["rows_stored"] == 0 and again["lake_version"] == first["lake_version"], again
    assert lake_state(lake) == after_first
    if not again["already_ingested"]:
        assert again["duplicates_skipped"] == expected
        assert again["duplicate_lines"].startswith("2"), again

    # A re-export that repeats every row: the repeats are duplicates, not conflicts, into a
    # fresh lake (every row once) and into this one (every row already there).
    twice = tmp_path / "twice.csv"
    export_v2(c, original, coll, twice, repeat=2)
    fresh = tmp_path / "fresh"
    [once] = ingest(fresh, twice, extra=["--format", "touchpoints-v2", "--mapping", right])
    assert (once["rows_stored"], once["duplicates_skipped"]) == (expected, expected), once
    assert set(once["quarantined_by_column"]) <= {"trust"}, once
    assert c.execute(f"SELECT count(*) FROM {scan(fresh)}").fetchone()[0] == expected
    [rerun] = ingest(lake, twice, extra=["--format", "touchpoints-v2", "--mapping", right])
    assert rerun["rows_stored"] == 0 and rerun["duplicates_skipped"] == 2 * expected, rerun
    assert set(rerun["quarantined_by_column"]) <= {"trust"}, rerun
    assert c.execute(f"SELECT count(*) FROM {scan(lake)}").fetchone()[0] == expected


def test_an_in_file_conflict_is_quarantined_again_on_every_run(original, tmp_path):
    """A file whose id repeats with other content is never taken as completely ingested."""
    c = con()
    lake = tmp_path / "lake"
    csv = tmp_path / "conflict.csv"
    c.execute(f"""COPY (SELECT * EXCLUDE (fiscal_year, fiscal_quarter) FROM {scan(original)} ORDER BY response_id LIMIT 20) TO '{csv}' (HEADER)""")
    lines = csv.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index("weight")] = "7.5"
    csv.write_text("\n".join(lines + [",".join(row)]) + "\n")
    for run in range(2):
        [s] = ingest(lake, csv)
        assert s["already_ingested"] is False and s["rows_quarantined"] == 1, (run, s)
        assert "conflict" in s["quarantined_by_column"]["response_id"]["example"], s
        assert (s["rows_stored"], s["duplicates_skipped"]) == ((20, 0) if run == 0 else (0, 20)), (run, s)
        assert s["quarantine_already_recorded"] == run


def test_a_touchpoints_header_without_format_gets_the_format_suggested(tmp_path):
    csv = tmp_path / "tp.csv"
    csv.write_text("external_id,question_1," + ",".join(TP_TAPS) + ",question_4\nx,1" + ",false" * 14 + ",\n")
    proc = run_cxlake("ingest", "--lake", tmp_path / "lake", csv, check=False)
    assert proc.returncode == 1
    assert "looks like a Touchpoints A-11 v2 export; ingest it with --format touchpoints-v2" in proc.stderr, proc.stderr
    v1 = tmp_path / "v1.csv"
    v1.write_text("external_id,question_1,question_2\nx,4,5\n")
    proc = run_cxlake("ingest", "--lake", tmp_path / "lake", v1, check=False)
    assert "--format touchpoints-v1" in proc.stderr, proc.stderr


def test_user_errors_are_one_line_even_with_rust_backtrace(tmp_path):
    import os
    env = {**os.environ, "RUST_BACKTRACE": "1"}
    for args in [("ingest", "--lake", tmp_path / "lake", "--format", "touchpoints-v2", tmp_path / "missing.csv"),
                 ("query", "--lake", tmp_path / "nowhere", "-"),
                 ("survey", "check", tmp_path / "missing.yaml")]:
        proc = run_cxlake(*args, check=False, env=env, input="{ services { id } }")
        assert proc.returncode != 0, args
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        # One line per failing file and the verdict, nothing else (no backtrace frames).
        assert 1 <= len(lines) <= 2 and all(line.startswith("error: ") for line in lines), (args, proc.stderr)

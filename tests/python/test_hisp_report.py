"""The quarterly HISP report of the sample lake (FY2026 Q4), golden and checked: the committed
golden CSV is what `cxlake report hisp` writes today, and the golden file itself is checked
column by column against the layout (tests/fixtures/hisp_layout.json) and against DuckDB's
recomputation from the lake's Parquet files (names, volumes, respondents, answer counts,
suppression, indicators); the XLSX holds the same rows and states the due date and the
designated services without data; due dates are OMB's published FY2022 dates and the rule's
otherwise."""
import csv
import io
import json
from pathlib import Path

import duckdb
import openpyxl
import pytest

from conftest import ROOT, run_cxlake, scan, dimension

SAMPLE = ROOT / "data" / "sample"
GOLDEN = ROOT / "tests" / "fixtures" / "hisp_sample_FY2026Q4.csv"
LAYOUT = json.loads((ROOT / "tests" / "fixtures" / "hisp_layout.json").read_text())
START, END = "2026-07-01", "2026-10-01"  # FY2026 Q4, end exclusive
MEASURES = {q["number"]: q["driver"] for q in LAYOUT["questions"]}
MIN_CELL = 10


def layout_columns():
    cols = [c["column"] for c in LAYOUT["lead"]]
    for q in LAYOUT["questions"]:
        cols += [c.replace("N", str(q["number"])) for c in LAYOUT["per_question"]]
    return cols + [c["column"] for c in LAYOUT["trail"]]


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    c.execute(f"CREATE VIEW r AS SELECT * FROM {scan(SAMPLE)} "
              f"WHERE submitted_at >= TIMESTAMPTZ '{START} 00:00:00+00' AND submitted_at < TIMESTAMPTZ '{END} 00:00:00+00'")
    for t in ["telemetry", "indicators"]:
        c.execute(f"CREATE VIEW {t} AS SELECT * FROM {scan(SAMPLE, t)} "
                  f"WHERE observed_at >= TIMESTAMPTZ '{START} 00:00:00+00' AND observed_at < TIMESTAMPTZ '{END} 00:00:00+00'")
    c.execute(f"CREATE VIEW s AS SELECT * FROM {dimension(SAMPLE, 'services')}")
    return c


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("hisp")
    csv_path, xlsx_path = out / "r.csv", out / "r.xlsx"
    proc = run_cxlake("report", "hisp", "--lake", SAMPLE, "--fiscal-year", 2026, "--quarter", 4, "--out", csv_path)
    run_cxlake("report", "hisp", "--lake", SAMPLE, "--fiscal-year", 2026, "--quarter", 4, "--format", "xlsx", "--out", xlsx_path)
    return csv_path.read_bytes(), xlsx_path, proc.stderr


def test_the_report_is_the_golden_file(report):
    assert report[0] == GOLDEN.read_bytes(), "the report changed: check it, then regenerate the golden file with `cxlake report hisp --lake data/sample --fiscal-year 2026 --quarter 4 --out tests/fixtures/hisp_sample_FY2026Q4.csv`"


def golden_rows():
    rows = list(csv.reader(io.StringIO(GOLDEN.read_text())))
    return rows[0], rows[1:]


def test_golden_columns_follow_the_layout():
    header, rows = golden_rows()
    assert header == layout_columns()
    types = {c["column"]: c["type"] for c in LAYOUT["lead"] + LAYOUT["trail"]}
    for q in LAYOUT["questions"]:
        n = q["number"]
        types[f"q{n}_text"] = "text?"
        for v in range(1, 6):
            types[f"q{n}_{v}"] = "int?"
    for row in rows:
        assert len(row) == len(header)
        for col, value in zip(header, row):
            t = types[col]
            if value == "":
                assert t.endswith("?"), (col, row[7])
            elif t.startswith("int"):
                assert value.isdigit(), (col, value)
        for q in LAYOUT["questions"]:
            assert row[header.index(f"q{q['number']}_text")] == q["text"]
        assert row[header.index("collection_year")] == "2026" and row[header.index("collection_quarter")] == "4"


def test_golden_values_equal_duckdb(con):
    header, rows = golden_rows()
    col = {c: i for i, c in enumerate(header)}
    designated = {r[0]: r for r in con.execute(
        "SELECT service_id, name, agency, agency_name, bureau, bureau_name FROM s WHERE designated").fetchall()}
    cells = con.execute("SELECT service_id, channel, scale, count(*) FROM r GROUP BY ALL").fetchall()
    expected_keys = sorted((s, c, 2 if sc == "thumbs" else 5) for s, c, sc, _ in cells if s in designated)
    got_keys = sorted((r[col["service_id"]], r[col["channel"]], int(r[col["point_scale"]])) for r in rows)
    assert got_keys == expected_keys
    respondents = {(s, c, 2 if sc == "thumbs" else 5): n for s, c, sc, n in cells}
    volumes = {(s, c, m): round(v) for s, c, m, v in con.execute(
        "SELECT service_id, channel, metric, sum(value) FROM telemetry WHERE metric IN ('transactions', 'surveys_offered') GROUP BY ALL").fetchall()}
    indicators = {}
    for s, m, v in con.execute("SELECT service_id, metric, avg(value) FROM indicators GROUP BY ALL ORDER BY 1, 2").fetchall():
        indicators.setdefault(s, []).append((m, v))
    answers = {}
    for measure in {m for m in MEASURES.values() if m}:
        for sid, ch, sc, v, n in con.execute(f"SELECT service_id, channel, scale, {measure}, count(*) FROM r WHERE {measure} IS NOT NULL GROUP BY ALL").fetchall():
            answers.setdefault((measure, sid, ch, sc), {})[v] = n
    for row in rows:
        sid, channel, scale = row[col["service_id"]], row[col["channel"]], int(row[col["point_scale"]])
        _, name, agency, agency_name, bureau, bureau_name = designated[sid]
        assert [row[col[c]] for c in ["service_name", "department_abbreviation", "department_name", "service_provider_id", "service_provider_name"]] == [name, agency, agency_name, bureau, bureau_name]
        n = respondents[(sid, channel, scale)]
        assert row[col["volume_of_respondents"]] == str(n)
        assert row[col["volume_of_customers"]] == str(volumes.get((sid, channel, "transactions"), ""))
        assert row[col["volume_of_customers_provided_survey_opportunity"]] == str(volumes.get((sid, channel, "surveys_offered"), ""))
        assert int(row[col["volume_of_customers"]]) >= int(row[col["volume_of_customers_provided_survey_opportunity"]]) >= n
        shown = [kv.split("=") for kv in row[col["service_level_indicators"]].split("; ") if kv]
        assert [k for k, _ in shown] == [m for m, _ in indicators.get(sid, [])]
        assert all(abs(float(v) - mean) <= 0.005 + 1e-9 for (_, v), (_, mean) in zip(shown, indicators.get(sid, [])))
        assert row[col["summary"]].startswith(f"{n} respondents")
        suppressed = []
        for q, measure in MEASURES.items():
            got = [row[col[f"q{q}_{v}"]] for v in range(1, 6)]
            if measure is None or (scale == 2 and measure not in ("trust", "satisfaction")):
                assert got == [""] * 5
                continue
            values = [0, 1] if scale == 2 else [1, 2, 3, 4, 5]
            counts = answers.get((measure, sid, channel, "thumbs" if scale == 2 else "likert5"), {})
            total = sum(counts.values())
            if 0 < total < MIN_CELL:
                suppressed.append(f"q{q}")
                assert got == [""] * 5, (sid, q)
            else:
                want = [str(counts.get(v, 0)) for v in values] + ["0"] * (5 - len(values))
                assert got == want, (sid, channel, q)
        assert row[col["suppressed_questions"]] == ";".join(suppressed)


def test_xlsx_holds_the_same_rows_and_the_due_date(report, con):
    _, xlsx_path, stderr = report
    book = openpyxl.load_workbook(xlsx_path)
    header, rows = golden_rows()
    data = [[("" if v is None else str(int(v)) if isinstance(v, (int, float)) else v) for v in r] for r in book["data"].iter_rows(values_only=True)]
    assert data[0] == header
    assert [r + [""] * (len(header) - len(r)) for r in data[1:]] == rows
    about = {r[0]: r[1] for r in book["about"].iter_rows(values_only=True) if r and r[0]}
    assert about["due_date"] == "2026-10-30" and about["due_date_source"] == "RULE"
    assert "due 2026-10-30" in stderr and "last business day" in stderr
    # The designated services without data, listed in the workbook and on stderr, are
    # exactly those DuckDB finds without a response this quarter.
    missing = [r[0] for r in con.execute("SELECT service_id FROM s WHERE designated AND service_id NOT IN (SELECT service_id FROM r) ORDER BY 1").fetchall()]
    listed = []
    started = False
    for r in book["about"].iter_rows(values_only=True):
        if started and r[0]:
            listed.append(r[0])
        if r[0] == "service_id":
            started = True
    assert sorted(listed) == missing and missing
    for sid in missing:
        assert sid in stderr


@pytest.mark.parametrize("quarter,due,source", [(1, "2022-01-28", "the date OMB published"), (2, "2022-04-29", "the date OMB published"),
                                                 (3, "2022-07-29", "the date OMB published"), (4, "2022-10-28", "the date OMB published")])
def test_published_fy2022_dates_are_used(tmp_path, quarter, due, source):
    proc = run_cxlake("report", "hisp", "--lake", SAMPLE, "--fiscal-year", 2022, "--quarter", quarter, "--out", tmp_path / "r.csv")
    assert f"due {due} ({source})" in proc.stderr

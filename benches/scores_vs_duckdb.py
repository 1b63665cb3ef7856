#!/usr/bin/env python3
"""Benchmark: cxlake scores against DuckDB over the same Parquet files, in one run.

Generates a lake (default 10M rows, five fiscal years) unless it exists, then times
  1. trust + satisfaction by agency x fiscal quarter (full scan), and
  2. the same for one fiscal quarter out of five years (partition pruning),
through `cxlake query` (a whole process: start, catalog, plan, scan, JSON out) and through DuckDB
(connect, SQL, fetch) computing the same n, mean, sd and agree share. Prints the best of
--repeat runs of each and the ratio cxlake / DuckDB (goal: <= 1).

    cargo build --release && .venv/bin/python benches/scores_vs_duckdb.py
"""
import argparse
from pathlib import Path

import duckdb

from benchlib import ROOT, best, cxlake_query, ensure_lake


GQL = """query($f: ResponseFilter) { scores(filter: $f, groupBy: [AGENCY], period: FISCAL_QUARTER,
  measures: [TRUST, SATISFACTION]) { agency period measure n mean sd agreeShare agreeLow agreeHigh meanLow meanHigh } }"""


def sql(lake, where):
    parts = []
    for m in ("trust", "satisfaction"):
        agree = f"CASE WHEN (scale = 'likert5' AND {m} >= 4) OR (scale = 'thumbs' AND {m} = 1) THEN 1.0 ELSE 0.0 END"
        parts.append(
            f"count({m}) AS {m}_n, avg({m}) FILTER (WHERE scale = 'likert5') AS {m}_mean, "
            f"stddev_samp({m}) FILTER (WHERE scale = 'likert5') AS {m}_sd, "
            f"avg({agree}) FILTER (WHERE {m} IS NOT NULL) AS {m}_agree"
        )
    return (
        f"SELECT agency, fiscal_year, fiscal_quarter, {', '.join(parts)} "
        f"FROM read_parquet('{lake}/responses/**/*.parquet', hive_partitioning = true) {where} "
        "GROUP BY ALL"
    )




def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--lake", type=Path, default=ROOT / "bench-out" / "lake")
    ap.add_argument("--bin", type=Path, default=ROOT / "target" / "release" / "cxlake")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    lake = args.lake.resolve()

    ensure_lake(args.bin, lake, args.rows)

    def cx(variables):
        return cxlake_query(args.bin, lake, GQL, variables)["scores"]

    def db(where):
        con = duckdb.connect()
        con.execute("SET threads = 2")
        return con.execute(sql(lake, where)).fetchall()

    cases = [
        ("agency x fiscal quarter, full scan", {}, ""),
        (
            "one fiscal quarter of five years (FY2024 Q2)",
            {"f": {"from": "2024-01-01", "to": "2024-03-31"}},
            "WHERE fiscal_year = 2024 AND fiscal_quarter = 2 "
            "AND submitted_at >= TIMESTAMPTZ '2024-01-01 00:00:00+00' AND submitted_at < TIMESTAMPTZ '2024-04-01 00:00:00+00'",
        ),
    ]
    print(f"lake: {lake}  repeat: best of {args.repeat}")
    print(f"{'case':48} {'cxlake s':>9} {'duckdb s':>9} {'ratio':>6}")
    for name, variables, where in cases:
        tc, rows = best(lambda: cx(variables), args.repeat)
        td, drows = best(lambda: db(where), args.repeat)
        assert len(rows) == 2 * len(drows), (len(rows), len(drows))
        print(f"{name:48} {tc:9.3f} {td:9.3f} {tc / td:6.2f}")


if __name__ == "__main__":
    main()

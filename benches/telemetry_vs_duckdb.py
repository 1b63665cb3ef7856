#!/usr/bin/env python3
"""Benchmark: telemetry aggregates, drop alarms and the HISP report against DuckDB computing the
same numbers over the same Parquet files, in one run.

Generates a lake (default 2M responses, 600 services: about 7M telemetry rows over five years)
unless it exists, then times through `cxlake query` (a whole process: start, catalog, plan,
scan, JSON out) and through DuckDB (connect, SQL, fetch):
  1. transactions by service x month, all five years (count, sum, mean, median, min, max);
  2. drop alarms on the last day (daily totals of every series over 35 days, window vs baseline);
  3. the HISP report of one quarter (answer counts 1-5 of eight questions by designated service,
     channel and scale, plus telemetry volumes).
Prints the best of --repeat runs and the ratio cxlake / DuckDB.

    cargo build --release && .venv/bin/python benches/telemetry_vs_duckdb.py
"""
import argparse
import subprocess
import time
from pathlib import Path

import duckdb

from benchlib import ROOT, best, cxlake_query

AGG = """{ telemetry(filter: {metric: ["transactions"]}, groupBy: [SERVICE], period: MONTH) {
  service period count sum mean median min max } }"""
ALARMS = """{ telemetryAlarms(asOf: "2026-09-30") { seriesEvaluated alarms { service metric page ratio pValue } } }"""
HISP = """{ hispReport(fiscalYear: 2026, quarter: 2) { rows { serviceId channel pointScale volumeOfRespondents
  volumeOfCustomers questions { number counts } } } }"""
MEASURES = ["satisfaction", "trust", "effectiveness", "ease", "efficiency", "transparency", "employee", "humanity"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--services", type=int, default=600)
    ap.add_argument("--lake", type=Path, default=ROOT / "bench-out" / "telemetry-lake")
    ap.add_argument("--bin", type=Path, default=ROOT / "target" / "release" / "cxlake")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    lake = args.lake.resolve()
    if not (lake / "lake.json").exists():
        lake.parent.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        subprocess.run([args.bin, "generate", "--out", lake, "--rows", str(args.rows), "--services", str(args.services)], check=True)
        print(f"generate: {time.perf_counter() - t:.1f}s")

    def con():
        c = duckdb.connect()
        c.execute("SET threads = 2")
        c.execute("SET TimeZone = 'UTC'")
        return c

    tel = f"read_parquet('{lake}/telemetry/**/*.parquet', hive_partitioning = true)"
    resp = f"read_parquet('{lake}/responses/**/*.parquet', hive_partitioning = true)"
    n_tel = con().execute(f"SELECT count(*) FROM {tel}").fetchone()[0]
    agg_sql = f"""SELECT service_id, strftime(observed_at::DATE, '%Y-%m'), count(*), sum(value), avg(value), median(value), min(value), max(value)
                  FROM {tel} WHERE metric = 'transactions' GROUP BY ALL"""
    alarm_sql = f"""WITH d AS (SELECT agency, service_id, metric, channel, page, observed_at::DATE AS day, sum(value) AS v FROM {tel}
                      WHERE observed_at >= TIMESTAMPTZ '2026-08-27 00:00:00+00' AND observed_at < TIMESTAMPTZ '2026-10-01 00:00:00+00' GROUP BY ALL)
                    SELECT agency, service_id, metric, channel, page, sum(v) FILTER (WHERE day >= DATE '2026-09-24') AS w,
                           sum(v) FILTER (WHERE day < DATE '2026-09-24') AS b, sum(v * v) FILTER (WHERE day < DATE '2026-09-24') AS b2
                    FROM d GROUP BY ALL"""
    counts = ", ".join(f"count(*) FILTER (WHERE {m} = {v})" for m in MEASURES for v in range(0, 6))
    hisp_sql = f"""SELECT service_id, channel, scale, count(*), {counts} FROM {resp}
                   WHERE fiscal_year = 2026 AND fiscal_quarter = 2
                     AND service_id IN (SELECT service_id FROM read_parquet('{lake}/dimensions/services/*.parquet') WHERE designated)
                   GROUP BY ALL"""
    vol_sql = f"""SELECT service_id, channel, metric, sum(value) FROM {tel} WHERE fiscal_year = 2026 AND fiscal_quarter = 2
                  AND metric IN ('transactions', 'surveys_offered') GROUP BY ALL"""
    cases = [
        ("transactions by service x month (full scan)", AGG, [agg_sql]),
        ("drop alarms on the last day (35 days)", ALARMS, [alarm_sql]),
        ("HISP report of one quarter", HISP, [hisp_sql, vol_sql]),
    ]
    print(f"lake: {lake}  telemetry rows: {n_tel:,}  repeat: best of {args.repeat}")
    print(f"{'case':46} {'cxlake s':>9} {'duckdb s':>9} {'ratio':>6}")
    for name, gql, sqls in cases:
        tc, _ = best(lambda: cxlake_query(args.bin, lake, gql, {}), args.repeat)
        td, _ = best(lambda: [con().execute(s).fetchall() for s in sqls], args.repeat)
        print(f"{name:46} {tc:9.3f} {td:9.3f} {tc / td:6.2f}")


if __name__ == "__main__":
    main()

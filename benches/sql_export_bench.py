"""A raw `responses` export of every row over Arrow Flight SQL (ADBC) and over the Postgres wire
protocol (psycopg, binary results) against the same rows over HTTP Arrow (`/v1/export`), in one
run on one release server: rows/s of each and the ratio to HTTP Arrow. Each client receives and
decodes every row: pyarrow tables for HTTP and Flight SQL, Python tuples for psycopg.

    cargo build --release
    ./target/release/cxlake generate --out /tmp/g1m --rows 1000000
    .venv/bin/python benches/sql_export_bench.py --lake /tmp/g1m --repeat 3
"""
import argparse
import socket
import urllib.request
from pathlib import Path

import pyarrow as pa

from benchlib import ROOT, best, ensure_lake, serve


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lake", type=Path, default=Path("/tmp/g1m"))
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "cxlake"))
    a = ap.parse_args()
    ensure_lake(a.binary, a.lake, a.rows)
    pg, flight = free_port(), free_port()
    # Loopback without keys: a local admin; the row cap above the export.
    server, base = serve(a.binary, a.lake, "--pg", f"127.0.0.1:{pg}", "--flight-sql", f"127.0.0.1:{flight}",
                         "--sql-max-rows", 100_000_000, "--sql-timeout-seconds", 3600, "--rate-limit", 0)
    try:
        def http_arrow():
            with urllib.request.urlopen(f"{base}/v1/export?format=arrow", timeout=3600) as r:
                return pa.ipc.open_stream(r).read_all().num_rows

        def flight_sql():
            from adbc_driver_flightsql import dbapi  # noqa: PLC0415
            with dbapi.connect(f"grpc://127.0.0.1:{flight}", autocommit=True) as c, c.cursor() as cur:
                cur.execute("SELECT * FROM responses")
                return cur.fetch_arrow_table().num_rows

        def pg_binary():
            import psycopg  # noqa: PLC0415
            with psycopg.connect(host="127.0.0.1", port=pg, user="bench", dbname="cxlake") as c:
                with c.cursor(binary=True) as cur:
                    cur.execute("SELECT * FROM responses")
                    n = 0
                    while rows := cur.fetchmany(65536):
                        n += len(rows)
                    return n

        results = {}
        for name, f in (("HTTP Arrow (/v1/export)", http_arrow), ("Flight SQL (ADBC)", flight_sql), ("Postgres binary (psycopg)", pg_binary)):
            secs, rows = best(f, a.repeat)
            results[name] = (secs, rows)
        ref = results["HTTP Arrow (/v1/export)"][0]
        print(f"| case | rows | s | rows/s | vs HTTP Arrow |\n|---|---|---|---|---|")
        for name, (secs, rows) in results.items():
            print(f"| {name} | {rows} | {secs:.2f} | {rows / secs:,.0f} | {secs / ref:.2f}x |")
        counts = {rows for _, rows in results.values()}
        assert len(counts) == 1, f"the exports disagree on the row count: {results}"
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()

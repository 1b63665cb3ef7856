"""A raw export that fails after its headers were sent (a data file damaged inside a column
chunk) must not look complete: the server aborts the chunked body, so HTTP clients raise instead
of handing back a partial table, and the server keeps serving."""
import random
import shutil
import signal
import urllib.request
import http.client

import pyarrow.parquet as pq
import pytest
import requests

from conftest import run_cxlake, start_server


def damage_column_chunks(path, seed=18):
    """Overwrites 32 bytes in the middle of each column chunk of the first row group (footer
    intact)."""
    meta = pq.ParquetFile(path).metadata
    data = bytearray(path.read_bytes())
    rng = random.Random(seed)
    rg = meta.row_group(0)
    for i in range(rg.num_columns):
        c = rg.column(i)
        start = c.dictionary_page_offset or c.data_page_offset
        middle = start + c.total_compressed_size // 2
        data[middle:middle + 32] = bytes(rng.randrange(256) for _ in range(32))
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    base = tmp_path_factory.mktemp("export-errors")
    run_cxlake("generate", "--out", base / "lake", "--rows", 30000, "--seed", 3, "--fiscal-years", 1)
    lake = base / "copy"
    shutil.copytree(base / "lake", lake)
    target = sorted((lake / "responses" / "agency=VA").rglob("*.parquet"))[-1]
    damage_column_chunks(target)
    proc, url = start_server("--lake", lake)
    yield url, target.relative_to(lake).as_posix()
    proc.send_signal(signal.SIGTERM)
    proc.wait()


@pytest.mark.parametrize("fmt", ["csv", "arrow", "parquet"])
def test_requests_raises_on_an_export_that_failed_midway(damaged, fmt):
    url, _ = damaged
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(f"{url}/v1/export?agency=VA&format={fmt}", timeout=60)


def test_urllib_raises_and_the_csv_names_the_file(damaged):
    url, relative = damaged
    got = b""
    with pytest.raises(http.client.IncompleteRead) as raised:
        with urllib.request.urlopen(f"{url}/v1/export?agency=VA&format=csv", timeout=60) as resp:
            assert resp.status == 200
            got = resp.read()
    got = got or raised.value.partial
    last = got.decode().rstrip("\n").rsplit("\n", 1)[-1]
    assert last.startswith("# cxlake export failed: ") and relative in last, last
    # The server is still up and other agencies export completely.
    body = requests.get(f"{url}/v1/export?agency=SSA&format=csv", timeout=60)
    assert body.status_code == 200 and body.text.count("\n") > 100

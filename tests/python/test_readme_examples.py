"""Every example in the README runs in a test. README.md is parsed into its fenced blocks; each
block is claimed by exactly one handler below, matched by its language and a phrase of its
content (not by position), and `test_every_readme_block_has_a_handler` fails for a block no
handler claims (a new example without a test) and for a handler whose block is gone. Each
handler runs its block as written, substituting only what has to be: temporary paths, free
loopback ports, keys and ids printed by earlier commands, `cxlake` = the built binary
(conftest's BIN), and the S3 store of the `s3` fixture. A README example that does not work as
written fails its test, naming the README line."""
import ast
import csv
import json
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import BIN, ROOT, duck, free_port, graphql, scan, start_server

README = ROOT / "README.md"
SAMPLE = ROOT / "data" / "sample"
README_URL = "http://127.0.0.1:8080"


# ---------------------------------------------------------------------------------------------
# The README's fenced blocks and the handlers that claim them.

@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    line: int  # 1-based line of the opening fence

    def __str__(self):
        first = self.text.strip().splitlines()[0] if self.text.strip() else ""
        return f"README.md:{self.line} ```{self.lang} {first[:70]!r}"

    def body_line(self, i):
        """README line number of the block's i-th (0-based) text line."""
        return self.line + 1 + i


def readme_blocks(text=None):
    text = README.read_text() if text is None else text
    lines = text.split("\n")
    blocks, i = [], 0
    while i < len(lines):
        m = re.match(r"^\s{0,3}(`{3,}|~{3,})\s*([^\s`]*)", lines[i])
        if m:
            fence, lang, start, body = m.group(1), m.group(2).lower(), i + 1, []
            i += 1
            while i < len(lines) and not re.match(r"^\s{0,3}" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}\s*$", lines[i]):
                body.append(lines[i])
                i += 1
            blocks.append(Block(lang, "\n".join(body), start))
        i += 1
    return blocks


# handler (test function name) -> (language, phrase its block contains)
HANDLERS = {
    "test_sh_serve_sample_lake": ("sh", "cargo run --release -- serve"),
    "test_sh_run_all_tests": ("sh", "./tests/run.sh"),
    "test_graphql_scores_tour": ("graphql", 'scores(\n    filter: { agency: ["VA", "SSA"]'),
    "test_graphql_driver_importance": ("graphql", "driverImportance(outcome: TRUST, groupBy: [SERVICE_TYPE], bootstrap: 200)"),
    "test_graphql_tapped_driver_importance": ("graphql", "tappedDriverImportance(outcome: TRUST, groupBy: [SERVICE_TYPE], bootstrap: 200)"),
    "test_sh_ingest_files": ("sh", "cxlake ingest --lake mylake responses.csv"),
    "test_toml_touchpoints_sidecar": ("toml", 'question_1 = "trust"'),
    "test_python_parquet_by_url": ("python", "pl.read_parquet(url)"),
    "test_python_arrow_stream": ("python", "pl.read_ipc_stream("),
    "test_python_requests_json": ("python", '.json()["data"]'),
    "test_sh_keys_and_roles": ("sh", "cxlake keys --keys /etc/cxlake/keys.json add"),
    "test_graphql_raw_responses": ("graphql", "{ responses(filter:"),
    "test_sh_s3_lake_and_replicas": ("sh", "cxlake ingest --lake s3://"),
    "test_sh_command_line_synopsis": ("sh", "cxlake serve    [--lake DIR|s3://B/P]"),
    "test_graphql_telemetry_and_service_levels": ("graphql", "telemetryAlarms {"),
    "test_sh_hisp_report": ("sh", "cxlake report hisp --lake data/sample"),
    "test_python_scan_delta": ("python", 'pl.scan_delta("data/sample/responses")'),
    "test_graphql_time_travel": ("graphql", "asOf: { version: 0 }"),
    "test_sh_sql_protocols": ("sh", "cxlake serve --pg 127.0.0.1:5432 --flight-sql 127.0.0.1:50051 &"),
    "test_python_flight_sql_polars": ("python", "from adbc_driver_flightsql import dbapi"),
}


def handlers_of(b):
    return [name for name, (lang, phrase) in HANDLERS.items() if b.lang == lang and phrase in b.text]


def block(handler):
    """The one README block the handler claims."""
    lang, phrase = HANDLERS[handler]
    found = [b for b in readme_blocks() if b.lang == lang and phrase in b.text]
    if len(found) != 1:
        pytest.fail(f"{handler}: {len(found)} README ```{lang} blocks contain {phrase!r} (want exactly 1): {[str(b) for b in found]}")
    return found[0]


def test_every_readme_block_has_a_handler():
    blocks = readme_blocks()
    assert blocks, "no fenced blocks found in README.md"
    problems = []
    for b in blocks:
        hs = handlers_of(b)
        if not hs:
            problems.append(f"{b}: no handler in {Path(__file__).name}: add a test for this example")
        elif len(hs) > 1:
            problems.append(f"{b}: claimed by several handlers {hs}")
    for name, (lang, phrase) in HANDLERS.items():
        n = sum(1 for b in blocks if name in handlers_of(b))
        if n != 1:
            problems.append(f"handler {name} claims {n} blocks (lang {lang}, phrase {phrase!r})")
        assert callable(globals().get(name)), f"handler {name} is not a test of this module"
    print("\n".join(f"{b} -> {', '.join(handlers_of(b))}" for b in blocks))
    assert not problems, "\n".join(problems)


def test_block_parser_and_matching_find_an_unhandled_block():
    """The check above really fails for a new block: a README with one more example."""
    text = README.read_text() + "\n\nNew:\n\n```sh\ncxlake frobnicate --now\n```\n"
    blocks = readme_blocks(text)
    assert len(blocks) == len(readme_blocks()) + 1
    assert handlers_of(blocks[-1]) == [] and blocks[-1].lang == "sh" and blocks[-1].text == "cxlake frobnicate --now"


# ---------------------------------------------------------------------------------------------
# Helpers: processes, shell lines, curl.

def clean_env(**extra):
    """The test's environment without CXLAKE_* settings (so defaults are the binary's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXLAKE_")}
    env.update(extra)
    return env


def strip_comment(line):
    """The line without a trailing shell comment (`#` outside quotes, after a blank)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def command_lines(b):
    """(README line number, command) of every non-blank, non-comment line of a sh block."""
    out = []
    for i, line in enumerate(b.text.splitlines()):
        cmd = strip_comment(line)
        if cmd.strip():
            out.append((b.body_line(i), cmd.strip()))
    return out


def find_line(b, start):
    """The one command line of the block that starts with `start`."""
    found = [(n, c) for n, c in command_lines(b) if c.startswith(start)]
    assert len(found) == 1, f"{b}: {len(found)} lines start with {start!r}: {found}"
    return found[0]


def substitute(cmd, subs=()):
    for old, new in subs:
        assert old in cmd, f"substitution {old!r} not in {cmd!r}"
        cmd = cmd.replace(old, str(new))
    if cmd.startswith("cxlake "):
        cmd = shlex.quote(str(BIN)) + cmd[len("cxlake"):]
    return cmd


def sh(line_no, cmd, subs=(), cwd=None, env=None, timeout=180):
    """Runs a README command line through bash (globs expand as in a shell) after substitutions."""
    run = substitute(cmd, subs)
    proc = subprocess.run(["bash", "-c", run], cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=timeout)
    proc.readme = f"README.md:{line_no}: `{cmd}` (run as `{run}`)"
    return proc


def check(proc):
    assert proc.returncode == 0, f"{proc.readme} exited {proc.returncode}:\n{proc.stderr[-3000:]}\n{proc.stdout[-2000:]}"
    return proc


def wait_answering(url, proc, timeout=30):
    """Waits until the server answers /health with any HTTP status; fails if it exits first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1).read()
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"server at {url} did not answer in {timeout}s")


class Servers:
    """Servers started from README lines; every one is stopped (SIGTERM, then wait) at the end."""

    def __init__(self):
        self.procs = []

    def start(self, line_no, cmd, subs=(), cwd=None, env=None):
        """Starts a README `serve` line; returns (process, loopback URL, None) once it answers,
        or (None, None, error text) if it exits instead."""
        run = substitute(cmd, subs)
        port = re.search(r"--listen\s+\S*:(\d+)", run).group(1)
        log = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a chatty server never blocks on it
        proc = subprocess.Popen(["bash", "-c", "exec " + run], cwd=cwd, env=env or clean_env(),
                                stdout=subprocess.DEVNULL, stderr=log, text=True)
        proc.log = log
        self.procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        if wait_answering(url, proc):
            return proc, url, None
        log.seek(0)
        err = log.read()
        return None, None, f"README.md:{line_no}: `{cmd}` (run as `{run}`) exited {proc.returncode}: {err.strip()[-1500:]}"

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            p.log.close()


@pytest.fixture
def servers():
    s = Servers()
    yield s
    s.stop_all()


@pytest.fixture(scope="module")
def sample_server():
    """`cxlake serve --lake data/sample` on a free loopback port (default settings otherwise)."""
    proc, url = start_server("--lake", SAMPLE, env=clean_env())
    yield url
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)


def curl(args, cwd=None):
    """Runs curl with these arguments (or, without curl, the few options the README uses
    through urllib); returns (status code, body bytes)."""
    if shutil.which("curl"):
        proc = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", *args], cwd=cwd, capture_output=True, timeout=60)
        assert proc.returncode == 0, f"curl {args} exited {proc.returncode}: {proc.stderr.decode()}"
        body, _, status = proc.stdout.rpartition(b"\n")
        return int(status), body
    headers, data, out, url, it = {}, None, None, None, iter(args)
    for a in it:
        if a == "-H":
            k, _, v = next(it).partition(":")
            headers[k.strip()] = v.strip()
        elif a == "-d":
            data = next(it).encode()
        elif a == "-o":
            out = next(it)
        elif not a.startswith("-"):
            url = a
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    if out:
        Path(cwd or ".", out).write_bytes(body)
        body = b""
    return status, body


def post_graphql(url, query, key=None):
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    req = urllib.request.Request(f"{url}/graphql", data=json.dumps({"query": query}).encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, body.decode(errors="replace")


def sample_rows(c, target, where, limit, fmt, exclude=("fiscal_year", "fiscal_quarter")):
    """Writes `limit` sample-lake rows in the lake's own columns; returns the response ids."""
    cols = f"* EXCLUDE ({', '.join(exclude)})" if exclude else "*"
    sel = f"SELECT {cols} FROM {scan(SAMPLE)} WHERE {where} ORDER BY response_id LIMIT {limit}"
    opts = {"csv": "(HEADER)", "jsonl": "(FORMAT json)", "parquet": "(FORMAT parquet)"}[fmt]
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    c.execute(f"COPY ({sel}) TO '{target}' {opts}")
    return [r[0] for r in c.execute(f"SELECT response_id FROM ({sel})").fetchall()]


TAPS = [f"{s}_{t}" for s in ["positive", "negative"] for t in ["effectiveness", "ease", "efficiency", "transparency", "humanity", "employee", "other"]]


def touchpoints_export(path, rows=20, seed=11):
    """A Touchpoints A-11 v2 export (no created_at): question_1 thumbs 0/1 (some blank), the 14
    taps true/false, question_4 free text. Returns (rows, rows answering question_1, thumbs up)."""
    rng = random.Random(seed)
    answered = ups = 0
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["external_id", "question_1", *TAPS, "question_4"])
        for i in range(rows):
            q1 = "" if i % 6 == 5 else rng.choice(["0", "1"])
            answered += q1 != ""
            ups += q1 == "1"
            w.writerow([f"tp-{seed}-{i}", q1, *[rng.choice(["true", "false"]) for _ in TAPS],
                        rng.choice(["", "Quick, and the form saved my answers.", 'The "upload" step failed twice.'])])
    return rows, answered, ups


# ---------------------------------------------------------------------------------------------
# GraphQL blocks: run against the sample lake with the server's default suppression.

def top_level_fields(query):
    """The top-level field names (or aliases) of a query document."""
    depth, names, i, s = 0, [], 0, re.sub(r'"(?:\\.|[^"\\])*"', '""', query)
    expect = False
    while i < len(s):
        ch = s[i]
        if ch == "{":
            depth += 1
            expect = depth == 1
        elif ch == "}":
            depth -= 1
        elif ch == "(":
            j, d = i, 0
            while True:
                d += s[j] == "("
                d -= s[j] == ")"
                j += 1
                if d == 0:
                    break
            i = j
            continue
        elif depth == 1 and (ch.isalpha() or ch == "_"):
            m = re.match(r"[A-Za-z_]\w*(\s*:\s*[A-Za-z_]\w*)?", s[i:])
            names.append(m.group(0).split(":")[0].strip())
            i += len(m.group(0))
            continue
        i += 1
    return names


def assert_non_empty(value, path):
    """A list is non-empty; an object has at least one list and all its lists are non-empty."""
    assert value is not None, f"{path} is null"
    if isinstance(value, list):
        assert value, f"{path} is an empty list"
    elif isinstance(value, dict):
        lists = {k: v for k, v in value.items() if isinstance(v, list)}
        assert lists, f"{path} holds no list: {value}"
        for k, v in lists.items():
            assert v, f"{path}.{k} is an empty list"


def run_graphql_block(handler):
    b = block(handler)
    resp = graphql(SAMPLE, b.text, suppress=True)
    assert "errors" not in resp, f"{b}: errors {resp.get('errors')}"
    fields = top_level_fields(b.text)
    assert fields and sorted(resp["data"]) == sorted(fields), (fields, list(resp["data"]))
    for f in fields:
        assert_non_empty(resp["data"][f], f"{b}: {f}")
    return resp["data"]


def test_graphql_scores_tour():
    data = run_graphql_block("test_graphql_scores_tour")
    rows = data["scores"]
    assert {r["agency"] for r in rows} == {"VA", "SSA"}
    assert {r["measure"] for r in rows} == {"TRUST", "SATISFACTION"}
    assert {r["period"] for r in rows} == {f"FY2025Q{q}" for q in range(1, 5)}  # 2024-10-01..2025-09-30
    assert all(r["n"] > 0 for r in rows)
    assert any(r["nLikert"] > 0 for r in rows) and any(r["nThumbs"] > 0 for r in rows), "Likert and thumbs together"
    assert all(r["n"] == r["nLikert"] + r["nThumbs"] for r in rows)
    assert any(r["mean"] is not None and r["meanLow"] < r["mean"] < r["meanHigh"] for r in rows)
    assert all(r["distribution"] for r in rows if r["n"] >= 10)


def test_graphql_driver_importance():
    data = run_graphql_block("test_graphql_driver_importance")
    groups = data["driverImportance"]
    assert len({g["serviceType"] for g in groups}) == len(groups) >= 2
    for g in groups:
        assert g["drivers"], g["serviceType"]
        if g["r2"] is not None:
            for d in g["drivers"]:
                assert d["shapleyShareLow"] <= d["shapleyShare"] <= d["shapleyShareHigh"], (g["serviceType"], d)
    assert any(g["r2"] is not None for g in groups)


def test_graphql_tapped_driver_importance():
    """The sample lake holds A-11 v2 (tapped) surveys: every service type with them gets a model."""
    groups = run_graphql_block("test_graphql_tapped_driver_importance")["tappedDriverImportance"]
    assert len({g["serviceType"] for g in groups}) == len(groups) >= 2
    fitted = [g for g in groups if g["mcfadden"] is not None]
    assert fitted, groups
    for g in fitted:
        assert 0 < g["mcfadden"] < 1 and g["n"] > 0 and 0 < g["events"] < g["n"], g
        assert abs(sum(d["importance"] for d in g["drivers"] if d["importance"] is not None) - g["mcfadden"]) < 1e-9, g
        assert sorted(d["rank"] for d in g["drivers"] if d["rank"] is not None) == list(range(1, len([d for d in g["drivers"] if d["rank"]]) + 1))
        for d in g["drivers"]:
            if d["shareLow"] is not None:
                assert d["shareLow"] <= d["share"] <= d["shareHigh"], (g["serviceType"], d)
        for c in g["coefficients"]:
            assert (c["oddsRatio"] is None) == (c["dropped"] is not None), c
            if c["oddsRatio"] is not None:
                assert c["low"] < c["high"] and 0 <= c["pValue"] <= 1, c
        for lift in g["lift"]:
            if lift["difference"] is not None:
                assert lift["low"] <= lift["difference"] <= lift["high"] and lift["tapped"] <= lift["shown"], lift


def test_graphql_raw_responses():
    """`cxlake query` runs with full (admin) access: raw rows come back, paged."""
    data = run_graphql_block("test_graphql_raw_responses")
    page = data["responses"]
    assert page["rows"], "no rows"
    assert len(page["rows"]) == min(500, page["totalCount"])
    assert all(r["submittedAt"] >= "2025-01-01" and r["serviceId"].startswith("VA-") for r in page["rows"])
    if page["totalCount"] > 500:
        assert page["truncated"] is True and page["pageInfo"]["endCursor"], page


def test_graphql_telemetry_and_service_levels():
    data = run_graphql_block("test_graphql_telemetry_and_service_levels")
    assert all(r["service"].startswith("VA-") for r in data["telemetry"])
    assert data["telemetryAlarms"]["rule"] and data["telemetryAlarms"]["asOf"]
    sl = data["serviceLevels"]
    assert any(r["indicators"] and r["scores"] for r in sl["rows"])
    assert sl["correlations"]


# ---------------------------------------------------------------------------------------------
# Python blocks: run against a server on the sample lake, last expression a polars DataFrame.

def selection_columns(query):
    """The flat table columns a single-top-level-field query asks for (`parent_child` for
    nested fields), as the table downloads and pl.DataFrame(rows) name them."""
    s = re.sub(r'"(?:\\.|[^"\\])*"', '""', query)
    s = re.sub(r"\([^()]*\)", " ", s)
    tokens = re.findall(r"[A-Za-z_]\w*|[{}]", s)
    pos = 0

    def selection(prefix):
        nonlocal pos
        cols = []
        assert tokens[pos] == "{"
        pos += 1
        while tokens[pos] != "}":
            name = tokens[pos]
            pos += 1
            if pos < len(tokens) and tokens[pos] == "{":
                cols += selection(f"{prefix}{name}_")
            else:
                cols.append(prefix + name)
        pos += 1
        return cols

    assert tokens[0] == "{"
    pos = 1
    top = tokens[pos]
    pos += 1
    cols = selection("")
    assert tokens[pos] == "}", "one top-level field"
    return top, cols


def run_python_block(handler, url):
    b = block(handler)
    code = b.text
    assert README_URL in code, f"{b}: does not talk to {README_URL}"
    code = code.replace(README_URL, url)
    tree = ast.parse(code)
    last = tree.body[-1]
    assert isinstance(last, ast.Expr), f"{b}: the last statement is not an expression"
    ns = {"__name__": "readme_example"}
    exec(compile(ast.Module(body=tree.body[:-1], type_ignores=[]), f"README.md:{b.line}", "exec"), ns)
    value = eval(compile(ast.Expression(last.value), f"README.md:{b.line}", "eval"), ns)
    import polars as pl
    assert isinstance(value, pl.DataFrame), f"{b}: the last expression is a {type(value)}"
    assert value.height > 0, f"{b}: empty DataFrame"
    _, want = selection_columns(ns["q"])
    missing = [c for c in want if c not in value.columns]
    assert not missing, f"{b}: columns {missing} missing from {value.columns}"
    return value, want


def test_python_scan_delta():
    """An outside engine reads the sample lake's responses table through its Delta log: the
    same counts per agency as DuckDB over the files the `deltalake` package lists."""
    b = block("test_python_scan_delta")
    tree = ast.parse(b.text.replace('"data/sample/', f'"{SAMPLE}/'))
    ns = {"__name__": "readme_example"}
    exec(compile(ast.Module(body=tree.body[:-1], type_ignores=[]), f"README.md:{b.line}", "exec"), ns)
    got = eval(compile(ast.Expression(tree.body[-1].value), f"README.md:{b.line}", "eval"), ns)
    want = duck().execute(f"SELECT agency, count(*) FROM {scan(SAMPLE)} GROUP BY 1 ORDER BY 1").fetchall()
    assert [tuple(r) for r in got.iter_rows()] == want and sum(n for _, n in want) == 200000


def test_graphql_time_travel(tmp_path):
    """`asOf: { version: 0 }` on a copy of the sample lake that has since taken more rows reads
    the lake as it was: the migrated sample (version 0 of its responses table)."""
    b = block("test_graphql_time_travel")
    lake = tmp_path / "lake"
    shutil.copytree(SAMPLE, lake)
    now = b.text.replace(", asOf: { version: 0 }", "")
    before = graphql(lake, now)
    extra = tmp_path / "extra.csv"
    duck().execute(f"COPY (SELECT * EXCLUDE (fiscal_year, fiscal_quarter) REPLACE (response_id || '-again' AS response_id) "
                   f"FROM {scan(SAMPLE)} WHERE agency = 'VA' LIMIT 500) TO '{extra}' (HEADER)")
    run = subprocess.run([str(BIN), "ingest", "--lake", str(lake), str(extra)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert graphql(lake, now)["data"]["scores"] != before["data"]["scores"]
    got = graphql(lake, b.text)
    assert "errors" not in got, got
    assert got["data"]["scores"] == before["data"]["scores"]
    tables = {t["table"]: t["version"] for t in got["data"]["lakeVersions"]["tables"]}
    assert tables["responses"] == 1 and got["data"]["lakeVersions"]["lakeVersion"] == sum(v + 1 for v in tables.values())


def test_python_parquet_by_url(sample_server):
    df, cols = run_python_block("test_python_parquet_by_url", sample_server)
    assert cols == ["agency", "n", "mean", "agreeShare"]
    assert df["agency"].n_unique() == df.height > 10


def test_python_arrow_stream(sample_server):
    df, cols = run_python_block("test_python_arrow_stream", sample_server)
    assert cols == ["serviceType", "n", "drivers_driver", "drivers_shapleyShare"]
    assert df["serviceType"].n_unique() >= 2 and df["drivers_driver"].n_unique() >= 6  # drivers unnested into rows


def test_python_requests_json(sample_server):
    df, cols = run_python_block("test_python_requests_json", sample_server)
    assert cols == ["serviceType", "n", "mean", "agreeShare"]
    assert df["serviceType"].n_unique() == df.height >= 2


# ---------------------------------------------------------------------------------------------
# The Touchpoints sidecar.

def test_toml_touchpoints_sidecar(tmp_path):
    b = block("test_toml_touchpoints_sidecar")
    sidecar = tmp_path / "va-s01.toml"
    sidecar.write_text(b.text + "\n")
    export = tmp_path / "touchpoints.csv"
    rows, answered, ups = touchpoints_export(export)
    lake = tmp_path / "fresh"
    proc = subprocess.run([str(BIN), "ingest", "--lake", lake, "--format", "touchpoints-v2", "--mapping", sidecar, export, "--json"],
                          capture_output=True, text=True, env=clean_env(), timeout=120)
    assert proc.returncode == 0, f"{b}: ingest failed ({proc.returncode}): {proc.stderr}"
    (s,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert (s["rows_read"], s["rows_stored"], s["rows_quarantined"]) == (rows, rows, 0), s
    resp = graphql(lake, "{ scores(groupBy: [AGENCY, SERVICE, CHANNEL], measures: [TRUST]) { agency service channel n nThumbs nLikert agreeShare suppressed } }",
                   suppress=True)
    assert "errors" not in resp, resp
    (row,) = resp["data"]["scores"]
    assert (row["agency"], row["service"], row["channel"], row["n"], row["nThumbs"], row["nLikert"], row["suppressed"]) == \
        ("VA", "VA-S01", "digital", answered, answered, 0, False), row
    assert row["agreeShare"] == pytest.approx(ups / answered)
    # The sidecar's coding and submitted_at are what is stored.
    got = duck().execute(f"""SELECT DISTINCT agency, bureau, service_type, collection_id, scale, strftime(submitted_at, '%Y-%m-%d')
                             FROM {scan(lake)}""").fetchall()
    assert got == [("VA", "VA-VBA", "benefits", "VA-S01-digital", "thumbs", "2025-03-01")], got


# ---------------------------------------------------------------------------------------------
# sh blocks.

def test_sh_serve_sample_lake(servers):
    """`cargo run --release -- serve` is the built binary's `serve` with no arguments (from the
    repository root): it serves data/sample, with GraphiQL at /."""
    b = block("test_sh_serve_sample_lake")
    (n, cmd), = command_lines(b)
    assert cmd == "cargo run --release -- serve", cmd
    port = free_port()
    _, url, err = servers.start(n, "cxlake serve", subs=[("serve", f"serve --listen 127.0.0.1:{port}")], cwd=ROOT)
    assert not err, err
    health = json.loads(urllib.request.urlopen(f"{url}/health", timeout=10).read())
    assert Path(health["lake"]).resolve() == SAMPLE.resolve(), health
    q = "{ scores(groupBy: [AGENCY], measures: [TRUST]) { agency n } }"
    status, body = post_graphql(url, q)
    assert status == 200 and body == graphql(SAMPLE, q, suppress=True), body
    with urllib.request.urlopen(f"{url}/", timeout=10) as resp:
        assert resp.headers.get("content-type", "").startswith("text/html")
        page = resp.read().decode()
    assert "graphiql" in page.lower() and "<html" in page.lower(), page[:300]
    assert not re.findall(r"""(?:src|href)\s*=\s*["']https?://""", page), "GraphiQL loads something from the internet"


def test_sh_run_all_tests():
    """`./tests/run.sh` is this very test run: it exists, is executable and is what CI runs."""
    b = block("test_sh_run_all_tests")
    (n, cmd), = command_lines(b)
    assert cmd == "./tests/run.sh"
    script = ROOT / "tests" / "run.sh"
    assert script.is_file() and os.access(script, os.X_OK), f"README.md:{n}: {script} missing or not executable"
    assert "pytest" in script.read_text() and "tests/python" in script.read_text()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert any(re.search(r"(^|\s)(exec\s+)?\./tests/run\.sh\b", strip_comment(l)) for l in ci), ".ci/run does not call ./tests/run.sh"


def lake_head(lake):
    """The version of each of the lake's Delta tables, as the `deltalake` package reads them."""
    from deltalake import DeltaTable  # noqa: PLC0415
    return {t: DeltaTable(str(Path(lake) / t)).version() for t in ["responses", "telemetry", "indicators"]}


def test_sh_ingest_files(tmp_path):
    b = block("test_sh_ingest_files")
    files_line = find_line(b, "cxlake ingest --lake mylake responses.csv")
    tp_line = find_line(b, "cxlake ingest --lake mylake --format touchpoints-v2")
    c = duck()
    ids = sample_rows(c, tmp_path / "responses.csv", "agency = 'SSA'", 30, "csv")
    ids += sample_rows(c, tmp_path / "more.jsonl", "agency = 'DOL'", 25, "jsonl", exclude=())
    # Under agency=VA/ the agency comes from the path: the file has no agency column.
    va = sample_rows(c, tmp_path / "export" / "agency=VA" / "part-0.parquet", "agency = 'VA'", 20, "parquet",
                     exclude=("agency", "fiscal_year", "fiscal_quarter"))
    assert "agency" not in [r[0] for r in c.execute(f"SELECT name FROM parquet_schema('{tmp_path}/export/agency=VA/part-0.parquet')").fetchall()]
    proc = check(sh(*files_line, cwd=tmp_path))
    stored = [int(x) for x in re.findall(r"stored (\d+)", proc.stdout)]
    assert stored == [30, 25, 20], proc.stdout
    lake = tmp_path / "mylake"
    got = dict(c.execute(f"SELECT response_id, agency FROM {scan(lake)}").fetchall())
    assert sorted(got) == sorted(ids + va)
    assert {got[i] for i in va} == {"VA"}
    # The lake's rows are the sample's rows.
    cols = "response_id, submitted_at, agency, service_id, channel, scale, trust, satisfaction, ease, positive_ease, free_text_1, weight"
    want_ids = ", ".join(f"'{i}'" for i in ids + va)
    diff = c.execute(f"""SELECT count(*) FROM (SELECT {cols} FROM {scan(SAMPLE)} WHERE response_id IN ({want_ids})
                         EXCEPT ALL SELECT {cols} FROM {scan(lake)})""").fetchone()[0]
    assert diff == 0
    # Again: nothing new stored, the lake version unchanged.
    version = lake_head(lake)
    again = check(sh(*files_line, cwd=tmp_path))
    assert lake_head(lake) == version, again.stdout
    assert c.execute(f"SELECT count(*) FROM {scan(lake)}").fetchone()[0] == 75
    # The Touchpoints line, with the README's sidecar as va-s01.toml.
    (tmp_path / "va-s01.toml").write_text(block("test_toml_touchpoints_sidecar").text + "\n")
    rows, _, _ = touchpoints_export(tmp_path / "touchpoints.csv", seed=12)
    proc = check(sh(*tp_line, cwd=tmp_path))
    assert re.findall(r"stored (\d+)", proc.stdout) == [str(rows)] and "quarantined 0" in proc.stdout, proc.stdout
    assert c.execute(f"SELECT count(*) FROM {scan(lake)}").fetchone()[0] == 75 + rows
    assert c.execute(f"SELECT count(*) FROM {scan(lake)} WHERE service_id = 'VA-S01' AND scale = 'thumbs'").fetchone()[0] == rows


def expand_optional(cmd):
    """A command with `[--opt ...]` optional parts: (without them, with them)."""
    return re.sub(r"\s*\[[^\]]*\]", "", cmd), re.sub(r"\[([^\]]*)\]", r"\1", cmd)


def test_sh_keys_and_roles(tmp_path, servers):
    b = block("test_sh_keys_and_roles")
    lines = command_lines(b)
    keys = tmp_path / "keys.json"
    subs = [("/etc/cxlake/keys.json", keys)]
    add_public = find_line(b, 'cxlake keys --keys /etc/cxlake/keys.json add --name "public dashboard"')
    add_va = find_line(b, 'cxlake keys --keys /etc/cxlake/keys.json add --name "VA CX team"')
    list_line = find_line(b, "cxlake keys --keys /etc/cxlake/keys.json list")
    revoke_line = find_line(b, "cxlake keys --keys /etc/cxlake/keys.json revoke")
    serve_line = find_line(b, "cxlake serve --keys")
    curl_line = find_line(b, "curl ")
    assert len(lines) == 6, lines

    def added(proc):
        key = proc.stdout.strip()
        assert re.fullmatch(r"cxk_[0-9a-f]+_[0-9a-f]+", key), f"{proc.readme}: printed {proc.stdout!r}"
        kid = re.search(r"added key (\w+)", proc.stderr).group(1)
        return kid, key

    public_id, public_key = added(check(sh(*add_public, subs=subs, cwd=tmp_path)))
    va_id, va_key = added(check(sh(*add_va, subs=subs, cwd=tmp_path)))
    assert public_key not in keys.read_text() and va_key not in keys.read_text(), "the keys file holds only hashes"
    listed = check(sh(*list_line, subs=subs, cwd=tmp_path)).stdout
    assert public_id in listed and va_id in listed and "public dashboard" in listed and "VA CX team" in listed, listed
    assert public_key not in listed and va_key not in listed

    # `cxlake serve --keys ... --listen 0.0.0.0:8080 [--no-anonymous] [--rate-limit 50]`: without
    # the optional flags, and with them. No --lake: the default, data/sample, from the repository.
    plain, full = expand_optional(serve_line[1])
    (_, url, err) = servers.start(serve_line[0], plain, subs=subs + [(":8080", f":{free_port()}")], cwd=ROOT)
    assert not err, err
    (_, strict_url, err) = servers.start(serve_line[0], full, subs=subs + [(":8080", f":{free_port()}")], cwd=ROOT)
    assert not err, err

    # `curl -H "Authorization: Bearer cxk_..." ...` with a real key and a GraphQL request.
    template = shlex.split(curl_line[1])
    assert template[:3] == ["curl", "-H", "Authorization: Bearer cxk_..."] and template[3:] == ["..."], template

    def curl_graphql(base, key, query):
        args = ["-H", f"Authorization: Bearer {key}"] if key else []
        status, body = curl(args + ["-H", "content-type: application/json", "-d", json.dumps({"query": query}), f"{base}/graphql"], cwd=tmp_path)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode(errors="replace")

    def forbidden(resp):
        status, body = resp
        return status in (401, 403) or (isinstance(body, dict) and any(e.get("extensions", {}).get("code") == "FORBIDDEN" for e in body.get("errors", [])))

    scores = "{ scores(groupBy: [AGENCY], measures: [TRUST]) { agency n } }"
    raw_va = '{ responses(filter: {agency: ["VA"]}, first: 5) { totalCount rows { responseId } } }'
    raw_ssa = '{ responses(filter: {agency: ["SSA"]}, first: 5) { totalCount rows { responseId } } }'
    status, body = curl_graphql(url, va_key, raw_va)
    assert status == 200 and "errors" not in body and body["data"]["responses"]["rows"], (status, body)
    assert forbidden(curl_graphql(url, va_key, raw_ssa)), "an agency key reads another agency's rows"
    status, body = curl_graphql(url, public_key, scores)
    assert status == 200 and body["data"]["scores"], body
    assert forbidden(curl_graphql(url, public_key, raw_va)), "a public key reads raw rows"
    status, body = curl_graphql(url, None, scores)
    assert status == 200 and body["data"]["scores"], "anonymous callers are served as public"
    # --no-anonymous refuses callers without a key, serves keys.
    assert forbidden(curl_graphql(strict_url, None, scores)), "--no-anonymous served a caller without a key"
    status, body = curl_graphql(strict_url, public_key, scores)
    assert status == 200 and body["data"]["scores"], body

    # `revoke 3f9c01ab` with the id `add` printed (and `list` showed): running servers refuse it
    # within a second.
    assert "3f9c01ab" in revoke_line[1]
    check(sh(*revoke_line, subs=subs + [("3f9c01ab", va_id)], cwd=tmp_path))
    revoked_at = time.time()
    while not forbidden(curl_graphql(url, va_key, raw_va)):
        assert time.time() - revoked_at < 2.0, "a revoked key still works after 2 s (README: refused within a second)"
        time.sleep(0.1)
    listed = check(sh(*list_line, subs=subs, cwd=tmp_path)).stdout
    va_listed = [l for l in listed.splitlines() if l.startswith(va_id)]
    assert va_listed and "live" not in va_listed[0], listed
    status, body = curl_graphql(url, public_key, scores)
    assert status == 200 and body["data"]["scores"], "the other key still works"


def test_sh_s3_lake_and_replicas(s3, tmp_path, servers):
    b = block("test_sh_s3_lake_and_replicas")
    export_line = find_line(b, "export ")
    ingest_line = find_line(b, "cxlake ingest --lake s3://")
    ro_line, wal_line = [(n, c) for n, c in command_lines(b) if c.startswith("cxlake serve")]
    assert "--submit" not in ro_line[1] and "--submit --wal" in wal_line[1]
    # The `export` line's variables, with the fixture's values (not the README's placeholders);
    # nothing else from AWS_* (no region, no AWS_ALLOW_HTTP): the README says these three suffice.
    names = re.findall(r"\b(AWS_\w+)=", export_line[1])
    assert sorted(names) == ["AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL", "AWS_SECRET_ACCESS_KEY"], names
    env = {k: v for k, v in clean_env().items() if not k.startswith("AWS_")}
    env.update({k: s3.env()[k] for k in names})
    readme_lake = re.search(r"--lake (s3://\S+)", ingest_line[1]).group(1)
    prefix = f"readme-{os.getpid()}-{int(time.time() * 1000)}"
    lake = s3.url(prefix)
    c = duck()
    ids = sample_rows(c, tmp_path / "exports" / "ssa.csv", "agency = 'SSA'", 40, "csv")
    ids += sample_rows(c, tmp_path / "exports" / "dol.csv", "agency = 'DOL'", 30, "csv")
    proc = check(sh(*ingest_line, subs=[(readme_lake, lake)], cwd=tmp_path, env=env))
    assert [int(x) for x in re.findall(r"stored (\d+)", proc.stdout)] == [30, 40], proc.stdout  # exports/dol.csv, exports/ssa.csv
    objects = s3.keys(prefix)
    assert any(k.startswith("responses/agency=SSA/") and k.endswith(".parquet") for k in objects), sorted(objects)
    want = {r[0]: r[1] for r in c.execute(f"""SELECT agency, count(trust) FROM {scan(SAMPLE)}
        WHERE response_id IN ({', '.join(f"'{i}'" for i in ids)}) GROUP BY agency""").fetchall()}

    ro_port, wal_port, wal_dir = free_port(), free_port(), tmp_path / "wal"
    # Replicas listen beyond loopback, so they serve with keys: the README's keys file, here a
    # temporary one holding an admin key.
    keys = tmp_path / "keys.json"
    admin = subprocess.run([str(BIN), "keys", "--keys", keys, "add", "--name", "replicas", "--role", "admin"],
                           capture_output=True, text=True, check=True, env=env).stdout.strip()
    key_subs = [("/etc/cxlake/keys.json", keys)]
    ro_subs = [(readme_lake, lake), (":8080", f":{ro_port}"), *key_subs]
    wal_subs = [(readme_lake, lake), (":8081", f":{wal_port}"), ("/var/lib/cxlake/wal", wal_dir), *key_subs]
    _, ro_url, err = servers.start(*ro_line, subs=ro_subs, cwd=tmp_path, env=env)
    assert not err, err
    _, wal_url, err = servers.start(*wal_line, subs=wal_subs, cwd=tmp_path, env=env)
    assert not err, err

    q = "{ scores(groupBy: [AGENCY], measures: [TRUST]) { agency n } }"
    for u in [ro_url, wal_url]:
        status, body = post_graphql(u, q, admin)
        assert status == 200 and "errors" not in body, body
        assert {r["agency"]: r["n"] for r in body["data"]["scores"]} == want, (u, body)
    # A response submitted to the --submit replica shows up in the read-only one.
    svc = c.execute(f"SELECT agency, bureau, service_id, service_type FROM {scan(SAMPLE)} WHERE response_id = '{ids[0]}'").fetchone()
    response = {"response_id": f"readme-s3-{prefix}", "submitted_at": "2025-06-01T12:00:00Z", "agency": svc[0], "bureau": svc[1],
                "service_id": svc[2], "service_type": svc[3], "channel": "digital", "collection_id": "readme-s3",
                "scale": "likert5", "trust": 5}
    headers = {"content-type": "application/json", **({"authorization": f"Bearer {admin}"} if admin else {})}
    req = urllib.request.Request(f"{wal_url}/v1/responses", data=json.dumps(response).encode(), headers=headers)
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status in (200, 201, 202), resp.status
    deadline = time.time() + 10
    while True:
        _, body = post_graphql(ro_url, q, admin)
        if {r["agency"]: r["n"] for r in body["data"]["scores"]}.get(svc[0]) == want[svc[0]] + 1:
            break
        assert time.time() < deadline, f"a submitted response did not reach the read-only replica in 10 s: {body}"
        time.sleep(0.2)


def test_sh_hisp_report(tmp_path, sample_server):
    b = block("test_sh_hisp_report")
    report_line = find_line(b, "cxlake report hisp")
    curl_line = find_line(b, "curl ")
    out = tmp_path / "hisp.xlsx"
    proc = check(sh(*report_line, subs=[("--out hisp.xlsx", f"--out {out}"), ("--lake data/sample", f"--lake {SAMPLE}")], cwd=tmp_path))
    assert "due" in proc.stderr, proc.stderr
    import openpyxl
    book = openpyxl.load_workbook(out)
    sheet = book.worksheets[0]
    header = [c.value for c in sheet[1]]
    assert header[:2] == ["collection_year", "collection_quarter"] and "q1_1" in header and "q2_5" in header, header
    data = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
    assert data and all(str(r[0]) == "2026" and str(r[1]) == "4" for r in data), data[:2]
    # The curl line against a server on the sample lake; -o hisp.csv in the temp dir.
    args = shlex.split(curl_line[1])
    assert args[0] == "curl" and args[-1].startswith(README_URL), args
    status, _ = curl([a.replace(README_URL, sample_server) for a in args[1:]], cwd=tmp_path)
    assert status == 200, status
    with open(tmp_path / "hisp.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == header, rows[0]
    assert len(rows) - 1 == len(data), (len(rows) - 1, len(data))


# ---------------------------------------------------------------------------------------------
# The command-line synopsis: every subcommand and flag it lists is accepted.

HELP_CACHE = {}


def help_text(path):
    if path not in HELP_CACHE:
        proc = subprocess.run([str(BIN), *path, "--help"], capture_output=True, text=True, env=clean_env(), timeout=30)
        assert proc.returncode == 0, f"cxlake {' '.join(path)} --help: {proc.stderr}"
        HELP_CACHE[path] = proc.stdout
    return HELP_CACHE[path]


def subcommands(path):
    text = help_text(path)
    m = re.search(r"^Commands:\n((?:  .*\n?)+)", text, re.M)
    return set(re.findall(r"^  (\w[\w-]*)", m.group(1), re.M)) - {"help"} if m else set()


def options(path):
    """flag -> (takes a value, its help text) of `cxlake PATH --help`."""
    text = help_text(path)
    opts, current = {}, None
    for line in text.splitlines():
        m = re.match(r"^\s+(?:-\w, )?(--[\w-]+)(?: <([^>]+)>)?", line)
        if m:
            current = m.group(1)
            opts[current] = [m.group(2) is not None, line]
        elif current and (line.startswith(" ") or not line.strip()):
            opts[current][1] += "\n" + line
        else:
            current = None
    return {k: (v, t) for k, (v, t) in opts.items()}


def test_sh_command_line_synopsis():
    b = block("test_sh_command_line_synopsis")
    problems, commands, every = [], [], []
    for i, raw in enumerate(b.text.splitlines()):
        line = raw.rstrip()
        if line.lstrip().startswith("#"):
            every += re.findall(r"--[\w-]+(?:\s+[\w|]+)?", line.split(":", 1)[1] if "every command" in line else "")
            continue
        line = strip_comment(line)
        if not line.strip():
            continue
        if line.startswith("cxlake "):
            commands.append([b.body_line(i), line])
        else:
            assert commands and raw.startswith(" "), f"README.md:{b.body_line(i)}: not a cxlake line nor a continuation: {raw!r}"
            commands[-1][1] += " " + line.strip()
    assert len(commands) >= 10 and every, (commands, every)
    seen_paths = set()
    for n, cmd in commands:
        tokens = re.sub(r"[\[\]]", " ", cmd).split()[1:]
        sub = tokens.pop(0)
        if sub not in subcommands(()):
            problems.append(f"README.md:{n}: `cxlake {sub}` is not a subcommand")
            continue
        root = (sub,)
        path = root
        seen_paths.add(path)
        k = 0
        while k < len(tokens):
            t = tokens[k]
            k += 1
            if t == "|":
                path = root
            elif t.startswith("--"):
                opts = options(path)
                if t not in opts:
                    problems.append(f"README.md:{n}: `cxlake {' '.join(path)}` does not accept {t}")
                    continue
                takes_value, text = opts[t]
                if takes_value and k < len(tokens) and not tokens[k].startswith("--") and tokens[k] != "|":
                    value = tokens[k]
                    k += 1
                    if re.fullmatch(r"[\d.:]+", value) and f"[default: {value}]" not in text:
                        problems.append(f"README.md:{n}: `{t} {value}` is shown as the default, help says: {text.strip()}")
                    elif re.fullmatch(r"[a-z0-9_]+(\|[a-z0-9_]+)+", value):
                        for alt in value.split("|"):
                            if not re.search(rf"(?<![\w-]){alt}(?![\w-])", text):
                                problems.append(f"README.md:{n}: {t} has no value {alt!r}: {text.strip()}")
                elif not takes_value and k < len(tokens) and re.fullmatch(r"[a-z][\w-]*", tokens[k]) and tokens[k] not in subcommands(path):
                    problems.append(f"README.md:{n}: {t} takes no value but {tokens[k]!r} follows it")
            elif t in subcommands(path):
                path = path + (t,)
                seen_paths.add(path)
            elif re.fullmatch(r"[a-z][a-z-]*", t):
                problems.append(f"README.md:{n}: {t!r} is not a subcommand of `cxlake {' '.join(path)}`")
            # else: a placeholder (FILE..., ID, FILE.graphql, ...)
    # "# every command: --log-format text|json"
    for item in every:
        flag, *value = item.split()
        for path in sorted(seen_paths) + [()]:
            if path and subcommands(path):
                continue  # a command group: its subcommands are checked
            opts = options(path)
            if flag not in opts:
                problems.append(f"README.md: `cxlake {' '.join(path)}` does not accept {flag} (every command should)")
            elif value:
                for alt in value[0].split("|"):
                    if alt not in opts[flag][1]:
                        problems.append(f"README.md: `cxlake {' '.join(path)} {flag}` has no value {alt!r}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# SQL for BI tools.

def test_sh_sql_protocols(servers):
    """The serve line (ports made free, `&` as the server's process), then psql as written:
    `\\dt` lists the score tables and the query answers a row per agency, as GraphQL does."""
    b = block("test_sh_sql_protocols")
    (n1, serve), (n2, psql) = command_lines(b)
    http, pg, flight = free_port(), free_port(), free_port()
    assert serve.endswith("&"), serve
    _, url, err = servers.start(n1, serve.rstrip("&").strip(), cwd=ROOT, subs=[
        ("serve", f"serve --listen 127.0.0.1:{http}"), ("127.0.0.1:5432", f"127.0.0.1:{pg}"), ("127.0.0.1:50051", f"127.0.0.1:{flight}")])
    assert not err, err
    run = subprocess.run(["bash", "-c", psql.replace("-p 5432", f"-p {pg}") + " -X -A -F '|'"], capture_output=True, text=True,
                         env=dict(clean_env(), PGCONNECT_TIMEOUT="10"), cwd=ROOT, timeout=120)
    assert run.returncode == 0, f"README.md:{n2}: {run.stderr}"
    assert "|scores_by_agency|table|" in run.stdout and "|scores_by_service_fiscal_quarter|table|" in run.stdout, run.stdout
    want = {r["agency"]: r["n"] for r in graphql(SAMPLE, "{ scores(groupBy: [AGENCY], measures: [TRUST]) { agency n } }", suppress=True)["data"]["scores"]}
    rows = [ln.split("|") for ln in run.stdout.splitlines() if ln.count("|") == 2 and not ln.startswith("agency|")]
    assert {a: int(k) for a, k, _ in rows} == want, run.stdout


def test_python_flight_sql_polars(servers):
    """The ADBC example against a server with Flight SQL on a free port: `trust` holds the trust
    scores by agency and fiscal quarter."""
    b = block("test_python_flight_sql_polars")
    http, flight = free_port(), free_port()
    _, url, err = servers.start(b.line, f"cxlake serve --lake {SAMPLE} --listen 127.0.0.1:{http} --flight-sql 127.0.0.1:{flight}")
    assert not err, err
    code = b.text.replace("grpc://127.0.0.1:50051", f"grpc://127.0.0.1:{flight}")
    ns = {"__name__": "readme_example"}
    exec(compile(code, f"README.md:{b.line}", "exec"), ns)
    trust = ns["trust"]
    assert trust.columns == ["agency", "period", "n", "agree_share"]
    want = graphql(SAMPLE, "{ scores(groupBy: [AGENCY], period: FISCAL_QUARTER, measures: [TRUST]) { agency period n } }", suppress=True)["data"]["scores"]
    assert sorted(zip(trust["agency"], trust["period"], trust["n"])) == sorted((r["agency"], r["period"], r["n"]) for r in want)

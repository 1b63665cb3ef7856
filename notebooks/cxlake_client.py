"""cxlake from Python: a small client for notebooks.

    from cxlake_client import Client
    cx = Client()                      # CXLAKE_URL or http://127.0.0.1:8080; CXLAKE_KEY for a key
    cx.table("{ scores(groupBy: [AGENCY]) { agency n mean } }")      # a polars DataFrame
    cx.table(query).to_pandas()                                       # the pandas one-liner
    cx.data(query, f={"agency": ["VA"]})                              # the JSON `data`, nested

`table` asks the server for an Arrow IPC stream (the query's single top-level list, flattened:
nested fields become `parent_child` columns, one nested list is unnested into rows) and reads
it with polars without a JSON detour; `data` returns the JSON for nested results. Errors come
back as `CxlakeError` with the server's messages. `LocalServer` starts `cxlake serve` on a lake
of your own (notebook 04), `figure` saves a plot as PNG where CI collects it.
"""
import io
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import polars as pl
import requests

ARROW = "application/vnd.apache.arrow.stream"
ROOT = Path(__file__).resolve().parents[1]


class CxlakeError(RuntimeError):
    """A GraphQL or HTTP error, with the server's message."""


class Client:
    def __init__(self, url=None, key=None, timeout=300):
        self.url = (url or os.environ.get("CXLAKE_URL", "http://127.0.0.1:8080")).rstrip("/")
        key = key or os.environ.get("CXLAKE_KEY")
        self.session = requests.Session()
        if key:
            self.session.headers["Authorization"] = f"Bearer {key}"
        self.timeout = timeout

    def _post(self, query, variables, accept="application/json"):
        r = self.session.post(f"{self.url}/graphql", json={"query": query, "variables": variables or None},
                              headers={"Accept": accept}, timeout=self.timeout)
        if r.headers.get("content-type", "").startswith("application/json"):
            body = r.json()
            if "errors" in body or "error" in body:
                raise CxlakeError(body.get("errors") or body.get("error"))
        r.raise_for_status()
        return r

    def data(self, query, **variables):
        """The `data` of a query as nested Python objects."""
        return self._post(query, variables).json()["data"]

    def table(self, query, **variables):
        """The query's single top-level list as a polars DataFrame, read from Arrow."""
        r = self._post(query, variables, accept=ARROW)
        return pl.read_ipc_stream(io.BytesIO(r.content))

    def health(self):
        return self.session.get(f"{self.url}/health", timeout=10).json()


def binary():
    """The cxlake executable: CXLAKE_BIN, a build in this repository, or `cxlake` on PATH."""
    for candidate in [os.environ.get("CXLAKE_BIN"), ROOT / "target" / "release" / "cxlake", ROOT / "target" / "debug" / "cxlake"]:
        if candidate and Path(candidate).exists():
            return str(candidate)
    found = shutil.which("cxlake")
    if not found:
        raise CxlakeError("no cxlake binary: build it with `cargo build --release` or set CXLAKE_BIN")
    return found


def cxlake(*args):
    """Runs the cxlake command line; returns its standard output (raises with stderr on failure)."""
    proc = subprocess.run([binary(), *map(str, args)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise CxlakeError(f"cxlake {' '.join(map(str, args))}: {proc.stderr.strip()}")
    return proc.stdout


class LocalServer:
    """`cxlake serve` on a lake of your own, on a free loopback port, for a `with` block."""

    def __init__(self, lake, *args):
        self.lake, self.args = str(lake), [str(a) for a in args]

    def __enter__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.proc = subprocess.Popen([binary(), "serve", "--lake", self.lake, "--listen", f"127.0.0.1:{port}", *self.args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        client = Client(f"http://127.0.0.1:{port}")
        for _ in range(600):
            if self.proc.poll() is not None:
                raise CxlakeError(f"cxlake serve exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                client.health()
                return client
            except requests.ConnectionError:
                time.sleep(0.05)
        raise CxlakeError("cxlake serve did not start in 30 s")

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def figure(fig, name):
    """Saves a matplotlib figure as PNG in CXLAKE_FIGURES (default `figures/`); returns the path."""
    out = Path(os.environ.get("CXLAKE_FIGURES", "figures"))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path

"""GraphQL over HTTP conformance: graphql-http's server audit (tests/graphql_http/audit.mjs, the
npm package pinned in its package-lock.json) against `cxlake serve` on the sample lake. Every
MUST and SHOULD audit has to pass (the MAYs are printed as notices and fail nothing)."""
import shutil
import signal
import subprocess

import pytest

from conftest import ROOT, start_server

AUDIT = ROOT / "tests" / "graphql_http"


@pytest.fixture(scope="module")
def audit_deps():
    """The audit's node_modules, installed from the lock file when missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed for the GraphQL over HTTP audit")
    if not (AUDIT / "node_modules" / "graphql-http").is_dir():
        proc = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=AUDIT, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"npm ci failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return AUDIT


@pytest.fixture(scope="module")
def server():
    proc, url = start_server("--lake", ROOT / "data" / "sample")
    yield url
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def test_graphql_over_http_audit(audit_deps, server):
    proc = subprocess.run(["node", "audit.mjs", f"{server}/graphql"], cwd=audit_deps, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"graphql-http audit failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    # The MAY audits pass too (mutations refused over GET, 400 without a query).
    assert ", 0 notice, 0 warn, 0 error" in proc.stdout, proc.stdout

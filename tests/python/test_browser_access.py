"""A keyless server (every caller an admin, loopback only) against web pages in the same browser:
foreign Host names (DNS rebinding) and origins are refused, form-like POSTs change nothing, CORS
headers only for --cors-origin; plain clients on 127.0.0.1 work as before."""
import signal
import urllib.parse

import pytest
import requests

from conftest import ROOT, run_cxlake, start_server

QUERY = "{ services { id } }"


@pytest.fixture(scope="module")
def server():
    proc, url = start_server("--lake", ROOT / "data" / "sample", "--allowed-host", "cx.internal",
                             "--cors-origin", "https://dash.example.gov")
    yield url
    proc.send_signal(signal.SIGTERM)
    proc.wait()


def test_plain_clients_work(server):
    r = requests.post(f"{server}/graphql", json={"query": QUERY}, timeout=30)
    assert r.status_code == 200 and r.json()["data"]["services"], r.text
    assert "access-control-allow-origin" not in r.headers
    r = requests.get(f"{server}/graphql", params={"query": QUERY}, timeout=30)
    assert r.status_code == 200, r.text


def test_foreign_host_names_are_refused(server):
    port = urllib.parse.urlsplit(server).port
    r = requests.get(f"{server}/v1/export?format=csv&agency=VA", headers={"Host": f"rebound.evil.example:{port}"}, timeout=30)
    assert r.status_code == 421 and "rebound.evil.example" in r.json()["error"], r.text
    r = requests.post(f"{server}/graphql", json={"query": QUERY}, headers={"Host": "cx.internal"}, timeout=30)
    assert r.status_code == 200, r.text
    r = requests.post(f"{server}/graphql", json={"query": QUERY}, headers={"Host": f"localhost:{port}"}, timeout=30)
    assert r.status_code == 200, r.text


def test_cross_site_requests_are_refused(server):
    r = requests.post(f"{server}/graphql", data='{"query": "mutation { x }"}', headers={"content-type": "text/plain"}, timeout=30)
    assert r.status_code == 415, r.text
    r = requests.get(f"{server}/graphql", params={"query": "mutation { upsertServices(services: []) { services } }"}, timeout=30)
    assert r.status_code == 405, r.text
    r = requests.post(f"{server}/graphql", json={"query": QUERY}, headers={"Origin": "https://evil.example"}, timeout=30)
    assert r.status_code == 403 and "https://evil.example" in r.json()["error"], r.text
    assert "access-control-allow-origin" not in r.headers


def test_cors_only_for_the_listed_origin(server):
    pre = {"Origin": "https://dash.example.gov", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    r = requests.options(f"{server}/graphql", headers=pre, timeout=30)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://dash.example.gov", r.headers
    r = requests.post(f"{server}/graphql", json={"query": QUERY}, headers={"Origin": "https://dash.example.gov"}, timeout=30)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://dash.example.gov"
    r = requests.options(f"{server}/graphql", headers=dict(pre, Origin="https://other.example.gov"), timeout=30)
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers


def test_bad_flag_values_are_named():
    proc = run_cxlake("serve", "--lake", ROOT / "data" / "sample", "--cors-origin", "dash.example.gov", check=False, timeout=30)
    assert proc.returncode != 0 and "--cors-origin 'dash.example.gov'" in proc.stderr, proc.stderr

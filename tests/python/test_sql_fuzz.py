"""Issue 22, bad input: 2,000 malformed statements and protocol messages against the SQL servers
(Postgres wire protocol and Flight SQL): each malformed statement is refused as an error on a
connection that goes on working, each malformed frame costs at most its own connection, the
server does not panic and stays up, and a connection opened before the barrage answers
correctly after it. Seeded (random.Random(22)), so a failure replays.
"""
import random
import socket
import struct
import subprocess

import pytest

from conftest import BIN, ROOT, free_port, wait_healthy

SAMPLE = ROOT / "data" / "sample"
VALID = [
    "SELECT agency, measure, n, mean FROM scores_by_agency WHERE measure = 'trust' ORDER BY agency",
    "SELECT s.service_type, count(*) FROM scores_by_service t JOIN services s ON s.id = t.service_id GROUP BY s.service_type",
    "SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relname ~ '^scores' ORDER BY 1",
    "DECLARE c CURSOR FOR SELECT * FROM offices",
    "FETCH 10 FROM c",
    "SELECT n FROM scores_overall WHERE measure = $1",
]
NOISE = ["'", '"', "(", ")", ";", "$", "$9", "--", "/*", "\\", "\x00", "é", "ORDER", "BY", "UNION", "SELECT", "FROM", "JOIN",
         "pg_catalog.", "information_schema.", "read_parquet('x')", "CURSOR", "FETCH", "99999999999999999999", "-", "*", ",", "::regclass"]


def mutate(rng, sql):
    ops = rng.randrange(5)
    if ops == 0:
        return sql[: rng.randrange(len(sql))]
    if ops == 1:
        i = rng.randrange(len(sql))
        return sql[:i] + rng.choice(NOISE) + sql[i:]
    if ops == 2:
        words = sql.split()
        rng.shuffle(words)
        return " ".join(words)
    if ops == 3:
        return "".join(chr(rng.randrange(1, 0x2FF)) for _ in range(rng.randrange(1, 60)))
    return " ".join(rng.choice(NOISE) for _ in range(rng.randrange(1, 12)))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    http, pg, flight = free_port(), free_port(), free_port()
    proc = subprocess.Popen([str(BIN), "serve", "--lake", SAMPLE, "--rate-limit", "0", "--listen", f"127.0.0.1:{http}",
                             "--pg", f"127.0.0.1:{pg}", "--flight-sql", f"127.0.0.1:{flight}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_healthy(f"http://127.0.0.1:{http}", proc)
    yield {"pg": pg, "flight": flight, "proc": proc}
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    lines = err.splitlines()
    panics = [" ".join(lines[i:i + 2]) for i, ln in enumerate(lines) if "panicked" in ln]
    assert not panics, panics[:5]


def startup():
    body = struct.pack("!i", 196608) + b"user\x00fuzz\x00database\x00cxlake\x00\x00"
    return struct.pack("!i", len(body) + 4) + body


def read_until_ready(sock):
    """Reads backend messages until ReadyForQuery; False if the server closed the connection."""
    buf = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            return False
        if not chunk:
            return False
        buf += chunk
        i = 0
        while len(buf) - i >= 5:
            kind, length = buf[i:i + 1], struct.unpack("!i", buf[i + 1:i + 5])[0]
            if kind == b"Z":
                return True
            i += 1 + length


def frame(rng):
    """A malformed frontend message: unknown type, wrong or absurd length, truncated body."""
    kind = rng.choice([b"Q", b"P", b"B", b"E", b"D", b"S", b"H", b"C", b"F", b"d", b"f", b"p", bytes([rng.randrange(256)])])
    payload = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
    length = rng.choice([len(payload) + 4, len(payload) + 4 + rng.randrange(1, 100), rng.randrange(0, 4), -rng.randrange(1, 2**31),
                         rng.randrange(2**20, 2**31), max(4, len(payload) + 4 - rng.randrange(1, 5))])
    message = kind + struct.pack("!i", length) + payload
    return message[: rng.randrange(1, len(message) + 1)] if rng.random() < 0.3 else message


def test_malformed_statements_and_frames_leave_the_server_up(server):
    import psycopg  # noqa: PLC0415
    rng = random.Random(22)
    witness = psycopg.connect(host="127.0.0.1", port=server["pg"], user="w", dbname="cxlake", connect_timeout=10, autocommit=True)
    want = witness.execute(VALID[0]).fetchall()
    assert want
    # 800 malformed statements over the Postgres protocol (simple and extended), one connection.
    refused = 0
    with psycopg.connect(host="127.0.0.1", port=server["pg"], user="f", dbname="cxlake", connect_timeout=10, autocommit=True) as conn:
        for k in range(800):
            sql = mutate(rng, rng.choice(VALID)).replace("\x00", "")
            try:
                if k % 2:
                    conn.execute(sql, prepare=True)
                else:
                    result = conn.pgconn.exec_(sql.encode())
                    refused += result.status == psycopg.pq.ExecStatus.FATAL_ERROR
                    assert conn.pgconn.status == psycopg.pq.ConnStatus.OK, (k, sql)
            except psycopg.OperationalError as e:
                pytest.fail(f"statement {k} {sql!r} cost the connection: {e}")
            except psycopg.Error:
                refused += 1
        assert conn.execute("SELECT count(*) FROM services").fetchone()[0] > 0
    assert refused > 600, refused
    # 1,000 malformed frames, each on a connection of its own (half before startup completes).
    for k in range(1000):
        with socket.create_connection(("127.0.0.1", server["pg"]), timeout=10) as s:
            if k % 2:
                s.sendall(startup())
                if not read_until_ready(s):
                    pytest.fail(f"frame {k}: startup failed")
            try:
                s.sendall(frame(rng))
                s.settimeout(0.05)
                s.recv(4096)
            except (socket.timeout, ConnectionResetError, BrokenPipeError):
                pass
    # 200 malformed statements over Flight SQL, and 50 bursts of bytes at its port.
    import adbc_driver_manager  # noqa: PLC0415
    from adbc_driver_flightsql import dbapi  # noqa: PLC0415
    with dbapi.connect(f"grpc://127.0.0.1:{server['flight']}", autocommit=True) as conn:
        for k in range(200):
            sql = mutate(rng, rng.choice(VALID))
            try:
                with conn.cursor() as cur:
                    cur.execute(sql)
                    cur.fetchall()
            except adbc_driver_manager.Error as e:
                assert "Unavailable" not in str(e), (k, sql, e)
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM services")
            assert cur.fetchone()[0] > 0
    for _ in range(50):
        with socket.create_connection(("127.0.0.1", server["flight"]), timeout=10) as s:
            s.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))))
    assert server["proc"].poll() is None, "the server stopped"
    assert witness.execute(VALID[0]).fetchall() == want, "a connection opened before the barrage answers as before"
    witness.close()

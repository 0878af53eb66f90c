"""Shared fixtures. ``s3_server``: a real moto S3 server process for object-storage tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class S3Server:
    """A running moto S3 endpoint with one bucket; ``url()`` gives a fresh prefix in it."""

    endpoint_url: str
    bucket: str

    @property
    def storage_options(self) -> dict[str, Any]:
        return {"endpoint_url": self.endpoint_url}

    def url(self, *parts: str) -> str:
        return "/".join([f"s3://{self.bucket}", *parts])

    def fresh_prefix(self) -> str:
        return self.url(uuid.uuid4().hex[:12])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_serving(proc: subprocess.Popen, endpoint: str, log_path: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(log_path) as fh:
                pytest.fail(f"moto server exited with code {proc.returncode}: {fh.read()[-2000:]}")
        try:
            with urllib.request.urlopen(endpoint, timeout=1):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    proc.kill()
    pytest.fail(f"moto server did not answer on {endpoint} within 30 s (log: {log_path})")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """Start ``python -m moto.server`` on 127.0.0.1 with dummy credentials and one bucket.

    A server that cannot start fails the test that asked for it; it is never skipped.
    """
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log_path = str(tmp_path_factory.mktemp("moto") / "moto.log")
    patch = pytest.MonkeyPatch()
    for key, value in S3_ENV.items():
        patch.setenv(key, value)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ},
        )
    try:
        _wait_until_serving(proc, endpoint, log_path)
        import s3fs

        server = S3Server(endpoint, "comodo-test")
        s3fs.S3FileSystem(**server.storage_options).mkdir(server.bucket)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        patch.undo()


@pytest.fixture
def one_torch_thread():
    """Tiny models on a shared machine: one torch thread, restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

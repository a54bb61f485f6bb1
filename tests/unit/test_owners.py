"""Claim owners fit the registry, and tell this host's dead processes from live and foreign ones."""

from __future__ import annotations

import os
import subprocess
import sys

from pymager import owners


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    return int(done.stdout)


def test_an_owner_fits_the_registry_column_whatever_the_hostname() -> None:
    long_name = "ip-172-31-22-107.eu-central-1.compute.internal.example-of-a-very-long-name"
    tag = owners._host_tag(long_name)
    owner = f"{tag}:{4194304}:{'f' * 16}"  # the largest pid Linux hands out
    assert len(owner) <= 64


def test_hosts_sharing_a_long_prefix_get_different_tags() -> None:
    first = owners._host_tag("pymager-image-service-deployment-7f9c5b8d4-x2k9q")
    second = owners._host_tag("pymager-image-service-deployment-7f9c5b8d4-m7zzq")
    assert first != second


def test_liveness_of_owners() -> None:
    host = owners.new_owner().split(":")[0]
    assert owners.owner_alive(owners.new_owner()) is True
    assert owners.owner_alive(f"{host}:{os.getppid()}:x") is True
    assert owners.owner_alive(f"{host}:{_dead_pid()}:x") is False
    assert owners.owner_alive("some-other-host.0badc0de:1:x") is None
    assert owners.owner_alive("garbage") is None


def test_file_tags_name_their_owner() -> None:
    tag = owners.file_tag()
    assert owners.owner_of_tag(f"{tag}abc123") == owners.new_owner().rsplit(":", 1)[0] + ":"
    assert owners.owner_of_tag("no-tag-here") == ""

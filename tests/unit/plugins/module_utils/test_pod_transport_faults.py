# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The transport's fault hook, timeouts that grow with the size, and a full local disk."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import itertools

import pytest

from ansible_collections.hcp.etcd.plugins.module_utils import pod_transport
from ansible_collections.hcp.etcd.plugins.module_utils.pod_transport import PodTransport, PodTransportError

from conftest import FakeCore


class Crash(BaseException):
    pass


@pytest.fixture(autouse=True)
def no_fault_env(monkeypatch):
    for name in (pod_transport.FAULT_ENV, pod_transport.FAULT_COUNT_ENV, pod_transport.FAULT_TRACE_ENV):
        monkeypatch.delenv(name, raising=False)

    def crash():
        raise Crash()

    monkeypatch.setattr(pod_transport, "_kill_self", crash)


def transport(pod, **kw):
    kw.setdefault("chunk_size", 1000)
    return PodTransport(FakeCore(), "clusters-demo", "etcd-0", "etcd", stream_fn=pod.stream,
                        retry_delay=0, **kw)


def test_the_hook_is_off_without_the_environment(pod):
    t = transport(pod)
    assert not t.faults
    assert t.exec(["cat", "/etc/etcd/tls/client/etcd-client.crt"])[0] == 0


@pytest.mark.parametrize("spec", ["mv", "mv:0:kill", "mv:1:explode", "mv:x:fail"])
def test_a_bad_spec_fails_loudly(monkeypatch, pod, spec):
    monkeypatch.setenv(pod_transport.FAULT_ENV, spec)
    with pytest.raises(PodTransportError, match="HCP_ETCD_FAULT"):
        transport(pod)


def test_fail_skips_the_nth_matching_exec_only(monkeypatch, pod):
    pod.put("/var/lib/a/f", b"1")
    monkeypatch.setenv(pod_transport.FAULT_ENV, r"^restored etcd-0: mv -T -- /var/lib/a :2:fail")
    t = transport(pod)
    t.tag = "restored"
    assert t.exec(["mv", "-T", "--", "/var/lib/a", "/var/lib/b"])[0] == 0  # 1st match runs
    pod.put("/var/lib/a/f", b"2")
    rc, _out, err = t.exec(["mv", "-T", "--", "/var/lib/a", "/var/lib/c"])  # 2nd: not run
    assert rc == pod_transport.RC_CANNOT_EXEC and b"injected fault" in err and "/var/lib/a/f" in pod.files
    assert t.exec(["mv", "-T", "--", "/var/lib/a", "/var/lib/c"])[0] == 0  # 3rd runs again
    assert len([c for c in pod.calls if c[0] == "mv"]) == 2


def test_lose_exit_runs_the_command_and_loses_its_status(monkeypatch, pod):
    pod.put("/var/lib/a/f", b"1")
    monkeypatch.setenv(pod_transport.FAULT_ENV, "mv:1:lose-exit")
    t = transport(pod)
    with pytest.raises(pod_transport.ExitStatusLost):
        t.exec(["mv", "-T", "--", "/var/lib/a", "/var/lib/b"])
    assert "/var/lib/b/f" in pod.files  # it ran; not retried (not idempotent)
    assert len(pod.calls) == 1


@pytest.mark.parametrize("action, ran", [("kill", False), ("kill-after", True)])
def test_kill_before_or_after(monkeypatch, pod, action, ran):
    pod.put("/var/lib/a/f", b"1")
    monkeypatch.setenv(pod_transport.FAULT_ENV, "mv:1:%s" % action)
    with pytest.raises(Crash):
        transport(pod).exec(["mv", "-T", "--", "/var/lib/a", "/var/lib/b"])
    assert ("/var/lib/b/f" in pod.files) is ran


def test_counts_are_shared_across_module_runs_through_the_count_file(monkeypatch, pod, tmp_path):
    monkeypatch.setenv(pod_transport.FAULT_ENV, "test -d:3:fail")
    monkeypatch.setenv(pod_transport.FAULT_COUNT_ENV, str(tmp_path / "count"))
    monkeypatch.setenv(pod_transport.FAULT_TRACE_ENV, str(tmp_path / "trace"))
    rcs = [transport(pod).exec(["test", "-d", "/var/lib"])[0] for _run in range(4)]  # a new transport each time
    assert rcs == [1, 1, pod_transport.RC_CANNOT_EXEC, 1]
    assert (tmp_path / "trace").read_text().splitlines() == ["- etcd-0: test -d /var/lib"] * 4


def test_a_transfer_gets_more_time_while_bytes_flow(monkeypatch, pod, tmp_path):
    # finding 10: a fixed timeout whatever the size. Every read of the clock here is 3 s later: the
    # download reads it more than 20 times, so it outlasts a fixed 60 s; the 200000 bytes it streams earn
    # 200 s more at 1000 B/s, and with that it finishes.
    monkeypatch.setattr(pod_transport, "MIN_RATE", 1000)
    reads = []

    def clock():
        reads.append(1)
        return 3.0 * len(reads)

    pod.put("/var/lib/big.db", b"z" * 200000)
    t = transport(pod, clock=clock, timeout=60)
    _sha, size = t.download("/var/lib/big.db", str(tmp_path / "big.db"))
    assert size == 200000 and 3.0 * len(reads) > 60
    # the same download without the extension (bytes earn no time) times out: the extension is what passed it
    monkeypatch.setattr(pod_transport, "MIN_RATE", 10 ** 12)
    del reads[:]
    with pytest.raises(pod_transport.PodTransportError, match="timed out"):
        transport(pod, clock=clock, timeout=60).download("/var/lib/big.db", str(tmp_path / "big2.db"))
    stalled = transport(pod, clock=itertools.count(0, 100).__next__, timeout=60)
    with pytest.raises(pod_transport.PodTransportError, match="timed out"):
        stalled.exec(["cat", "/var/lib/big.db"])


def test_scaled_timeout():
    assert pod_transport.scaled_timeout(64 * 1024 * 1024, 600) == 600
    assert pod_transport.scaled_timeout(8 * 1024 ** 3, 600) == 60 + 8 * 1024 ** 3 // pod_transport.MIN_RATE


def test_a_full_local_disk_is_reported_as_such_and_not_retried(monkeypatch, pod, tmp_path):
    # finding 10: an ENOSPC on the controller was a "broken stream", retried three times
    pod.put("/var/lib/s.db", b"s" * 5000)
    real_fdopen = pod_transport.os.fdopen

    class FullFile(object):
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, _data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.handle, name)

    monkeypatch.setattr(pod_transport.os, "fdopen", lambda fd, mode: FullFile(real_fdopen(fd, mode)))
    with pytest.raises(pod_transport.LocalDiskError, match="no space left on the controller"):
        transport(pod).download("/var/lib/s.db", str(tmp_path / "s.db"))
    assert len(pod.calls) == 1 and not list(tmp_path.iterdir())

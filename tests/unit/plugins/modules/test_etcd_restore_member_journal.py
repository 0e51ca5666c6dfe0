# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The journal's state machine, walked: every exec of a member swap and of a rollback is hit by each
fault of the transport's hook (the module killed before or after it, the exec failed, its exit
status lost); then the member is rolled back, or the same restore is rerun, and the volume must hold
either the old data (in the data directory) or the restored data with the old data in the previous
directory its marker names, with no journal left and nothing orphaned."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import hashlib
import json

import pytest

from ansible_collections.hcp.etcd.plugins.module_utils import etcd_cli, member_volume, pod_transport
from ansible_collections.hcp.etcd.plugins.modules import etcd_restore_member

from conftest import Crash, FakeCore, FakePod, make_module, run_module, snapshot_bytes

NS = "clusters-demo"
IC = ",".join("etcd-%d=https://etcd-%d.etcd-discovery.%s.svc:2380" % (i, i, NS) for i in range(3))
ROOT = "/var/lib"
DATA = ROOT + "/data"
STAGING = ROOT + "/data.hcp-restore-staging.20261129T100000Z"  # run RUN's own
JOURNAL = ROOT + "/" + member_volume.JOURNAL_NAME
OLD = {"member/snap/db": b"old-db", "member/wal/0.wal": b"old-wal"}
RUN = "2026-11-29T10:00:00Z"
ACTIONS = pod_transport.FAULT_ACTIONS


pytestmark = pytest.mark.usefixtures("crash_instead_of_kill")


def new_pod():
    pod = FakePod()
    for name, data in OLD.items():
        pod.put("%s/%s" % (DATA, name), data)
    return pod


def run(pod, src, monkeypatch, fault=None, trace=None, **params):
    """One module run; ('crashed', None) when the fault killed it, else (failed, result)."""
    params.setdefault("namespace", NS)
    params.setdefault("pod", "helper-etcd-1")
    params.setdefault("member", "etcd-1")
    params.setdefault("initial_cluster", IC)
    params.setdefault("run_id", RUN)
    params.setdefault("src", src)
    if fault:
        monkeypatch.setenv(pod_transport.FAULT_ENV, fault)
    if trace:
        monkeypatch.setenv(pod_transport.FAULT_TRACE_ENV, trace)
    core = FakeCore({"helper-etcd-1": ("Running", True, ["restore"])})
    mod = make_module(etcd_restore_member.ARGUMENT_SPEC, params, pod, core=core)
    try:
        return run_module(etcd_restore_member.work, mod)
    except Crash:
        return "crashed", None
    finally:
        monkeypatch.delenv(pod_transport.FAULT_ENV, raising=False)
        monkeypatch.delenv(pod_transport.FAULT_TRACE_ENV, raising=False)


def tree(pod, directory):
    return dict((p[len(directory) + 1:], d) for p, d in pod.files.items() if p.startswith(directory + "/"))


def top(pod):
    return sorted(set(p[len(ROOT) + 1:].split("/")[0] for p in pod.files if p.startswith(ROOT + "/")))


def holds_old(pod, directory):
    content = tree(pod, directory)
    content.pop(etcd_cli.MARKER_NAME, None)
    return content == OLD


def holds_restored(pod, directory):
    return tree(pod, directory).get("member/snap/db") == snapshot_bytes()[:-32]


def assert_old_data_back(pod, why):
    """Rolled back: the old data in the data directory, no other copy of it, no journal."""
    assert holds_old(pod, DATA), why
    names = top(pod)
    assert member_volume.JOURNAL_NAME not in names and not [n for n in names if n.endswith(".tmp")], (why, names)
    assert not [n for n in names if n.startswith(("data.pre-restore-", "hcp-etcd-restore."))], (why, names)
    for name in names:  # whatever else is there holds restored data, never the old data
        if name.startswith("data."):
            assert holds_restored(pod, ROOT + "/" + name), (why, name)


def assert_restored(pod, why):
    """Rerun: the verified restored data in place, the old data exactly in the directory its marker names."""
    assert holds_restored(pod, DATA), why
    marker = json.loads(pod.files[DATA + "/" + etcd_cli.MARKER_NAME])
    assert marker["run_id"] == RUN and marker["restored_at"], why
    previous = marker["previous_data_dir"]
    assert previous and holds_old(pod, previous), (why, marker)
    names = top(pod)
    # this run's staging went in; another run's (its own name) may stay, a leftover holding restored data
    assert member_volume.JOURNAL_NAME not in names and STAGING[len(ROOT) + 1:] not in names, (why, names)
    old_copies = [n for n in names if n.startswith("data") and holds_old(pod, ROOT + "/" + n)]
    assert old_copies == [previous[len(ROOT) + 1:]], (why, names)
    assert not [n for n in names if n.endswith(".tmp") or n.startswith("hcp-etcd-restore.")], (why, names)


def execs_of(pod, src, monkeypatch, tmp_path, **params):
    """The exec descriptions of one clean run (from the hook's trace), the pod after it."""
    trace = tmp_path / "trace"
    failed, result = run(pod, src, monkeypatch, trace=str(trace), **params)
    assert not failed, result
    return trace.read_text().splitlines()


@pytest.fixture
def src(tmp_path):
    path = tmp_path / "etcd.db"
    path.write_bytes(snapshot_bytes())
    return str(path)


@pytest.fixture
def staged(src, monkeypatch):
    pod = new_pod()
    failed, result = run(pod, src, monkeypatch, state="staged")
    assert not failed and result["staged"], result
    return pod


def test_a_swap_writes_its_journal_before_the_first_rename_and_removes_it_last(staged, src, monkeypatch, tmp_path):
    execs = execs_of(staged, src, monkeypatch, tmp_path)
    writes = [i for i, e in enumerate(execs) if member_volume.JOURNAL_NAME in e and "head -c" in e]
    renames = [i for i, e in enumerate(execs) if ": mv -T -- " in e]
    removal = [i for i, e in enumerate(execs) if e.endswith("rm -f -- " + JOURNAL)]
    assert len(writes) == 1 and len(renames) == 2 and len(removal) == 1
    assert writes[0] < renames[0] < renames[1] < removal[0]
    assert "sync" in execs[writes[0]]  # fsync'd before it is renamed into place


def _walk(base, src, monkeypatch, tmp_path, pattern, params, then):
    """Fault every exec matching ``pattern`` of the run ``params`` with every action; ``then`` judges."""
    execs = [e for e in execs_of(copy.deepcopy(base), src, monkeypatch, tmp_path, **params) if pattern in e]
    walked = 0
    for n, description in enumerate(execs, 1):
        for action in ACTIONS:
            pod = copy.deepcopy(base)
            outcome = run(pod, src, monkeypatch, fault="^%s:%d:%s" % (pattern, n, action), **params)
            told = "crashed" if outcome[0] == "crashed" else outcome[1].get("msg")
            then(pod, "exec %d (%s) %s -> %s" % (n, description, action, told))
            walked += 1
    return walked


def rollback_or_rerun(src, monkeypatch, **params):
    """The judge of one walked fault: from the state it left, a rollback gives the old data back, and
    (from the same state) a rerun of the same restore finishes it."""
    def then(pod, why):
        back = copy.deepcopy(pod)
        failed, result = run(back, src, monkeypatch, **dict(params, state="rolled_back"))
        assert not failed, (why, result)
        assert_old_data_back(back, why + " | rollback: " + result["msg"])
        failed, result = run(pod, src, monkeypatch, **params)
        assert not failed, (why, result)
        assert_restored(pod, why + " | rerun: " + result["msg"])
    return then


# As the role calls it: the swap, its rerun and its rollback name the snapshot by the run record's sha256
# (a staged member is then swapped in without reading the file); and with the file alone.
BY_RECORD = [{}, {"snapshot_sha256": hashlib.sha256(snapshot_bytes()).hexdigest()}]


@pytest.mark.parametrize("params", BY_RECORD, ids=["by-file", "by-recorded-sha256"])
def test_every_exec_of_a_swap_then_rollback_or_rerun(staged, src, monkeypatch, tmp_path, params):
    walked = _walk(staged, src, monkeypatch, tmp_path, "restored helper-etcd-1", params, rollback_or_rerun(src, monkeypatch, **params))
    assert walked >= 4 * 12


@pytest.mark.parametrize("params", BY_RECORD, ids=["by-file", "by-recorded-sha256"])
def test_every_exec_of_a_swap_without_staging(src, monkeypatch, tmp_path, params):
    walked = _walk(new_pod(), src, monkeypatch, tmp_path, "restored helper-etcd-1", params, rollback_or_rerun(src, monkeypatch, **params))
    assert walked >= 4 * 20


def test_every_exec_of_a_rollback_then_rollback_again_or_rerun(staged, src, monkeypatch, tmp_path):
    failed, result = run(staged, src, monkeypatch)
    assert not failed and holds_restored(staged, DATA), result
    walked = _walk(staged, src, monkeypatch, tmp_path, "rolled_back helper-etcd-1", {"state": "rolled_back"},
                   rollback_or_rerun(src, monkeypatch))
    assert walked >= 4 * 8


def test_a_swap_journal_of_another_run_is_undone_and_a_rollback_of_this_run_leaves_it(staged, src, monkeypatch):
    run(staged, src, monkeypatch, fault="^restored helper-etcd-1: mv -T:2:kill", run_id="other-run")
    assert JOURNAL in staged.files and not any(p.startswith(DATA + "/") for p in staged.files)  # old data aside
    before = dict(staged.files)
    failed, result = run(staged, src, monkeypatch, state="rolled_back")  # run RUN did not swap: hands off
    assert not failed and result["changed"] is False and "another run" in result["msg"] and staged.files == before
    failed, result = run(staged, src, monkeypatch)  # this run settles it: the other run's swap is undone first
    assert not failed and "undid the interrupted swap of run other-run" in result["settled"], result
    assert_restored(staged, result["msg"])
    assert holds_restored(staged, DATA + ".hcp-restore-staging.otherrun")  # the other run's own, listed for cleanup


def test_staging_while_a_journal_is_pending_changes_nothing(staged, src, monkeypatch):
    run(staged, src, monkeypatch, fault="^restored helper-etcd-1: mv -T:1:kill-after")
    before = dict(staged.files)
    failed, result = run(staged, src, monkeypatch, state="staged")
    assert not failed and result["staged"] is False and staged.files == before


def test_a_journal_matching_no_step_stops_with_the_paths(staged, src, monkeypatch):
    run(staged, src, monkeypatch, fault="^restored helper-etcd-1: mv -T:2:kill")
    staged.put(DATA + "/member/snap/db", b"someone wrote here")  # the data dir reappeared by hand
    before = dict(staged.files)
    failed, result = run(staged, src, monkeypatch)
    assert failed and "matches no step" in result["msg"] and "/var/lib/data exists" in result["msg"]
    assert staged.files == before


def test_a_lost_exit_status_of_a_rename_is_checked_not_retried(staged, src, monkeypatch):
    calls = len(staged.calls)
    failed, result = run(staged, src, monkeypatch, fault="^restored helper-etcd-1: mv -T:1:lose-exit")
    assert not failed and result["changed"] is True, result
    assert len([c for c in staged.calls[calls:] if c[0] == "mv"]) == 2  # each rename ran once
    assert_restored(staged, result["msg"])


def test_an_unreadable_journal_is_not_taken_for_none(staged, src, monkeypatch):
    run(staged, src, monkeypatch, fault="^restored helper-etcd-1: mv -T:2:kill")
    failed, result = run(staged, src, monkeypatch, state="rolled_back",
                         fault="^rolled_back helper-etcd-1: cat %s:1:fail" % JOURNAL)
    assert failed and "cannot read %s" % JOURNAL in result["msg"]
    failed, result = run(staged, src, monkeypatch, state="rolled_back")
    assert not failed and result["changed"] and holds_old(staged, DATA), result


def test_a_rollback_on_a_controller_without_the_snapshot_file_goes_by_its_sha256(staged, src, monkeypatch, tmp_path):
    """Finding 6: a rerun in a new AWX execution environment has no snapshot file; the rollback needs only the
    run record's sha256 to recognise the restore it undoes."""
    run(staged, src, monkeypatch, fault="^restored helper-etcd-1: mv -T:1:kill-after")  # killed mid-swap
    sha = hashlib.sha256(open(src, "rb").read()).hexdigest()
    gone = str(tmp_path / "gone.db")
    failed, result = run(staged, gone, monkeypatch, state="rolled_back")
    assert failed and "does not exist on the controller" in result["msg"]
    failed, result = run(staged, gone, monkeypatch, state="rolled_back", snapshot_sha256=sha)
    assert not failed and result["changed"] and holds_old(staged, DATA), result
    failed, result = run(staged, None, monkeypatch, state="rolled_back")
    assert failed and "needs snapshot_sha256" in result["msg"]

# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One etcd member's volume, seen through a helper pod: free space, staging, the swap, rollback and
leftovers. Nothing here removes or moves live data without a journal that says what is under way.

Every change of the data directory is a *plan*: a list of renames (and, for a swap, the marker to
write afterwards). The plan is written first as a journal on the volume itself
(``<volume>/.hcp-etcd-journal.json``, atomically: temporary file, fsync, rename, fsync of the
directory), naming the run, the member, the data directory, the previous directory and the staged
one. Then the renames run, then the journal is removed.

Whoever finds a journal (a resumed run, a rollback) never guesses: ``progress()`` stats the paths
the plan names and matches them against the state after 0, 1, ... renames; only an exact match
counts. From there the plan is finished (``forward``) or undone (``undo``: the renames already done
are reversed under a new journal; a finished swap is undone as a rollback that keeps the restored
data aside as ``<data_dir>.failed-restore-<UTC>``). A rename whose exit status is lost is checked the
same way, never run blindly again. A state that matches no step stops with the paths and what each
holds, and the journal stays for the next attempt.

There is no fallback that removes data to make room: ``require_space`` refuses before any change.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import posixpath
import re

from ansible_collections.hcp.etcd.plugins.module_utils import etcd_cli
from ansible_collections.hcp.etcd.plugins.module_utils.etcd_module import (
    EtcdModuleError,
    utc_iso,
    utc_stamp,
)
from ansible_collections.hcp.etcd.plugins.module_utils.pod_transport import (
    PodTransportError,
    scaled_timeout,
)

JOURNAL_NAME = ".hcp-etcd-journal.json"
JOURNAL_VERSION = 1
PREVIOUS_INFIX = ".pre-restore-"
FAILED_INFIX = ".failed-restore-"
BACKUP_SNAPSHOT_PREFIX = "hcp-etcd-snapshot-"  # etcd_snapshot's temporary file on the serving member
# A restore run's own paths beside the data directory carry its run id (run_paths), so that two runs never
# share one: <data_dir>.hcp-restore-staging.<run> and hcp-etcd-restore.<run>.snap.db.
STAGING_INFIX = ".hcp-restore-staging"
SNAPSHOT_COPY_PREFIX = "hcp-etcd-restore."
SNAPSHOT_COPY_SUFFIX = ".snap.db"
_SAFE_COMPONENT = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.:+@=-]*$")


def _text(data):
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else (data or "")


def check_path(option, path):
    """``path`` normalised, or an error naming the option and the fix: absolute, no ``..``, no
    component starting with ``-``, no blanks or shell characters, at least two levels deep."""
    path = (path or "").rstrip("/")
    fix = "set %s to an absolute path on the member volume, e.g. /var/lib/data" % option
    if not path.startswith("/"):
        raise EtcdModuleError("%s %r is not an absolute path; %s" % (option, path, fix))
    parts = path.split("/")[1:]
    if len(parts) < 2:
        raise EtcdModuleError("%s %r is a top-level directory, not one on the member volume; %s" % (option, path, fix))
    for part in parts:
        if part in ("", ".", "..") or not _SAFE_COMPONENT.match(part):
            raise EtcdModuleError(
                "%s %r has a component %r that is empty, '.', '..', starts with '-' or holds a character outside "
                "[A-Za-z0-9_.:+@=-]; %s" % (option, path, part, fix)
            )
    return path


def run_tag(run_id):
    """The run id as a path component: its letters and digits (2026-11-29T10:00:00Z -> 20261129T100000Z)."""
    tag = re.sub(r"[^A-Za-z0-9]", "", run_id or "")
    if not tag:
        raise EtcdModuleError("run_id %r has no letter or digit to name this run's paths with" % (run_id,))
    return tag


def run_paths(data_dir, run_id):
    """The staging directory and the snapshot copy of run ``run_id`` beside ``data_dir``; without a run id the
    names of a single run (``<data_dir>.hcp-restore-staging``, ``hcp-etcd-restore.snap.db``)."""
    data_dir = (data_dir or "").rstrip("/")
    root = posixpath.dirname(data_dir)
    if not run_id:
        return data_dir + STAGING_INFIX, "%s/%s%s" % (root, SNAPSHOT_COPY_PREFIX, SNAPSHOT_COPY_SUFFIX[1:])
    tag = run_tag(run_id)
    return "%s%s.%s" % (data_dir, STAGING_INFIX, tag), "%s/%s%s%s" % (root, SNAPSHOT_COPY_PREFIX, tag, SNAPSHOT_COPY_SUFFIX)


def is_snapshot_copy(name):
    return name.startswith(SNAPSHOT_COPY_PREFIX) and (name.endswith(SNAPSHOT_COPY_SUFFIX) or name.endswith(".tmp"))


def check_layout(data_dir, staging_dir, snapshot_path):
    """The three paths checked, on one volume (the data directory's parent) and none inside another."""
    data_dir = check_path("data_dir", data_dir)
    staging_dir = check_path("staging_dir", staging_dir)
    snapshot_path = check_path("remote_snapshot_path", snapshot_path)
    root = posixpath.dirname(data_dir)
    for option, path in (("staging_dir", staging_dir), ("remote_snapshot_path", snapshot_path)):
        if posixpath.dirname(path) != root:
            raise EtcdModuleError(
                "%s %s must be beside data_dir %s (in %s, the same volume, so that a rename is atomic and "
                "nothing is nested in the data directory)" % (option, path, data_dir, root)
            )
    if len(set((data_dir, staging_dir, snapshot_path))) != 3:
        raise EtcdModuleError("data_dir, staging_dir and remote_snapshot_path must be three different paths")
    return data_dir, staging_dir, snapshot_path


def classify_leftover(vol, path):
    """What a path ``vol.leftovers()`` lists is: previous, failed_restore, staging, snapshot_copy,
    backup_snapshot or partial."""
    name = posixpath.basename(path)
    base = posixpath.basename(vol.data_dir)
    if name.endswith(".tmp"):
        return "partial"
    if name.startswith(base + PREVIOUS_INFIX):
        return "previous"
    if name.startswith(base + FAILED_INFIX):
        return "failed_restore"
    if name.startswith(base + STAGING_INFIX) or name.startswith(posixpath.basename(vol.staging_dir)):
        return "staging"
    if name.startswith(BACKUP_SNAPSHOT_PREFIX):
        return "backup_snapshot"
    return "snapshot_copy"


class MemberVolume(object):
    """One member's volume mounted in a helper pod (``transport``), with its data directory, the staging
    directory beside it and the place of the uploaded snapshot."""

    def __init__(self, transport, member, data_dir, staging_dir, snapshot_path, timeout=600):
        self.t = transport
        self.member = member
        self.data_dir, self.staging_dir, self.snapshot_path = check_layout(data_dir, staging_dir, snapshot_path)
        self.root = posixpath.dirname(self.data_dir)
        self.journal_path = "%s/%s" % (self.root, JOURNAL_NAME)
        self.timeout = timeout

    def where(self):
        return "the volume of %s (%s)" % (self.member, self.t.where())

    # ---- reading ---------------------------------------------------------------------------

    def exists(self, path):
        """Whether directory ``path`` exists; an exec that fails says so instead of answering "no"."""
        rc, _out, err = self.t.exec(["test", "-d", path], idempotent=True, timeout=60)
        if rc not in (0, 1):
            raise EtcdModuleError("cannot tell whether %s exists on %s (rc=%s): %s" % (path, self.where(), rc, _text(err).strip()))
        return rc == 0

    def read_file(self, path):
        """Contents of a small file, None when it does not exist; any other failure raises (a journal or
        a marker that cannot be read is never taken for one that is absent)."""
        rc, out, err = self.t.exec(["cat", path], idempotent=True, timeout=60)
        if rc == 0:
            return _text(out)
        if rc == 1 and "no such file" in _text(err).lower():
            return None
        raise EtcdModuleError("cannot read %s on %s (rc=%s): %s" % (path, self.where(), rc, _text(err).strip()))

    def free_bytes(self):
        return etcd_cli.parse_df_available(self.t.exec_ok(["df", "-Pk", self.root], what="df -Pk %s" % self.root))

    def used_bytes(self, path):
        rc, out, _err = self.t.exec(["du", "-sk", path], idempotent=True, timeout=300)
        try:
            return int(_text(out).split()[0]) * 1024 if rc == 0 else 0
        except (IndexError, ValueError):
            return 0

    def leftovers(self):
        """Directories and files of earlier restores on the volume (kept previous data, set-aside
        restores, staging and snapshot copies of any run, temporary files), sorted."""
        rc, out, _err = self.t.exec(["ls", "-1A", "--", self.root], idempotent=True, timeout=60)
        if rc != 0:
            return []
        base = posixpath.basename(self.data_dir)
        names = [line.strip() for line in _text(out).splitlines() if line.strip()]
        ours = (posixpath.basename(self.staging_dir), posixpath.basename(self.snapshot_path))
        return sorted(
            "%s/%s" % (self.root, name)
            for name in names
            if name.startswith((base + PREVIOUS_INFIX, base + FAILED_INFIX, base + STAGING_INFIX, BACKUP_SNAPSHOT_PREFIX) + ours)
            or is_snapshot_copy(name) or name.endswith(".tmp")
        )

    def remove_leftover(self, path):
        """Remove one entry ``leftovers()`` lists: renamed to a ``.tmp`` name first (atomic), then removed,
        so that an interrupted removal never leaves a half-removed directory under its real name (a
        rollback or an operator would take it for whole). Never the data directory, never a path
        ``leftovers()`` does not list."""
        if path == self.data_dir or path not in self.leftovers():
            raise EtcdModuleError("refusing to remove %s on %s: it is not a leftover beside %s" % (path, self.where(), self.data_dir))
        doomed = path
        if not path.endswith(".tmp"):
            doomed = "%s.removing-%s.tmp" % (path, utc_stamp())
            self.t.exec_ok(["mv", "-T", "--", path, doomed], what="mv -T %s %s" % (path, doomed), timeout=60, idempotent=False)
        self.t.exec_ok(["rm", "-rf", "--", doomed], what="rm -rf %s" % doomed, timeout=self.timeout)

    def marker(self, directory):
        """``(marker, fingerprint)`` of ``directory``: its restore marker (or None) and a digest of
        its member/wal and member/snap files (None when it has none)."""
        marker = etcd_cli.parse_marker(self.t.read_text("%s/%s" % (directory, etcd_cli.MARKER_NAME)))
        script, arg = etcd_cli.fingerprint_command(directory)
        rc, out, err = self.t.exec(["sh", "-c", script, arg], idempotent=True, timeout=60)
        if rc != 0:
            raise EtcdModuleError("cannot list %s/member in %s: %s" % (directory, self.t.where(), _text(err).strip()))
        return marker, etcd_cli.fingerprint_from_listing(out)

    def holds(self, directory, wanted, **exact):
        """The marker of ``directory`` when it holds exactly the restore ``wanted`` describes (the
        arguments of etcd_cli.marker_matches between the marker and the fingerprint) and the further
        marker fields ``exact``; else None."""
        marker, fingerprint = self.marker(directory)
        if not etcd_cli.marker_matches(marker, *(tuple(wanted) + (fingerprint,))):
            return None
        if any(marker.get(key) != value for key, value in exact.items()):
            return None
        return marker

    def write_marker(self, directory, marker):
        self.t.write_bytes("%s/%s" % (directory, etcd_cli.MARKER_NAME), json.dumps(marker, sort_keys=True).encode("utf-8"))

    # ---- space and staging -----------------------------------------------------------------

    def require_space(self, snapshot_size):
        """Refuse, before any change, when the volume cannot hold the uploaded snapshot and the
        restored member beside the live data (a leftover staging directory counts as free)."""
        need = etcd_cli.restore_space_needed(snapshot_size)
        free = self.free_bytes()
        available = free + (self.used_bytes(self.staging_dir) if self.exists(self.staging_dir) else 0)
        if available >= need:
            return available
        leftovers = [path for path in self.leftovers() if path != self.staging_dir]
        raise EtcdModuleError(
            "not enough space on %s: %d bytes (%d MiB) free beside the live data, %d bytes (%d MiB) needed for the "
            "snapshot copy and the restored member. Nothing was changed; live data is never removed to make room. "
            "Fix: grow the PVC data-%s (when its storage class allows expansion)%s, then rerun."
            % (self.where(), available, available // 1048576, need, need // 1048576, self.member,
               " or remove what earlier restores left there: %s" % ", ".join(leftovers) if leftovers else ""),
            no_space=True, free_bytes=available, needed_bytes=need, leftovers=leftovers,
        )

    def remove_copies(self):
        """The uploaded snapshot copy and its partial upload, left by an interrupted run."""
        self.t.exec_ok(["rm", "-f", "--", self.snapshot_path, self.snapshot_path + ".tmp"], what="rm -f %s" % self.snapshot_path)

    def stage(self, src, sha256, size, tool, restore_argv):
        """Upload ``src``, check it with ``snapshot status`` and run ``restore_argv`` (which restores
        into the staging directory). Returns the parsed status. The data directory is not touched; a
        failure leaves no staging directory and no snapshot copy."""
        try:
            self.t.exec_ok(["rm", "-rf", "--", self.staging_dir], what="rm -rf %s" % self.staging_dir)
            self.t.upload(src, self.snapshot_path, expected_sha256=sha256, timeout=self.timeout)
            work = scaled_timeout(size, self.timeout)
            rc, out, err = self.t.exec(etcd_cli.snapshot_status_argv(tool, self.snapshot_path), idempotent=True, timeout=work)
            if rc != 0:
                raise EtcdModuleError(
                    "%s snapshot status failed on %s (rc=%s): %s; the file is not an etcd snapshot"
                    % (tool, self.snapshot_path, rc, _text(err).strip())
                )
            status = etcd_cli.parse_snapshot_status(out, err)
            rc, out, err = self.t.exec(restore_argv, timeout=work)
            if rc != 0:
                self.t.exec(["rm", "-rf", "--", self.staging_dir], idempotent=True, timeout=300)
                hint = ""
                if "hash mismatch" in _text(err).lower() or "snapshot file integrity" in _text(err).lower():
                    hint = "; a raw member/snap/db copy needs skip_hash_check: yes"
                raise EtcdModuleError(
                    "%s snapshot restore failed (rc=%s): %s%s; %s was left untouched"
                    % (tool, rc, _text(err).strip(), hint, self.data_dir),
                    argv=restore_argv,
                )
            return status
        finally:
            self.remove_copies()

    # ---- the journal -----------------------------------------------------------------------

    def read_journal(self):
        text = self.read_file(self.journal_path)
        if text is None:
            return None
        journal = etcd_cli.parse_marker(text)
        if not journal or journal.get("format_version") != JOURNAL_VERSION or not isinstance(journal.get("moves"), list):
            raise EtcdModuleError(
                "%s on %s is not a journal this version reads: %r; look at the volume before removing it"
                % (self.journal_path, self.where(), _text(text)[:300])
            )
        return journal

    def _plan(self, op, run_id, moves, previous=None, marker=None, drop_previous=False):
        journal = dict(
            format_version=JOURNAL_VERSION,
            op=op,
            run_id=run_id,
            member=self.member,
            data_dir=self.data_dir,
            previous_data_dir=previous,
            staged_dir=self.staging_dir if op == "swap" else None,
            moves=[list(move) for move in moves],
            marker=marker,
            drop_previous=bool(drop_previous),
            written_at=utc_iso(),
        )
        self.t.write_bytes(self.journal_path, json.dumps(journal, sort_keys=True).encode("utf-8"))
        return journal

    def progress(self, journal):
        """How many of the journal's renames are done, from what exists now; raises on any other state."""
        moves = [tuple(move) for move in journal["moves"]]
        paths = []
        for move in moves:
            paths.extend(path for path in move if path not in paths)
        present = set(path for path in paths if self.exists(path))
        state = set(src for index, (src, _dst) in enumerate(moves) if src not in [dst for _s, dst in moves[:index]])
        for done in range(len(moves) + 1):
            if state == present:
                return done
            if done < len(moves):
                src, dst = moves[done]
                state = (state - set([src])) | set([dst])
        raise EtcdModuleError(
            "%s on %s (%s of run %s) matches no step of its plan: %s. Nothing was moved; look at the volume, "
            "the journal stays until the state is settled"
            % (self.journal_path, self.where(), journal.get("op"), journal.get("run_id"),
               ", ".join("%s %s" % (path, "exists" if path in present else "absent") for path in paths))
        )

    def _move(self, src, dst):
        """One rename. A lost exit status is checked (stat both paths), never blindly retried."""
        argv = ["mv", "-T", "--", src, dst]
        try:
            rc, out, err = self.t.exec(argv, idempotent=False, timeout=120)
        except PodTransportError as exc:
            moved, still = self.exists(dst), self.exists(src)
            if moved and not still:
                return
            if still and not moved:
                rc, out, err = self.t.exec(argv, idempotent=False, timeout=120)  # known not done: run it once more
            else:
                raise EtcdModuleError(
                    "mv %s %s on %s: its effect is unknown (%s) and %s %s, %s %s; the journal %s keeps the plan"
                    % (src, dst, self.where(), exc, src, "exists" if still else "is absent", dst,
                       "exists" if moved else "is absent", self.journal_path)
                )
        if rc != 0:
            raise EtcdModuleError(
                "mv %s %s failed (rc=%s) on %s: %s; the journal %s keeps the plan for a rerun or a rollback"
                % (src, dst, rc, self.where(), _text(err).strip() or _text(out).strip(), self.journal_path)
            )

    def forward(self, journal, done=None):
        """Finish the journal's plan from where it stands (``done`` renames, when the caller has just
        checked the paths; else stat'ed), then remove the journal."""
        for src, dst in journal["moves"][self.progress(journal) if done is None else done:]:
            self._move(src, dst)
        if journal.get("marker"):
            self.write_marker(self.data_dir, journal["marker"])
        previous = journal.get("previous_data_dir")
        if journal.get("drop_previous") and previous:
            self.t.exec_ok(["rm", "-rf", "--", previous], what="rm -rf %s" % previous)
        self.t.exec_ok(["rm", "-f", "--", self.journal_path], what="rm -f %s" % self.journal_path)
        return journal

    def undo(self, journal):
        """Reverse what is done of the journal's plan (under a new journal); the journal removed.
        A finished swap is undone as a rollback (restored data aside, previous data back)."""
        done = self.progress(journal)
        moves = journal["moves"]
        if done == 0:
            self.t.exec_ok(["rm", "-f", "--", self.journal_path], what="rm -f %s" % self.journal_path)
            return None
        if journal["op"] == "swap" and done == len(moves):
            return self._roll_back_plan(journal["run_id"], journal.get("previous_data_dir"), had_data=len(moves) > 1)
        back = [(dst, src) for src, dst in reversed(moves[:done])]
        return self.forward(self._plan("undo", journal["run_id"], back, previous=journal.get("previous_data_dir")))

    def settle(self, run_id):
        """Bring an interrupted plan to an end before anything else: this run's swap and any rollback
        are finished, another run's swap and an undo in flight are undone/finished. Returns
        ``(journal, what)`` or ``(None, None)`` when there was none. Snapshot copies left by an
        interrupted run are removed too."""
        self.remove_copies()
        journal = self.read_journal()
        if journal is None:
            return None, None
        if journal["op"] == "swap" and journal.get("run_id") != run_id:
            self.undo(journal)
            return journal, "undid the interrupted swap of run %s" % journal.get("run_id")
        self.forward(journal)
        return journal, "finished the interrupted %s of run %s" % (journal["op"], journal.get("run_id"))

    # ---- the swap and the rollback -----------------------------------------------------------

    def _new_name(self, infix):
        """``<data_dir><infix><UTC>``, with a suffix when a directory of that name exists already."""
        base = "%s%s%s" % (self.data_dir, infix, utc_stamp())
        name, index = base, 0
        while self.exists(name):
            index += 1
            name = "%s.%d" % (base, index)
        return name

    def swap_in(self, run_id, marker, keep_previous=True):
        """The staged member into the data directory; the previous data directory aside as
        ``<data_dir>.pre-restore-<UTC>`` (removed afterwards only when ``keep_previous`` is false);
        ``marker`` written last (its ``previous_data_dir`` filled in). Returns the previous
        directory, or None."""
        previous = self._new_name(PREVIOUS_INFIX) if self.exists(self.data_dir) else None
        moves = ([(self.data_dir, previous)] if previous else []) + [(self.staging_dir, self.data_dir)]
        marker = dict(marker, previous_data_dir=previous if keep_previous else None)
        # fresh plan: the data directory was just seen (or not), the previous name is new, the caller
        # just read the staged marker
        self.forward(self._plan("swap", run_id, moves, previous=previous, marker=marker, drop_previous=not keep_previous), done=0)
        return previous if keep_previous else None

    def _roll_back_plan(self, run_id, previous, had_data=True):
        """The restored data directory aside, the previous one back (``had_data`` false: the volume
        had no data directory before, so none comes back)."""
        if had_data and (not previous or not self.exists(previous)):
            raise EtcdModuleError(
                "cannot roll back %s: its previous data directory %s was not kept (keep_previous: false); "
                "%s still holds the restored data" % (self.member, previous or "", self.data_dir)
            )
        aside = self._new_name(FAILED_INFIX)
        moves = [(self.data_dir, aside)] + ([(previous, self.data_dir)] if had_data else [])
        self.forward(self._plan("roll_back", run_id, moves, previous=previous), done=0)  # all just seen
        return aside

    def roll_back(self, run_id, snapshot_sha256):
        """Put back what the data directory held before run ``run_id`` swapped a restore of
        ``snapshot_sha256`` in. Returns ``(changed, aside, msg)``; ``aside`` is where the restored
        data went. A journal of this run is settled first (a swap in flight is undone)."""
        self.remove_copies()
        journal = self.read_journal()
        if journal is not None:
            if journal.get("run_id") != run_id:
                return False, None, (
                    "%s holds the journal of another run (%s, %s); left alone: a rerun of that restore settles it"
                    % (self.where(), journal.get("run_id"), journal["op"])
                )
            if journal["op"] == "swap":
                aside = self.undo(journal)
                return True, aside, "undid the interrupted swap of %s (journal of run %s): its previous data is back" % (self.member, run_id)
            self.forward(journal)
            aside = journal["moves"][0][1] if journal["op"] == "roll_back" else None
            return True, aside, "finished the interrupted %s of %s: its previous data is back" % (journal["op"], self.member)
        marker = etcd_cli.parse_marker(self.read_file("%s/%s" % (self.data_dir, etcd_cli.MARKER_NAME))) or {}
        if (marker.get("snapshot_sha256") != snapshot_sha256 or marker.get("member") != self.member
                or not marker.get("restored_at") or marker.get("run_id") != run_id):
            return False, None, "%s does not hold the restore of %s by run %s: nothing to roll back" % (self.data_dir, self.member, run_id)
        aside = self._roll_back_plan(run_id, marker.get("previous_data_dir"))
        return True, aside, "rolled %s back to its data from before the restore; the restored data is in %s" % (self.member, aside)

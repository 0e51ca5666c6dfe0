# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json

import pytest

from ansible_collections.hcp.etcd.plugins.module_utils import etcd_cli
from ansible_collections.hcp.etcd.plugins.module_utils.etcd_cli import EtcdCliError

CA = "/etc/etcd/tls/etcd-ca/ca.crt"
CRT = "/etc/etcd/tls/client/etcd-client.crt"
KEY = "/etc/etcd/tls/client/etcd-client.key"
NS = "clusters-demo"
IC3 = ",".join(
    "etcd-%d=https://etcd-%d.etcd-discovery.%s.svc:2380" % (i, i, NS) for i in range(3)
)


# ---- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hc_ns, name, expected",
    [
        ("clusters", "demo", "clusters-demo"),
        ("clusters", "my.cluster.example", "clusters-my-cluster-example"),
        ("hcp", "a.b", "hcp-a-b"),
    ],
)
def test_control_plane_namespace(hc_ns, name, expected):
    assert etcd_cli.control_plane_namespace(hc_ns, name) == expected


@pytest.mark.parametrize("hc_ns, name", [("clusters", ""), ("Clusters", "demo"), ("clusters", "x" * 60)])
def test_control_plane_namespace_rejects_bad_names(hc_ns, name):
    with pytest.raises(EtcdCliError):
        etcd_cli.control_plane_namespace(hc_ns, name)


# ---- versions and tools --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("etcdctl version: 3.5.16\nAPI version: 3.5\n", (3, 5, 16)),
        ("etcdutl version: 3.6.4\nAPI version: 3.6\n", (3, 6, 4)),
        ("etcdctl version: 3.4.23\nAPI version: 3.4\n", (3, 4, 23)),
        (b"etcd Version: 3.5.35\nGit SHA: abc\n", (3, 5, 35)),
        ("no version here", None),
    ],
)
def test_parse_version(text, expected):
    assert etcd_cli.parse_version(text) == expected


def missing(tool):
    return (127, b"", ('exec failed: exec: "%s": executable file not found in $PATH' % tool).encode())


def ok(text):
    return (0, text.encode(), b"")


def test_detect_tools_etcd_35_prefers_etcdutl():
    info = etcd_cli.detect_tools(ok("etcdutl version: 3.5.16\n"), ok("etcdctl version: 3.5.16\n"))
    assert info["has_etcdutl"] and info["has_etcdctl"]
    assert info["restore_tool"] == info["status_tool"] == "etcdutl"
    assert info["etcd_version"] == "3.5.16"
    assert info["supports_bump_revision"] is True


def test_detect_tools_etcd_34_falls_back_to_etcdctl():
    info = etcd_cli.detect_tools(missing("etcdutl"), ok("etcdctl version: 3.4.23\nAPI version: 3.4\n"))
    assert not info["has_etcdutl"]
    assert info["restore_tool"] == "etcdctl"
    assert info["supports_bump_revision"] is False  # 3.4.27+ only
    info = etcd_cli.detect_tools(missing("etcdutl"), ok("etcdctl version: 3.4.27\n"))
    assert info["supports_bump_revision"] is True


def test_detect_tools_old_etcdutl_has_no_bump():
    info = etcd_cli.detect_tools(ok("etcdutl version: 3.5.9\n"), ok("etcdctl version: 3.5.9\n"))
    assert info["supports_bump_revision"] is False


def test_require_tool_etcd_36_without_etcdutl_explains():
    info = etcd_cli.detect_tools(missing("etcdutl"), ok("etcdctl version: 3.6.1\n"))
    assert info["restore_tool"] is None
    with pytest.raises(EtcdCliError, match="etcdutl not found in container.*3.6"):
        etcd_cli.require_tool(info, "restore")


def test_require_tool_no_tools():
    info = etcd_cli.detect_tools(missing("etcdutl"), missing("etcdctl"))
    with pytest.raises(EtcdCliError, match="neither etcdutl nor etcdctl"):
        etcd_cli.require_tool(info)


def test_help_supports_bump_revision():
    assert etcd_cli.help_supports_bump_revision(b"  --bump-revision uint\n  --mark-compacted\n")
    assert not etcd_cli.help_supports_bump_revision("  --skip-hash-check\n  --data-dir string\n")
    assert not etcd_cli.help_supports_bump_revision("")


# ---- argv ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["3.4", "3.5", "3.6"])
def test_snapshot_save_is_always_etcdctl_over_tls(version):
    argv = etcd_cli.snapshot_save_argv("/var/lib/s.db", "https://localhost:2379", CA, CRT, KEY)
    assert argv == [
        "etcdctl",
        "--cacert=%s" % CA,
        "--cert=%s" % CRT,
        "--key=%s" % KEY,
        "--endpoints=https://localhost:2379",
        "snapshot",
        "save",
        "/var/lib/s.db",
    ]


def test_snapshot_save_needs_tls():
    with pytest.raises(EtcdCliError):
        etcd_cli.snapshot_save_argv("/var/lib/s.db", "https://localhost:2379", CA, CRT, None)


def test_snapshot_status_argv_per_tool():
    assert etcd_cli.snapshot_status_argv("etcdutl", "/x") == ["etcdutl", "snapshot", "status", "/x", "-w", "json"]
    assert etcd_cli.snapshot_status_argv("etcdctl", "/x") == [
        "env", "ETCDCTL_API=3", "etcdctl", "snapshot", "status", "/x", "-w", "json",
    ]
    with pytest.raises(EtcdCliError):
        etcd_cli.snapshot_status_argv("etcd", "/x")


def test_snapshot_restore_argv_etcdutl_with_bump():
    argv = etcd_cli.snapshot_restore_argv(
        "etcdutl", "/var/lib/r.db", "etcd-1", IC3,
        "https://etcd-1.etcd-discovery.clusters-demo.svc:2380", "/var/lib/data.staging",
        bump_revision=1000000000,
    )
    assert argv[:4] == ["etcdutl", "snapshot", "restore", "/var/lib/r.db"]
    assert "--name=etcd-1" in argv
    assert "--initial-cluster=%s" % IC3 in argv
    assert "--initial-cluster-token=etcd-cluster" in argv
    assert "--data-dir=/var/lib/data.staging" in argv
    assert argv[-2:] == ["--bump-revision=1000000000", "--mark-compacted"]
    assert "--skip-hash-check" not in argv


def test_snapshot_restore_argv_etcdctl_34_skip_hash_no_bump():
    argv = etcd_cli.snapshot_restore_argv(
        "etcdctl", "/s", "etcd-0", "etcd-0=https://a:2380", "https://a:2380", "/d",
        token="tok", skip_hash_check=True, bump_revision=0,
    )
    assert argv[:3] == ["env", "ETCDCTL_API=3", "etcdctl"]
    assert "--skip-hash-check" in argv
    assert "--initial-cluster-token=tok" in argv
    assert not any(a.startswith("--bump-revision") for a in argv)
    assert "--mark-compacted" not in argv


def test_snapshot_restore_argv_requires_fields():
    with pytest.raises(EtcdCliError, match="peer_urls"):
        etcd_cli.snapshot_restore_argv("etcdutl", "/s", "etcd-0", "etcd-0=https://a:2380", "", "/d")


# ---- status parsing ------------------------------------------------------------------------

STATUS_35 = '{"hash":3700960838,"revision":183412,"totalKey":2193,"totalSize":25165824}\n'
STATUS_36 = '{"hash":1,"revision":9,"totalKey":3,"totalSize":20480,"version":"3.6.0"}\n'
DEPRECATION = "Deprecated: Use `etcdutl snapshot status` instead.\n\n"


def test_parse_status_etcdutl_35():
    status = etcd_cli.parse_snapshot_status(STATUS_35)
    assert status == {"hash": 3700960838, "revision": 183412, "total_keys": 2193, "total_size": 25165824, "version": None}


def test_parse_status_with_deprecation_warning_on_stderr_and_stdout():
    assert etcd_cli.parse_snapshot_status(STATUS_35.encode(), DEPRECATION.encode())["revision"] == 183412
    assert etcd_cli.parse_snapshot_status(DEPRECATION + STATUS_35)["total_keys"] == 2193


def test_parse_status_34_and_36():
    out_34 = '{"hash":2345678901,"revision":1002,"totalKey":1000,"totalSize":151552}\n'
    assert etcd_cli.parse_snapshot_status(out_34)["total_size"] == 151552
    assert etcd_cli.parse_snapshot_status(STATUS_36)["version"] == "3.6.0"


def test_parse_status_garbage_fails_with_output():
    with pytest.raises(EtcdCliError, match="Error: snapshot file"):
        etcd_cli.parse_snapshot_status("", "Error: snapshot file has no trailer")


# ---- trailer -------------------------------------------------------------------------------


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def with_trailer(body):
    return body + hashlib.sha256(body).digest()


def test_trailer_on_a_save_file(tmp_path):
    path = write(tmp_path, "s.db", with_trailer(b"x" * 8192))
    info = etcd_cli.snapshot_trailer(path, chunk_size=1000)
    assert info == {"size": 8224, "size_ok": True, "hash_ok": True, "has_trailer": True}


def test_trailer_missing_on_raw_db(tmp_path):
    path = write(tmp_path, "db", b"y" * 8192)
    info = etcd_cli.snapshot_trailer(path)
    assert info["size_ok"] is False and info["has_trailer"] is False


def test_trailer_right_size_wrong_hash(tmp_path):
    path = write(tmp_path, "bad.db", b"x" * 8192 + b"\0" * 32)
    info = etcd_cli.snapshot_trailer(path)
    assert info["size_ok"] is True and info["hash_ok"] is False and info["has_trailer"] is False


def test_trailer_hash_ok_but_unaligned(tmp_path):
    path = write(tmp_path, "odd.db", with_trailer(b"z" * 1000))
    info = etcd_cli.snapshot_trailer(path)
    assert info["hash_ok"] is True and info["size_ok"] is False and info["has_trailer"] is False


def test_file_sha256(tmp_path):
    path = write(tmp_path, "f", b"abc" * 1000)
    assert etcd_cli.file_sha256(path, chunk_size=7) == (hashlib.sha256(b"abc" * 1000).hexdigest(), 3000)


# ---- skip-hash-check -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode, method, trailer, expected",
    [
        ("auto", "save", True, False),
        ("auto", "copy_db", True, True),
        ("auto", None, False, True),
        ("auto", None, True, False),
        ("yes", "save", True, True),
        ("no", "copy_db", True, False),
    ],
)
def test_decide_skip_hash_check(mode, method, trailer, expected):
    skip, reason = etcd_cli.decide_skip_hash_check(mode, method, trailer)
    assert skip is expected and reason


def test_decide_skip_hash_check_refuses_a_save_file_with_a_damaged_trailer():
    # finding 5: a `snapshot save` file whose trailer is wrong was restored with --skip-hash-check
    with pytest.raises(etcd_cli.EtcdCliError, match="damaged"):
        etcd_cli.decide_skip_hash_check("auto", "save", False)


def test_decide_skip_hash_check_no_without_trailer_fails():
    with pytest.raises(EtcdCliError, match="no sha256 trailer"):
        etcd_cli.decide_skip_hash_check("no", None, False)


# ---- topology ------------------------------------------------------------------------------


def sts(replicas, service="etcd-discovery", ns=NS):
    return {
        "metadata": {"name": "etcd", "namespace": ns},
        "spec": {
            "replicas": replicas,
            "serviceName": service,
            "template": {"spec": {"containers": [
                {"name": "etcd", "image": "quay.io/openshift/etcd@sha256:abc"},
                {"name": "healthz", "image": "other"},
            ]}},
        },
    }


def test_topology_three_members():
    topo = etcd_cli.topology_from_statefulset(sts(3))
    assert topo["replicas"] == 3
    assert topo["member_names"] == ["etcd-0", "etcd-1", "etcd-2"]
    assert topo["initial_cluster"] == IC3
    assert topo["members"][2]["pvc"] == "data-etcd-2"
    assert topo["image"] == "quay.io/openshift/etcd@sha256:abc"


def test_topology_single_replica_and_odd_service():
    topo = etcd_cli.topology_from_statefulset(sts(1, service="my-etcd.peers"))
    assert topo["member_names"] == ["etcd-0"]
    assert topo["initial_cluster"] == "etcd-0=https://etcd-0.my-etcd.peers.%s.svc:2380" % NS


def test_topology_without_service_name_fails():
    bad = sts(3)
    del bad["spec"]["serviceName"]
    with pytest.raises(EtcdCliError, match="serviceName"):
        etcd_cli.topology_from_statefulset(bad)


def test_peer_urls_for_and_parse_initial_cluster():
    assert etcd_cli.peer_urls_for(IC3, "etcd-1") == "https://etcd-1.etcd-discovery.%s.svc:2380" % NS
    with pytest.raises(EtcdCliError, match="not in initial_cluster"):
        etcd_cli.peer_urls_for(IC3, "etcd-7")
    with pytest.raises(EtcdCliError, match="malformed"):
        etcd_cli.parse_initial_cluster("etcd-0")


# ---- sidecar -------------------------------------------------------------------------------


def good_sidecar(**over):
    data = dict(
        cluster_name="demo", hosted_cluster_namespace="clusters", namespace=NS, member="etcd-0",
        method="save", sha256="a" * 64, size=4096, revision=10, total_keys=5, hash=99,
        etcd_version="3.5.16", needs_skip_hash_check=False,
        started_at="2026-11-26T05:00:00Z", finished_at="2026-11-26T05:00:05Z",
    )
    data.update(over)
    return data


def test_build_sidecar_round_trip(tmp_path):
    data = etcd_cli.build_sidecar(**good_sidecar())
    assert data["format_version"] == 2
    path = tmp_path / "s.db.json"
    path.write_text(json.dumps(data))
    assert etcd_cli.load_sidecar(str(path))["sha256"] == "a" * 64


@pytest.mark.parametrize(
    "over, problem",
    [
        ({"sha256": "XYZ"}, "sha256"),
        ({"size": -1}, "size"),
        ({"method": "rsync"}, "method"),
        ({"method": "copy_db", "needs_skip_hash_check": False}, "copy_db"),
        ({"revision": "10"}, "revision"),
        ({"needs_skip_hash_check": None}, "needs_skip_hash_check"),
    ],
)
def test_validate_sidecar_problems(over, problem):
    errors = etcd_cli.validate_sidecar(good_sidecar(**over))
    assert any(problem in e for e in errors), errors


def test_build_sidecar_rejects_unknown_keys():
    with pytest.raises(EtcdCliError, match="unknown"):
        etcd_cli.build_sidecar(colour="blue", **good_sidecar())


# ---- marker, fingerprint, space ------------------------------------------------------------


def test_fingerprint_is_order_independent_and_sensitive():
    a = "/d/member/wal/0.wal 100 5\n/d/member/snap/db 200 6\n"
    b = "/d/member/snap/db 200 6\n/d/member/wal/0.wal 100 5\n"
    assert etcd_cli.fingerprint_from_listing(a) == etcd_cli.fingerprint_from_listing(b)
    assert etcd_cli.fingerprint_from_listing(a) != etcd_cli.fingerprint_from_listing(a.replace("100 5", "164 9"))
    assert etcd_cli.fingerprint_from_listing("") is None


def test_marker_matches():
    marker = etcd_cli.build_marker("s" * 64, "etcd-0", IC3, "etcd-cluster", "https://p:2380", "f1", revision=3)
    args = ("s" * 64, "etcd-0", IC3, "etcd-cluster", "https://p:2380")
    assert etcd_cli.marker_matches(etcd_cli.parse_marker(json.dumps(marker)), *(args + ("f1",)))
    assert not etcd_cli.marker_matches(marker, *(args + ("f2",)))  # etcd ran since
    assert not etcd_cli.marker_matches(marker, "t" * 64, *(args[1:] + ("f1",)))  # other snapshot
    assert not etcd_cli.marker_matches(None, *(args + ("f1",)))
    assert etcd_cli.parse_marker("not json") is None


def test_df_and_space():
    out = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sdb 8191416 2000 8000000 1% /var/lib\n"
    assert etcd_cli.parse_df_available(out) == 8000000 * 1024
    with pytest.raises(EtcdCliError):
        etcd_cli.parse_df_available("garbage")
    assert etcd_cli.restore_space_needed(100 * 1048576) > 2 * 100 * 1048576


def test_full_scans_outlast_etcdctls_default_timeout():
    """The key count and hashkv at a revision read the whole store: with etcdctl's default 5 s --command-timeout a
    2.4 GiB member failed them ("context deadline exceeded"), and the backup's pre-flight retried for minutes."""
    for argv in (etcd_cli.keys_at_args(42), etcd_cli.hashkv_args(42)):
        timeouts = [a for a in argv if a.startswith("--command-timeout=")]
        assert timeouts == ["--command-timeout=300s"], argv
        assert "--rev=42" in argv


@pytest.mark.parametrize("chunk_size", [1, 5, 31, 32, 33, 1000, 8224, 1 << 20])
@pytest.mark.parametrize("body_size", [0, 1, 31, 32, 33, 480, 8192])
def test_snapshot_digest_is_one_read_with_both_answers(tmp_path, chunk_size, body_size):
    body = bytes(range(256)) * (body_size // 256) + b"q" * (body_size % 256)
    for data in (with_trailer(body), body, body + b"\0" * 32):
        path = write(tmp_path, "d.db", data)
        sha, info = etcd_cli.snapshot_digest(path, chunk_size=chunk_size)
        assert sha == hashlib.sha256(data).hexdigest()
        size_ok = len(data) > 32 and len(data) % 512 == 32
        hash_ok = len(data) > 32 and data[-32:] == hashlib.sha256(data[:-32]).digest()
        assert info == {"size": len(data), "size_ok": size_ok, "hash_ok": hash_ok, "has_trailer": size_ok and hash_ok}

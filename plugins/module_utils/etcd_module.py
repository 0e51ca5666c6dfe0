# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Base class of the hcp.etcd modules (in the spirit of amazon.aws' AnsibleAWSModule).

It owns what every module needs and none should re-implement: the kubernetes.core auth
options, the API client (``get_api_client``), the pod reads and exec over it (``PodApi``), the pod transport, picking a
Ready etcd pod, probing the etcd tools of a container, and turning exceptions into
``fail_json`` messages. A module is left with only its own logic.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import datetime
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.common.text.converters import to_text
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import (
    AUTH_ARG_SPEC,
)
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import (
    AnsibleK8SModule,
)
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import (
    CoreException,
)
from ansible_collections.hcp.etcd.plugins.module_utils import etcd_cli
from ansible_collections.hcp.etcd.plugins.module_utils.pod_transport import (
    DEFAULT_RETRIES,
    PodApi,
    PodTransport,
    PodTransportError,
)

try:
    from kubernetes.client.rest import ApiException
    from kubernetes.dynamic.exceptions import DynamicApiError
except ImportError:  # reported by AnsibleK8SModule.requires("kubernetes")

    class ApiException(Exception):  # type: ignore[no-redef]
        status = 0
        reason = ""

    class DynamicApiError(Exception):  # type: ignore[no-redef]
        status = 0
        reason = ""


# The options of doc fragment hcp.etcd.etcd_tls: how a module reaches etcd from inside a container.
ETCD_TLS_ARG_SPEC = dict(
    endpoint=dict(type="str", default=etcd_cli.DEFAULT_ENDPOINT),
    cacert=dict(type="str"),
    cert=dict(type="str"),
    key=dict(type="str", no_log=False),
)


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def utc_iso(moment=None):
    return (moment or utc_now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_stamp(moment=None):
    return (moment or utc_now()).strftime("%Y%m%dT%H%M%SZ")


class EtcdModuleError(Exception):
    """Raised inside a module's logic; turned into fail_json with extra result keys."""

    def __init__(self, msg, **result):
        super(EtcdModuleError, self).__init__(msg)
        self.result = result


class EtcdModule(AnsibleK8SModule):
    """kubernetes.core's module class (auth options, API client, module proxies) plus what every hcp.etcd
    module needs: the pod API and exec transport, etcd helpers, and error shaping. A module is only its
    logic: ``EtcdModule(spec).run(fn)`` turns every error ``fn`` raises into one clear ``fail_json``."""

    def __init__(self, argument_spec, transport_factory=None, **kwargs):
        spec = copy.deepcopy(AUTH_ARG_SPEC)
        spec.update(argument_spec)
        kwargs.setdefault("supports_check_mode", True)
        super(EtcdModule, self).__init__(argument_spec=spec, check_pyyaml=False, **kwargs)
        self._pods = None
        self._api_client = None
        self._transport_factory = transport_factory

    # ---- API ---------------------------------------------------------------------------------

    @property
    def api_client(self):
        """kubernetes.core's K8SClient (dynamic resources), built from the module's auth options."""
        if self._api_client is None:
            from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import (
                get_api_client,
            )

            self._api_client = get_api_client(module=self)
        return self._api_client

    @property
    def pods(self):
        """Pod reads and exec (a ``PodApi`` over ``api_client``)."""
        if self._pods is None:
            self._pods = PodApi(self.api_client)
        return self._pods

    def transport(self, namespace, pod, container, timeout=None, retries=DEFAULT_RETRIES):
        factory = self._transport_factory or PodTransport
        return factory(
            self.pods,
            namespace,
            pod,
            container,
            timeout=timeout or self.params.get("timeout") or 600,
            retries=retries,
        )

    def ready_pod(self, namespace, label_selector="app=etcd"):
        """Name of the first Ready pod (by name) matching ``label_selector`` in ``namespace``."""
        try:
            pods = self.pods.list_pods(namespace, label_selector=label_selector)
        except (ApiException, DynamicApiError) as exc:
            raise EtcdModuleError(
                "cannot list pods in namespace %s: %s %s"
                % (namespace, getattr(exc, "status", ""), getattr(exc, "reason", exc))
            )
        names = []
        for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
            name = pod["metadata"]["name"]
            names.append(name)
            if pod["metadata"].get("deletionTimestamp") is not None:
                continue
            for cond in (pod.get("status") or {}).get("conditions") or []:
                if cond.get("type") == "Ready" and cond.get("status") == "True":
                    return name
        if not names:
            raise EtcdModuleError(
                "no pod with label %s in namespace %s; check namespace (the control-plane namespace is "
                "<hosted-cluster-namespace>-<cluster-name>)" % (label_selector, namespace)
            )
        raise EtcdModuleError(
            "no Ready pod with label %s in namespace %s (pods: %s); pass pod, or copy a member's data "
            "with method copy_db from a helper pod" % (label_selector, namespace, ", ".join(names))
        )

    def etcd_tls(self, transport):
        """The etcd client TLS files in the container: the cacert/cert/key options when set
        (checked), else the first readable of the standard paths (the CA moved in OpenShift 4.12)."""
        wanted = (
            ("cacert", etcd_cli.CA_CANDIDATES),
            ("cert", etcd_cli.CERT_CANDIDATES),
            ("key", etcd_cli.KEY_CANDIDATES),
        )
        options = dict((name, [self.params[name]] if self.params.get(name) else list(candidates)) for name, candidates in wanted)
        paths = [path for name, _c in wanted for path in options[name]]
        rc, out, err = transport.exec(
            ["sh", "-c", 'for f in "$@"; do [ -r "$f" ] && echo "$f"; done; true', "sh"] + paths,
            idempotent=True,
            timeout=60,
        )
        if rc != 0:
            raise EtcdModuleError("cannot look for the etcd TLS files in %s: %s" % (transport.where(), to_text(err)))
        readable = set(line.strip() for line in to_text(out).splitlines())
        chosen = {}
        for name, _candidates in wanted:
            found = [path for path in options[name] if path in readable]
            if not found:
                raise EtcdModuleError(
                    "no readable etcd %s in %s (looked for %s); set the %s option to its path in the container"
                    % (name, transport.where(), ", ".join(options[name]), name)
                )
            chosen[name] = found[0]
        return chosen

    def member_names(self, namespace, statefulset="etcd"):
        """The members the StatefulSet declares (``<name>-0`` .. ``<name>-<replicas-1>``), so that a
        member whose pod is missing counts as missing instead of being silently skipped."""
        try:
            sts = self.pods.read_statefulset(statefulset, namespace)
        except (ApiException, DynamicApiError) as exc:
            raise EtcdModuleError(
                "cannot read StatefulSet %s in namespace %s: %s %s; check the namespace (the control-plane "
                "namespace is <hosted-cluster-namespace>-<cluster-name>)"
                % (statefulset, namespace, getattr(exc, "status", ""), getattr(exc, "reason", exc))
            )
        return ["%s-%d" % (statefulset, index) for index in range(sts["spec"].get("replicas") or 0)]

    # ---- etcd tools --------------------------------------------------------------------------

    @staticmethod
    def probe_tools(transport):
        """``etcd_cli.detect_tools`` over ``etcdutl version`` and ``etcdctl version``."""
        results = {}
        for tool in ("etcdutl", "etcdctl"):
            results[tool] = transport.exec(etcd_cli.tool_version_argv(tool), idempotent=True, timeout=60)
        return etcd_cli.detect_tools(results["etcdutl"], results["etcdctl"])

    # ---- error shaping -----------------------------------------------------------------------

    def run(self, fn):
        try:
            fn(self)
        except EtcdModuleError as exc:
            self.fail_json(to_text(exc), **exc.result)
        except (etcd_cli.EtcdCliError, PodTransportError) as exc:
            self.fail_json(to_text(exc))
        except CoreException as exc:
            self.fail_json("%s; check kubeconfig/context or the K8S_AUTH_* variables" % to_text(exc))
        except (ApiException, DynamicApiError) as exc:
            self.fail_json(
                "Kubernetes API error %s %s: %s"
                % (getattr(exc, "status", ""), getattr(exc, "reason", ""), to_text(getattr(exc, "body", "") or "")),
                exception=traceback.format_exc(),
            )
        except Exception as exc:  # pylint: disable=broad-except
            self.fail_json("unexpected error: %s" % to_text(exc), exception=traceback.format_exc())


def at_once(calls):
    """The results of the zero-argument ``calls``, run at the same time, in order; the first error is raised."""
    with ThreadPoolExecutor(max_workers=max(1, len(calls))) as pool:
        return list(pool.map(lambda call: call(), list(calls)))


def scan_at(members, revision, wait_behind=0):
    """Each member's own key count and hashkv at ``revision``, the members asked at the same time (each read is a
    scan of that member's whole store, in its own pod): ``[{"name", "keys", "hash"}]`` in the order of ``members``.
    A member whose store has not reached ``revision`` is waited for up to ``wait_behind`` seconds, then given with
    ``keys`` and ``hash`` None and ``behind`` (its own revision); one compacted past it with ``compacted``."""
    return at_once([lambda m=m: m.scan(revision, wait_behind) for m in members])


def unreadable(fact, reference_name):
    """Why a member's store could not be read at the revision ``reference_name`` was read at ('' when it was)."""
    if fact.get("behind") is not None:
        return "at revision %d, it never reached the revision %s was read at: another store, or far behind" % (
            fact["behind"], reference_name)
    if fact.get("compacted"):
        return "its store was compacted past the revision %s was read at: another store" % reference_name
    return ""


def data_problems(fact, reference):
    """How one member's key count and hashkv differ from the reference member's (both read at one revision)."""
    why = unreadable(fact, reference["name"])
    if why:
        return [why]
    if unreadable(reference, reference["name"]):
        return ["nothing to compare with, %s could not be read at that revision" % reference["name"]]
    problems = []
    if fact["keys"] != reference["keys"]:
        problems.append("%d keys, %s has %d" % (fact["keys"], reference["name"], reference["keys"]))
    if fact["hash"] != reference["hash"]:
        problems.append("hashkv %s differs from %s's %s" % (fact["hash"], reference["name"], reference["hash"]))
    return problems


class EtcdMember(object):
    """etcdctl against one member, from inside its own pod (the module's O(endpoint), by default the
    member's own localhost listener), so that each answer is that member's and not the cluster's."""

    def __init__(self, module, name, transport=None, tls=None):
        """``transport`` and ``tls`` (``etcd_cli.tls_args``): those the module already has for this member's pod."""
        params = module.params
        self.name = name
        self.transport = transport or module.transport(params["namespace"], name, params["container"], timeout=params["timeout"])
        self.tls = tls
        self.module = module

    def run(self, *args):
        """etcdctl ARGS against this member; its raw output."""
        if self.tls is None:
            files = self.module.etcd_tls(self.transport)
            self.tls = etcd_cli.tls_args(self.module.params["endpoint"], files["cacert"], files["cert"], files["key"])
        return self.transport.exec_ok(["etcdctl"] + self.tls + list(args), what="etcdctl %s" % " ".join(args[:2]))

    def etcdctl(self, *args):
        return etcd_cli.parse_json_output(self.run(*(list(args) + ["-w", "json"])), "etcdctl %s" % args[0])

    def status(self):
        status = self.etcdctl("endpoint", "status")[0]["Status"]
        header = status.get("header") or {}
        return {
            "name": self.name,
            "revision": int(header.get("revision", 0)),
            "cluster_id": header.get("cluster_id"),
            "member_id": header.get("member_id"),
            "leader": status.get("leader"),
            "version": status.get("version"),
        }

    def keys_at(self, revision):
        # the response's count is the number of matching keys whatever the limit (etcd 3.4 and later)
        return etcd_cli.parse_keys_count(self.run(*etcd_cli.keys_at_args(revision)))

    def hash_at(self, revision):
        return etcd_cli.parse_hashkv(self.run(*etcd_cli.hashkv_args(revision)))

    def scan(self, revision, wait_behind=0):
        """This member's key count and hashkv at ``revision`` (see ``scan_at``)."""
        deadline = time.time() + wait_behind
        while True:
            try:
                return {"name": self.name, "keys": self.keys_at(revision), "hash": self.hash_at(revision)}
            except (PodTransportError, etcd_cli.EtcdCliError) as exc:
                if "has been compacted" in str(exc):  # its history is not the one read at revision on the others
                    return {"name": self.name, "keys": None, "hash": None, "compacted": True}
                if "future revision" not in str(exc):
                    raise
                if time.time() >= deadline:
                    return {"name": self.name, "keys": None, "hash": None, "behind": self.status()["revision"]}
                time.sleep(1)

    def started_members(self):
        return [m for m in self.etcdctl("member", "list").get("members", []) if m.get("name")]

    def move_leader(self, member_id):
        """Hand this member's leadership to ``member_id`` (etcdctl finds the leader among its endpoints:
        this member's own, so it must be the leader)."""
        return self.run("move-leader", "%x" % int(member_id))

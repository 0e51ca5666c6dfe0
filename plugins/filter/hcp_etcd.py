# -*- coding: utf-8 -*-
# Copyright: hcp.etcd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters the hcp.etcd roles use to read a hosted control plane's etcd layout."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible_collections.hcp.etcd.plugins.module_utils import etcd_cli

# Members by availability policy, used when the StatefulSet is found scaled to 0.
POLICY_REPLICAS = {"HighlyAvailable": 3, "SingleReplica": 1}
DEFAULT_TOKEN = "etcd-cluster"
# etcd's own default --quota-backend-bytes (HyperShift sets 8 GiB).
DEFAULT_QUOTA_BYTES = 2 * 2 ** 30


def control_plane_namespace(hosted_cluster_namespace, cluster_name):
    """``clusters | control_plane_namespace('my.cluster')`` -> ``clusters-my-cluster``."""
    return etcd_cli.control_plane_namespace(hosted_cluster_namespace, cluster_name)


def quantity_bytes(quantity):
    """A Kubernetes storage quantity (``8Gi``, ``500M``, ``1073741824``) in whole bytes (rounded up), parsed by
    the Kubernetes client's own ``parse_quantity``."""
    try:
        from kubernetes.utils.quantity import parse_quantity  # on first use: the controller imports it only where a quantity is read
    except ImportError:
        raise AnsibleFilterError("quantity_bytes needs the kubernetes Python client on the controller (pip install kubernetes)")
    try:
        return int(math.ceil(parse_quantity(quantity)))
    except (ValueError, TypeError, ArithmeticError):
        raise AnsibleFilterError("not a storage quantity: %r" % (quantity,))


def container_setting(container, env_name, flag):
    """An etcd setting of the container: its flag in the command and arguments (4.14 to 4.17:
    ``--flag=value`` or ``--flag value``, also inside a ``sh -c`` script) or its environment variable (the
    StatefulSet of OpenShift 4.18+); None when neither is set. The flag wins, as in etcd, which ignores an
    environment variable that a flag shadows."""
    words = []
    for part in list(container.get("command") or []) + list(container.get("args") or []):
        words.extend(str(part).split())
    for index, word in enumerate(words):
        if word.startswith(flag + "="):
            return word[len(flag) + 1:].strip("'\"")
        if word == flag and index + 1 < len(words):
            return words[index + 1].strip("'\"")
    for item in container.get("env") or []:
        if item.get("name") == env_name and "value" in item:
            return item["value"]
    return None


def backend_quota(setting):
    """etcd's backend quota in bytes for its ``--quota-backend-bytes`` setting: unset or 0 is etcd's default
    (2 GiB), a negative value disables the quota (None)."""
    quota = quantity_bytes(setting) if setting not in (None, "") else 0
    if quota < 0:
        return None
    return quota or DEFAULT_QUOTA_BYTES


def etcd_topology(statefulset, hosted_cluster=None):
    """The etcd layout the restore needs, read from the live StatefulSet (and the HostedCluster).

    Members, peer URLs and the initial-cluster string come from etcd_cli.topology_from_statefulset;
    this adds what helper pods and recreated volumes need. A StatefulSet found at 0 replicas (an
    interrupted restore, or a manual scale-down) gets the member count of the availability policy.
    """
    try:
        sts = dict(statefulset)
        spec = dict(sts.get("spec") or {})
        if not spec.get("replicas"):
            policy = ((hosted_cluster or {}).get("spec") or {}).get("controllerAvailabilityPolicy") or "HighlyAvailable"
            spec["replicas"] = POLICY_REPLICAS.get(policy, 3)
        sts["spec"] = spec
        topology = etcd_cli.topology_from_statefulset(sts)
    except etcd_cli.EtcdCliError as exc:
        raise AnsibleFilterError(str(exc))
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    containers = pod_spec.get("containers") or [{}]
    etcd = next((c for c in containers if c.get("name") == "etcd"), containers[0])
    claim = next((t for t in spec.get("volumeClaimTemplates") or [] if (t.get("metadata") or {}).get("name") == "data"), {})
    claim_spec = {k: v for k, v in (claim.get("spec") or {}).items() if k not in ("volumeName", "dataSource")}
    storage = ((claim_spec.get("resources") or {}).get("requests") or {}).get("storage", "0")
    labels = dict((claim.get("metadata") or {}).get("labels") or {})
    labels.update(((spec.get("selector") or {}).get("matchLabels")) or {})
    topology.update(
        {
            "selector": ["%s=%s" % item for item in sorted(((spec.get("selector") or {}).get("matchLabels") or {}).items())],
            "initial_cluster_token": container_setting(etcd, "ETCD_INITIAL_CLUSTER_TOKEN", "--initial-cluster-token")
            or DEFAULT_TOKEN,
            "quota_backend_bytes": backend_quota(container_setting(etcd, "ETCD_QUOTA_BACKEND_BYTES", "--quota-backend-bytes")),
            "pvc_spec": claim_spec,
            "pvc_labels": labels,
            "volume_bytes": quantity_bytes(storage),
            "pod_security_context": pod_spec.get("securityContext") or {},
            "container_security_context": etcd.get("securityContext") or {},
            "node_selector": pod_spec.get("nodeSelector") or {},
            "tolerations": pod_spec.get("tolerations") or [],
        }
    )
    return topology


def access_label(attributes):
    """``{verb: patch, group: apps, resource: deployments, subresource: scale}`` -> ``patch apps/deployments/scale``."""
    resource = "/".join(x for x in (attributes.get("group"), attributes.get("resource"), attributes.get("subresource")) if x)
    where = " in %s" % attributes["namespace"] if attributes.get("namespace") else ""
    return "%s %s%s" % (attributes.get("verb"), resource, where)


def pods_selected_by(pods, selectors):
    """The pods whose labels match any of ``selectors`` (Deployment ``spec.selector`` objects).

    ``pods | pods_selected_by(deployments | map(attribute='spec.selector'))`` finds the pods of several
    Deployments in one pod list, terminating ones included."""
    wanted = []
    for selector in selectors or []:
        selector = selector or {}
        if selector.get("matchExpressions"):
            raise AnsibleFilterError("pods_selected_by: selectors with matchExpressions are not supported: %r" % (selector,))
        labels = selector.get("matchLabels") or {}
        if not labels:
            raise AnsibleFilterError("pods_selected_by: an empty selector would select every pod")
        wanted.append(labels)
    selected = []
    for pod in pods or []:
        have = ((pod or {}).get("metadata") or {}).get("labels") or {}
        if any(all(have.get(key) == value for key, value in labels.items()) for labels in wanted):
            selected.append(pod)
    return selected


def store_options(url, endpoint_url="", region="", ca_bundle="", validate_certs=True, bucket_only=False, compression="",
                  age_recipients=None, age_identity_file=""):
    """The options of hcp.etcd.etcd_backup_store for the store ``url`` (with ``bucket_only``, the s3:// URL of an
    object, of which the bucket is the store). Empty values are left out, so that the module's environment
    defaults (AWS_ENDPOINT_URL, AWS_REGION, AWS_CA_BUNDLE, HCP_ETCD_AGE_IDENTITY_FILE) apply."""
    url = url or ""
    if bucket_only and url.startswith("s3://"):
        url = "s3://" + url[len("s3://"):].split("/")[0]
    options = dict(store=url, endpoint_url=endpoint_url, region=region, ca_bundle=ca_bundle, compression=compression,
                   age_recipients=age_recipients, age_identity_file=age_identity_file)
    options = dict((k, v) for k, v in options.items() if v not in ("", None, []))
    options["validate_certs"] = validate_certs in (True, "true", "True", "yes", 1)
    return options


def _backup_store():
    """The backup store's helpers, imported on first use (they load minio, zstandard and pyrage)."""
    from ansible_collections.hcp.etcd.plugins.module_utils import backup_store
    if not backup_store.HAS_AGE:
        raise AnsibleFilterError("age encryption needs the pyrage Python package on the controller (pip install pyrage)")
    return backup_store


def _age_call(name, *args):
    """A call of the backup store's age helper ``name``, its errors as filter errors."""
    store = _backup_store()
    try:
        return getattr(store, name)(*args)
    except store.StoreError as exc:
        raise AnsibleFilterError(str(exc))


def age_encrypt(text, recipients):
    """``text`` encrypted to the age X25519 ``recipients`` (``age1...``), ASCII-armored: what ``age -d -i KEYFILE``
    and ``age_decrypt`` read back."""
    if isinstance(recipients, str):
        recipients = [recipients]
    parsed = _age_call("parse_recipients", [str(r) for r in recipients or []])
    if not parsed:
        raise AnsibleFilterError("age_encrypt needs at least one age recipient (age1...)")
    return _backup_store().pyrage.encrypt(to_bytes(text), parsed, armored=True).decode("ascii")


def age_decrypt(armored, identity):
    """The text an ``age_encrypt`` (or ``age -a``) wrote, decrypted with the content of an age identity file
    (its ``AGE-SECRET-KEY-...`` lines)."""
    identities = _age_call("parse_identities", to_text(identity))
    if not identities:
        raise AnsibleFilterError("age_decrypt needs the content of an age identity file (AGE-SECRET-KEY-... lines)")
    try:
        return to_text(_backup_store().pyrage.decrypt(to_bytes(armored), identities))
    except Exception as exc:
        raise AnsibleFilterError("the age identity given does not decrypt this file (%s); give the identity of one of the "
                                 "recipients it was encrypted to" % exc)


class FilterModule(object):
    def filters(self):
        return {
            "pods_selected_by": pods_selected_by,
            "control_plane_namespace": control_plane_namespace,
            "etcd_topology": etcd_topology,
            "quantity_bytes": quantity_bytes,
            "access_label": access_label,
            "store_options": store_options,
            "age_encrypt": age_encrypt,
            "age_decrypt": age_decrypt,
        }

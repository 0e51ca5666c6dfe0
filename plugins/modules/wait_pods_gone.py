#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: wait_pods_gone
short_description: Wait until no pod of some label selectors is left, terminating pods included
version_added: 0.3.0
author:
  - hcp.etcd maintainers (@hcp-etcd)
description:
  - Lists the pods of O(namespace) that any of O(selectors) selects, again and again every O(sleep) seconds, until
    none is left but those named in O(keep). A pod that is terminating still counts (it may still write to etcd, or
    hold its volume), which is what a workload's C(status.replicas) does not show.
  - One module run instead of one M(kubernetes.core.k8s_info) run per poll; inside a restore's API downtime each
    module run costs a Python start and the import of the Kubernetes client (about half a second on a 2-core
    controller), so polls in-process come sooner and cost less.
  - Read only.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
options:
  namespace:
    description: Namespace of the pods.
    type: str
    required: true
  selectors:
    description:
      - The pods to wait for, as label selectors; a pod counts when any of them selects it.
      - Each is a label selector string (V(app=etcd), V(app=etcd,tier=cp)) or a LabelSelector object as a
        workload's C(spec.selector) holds it (C(matchLabels) and C(matchExpressions)).
      - An empty selector is refused (it would select every pod of the namespace).
    type: list
    elements: raw
    required: true
  keep:
    description: Pods (by name) that may stay, such as member 0 of an etcd that stops leader last.
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds to wait at most; the module fails after that, naming the pods still left.
    type: int
    default: 300
  sleep:
    description: Seconds between two lists of the pods.
    type: float
    default: 0.25
attributes:
  check_mode:
    support: full
    description: Waits as it does without check mode (it changes nothing either way).
  diff_mode:
    support: none
    description: Returns no diff.
"""

EXAMPLES = r"""
- name: Wait until no API server pod is left, terminating ones included
  hcp.etcd.wait_pods_gone:
    namespace: clusters-my-cluster
    selectors: "{{ deployments | map(attribute='spec.selector') }}"

- name: Wait until every etcd member but member 0 has stopped
  hcp.etcd.wait_pods_gone:
    namespace: clusters-my-cluster
    selectors: [app=etcd]
    keep: [etcd-0]
"""

RETURN = r"""
left:
  description: The selected pods left at the end (those of O(keep)); on a timeout, every pod still left.
  returned: always
  type: list
  elements: str
  sample: [etcd-0]
seconds:
  description: Seconds waited.
  returned: always
  type: float
  sample: 2.5
polls:
  description: How many times the pods were listed.
  returned: always
  type: int
  sample: 6
"""

import time

from ansible_collections.hcp.etcd.plugins.module_utils.etcd_module import EtcdModule, EtcdModuleError


def selector_string(selector):
    """A label selector string for ``selector``: a string as it is, a LabelSelector object (``matchLabels``,
    ``matchExpressions``) in the API's string syntax. An empty selector is refused: it selects every pod."""
    if isinstance(selector, str):
        text = selector.strip()
    elif isinstance(selector, dict):
        parts = ["%s=%s" % item for item in sorted((selector.get("matchLabels") or {}).items())]
        for expression in selector.get("matchExpressions") or []:
            key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
            if operator == "In":
                parts.append("%s in (%s)" % (key, ",".join(values)))
            elif operator == "NotIn":
                parts.append("%s notin (%s)" % (key, ",".join(values)))
            elif operator == "Exists":
                parts.append(key)
            elif operator == "DoesNotExist":
                parts.append("!%s" % key)
            else:
                raise EtcdModuleError("selector %r: unknown matchExpressions operator %r" % (selector, operator))
        text = ",".join(parts)
    else:
        raise EtcdModuleError("selector %r is neither a label selector string nor a LabelSelector object" % (selector,))
    if not text:
        raise EtcdModuleError("an empty selector would select every pod of the namespace; give the labels of the pods to wait for")
    return text


def wait_gone(list_pods, selectors, keep=(), timeout=300, sleep=0.25, clock=time.time, pause=time.sleep):
    """Poll ``list_pods(label_selector)`` (pod dicts) until no pod any of ``selectors`` selects is left but
    those named in ``keep``. Returns the module result; raises EtcdModuleError on the timeout."""
    wanted = [selector_string(selector) for selector in selectors]
    if not wanted:
        raise EtcdModuleError("no selector given: name the pods to wait for in selectors")
    start = clock()
    polls = 0
    while True:
        polls += 1
        names = set()
        for selector in wanted:
            names.update(pod["metadata"]["name"] for pod in list_pods(selector))
        others = sorted(names - set(keep))
        waited = round(clock() - start, 2)
        if not others:
            return dict(changed=False, left=sorted(names), seconds=waited, polls=polls,
                        msg="no pod of %s left%s after %.1f s" % (" or ".join(wanted), " but %s" % ", ".join(sorted(names)) if names else "", waited))
        if waited >= timeout:
            raise EtcdModuleError(
                "pods of %s still there after %d s: %s. Look at why they do not stop (kubectl describe pod), then rerun"
                % (" or ".join(wanted), timeout, ", ".join(others)),
                left=others, seconds=waited, polls=polls,
            )
        pause(sleep)


def main():
    module = EtcdModule(
        argument_spec=dict(
            namespace=dict(type="str", required=True),
            selectors=dict(type="list", elements="raw", required=True),
            keep=dict(type="list", elements="str", default=[]),
            timeout=dict(type="int", default=300),
            sleep=dict(type="float", default=0.25),
        ),
    )

    def run(mod):
        params = mod.params
        mod.exit_json(**wait_gone(lambda selector: mod.pods.list_pods(params["namespace"], label_selector=selector),
                                  params["selectors"], params["keep"], params["timeout"], params["sleep"]))

    module.run(run)


if __name__ == "__main__":
    main()

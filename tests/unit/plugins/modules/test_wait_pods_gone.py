# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting until pods are gone: terminating pods still count, kept pods may stay, selectors of several
workloads are OR-ed, an empty selector is refused, and a timeout names the pods left."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.hcp.etcd.plugins.module_utils.etcd_module import EtcdModuleError
from ansible_collections.hcp.etcd.plugins.modules.wait_pods_gone import selector_string, wait_gone


class Namespace(object):
    """Pods by label selector string; each list is one poll, and ``gone_after`` polls remove a pod."""

    def __init__(self, pods, gone_after=None):
        self.pods = dict(pods)  # name -> selector that selects it
        self.gone_after = dict(gone_after or {})
        self.polls = 0
        self.asked = []

    def list_pods(self, selector):
        self.asked.append(selector)
        return [{"metadata": {"name": name}} for name, sel in sorted(self.pods.items()) if sel == selector]

    def tick(self, _seconds):
        self.polls += 1
        for name, after in list(self.gone_after.items()):
            if self.polls >= after:
                self.pods.pop(name, None)


class Clock(object):
    def __init__(self, ns, step=0.25):
        self.now, self.ns, self.step = 0.0, ns, step

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds
        self.ns.tick(seconds)


def run(ns, selectors, keep=(), timeout=10):
    clock = Clock(ns)
    return wait_gone(ns.list_pods, selectors, keep, timeout, 0.25, clock=clock.time, pause=clock.sleep)


def test_waits_until_every_selected_pod_is_gone():
    ns = Namespace({"etcd-0": "app=etcd", "etcd-1": "app=etcd", "other": "app=other"}, gone_after={"etcd-1": 2, "etcd-0": 4})
    result = run(ns, ["app=etcd"])
    assert result["left"] == [] and result["polls"] == 5 and result["seconds"] == 1.0
    assert "other" in ns.pods  # pods of other selectors do not count


def test_a_kept_pod_may_stay():
    ns = Namespace({"etcd-0": "app=etcd", "etcd-1": "app=etcd", "etcd-2": "app=etcd"}, gone_after={"etcd-1": 1, "etcd-2": 3})
    result = run(ns, ["app=etcd"], keep=["etcd-0"])
    assert result["left"] == ["etcd-0"] and result["polls"] == 4 and not result["changed"]


def test_the_pods_of_every_selector_count():
    ns = Namespace({"kas-1": "app=kube-apiserver", "oas-1": "app=openshift-apiserver"}, gone_after={"kas-1": 1, "oas-1": 3})
    selectors = [{"matchLabels": {"app": "kube-apiserver"}}, {"matchLabels": {"app": "openshift-apiserver"}}]
    result = run(ns, selectors)
    assert result["polls"] == 4 and ns.asked[:2] == ["app=kube-apiserver", "app=openshift-apiserver"]


def test_a_timeout_names_the_pods_left():
    ns = Namespace({"kas-1": "app=kube-apiserver", "kas-2": "app=kube-apiserver"}, gone_after={"kas-2": 1})
    with pytest.raises(EtcdModuleError) as err:
        run(ns, ["app=kube-apiserver"], timeout=2)
    assert "kas-1" in str(err.value) and "kas-2" not in str(err.value) and "after 2 s" in str(err.value)
    assert err.value.result["left"] == ["kas-1"]


@pytest.mark.parametrize("selector", ["", "  ", {}, {"matchLabels": {}}, {"matchExpressions": []}])
def test_an_empty_selector_is_refused_before_any_list(selector):
    ns = Namespace({"a": "x=y"})
    with pytest.raises(EtcdModuleError, match="empty selector"):
        run(ns, [selector])
    assert ns.asked == []


def test_no_selector_is_refused():
    with pytest.raises(EtcdModuleError, match="no selector"):
        run(Namespace({}), [])


def test_label_selector_objects_become_the_api_syntax():
    selector = {
        "matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["cp", "etcd"]},
            {"key": "zone", "operator": "NotIn", "values": ["x"]},
            {"key": "hcp", "operator": "Exists"},
            {"key": "old", "operator": "DoesNotExist"},
        ],
    }
    assert selector_string(selector) == "a=1,b=2,tier in (cp,etcd),zone notin (x),hcp,!old"
    assert selector_string(" app=etcd ") == "app=etcd"
    with pytest.raises(EtcdModuleError, match="unknown matchExpressions operator"):
        selector_string({"matchExpressions": [{"key": "k", "operator": "Gt", "values": ["1"]}]})
    with pytest.raises(EtcdModuleError, match="neither"):
        selector_string(["app=etcd"])

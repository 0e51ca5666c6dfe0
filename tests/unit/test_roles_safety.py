# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the roles' task files promise, read from the files themselves.

- every auth option a role documents reaches every Kubernetes task (module_defaults on group hcp.etcd.etcd,
  which holds our modules and kubernetes.core's k8s group);
- helper pods run without a service-account token and with requests and limits;
- the API Deployments scaled are data: a name outside restore_api_deployments is refused before any patch.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os
import re
import json
import subprocess
import sys

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

try:
    from ansible.template import trust_as_template
except ImportError:  # ansible-core < 2.19

    def trust_as_template(value):
        return value


REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ROLES = ("restore", "backup", "drill")
AUTH_OPTIONS = ("kubeconfig", "context")


def load(path):
    with open(os.path.join(REPO, path)) as f:
        return yaml.safe_load(f)


def trusted(value):
    """Role variables as Ansible loads them from the role's files: templates it renders."""
    if isinstance(value, dict):
        return dict((k, trusted(v)) for k, v in value.items())
    if isinstance(value, list):
        return [trusted(v) for v in value]
    return trust_as_template(value) if isinstance(value, str) else value


def walk(tasks):
    for task in tasks or []:
        yield task
        for key in ("block", "rescue", "always"):
            yield from walk(task.get(key))


def kubernetes_tasks(role):
    for path in sorted(glob.glob(os.path.join(REPO, "roles", role, "tasks", "*.yml"))):
        for task in walk(load(path)):
            for key in task:
                if key.startswith(("kubernetes.core.", "hcp.etcd.")):
                    yield os.path.basename(path), task.get("name"), key


# Modules that never reach the Kubernetes API (a file on the controller, the S3-compatible store).
CONTROLLER_ONLY = {"hcp.etcd.etcd_snapshot_info", "hcp.etcd.etcd_backup_store", "hcp.etcd.etcd_backup_dir"}


def group_members():
    runtime = load("meta/runtime.yml")["action_groups"]["etcd"]
    ours = ["hcp.etcd." + m for m in runtime if isinstance(m, str)]
    extended = [g for m in runtime if isinstance(m, dict) for g in m["metadata"]["extend_group"]]
    assert extended == ["kubernetes.core.k8s"]
    import ansible_collections.kubernetes.core as kcore

    k8s = yaml.safe_load(open(os.path.join(list(kcore.__path__)[0], "meta", "runtime.yml")))
    return set(ours) | set("kubernetes.core." + m for m in k8s["action_groups"]["k8s"])


def modules_with_auth():
    for path in glob.glob(os.path.join(REPO, "plugins", "modules", "*.py")):
        text = open(path).read()
        if "EtcdModule(" in text or "AUTH_ARG_SPEC" in text:
            yield "hcp.etcd." + os.path.basename(path)[:-3]


def test_every_module_with_connection_options_is_in_group_hcp_etcd_etcd():
    group = group_members()
    assert sorted(set(modules_with_auth()) - group) == []


@pytest.mark.parametrize("role", ROLES)
def test_every_kubernetes_task_is_in_the_group_the_role_configures(role):
    group = group_members()
    outside = [(f, n, m) for f, n, m in kubernetes_tasks(role) if m not in group and m not in CONTROLLER_ONLY]
    assert outside == []


@pytest.mark.parametrize("role", ROLES)
def test_role_documents_the_auth_options_and_applies_them_to_every_task(role):
    options = load("roles/%s/meta/argument_specs.yml" % role)["argument_specs"]["main"]["options"]
    assert all(name in options for name in AUTH_OPTIONS)
    main = load("roles/%s/tasks/main.yml" % role)
    # one block holds every task of the role, with the auth options as defaults of group hcp.etcd.etcd
    assert len(main) == 1 and "block" in main[0], "every task of main.yml inside the one block"
    defaults = main[0]["module_defaults"]
    # besides the group: the backup store's connection, for the module that talks to the store only
    assert list(defaults)[0] == "group/hcp.etcd.etcd" and set(list(defaults)[1:]) <= {"hcp.etcd.etcd_backup_store"}
    auth_var = re.match(r"^\{\{ (\w+) \}\}$", defaults["group/hcp.etcd.etcd"]).group(1)
    variables = trusted(dict(load("roles/%s/vars/main.yml" % role) or {}))
    variables.update(kubeconfig="/etc/mgmt.kubeconfig", context="mgmt-admin")
    templar = Templar(loader=DataLoader(), variables=variables)
    assert templar.template(trust_as_template("{{ %s }}" % auth_var)) == {
        "kubeconfig": "/etc/mgmt.kubeconfig", "context": "mgmt-admin"}
    variables.update(kubeconfig="", context="")
    templar = Templar(loader=DataLoader(), variables=variables)
    assert templar.template(trust_as_template("{{ %s }}" % auth_var)) == {}


def test_helper_pods_have_no_token_and_have_requests_and_limits():
    variables = trusted(dict(load("roles/restore/vars/main.yml")))
    variables.update(trusted(load("roles/restore/defaults/main.yml")))
    variables.update(
        restore_namespace="clusters-demo", restore_run_id="2026-11-29T10:00:00Z",
        restore_lock={"holder": "alice@host, restore run 2026-11-29T10:00:00Z"},
        restore_topology={"members": [{"name": "etcd-0", "pvc": "data-etcd-0"}], "pod_security_context": {},
                          "node_selector": {}, "tolerations": [], "image": "etcd:3.5", "container_security_context": {}},
    )
    text = open(os.path.join(REPO, "roles", "restore", "templates", "helper-pods.yml.j2")).read()
    pods = [d for d in yaml.safe_load_all(Templar(loader=DataLoader(), variables=variables).template(trust_as_template(text))) if d]
    assert len(pods) == 1
    spec = pods[0]["spec"]
    assert spec["automountServiceAccountToken"] is False
    resources = spec["containers"][0]["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"] and resources["limits"]["memory"]
    assert pods[0]["metadata"]["annotations"]["hcp.etcd/run-id"] == "2026-11-29T10:00:00Z"


PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: hcp.etcd.restore
        tasks_from: scale_api.yml
      vars:
        restore_namespace: clusters-demo
        restore_record_name: hcp-etcd-restore
        restore_api_targets: %s
"""


@pytest.mark.parametrize("targets", [
    '{"kube-apiserver": 3, "etcd": 0}',
    '{"kube-apiserver\\n  image: evil": 3}',
    '{"kube-apiserver": "3\\nspec: {template: {}}"}',
])
def test_scaling_refuses_names_outside_the_configured_list_before_any_patch(tmp_path, targets):
    play = tmp_path / "play.yml"
    play.write_text(PLAY % targets)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".collections"),
               K8S_AUTH_KUBECONFIG=str(tmp_path / "none"), ANSIBLE_NOCOLOR="1")
    run = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), str(play)],
                         env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode != 0
    assert "Refusing to scale" in run.stdout and "only kube-apiserver, openshift-apiserver, openshift-oauth-apiserver" in run.stdout
    assert "Scale the API Deployments to" not in run.stdout  # the patch task never ran


@pytest.mark.parametrize("size, expected", [(64 * 2 ** 20, 1800), (3 * 2 ** 30, 600 * 2 + 3072)])
def test_run_lock_outlasts_the_longest_background_member_restore(size, expected):
    variables = trusted(dict(load("roles/restore/vars/main.yml")))
    variables.update(trusted(load("roles/restore/defaults/main.yml")))
    variables.update(restore_snapshot_file={"size": size}, restore_topology={"volume_bytes": 8 * 2 ** 30})
    templar = Templar(loader=DataLoader(), variables=variables)
    assert int(templar.template(trust_as_template("{{ restore_lock_seconds }}"))) == expected


def test_stopping_etcd_never_scales_it_up():
    """The leader-last stop scales etcd to 1 before 0. From a stopped etcd (a rerun after a crash mid-stop) that
    would START member 0: the scale to 1 must be conditional on the StatefulSet being at its recorded count."""
    tasks = list(walk(load("roles/restore/tasks/scale_down_etcd.yml")))
    scales = [t for t in tasks if "kubernetes.core.k8s_scale" in t]
    assert [s["kubernetes.core.k8s_scale"]["replicas"] for s in scales] == [1, 0]
    to_one = scales[0]
    assert to_one["kubernetes.core.k8s_scale"]["current_replicas"] == "{{ restore_record.etcd_replicas | int }}"
    assert "restore_record.etcd_replicas | int > 1" in to_one["when"]
    assert not [t for t in tasks if "hcp.etcd.etcd_move_leader" in t], "the leadership moves before the API downtime"
    # Member 0 takes the leadership before the API servers stop (outside the downtime), only when etcd is stopped next.
    api = list(walk(load("roles/restore/tasks/scale_down_api.yml")))
    move = [t for t in api if "hcp.etcd.etcd_move_leader" in t]
    assert len(move) == 1 and move[0]["failed_when"] is False, "moving the leadership is an optimisation: it may fail"
    assert "restore_phase in ['started', 'snapshot-ready']" in move[0]["when"]
    assert api.index(move[0]) < [i for i, t in enumerate(api) if "Scale the API Deployments to 0" in t.get("name", "")][0]


KEY_RETENTION_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: hcp.etcd.backup
        tasks_from: key_retention.yml
      vars:
        backup_encryption_key_dir: %(dir)s
        hosted_cluster_namespace: clusters
        cluster_name: demo
        backup_stamp: 20261130T050000Z
        backup_complete: %(complete)s
        backup_removed_local: %(removed)s
        backup_store_pruned: %(store)s
"""


@pytest.mark.parametrize("complete, removed, store, left", [
    # local retention only: the key copies of the removed backups go; a failed run's copy and the new one stay
    (["/b/20261130T050000Z", "/b/20261130T040000Z", "/b/20261130T010000Z"], ["/b/20261130T010000Z"], {},
     ["20261130T000000Z", "20261130T020000Z", "20261130T030000Z", "20261130T040000Z", "20261130T050000Z"]),
    # removed here but still kept in the store: its key stays; removed from the store only (an AWX run with an
    # empty local directory): its key goes
    (["/b/20261130T050000Z"], [], {"removed": ["20261130T000000Z", "20261130T010000Z"],
                                   "kept": ["20261130T050000Z", "20261130T030000Z"]},
     ["20261130T020000Z", "20261130T030000Z", "20261130T040000Z", "20261130T050000Z"]),
    (["/b/20261130T050000Z", "/b/20261130T030000Z"], ["/b/20261130T030000Z"],
     {"removed": ["20261130T010000Z"], "kept": ["20261130T050000Z", "20261130T030000Z"]},
     ["20261130T000000Z", "20261130T020000Z", "20261130T030000Z", "20261130T040000Z", "20261130T050000Z"]),
])
def test_a_key_copy_goes_only_with_a_backup_removed_everywhere(tmp_path, complete, removed, store, left):
    keys = tmp_path / "keys" / "clusters" / "demo"
    for stamp in ("20261130T000000Z", "20261130T010000Z", "20261130T020000Z", "20261130T030000Z",
                  "20261130T040000Z", "20261130T050000Z"):
        (keys / stamp).mkdir(parents=True)
        (keys / stamp / "encryption-key.yaml").write_text("data: {key: x}\n")
    play = tmp_path / "play.yml"
    play.write_text(KEY_RETENTION_PLAY % dict(dir=tmp_path / "keys", complete=json.dumps(complete),
                                              removed=json.dumps(removed), store=json.dumps(store)))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".collections"), ANSIBLE_NOCOLOR="1")
    run = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), str(play)],
                         env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert sorted(os.listdir(str(keys))) == left

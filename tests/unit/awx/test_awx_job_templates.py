# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWX job templates of awx/configure.yml only pass variables the roles really take.

Every survey variable and extra var of a job template must be an option of the role its playbook
runs (roles/<role>/meta/argument_specs.yml), or a play-level variable the playbook uses; survey
choices and defaults must agree with the role's. A renamed role variable breaks this test.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
import yaml

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
AWX_VARS = os.path.join(REPO, "awx", "vars", "hcp_etcd.yml")
PLAY_VARS = ("hcp_targets", "ansible_python_interpreter")
SURVEY_TYPES = ("text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect")
EXPECTED = {
    "hcp.etcd backup one hosted cluster",
    "hcp.etcd back up all hosted clusters",
    "hcp.etcd restore a hosted cluster",
    "hcp.etcd drill all hosted clusters",
}


def _yaml(path):
    with open(os.path.join(REPO, path)) as f:
        return yaml.safe_load(f)


def awx_vars():
    # ansible's loader: the file holds !unsafe values.
    return DataLoader().load_from_file(AWX_VARS)


def role_options(playbook):
    """Options of the role(s) the playbook runs, and the text of its hosts: line."""
    plays = _yaml(playbook)
    options = {}
    hosts = []
    for play in plays:
        hosts.append(play["hosts"])
        for role in play.get("roles", []):
            name = role["role"] if isinstance(role, dict) else role
            assert name.startswith("hcp.etcd."), "%s runs a role that is not ours: %s" % (playbook, name)
            spec = _yaml(os.path.join("roles", name.split(".")[-1], "meta", "argument_specs.yml"))
            options.update(spec["argument_specs"]["main"]["options"])
    assert options, "%s runs no hcp.etcd role" % playbook
    return options, " ".join(hosts)


def templates():
    return dict((t["name"], t) for t in awx_vars()["hcp_etcd_job_templates"])


def test_the_four_job_templates_exist():
    assert set(templates()) == EXPECTED


def test_configure_playbook_creates_them_from_these_vars():
    plays = _yaml("awx/configure.yml")
    assert plays[0]["vars_files"] == ["vars/hcp_etcd.yml"]

    def task(module):
        found = [t for t in plays[0]["tasks"] if module in t]
        assert len(found) == 1, module
        return found[0]

    assert task("awx.awx.job_template")["loop"] == "{{ hcp_etcd_job_templates }}"
    assert task("awx.awx.job_template")["awx.awx.job_template"]["survey_spec"]["spec"] == "{{ item.survey }}"
    assert task("awx.awx.job_template")["awx.awx.job_template"]["extra_vars"] == "{{ item.extra_vars }}"
    assert task("awx.awx.inventory_source")["awx.awx.inventory_source"]["source_path"] == "{{ hcp_etcd_inventory_source_path }}"
    injectors = [t["awx.awx.credential_type"]["injectors"] for t in plays[0]["tasks"] if "awx.awx.credential_type" in t]
    assert sorted(injectors) == ["{{ hcp_etcd_age_credential_type.injectors }}", "{{ hcp_etcd_credential_type.injectors }}"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_variable_of_a_job_template_is_a_role_option(name):
    template = templates()[name]
    options, hosts = role_options(template["playbook"])
    for question in template["survey"]:
        var = question["variable"]
        assert var in options, "%s: survey variable %r is not an option of the role (%s)" % (name, var, sorted(options))
        assert question["type"] in SURVEY_TYPES
        assert question["question_name"]
        opt = options[var]
        if opt.get("required"):
            assert question["required"] is True, "%s: %s is required by the role" % (name, var)
        if "choices" in opt:
            assert question["type"] == "multiplechoice" and question["choices"] == opt["choices"], var
        if opt.get("type") == "bool":
            assert question["type"] == "multiplechoice" and sorted(question["choices"]) == ["false", "true"], var
        if opt.get("type") == "int":
            assert question["type"] == "integer", var
        if "default" in opt and "default" in question:
            default = opt["default"]
            expected = str(default).lower() if isinstance(default, bool) else default
            assert question["default"] == expected, "%s: default of %s differs from the role's" % (name, var)
    for var in template["extra_vars"]:
        if var in PLAY_VARS:
            continue
        assert var in options, "%s: extra var %r is not an option of the role" % (name, var)
    if "hcp_targets" in template["extra_vars"]:
        assert "hcp_targets" in hosts, "%s: the playbook does not read hcp_targets" % name
    assert not set(q["variable"] for q in template["survey"]) & set(template["extra_vars"]), "survey answers and extra vars overlap"


def test_restore_asks_for_confirmation_and_defaults_to_no():
    restore = templates()["hcp.etcd restore a hosted cluster"]
    survey = dict((q["variable"], q) for q in restore["survey"])
    assert set(survey) >= {"cluster_name", "hosted_cluster_namespace", "snapshot", "snapshot_source", "confirm"}
    assert survey["confirm"]["default"] == "false" and survey["confirm"]["required"] is True
    assert "confirm" not in restore["extra_vars"] and "force" not in restore["extra_vars"]


def test_fleet_backup_targets_the_inventory_with_its_python():
    fleet = templates()["hcp.etcd back up all hosted clusters"]
    assert fleet["extra_vars"]["hcp_targets"] == "all"
    assert fleet["extra_vars"]["ansible_python_interpreter"] == "{{ ansible_playbook_python }}"
    assert int(Templar(loader=DataLoader(), variables=awx_vars()).template(trust_as_template(fleet["forks"]))) > 1
    for single in ("hcp.etcd backup one hosted cluster", "hcp.etcd restore a hosted cluster"):
        assert templates()[single]["extra_vars"]["hcp_targets"] == "localhost"


def test_credential_type_injects_the_kubeconfig_file_as_k8s_auth_kubeconfig():
    v = awx_vars()
    ct = v["hcp_etcd_credential_type"]
    assert v["hcp_etcd_credential_type_name"] == "Kubeconfig (hcp.etcd)"
    fields = dict((f["id"], f) for f in ct["inputs"]["fields"])
    assert fields["kubeconfig"]["secret"] is True and fields["kubeconfig"]["multiline"] is True
    assert ct["inputs"]["required"] == ["kubeconfig"]
    assert ct["injectors"]["file"]["template.kubeconfig"] == "{{ kubeconfig }}"
    assert ct["injectors"]["env"]["K8S_AUTH_KUBECONFIG"].startswith("{{ tower.filename.kubeconfig }}")
    # what the injected environment selects: tests/unit/awx/test_awx_credential_type.py
    # The inventory source file exists in the project and uses our plugin.
    inv = _yaml(v["hcp_etcd_inventory_source_path"])
    assert inv["plugin"] == "hcp.etcd.hosted_clusters"
    assert os.path.basename(v["hcp_etcd_inventory_source_path"]).endswith("hosted_clusters.yml")


def test_restore_survey_asks_for_force_passed_as_an_extra_var_default_false():
    survey = dict((q["variable"], q) for q in templates()["hcp.etcd restore a hosted cluster"]["survey"])
    assert survey["force"]["type"] == "multiplechoice" and survey["force"]["choices"] == ["false", "true"]
    assert survey["force"]["default"] == "false" and survey["force"]["required"] is True
    # the role reads it as the bool option `force` (default false)
    options, _hosts = role_options("playbooks/restore.yml")
    assert options["force"]["type"] == "bool" and options["force"].get("default") is False


@pytest.mark.parametrize("template,playbook", [("hcp.etcd restore a hosted cluster", "playbooks/restore.yml"),
                                               ("hcp.etcd backup one hosted cluster", "playbooks/backup.yml")])
def test_one_cluster_surveys_ask_whether_to_break_the_run_lock_default_false(template, playbook):
    survey = dict((q["variable"], q) for q in templates()[template]["survey"])
    assert survey["break_lock"]["choices"] == ["false", "true"] and survey["break_lock"]["default"] == "false"
    options, _hosts = role_options(playbook)
    assert options["break_lock"]["type"] == "bool" and options["break_lock"].get("default") is False


def test_schedules_launch_the_fleet_backup_daily_and_the_drill_weekly_without_answers():
    v = awx_vars()
    plays = _yaml("awx/configure.yml")
    schedule = [t for t in plays[0]["tasks"] if "awx.awx.schedule" in t]
    assert len(schedule) == 1
    assert schedule[0]["loop"] == "{{ hcp_etcd_schedules }}"
    assert schedule[0]["awx.awx.schedule"]["unified_job_template"] == "{{ item.template }}"
    assert schedule[0]["awx.awx.schedule"]["rrule"] == "{{ item.rrule }}"
    assert schedule[0]["when"] == "item.rrule | length > 0", "an empty rule creates no schedule"
    templar = Templar(loader=DataLoader(), variables=v)
    schedules = dict((s["template"], templar.template(trust_as_template(s["rrule"]))) for s in v["hcp_etcd_schedules"])
    assert sorted(schedules) == ["hcp.etcd back up all hosted clusters", "hcp.etcd drill all hosted clusters"]
    assert "FREQ=DAILY" in schedules["hcp.etcd back up all hosted clusters"]
    assert "FREQ=WEEKLY" in schedules["hcp.etcd drill all hosted clusters"]
    for name in schedules:
        target = templates()[name]
        assert target["extra_vars"]["hcp_targets"] == "all", name
        # a scheduled job answers no survey: every required question needs a default
        for question in target["survey"]:
            assert not question["required"] or "default" in question, (name, question["variable"])


def test_templates_that_read_encrypted_backups_get_the_age_identity_credential():
    plays = _yaml("awx/configure.yml")
    job_template = [t for t in plays[0]["tasks"] if "awx.awx.job_template" in t][0]["awx.awx.job_template"]
    v = awx_vars()
    v.update(hcp_etcd_store_credential_name="s3", hcp_etcd_age_credential_name="age")
    readers = set()
    for template in v["hcp_etcd_job_templates"]:
        templar = Templar(loader=DataLoader(), variables=dict(v, item=template))
        credentials = templar.template(trust_as_template(job_template["credentials"].strip()))
        if isinstance(credentials, str):
            credentials = yaml.safe_load(credentials)
        assert credentials[:2] == [v["hcp_etcd_credential_name"], "s3"], template["name"]
        if "age" in credentials:
            readers.add(template["name"])
    assert readers == {"hcp.etcd restore a hosted cluster", "hcp.etcd drill all hosted clusters"}
    # the drill reads what the role reads: the store and the directory of the backups
    drill = templates()["hcp.etcd drill all hosted clusters"]
    assert drill["playbook"] == "playbooks/drill.yml" and drill["extra_vars"]["backup_store"] == "{{ hcp_etcd_backup_store }}"

# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`make demo` runs the whole story; its full run is covered by the end-to-end scenarios, so here we
only check that the script parses and that each of its six steps is there and uses the real tools."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
DEMO = os.path.join(ROOT, "tests", "demo", "demo.sh")


def read_demo():
    with open(DEMO) as handle:
        return handle.read()


def test_demo_script_parses():
    subprocess.check_call(["bash", "-n", DEMO])


def test_demo_has_its_six_steps_in_order():
    phases = re.findall(r'^phase "(\d)\.', read_demo(), re.M)
    assert phases == ["1", "2", "3", "4", "5", "6"]


def test_demo_uses_the_real_playbooks_and_the_per_member_verdict():
    text = read_demo()
    assert "ansible-playbook playbooks/backup.yml" in text
    assert "ansible-playbook playbooks/restore.yml" in text and "confirm=true" in text
    assert "verify --expect A --absent B --members 3" in text
    assert "tests/cluster/cluster.sh up" in text and "tests/cluster/hcp.sh up" in text


def test_make_knows_demo_and_demo_down():
    out = subprocess.check_output(["make", "-n", "demo", "demo-down"], cwd=ROOT).decode()
    assert "tests/demo/demo.sh" in out
    assert "tests/cluster/cluster.sh down" in out

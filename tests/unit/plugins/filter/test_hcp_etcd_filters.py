# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.hcp.etcd.plugins.filter.hcp_etcd import age_decrypt, age_encrypt, pods_selected_by, quantity_bytes


def pod(name, **labels):
    return {"metadata": {"name": name, "labels": labels}}


def test_pods_selected_by_finds_the_pods_of_several_deployments():
    pods = [pod("kas-1", app="kube-apiserver", hash="a"), pod("oas-1", app="openshift-apiserver"),
            pod("etcd-0", app="etcd"), pod("other", app="kube-apiserver-proxy"), {"metadata": {"name": "bare"}}]
    selectors = [{"matchLabels": {"app": "kube-apiserver"}}, {"matchLabels": {"app": "openshift-apiserver"}},
                 {"matchLabels": {"app": "openshift-oauth-apiserver"}}]
    assert [p["metadata"]["name"] for p in pods_selected_by(pods, selectors)] == ["kas-1", "oas-1"]
    assert pods_selected_by([pod("etcd-0", app="etcd")], selectors) == []


def test_pods_selected_by_needs_every_label_of_a_selector():
    selectors = [{"matchLabels": {"app": "kube-apiserver", "tier": "cp"}}]
    assert pods_selected_by([pod("a", app="kube-apiserver")], selectors) == []
    assert len(pods_selected_by([pod("b", app="kube-apiserver", tier="cp", x="y")], selectors)) == 1


def test_pods_selected_by_refuses_selectors_it_cannot_judge():
    with pytest.raises(AnsibleFilterError, match="every pod"):
        pods_selected_by([pod("a")], [{"matchLabels": {}}])
    with pytest.raises(AnsibleFilterError, match="matchExpressions"):
        pods_selected_by([pod("a")], [{"matchExpressions": [{"key": "app", "operator": "Exists"}]}])


def test_quantity_bytes():
    assert quantity_bytes("8Gi") == 8 * 2 ** 30
    assert quantity_bytes("500M") == 500 * 10 ** 6
    assert quantity_bytes(1073741824) == 1073741824
    assert quantity_bytes("1.5Gi") == 1610612736 and quantity_bytes("8G") == 8 * 10 ** 9
    assert quantity_bytes("100m") == 1  # a fraction of a byte rounds up
    with pytest.raises(AnsibleFilterError, match="not a storage quantity"):
        quantity_bytes("eight gigabytes")


SECRET_YAML = "apiVersion: v1\nkind: Secret\ndata:\n  key: c2VjcmV0LWtleS1ieXRlcw==\n"


def age_pair():
    x25519 = pytest.importorskip("pyrage").x25519
    identity = x25519.Identity.generate()
    return "# created: by the test\n%s\n" % identity, str(identity.to_public())


def test_age_encrypt_is_armored_holds_nothing_in_clear_and_decrypts_back():
    identity, recipient = age_pair()
    sealed = age_encrypt(SECRET_YAML, [recipient])
    assert sealed.startswith("-----BEGIN AGE ENCRYPTED FILE-----")
    assert "c2VjcmV0LWtleS1ieXRlcw" not in sealed and "Secret" not in sealed
    assert age_decrypt(sealed, identity) == SECRET_YAML


def test_age_encrypt_to_several_recipients_each_decrypts():
    (id1, r1), (id2, r2) = age_pair(), age_pair()
    sealed = age_encrypt(SECRET_YAML, [r1, r2])
    assert age_decrypt(sealed, id1) == age_decrypt(sealed, id2) == SECRET_YAML


@pytest.mark.parametrize("recipients, message", [
    (["ssh-ed25519 AAAA"], "is not an age X25519 recipient"),
    ([], "at least one age recipient"),
])
def test_age_encrypt_refuses_what_is_not_a_recipient(recipients, message):
    pytest.importorskip("pyrage")
    with pytest.raises(AnsibleFilterError, match=message):
        age_encrypt(SECRET_YAML, recipients)


def test_age_decrypt_with_another_identity_says_so():
    _id1, r1 = age_pair()
    id2, _r2 = age_pair()
    with pytest.raises(AnsibleFilterError, match="does not decrypt"):
        age_decrypt(age_encrypt(SECRET_YAML, [r1]), id2)
    with pytest.raises(AnsibleFilterError, match="identity file"):
        age_decrypt(age_encrypt(SECRET_YAML, [r1]), "not a key")

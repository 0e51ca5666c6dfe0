# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The "Kubeconfig (hcp.etcd)" credential type, injected as AWX does, selects the right cluster.

AWX renders every file and env injector of a custom credential type in a Jinja sandbox, writes each
`template.<name>` file and exposes its path as `tower.filename.<name>`, and sets EVERY env injector
(a blank input renders as ""). The job's environment built here is then read by kubernetes.core's
own client code (the code path of its modules, of hcp.etcd's modules and of the inventory plugin)
with the real kubernetes client: the API server it would talk to is the one of the chosen context.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
from types import SimpleNamespace

import pytest
import yaml

from jinja2.sandbox import ImmutableSandboxedEnvironment

from ansible.parsing.dataloader import DataLoader

kubernetes = pytest.importorskip("kubernetes")
from ansible_collections.kubernetes.core.plugins.module_utils.k8s import client as k8s_client  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "mgmt", "cluster": {"server": "https://mgmt.example:6443"}},
                 {"name": "other", "cluster": {"server": "https://other.example:6443"}}],
    "users": [{"name": "admin", "user": {"token": "sha256~token"}}],
    "contexts": [{"name": "mgmt", "context": {"cluster": "mgmt", "user": "admin"}},
                 {"name": "other/cluster:443", "context": {"cluster": "other", "user": "admin"}}],
    "current-context": "mgmt",
}


def credential_type(name="hcp_etcd_credential_type"):
    return DataLoader().load_from_file(os.path.join(REPO, "awx", "vars", "hcp_etcd.yml"))[name]


def inject(inputs, private_dir, name="hcp_etcd_credential_type"):
    """The job environment AWX builds from the credential type and a credential's inputs."""
    injectors = credential_type(name)["injectors"]
    sandbox = ImmutableSandboxedEnvironment()
    namespace = dict(inputs)
    namespace["tower"] = SimpleNamespace(filename=SimpleNamespace())
    for label, template in injectors.get("file", {}).items():
        path = os.path.join(str(private_dir), "tmp" + label.replace(".", "_"))
        with open(path, "w") as f:
            f.write(sandbox.from_string(template).render(**namespace))
        os.chmod(path, 0o600)
        setattr(namespace["tower"].filename, label.split(".", 1)[1], path)
    return dict((var, sandbox.from_string(template).render(**namespace)) for var, template in injectors["env"].items())


@pytest.fixture
def server_for(tmp_path, monkeypatch):
    """The API server kubernetes.core's client would use in a job with this credential."""
    def run(inputs):
        env = inject(inputs, tmp_path)
        for var in [v for v in os.environ if v.startswith("K8S_AUTH_") or v == "KUBECONFIG"]:
            monkeypatch.delenv(var)
        for var, value in env.items():
            monkeypatch.setenv(var, value)
        auth = k8s_client._create_auth_spec()
        return env, k8s_client._create_configuration(auth).host

    yield run
    kubernetes.client.Configuration.set_default(None)


@pytest.mark.parametrize("inputs", [{}, {"context": ""}], ids=["context-missing", "context-blank"])
def test_a_blank_context_is_not_injected_and_the_current_context_is_used(server_for, inputs):
    inputs = dict(inputs, kubeconfig=yaml.safe_dump(KUBECONFIG))
    env, server = server_for(inputs)
    assert "K8S_AUTH_CONTEXT" not in env, "a blank Context must leave K8S_AUTH_CONTEXT unset"
    assert server == "https://mgmt.example:6443"


def test_a_context_given_selects_that_context(server_for):
    env, server = server_for({"kubeconfig": yaml.safe_dump(KUBECONFIG), "context": "other/cluster:443"})
    assert "K8S_AUTH_CONTEXT" not in env
    assert server == "https://other.example:6443"


def test_a_json_kubeconfig_works_too(server_for):
    import json

    env, server = server_for({"kubeconfig": json.dumps(KUBECONFIG), "context": "other/cluster:443"})
    assert server == "https://other.example:6443"


def test_an_unknown_context_fails_naming_it(server_for):
    with pytest.raises(kubernetes.config.ConfigException, match="no-such"):
        server_for({"kubeconfig": yaml.safe_dump(KUBECONFIG), "context": "no-such"})


def test_kubeconfig_is_the_one_file_for_other_tools(tmp_path):
    env = inject({"kubeconfig": yaml.safe_dump(KUBECONFIG), "context": "other/cluster:443"}, tmp_path)
    with open(env["KUBECONFIG"]) as f:
        assert yaml.safe_load(f) == KUBECONFIG


def bearer_token_env(tmp_path, verify_ssl, ca):
    """What AWX's built-in "OpenShift or Kubernetes API Bearer Token" injects (its kubernetes_bearer_token injector)."""
    env = {"K8S_AUTH_HOST": "https://api.mgmt.example:6443", "K8S_AUTH_API_KEY": "sha256~token"}
    if verify_ssl and ca:
        path = tmp_path / "ca.crt"
        path.write_text(ca)
        env.update(K8S_AUTH_VERIFY_SSL="True", K8S_AUTH_SSL_CA_CERT=str(path))
    else:
        env["K8S_AUTH_VERIFY_SSL"] = "False"
    return env


@pytest.mark.parametrize("verify_ssl,ca,verified", [(True, "-----BEGIN CERTIFICATE-----\n", True), (True, None, False), (False, None, False)])
def test_the_built_in_bearer_token_credential_reaches_the_api_with_its_token(tmp_path, monkeypatch, verify_ssl, ca, verified):
    for var in [v for v in os.environ if v.startswith("K8S_AUTH_") or v == "KUBECONFIG"]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))  # no kubeconfig is read
    for var, value in bearer_token_env(tmp_path, verify_ssl, ca).items():
        monkeypatch.setenv(var, value)
    configuration = k8s_client._create_configuration(k8s_client._create_auth_spec())
    assert configuration.host == "https://api.mgmt.example:6443"
    assert configuration.api_key == {"authorization": "Bearer sha256~token"}
    assert configuration.verify_ssl is verified
    assert (configuration.ssl_ca_cert is not None) is verified


def test_the_age_identity_credential_gives_the_store_module_an_identity_file_that_decrypts(tmp_path, monkeypatch):
    pyrage = pytest.importorskip("pyrage")
    from ansible_collections.hcp.etcd.plugins.module_utils import backup_store

    identity = pyrage.x25519.Identity.generate()
    env = inject({"identity": "# created: today\n%s\n" % identity}, tmp_path, name="hcp_etcd_age_credential_type")
    assert set(env) == {"HCP_ETCD_AGE_IDENTITY_FILE"}, "the key itself stays out of the environment"
    assert oct(os.stat(env["HCP_ETCD_AGE_IDENTITY_FILE"]).st_mode & 0o777) == "0o600"
    # what hcp.etcd.etcd_backup_store reads (its option age_identity_file falls back to that variable)
    with open(env["HCP_ETCD_AGE_IDENTITY_FILE"]) as f:
        identities = backup_store.parse_identities(f.read())
    plain, sealed, opened = tmp_path / "plain", tmp_path / "sealed", tmp_path / "opened"
    plain.write_bytes(b"etcd snapshot bytes" * 100)
    backup_store.encode_file(str(plain), str(sealed), "zstd", [identity.to_public()])
    backup_store.decode_file(str(sealed), str(opened), "zstd+age", identities)
    assert opened.read_bytes() == plain.read_bytes()
    fields = credential_type("hcp_etcd_age_credential_type")["inputs"]["fields"]
    assert fields[0]["secret"] is True and fields[0]["multiline"] is True

# -*- coding: utf-8 -*-
# Copyright: contributors to hcp.etcd
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """How the modules reach etcd from inside a member's container (shared by etcd_snapshot and etcd_verify)."""

    DOCUMENTATION = r"""
options:
  endpoint:
    description: etcd client URL, as seen from inside the container.
    type: str
    default: https://localhost:2379
  cacert:
    description:
      - Path inside the container of the etcd CA bundle. Default is the first readable of
        C(/etc/etcd/tls/etcd-ca/ca.crt) and C(/etc/etcd/tls/client/etcd-client-ca.crt)
        (OpenShift 4.11 and older).
    type: str
  cert:
    description:
      - Path inside the container of the etcd client certificate.
        Default C(/etc/etcd/tls/client/etcd-client.crt).
    type: str
  key:
    description:
      - Path inside the container of the etcd client key (only the path is handled, never the key).
        Default C(/etc/etcd/tls/client/etcd-client.key).
    type: str
"""

# -*- coding: utf-8 -*-
# Copyright: hcp.etcd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Kubernetes object (or a list of them) without metadata.managedFields, as the backup saves it.

hcp.etcd depends on kubernetes.core only; this replaces ansible.utils.remove_keys, which a user who
installs ansible-core and the declared dependencies does not have. Documented in
without_managed_fields.yml."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError


def _one(obj):
    if not isinstance(obj, dict):
        raise AnsibleFilterError("without_managed_fields: expected a Kubernetes object (a dict), got %s" % type(obj).__name__)
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or "managedFields" not in metadata:
        return obj
    result = dict(obj)
    result["metadata"] = dict((k, v) for k, v in metadata.items() if k != "managedFields")
    return result


def without_managed_fields(objects):
    """``hostedcluster | hcp.etcd.without_managed_fields`` (a dict, or a list of dicts)."""
    if isinstance(objects, (list, tuple)):
        return [_one(obj) for obj in objects]
    return _one(objects)


class FilterModule(object):
    def filters(self):
        return {"without_managed_fields": without_managed_fields}

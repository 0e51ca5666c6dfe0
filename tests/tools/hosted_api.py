"""Objects of a hosted cluster, through its own (real) kube-apiserver: what its users see.

The server and its bearer token come from HOSTED_API_SERVER and HOSTED_API_TOKEN (tests/e2e/hosted_api.sh reads
them from the control plane's Service kube-apiserver and Secret kube-apiserver-token). TLS is not verified: the
server's certificate is the self-signed one kube-apiserver makes for itself.

  hosted_api.py seed SET N            namespace hcp-e2e, N ConfigMaps cm-SET-<i>, N/4 Secrets, a Deployment
  hosted_api.py mutate SET N          then: N ConfigMaps of SET, every third of the others deleted, two changed
  hosted_api.py state OUT             every object of hcp-e2e (kind/name -> sha256 of its data or spec) as JSON
  hosted_api.py same A B              exit 1, naming the differences, unless the two states are equal
  hosted_api.py watch OUT             an informer of the ConfigMaps of hcp-e2e (list, then watch from the list's
                                      resourceVersion; relist on 410 Gone, rewatch from the last one on a broken
                                      stream), its view written to OUT after every change, until killed
  hosted_api.py converged OUT STATE S wait up to S seconds until the informer's view equals STATE's ConfigMaps
  hosted_api.py advance OUT           write ConfigMaps in namespace hcp-e2e-ticks until the server's resourceVersion
                                      is past the last one the informer of OUT saw (what a busy cluster does)
"""

import hashlib
import json
import os
import sys
import time
import traceback

import urllib3
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

NS = "hcp-e2e"
urllib3.disable_warnings()


def api():
    conf = client.Configuration()
    conf.host = os.environ["HOSTED_API_SERVER"]
    conf.api_key = {"authorization": "Bearer " + os.environ["HOSTED_API_TOKEN"]}
    conf.verify_ssl = False
    conf.retries = False
    return client.ApiClient(conf)


def digest(obj):
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def value(set_name, i):
    return hashlib.sha256(("%s/%d" % (set_name, i)).encode()).hexdigest()


def seed(set_name, n):
    c = api()
    core, apps = client.CoreV1Api(c), client.AppsV1Api(c)
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    except ApiException as exc:
        if exc.status != 409:
            raise
    for i in range(n):
        core.create_namespaced_config_map(NS, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="cm-%s-%d" % (set_name.lower(), i)), data={"value": value(set_name, i)}))
    for i in range(max(1, n // 4)):
        core.create_namespaced_secret(NS, client.V1Secret(
            metadata=client.V1ObjectMeta(name="secret-%s-%d" % (set_name.lower(), i)), string_data={"password": value(set_name, -i)}))
    labels = {"app": "web-%s" % set_name.lower()}
    apps.create_namespaced_deployment(NS, client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web-%s" % set_name.lower()),
        spec=client.V1DeploymentSpec(
            replicas=2, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="example.invalid/web:%s" % set_name)])))))
    print("seeded %s: %d ConfigMaps, %d Secrets, Deployment web-%s in %s" % (set_name, n, max(1, n // 4), set_name.lower(), NS))


def mutate(set_name, n):
    core = client.CoreV1Api(api())
    existing = sorted(cm.metadata.name for cm in core.list_namespaced_config_map(NS).items)
    deleted = existing[::3]
    for name in deleted:
        core.delete_namespaced_config_map(name, NS)
    changed = [name for name in existing if name not in deleted][:2]
    for name in changed:
        core.patch_namespaced_config_map(name, NS, {"data": {"value": "changed after the backup"}})
    seed(set_name, n)
    print("mutated: %d ConfigMaps deleted, %d changed, set %s added" % (len(deleted), len(changed), set_name))


def state():
    c = api()
    core, apps = client.CoreV1Api(c), client.AppsV1Api(c)
    out = {}
    for cm in core.list_namespaced_config_map(NS).items:
        if cm.metadata.name != "kube-root-ca.crt":
            out["ConfigMap/" + cm.metadata.name] = digest(cm.data)
    for s in core.list_namespaced_secret(NS).items:
        out["Secret/" + s.metadata.name] = digest(s.data)
    for d in apps.list_namespaced_deployment(NS).items:
        out["Deployment/" + d.metadata.name] = digest(c.sanitize_for_serialization(d.spec))
    return out


def write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, sort_keys=True)
    os.replace(tmp, path)


def differences(a, b):
    keys = sorted(set(a) | set(b))
    return ["%s: %s != %s" % (k, a.get(k, "absent"), b.get(k, "absent")) for k in keys if a.get(k) != b.get(k)]


def configmaps(st):
    return dict((k, v) for k, v in st.items() if k.startswith("ConfigMap/"))


def informer(out):
    """A client-go reflector in miniature: list, watch from the list's resourceVersion, relist on 410 Gone."""
    view, meta = {}, {"relists": 0, "lists": 0, "events": 0, "rewatches": 0, "errors": []}
    rv = None
    core = None
    while True:
        try:
            if core is None:
                core = client.CoreV1Api(api())
            if rv is None:
                listed = core.list_namespaced_config_map(NS)
                view = dict(("ConfigMap/" + cm.metadata.name, digest(cm.data)) for cm in listed.items
                            if cm.metadata.name != "kube-root-ca.crt")
                rv = meta["rv"] = listed.metadata.resource_version
                meta["lists"] += 1
                meta["relists"] = meta["lists"] - 1
                meta["list_rv"] = rv
                write_json(out, {"view": view, "meta": meta})
            for event in watch.Watch().stream(core.list_namespaced_config_map, NS, resource_version=rv,
                                              timeout_seconds=30, allow_watch_bookmarks=True):
                kind, obj = event["type"], event["object"]
                # a Status (an ERROR event, or any object the client left undecoded as a dict)
                if kind == "ERROR" or isinstance(obj, dict):
                    status = obj if isinstance(obj, dict) else client.ApiClient().sanitize_for_serialization(obj)
                    code = status.get("code")
                    meta["errors"].append("watch ERROR %s: %s" % (code, status.get("message")))
                    if code == 410:
                        rv = None
                        break
                    continue
                rv = meta["rv"] = obj.metadata.resource_version
                if kind == "BOOKMARK" or obj.metadata.name == "kube-root-ca.crt":
                    continue
                meta["events"] += 1
                key = "ConfigMap/" + obj.metadata.name
                if kind == "DELETED":
                    view.pop(key, None)
                else:
                    view[key] = digest(obj.data)
                write_json(out, {"view": view, "meta": meta})
        except ApiException as exc:
            meta["errors"].append("watch %s: %s" % (exc.status, exc.reason))
            if exc.status == 410:
                rv = None
            time.sleep(1)
        except Exception as exc:  # the API server went away (the restore stops it): watch again from rv
            meta["rewatches"] += 1
            where = traceback.extract_tb(exc.__traceback__)[-1]
            error = "%s: %s (%s:%d)" % (type(exc).__name__, str(exc)[:160], os.path.basename(where.filename), where.lineno)
            meta["errors"] = (meta["errors"] + [error])[-20:]
            core = None
            time.sleep(1)
        write_json(out, {"view": view, "meta": meta})


def main(argv):
    cmd = argv[1]
    if cmd == "seed":
        seed(argv[2], int(argv[3]))
    elif cmd == "mutate":
        mutate(argv[2], int(argv[3]))
    elif cmd == "state":
        st = state()
        write_json(argv[2], st)
        print("%d objects in %s" % (len(st), NS))
    elif cmd == "same":
        a, b = (json.load(open(p)) for p in argv[2:4])
        diff = differences(a, b)
        if diff:
            print("%d difference(s): %s" % (len(diff), "; ".join(diff[:10])))
            return 1
        print("equal: %d objects" % len(a))
    elif cmd == "watch":
        informer(argv[2])
    elif cmd == "advance":
        seen = int(json.load(open(argv[2]))["meta"]["rv"])
        core = client.CoreV1Api(api())
        try:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS + "-ticks")))
        except ApiException as exc:
            if exc.status != 409:
                raise
        writes = 0
        while int(core.list_namespaced_config_map(NS + "-ticks").metadata.resource_version) <= seen:
            core.create_namespaced_config_map(NS + "-ticks", client.V1ConfigMap(
                metadata=client.V1ObjectMeta(generate_name="tick-"), data={"n": str(writes)}))
            writes += 1
        print("%d write(s) took the server past resourceVersion %d, the informer's last" % (writes, seen))
    elif cmd == "converged":
        out, want, deadline = argv[2], configmaps(json.load(open(argv[3]))), time.time() + float(argv[4])
        while True:
            try:
                seen = json.load(open(out))
            except (OSError, ValueError):
                seen = {"view": {}, "meta": {}}
            diff = differences(want, seen["view"])
            if not diff:
                meta = seen["meta"]
                print("informer converged to %d ConfigMaps after %d list(s) (%d relist(s)), %d event(s), %d rewatch(es); "
                      "errors seen: %s" % (len(want), meta["lists"], meta["relists"], meta["events"], meta["rewatches"],
                                           "; ".join(meta["errors"][-3:]) or "none"))
                return 0
            if time.time() > deadline:
                print("informer NOT converged: %d difference(s): %s; meta %s" % (len(diff), "; ".join(diff[:6]), seen["meta"]))
                return 1
            time.sleep(1)
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

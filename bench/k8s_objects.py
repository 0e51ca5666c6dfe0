"""Kubernetes objects shaped like a hosted cluster's, for the compression benchmark (bench/compression.sh).

  python3 bench/k8s_objects.py NAMESPACE [COUNT]      prints a JSON List of COUNT objects (default 4000)

A mix as a cluster's etcd holds them: ConfigMaps of configuration text, Secrets of random key material
(service-account tokens, TLS keys: they do not compress), Deployments with full pod templates, Services.
kube-apiserver stores the built-in kinds as protobuf, as it would store a real cluster's. Deterministic
(seeded), so that two runs measure the same data.
"""
import base64
import json
import random
import sys


def configmap(ns, i, rnd):
    lines = ["# generated configuration %d" % i]
    for k in range(rnd.randint(20, 120)):
        lines.append("%s.%s: %s" % (rnd.choice(["server", "client", "cache", "log", "auth", "quota"]),
                                    rnd.choice(["timeout", "maxConnections", "level", "path", "enabled", "ttl"]) + str(k),
                                    rnd.choice(["true", "false", str(rnd.randint(1, 100000)), "/var/lib/app/%d" % k, "info"])))
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "config-%05d" % i, "namespace": ns, "labels": {"app": "app-%d" % (i % 50), "tier": "backend"}},
            "data": {"app.properties": "\n".join(lines), "version": str(rnd.randint(1, 9))}}


def secret(ns, i, rnd):
    kind = i % 3
    if kind == 0:  # a service-account-like token
        data = {"token": base64.b64encode(rnd.randbytes(900)).decode(),
                "namespace": base64.b64encode(ns.encode()).decode()}
    elif kind == 1:  # a TLS pair
        data = {"tls.crt": base64.b64encode(rnd.randbytes(1200)).decode(),
                "tls.key": base64.b64encode(rnd.randbytes(1700)).decode()}
    else:  # a password
        data = {"password": base64.b64encode(("%032x" % rnd.getrandbits(128)).encode()).decode()}
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "secret-%05d" % i, "namespace": ns, "labels": {"app": "app-%d" % (i % 50)}}, "data": data}


def deployment(ns, i, rnd):
    name = "app-%05d" % i
    env = [{"name": "VAR_%d" % k, "value": str(rnd.randint(0, 10 ** 6))} for k in range(rnd.randint(3, 15))]
    container = {"name": "main", "image": "registry.example.com/team/%s@sha256:%064x" % (name, rnd.getrandbits(256)),
                 "args": ["--config=/etc/app/app.properties", "--port=8443", "--v=2"], "env": env,
                 "ports": [{"name": "https", "containerPort": 8443, "protocol": "TCP"}],
                 "resources": {"requests": {"cpu": "%dm" % rnd.randint(10, 500), "memory": "%dMi" % rnd.randint(32, 1024)}},
                 "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8443, "scheme": "HTTPS"}, "periodSeconds": 10},
                 "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}, {"name": "certs", "mountPath": "/etc/certs"}]}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [container],
                                           "volumes": [{"name": "config", "configMap": {"name": "config-%05d" % i}},
                                                       {"name": "certs", "secret": {"secretName": "secret-%05d" % i}}]}}}}


def service(ns, i, rnd):
    name = "app-%05d" % i
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {"selector": {"app": name}, "ports": [{"name": "https", "port": 443, "targetPort": 8443}]}}


def main():
    ns = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 4000
    rnd = random.Random(20261130)
    makers = [configmap, configmap, secret, deployment, service]  # 2/5 ConfigMaps, 1/5 each of the rest
    items = [makers[i % len(makers)](ns, i, rnd) for i in range(count)]
    json.dump({"apiVersion": "v1", "kind": "List", "items": items}, sys.stdout)


if __name__ == "__main__":
    main()

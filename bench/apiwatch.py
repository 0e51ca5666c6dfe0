"""Measure API downtime from outside, the same way for every restore method (benchmark helper).

  apiwatch.py NAMESPACE OUT.json [--deployments a,b,c] [--replicas 3]

Polls the API Deployments every 0.25 s. `down_at`: first poll that sees any of them with
spec.replicas 0; `up_at`: first later poll that sees all of them with spec.replicas, readyReplicas
and availableReplicas equal to --replicas again. Stops at `up_at`, or on SIGTERM (writes what it
has). Writes {"down_at", "up_at", "downtime_seconds"} (epoch seconds) to OUT.json.
"""
import argparse
import json
import os
import signal
import sys
import time

from kubernetes import client, config


def main():
    p = argparse.ArgumentParser()
    p.add_argument("namespace")
    p.add_argument("out")
    p.add_argument("--deployments", default="kube-apiserver,openshift-apiserver,openshift-oauth-apiserver")
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--interval", type=float, default=0.25)
    a = p.parse_args()
    config.load_kube_config()
    apps = client.AppsV1Api()
    names = set(a.deployments.split(","))
    state = {"down_at": None, "up_at": None}

    def write(*_args):
        result = dict(state)
        if state["down_at"] and state["up_at"]:
            result["downtime_seconds"] = round(state["up_at"] - state["down_at"], 2)
        with open(a.out + ".tmp", "w") as fh:
            json.dump(result, fh)
        os.rename(a.out + ".tmp", a.out)
        if _args:
            sys.exit(0)

    signal.signal(signal.SIGTERM, write)
    while True:
        now = time.time()
        try:
            items = [d for d in apps.list_namespaced_deployment(a.namespace, _request_timeout=5).items
                     if d.metadata.name in names]
        except Exception:  # pylint: disable=broad-except
            time.sleep(a.interval)
            continue
        if state["down_at"] is None:
            if any((d.spec.replicas or 0) == 0 for d in items):
                state["down_at"] = now
                write()
        elif len(items) == len(names) and all(
            d.spec.replicas == a.replicas
            and (d.status.ready_replicas or 0) == a.replicas
            and (d.status.available_replicas or 0) == a.replicas
            for d in items
        ):
            state["up_at"] = now
            write()
            return
        time.sleep(a.interval)


if __name__ == "__main__":
    main()

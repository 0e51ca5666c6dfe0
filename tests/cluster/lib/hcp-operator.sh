#!/usr/bin/env bash
# The miniature's stand-in for HyperShift's two operators, as far as pause goes (facts, section 9):
#
#   - the HyperShift operator copies HostedCluster spec.pausedUntil to the HostedControlPlane of the
#     control-plane namespace, not at once: HCP_OPERATOR_PAUSE_DELAY seconds (default 3; the annotation
#     hcp-etcd.test/pause-delay on a HostedControlPlane sets its own) after it first sees the two differ;
#   - the control-plane operator, while the HostedControlPlane is not paused, reconciles: it puts each
#     API Deployment back at its desired replica count (annotation hcp-etcd.test/desired-replicas,
#     written by hcp.sh) and reports condition ReconciliationActive=True on the HostedControlPlane;
#     while it is paused it changes nothing and reports ReconciliationActive=False, reason
#     ReconciliationPaused.
#
# So a tool that scales the API down right after pausing the HostedCluster sees it come back, as it
# would on real HyperShift, unless it first waits for ReconciliationActive=False.
#
# Started by `hcp.sh up` (one per cluster, whatever KUBECONFIG names), it reacts to watch events of
# HostedClusters, HostedControlPlanes and Deployments and reconciles every 10 s in any case.
# Env: KUBECTL, KUBECONFIG, HCP_OPERATOR_PAUSE_DELAY.
set -uo pipefail
# shellcheck source=reconcile-loop.sh
. "$(cd "$(dirname "$0")" && pwd)/reconcile-loop.sh"
KUBECTL=${KUBECTL:?}
DELAY=${HCP_OPERATOR_PAUSE_DELAY:-3}
API_DEPLOYMENTS="kube-apiserver openshift-apiserver openshift-oauth-apiserver"
k() { "$KUBECTL" --request-timeout=30s "$@"; }   # a stuck request must not stall the operator
log() { printf '%s [hcp-operator] %s\n' "$(date +%H:%M:%S)" "$*"; }

declare -A differs_since=()

# paused VALUE: whether a pausedUntil value pauses now ("true", or an RFC3339 time in the future).
paused() {
  case ${1:-} in
    true|True) return 0 ;;
    ''|false|False) return 1 ;;
    *) [ "$(date -u -d "$1" +%s 2>/dev/null || echo 0)" -gt "$(date -u +%s)" ] ;;
  esac
}

set_condition() {  # NS NAME STATUS REASON MESSAGE
  local now; now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  k -n "$1" patch hostedcontrolplane "$2" --subresource=status --type=merge -p \
    "{\"status\":{\"conditions\":[{\"type\":\"ReconciliationActive\",\"status\":\"$3\",\"reason\":\"$4\",\"message\":\"$5\",\"lastTransitionTime\":\"$now\"}]}}" >/dev/null
}

pending=0   # a copy of pausedUntil is due: look again in a second, not in ten

reconcile() {
  local ns name cluster hcp_paused active delay hc_paused key d want have
  pending=0
  # one line per HostedControlPlane: namespace|name|<hc-namespace>/<hc-name>|pausedUntil|ReconciliationActive|delay
  while IFS='|' read -r ns name cluster hcp_paused active delay; do
    delay=${delay:-$DELAY}
    [ -n "$name" ] && [ -n "$cluster" ] || continue
    hc_paused=$(k -n "${cluster%%/*}" get hostedcluster "${cluster#*/}" -o jsonpath='{.spec.pausedUntil}' 2>/dev/null) || continue
    key=$ns/$name
    if [ "$hc_paused" != "$hcp_paused" ]; then
      # the HyperShift operator's copy, late
      if [ -z "${differs_since[$key]:-}" ]; then differs_since[$key]=$SECONDS; fi
      if [ $((SECONDS - differs_since[$key])) -ge "$delay" ]; then
        if [ -n "$hc_paused" ]; then
          k -n "$ns" patch hostedcontrolplane "$name" --type=merge -p "{\"spec\":{\"pausedUntil\":\"$hc_paused\"}}" >/dev/null
        else
          k -n "$ns" patch hostedcontrolplane "$name" --type=merge -p '{"spec":{"pausedUntil":null}}' >/dev/null
        fi
        log "$key: spec.pausedUntil '${hc_paused}' copied from HostedCluster $cluster after $((SECONDS - differs_since[$key])) s"
        hcp_paused=$hc_paused
        unset "differs_since[$key]"
      else
        pending=1
      fi
    else
      unset "differs_since[$key]"
    fi
    if paused "$hcp_paused"; then
      [ "$active" = False ] || { set_condition "$ns" "$name" False ReconciliationPaused "Reconciliation paused until: $hcp_paused"; log "$key: paused"; }
      continue
    fi
    [ "$active" = True ] || { set_condition "$ns" "$name" True ReconciliationActive "Reconciliation active on resource"; log "$key: reconciling"; }
    # the control-plane operator: API Deployments at their desired counts
    while read -r d want have; do
      [ -n "$want" ] && [ "$want" != "$have" ] || continue
      k -n "$ns" scale deployment "$d" --replicas="$want" >/dev/null && log "$key: deployment $d scaled back from $have to $want"
    done < <(k -n "$ns" get deployments -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.annotations.hcp-etcd\.test/desired-replicas} {.spec.replicas}{"\n"}{end}' 2>/dev/null |
             grep -E "^($(echo "$API_DEPLOYMENTS" | tr ' ' '|')) ")
  done < <(k get hostedcontrolplanes -A -o jsonpath='{range .items[*]}{.metadata.namespace}|{.metadata.name}|{.metadata.annotations.hypershift\.openshift\.io/cluster}|{.spec.pausedUntil}|{.status.conditions[?(@.type=="ReconciliationActive")].status}|{.metadata.annotations.hcp-etcd\.test/pause-delay}{"\n"}{end}' 2>/dev/null)
}

log "started (pause copied after ${DELAY} s; kubeconfig ${KUBECONFIG:-default})"
reconcile_on_events 10 hostedclusters hostedcontrolplanes deployments

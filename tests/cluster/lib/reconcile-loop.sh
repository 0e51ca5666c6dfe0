# shellcheck shell=bash
# The loop of the cluster's small controllers (lib/loop-volumes.sh, lib/hcp-operator.sh).
#
# reconcile_on_events RESYNC RESOURCE...: run the caller's `reconcile` now, again on every watch event
# of the RESOURCEs (events that arrive during a pass are folded into the next), and at least every
# RESYNC seconds (every second while the caller's $pending is 1). Needs the caller's functions k
# (kubectl, with a --request-timeout so that no stuck request stalls the loop) and log. Exits once the API server has been unreachable for a minute (the cluster is gone).
reconcile_on_events() {
  local resync=$1 up_at=$SECONDS r rc; shift
  while true; do
    if k get --raw /readyz >/dev/null 2>&1; then up_at=$SECONDS; fi
    [ $((SECONDS - up_at)) -lt 60 ] || { log "API server unreachable for a minute: exiting"; exit 0; }
    { for r in "$@"; do k get "$r" -A --watch-only -o name --request-timeout=10m & done; wait; } 2>/dev/null |
      while true; do
        reconcile
        read -r -t "$([ "${pending:-0}" = 1 ] && echo 1 || echo "$resync")" _event; rc=$?
        [ $rc -eq 0 ] || [ $rc -gt 128 ] || break   # EOF: the watches ended, start them again
        while read -r -t 0.5 _event; do :; done
      done
    sleep 1
  done
}

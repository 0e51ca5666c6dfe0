#!/usr/bin/env bash
# A real S3 server for the backup-store tests: MinIO (built from its Go module by build-binaries.sh), on
# 127.0.0.1 with TLS (its own CA), one bucket.
#
#   s3.sh up       start it (idempotent) and create the bucket; prints the env file to source
#   s3.sh down     stop it and remove its data
#   s3.sh env      the env file: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
#                  AWS_CA_BUNDLE, HCP_ETCD_S3_BUCKET (what an operator sets for hcp.etcd's backup_store)
# Env: HCP_ETCD_S3_DIR (default /var/tmp/hcp-etcd-s3), HCP_ETCD_S3_PORT (default 9000),
#      HCP_ETCD_S3_BUCKET (default hcp-etcd-backups).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
cache=${HCP_ETCD_CACHE:-$HOME/.cache/hcp-etcd}
dir=${HCP_ETCD_S3_DIR:-/var/tmp/hcp-etcd-s3}
port=${HCP_ETCD_S3_PORT:-9000}
bucket=${HCP_ETCD_S3_BUCKET:-hcp-etcd-backups}
minio=$cache/minio-$MINIO_VERSION/bin/minio
python=${HCP_ETCD_PYTHON:-$repo/.venv/bin/python}

log() { printf '%s [s3] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

running() { [ -f "$dir/minio.pid" ] && kill -0 "$(cat "$dir/minio.pid")" 2>/dev/null; }

make_tls() {  # a CA and a server certificate for 127.0.0.1 and localhost
  [ -f "$dir/certs/public.crt" ] && return
  mkdir -p "$dir/certs/CAs"
  (
    cd "$dir/certs"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
    openssl req -x509 -new -key ca.key -subj "/CN=hcp-etcd-s3-ca" -days 3650 -out ca.crt \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out private.key 2>/dev/null
    openssl req -new -key private.key -subj "/CN=localhost" -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile server.ext -out public.crt 2>/dev/null
    chmod 600 ca.key private.key
  )
}

cmd_up() {
  [ -x "$minio" ] || "$here/build-binaries.sh" minio
  mkdir -p "$dir/data"
  chmod 700 "$dir"
  make_tls
  if [ ! -f "$dir/env" ]; then
    umask 077
    cat > "$dir/env" <<EOF
export AWS_ENDPOINT_URL=https://127.0.0.1:$port
export AWS_ACCESS_KEY_ID=hcp-etcd-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
export AWS_SECRET_ACCESS_KEY=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export AWS_REGION=us-east-1
export AWS_CA_BUNDLE=$dir/certs/ca.crt
export HCP_ETCD_S3_BUCKET=$bucket
EOF
  fi
  # shellcheck disable=SC1091
  . "$dir/env"
  if ! running; then
    MINIO_ROOT_USER=$AWS_ACCESS_KEY_ID MINIO_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY MINIO_BROWSER=off MINIO_UPDATE=off \
      setsid "$minio" server --quiet --address "127.0.0.1:$port" --certs-dir "$dir/certs" "$dir/data" \
      </dev/null >>"$dir/minio.log" 2>&1 &
    echo $! > "$dir/minio.pid"
    log "minio started (pid $!, log $dir/minio.log)"
  fi
  local i
  for ((i = 0; i < 60; i++)); do
    curl -sf --cacert "$AWS_CA_BUNDLE" "$AWS_ENDPOINT_URL/minio/health/ready" >/dev/null && break
    running || die "minio exited: $(tail -n 5 "$dir/minio.log")"
    sleep 0.5
  done
  [ "$i" -lt 60 ] || die "minio not ready after 30 s: $(tail -n 5 "$dir/minio.log")"
  "$python" - "$bucket" <<'PY'
import os, sys, urllib3
from minio import Minio
ep = os.environ["AWS_ENDPOINT_URL"].split("://", 1)[1]
http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=os.environ["AWS_CA_BUNDLE"])
c = Minio(ep, os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"], secure=True, region=os.environ["AWS_REGION"], http_client=http)
if not c.bucket_exists(sys.argv[1]):
    c.make_bucket(sys.argv[1])
PY
  log "ready: $AWS_ENDPOINT_URL, bucket $bucket; . $dir/env"
  echo "$dir/env"
}

cmd_down() {
  if running; then kill "$(cat "$dir/minio.pid")"; sleep 1; fi
  rm -rf "$dir"
  log "down: minio stopped, $dir removed"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  env) echo "$dir/env" ;;
  *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

# shellcheck shell=bash
# PKI of the test cluster, made with openssl: one CA signs every serving and client certificate.
# Each file is created only if missing, so a rerun keeps the existing keys.

# gen_cert <name> <subject> <client|server|both> [subjectAltName]
gen_cert() {
  local name=$1 subj=$2 kind=$3 san=${4:-}
  [ -f "$PKI/$name.crt" ] && return
  local eku ext
  case $kind in
    client) eku=clientAuth ;;
    server) eku=serverAuth ;;
    both)   eku=serverAuth,clientAuth ;;
  esac
  ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -z "$san" ] || echo "subjectAltName=$san"
  } > "$ext"
  openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$ext" "$PKI/$name.csr"
}

# write_kubeconfig <file> <user> <cert-name>: certificates embedded, so the file can be copied.
write_kubeconfig() {
  local file=$1 user=$2 cert=$3 server=${4:-https://127.0.0.1:$APISERVER_PORT}
  [ -f "$file" ] && return
  cat > "$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: hcp-etcd
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 < "$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 < "$PKI/$cert.crt")
    client-key-data: $(base64 -w0 < "$PKI/$cert.key")
contexts:
- name: hcp-etcd
  context: {cluster: hcp-etcd, user: $user}
current-context: hcp-etcd
EOF
  chmod 600 "$file"
}

make_pki() {
  local node_ip=$1
  mkdir -p "$PKI"; chmod 700 "$PKI"
  if [ ! -f "$PKI/ca.crt" ]; then
    openssl genrsa -out "$PKI/ca.key" 2048 2>/dev/null
    openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=hcp-etcd-test-ca" -days 3650 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      -out "$PKI/ca.crt" 2>/dev/null
  fi
  local svc=kubernetes.default.svc
  gen_cert apiserver "/CN=kube-apiserver" server \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:$svc,DNS:$svc.$CLUSTER_DOMAIN,DNS:localhost,DNS:$NODE_NAME,IP:$SERVICE_IP,IP:127.0.0.1,IP:$node_ip"
  gen_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" client
  gen_cert admin "/O=system:masters/CN=kubernetes-admin" client
  gen_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" client
  gen_cert kubelet-serving "/CN=$NODE_NAME" server "DNS:$NODE_NAME,DNS:localhost,IP:$node_ip,IP:127.0.0.1"
  gen_cert controller-manager "/CN=system:kube-controller-manager" client
  gen_cert scheduler "/CN=system:kube-scheduler" client
  gen_cert kube-proxy "/CN=system:kube-proxy" client
  gen_cert coredns "/CN=hcp-etcd:coredns" client
  if [ ! -f "$PKI/sa.key" ]; then
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  write_kubeconfig "$KUBECONFIG_ADMIN" kubernetes-admin admin
  write_kubeconfig "$STATE/kubelet.kubeconfig" "system:node:$NODE_NAME" kubelet
  write_kubeconfig "$STATE/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
  write_kubeconfig "$STATE/scheduler.kubeconfig" system:kube-scheduler scheduler
  write_kubeconfig "$STATE/kube-proxy.kubeconfig" system:kube-proxy kube-proxy
  write_kubeconfig "$STATE/coredns.kubeconfig" hcp-etcd:coredns coredns
}

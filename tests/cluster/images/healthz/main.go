// The miniature's stand-in for the `healthz` container of HyperShift's etcd pod, which runs
// `cluster-etcd-operator readyz --target=https://localhost:2379 --listen-port=9980 ...` and serves the
// probes of the etcd container over HTTPS on port 9980 (facts file section 9). Same command line, same
// port, same paths; what each path checks is this file's choice:
//
//	/readyz   etcd's own /health on the target (a leader and a quorum read): readiness and startup
//	/healthz  etcd's /version on the target (the process serves TLS): liveness, so a member that waits
//	          for its peers is not killed for it
//
// Standard library only, built into a static binary by tests/cluster/images.sh.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "readyz" {
		fmt.Fprintln(os.Stderr, "usage: cluster-etcd-operator readyz --target=URL --listen-port=N ...")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("readyz", flag.ExitOnError)
	target := fs.String("target", "https://localhost:2379", "etcd client URL to check")
	port := fs.Int("listen-port", 9980, "port to serve /readyz and /healthz on")
	servingCert := fs.String("serving-cert-file", "", "serving certificate")
	servingKey := fs.String("serving-key-file", "", "serving key")
	clientCert := fs.String("client-cert-file", "", "client certificate for etcd")
	clientKey := fs.String("client-key-file", "", "client key for etcd")
	clientCA := fs.String("client-cacert-file", "", "CA bundle that signed etcd's serving certificate")
	minVersion := fs.String("listen-tls-min-version", "TLS1.2", "TLS1.2 or TLS1.3")
	if err := fs.Parse(os.Args[2:]); err != nil {
		log.Fatal(err)
	}

	client, err := etcdClient(*clientCert, *clientKey, *clientCA)
	if err != nil {
		log.Fatalf("client TLS: %v", err)
	}
	check := func(path string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
			defer cancel()
			if err := get(ctx, client, strings.TrimRight(*target, "/")+path); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", check("/health"))
	mux.HandleFunc("/healthz", check("/version"))

	tlsMin := uint16(tls.VersionTLS12)
	if *minVersion == "TLS1.3" {
		tlsMin = tls.VersionTLS13
	}
	server := &http.Server{
		Addr:              fmt.Sprintf(":%d", *port),
		Handler:           mux,
		TLSConfig:         &tls.Config{MinVersion: tlsMin},
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Printf("serving /readyz and /healthz on :%d for %s", *port, *target)
	log.Fatal(server.ListenAndServeTLS(*servingCert, *servingKey))
}

func etcdClient(certFile, keyFile, caFile string) (*http.Client, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", caFile)
	}
	transport := &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool}}
	return &http.Client{Transport: transport}, nil
}

func get(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	// etcd's /health answers 200 with {"health":"false"} in some versions: read the verdict too.
	if strings.Contains(string(body), `"health":"false"`) {
		return fmt.Errorf("%s: %s", url, strings.TrimSpace(string(body)))
	}
	return nil
}

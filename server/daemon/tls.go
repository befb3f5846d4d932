package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// loadTLS returns the server TLS configuration cfg asks for, or nil for
// plaintext. With a client CA, client certificates are verified when given
// (tls.VerifyClientCertIfGiven) rather than required in the handshake: a
// caller without one is then refused per call, with UNAUTHENTICATED over
// gRPC and 401 over REST, which says more than a failed handshake, and
// health probes (gRPC Health, /healthz, /readyz) stay open.
func loadTLS(cfg Config) (*tls.Config, error) {
	if cfg.TLSCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("-tls-cert/-tls-key: %w", err)
	}
	conf := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}
	if cfg.TLSClientCA != "" {
		pem, err := os.ReadFile(cfg.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("-tls-client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-tls-client-ca %s: no PEM certificate found", cfg.TLSClientCA)
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return conf, nil
}

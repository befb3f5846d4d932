package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"sync/atomic"
	"time"
)

// maxTLSFileSize bounds a certificate, key or CA bundle file.
const maxTLSFileSize = 1 << 20

// serverTLS is the TLS configuration of both servers, or nil for
// plaintext. The certificate and client CAs come from files and can be
// replaced while serving (reload.go): every handshake takes the ones in
// force when it begins, through tls.Config.GetConfigForClient, so new
// connections get a new certificate while established ones keep theirs.
//
// With a client CA, client certificates are verified when given
// (tls.VerifyClientCertIfGiven) rather than required in the handshake: a
// caller without one is then refused per call, with UNAUTHENTICATED over
// gRPC and 401 over REST, which says more than a failed handshake, and
// health probes (gRPC Health, /healthz, /readyz) stay open. A resumed TLS
// session whose client certificate the client CAs in force no longer
// verify is not resumed (crypto/tls checks), so a rotated client CA
// applies to every new connection.
type serverTLS struct {
	mutual  bool                       // a client CA is configured
	current atomic.Pointer[tls.Config] // in force; never modified once stored
}

// newServerTLS returns the TLS configuration cfg asks for, with nothing in
// force yet (see reloadable), or nil for plaintext.
func newServerTLS(cfg Config) *serverTLS {
	if cfg.TLSCert == "" {
		return nil
	}
	return &serverTLS{mutual: cfg.TLSClientCA != ""}
}

// reloadable reads the certificate, its key and the client CA bundle of cfg
// into s.
func (s *serverTLS) reloadable(cfg Config) *reloadable {
	files := []watchedFile{
		{flag: "-tls-cert", path: cfg.TLSCert, limit: maxTLSFileSize},
		{flag: "-tls-key", path: cfg.TLSKey, limit: maxTLSFileSize},
	}
	if s.mutual {
		files = append(files, watchedFile{flag: "-tls-client-ca", path: cfg.TLSClientCA, limit: maxTLSFileSize})
	}
	return &reloadable{what: whatTLS, files: files, apply: s.apply}
}

// apply puts in force the certificate and key PEM in contents[0] and [1],
// and with mutual TLS the client CA bundle in contents[2].
func (s *serverTLS) apply(contents [][]byte) (string, error) {
	cert, err := tls.X509KeyPair(contents[0], contents[1])
	if err != nil {
		return "", fmt.Errorf("-tls-cert/-tls-key: %w", err)
	}
	if cert.Leaf == nil { // GODEBUG=x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return "", fmt.Errorf("-tls-cert: %w", err)
		}
	}
	conf := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}
	summary := fmt.Sprintf("certificate %s, serial %s, valid until %s",
		certIdentity(cert.Leaf), cert.Leaf.SerialNumber.Text(16), cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	if s.mutual {
		pool, n := parseCertPool(contents[2])
		if n == 0 {
			return "", fmt.Errorf("-tls-client-ca: no PEM certificate found")
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.VerifyClientCertIfGiven
		summary += fmt.Sprintf("; %d client CA certificate(s)", n)
	}
	s.current.Store(conf)
	return summary, nil
}

// parseCertPool returns the certificates of a PEM bundle and how many there
// are. Like x509.CertPool.AppendCertsFromPEM, it skips blocks that are not
// certificates or do not parse.
func parseCertPool(bundle []byte) (*x509.CertPool, int) {
	pool, n := x509.NewCertPool(), 0
	for {
		var block *pem.Block
		block, bundle = pem.Decode(bundle)
		if block == nil {
			return pool, n
		}
		if block.Type != "CERTIFICATE" || len(block.Headers) != 0 {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			continue
		}
		pool.AddCert(cert)
		n++
	}
}

// serverConfig returns the tls.Config of one server, whose handshakes use
// the certificate and client CAs in force. nextProtos are the server's
// ALPN protocols: the config GetConfigForClient returns replaces the
// server's own for the handshake, ALPN included, so they must be there.
func (s *serverTLS) serverConfig(nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := s.current.Load().Clone()
			c.NextProtos = nextProtos
			return c, nil
		},
	}
}

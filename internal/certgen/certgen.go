// Package certgen makes a small PKI for tests and benchmarks: a CA, and a
// server and a client certificate it signed (ECDSA P-256, valid for a
// day), written as PEM files.
package certgen

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Set is the PKI's files and what they hold. The server's certificate is
// for localhost, 127.0.0.1 and ::1.
type Set struct {
	CAFile                string
	CertFile, KeyFile     string // the server's
	ClientCert, ClientKey string
	Pool                  *x509.CertPool // holds the CA
	Server, Client        tls.Certificate
}

// Generate writes a new Set into dir.
func Generate(dir string) (*Set, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "waitron test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	s := &Set{Pool: x509.NewCertPool()}
	s.Pool.AddCert(caCert)
	if s.CAFile, err = writePEM(dir, "ca.pem", "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage) (cf, kf string, pair tls.Certificate, err error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return
		}
		if cf, err = writePEM(dir, name+".pem", "CERTIFICATE", der); err != nil {
			return
		}
		if kf, err = writePEM(dir, name+"-key.pem", "EC PRIVATE KEY", kder); err != nil {
			return
		}
		pair, err = tls.LoadX509KeyPair(cf, kf)
		return
	}
	if s.CertFile, s.KeyFile, s.Server, err = leaf(2, "server", x509.ExtKeyUsageServerAuth); err != nil {
		return nil, err
	}
	if s.ClientCert, s.ClientKey, s.Client, err = leaf(3, "client", x509.ExtKeyUsageClientAuth); err != nil {
		return nil, err
	}
	return s, nil
}

// ClientConfig returns a client configuration that trusts the CA.
func (s *Set) ClientConfig() *tls.Config {
	return &tls.Config{RootCAs: s.Pool, ServerName: "localhost"}
}

func writePEM(dir, name, typ string, der []byte) (string, error) {
	p := filepath.Join(dir, name)
	return p, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

#!/bin/sh
# Makes the certificates for encryptiond's mutual TLS with openssl: a CA, a
# server certificate, and one client certificate per caller, whose identity
# is a SPIFFE-style URI SAN. Run it in an empty directory.
#
#   NAMESPACE      Kubernetes namespace of the Service   (default encryptiond)
#   TRUST_DOMAIN   SPIFFE trust domain of the callers     (default example.org)
#   CALLERS        callers as namespace/service-account   (default "platform/key-admin apps/auditor")
#   DAYS           lifetime of the server and client certificates (default 90)
set -eu
NAMESPACE=${NAMESPACE:-encryptiond}
TRUST_DOMAIN=${TRUST_DOMAIN:-example.org}
CALLERS=${CALLERS:-"platform/key-admin apps/auditor"}
DAYS=${DAYS:-90}
umask 077 # private keys readable by their owner only

# key FILE: a new P-256 private key.
key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1"; }

# sign NAME CN EXTENSIONS: NAME-key.pem and NAME.pem, a certificate for CN
# signed by the CA, with the X.509v3 EXTENSIONS (one per line).
sign() {
  key "$1-key.pem"
  openssl req -new -key "$1-key.pem" -subj "/CN=$2" -out "$1.csr"
  printf '%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem \
    -set_serial "0x$(openssl rand -hex 16)" -days "$DAYS" -sha256 \
    -extfile "$1.ext" -out "$1.pem"
  rm "$1.csr" "$1.ext"
}

# The CA: ca.pem is -tls-client-ca for the daemon and the root that callers
# trust; ca-key.pem signs everything else. Keep it offline.
key ca-key.pem
printf '%s\n' '[req]' 'distinguished_name = dn' 'x509_extensions = ca' 'prompt = no' \
  '[dn]' 'CN = encryptiond CA' \
  '[ca]' 'basicConstraints = critical, CA:TRUE, pathlen:0' \
  'keyUsage = critical, keyCertSign, cRLSign' 'subjectKeyIdentifier = hash' >ca.cnf
openssl req -x509 -new -config ca.cnf -key ca-key.pem -days 3650 -sha256 -out ca.pem
rm ca.cnf

# The server: -tls-cert server.pem -tls-key server-key.pem. Its SANs are the
# names callers dial: the Service, its headless twin, and localhost for a
# port-forward or a local run.
svc=encryptiond.$NAMESPACE.svc
sign server encryptiond "basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:encryptiond, DNS:$svc, DNS:$svc.cluster.local, DNS:encryptiond-headless.$NAMESPACE.svc, DNS:encryptiond-headless.$NAMESPACE.svc.cluster.local, DNS:localhost, IP:127.0.0.1"

# The callers: NAME.pem and NAME-key.pem, identified by
# spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/NAME in the authorization policy.
for caller in $CALLERS; do
  ns=${caller%%/*} name=${caller#*/}
  sign "$name" "$name" "basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:spiffe://$TRUST_DOMAIN/ns/$ns/sa/$name"
done

chmod 644 ./*.pem
chmod 600 ./*-key.pem
ls ./*.pem

// Package deploy holds the tests of encryptiond's deployment kit: the
// Kustomize manifests under kubernetes/, the Dockerfile and `make build` at
// the repository root, the certificate recipe's neighbours in docs/, and the
// LICENSE. It is a module of its own so that the product's go.mod stays free
// of Kubernetes and kustomize; `make test` runs it with `go -C deploy test`.
//
// The tests build the real binaries from the parent module and run them as a
// kubelet would run the Deployment's container, on 127.0.0.1 only.
package deploy

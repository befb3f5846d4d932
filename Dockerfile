# syntax=docker/dockerfile:1
#
# encryptiond's image: a static binary on distroless, running as non-root.
#
#   docker build -t encryptiond .
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/encryptiond:TAG --push .
#
# The go build line is `make build`'s, with the same environment and flags
# (GO_BUILD_ENV, GO_BUILD_FLAGS in the Makefile), so the binary is the one
# CI builds and tests: deploy/image_test.go checks that the two lines agree,
# that the binaries are byte for byte the same and that they are static.
# -buildvcs=false because the build context has no .git: the binary carries
# no commit either way, and the same source gives the same bytes.
# docs/DEPLOYING.md › Building the image.

# The Go release CI uses; go.mod names the minimum.
ARG GO_VERSION=1.26.8

# The builder runs on the build machine's platform and cross-compiles.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -ldflags='-s -w' -o /out/encryptiond ./cmd/encryptiond

# No shell, no package manager; CA certificates for Atlas's HTTPS; user
# nonroot (65532), which the Kubernetes manifests name as runAsUser.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/encryptiond /encryptiond
USER 65532:65532
# gRPC, and REST with /metrics, /healthz and /readyz.
EXPOSE 9090 8080
ENTRYPOINT ["/encryptiond"]

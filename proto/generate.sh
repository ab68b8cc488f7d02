#!/usr/bin/env bash
# Regenerates the Go code for proto/tokenwise/v1/*.proto next to the .proto files.
#
#   bash proto/generate.sh
#
# Needs protoc (Debian: apt-get install protobuf-compiler) and Go. The two
# plugins are built at pinned versions into a temporary directory, so the
# output does not depend on whatever is on PATH. OUT=dir writes elsewhere
# (the test uses it to compare with the committed files).
set -euo pipefail
cd "$(dirname "$0")"

# Pinned plugin versions: protoc-gen-go matches google.golang.org/protobuf in go.mod.
PROTOC_GEN_GO=google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC=google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2

out="${OUT:-.}"
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
GOBIN="$bin" GOFLAGS= go install "$PROTOC_GEN_GO"
GOBIN="$bin" GOFLAGS= go install "$PROTOC_GEN_GO_GRPC"

mkdir -p "$out"
PATH="$bin:$PATH" protoc \
  --proto_path=. \
  --go_out="$out" --go_opt=paths=source_relative \
  --go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
  tokenwise/v1/admin.proto

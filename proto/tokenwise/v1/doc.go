// Package tokenwisev1 is tokenwise's own gRPC API, tokenwise.v1: the
// TokenAdmin service that revokes tokens and reads use counts. The .pb.go
// files are generated from admin.proto by proto/generate.sh; do not edit them.
package tokenwisev1

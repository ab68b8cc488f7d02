package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/tokenwise/tokenwise/authz/pop"
)

// dpopProofFlags are the flags of `tokenwise dpop-proof`.
type dpopProofFlags struct {
	key, method, url, token, nonce string
	jkt                            bool
}

// newDPoPProofCmd is `tokenwise dpop-proof`: the client side of DPoP, so a
// user can try a DPoP-bound token with grpcurl or curl.
func newDPoPProofCmd() *cobra.Command {
	var f dpopProofFlags
	cmd := &cobra.Command{
		Use:   "dpop-proof --key FILE --url URL [--method GET] [--token T] [--nonce N]",
		Short: "Print a DPoP proof for one request",
		Long: `Print a DPoP proof (RFC 9449) for one request, signed with the private key
in FILE (PEM: EC P-256/P-384/P-521, RSA or Ed25519). Send it in the DPoP
header, with the token as "Authorization: DPoP <token>"; a proof is good for
one request. --jkt prints the key's RFC 7638 thumbprint instead: the cnf.jkt
of tokens bound to it (tokenwise dev mints one with /dev/token?jkt=...).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return dpopProof(f, cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.key, "key", "", "PEM private key file (required)")
	fs.StringVar(&f.method, "method", "GET", "the request's HTTP method (htm)")
	fs.StringVar(&f.url, "url", "", "the request's URL (htu; query and fragment are dropped)")
	fs.StringVar(&f.token, "token", "", "the access token the proof goes with (ath)")
	fs.StringVar(&f.nonce, "nonce", "", "the server's nonce, from a DPoP-Nonce header")
	fs.BoolVar(&f.jkt, "jkt", false, "print the key's thumbprint instead of a proof")
	return cmd
}

// dpopProof prints a DPoP proof, or the key's thumbprint with --jkt.
func dpopProof(f dpopProofFlags, stdout io.Writer) error {
	if f.key == "" {
		return errors.New("dpop-proof: --key FILE is required")
	}
	key, err := readSigner(f.key)
	if err != nil {
		return err
	}
	if f.jkt {
		thumb, err := pop.Thumbprint(key.Public())
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, thumb)
		return nil
	}
	if f.url == "" {
		return errors.New("dpop-proof: --url URL is required")
	}
	proof, err := pop.Sign(key, pop.ProofParams{Method: f.method, URL: f.url, Token: f.token, Nonce: f.nonce})
	if err != nil {
		return fmt.Errorf("dpop-proof: %w", err)
	}
	fmt.Fprintln(stdout, proof)
	return nil
}

// readSigner reads a PEM private key: PKCS #8, SEC 1 (EC) or PKCS #1 (RSA).
func readSigner(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dpop-proof: %w", err)
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("dpop-proof: %s holds no PEM private key", path)
		}
		if key := parsePrivateKey(block); key != nil {
			return key, nil
		}
	}
}

func parsePrivateKey(block *pem.Block) crypto.Signer {
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil
		}
		switch k := k.(type) {
		case *ecdsa.PrivateKey:
			return k
		case *rsa.PrivateKey:
			return k
		case ed25519.PrivateKey:
			return k
		}
	case "EC PRIVATE KEY":
		if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
			return k
		}
	case "RSA PRIVATE KEY":
		if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
			return k
		}
	}
	return nil
}

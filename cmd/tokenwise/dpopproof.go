package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tokenwise/tokenwise/authz/pop"
)

const dpopProofUsage = `Usage: tokenwise dpop-proof --key FILE --url URL [--method GET] [--token T] [--nonce N]
       tokenwise dpop-proof --key FILE --jkt

Prints a DPoP proof (RFC 9449) for one request, signed with the private key
in FILE (PEM: EC P-256/P-384/P-521, RSA or Ed25519). Send it in the DPoP
header, with the token as "Authorization: DPoP <token>". --jkt prints the
key's thumbprint instead: the cnf.jkt of tokens bound to it (tokenwise dev
mints one with /dev/token?jkt=...).

Flags:
`

// runDPoPProof is `tokenwise dpop-proof`, printing to standard output.
func runDPoPProof(args []string) error {
	return dpopProof(args, os.Stdout)
}

// dpopProof prints a DPoP proof, or the key's thumbprint with --jkt.
func dpopProof(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("dpop-proof", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	keyFile := fs.String("key", "", "PEM private key file (required)")
	method := fs.String("method", "GET", "the request's HTTP method (htm)")
	url := fs.String("url", "", "the request's URL (htu; query and fragment are dropped)")
	token := fs.String("token", "", "the access token the proof goes with (ath)")
	nonce := fs.String("nonce", "", "the server's nonce, from a DPoP-Nonce header")
	jkt := fs.Bool("jkt", false, "print the key's RFC 7638 thumbprint instead of a proof")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, dpopProofUsage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("dpop-proof: unexpected argument %q", fs.Arg(0))
	}
	if *keyFile == "" {
		return errors.New("dpop-proof: --key FILE is required")
	}
	key, err := readSigner(*keyFile)
	if err != nil {
		return err
	}
	if *jkt {
		thumb, err := pop.Thumbprint(key.Public())
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, thumb)
		return nil
	}
	if *url == "" {
		return errors.New("dpop-proof: --url URL is required")
	}
	proof, err := pop.Sign(key, pop.ProofParams{Method: *method, URL: *url, Token: *token, Nonce: *nonce})
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

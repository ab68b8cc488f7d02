package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	tokenwisev1 "github.com/tokenwise/tokenwise/proto/tokenwise/v1"
)

// adminFlags are the connection flags every admin command takes.
type adminFlags struct {
	server, token, caFile, certFile, keyFile string
	timeout                                  time.Duration
}

func (f *adminFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.server, "server", "127.0.0.1:9191", "tokenwise gRPC address")
	fs.StringVar(&f.token, "token", "", "admin token (default $TOKENWISE_ADMIN_TOKEN)")
	fs.StringVar(&f.caFile, "ca-file", "", "trust this CA for the server's certificate (turns on TLS)")
	fs.StringVar(&f.certFile, "cert-file", "", "client certificate for mTLS, with --key-file (turns on TLS)")
	fs.StringVar(&f.keyFile, "key-file", "", "client key for mTLS")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "per call")
}

// adminAction is what one admin subcommand does once connected.
type adminAction func(context.Context, tokenwisev1.TokenAdminClient, io.Writer) error

// adminSubcommand describes one admin subcommand; flags registers its own
// flags and returns what it does with them.
type adminSubcommand struct {
	use, short string
	flags      func(fs *pflag.FlagSet) adminAction
}

var adminSubcommands = []adminSubcommand{
	{"revoke-token --issuer NAME --jti JTI [--until RFC3339]", "Revoke one token", revokeTokenCmd},
	{"revoke-subject --issuer NAME --subject SUB [--before RFC3339] [--until RFC3339]", "Revoke a subject's tokens issued before a time (default: now)", revokeSubjectCmd},
	{"uses --issuer NAME --jti JTI", "Show a token's use count and limit", usesCmd},
	{"list [--issuer NAME]", "List the active revocations", listCmd},
	{"unrevoke --id ID", "Remove a revocation", unrevokeCmd},
}

// newAdminCmd is `tokenwise admin SUBCOMMAND ...`.
func newAdminCmd() *cobra.Command {
	var conn adminFlags
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Revoke tokens and read use counts on a running server",
		Long: `Talk to a running tokenwise's TokenAdmin API (tokenwise.v1) over gRPC.

The server's admin API is off unless admin.token or admin.client_ca_file is
set. The token comes from --token or $TOKENWISE_ADMIN_TOKEN. Without
--ca-file or --cert-file the connection is plaintext.`,
		Example: `  TOKENWISE_ADMIN_TOKEN=... tokenwise admin revoke-token --issuer corp --jti 4f1c...
  tokenwise admin revoke-subject --issuer corp --subject alice
  tokenwise admin list --server 127.0.0.1:9191`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_ = cmd.Help()
			return errors.New("admin: a subcommand is required")
		},
	}
	conn.register(cmd.PersistentFlags())
	for _, sub := range adminSubcommands {
		cmd.AddCommand(newAdminSubcommand(sub, &conn))
	}
	return cmd
}

func newAdminSubcommand(sub adminSubcommand, conn *adminFlags) *cobra.Command {
	cmd := &cobra.Command{Use: sub.use, Short: sub.short, Long: sub.short + ".", Args: cobra.NoArgs}
	do := sub.flags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		client, closeConn, err := conn.dial()
		if err != nil {
			return err
		}
		defer closeConn()
		ctx, cancel := context.WithTimeout(conn.outgoing(cmd.Context()), conn.timeout)
		defer cancel()
		return do(ctx, client, cmd.OutOrStdout())
	}
	return cmd
}

// dial connects to --server, over TLS when a CA or client certificate is given.
func (f *adminFlags) dial() (tokenwisev1.TokenAdminClient, func(), error) {
	creds := insecure.NewCredentials()
	if f.caFile != "" || f.certFile != "" {
		tc, err := f.tlsConfig()
		if err != nil {
			return nil, nil, err
		}
		creds = credentials.NewTLS(tc)
	}
	conn, err := grpc.NewClient(f.server, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, nil, fmt.Errorf("admin: --server %s: %w", f.server, err)
	}
	return tokenwisev1.NewTokenAdminClient(conn), func() { conn.Close() }, nil
}

func (f *adminFlags) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, fmt.Errorf("admin: --ca-file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("admin: --ca-file %s: no PEM certificates", f.caFile)
		}
	}
	if (f.certFile == "") != (f.keyFile == "") {
		return nil, errors.New("admin: --cert-file and --key-file go together")
	}
	if f.certFile != "" {
		cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
		if err != nil {
			return nil, fmt.Errorf("admin: client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// outgoing adds the admin token, from --token or the environment, as
// authorization metadata.
func (f *adminFlags) outgoing(ctx context.Context) context.Context {
	token := f.token
	if token == "" {
		token = os.Getenv("TOKENWISE_ADMIN_TOKEN")
	}
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// timeFlag is an optional RFC 3339 time flag.
type timeFlag struct{ t *time.Time }

func (f timeFlag) String() string {
	if f.t == nil || f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339)
}

// Type names the value in --help.
func (f timeFlag) Type() string { return "RFC3339" }

func (f timeFlag) Set(s string) error {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return fmt.Errorf("want an RFC 3339 time such as 2025-01-02T15:04:05Z")
	}
	*f.t = t
	return nil
}

// timestamp is t as a protobuf Timestamp, nil when unset (the server's default).
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func required(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			return fmt.Errorf("admin: --%s is required", pairs[i])
		}
	}
	return nil
}

func revokeTokenCmd(fs *pflag.FlagSet) adminAction {
	var issuer, jti string
	var until time.Time
	fs.StringVar(&issuer, "issuer", "", "issuer name (issuers[].name)")
	fs.StringVar(&jti, "jti", "", "the token's jti")
	fs.Var(timeFlag{&until}, "until", "when the revocation lapses (RFC 3339; default: the issuer's longest token life)")
	return func(ctx context.Context, c tokenwisev1.TokenAdminClient, w io.Writer) error {
		if err := required("issuer", issuer, "jti", jti); err != nil {
			return err
		}
		resp, err := c.RevokeToken(ctx, &tokenwisev1.RevokeTokenRequest{Issuer: issuer, Jti: jti, Until: timestamp(until)})
		if err != nil {
			return fmt.Errorf("admin revoke-token: %w", err)
		}
		fmt.Fprintf(w, "revoked %s until %s\n", resp.GetRevocation().GetId(), formatTime(resp.GetRevocation().GetUntil()))
		return nil
	}
}

func revokeSubjectCmd(fs *pflag.FlagSet) adminAction {
	var issuer, subject string
	var before, until time.Time
	fs.StringVar(&issuer, "issuer", "", "issuer name (issuers[].name)")
	fs.StringVar(&subject, "subject", "", "the tokens' sub")
	fs.Var(timeFlag{&before}, "before", "revoke tokens issued before this time (RFC 3339; default: now)")
	fs.Var(timeFlag{&until}, "until", "when the revocation lapses (RFC 3339; default: the issuer's longest token life after --before)")
	return func(ctx context.Context, c tokenwisev1.TokenAdminClient, w io.Writer) error {
		if err := required("issuer", issuer, "subject", subject); err != nil {
			return err
		}
		resp, err := c.RevokeSubject(ctx, &tokenwisev1.RevokeSubjectRequest{Issuer: issuer, Subject: subject,
			IssuedBefore: timestamp(before), Until: timestamp(until)})
		if err != nil {
			return fmt.Errorf("admin revoke-subject: %w", err)
		}
		r := resp.GetRevocation()
		fmt.Fprintf(w, "revoked %s: tokens issued before %s, until %s\n", r.GetId(), formatTime(r.GetIssuedBefore()), formatTime(r.GetUntil()))
		return nil
	}
}

func usesCmd(fs *pflag.FlagSet) adminAction {
	var issuer, jti string
	fs.StringVar(&issuer, "issuer", "", "issuer name (issuers[].name)")
	fs.StringVar(&jti, "jti", "", "the token's jti")
	return func(ctx context.Context, c tokenwisev1.TokenAdminClient, w io.Writer) error {
		if err := required("issuer", issuer, "jti", jti); err != nil {
			return err
		}
		resp, err := c.GetTokenUses(ctx, &tokenwisev1.GetTokenUsesRequest{Issuer: issuer, Jti: jti})
		if err != nil {
			return fmt.Errorf("admin uses: %w", err)
		}
		limit := "unknown (the policy decides it per request)"
		if resp.Limit != nil {
			limit = fmt.Sprint(resp.GetLimit())
		}
		fmt.Fprintf(w, "uses: %d\nlimit: %s\n", resp.GetUses(), limit)
		if r := resp.GetRevocation(); r != nil {
			fmt.Fprintf(w, "revoked until %s\n", formatTime(r.GetUntil()))
		}
		return nil
	}
}

func listCmd(fs *pflag.FlagSet) adminAction {
	var issuer string
	fs.StringVar(&issuer, "issuer", "", "only this issuer's revocations")
	return func(ctx context.Context, c tokenwisev1.TokenAdminClient, w io.Writer) error {
		resp, err := c.ListRevocations(ctx, &tokenwisev1.ListRevocationsRequest{Issuer: issuer})
		if err != nil {
			return fmt.Errorf("admin list: %w", err)
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tISSUED BEFORE\tUNTIL")
		for _, r := range resp.GetRevocations() {
			before := "-"
			if r.GetKind() == tokenwisev1.Revocation_KIND_SUBJECT {
				before = formatTime(r.GetIssuedBefore())
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.GetId(), before, formatTime(r.GetUntil()))
		}
		return tw.Flush()
	}
}

func unrevokeCmd(fs *pflag.FlagSet) adminAction {
	var id string
	fs.StringVar(&id, "id", "", "revocation id, as admin list shows it")
	return func(ctx context.Context, c tokenwisev1.TokenAdminClient, w io.Writer) error {
		if err := required("id", id); err != nil {
			return err
		}
		if _, err := c.RemoveRevocation(ctx, &tokenwisev1.RemoveRevocationRequest{Id: id}); err != nil {
			return fmt.Errorf("admin unrevoke: %w", err)
		}
		fmt.Fprintf(w, "removed %s\n", strings.TrimSpace(id))
		return nil
	}
}

func formatTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
}

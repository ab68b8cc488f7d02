package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/server"
)

func newServeCmd() *cobra.Command {
	var o overrides
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the service",
		Long: `Run the service: the gRPC listener (ext_authz v3, gRPC health, tokenwise's
own API) and the HTTP operations listener (/healthz, /readyz, /metrics).

The flags override the file. Any fault at start (bad file, unknown key,
unreadable policy, port taken) ends the process with a non-zero status and
one line naming the cause. SIGTERM or SIGINT lets Checks in flight finish.`,
		Example: `  tokenwise serve --config tokenwise.yaml
  tokenwise serve --config tokenwise.yaml --grpc-address 0.0.0.0:9191 --log-level debug`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(&o)
			if err != nil {
				return err
			}
			logger := newLogger(cmd.ErrOrStderr(), cfg.Log.Level, cfg.Log.Format)
			logWarnings(logger, cfg)
			return runServer(cmd.Context(), cfg, server.Options{Logger: logger}, nil)
		},
	}
	o.register(cmd.Flags(), true)
	return cmd
}

// runServer builds, binds and runs a server until ctx ends. started, when
// set, runs once both listeners are bound.
func runServer(ctx context.Context, cfg *config.Config, opts server.Options, started func(*server.Server)) error {
	s, err := server.New(ctx, cfg, opts)
	if err != nil {
		return err
	}
	if err := s.Listen(); err != nil {
		s.Close()
		return err
	}
	opts.Logger.Info("tokenwise listening", "grpc", s.GRPCAddr(), "http", s.HTTPAddr())
	if started != nil {
		started(s)
	}
	err = s.Serve(ctx)
	opts.Logger.Info("tokenwise stopped")
	return err
}

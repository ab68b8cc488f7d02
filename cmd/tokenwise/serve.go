package main

import (
	"context"
	"io"

	"github.com/tokenwise/tokenwise/authz/config"
	"github.com/tokenwise/tokenwise/authz/server"
)

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	var o overrides
	if err := parse(newFlags("serve", &o, true), args); err != nil {
		return err
	}
	cfg, err := loadConfig(&o)
	if err != nil {
		return err
	}
	return runServer(ctx, cfg, server.Options{Logger: newLogger(stderr, cfg.Log.Level)}, nil)
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

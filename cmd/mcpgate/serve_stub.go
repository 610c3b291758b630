//go:build !mcpgate_gateway

package main

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/mcpgate/mcpgate/gateway/config"
)

// runGateway is replaced by serve.go once package gateway builds (build
// with -tags mcpgate_gateway until then).
func runGateway(ctx context.Context, cfg *config.Config, logger *slog.Logger, out io.Writer) error {
	return errors.New("serve: this binary was built without the gateway")
}

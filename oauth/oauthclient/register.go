package oauthclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/oauth/meta"
)

// Register performs OAuth 2.0 Dynamic Client Registration (RFC 7591) at
// endpoint with md and returns the issued client information. OAuth error
// responses come back as *meta.Error.
func Register(ctx context.Context, hc *http.Client, endpoint string, md *meta.ClientMetadata) (*meta.ClientInformation, error) {
	if md == nil {
		return nil, errors.New("oauthclient: register: nil client metadata")
	}
	body, err := json.Marshal(md)
	if err != nil {
		return nil, fmt.Errorf("oauthclient: register: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("oauthclient: register: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	return doJSON(hc, req, meta.ParseClientInformation, nil)
}

// ClientMetadataHandler returns an http.Handler serving md as a Client ID
// Metadata Document, for hosting the client's own document at the URL used
// as its client_id. md must pass ValidateClientIDMetadataDocument for its
// own ClientID (https URL with a path, client_name and redirect_uris, no
// shared-secret auth method). The handler answers GET and HEAD with
// application/json and a one-hour Cache-Control.
func ClientMetadataHandler(md *meta.ClientMetadata) (http.Handler, error) {
	if md == nil {
		return nil, errors.New("oauthclient: nil client metadata")
	}
	if err := md.ValidateClientIDMetadataDocument(md.ClientID); err != nil {
		return nil, err
	}
	body, err := json.Marshal(md)
	if err != nil {
		return nil, fmt.Errorf("oauthclient: client metadata: %w", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.Method == http.MethodHead {
			return
		}
		w.Write(body)
	}), nil
}

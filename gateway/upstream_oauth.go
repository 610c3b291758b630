package gateway

import (
	"context"
	"fmt"
	"net/http"
)

// oauthHTTPClient returns the HTTP client for an upstream whose credentials
// are OAuth: the gateway's own client credentials, or the principal's own
// consent ("oauth_user").
func (u *upstream) oauthHTTPClient(ctx context.Context, base *http.Client, principal string) (*http.Client, error) {
	return nil, fmt.Errorf("upstream %s: credentials type %q is not implemented yet", u.cfg.Name, u.cfg.Credentials.Type)
}

package oauthclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/safehttp"
)

// ErrNoRevocationEndpoint is returned by Revoke when the authorization
// server's metadata names no revocation_endpoint: the grant cannot be
// revoked there.
var ErrNoRevocationEndpoint = errors.New("oauthclient: the authorization server offers no revocation endpoint (RFC 7009)")

// Revoke revokes tok at as's revocation endpoint (RFC 7009), with client
// authentication as for the token endpoint: the refresh token first
// (which, by RFC 7009 §2.1, revokes the grant's access tokens as well at
// servers that support it), then the access token. It returns
// ErrNoRevocationEndpoint when as names no revocation endpoint, and the
// server's error for a refusal (an unknown or already revoked token is
// answered 200, which is success).
func Revoke(ctx context.Context, hc *http.Client, client *ClientAuth, tok *Token, as *meta.AuthorizationServerMetadata) error {
	if tok == nil || (tok.AccessToken == "" && tok.RefreshToken == "") {
		return errors.New("oauthclient: revoke: no token")
	}
	if as == nil || as.RevocationEndpoint == "" {
		return ErrNoRevocationEndpoint
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	if client == nil {
		client = &ClientAuth{ClientID: tok.ClientID}
	}
	var errs []error
	for _, t := range []struct{ value, hint string }{{tok.RefreshToken, "refresh_token"}, {tok.AccessToken, "access_token"}} {
		if t.value == "" {
			continue
		}
		if err := revokeOne(ctx, hc, client, as, t.value, t.hint); err != nil {
			errs = append(errs, fmt.Errorf("revoking the %s: %w", strings.ReplaceAll(t.hint, "_", " "), err))
		}
	}
	return errors.Join(errs...)
}

func revokeOne(ctx context.Context, hc *http.Client, client *ClientAuth, as *meta.AuthorizationServerMetadata, token, hint string) error {
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	h := http.Header{}
	if err := client.apply(form, h, as, time.Now()); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, as.RevocationEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("oauthclient: revocation request: %w", err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("oauthclient: POST %s: %w", redactURL(req.URL), err)
	}
	body, rerr := safehttp.ReadBody(resp, maxMetadataBytes)
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	if rerr == nil {
		if oe, err := meta.ParseError(body, resp.StatusCode); err == nil {
			return oe
		}
	}
	return fmt.Errorf("oauthclient: POST %s: HTTP %d", redactURL(req.URL), resp.StatusCode)
}

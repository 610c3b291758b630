package oauthclient

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/mcpgate/mcpgate/oauth/meta"
)

// Transport is an http.RoundTripper for an MCP client. For requests to the
// configured MCP server it adds "Authorization: Bearer <token>"; on 401 it
// runs discovery and authorization (or refreshes) and replays the request
// once; on 403 insufficient_scope it steps up, at most Config.MaxStepUps
// times per request. Requests for other URLs pass through untouched, so a
// token never reaches another resource, even through redirects.
type Transport struct {
	base http.RoundTripper
	auth *Authorizer
}

// NewTransport returns a Transport sending requests through base
// (http.DefaultTransport if nil) and authorizing them according to cfg.
func NewTransport(base http.RoundTripper, cfg *Config) (*Transport, error) {
	a, err := NewAuthorizer(cfg)
	if err != nil {
		return nil, err
	}
	return NewTransportWithAuthorizer(base, a), nil
}

// NewTransportWithAuthorizer is like NewTransport with an existing
// Authorizer (for example one shared with other code).
func NewTransportWithAuthorizer(base http.RoundTripper, a *Authorizer) *Transport {
	if base == nil {
		base = http.DefaultTransport
	}
	return &Transport{base: base, auth: a}
}

// Authorizer returns the Authorizer behind t.
func (t *Transport) Authorizer() *Authorizer { return t.auth }

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !ResourceMatches(t.auth.cfg.ServerURL, req.URL.String()) {
		return t.base.RoundTrip(req)
	}
	ctx := req.Context()
	getBody, oneShot, err := t.replayableBody(req)
	if err != nil {
		return nil, err
	}
	canReplay := oneShot == nil
	tok, err := t.auth.Token(ctx)
	if err != nil {
		return nil, err
	}
	reauthorized := false
	stepUps := 0
	nonceRetries := 0
	dpop := t.auth.dpop
	for {
		r2 := req.Clone(ctx)
		switch {
		case getBody != nil:
			if r2.Body, err = getBody(); err != nil {
				return nil, err
			}
			r2.GetBody = getBody
		case oneShot != nil:
			r2.Body, r2.GetBody = oneShot, nil
		}
		if tok != nil && ResourceMatches(tok.Resource, req.URL.String()) {
			if tok.TokenType == meta.TokenTypeDPoP && dpop != nil {
				proof, err := dpop.Proof(req.Method, req.URL.String(), tok.AccessToken)
				if err != nil {
					return nil, err
				}
				r2.Header.Set("Authorization", "DPoP "+tok.AccessToken)
				r2.Header.Set("DPoP", proof)
			} else {
				r2.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			}
		}
		resp, err := t.base.RoundTrip(r2)
		if err != nil {
			return nil, err
		}
		freshNonce := dpop.observe(req.URL.String(), resp.Header)
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			if !canReplay {
				return resp, nil
			}
			ch, _ := meta.ParseBearerChallenge(resp.Header) // unparseable: discover without hints
			if dch, _ := meta.ParseSchemeChallenge(resp.Header, "DPoP"); dch != nil {
				if dch.Error == meta.ErrUseDPoPNonce && freshNonce && tok != nil && tok.TokenType == meta.TokenTypeDPoP && nonceRetries < 2 {
					nonceRetries++ // RFC 9449 §9: retry with the server's nonce
					discard(resp)
					continue
				}
				if ch == nil {
					ch = dch
				}
			}
			if reauthorized {
				return resp, nil
			}
			discard(resp)
			nt, err := t.auth.HandleUnauthorized(ctx, ch, tok)
			if err != nil {
				return nil, fmt.Errorf("oauthclient: authorization for %s failed: %w", redactURL(req.URL), err)
			}
			tok, reauthorized = nt, true
		case http.StatusForbidden:
			ch, perr := meta.ParseBearerChallenge(resp.Header)
			if ch == nil && perr == nil {
				ch, perr = meta.ParseSchemeChallenge(resp.Header, "DPoP")
			}
			if perr != nil || ch == nil || ch.Error != meta.ErrInsufficientScope || !canReplay || tok == nil {
				return resp, nil
			}
			if stepUps >= t.auth.cfg.MaxStepUps {
				return resp, nil
			}
			nt, err := t.auth.HandleInsufficientScope(ctx, ch, tok)
			if errors.Is(err, ErrStepUpLimit) {
				return resp, nil
			}
			discard(resp)
			if err != nil {
				return nil, fmt.Errorf("oauthclient: step-up authorization for %s failed: %w", redactURL(req.URL), err)
			}
			tok = nt
			stepUps++
		default:
			return resp, nil
		}
	}
}

func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// replayableBody returns a function producing fresh copies of req's body
// (nil if there is no body), or, for a body too large to buffer, a
// one-shot reader that sends it once without replay.
func (t *Transport) replayableBody(req *http.Request) (getBody func() (io.ReadCloser, error), oneShot io.ReadCloser, err error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil, nil
	}
	if req.GetBody != nil {
		req.Body.Close()
		return req.GetBody, nil, nil
	}
	max := t.auth.cfg.MaxReplayBodyBytes
	buf, err := io.ReadAll(io.LimitReader(req.Body, max+1))
	if err != nil {
		req.Body.Close()
		return nil, nil, fmt.Errorf("oauthclient: reading request body: %w", err)
	}
	if int64(len(buf)) > max {
		return nil, struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), req.Body), req.Body}, nil
	}
	req.Body.Close()
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }, nil, nil
}

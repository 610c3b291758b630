package upstreamauth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/oauthclient"
)

// authFlow is one pending authorization of one principal at one
// upstream, from the elicitation to the callback.
type authFlow struct {
	id        string
	principal string
	up        Upstream
	expires   time.Time

	// Set when the connect page starts the flow.
	nonce   string // the browser-binding cookie value
	started bool
	ready   chan struct{} // closed once authURL (or err) is known
	authURL string
	state   string
	err     error
	resp    chan *oauthclient.AuthorizationResponse
	done    chan struct{} // closed when the flow has ended
	result  error
}

// ElicitationRequired returns the URLElicitationRequiredError (a
// *jsonrpc.Error with code -32042) that asks the principal to authorize
// the gateway at the per-user upstream up, reusing the principal's
// pending elicitation for it if it has enough time left. It first makes
// sure that the upstream's authorization server and the gateway's client
// identity there are known, so that a misconfiguration is reported as
// such rather than as an elicitation that cannot succeed.
func (s *Service) ElicitationRequired(ctx context.Context, up Upstream, principal string) error {
	up = s.described(up)
	if s.tokens == nil {
		return fmt.Errorf("upstream %s: per-user authorization is not set up", up.Name)
	}
	if s.base == "" {
		return fmt.Errorf("upstream %s: per-user authorization needs the gateway's public_url", up.Name)
	}
	d, err := s.discovery(ctx, up)
	if err != nil {
		return err
	}
	if _, err := s.userClient(ctx, up, d); err != nil {
		return fmt.Errorf("upstream %s: %w", up.Name, err)
	}
	now := time.Now()
	key := [2]string{principal, up.Name}
	s.mu.Lock()
	s.expireLocked(now)
	f := s.pending[key]
	if f == nil || f.expires.Sub(now) < minElicitationLeft {
		f = &authFlow{id: meta.RandomToken(18), principal: principal, up: up, expires: now.Add(elicitationTTL)}
		s.flows[f.id] = f
		s.pending[key] = f
	}
	s.mu.Unlock()
	return s.elicitationError(f)
}

func (s *Service) connectURL(f *authFlow) string { return s.base + "/" + f.id }

func (s *Service) callbackURL() string { return s.base + "/callback" }

func (s *Service) elicitationError(f *authFlow) *jsonrpc.Error {
	name := f.up.Name
	data, err := json.Marshal(&mcp.URLElicitationRequiredErrorData{Elicitations: []*mcp.ElicitParams{{
		Mode:          mcp.ElicitationModeURL,
		ElicitationID: f.id,
		URL:           s.connectURL(f),
		Message:       fmt.Sprintf("Authorize mcpgate to use %s on your behalf.", name),
	}}})
	if err != nil { // cannot happen: plain strings
		return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: err.Error()}
	}
	return &jsonrpc.Error{Code: jsonrpc.CodeURLElicitationRequired, Message: fmt.Sprintf("upstream %s needs your authorization", name), Data: data}
}

// Elicitations returns the elicitations of a URLElicitationRequiredError
// in err's chain, or nil.
func Elicitations(err error) []*mcp.ElicitParams {
	var je *jsonrpc.Error
	if !errors.As(err, &je) || je.Code != jsonrpc.CodeURLElicitationRequired {
		return nil
	}
	var data mcp.URLElicitationRequiredErrorData
	if json.Unmarshal(je.Data, &data) != nil {
		return nil
	}
	return data.Elicitations
}

// expireLocked forgets flows past their expiry. s.mu is held.
func (s *Service) expireLocked(now time.Time) {
	for id, f := range s.flows {
		if now.After(f.expires) {
			s.removeLocked(f)
			delete(s.flows, id)
		}
	}
}

// removeLocked makes f unreachable. s.mu is held.
func (s *Service) removeLocked(f *authFlow) {
	delete(s.flows, f.id)
	if f.state != "" && s.byState[f.state] == f {
		delete(s.byState, f.state)
	}
	key := [2]string{f.principal, f.up.Name}
	if s.pending[key] == f {
		delete(s.pending, key)
	}
}

// userClient returns the gateway's client identity at the upstream's
// authorization server: the configured client_id, else its Client ID
// Metadata Document (https public URLs only), else a dynamically
// registered public client.
func (s *Service) userClient(ctx context.Context, up Upstream, d *oauthclient.Discovery) (*oauthclient.ClientAuth, error) {
	c, err := configuredClient(up)
	if c != nil || err != nil {
		return c, err
	}
	s.mu.Lock()
	c = s.clients[up.Name]
	s.mu.Unlock()
	if c != nil {
		return c, nil
	}
	as := d.AuthorizationServer
	switch {
	case as.ClientIDMetadataDocumentSupported && s.cimdURL() != "":
		c = &oauthclient.ClientAuth{ClientID: s.cimdURL(), Method: meta.AuthMethodNone}
	case as.RegistrationEndpoint != "":
		method := meta.AuthMethodNone
		if m := as.TokenEndpointAuthMethodsSupported; m != nil && !as.SupportsAuthMethod(meta.AuthMethodNone) {
			method = meta.AuthMethodClientSecretBasic
		}
		info, err := oauthclient.Register(ctx, s.asClient(up), as.RegistrationEndpoint, s.clientMetadata(method))
		if err != nil {
			return nil, fmt.Errorf("dynamic client registration: %w", err)
		}
		c = &oauthclient.ClientAuth{ClientID: info.ClientID, Method: method}
		if info.TokenEndpointAuthMethod != "" {
			c.Method = info.TokenEndpointAuthMethod
		}
		if c.Method != meta.AuthMethodNone {
			c.ClientSecret = info.ClientSecret
		}
	default:
		return nil, oauthclient.ErrNoClientIdentity
	}
	s.mu.Lock()
	if prev := s.clients[up.Name]; prev != nil {
		c = prev // registered concurrently: keep one
	} else {
		s.clients[up.Name] = c
	}
	s.mu.Unlock()
	return c, nil
}

func (s *Service) clientMetadata(method string) *meta.ClientMetadata {
	return &meta.ClientMetadata{
		ClientName:              "mcpgate",
		RedirectURIs:            []string{s.callbackURL()},
		GrantTypes:              []string{meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken},
		ResponseTypes:           []string{meta.ResponseTypeCode},
		TokenEndpointAuthMethod: method,
		ApplicationType:         "web",
	}
}

// cimdURL is the URL of the gateway's Client ID Metadata Document, or ""
// when the gateway is not served over https (such documents must be).
func (s *Service) cimdURL() string {
	if !strings.HasPrefix(s.base, "https://") {
		return ""
	}
	return s.base + "/client-metadata.json"
}

// run carries a flow from the connect page to the callback: it sends the
// user agent to the authorization endpoint (through the connect page) and
// exchanges the code that comes back.
func (s *Service) run(f *authFlow) {
	ctx, cancel := context.WithDeadline(context.Background(), f.expires)
	defer cancel()
	go func() {
		select {
		case <-s.done: // a nil channel never fires
			cancel()
		case <-ctx.Done():
		}
	}()
	var readyOnce sync.Once
	markReady := func(err error) {
		readyOnce.Do(func() {
			s.mu.Lock()
			f.err = err
			s.mu.Unlock()
			close(f.ready)
		})
	}
	up := f.up
	tk, err := func() (*oauthclient.Token, error) {
		d, err := s.discovery(ctx, up)
		if err != nil {
			return nil, err
		}
		client, err := s.userClient(ctx, up, d)
		if err != nil {
			return nil, err
		}
		return oauthclient.Authorize(ctx, s.asClient(up), d, &oauthclient.AuthorizeParams{
			Client:      client,
			RedirectURL: s.callbackURL(),
			Scope:       scope(up, d),
			Handler: oauthclient.AuthorizationCodeHandlerFunc(func(ctx context.Context, req *oauthclient.AuthorizationRequest) (*oauthclient.AuthorizationResponse, error) {
				s.mu.Lock()
				f.authURL, f.state = req.URL, req.State
				if s.flows[f.id] == f {
					s.byState[req.State] = f
				}
				s.mu.Unlock()
				markReady(nil)
				select {
				case r := <-f.resp:
					return r, nil
				case <-ctx.Done():
					return nil, fmt.Errorf("no answer from the authorization server: %w", ctx.Err())
				}
			}),
		})
	}()
	if err == nil {
		err = s.saveToken(ctx, up, f.principal, tk)
	}
	markReady(err)
	s.mu.Lock()
	f.result = err
	s.removeLocked(f)
	s.mu.Unlock()
	close(f.done)
	if err != nil {
		up.Logger.Info("per-user authorization failed", "principal", f.principal, "error", err)
		return
	}
	up.Logger.Info("per-user authorization complete", "principal", f.principal)
	if s.hooks.OnAuthorized != nil {
		s.hooks.OnAuthorized(f.principal, up, f.id)
	}
}

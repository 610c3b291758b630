package authserver

import (
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/store"
)

// ClientKeys is a key set a client can sign with, as the server verified
// a client assertion against it or re-fetched it (Options.OnClientKeys).
type ClientKeys struct {
	// ClientID is the client; Kind its registration path (store.Client.Kind).
	ClientID, Kind string
	// JWKSURI is where the keys were fetched from; "" for the keys
	// registered with the client (inline jwks, pre-registered keys).
	JWKSURI string
	// JWKS is the key set as registered or fetched (a JSON JWK Set).
	JWKS []byte
	// Used is the RFC 7638 SHA-256 thumbprint (base64url) of the key that
	// verified the client assertion; "" for a re-check (RecheckClient).
	Used string
}

// jwksRefetchAfter is how old a cached jwks_uri key set must be before an
// assertion signed with a key not in it makes the server fetch it again
// (a client that rotated its keys); it bounds the fetches a stream of
// assertions with unknown keys can cause.
const jwksRefetchAfter = 10 * time.Second

// maxRemoteKeySets bounds the jwks_uri key sets kept in memory.
const maxRemoteKeySets = 1000

// remoteKeys is a key set fetched from a jwks_uri.
type remoteKeys struct {
	body             []byte
	keys             []jose.JSONWebKey
	fetched, expires time.Time
}

// remoteKeySet returns the key set behind uri, from the cache while it is
// fresh (Cache-Control, bounded by MinCache and MaxCache) unless force,
// otherwise fetched with the SSRF-safe client used for metadata documents
// (no redirects, FetchTimeout, JWKSMaxBytes). Fetch errors are never
// cached.
func (s *Server) remoteKeySet(ctx context.Context, uri string, force bool) (*remoteKeys, error) {
	now := s.now()
	s.jwksMu.Lock()
	rk := s.jwksURI[uri]
	s.jwksMu.Unlock()
	if rk != nil && !force && rk.expires.After(now) {
		return rk, nil
	}
	p := &s.opts.MetadataDocuments
	body, ttl, err := s.fetchJSON(ctx, "jwks_uri key set", uri, p.JWKSMaxBytes)
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, errInvalidClient("jwks_uri key set is not a valid JWK Set: %v", err)
	}
	rk = &remoteKeys{body: body, keys: set.Keys, fetched: now, expires: now.Add(ttl)}
	s.jwksMu.Lock()
	if len(s.jwksURI) >= maxRemoteKeySets {
		for k, v := range s.jwksURI {
			if !v.expires.After(now) || len(s.jwksURI) >= maxRemoteKeySets {
				delete(s.jwksURI, k)
			}
		}
	}
	s.jwksURI[uri] = rk
	s.jwksMu.Unlock()
	return rk, nil
}

// errNoKey is verifyWithKeys' error when no key verifies the signature.
var errNoKey = errors.New("no registered key verifies the signature")

// verifyWithKeys checks a JWS against a key set and returns the RFC 7638
// thumbprint of the key that verified it. A kid in the header selects the
// keys with that kid; keys for another use or another algorithm are
// skipped.
func verifyWithKeys(jws *jose.JSONWebSignature, keys []jose.JSONWebKey) (string, error) {
	h := jws.Signatures[0].Header
	for _, k := range keys {
		if h.KeyID != "" && k.KeyID != h.KeyID {
			continue
		}
		if !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") || (k.Algorithm != "" && k.Algorithm != h.Algorithm) {
			continue
		}
		if _, err := jws.Verify(k.Key); err != nil {
			continue
		}
		tp, err := k.Thumbprint(crypto.SHA256)
		if err != nil {
			return "", fmt.Errorf("key thumbprint: %w", err)
		}
		return base64.RawURLEncoding.EncodeToString(tp), nil
	}
	return "", errNoKey
}

// verifyClientAssertionKey verifies a client assertion's signature with
// the client's registered keys (inline jwks) or the keys behind its
// jwks_uri. A jwks_uri set that has no key verifying the assertion is
// fetched again if it is older than jwksRefetchAfter (key rotation). It
// returns the key set used and the thumbprint of the verifying key.
func (s *Server) verifyClientAssertionKey(ctx context.Context, c *store.Client, jws *jose.JSONWebSignature) (ClientKeys, error) {
	k := ClientKeys{ClientID: c.ID, Kind: c.Kind}
	switch {
	case c.JWKS != "":
		var set jose.JSONWebKeySet
		if err := json.Unmarshal([]byte(c.JWKS), &set); err != nil {
			return k, errInvalidClient("client %q keys: registered jwks: %v", c.ID, err)
		}
		tp, err := verifyWithKeys(jws, set.Keys)
		if err != nil {
			return k, errInvalidClient("client assertion signature is not valid")
		}
		k.JWKS, k.Used = []byte(c.JWKS), tp
		return k, nil
	case c.JWKSURI != "":
		rk, err := s.remoteKeySet(ctx, c.JWKSURI, false)
		if err != nil {
			return k, errInvalidClient("client %q keys: %s", c.ID, asOAuthError(err).Description)
		}
		tp, err := verifyWithKeys(jws, rk.keys)
		if err != nil && s.now().Sub(rk.fetched) >= jwksRefetchAfter {
			if rk, err = s.remoteKeySet(ctx, c.JWKSURI, true); err != nil {
				return k, errInvalidClient("client %q keys: %s", c.ID, asOAuthError(err).Description)
			}
			tp, err = verifyWithKeys(jws, rk.keys)
		}
		if err != nil {
			return k, errInvalidClient("client assertion signature is not valid")
		}
		k.JWKSURI, k.JWKS, k.Used = c.JWKSURI, rk.body, tp
		return k, nil
	}
	return k, errInvalidClient("client %q keys: no jwks or jwks_uri registered", c.ID)
}

// reportClientKeys tells Options.OnClientKeys of a key set; its error
// refuses the client.
func (s *Server) reportClientKeys(ctx context.Context, k ClientKeys) error {
	if s.opts.OnClientKeys == nil {
		return nil
	}
	if err := s.opts.OnClientKeys(ctx, k); err != nil {
		s.log.WarnContext(ctx, "oauth: client keys refused", "client_id", k.ClientID, "jwks_uri", k.JWKSURI, "key", k.Used, "err", err)
		return errInvalidClient("client %q: %v", k.ClientID, err)
	}
	return nil
}

// RecheckClient fetches a client's trust objects again, bypassing every
// cache, and reports them as a use would: the Client ID Metadata
// Document of a metadata-document client (Options.OnClientMetadata) and
// the keys behind its jwks_uri or its registered keys
// (Options.OnClientKeys). Gateways call it on a schedule for recently
// seen clients, so that a document or key swap is noticed even while the
// client does not come back. The error is the first refusal or fetch
// failure.
func (s *Server) RecheckClient(ctx context.Context, id string) error {
	var c *store.Client
	var err error
	if isMetadataDocumentID(id) {
		c, err = s.resolveMetadataDocument(ctx, id, true)
	} else {
		c, err = s.st.GetClient(ctx, id)
	}
	if err != nil {
		return err
	}
	switch {
	case c.JWKSURI != "":
		rk, err := s.remoteKeySet(ctx, c.JWKSURI, true)
		if err != nil {
			return err
		}
		return s.reportClientKeys(ctx, ClientKeys{ClientID: c.ID, Kind: c.Kind, JWKSURI: c.JWKSURI, JWKS: rk.body})
	case c.JWKS != "":
		return s.reportClientKeys(ctx, ClientKeys{ClientID: c.ID, Kind: c.Kind, JWKS: []byte(c.JWKS)})
	}
	return nil
}

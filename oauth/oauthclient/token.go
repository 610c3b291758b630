package oauthclient

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/oauth/meta"
)

// expirySkew is how long before its expiry a token is treated as expired.
const expirySkew = 30 * time.Second

// Token is an access token together with what it was issued for.
type Token struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	// Scope is the granted scope (the requested one if the server did not
	// say).
	Scope string `json:"scope,omitempty"`
	// Expiry is when the access token expires; zero means unknown.
	Expiry time.Time `json:"expiry,omitzero"`
	// Resource is the resource indicator the token was requested for.
	Resource string `json:"resource,omitempty"`
	// Issuer and TokenEndpoint identify the authorization server (used to
	// refresh).
	Issuer        string `json:"issuer,omitempty"`
	TokenEndpoint string `json:"token_endpoint,omitempty"`
	// ClientID is the client the token was issued to.
	ClientID string `json:"client_id,omitempty"`
	// Grant describes the ID-JAG the token was obtained with
	// (enterprise-managed authorization); nil for other grants.
	Grant *GrantInfo `json:"grant,omitempty"`
}

// GrantInfo is what the identity provider said when it vouched for a
// token's user with an ID-JAG: for inventories and audit, never for
// decisions (the claims are read from the ID-JAG without verifying it;
// the authorization server verifies it).
type GrantInfo struct {
	// IdP is the ID-JAG's issuer.
	IdP string `json:"idp,omitempty"`
	// JTI is the ID-JAG's jti.
	JTI string `json:"jti,omitempty"`
	// Scope is the scope the identity provider granted.
	Scope string `json:"scope,omitempty"`
}

// Expired reports whether the token is expired or expires within 30s of now.
func (t *Token) Expired(now time.Time) bool {
	return !t.Expiry.IsZero() && !now.Add(expirySkew).Before(t.Expiry)
}

// Scopes returns the token's scope split on spaces.
func (t *Token) Scopes() []string { return strings.Fields(t.Scope) }

// String describes the token without revealing its secrets.
func (t *Token) String() string {
	return fmt.Sprintf("Token{type=%s scope=%q resource=%s expiry=%s refresh=%t}", t.TokenType, t.Scope, t.Resource, t.Expiry.Format(time.RFC3339), t.RefreshToken != "")
}

// tokenFromResponse converts a token response. Only Bearer tokens are
// accepted, and DPoP-bound ones when the request carried a DPoP proof.
func tokenFromResponse(tr *meta.TokenResponse, now time.Time, requestedScope, resource, issuer, tokenEndpoint string, client *ClientAuth) (*Token, error) {
	typ := meta.TokenTypeBearer
	switch {
	case strings.EqualFold(tr.TokenType, meta.TokenTypeBearer):
	case strings.EqualFold(tr.TokenType, meta.TokenTypeDPoP) && client != nil && client.DPoP != nil:
		typ = meta.TokenTypeDPoP
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedTokenType, tr.TokenType)
	}
	clientID := ""
	if client != nil {
		clientID = client.ClientID
	}
	t := &Token{
		AccessToken:   tr.AccessToken,
		TokenType:     typ,
		RefreshToken:  tr.RefreshToken,
		Scope:         tr.Scope,
		Resource:      resource,
		Issuer:        issuer,
		TokenEndpoint: tokenEndpoint,
		ClientID:      clientID,
	}
	if t.Scope == "" {
		t.Scope = requestedScope
	}
	if tr.ExpiresIn > 0 {
		t.Expiry = now.Add(time.Duration(tr.ExpiresIn) * time.Second)
	}
	return t, nil
}

// TokenStore persists tokens by key (the MCP server URL). Implementations
// must be safe for concurrent use.
type TokenStore interface {
	// Load returns the token stored under key, or (nil, nil) if none.
	Load(ctx context.Context, key string) (*Token, error)
	// Save stores tok under key, replacing any previous token.
	Save(ctx context.Context, key string, tok *Token) error
	// Delete removes the token stored under key; deleting a missing key is
	// not an error.
	Delete(ctx context.Context, key string) error
}

// MemoryTokenStore is a TokenStore held in memory.
type MemoryTokenStore struct {
	mu     sync.Mutex
	tokens map[string]Token
}

// NewMemoryTokenStore returns an empty in-memory store.
func NewMemoryTokenStore() *MemoryTokenStore {
	return &MemoryTokenStore{tokens: map[string]Token{}}
}

// Load implements TokenStore.
func (s *MemoryTokenStore) Load(_ context.Context, key string) (*Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[key]
	if !ok {
		return nil, nil
	}
	return &t, nil
}

// Save implements TokenStore.
func (s *MemoryTokenStore) Save(_ context.Context, key string, tok *Token) error {
	if tok == nil {
		return errors.New("oauthclient: nil token")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[key] = *tok
	return nil
}

// Delete implements TokenStore.
func (s *MemoryTokenStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, key)
	return nil
}

// FileTokenStore is a TokenStore kept in one JSON file readable and
// writable only by its owner (mode 0600, directory created 0700). Writes go
// to a temporary file in the same directory that is renamed into place.
type FileTokenStore struct {
	path string
	mu   sync.Mutex
}

// NewFileTokenStore returns a store backed by the file at path. The file is
// created on first Save. If it exists with permissions wider than 0600,
// Load and Save fail rather than use or extend a readable token file.
func NewFileTokenStore(path string) (*FileTokenStore, error) {
	if path == "" {
		return nil, errors.New("oauthclient: empty token file path")
	}
	return &FileTokenStore{path: path}, nil
}

// maxTokenFile bounds the token file size.
const maxTokenFile = 4 << 20

func (s *FileTokenStore) read() (map[string]Token, error) {
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Token{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("oauthclient: token file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("oauthclient: token file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("oauthclient: token file %s has permissions %v; want 0600", s.path, st.Mode().Perm())
	}
	if st.Size() > maxTokenFile {
		return nil, fmt.Errorf("oauthclient: token file %s too large (%d bytes)", s.path, st.Size())
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("oauthclient: token file: %w", err)
	}
	m := map[string]Token{}
	if len(data) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("oauthclient: token file %s: %w", s.path, err)
	}
	return m, nil
}

func (s *FileTokenStore) write(m map[string]Token) error {
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("oauthclient: token file: %w", err)
	}
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("oauthclient: token file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tokens-*.tmp")
	if err != nil {
		return fmt.Errorf("oauthclient: token file: %w", err)
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("oauthclient: token file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("oauthclient: token file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("oauthclient: token file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("oauthclient: token file: %w", err)
	}
	if err := os.Rename(name, s.path); err != nil {
		return fmt.Errorf("oauthclient: token file: %w", err)
	}
	ok = true
	return nil
}

// Load implements TokenStore.
func (s *FileTokenStore) Load(_ context.Context, key string) (*Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.read()
	if err != nil {
		return nil, err
	}
	t, ok := m[key]
	if !ok {
		return nil, nil
	}
	return &t, nil
}

// Save implements TokenStore.
func (s *FileTokenStore) Save(_ context.Context, key string, tok *Token) error {
	if tok == nil {
		return errors.New("oauthclient: nil token")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.read()
	if err != nil {
		return err
	}
	m[key] = *tok
	return s.write(m)
}

// Delete implements TokenStore.
func (s *FileTokenStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.read()
	if err != nil {
		return err
	}
	if _, ok := m[key]; !ok {
		return nil
	}
	delete(m, key)
	return s.write(m)
}

// Package store defines the persistent state of mcpgate's identity layer
// (users, OAuth clients, authorization codes, refresh tokens, issued access
// tokens, replay caches, login sessions, signing keys and fetched Client ID
// Metadata Documents) as one interface, Store, with an in-memory
// implementation (NewMemory) for tests and single-process use. The
// embedded SQLite implementation lives in store/sqlite.
//
// Secrets are never stored in clear: codes, refresh tokens, session
// tokens and client secrets are stored as digests computed by the caller
// (see Digest); user passwords as argon2id hashes.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"
)

// Errors returned by Store implementations. Callers test them with
// errors.Is.
var (
	// ErrNotFound reports a missing record.
	ErrNotFound = errors.New("store: not found")
	// ErrExists reports a create with an identifier already in use.
	ErrExists = errors.New("store: already exists")
	// ErrConsumed reports a second use of a single-use record (an
	// authorization code or a rotated refresh token). The record is
	// returned alongside so that the caller can revoke what was issued
	// from it.
	ErrConsumed = errors.New("store: already used")
	// ErrReplay reports a one-time identifier (a JWT jti) seen before.
	ErrReplay = errors.New("store: identifier already used")
	// ErrRevoked reports a rotation of a refresh token that was revoked
	// (alone or with its grant family): nothing is issued from it.
	ErrRevoked = errors.New("store: revoked")
)

// Digest returns the hex SHA-256 of a high-entropy secret (code, token,
// session id, client secret); only digests are stored.
func Digest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// User is a local account that can sign in to the authorization server.
type User struct {
	// Username is the unique login name; it is also the token subject.
	Username string
	// PasswordHash is an argon2id PHC string.
	PasswordHash string
	// Groups, Roles and Email are attributes policies can read
	// (principal.groups, principal.roles, principal.email).
	Groups []string
	Roles  []string
	Email  string
	// CreatedAt is when the user was added.
	CreatedAt time.Time
}

// Client kinds.
const (
	// ClientPreRegistered is a client added by an administrator.
	ClientPreRegistered = "pre-registered"
	// ClientDynamic is a client registered through RFC 7591.
	ClientDynamic = "dynamic"
	// ClientMetadataDocument is a client whose client_id is the URL of its
	// Client ID Metadata Document.
	ClientMetadataDocument = "cimd"
)

// Client is an OAuth client known to the authorization server.
type Client struct {
	// ID is the client_id.
	ID string
	// Kind is one of ClientPreRegistered, ClientDynamic,
	// ClientMetadataDocument.
	Kind string
	// Name is the human-readable client_name shown on the consent page.
	Name string
	// SecretHash is Digest(client_secret) for secret-based clients.
	SecretHash string
	// RedirectURIs are the registered redirect URIs.
	RedirectURIs []string
	// GrantTypes are the grant types the client may use.
	GrantTypes []string
	// TokenEndpointAuthMethod is none, client_secret_basic,
	// client_secret_post or private_key_jwt.
	TokenEndpointAuthMethod string
	// Scope is the space-separated set of scopes the client may obtain
	// ("" means any scope of the resource).
	Scope string
	// JWKS is the client's public key set (JSON) for private_key_jwt.
	JWKS string
	// JWKSURI is where the client's keys are published.
	JWKSURI string
	// Metadata is the raw registration request or metadata document.
	Metadata string
	// CreatedAt is when the client was added.
	CreatedAt time.Time
	// Status is the administrator's admission decision: "" (none: the
	// configuration of the client's registration path decides),
	// ClientPending, ClientApproved or ClientRefused. PutClient never
	// changes it on an existing client; SetClientStatus does.
	Status string
	// StatusBy and StatusAt record who set Status and when.
	StatusBy string
	StatusAt time.Time
	// FirstUsedAt is when the client first obtained a token (zero if
	// never): registrations never used are collected by
	// DeleteUnusedClients. PutClient never changes it on an existing
	// client; MarkClientUsed does.
	FirstUsedAt time.Time
}

// Admission statuses of a client (Client.Status).
const (
	// ClientPending is a client registered on a path that needs an
	// administrator's approval; it obtains no token until approved.
	ClientPending = "pending"
	// ClientApproved is a client an administrator approved.
	ClientApproved = "approved"
	// ClientRefused is a client an administrator refused; it obtains no
	// token.
	ClientRefused = "refused"
)

// AuthCode is an issued authorization code.
type AuthCode struct {
	// CodeHash is Digest(code).
	CodeHash string
	// ClientID is the client the code was issued to.
	ClientID string
	// Subject is the user who approved.
	Subject string
	// RedirectURI is the redirect_uri of the authorization request.
	RedirectURI string
	// CodeChallenge is the PKCE S256 challenge.
	CodeChallenge string
	// Resource is the target resource (RFC 8707).
	Resource string
	// Scope is the granted scope.
	Scope string
	// FamilyID groups every token issued from this code.
	FamilyID string
	// Claims are the identity attributes the user's identity provider
	// asserted at sign-in (JSON, opaque to the store), carried into the
	// tokens issued from this code; "" when there are none.
	Claims string
	// ExpiresAt is when the code stops being redeemable.
	ExpiresAt time.Time
	// UsedAt is set when the code is redeemed.
	UsedAt time.Time
}

// RefreshToken is an issued refresh token.
type RefreshToken struct {
	// TokenHash is Digest(refresh_token).
	TokenHash string
	// FamilyID groups the rotations of one grant.
	FamilyID string
	// ClientID is the client the token was issued to.
	ClientID string
	// Subject is the resource owner.
	Subject string
	// Resource is the audience of the access tokens it yields.
	Resource string
	// Scope is the granted scope.
	Scope string
	// Claims are the identity attributes carried into the access tokens
	// it yields (JSON, opaque to the store; see AuthCode.Claims).
	Claims string
	// ExpiresAt bounds the token's life.
	ExpiresAt time.Time
	// UsedAt is set when the token is rotated.
	UsedAt time.Time
	// Revoked is set when the token or its family is revoked.
	Revoked bool
}

// AccessToken records an issued access token (a JWT) so that it can be
// revoked and inventoried.
type AccessToken struct {
	// ID is the jti.
	ID string
	// FamilyID is the grant family, empty for client credentials.
	FamilyID string
	// ClientID is the client the token was issued to.
	ClientID string
	// Subject is the token subject.
	Subject string
	// Resource is the audience.
	Resource string
	// Scope is the granted scope.
	Scope string
	// IssuedAt and ExpiresAt are the token's lifetime.
	IssuedAt, ExpiresAt time.Time
	// Revoked is set by revocation.
	Revoked bool
}

// Session is a browser session at the authorization server, or a pending
// login with an external identity provider (Kind distinguishes them).
type Session struct {
	// IDHash is Digest(session token from the cookie).
	IDHash string
	// Kind is "user" or "oidc-pending".
	Kind string
	// Subject is the signed-in user ("" while pending).
	Subject string
	// Data carries kind-specific state (e.g. OIDC nonce and verifier).
	Data string
	// ExpiresAt ends the session.
	ExpiresAt time.Time
}

// SigningKey is a private key the authorization server signs tokens
// with.
type SigningKey struct {
	// ID is the JWK kid.
	ID string
	// Algorithm is the JWS alg, e.g. ES256.
	Algorithm string
	// PrivateJWK is the private key as a JWK (JSON).
	PrivateJWK string
	// CreatedAt is when the key was made; keys rotate by age.
	CreatedAt time.Time
	// RetiredAt is set once the key no longer signs; it is still
	// published until every token it signed has expired.
	RetiredAt time.Time
}

// MetadataDocument is a fetched Client ID Metadata Document, kept for
// caching and change detection.
type MetadataDocument struct {
	// URL is the client_id.
	URL string
	// Body is the document as fetched.
	Body string
	// Digest is Digest(Body).
	Digest string
	// PreviousDigest is the digest before the last change ("" if none).
	PreviousDigest string
	// FetchedAt is the last successful fetch.
	FetchedAt time.Time
	// ChangedAt is when a fetch last returned a different document.
	ChangedAt time.Time
	// ExpiresAt is when the cached copy goes stale.
	ExpiresAt time.Time
}

// Store is the persistent state of the identity layer. Implementations
// are safe for concurrent use; operations marked atomic must stay atomic
// across replicas sharing the same database.
type Store interface {
	// CreateUser adds a user; ErrExists if the name is taken.
	CreateUser(ctx context.Context, u *User) error
	// GetUser returns a user or ErrNotFound.
	GetUser(ctx context.Context, username string) (*User, error)
	// ListUsers returns all users sorted by name.
	ListUsers(ctx context.Context) ([]*User, error)
	// DeleteUser removes a user or returns ErrNotFound.
	DeleteUser(ctx context.Context, username string) error

	// CreateClient adds a client; ErrExists if the id is taken.
	CreateClient(ctx context.Context, c *Client) error
	// PutClient creates or replaces a client (used for metadata-document
	// clients, whose record follows the fetched document). Replacing
	// keeps the stored Status, StatusBy, StatusAt and FirstUsedAt.
	PutClient(ctx context.Context, c *Client) error
	// SetClientStatus records an admission decision (Client.Status) by
	// whom at a time; ErrNotFound if there is no such client.
	SetClientStatus(ctx context.Context, id, status, by string, at time.Time) error
	// MarkClientUsed sets FirstUsedAt to at if it is not set yet;
	// ErrNotFound if there is no such client.
	MarkClientUsed(ctx context.Context, id string, at time.Time) error
	// CountClients returns how many clients of a kind (ClientDynamic, …)
	// are stored.
	CountClients(ctx context.Context, kind string) (int, error)
	// DeleteUnusedClients removes the clients of a kind created before
	// createdBefore that never obtained a token (FirstUsedAt zero) and
	// that no administrator approved, and returns how many it removed.
	DeleteUnusedClients(ctx context.Context, kind string, createdBefore time.Time) (int, error)
	// GetClient returns a client or ErrNotFound.
	GetClient(ctx context.Context, id string) (*Client, error)
	// ListClients returns all clients sorted by id.
	ListClients(ctx context.Context) ([]*Client, error)
	// DeleteClient removes a client or returns ErrNotFound.
	DeleteClient(ctx context.Context, id string) error

	// CreateAuthCode stores a new authorization code.
	CreateAuthCode(ctx context.Context, c *AuthCode) error
	// ConsumeAuthCode atomically marks a code used and returns it. A
	// second call returns the code and ErrConsumed; an unknown code
	// ErrNotFound.
	ConsumeAuthCode(ctx context.Context, codeHash string, now time.Time) (*AuthCode, error)

	// CreateRefreshToken stores a new refresh token.
	CreateRefreshToken(ctx context.Context, t *RefreshToken) error
	// RotateRefreshToken atomically marks the token oldHash used and
	// stores next. If oldHash was revoked (alone or by RevokeFamily) it
	// returns the old token and ErrRevoked, if it was already used the
	// old token and ErrConsumed; next is then not stored. The check and
	// the rotation are one transaction, so a rotation racing RevokeFamily
	// either happens before it (and next is revoked by it) or fails.
	// Unknown tokens give ErrNotFound.
	RotateRefreshToken(ctx context.Context, oldHash string, next *RefreshToken, now time.Time) (*RefreshToken, error)
	// GetRefreshToken returns a refresh token or ErrNotFound.
	GetRefreshToken(ctx context.Context, tokenHash string) (*RefreshToken, error)
	// RevokeRefreshToken revokes one refresh token (ErrNotFound if unknown).
	RevokeRefreshToken(ctx context.Context, tokenHash string) error

	// RecordAccessToken stores an issued access token.
	RecordAccessToken(ctx context.Context, t *AccessToken) error
	// GetAccessToken returns an access token record or ErrNotFound.
	GetAccessToken(ctx context.Context, id string) (*AccessToken, error)
	// RevokeAccessToken revokes one access token (ErrNotFound if unknown).
	RevokeAccessToken(ctx context.Context, id string) error
	// IsAccessTokenRevoked reports whether the access token id was
	// revoked; unknown ids are not revoked.
	IsAccessTokenRevoked(ctx context.Context, id string) (bool, error)
	// RevokeFamily revokes every refresh and access token of a family and
	// returns how many records it changed.
	RevokeFamily(ctx context.Context, familyID string) (int, error)

	// UseOnce records a one-time identifier (namespace, e.g. the issuer
	// of an assertion, and its jti) until expiresAt; ErrReplay if it was
	// recorded before and has not expired.
	UseOnce(ctx context.Context, namespace, id string, expiresAt, now time.Time) error

	// CreateSession stores a session.
	CreateSession(ctx context.Context, s *Session) error
	// GetSession returns a live session or ErrNotFound (also when
	// expired).
	GetSession(ctx context.Context, idHash string, now time.Time) (*Session, error)
	// DeleteSession removes a session; unknown sessions are not an error.
	DeleteSession(ctx context.Context, idHash string) error

	// AddSigningKey stores a new signing key.
	AddSigningKey(ctx context.Context, k *SigningKey) error
	// ListSigningKeys returns all signing keys, newest first.
	ListSigningKeys(ctx context.Context) ([]*SigningKey, error)
	// RetireSigningKey sets RetiredAt on a key.
	RetireSigningKey(ctx context.Context, id string, at time.Time) error
	// DeleteSigningKey removes a key.
	DeleteSigningKey(ctx context.Context, id string) error

	// PutMetadataDocument stores a fetched metadata document, keeping
	// PreviousDigest and ChangedAt up to date when the digest changes.
	PutMetadataDocument(ctx context.Context, d *MetadataDocument) (*MetadataDocument, error)
	// GetMetadataDocument returns a stored document or ErrNotFound.
	GetMetadataDocument(ctx context.Context, url string) (*MetadataDocument, error)

	// DeleteExpired removes expired codes, tokens, sessions and replay
	// records and returns how many it removed.
	DeleteExpired(ctx context.Context, now time.Time) (int, error)

	// Close releases resources.
	Close() error
}

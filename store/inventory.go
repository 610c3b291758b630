package store

import (
	"context"
	"slices"
	"time"
)

// ClientRecord is what the inventory knows about an OAuth client beyond
// its registration: when it was first and last seen, a snapshot of its
// latest metadata, and the redirect URIs and keys an administrator
// approved. The inventory package computes every field; the store keeps
// them as given.
type ClientRecord struct {
	// ClientID is the client_id (for metadata-document clients, the
	// document's URL).
	ClientID string
	// Metadata is the latest metadata document or registration request as
	// received ("" if none was recorded).
	Metadata string
	// MetadataDigest is Digest(Metadata).
	MetadataDigest string
	// RedirectURIs, KeyThumbprints and JWKSURI describe the latest
	// metadata: redirect URIs, RFC 7638 SHA-256 thumbprints of the keys
	// in its jwks, and its jwks_uri.
	RedirectURIs   []string
	KeyThumbprints []string
	JWKSURI        string
	// ApprovedRedirectURIs, ApprovedKeyThumbprints and ApprovedJWKSURI
	// are the baseline: the values approved (explicitly, or implicitly
	// at first sight).
	ApprovedRedirectURIs   []string
	ApprovedKeyThumbprints []string
	ApprovedJWKSURI        string
	// Changed is set while the latest metadata differs from the approved
	// baseline in redirect URIs or keys.
	Changed bool
	// ChangedAt is when Changed was last set.
	ChangedAt time.Time
	// ApprovedAt and ApprovedBy record the last approval (ApprovedBy is
	// "" for the implicit approval at first sight).
	ApprovedAt time.Time
	ApprovedBy string
	// FirstSeen and LastSeen bound the client's activity.
	FirstSeen, LastSeen time.Time

	// DocumentDigest is the hex SHA-256 of the RFC 8785 canonical JSON of
	// the latest metadata document; ApprovedDocumentDigest that of the
	// approved one.
	DocumentDigest, ApprovedDocumentDigest string
	// RemoteKeyThumbprints are the RFC 7638 thumbprints of the keys last
	// fetched from RemoteKeysURI (the client's jwks_uri), at
	// RemoteKeysFetchedAt; ApprovedRemoteKeyThumbprints the approved ones,
	// approved at RemoteKeysApprovedAt (zero: no baseline yet).
	RemoteKeysURI                string
	RemoteKeyThumbprints         []string
	ApprovedRemoteKeyThumbprints []string
	RemoteKeysFetchedAt          time.Time
	RemoteKeysApprovedAt         time.Time
	// History holds the latest changes of the client's trust objects,
	// newest last (bounded by the inventory).
	History []ClientChange
}

// ClientChange is one change of a client's trust objects: a redirect URI
// set, a key set (inline or behind jwks_uri), the jwks_uri itself or the
// metadata document, or an approval.
type ClientChange struct {
	// At is when the change was seen.
	At time.Time
	// What names the object: "redirect_uris", "jwks", "jwks_uri",
	// "jwks_uri keys", "document" or "approved".
	What string
	// Old and New are the values before and after (fingerprints, URIs or
	// digests).
	Old, New []string
	// By names the approver of an "approved" change.
	By string `json:",omitempty"`
}

// CloneClientRecord returns a deep copy of r.
func CloneClientRecord(r *ClientRecord) *ClientRecord {
	c := *r
	c.RedirectURIs = slices.Clone(r.RedirectURIs)
	c.KeyThumbprints = slices.Clone(r.KeyThumbprints)
	c.ApprovedRedirectURIs = slices.Clone(r.ApprovedRedirectURIs)
	c.ApprovedKeyThumbprints = slices.Clone(r.ApprovedKeyThumbprints)
	c.RemoteKeyThumbprints = slices.Clone(r.RemoteKeyThumbprints)
	c.ApprovedRemoteKeyThumbprints = slices.Clone(r.ApprovedRemoteKeyThumbprints)
	if r.History != nil {
		c.History = make([]ClientChange, len(r.History))
		for i, h := range r.History {
			h.Old, h.New = slices.Clone(h.Old), slices.Clone(h.New)
			c.History[i] = h
		}
	}
	return &c
}

// ToolRecord is the fingerprint of one upstream tool definition and its
// approval state.
type ToolRecord struct {
	// Upstream is the upstream server's configured name.
	Upstream string
	// Name is the tool's name as the upstream lists it.
	Name string
	// Definition is the RFC 8785 canonical JSON of the latest definition.
	Definition string
	// Digest is the hex SHA-256 of Definition.
	Digest string
	// ApprovedDefinition and ApprovedDigest are the approved baseline.
	ApprovedDefinition string
	ApprovedDigest     string
	// Changed is set while Digest differs from ApprovedDigest.
	Changed bool
	// Removed is set when the upstream stopped listing the tool.
	Removed bool
	// FirstSeen, LastSeen, ChangedAt and ApprovedAt are event times;
	// ApprovedBy is "" for the implicit approval at first sight.
	FirstSeen, LastSeen, ChangedAt, ApprovedAt time.Time
	ApprovedBy                                 string
}

// UpstreamCredential records that a principal holds its own credential
// for an upstream (per-user OAuth consent, for example). The secret
// itself is never part of the record.
type UpstreamCredential struct {
	// Principal is the user the credential acts for.
	Principal string
	// Upstream is the upstream server's configured name.
	Upstream string
	// Kind is the credential type, e.g. "oauth_user".
	Kind string
	// Scope is the space-separated scope granted by the upstream.
	Scope string
	// CreatedAt, ExpiresAt and LastUsed describe its life (zero if
	// unknown).
	CreatedAt, ExpiresAt, LastUsed time.Time
	// IdP and GrantID name the identity provider that vouched for the
	// principal and the jti of its ID-JAG, for credentials of kind
	// "enterprise" (Cross App Access); "" otherwise.
	IdP, GrantID string
}

// IdentityProvider is an identity provider the deployment trusts to
// vouch for users (ID-JAG issuer or enterprise sign-in).
type IdentityProvider struct {
	// Issuer is the provider's issuer URL.
	Issuer string
	// Name is a display name.
	Name string
	// Kind is "id-jag" or "oidc-login".
	Kind string
	// CreatedAt is when it was first recorded.
	CreatedAt time.Time
}

// Revocation kinds.
const (
	RevokeUser               = "user"
	RevokeClient             = "client"
	RevokeGrant              = "grant"
	RevokeUpstreamCredential = "upstream-credential"
	RevokeIdP                = "idp"
)

// Revocation is a durable decision that everything of one identity is
// refused: a user, a client, a grant family, an upstream credential or an
// identity provider.
type Revocation struct {
	// Kind is one of the Revoke* constants.
	Kind string
	// ID names the revoked identity (username, client_id, family id,
	// "<upstream>/<principal>" or issuer URL).
	ID string
	// By is who revoked it.
	By string
	// Reason is free text.
	Reason string
	// At is when it was revoked.
	At time.Time
	// AppliedAt is when a gateway applied it (closed the identity's
	// sessions, cancelled its tasks, ended its upstream access); zero
	// while no gateway has, as when it was recorded from the command line
	// while no gateway ran. AppliedNote summarises what applying it did.
	AppliedAt   time.Time
	AppliedNote string
}

// InventoryStore is the persistent state of the inventory: client
// records, tool fingerprints, upstream credentials, trusted identity
// providers and revocations. Implementations are safe for concurrent use.
type InventoryStore interface {
	// PutClientRecord creates or replaces the record of r.ClientID.
	PutClientRecord(ctx context.Context, r *ClientRecord) error
	// GetClientRecord returns a record or an error wrapping ErrNotFound.
	GetClientRecord(ctx context.Context, clientID string) (*ClientRecord, error)
	// ListClientRecords returns every record sorted by client id.
	ListClientRecords(ctx context.Context) ([]*ClientRecord, error)

	// PutToolRecords creates or replaces the records of (r.Upstream,
	// r.Name) for every r, atomically: all of them or none.
	PutToolRecords(ctx context.Context, recs []*ToolRecord) error
	// GetToolRecord returns a record or an error wrapping ErrNotFound.
	GetToolRecord(ctx context.Context, upstream, name string) (*ToolRecord, error)
	// ListToolRecords returns the records of one upstream ("" for all),
	// sorted by upstream then name.
	ListToolRecords(ctx context.Context, upstream string) ([]*ToolRecord, error)

	// PutUpstreamCredential creates or replaces the record of
	// (c.Principal, c.Upstream).
	PutUpstreamCredential(ctx context.Context, c *UpstreamCredential) error
	// ListUpstreamCredentials returns every record sorted by principal
	// then upstream.
	ListUpstreamCredentials(ctx context.Context) ([]*UpstreamCredential, error)
	// DeleteUpstreamCredential removes a record or returns an error
	// wrapping ErrNotFound.
	DeleteUpstreamCredential(ctx context.Context, principal, upstream string) error

	// PutIdentityProvider creates or replaces the record of p.Issuer,
	// keeping the first CreatedAt.
	PutIdentityProvider(ctx context.Context, p *IdentityProvider) error
	// ListIdentityProviders returns every record sorted by issuer.
	ListIdentityProviders(ctx context.Context) ([]*IdentityProvider, error)

	// PutRevocation records a revocation; a second revocation of the same
	// (Kind, ID) replaces the first. It returns only once the record is
	// durable.
	PutRevocation(ctx context.Context, r *Revocation) error
	// MarkRevocationApplied records that a gateway applied a revocation
	// (see Revocation.AppliedAt), or returns an error wrapping
	// ErrNotFound.
	MarkRevocationApplied(ctx context.Context, kind, id string, at time.Time, note string) error
	// ListRevocations returns every revocation sorted by kind then id.
	ListRevocations(ctx context.Context) ([]*Revocation, error)
	// DeleteRevocation lifts a revocation or returns an error wrapping
	// ErrNotFound.
	DeleteRevocation(ctx context.Context, kind, id string) error
}

// GrantLister lists the live tokens of the identity store, for the
// inventory's view of grants and for revocation by user, client or
// identity provider. Memory and the SQLite store implement it.
type GrantLister interface {
	// ListAccessTokens returns the access tokens that are neither revoked
	// nor expired at now, sorted by id.
	ListAccessTokens(ctx context.Context, now time.Time) ([]*AccessToken, error)
	// ListRefreshTokens returns the refresh tokens that are neither
	// revoked, used nor expired at now, sorted by family then hash.
	ListRefreshTokens(ctx context.Context, now time.Time) ([]*RefreshToken, error)
}

package sqlite

import (
	"context"
	"sync"
)

// TokenRevocationVersion returns a number that changes whenever an access
// token is revoked in this database, by any process (a trigger on
// access_tokens counts the revocations). A cache of verified tokens polls
// it (resource.CachingVerifier.Watch) instead of asking about every token
// on every request.
func (s *Store) TokenRevocationVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, `SELECT version FROM token_revocation_version WHERE id = 1`).Scan(&v)
	return v, wrap("token revocation version", err)
}

// OnTokenRevoked registers fn to be called, in this process, after every
// revocation of access tokens through this Store (RevokeAccessToken,
// RevokeFamily), so that a token cache forgets them at once. fn must not
// block.
func (s *Store) OnTokenRevoked(fn func()) {
	s.revokeMu.Lock()
	defer s.revokeMu.Unlock()
	s.onRevoke = append(s.onRevoke, fn)
}

// tokensRevoked calls the OnTokenRevoked functions.
func (s *Store) tokensRevoked() {
	s.revokeMu.Lock()
	fns := s.onRevoke
	s.revokeMu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// revokeHooks are the OnTokenRevoked functions.
type revokeHooks struct {
	revokeMu sync.Mutex
	onRevoke []func()
}

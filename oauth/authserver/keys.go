package authserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/store"
)

// keySet signs tokens with the newest ES256 key from the store, rotating
// it when it gets older than rotateAfter and publishing retired keys until
// every token they signed has expired.
type keySet struct {
	st          store.Store
	rotateAfter time.Duration
	keepFor     time.Duration // retired keys stay published this long
	now         func() time.Time

	mu      sync.Mutex
	loaded  time.Time
	active  *jose.JSONWebKey
	created time.Time
	public  []jose.JSONWebKey
}

// reloadEvery bounds how stale another replica's rotation can look.
const reloadEvery = time.Minute

func (k *keySet) load(ctx context.Context) error {
	keys, err := k.st.ListSigningKeys(ctx)
	if err != nil {
		return err
	}
	now := k.now()
	var active *jose.JSONWebKey
	var created time.Time
	var public []jose.JSONWebKey
	for _, sk := range keys {
		if !sk.RetiredAt.IsZero() && now.Sub(sk.RetiredAt) > k.keepFor {
			_ = k.st.DeleteSigningKey(ctx, sk.ID)
			continue
		}
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON([]byte(sk.PrivateJWK)); err != nil {
			return fmt.Errorf("signing key %s: %w", sk.ID, err)
		}
		if active == nil && sk.RetiredAt.IsZero() && now.Sub(sk.CreatedAt) < k.rotateAfter {
			active, created = &jwk, sk.CreatedAt
		}
		public = append(public, jwk.Public())
	}
	if active == nil {
		// Retire the current keys and make a new one.
		for _, sk := range keys {
			if sk.RetiredAt.IsZero() {
				if err := k.st.RetireSigningKey(ctx, sk.ID, now); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
			}
		}
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return fmt.Errorf("generating signing key: %w", err)
		}
		jwk := jose.JSONWebKey{Key: priv, Algorithm: string(jose.ES256), Use: "sig", KeyID: meta.RandomToken(12)}
		raw, err := jwk.MarshalJSON()
		if err != nil {
			return fmt.Errorf("encoding signing key: %w", err)
		}
		if err := k.st.AddSigningKey(ctx, &store.SigningKey{ID: jwk.KeyID, Algorithm: "ES256", PrivateJWK: string(raw), CreatedAt: now}); err != nil {
			return err
		}
		active, created = &jwk, now
		public = append([]jose.JSONWebKey{jwk.Public()}, public...)
	}
	k.active, k.created, k.public, k.loaded = active, created, public, now
	return nil
}

func (k *keySet) current(ctx context.Context) (*jose.JSONWebKey, []jose.JSONWebKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if k.active == nil || now.Sub(k.loaded) > reloadEvery || now.Sub(k.created) >= k.rotateAfter {
		if err := k.load(ctx); err != nil {
			return nil, nil, err
		}
	}
	return k.active, k.public, nil
}

// sign signs claims as a compact JWS with the given typ header.
func (k *keySet) sign(ctx context.Context, typ string, claims any) (string, error) {
	key, _, err := k.current(ctx)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encoding claims: %w", err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		return "", fmt.Errorf("signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	return jws.CompactSerialize()
}

// jwks returns the published key set.
func (k *keySet) jwks(ctx context.Context) (*jose.JSONWebKeySet, error) {
	_, pub, err := k.current(ctx)
	if err != nil {
		return nil, err
	}
	return &jose.JSONWebKeySet{Keys: pub}, nil
}

// verify checks an ES256 compact JWS against the published keys and
// returns its payload.
func (k *keySet) verify(ctx context.Context, token string) ([]byte, error) {
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, fmt.Errorf("malformed token: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("token must have exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	for attempt := 0; attempt < 2; attempt++ {
		_, pub, err := k.current(ctx)
		if err != nil {
			return nil, err
		}
		for _, key := range pub {
			if key.KeyID == kid {
				return jws.Verify(key)
			}
		}
		// Unknown kid: maybe another replica rotated; reload, but at most
		// every few seconds so that made-up kids cannot hammer the store.
		k.mu.Lock()
		stale := k.now().Sub(k.loaded) > 5*time.Second
		if stale {
			k.loaded = time.Time{}
		}
		k.mu.Unlock()
		if !stale {
			break
		}
	}
	return nil, fmt.Errorf("unknown signing key %q", kid)
}

package upstreamauth

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/internal/keyfile"
	"github.com/mcpgate/mcpgate/oauth/oauthclient"
)

const (
	// KeyFile is the file in the data directory holding the key that
	// seals per-user upstream tokens.
	KeyFile = "upstream-tokens.key"
	// keySize is the size of that key: AES-256.
	keySize = 32
	// sealVersion is the first byte of sealed tokens.
	sealVersion = 1
)

// Sealer seals per-user upstream tokens for storage with AES-256-GCM,
// bound to their (principal, upstream): a sealed token moved to another
// row does not open.
type Sealer struct {
	keyPath string

	once sync.Once
	aead cipher.AEAD
	err  error
}

// NewSealer returns a Sealer with the key in the file at keyPath, read
// (or created, mode 0600) on first use; a key file that group or others
// can access is refused. "" means a random key that ends with the
// process.
func NewSealer(keyPath string) *Sealer { return &Sealer{keyPath: keyPath} }

// key returns the AEAD, reading or creating the key file on first use.
func (s *Sealer) key() (cipher.AEAD, error) {
	s.once.Do(func() {
		if s.aead, s.err = keyfile.AESGCM(s.keyPath); s.err != nil {
			s.err = fmt.Errorf("upstream token key: %w", s.err)
		}
	})
	return s.aead, s.err
}

// tokenAAD binds a sealed token to its (principal, upstream).
func tokenAAD(principal, upstream string) []byte {
	b := []byte("mcpgate upstream token\x00")
	b = binary.AppendUvarint(b, uint64(len(principal)))
	b = append(b, principal...)
	b = binary.AppendUvarint(b, uint64(len(upstream)))
	return append(b, upstream...)
}

// Seal returns tk sealed for the principal's row of the upstream.
func (s *Sealer) Seal(principal, upstream string, tk *oauthclient.Token) ([]byte, error) {
	aead, err := s.key()
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(tk)
	if err != nil {
		return nil, fmt.Errorf("sealing upstream token: %w", err)
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plain)+aead.Overhead())
	out[0] = sealVersion
	rand.Read(out[1:])
	return aead.Seal(out, out[1:], plain, tokenAAD(principal, upstream)), nil
}

// Open returns the token Seal sealed for the same principal and upstream
// with the same key, or an error.
func (s *Sealer) Open(principal, upstream string, sealed []byte) (*oauthclient.Token, error) {
	aead, err := s.key()
	if err != nil {
		return nil, err
	}
	n := aead.NonceSize()
	if len(sealed) < 1+n+aead.Overhead() || sealed[0] != sealVersion {
		return nil, errors.New("sealed upstream token: bad format")
	}
	plain, err := aead.Open(nil, sealed[1:1+n], sealed[1+n:], tokenAAD(principal, upstream))
	if err != nil {
		return nil, errors.New("sealed upstream token: does not open with this key")
	}
	var tk oauthclient.Token
	if err := json.Unmarshal(plain, &tk); err != nil {
		return nil, fmt.Errorf("sealed upstream token: %w", err)
	}
	return &tk, nil
}

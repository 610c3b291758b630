package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"time"

	"github.com/mcpgate/mcpgate/internal/keyfile"
)

// DefaultKeyFile is the checkpoint key's file name in the data directory.
const DefaultKeyFile = "audit-signing.key"

// LoadOrCreateKey reads the Ed25519 checkpoint signing key from path (a
// PEM "PRIVATE KEY" block, PKCS #8), generating it first if the file does
// not exist. A new file is created with mode 0600 (its directory with
// 0700), once even when several processes start together (see
// keyfile.LoadOrCreateFunc); an existing file that group or others can
// access is refused.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	b, err := keyfile.LoadOrCreateFunc(path, func() ([]byte, error) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return parsePrivateKey(path, b)
}

func loadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := keyfile.Read(path)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return parsePrivateKey(path, b)
}

func parsePrivateKey(path string, b []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("audit: key file %s: no PEM PRIVATE KEY block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit: key file %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit: key file %s: not an Ed25519 key (%T)", path, k)
	}
	return priv, nil
}

// LoadPublicKey reads the checkpoint verification key from path: a PEM
// "PUBLIC KEY" block (PKIX) or, on the gateway's own machine, the private
// key file itself.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: public key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("audit: public key file %s: no PEM block", path)
	}
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("audit: public key file %s: %w", path, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("audit: public key file %s: not an Ed25519 key (%T)", path, k)
		}
		return pub, nil
	case "PRIVATE KEY":
		priv, err := loadPrivateKey(path)
		if err != nil {
			return nil, err
		}
		return priv.Public().(ed25519.PublicKey), nil
	}
	return nil, fmt.Errorf("audit: public key file %s: unexpected PEM block %q", path, block.Type)
}

// EncodePublicKey returns pub as a PEM "PUBLIC KEY" block.
func EncodePublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("audit: encoding public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// KeyID returns the identifier recorded in checkpoints signed by pub: the
// first 16 hex digits of the SHA-256 of the raw public key.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

const checkpointDomain = "mcpgate.audit.checkpoint.v1\x00"

// checkpointMessage is what a checkpoint signature covers:
//
//	"mcpgate.audit.checkpoint.v1" 0x00 || uint64be(seq) || uint32be(len(hash)) || hash || int64be(time in Unix ns)
func checkpointMessage(seq uint64, hash string, t time.Time) []byte {
	b := make([]byte, 0, len(checkpointDomain)+8+4+len(hash)+8)
	b = append(b, checkpointDomain...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint32(b, uint32(len(hash)))
	b = append(b, hash...)
	b = binary.BigEndian.AppendUint64(b, uint64(t.UnixNano()))
	return b
}

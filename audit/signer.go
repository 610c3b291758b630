package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// A Signer signs checkpoints. The Log checks every signature it returns
// with PublicKey before storing or publishing the checkpoint.
type Signer interface {
	// PublicKey returns the key that verifies the Signer's signatures.
	PublicKey() ed25519.PublicKey
	// SignCheckpoint returns the Ed25519 signature of msg, the checkpoint
	// message (see CheckpointMessage). It may be slow (a remote key
	// service): the Log calls it outside its writer, bounded by
	// Options.SigningTimeout through ctx.
	SignCheckpoint(ctx context.Context, msg []byte) ([]byte, error)
}

// DefaultSigningTimeout bounds one signing when Options.SigningTimeout is
// zero.
const DefaultSigningTimeout = 10 * time.Second

// KeySigner signs with an Ed25519 private key held in memory.
type KeySigner struct{ key ed25519.PrivateKey }

// NewKeySigner returns a Signer using key.
func NewKeySigner(key ed25519.PrivateKey) *KeySigner { return &KeySigner{key: key} }

// LoadKeySigner reads the Ed25519 private key (PEM PKCS #8, as written by
// "openssl genpkey -algorithm ed25519") at path. Unlike LoadOrCreateKey
// it never creates the file: a key kept outside the data directory is
// provisioned by the operator, and a missing one (an unmounted volume,
// a typo) must not be replaced silently by a new key. A file that group
// or others can access is refused.
func LoadKeySigner(path string) (*KeySigner, error) {
	k, err := loadPrivateKey(path)
	if err != nil {
		return nil, err
	}
	return NewKeySigner(k), nil
}

// PublicKey implements Signer.
func (s *KeySigner) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// SignCheckpoint implements Signer.
func (s *KeySigner) SignCheckpoint(_ context.Context, msg []byte) ([]byte, error) {
	return ed25519.Sign(s.key, msg), nil
}

// CommandSigner signs checkpoints by running a command (a key service
// client, a hardware token, a program running as another user): the
// checkpoint key never needs to be readable by the gateway.
//
// Protocol, for each checkpoint: the command (Argv, without a shell) is
// started with the checkpoint message — the exact bytes the Ed25519
// signature covers, see CheckpointMessage — on its standard input,
// followed by end of file. It must write the 64-byte Ed25519 signature on
// its standard output, either raw or as base64 (standard alphabet, with
// padding) or hex, optionally followed by a newline, and exit with status
// 0. The environment also holds MCPGATE_CHECKPOINT_SEQ,
// MCPGATE_CHECKPOINT_HASH and MCPGATE_CHECKPOINT_TIME (RFC 3339) for
// logging; the signature must cover the standard input. Standard error
// is kept (at most 4 KiB) for the error message. The command is killed
// when the signing timeout expires.
type CommandSigner struct {
	argv []string
	pub  ed25519.PublicKey
}

// NewCommandSigner returns a Signer running argv; pub is the key its
// signatures must verify with (Options.PublicKeyFile).
func NewCommandSigner(argv []string, pub ed25519.PublicKey) (*CommandSigner, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, errors.New("audit: signing command: empty")
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, errors.New("audit: signing command: a public key (public_key_file) is needed to check its signatures")
	}
	return &CommandSigner{argv: append([]string(nil), argv...), pub: pub}, nil
}

// PublicKey implements Signer.
func (s *CommandSigner) PublicKey() ed25519.PublicKey { return s.pub }

// checkpointEnvKey is a context key carrying the checkpoint being signed
// to CommandSigner, for its environment.
type checkpointEnvKey struct{}

// SignCheckpoint implements Signer.
func (s *CommandSigner) SignCheckpoint(ctx context.Context, msg []byte) ([]byte, error) {
	cmd := exec.CommandContext(ctx, s.argv[0], s.argv[1:]...)
	cmd.Stdin = bytes.NewReader(msg)
	var stdout bytes.Buffer
	stderr := &limitedBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	cmd.WaitDelay = time.Second
	cmd.Env = os.Environ()
	if c, ok := ctx.Value(checkpointEnvKey{}).(*Checkpoint); ok {
		cmd.Env = append(cmd.Env,
			"MCPGATE_CHECKPOINT_SEQ="+strconv.FormatUint(c.Seq, 10),
			"MCPGATE_CHECKPOINT_HASH="+c.Hash,
			"MCPGATE_CHECKPOINT_TIME="+c.Time.Format(time.RFC3339Nano))
	}
	err := cmd.Run()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("audit: signing command %s: no signature in time: %w", s.argv[0], ctx.Err())
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg != "" {
			return nil, fmt.Errorf("audit: signing command %s: %w: %s", s.argv[0], err, msg)
		}
		return nil, fmt.Errorf("audit: signing command %s: %w", s.argv[0], err)
	}
	sig, err := decodeSignature(stdout.Bytes())
	if err != nil {
		return nil, fmt.Errorf("audit: signing command %s: %w", s.argv[0], err)
	}
	return sig, nil
}

// decodeSignature reads a signature written raw, in base64 or in hex.
func decodeSignature(b []byte) ([]byte, error) {
	if len(b) == ed25519.SignatureSize {
		return b, nil
	}
	s := strings.TrimSpace(string(b))
	if d, err := base64.StdEncoding.DecodeString(s); err == nil && len(d) == ed25519.SignatureSize {
		return d, nil
	}
	if d, err := hex.DecodeString(s); err == nil && len(d) == ed25519.SignatureSize {
		return d, nil
	}
	return nil, fmt.Errorf("output is not a 64-byte Ed25519 signature (raw, base64 or hex): %d bytes", len(b))
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string { return b.buf.String() }

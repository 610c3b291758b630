package oauthclient

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/mcpgate/mcpgate/oauth/meta"
)

// verifyDPoPProof checks a DPoP proof the way a server would and returns
// the JWK thumbprint of its key and its nonce claim.
func verifyDPoPProof(proof, method, htu, accessToken string) (jkt, nonce string, err error) {
	if proof == "" || strings.Contains(proof, ",") {
		return "", "", errors.New("missing or multiple proofs")
	}
	jws, err := jose.ParseSigned(proof, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return "", "", err
	}
	h := jws.Signatures[0].Header
	if h.ExtraHeaders["typ"] != meta.DPoPJWTType || h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		return "", "", fmt.Errorf("bad header %+v", h)
	}
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		return "", "", err
	}
	var c struct {
		JTI   string `json:"jti"`
		HTM   string `json:"htm"`
		HTU   string `json:"htu"`
		IAT   int64  `json:"iat"`
		ATH   string `json:"ath"`
		Nonce string `json:"nonce"`
	}
	if err := jsonUnmarshal(payload, &c); err != nil {
		return "", "", err
	}
	if c.JTI == "" || c.HTM != method || c.HTU != htu || time.Since(time.Unix(c.IAT, 0)).Abs() > time.Minute {
		return "", "", fmt.Errorf("bad claims %+v (want %s %s)", c, method, htu)
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		if c.ATH != base64.RawURLEncoding.EncodeToString(sum[:]) {
			return "", "", errors.New("bad ath")
		}
	}
	tp, err := h.JSONWebKey.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), c.Nonce, nil
}

func TestDPoP(t *testing.T) {
	for _, requireNonce := range []bool{false, true} {
		t.Run(fmt.Sprintf("nonce=%t", requireNonce), func(t *testing.T) {
			as := newFakeAS(t, func(a *fakeAS) {
				a.dpopAlgs = []string{"ES256"}
				if requireNonce {
					a.dpopNonce = "as-nonce"
				}
				a.issueRefresh = true
				a.expiresIn = 10 // always expired: exercises refresh with DPoP
			})
			rs := newFakeRS(t, as, func(s *fakeRS) {
				if requireNonce {
					s.dpopNonce = "rs-nonce"
				}
			})
			c := newClient(t, codeConfig(rs, func(c *Config) { c.DPoP = true }))
			for i := range 2 {
				resp, body, err := post(t, c, rs.url(), `{"n":1}`)
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("request %d: %v %v %q", i, resp, err, body)
				}
			}
			_, tok, _, _, _ := as.snapshot()
			want := 2 // authorization code, then refresh
			if requireNonce {
				want++ // the first token request is challenged once
			}
			if len(tok) != want || tok[want-1].Get("grant_type") != "refresh_token" {
				t.Fatalf("token requests %v", tok)
			}
			as.mu.Lock()
			nonceChallenges := as.dpopChallenges
			as.mu.Unlock()
			rs.mu.Lock()
			rsChallenges, schemes := rs.dpopChallenges, rs.authHeaders
			rs.mu.Unlock()
			if requireNonce && (nonceChallenges != 1 || rsChallenges != 1) {
				t.Fatalf("nonce challenges: AS %d RS %d, want 1 each (then remembered)", nonceChallenges, rsChallenges)
			}
			for _, h := range schemes[1:] {
				if !strings.HasPrefix(h, "DPoP ") {
					t.Fatalf("token presented as %q, want DPoP scheme", h)
				}
			}
		})
	}
	// Without AS support no proofs are sent and Bearer tokens are used.
	as := newFakeAS(t, nil)
	rs := newFakeRS(t, as, nil)
	c := newClient(t, codeConfig(rs, func(c *Config) { c.DPoP = true }))
	if resp, _, err := post(t, c, rs.url(), "{}"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	if h := rs.seenAuth(); !strings.HasPrefix(h[len(h)-1], "Bearer ") {
		t.Fatalf("scheme %q", h[len(h)-1])
	}
}

func TestDPoPTokenTypeRequiresProof(t *testing.T) {
	_, err := tokenFromResponse(&meta.TokenResponse{AccessToken: "a", TokenType: "DPoP"}, time.Now(), "", "r", "i", "e", &ClientAuth{ClientID: "c"})
	if !errors.Is(err, ErrUnsupportedTokenType) {
		t.Fatalf("DPoP token accepted without a DPoP key: %v", err)
	}
	_, err = tokenFromResponse(&meta.TokenResponse{AccessToken: "a", TokenType: "mac"}, time.Now(), "", "r", "i", "e", nil)
	if !errors.Is(err, ErrUnsupportedTokenType) {
		t.Fatalf("mac token accepted: %v", err)
	}
}

func TestJWTBearerFlow(t *testing.T) {
	as := newFakeAS(t, func(a *fakeAS) { a.workloadJWT = "workload.jwt.value"; a.noRegistration = true; a.issueRefresh = true })
	rs := newFakeRS(t, as, nil)
	calls := 0
	c := newClient(t, &Config{
		ServerURL: rs.url(),
		Flow:      FlowJWTBearer,
		Client:    &ClientAuth{ClientID: "wif-client"},
		Assertion: func(context.Context) (string, error) { calls++; return "workload.jwt.value", nil },
		SafeHTTP:  &testSafe,
	})
	if resp, _, err := post(t, c, rs.url(), "{}"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	_, tok, _, _, _ := as.snapshot()
	if calls != 1 || len(tok) != 1 || tok[0].Get("assertion") != "workload.jwt.value" || tok[0].Get("client_id") != "wif-client" || tok[0].Get("resource") != rs.resource() {
		t.Fatalf("calls %d token requests %v", calls, tok)
	}
	// A rejected assertion is reported, not retried with another grant.
	as2 := newFakeAS(t, func(a *fakeAS) { a.workloadJWT = "other" })
	rs2 := newFakeRS(t, as2, nil)
	c2 := newClient(t, &Config{ServerURL: rs2.url(), Flow: FlowJWTBearer, Assertion: func(context.Context) (string, error) { return "bad", nil }, SafeHTTP: &testSafe})
	_, _, err := post(t, c2, rs2.url(), "{}")
	var oe *meta.Error
	if !errors.As(err, &oe) || oe.Code != "invalid_grant" {
		t.Fatalf("err = %v", err)
	}
	if _, tok, _, _, _ := as2.snapshot(); len(tok) != 1 {
		t.Fatalf("%d token requests, want exactly 1", len(tok))
	}
}

var _ = http.StatusOK

package approval

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mcpgate/mcpgate/store"
)

// noSignIn is a BrowserSignIn that redeems no ticket.
type noSignIn struct{}

func (noSignIn) SignInURL(next string) string { return "/oauth/signin?next=" + next }
func (noSignIn) RedeemSignIn(context.Context, string) (string, error) {
	return "", context.Canceled
}

// FuzzSessionCookie: no cookie value names an identity the pages did
// not sign in (the key is the Service's own; carol is the only one
// signed in here), and none makes the check panic.
func FuzzSessionCookie(f *testing.F) {
	svc := New(store.NewApprovalsMemory(), &Options{BaseURL: "http://gw.example/approvals"})
	if err := svc.SetBrowserSignIn(SignInOptions{SignIn: noSignIn{}, TicketParam: "t", MayApprove: func(string) bool { return true }}); err != nil {
		f.Fatal(err)
	}
	rec := httptest.NewRecorder()
	svc.setSession(rec, "carol")
	genuine := rec.Result().Cookies()[0].Value
	req := httptest.NewRequest(http.MethodGet, "/approvals/x", nil)
	req.AddCookie(&http.Cookie{Name: svc.sessionCookie(), Value: genuine})
	if who, ok := svc.sessionApprover(req); !ok || who != "carol" {
		f.Fatalf("the genuine cookie names %q, %v", who, ok)
	}
	f.Add(genuine)
	f.Add(genuine[:len(genuine)-2] + "AA")
	f.Add("MTc5OTk5OTk5OQBjYXJvbA.")
	f.Add(".")
	f.Fuzz(func(t *testing.T, v string) {
		req := httptest.NewRequest(http.MethodGet, "/approvals/x", nil)
		req.Header.Set("Cookie", svc.sessionCookie()+"="+v)
		who, ok := svc.sessionApprover(req)
		if ok && who != "carol" {
			t.Fatalf("cookie %q names approver %q, whom the pages never signed in", v, who)
		}
	})
}

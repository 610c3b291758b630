package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/app"
)

// TestConsoleMounted: with a console section, the gateway serves the
// console at /console/, which sends a browser to the authorization
// server's sign-in, and the sign-in accepts /console/ as where to return.
// Without one, /console/ is not served.
func TestConsoleMounted(t *testing.T) {
	for _, on := range []bool{true, false} {
		cfg := testConfig(t)
		cfg.Auth, cfg.PublicURL = config.AuthOAuth, "http://127.0.0.1:1"
		if on {
			cfg.Console = &config.Console{Administrators: []string{"ada"}}
		}
		a, err := app.New(context.Background(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		h := a.Gateway.Handler()
		get := func(path string) *httptest.ResponseRecorder {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", "http://127.0.0.1:1"+path, nil))
			return w
		}
		w := get("/console/")
		if !on {
			if w.Code != http.StatusNotFound {
				t.Errorf("without a console: HTTP %d", w.Code)
			}
			a.Close()
			continue
		}
		loc := w.Header().Get("Location")
		if w.Code != http.StatusSeeOther || !strings.HasPrefix(loc, "http://127.0.0.1:1/oauth/signin?next=%2Fconsole%2F") {
			t.Fatalf("/console/: HTTP %d to %q", w.Code, loc)
		}
		if w := get(strings.TrimPrefix(loc, "http://127.0.0.1:1")); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `name="password"`) {
			t.Errorf("sign-in for the console: HTTP %d %.200s", w.Code, w.Body.String())
		}
		if w := get("/console/api/me"); w.Code != http.StatusUnauthorized {
			t.Errorf("API without sign-in: HTTP %d", w.Code)
		}
		a.Close()
	}
}

package authserver

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/oauth/meta"
)

// oauthErr builds a *meta.Error with its HTTP status.
func oauthErr(status int, code, format string, args ...any) *meta.Error {
	return &meta.Error{Code: code, Description: fmt.Sprintf(format, args...), StatusCode: status}
}

func errInvalidRequest(format string, args ...any) *meta.Error {
	return oauthErr(http.StatusBadRequest, meta.ErrInvalidRequest, format, args...)
}

func errInvalidClient(format string, args ...any) *meta.Error {
	return oauthErr(http.StatusUnauthorized, meta.ErrInvalidClient, format, args...)
}

func errInvalidGrant(format string, args ...any) *meta.Error {
	return oauthErr(http.StatusBadRequest, meta.ErrInvalidGrant, format, args...)
}

func errInvalidTarget(format string, args ...any) *meta.Error {
	return oauthErr(http.StatusBadRequest, meta.ErrInvalidTarget, format, args...)
}

func errInvalidScope(format string, args ...any) *meta.Error {
	return oauthErr(http.StatusBadRequest, meta.ErrInvalidScope, format, args...)
}

func errUnauthorizedClient(format string, args ...any) *meta.Error {
	return oauthErr(http.StatusBadRequest, meta.ErrUnauthorizedClient, format, args...)
}

func errServer(err error) *meta.Error {
	return &meta.Error{Code: meta.ErrServerError, Description: "internal error", StatusCode: http.StatusInternalServerError}
}

// asOAuthError converts any error to a *meta.Error; errors that are not
// OAuth errors become server_error (their text is logged, not sent).
func asOAuthError(err error) *meta.Error {
	var oe *meta.Error
	if errors.As(err, &oe) {
		if oe.StatusCode == 0 {
			oe.StatusCode = http.StatusBadRequest
		}
		return oe
	}
	return errServer(err)
}

// writeJSON writes v as a JSON response that must not be cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeError writes an OAuth error response (RFC 6749 §5.2). An
// invalid_client after HTTP Basic authentication carries a Basic
// challenge.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	oe := asOAuthError(err)
	if oe.Code == meta.ErrServerError {
		s.log.ErrorContext(r.Context(), "oauth: internal error", "path", r.URL.Path, "err", err)
	} else {
		s.log.DebugContext(r.Context(), "oauth: refused", "path", r.URL.Path, "error", oe.Code, "description", oe.Description)
	}
	if oe.StatusCode == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+s.issuer+`"`)
	}
	writeJSON(w, oe.StatusCode, oe)
}

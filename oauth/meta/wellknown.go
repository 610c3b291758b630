package meta

import (
	"fmt"
	"net/url"
	"strings"
)

// splitForWellKnown parses an absolute http(s) URL and returns its origin
// ("scheme://host[:port]"), its path without trailing slashes ("" for the
// root) and its query (with "?" prefix, or "").
func splitForWellKnown(raw string) (origin, path, query string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", "", fmt.Errorf("well-known URL: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", "", "", fmt.Errorf("well-known URL: %q: scheme must be https or http", raw)
	}
	if u.Host == "" {
		return "", "", "", fmt.Errorf("well-known URL: %q: missing host", raw)
	}
	if u.User != nil {
		return "", "", "", fmt.Errorf("well-known URL: %q: must not contain user info", raw)
	}
	origin = strings.ToLower(u.Scheme) + "://" + u.Host
	path = strings.TrimRight(u.EscapedPath(), "/")
	if u.RawQuery != "" {
		query = "?" + u.RawQuery
	}
	return origin, path, query, nil
}

// ProtectedResourceMetadataURLs returns the well-known URLs at which the
// protected resource metadata for resource may be found, in the order MCP
// clients must try them: first with the resource's path inserted after the
// well-known prefix (RFC 9728 §3.1), then at the root. If the resource has
// no path only the root URL is returned.
//
// For "https://example.com/public/mcp" it returns
// "https://example.com/.well-known/oauth-protected-resource/public/mcp" and
// "https://example.com/.well-known/oauth-protected-resource".
func ProtectedResourceMetadataURLs(resource string) ([]string, error) {
	return wellKnownURLs(resource, WellKnownProtectedResource)
}

// ProtectedResourceMetadataURL returns the RFC 9728 §3.1 well-known URL for
// resource (path inserted), which is what a resource server serves.
func ProtectedResourceMetadataURL(resource string) (string, error) {
	urls, err := ProtectedResourceMetadataURLs(resource)
	if err != nil {
		return "", err
	}
	return urls[0], nil
}

// AuthorizationServerMetadataURL returns the RFC 8414 §3.1 metadata URL for
// issuer: "/.well-known/oauth-authorization-server" inserted between the
// host and the path.
func AuthorizationServerMetadataURL(issuer string) (string, error) {
	origin, path, query, err := splitForWellKnown(issuer)
	if err != nil {
		return "", err
	}
	return origin + "/.well-known/" + WellKnownAuthorizationServer + path + query, nil
}

// AuthorizationServerMetadataURLs returns the URLs at which metadata for
// issuer must be looked up, in the order of the MCP authorization
// specification:
//
// With a path ("https://auth.example.com/tenant1"):
//  1. https://auth.example.com/.well-known/oauth-authorization-server/tenant1
//  2. https://auth.example.com/.well-known/openid-configuration/tenant1
//  3. https://auth.example.com/tenant1/.well-known/openid-configuration
//
// Without a path ("https://auth.example.com"):
//  1. https://auth.example.com/.well-known/oauth-authorization-server
//  2. https://auth.example.com/.well-known/openid-configuration
func AuthorizationServerMetadataURLs(issuer string) ([]string, error) {
	origin, path, query, err := splitForWellKnown(issuer)
	if err != nil {
		return nil, err
	}
	if path == "" {
		return []string{
			origin + "/.well-known/" + WellKnownAuthorizationServer + query,
			origin + "/.well-known/" + WellKnownOpenIDConfiguration + query,
		}, nil
	}
	return []string{
		origin + "/.well-known/" + WellKnownAuthorizationServer + path + query,
		origin + "/.well-known/" + WellKnownOpenIDConfiguration + path + query,
		origin + path + "/.well-known/" + WellKnownOpenIDConfiguration + query,
	}, nil
}

func wellKnownURLs(raw, suffix string) ([]string, error) {
	origin, path, query, err := splitForWellKnown(raw)
	if err != nil {
		return nil, err
	}
	root := origin + "/.well-known/" + suffix
	if path == "" {
		return []string{root + query}, nil
	}
	return []string{root + path + query, root}, nil
}

// Origin returns the "scheme://host[:port]" origin of an absolute URL, with
// the scheme and host lower-cased and default ports removed.
func Origin(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("origin: %w", err)
	}
	if u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("origin: %q is not an absolute URL", raw)
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}

// Package inventory is the identity inventory of mcpgate: the graph of
// users, clients, trusted identity providers, upstream servers and their
// tools, per-user upstream credentials, grants, sessions and tasks, and
// the execution paths user → client → session → upstream → credential
// that connect them.
//
// It also detects change: a client whose metadata document changes in
// its redirect URIs or keys, and an upstream tool whose definition
// changes after approval, are flagged and, when configured, blocked until
// an administrator approves them again. Revoker revokes an identity in
// one place.
//
// The package knows nothing of HTTP or MCP sessions: the authorization
// server and the gateway feed it (RecordClientMetadata, TouchClient,
// RecordTools, LiveSource) and consult it (IsClientBlocked,
// IsToolBlocked, Revoker.IsRevoked). Events for the audit log go to
// Options.OnEvent.
package inventory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// Event kinds passed to Options.OnEvent and RevokerOptions.OnEvent.
const (
	EventClientFirstSeen       = "client.first_seen"
	EventClientMetadataChanged = "client.metadata_changed"
	EventClientMetadataUpdated = "client.metadata_updated"
	EventClientReverted        = "client.metadata_reverted"
	EventClientApproved        = "client.approved"
	// EventClientKeysFirstSeen records the first key set of a client seen
	// behind its jwks_uri, or the first registered keys of a client
	// without a metadata document (pre-registered): the baseline, trusted
	// on first use.
	EventClientKeysFirstSeen = "client.keys_first_seen"
	// EventClientKeysChanged records keys (behind jwks_uri, or registered)
	// that differ from the approved ones, or a client authenticating with
	// a key that is not approved; OldDigest and NewDigest hold the approved
	// and current thumbprints, comma-separated.
	EventClientKeysChanged = "client.keys_changed"
	// EventClientKeysReverted records keys back to the approved ones.
	EventClientKeysReverted = "client.keys_reverted"
	EventToolFirstSeen      = "tool.first_seen"
	EventToolNew            = "tool.new"
	EventToolChanged        = "tool.changed"
	EventToolReverted       = "tool.reverted"
	EventToolRemoved        = "tool.removed"
	EventToolRestored       = "tool.restored"
	EventToolApproved       = "tool.approved"
	EventRevoked            = "revocation"
	EventRevocationLifted   = "revocation.lifted"
)

// Event is a change the inventory saw or made, for the audit log.
type Event struct {
	// Time is when it happened.
	Time time.Time
	// Kind is one of the Event* constants.
	Kind string
	// Client, Upstream, Tool and User name the object concerned (those
	// that apply).
	Client, Upstream, Tool, User string
	// By is who made the change (approvals, revocations).
	By string
	// OldDigest and NewDigest are the fingerprints before and after, for
	// metadata documents and tool definitions.
	OldDigest, NewDigest string
	// Flagged reports that the object now differs from what was approved;
	// Blocked that it is refused until approved again.
	Flagged, Blocked bool
	// Pending reports a tool that was never approved: first seen after its
	// upstream's baseline with Options.HoldNewTools (EventToolNew), or
	// changed while still awaiting its first approval.
	Pending bool
	// Detail is a human-readable summary (never contains secrets).
	Detail string
	// Revocation is set for EventRevoked: the outcome of every step.
	Revocation *Result
}

// Options configure an Inventory. The zero value flags changes but
// blocks nothing.
type Options struct {
	// BlockChangedClients makes IsClientBlocked report true for a client
	// whose redirect URIs or keys changed since approval.
	BlockChangedClients bool
	// BlockChangedTools makes IsToolBlocked report true for a tool whose
	// definition changed since approval.
	BlockChangedTools bool
	// HoldNewTools makes a tool first seen after its upstream's baseline
	// pending: it is recorded unapproved, and IsToolBlocked reports true
	// for it until ApproveTool. The baseline is the first listing of an
	// upstream that has no tool record at all, recorded by this Inventory
	// (every tool in it is approved on sight); after that listing, and
	// whenever the store already holds records for the upstream, every
	// tool not yet recorded is pending. Without HoldNewTools every new
	// tool is approved on first sight.
	HoldNewTools bool
	// OnEvent receives every change; it is called synchronously and must
	// not block for long. Nil drops events.
	OnEvent func(Event)
	// SeenResolution is how stale a last-seen time may get before
	// TouchClient or RecordTools writes it again; default 1 minute.
	SeenResolution time.Duration
	// CacheTTL bounds how long IsClientBlocked and IsToolBlocked may
	// answer from memory before reading the store again (approvals made
	// by another process take effect within it); default 1 second.
	// Changes made through this Inventory take effect at once.
	CacheTTL time.Duration
	// Now overrides the clock (tests).
	Now func() time.Time
}

// Inventory records and reports the identity inventory.
type Inventory struct {
	ids  store.Store
	st   store.InventoryStore
	opts Options

	// mu serializes read-modify-write of records in this process.
	mu sync.Mutex
	// baselined holds the upstreams whose tool list this Inventory has
	// recorded at least once (guarded by mu).
	baselined map[string]bool

	cacheMu sync.Mutex
	cache   map[string]cached    // "client\x00id" or "tool\x00upstream\x00name"
	touched map[string]time.Time // client id -> last-seen time written

	liveMu sync.Mutex
	live   []LiveSource
}

type cached struct {
	flagged bool // clients: changed; tools: blocked
	at      time.Time
}

// New returns an Inventory over the identity store ids (users, clients,
// tokens; it should implement store.GrantLister for grants to be listed)
// and the inventory store st (often the same database).
func New(ids store.Store, st store.InventoryStore, opts *Options) (*Inventory, error) {
	if ids == nil || st == nil {
		return nil, errors.New("inventory: nil store")
	}
	inv := &Inventory{ids: ids, st: st, cache: map[string]cached{}, touched: map[string]time.Time{}, baselined: map[string]bool{}}
	if opts != nil {
		inv.opts = *opts
	}
	if inv.opts.SeenResolution <= 0 {
		inv.opts.SeenResolution = time.Minute
	}
	if inv.opts.CacheTTL <= 0 {
		inv.opts.CacheTTL = time.Second
	}
	if inv.opts.Now == nil {
		inv.opts.Now = time.Now
	}
	return inv, nil
}

func (inv *Inventory) now() time.Time { return inv.opts.Now() }

func (inv *Inventory) emit(e Event) {
	if inv.opts.OnEvent != nil {
		inv.opts.OnEvent(e)
	}
}

func (inv *Inventory) setCached(key string, flagged bool) {
	inv.cacheMu.Lock()
	inv.cache[key] = cached{flagged: flagged, at: inv.now()}
	inv.cacheMu.Unlock()
}

// flagged answers from the cache or loads with load and caches the
// answer. Store errors are returned, not cached.
func (inv *Inventory) flagged(key string, load func() (bool, error)) (bool, error) {
	inv.cacheMu.Lock()
	c, ok := inv.cache[key]
	inv.cacheMu.Unlock()
	if ok && inv.now().Sub(c.at) < inv.opts.CacheTTL {
		return c.flagged, nil
	}
	f, err := load()
	if err != nil {
		return false, err
	}
	inv.setCached(key, f)
	return f, nil
}

func clientKey(id string) string           { return "client\x00" + id }
func toolKey(upstream, name string) string { return "tool\x00" + upstream + "\x00" + name }

// Change describes what RecordClientMetadata or RecordClientKeys found.
type Change struct {
	// ClientID is the client.
	ClientID string
	// FirstSeen reports that this document (or, for RecordClientKeys,
	// this key set) became the approved baseline: trust on first use,
	// recorded and audited.
	FirstSeen bool
	// DocumentChanged reports that the document differs from the last
	// one recorded (in any member; compared by the SHA-256 of its RFC
	// 8785 canonical JSON). KeysChanged reports that the key set differs
	// from the last one recorded.
	DocumentChanged, KeysChanged bool
	// Flagged reports that redirect URIs or keys (inline, or behind
	// jwks_uri) differ from the approved baseline; Blocked that the client
	// is refused until ApproveClient.
	Flagged, Blocked bool
	// AddedRedirectURIs, RemovedRedirectURIs, AddedKeys and RemovedKeys
	// compare the document with the approved baseline (keys are RFC 7638
	// thumbprints).
	AddedRedirectURIs, RemovedRedirectURIs []string
	AddedKeys, RemovedKeys                 []string
	// AddedRemoteKeys and RemovedRemoteKeys compare the keys behind
	// jwks_uri with the approved ones.
	AddedRemoteKeys, RemovedRemoteKeys []string
	// JWKSURIChanged reports a different jwks_uri than approved.
	JWKSURIChanged bool
}

// RecordClientMetadata records the metadata document (or registration
// request) of a client, as fetched or received. The first document seen
// becomes the approved baseline. A later document whose redirect URIs,
// keys (jwks thumbprints) or jwks_uri differ from the baseline flags the
// client and, with Options.BlockChangedClients, blocks it until
// ApproveClient; a document that returns to the baseline clears the
// flag (unless the keys behind its jwks_uri still differ). Any change
// emits an event and is kept in the record's history. It also updates
// the client's last-seen time.
func (inv *Inventory) RecordClientMetadata(ctx context.Context, clientID string, doc []byte) (Change, error) {
	ch := Change{ClientID: clientID}
	if clientID == "" {
		return ch, errors.New("inventory: empty client id")
	}
	md, err := ParseClientMetadata(doc)
	if err != nil {
		return ch, fmt.Errorf("inventory: client %q: %w", clientID, err)
	}
	digest, err := DocumentDigest(doc)
	if err != nil {
		return ch, fmt.Errorf("inventory: client %q: %w", clientID, err)
	}
	now := inv.now()

	inv.mu.Lock()
	defer inv.mu.Unlock()
	rec, err := inv.st.GetClientRecord(ctx, clientID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		rec = &store.ClientRecord{ClientID: clientID, FirstSeen: now}
	case err != nil:
		return ch, fmt.Errorf("inventory: client %q: %w", clientID, err)
	}
	if rec.FirstSeen.IsZero() {
		rec.FirstSeen = now
	}
	oldDigest := rec.DocumentDigest
	ch.DocumentChanged = oldDigest != "" && oldDigest != digest
	if rec.MetadataDigest != "" {
		addHistory(rec, now, "redirect_uris", rec.RedirectURIs, md.RedirectURIs)
		addHistory(rec, now, "jwks", rec.KeyThumbprints, md.KeyThumbprints)
		addHistory(rec, now, "jwks_uri", nonEmpty(rec.JWKSURI), nonEmpty(md.JWKSURI))
		if ch.DocumentChanged {
			addHistory(rec, now, "document", []string{oldDigest}, []string{digest})
		}
	}
	rec.Metadata, rec.MetadataDigest, rec.DocumentDigest = string(doc), store.Digest(string(doc)), digest
	rec.RedirectURIs, rec.KeyThumbprints, rec.JWKSURI = md.RedirectURIs, md.KeyThumbprints, md.JWKSURI
	rec.LastSeen = now

	if rec.ApprovedAt.IsZero() {
		// First document: it is the baseline.
		ch.FirstSeen = true
		rec.ApprovedRedirectURIs, rec.ApprovedKeyThumbprints, rec.ApprovedJWKSURI = md.RedirectURIs, md.KeyThumbprints, md.JWKSURI
		rec.ApprovedDocumentDigest = digest
		rec.ApprovedAt, rec.ApprovedBy = now, ""
	} else if rec.ApprovedDocumentDigest == "" {
		// Recorded before documents were fingerprinted.
		rec.ApprovedDocumentDigest = digest
	}
	drift(rec, &ch)
	wasFlagged := rec.Changed
	rec.Changed = ch.Flagged
	if ch.Flagged && (!wasFlagged || ch.DocumentChanged) {
		rec.ChangedAt = now
	}
	ch.Blocked = ch.Flagged && inv.opts.BlockChangedClients
	if err := inv.st.PutClientRecord(ctx, rec); err != nil {
		return ch, fmt.Errorf("inventory: client %q: %w", clientID, err)
	}
	inv.setCached(clientKey(clientID), rec.Changed)
	inv.markTouched(clientID, now)

	ev := Event{Time: now, Client: clientID, OldDigest: oldDigest, NewDigest: digest, Flagged: ch.Flagged, Blocked: ch.Blocked}
	switch {
	case ch.FirstSeen:
		ev.Kind, ev.Detail = EventClientFirstSeen, fmt.Sprintf("first metadata of client %s recorded as approved baseline (trust on first use): document sha256 %s, redirect URIs %s, keys %s%s",
			clientID, digest, listOrNone(md.RedirectURIs), listOrNone(md.KeyThumbprints), jwksURIDetail(md.JWKSURI))
	case ch.Flagged && (!wasFlagged || ch.DocumentChanged):
		ev.Kind, ev.Detail = EventClientMetadataChanged, describeClientChange(ch)
	case wasFlagged && !ch.Flagged:
		ev.Kind, ev.Detail = EventClientReverted, fmt.Sprintf("metadata of client %s is back to its approved redirect URIs and keys", clientID)
	case ch.DocumentChanged:
		ev.Kind, ev.Detail = EventClientMetadataUpdated, fmt.Sprintf("metadata of client %s changed outside redirect URIs and keys: document sha256 %s, was %s (approved %s)", clientID, digest, oldDigest, rec.ApprovedDocumentDigest)
	}
	if ev.Kind != "" {
		inv.emit(ev)
	}
	return ch, nil
}

func jwksURIDetail(u string) string {
	if u == "" {
		return ""
	}
	return ", jwks_uri " + u
}

func describeClientChange(ch Change) string {
	s := fmt.Sprintf("metadata of client %s differs from its approved baseline:", ch.ClientID)
	add := func(what string, v []string) {
		if len(v) > 0 {
			s += fmt.Sprintf(" %s %q;", what, v)
		}
	}
	add("redirect URIs added", ch.AddedRedirectURIs)
	add("redirect URIs removed", ch.RemovedRedirectURIs)
	add("keys added", ch.AddedKeys)
	add("keys removed", ch.RemovedKeys)
	add("keys behind jwks_uri added", ch.AddedRemoteKeys)
	add("keys behind jwks_uri removed", ch.RemovedRemoteKeys)
	if ch.JWKSURIChanged {
		s += " jwks_uri changed;"
	}
	if ch.Blocked {
		s += " blocked until approved"
	} else {
		s += " flagged"
	}
	return s
}

// diff returns what is in b but not a, and in a but not b (inputs sorted
// or not; outputs sorted).
func diff(a, b []string) (added, removed []string) {
	for _, x := range b {
		if !slices.Contains(a, x) && !slices.Contains(added, x) {
			added = append(added, x)
		}
	}
	for _, x := range a {
		if !slices.Contains(b, x) && !slices.Contains(removed, x) {
			removed = append(removed, x)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	return added, removed
}

// TouchClient records that a client was seen now (a token issued or a
// request made with it). It writes at most once per
// Options.SeenResolution per client.
func (inv *Inventory) TouchClient(ctx context.Context, clientID string) error {
	if clientID == "" {
		return errors.New("inventory: empty client id")
	}
	now := inv.now()
	inv.cacheMu.Lock()
	last, ok := inv.touched[clientID]
	inv.cacheMu.Unlock()
	if ok && now.Sub(last) < inv.opts.SeenResolution {
		return nil // answered from memory: no store access on the hot path
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	rec, err := inv.st.GetClientRecord(ctx, clientID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		rec = &store.ClientRecord{ClientID: clientID, FirstSeen: now}
	case err != nil:
		return fmt.Errorf("inventory: client %q: %w", clientID, err)
	case now.Sub(rec.LastSeen) < inv.opts.SeenResolution:
		inv.markTouched(clientID, rec.LastSeen)
		return nil
	}
	rec.LastSeen = now
	if err := inv.st.PutClientRecord(ctx, rec); err != nil {
		return fmt.Errorf("inventory: client %q: %w", clientID, err)
	}
	inv.markTouched(clientID, now)
	return nil
}

func (inv *Inventory) markTouched(clientID string, at time.Time) {
	inv.cacheMu.Lock()
	inv.touched[clientID] = at
	inv.cacheMu.Unlock()
}

// ApproveClient makes the client's latest metadata its approved baseline
// and clears the flag. by names the approver.
func (inv *Inventory) ApproveClient(ctx context.Context, clientID, by string) error {
	now := inv.now()
	inv.mu.Lock()
	defer inv.mu.Unlock()
	rec, err := inv.st.GetClientRecord(ctx, clientID)
	if err != nil {
		return fmt.Errorf("inventory: approving client %q: %w", clientID, err)
	}
	was := rec.Changed
	var before, after []string
	before = append(before, rec.ApprovedKeyThumbprints...)
	before = append(before, rec.ApprovedRemoteKeyThumbprints...)
	rec.ApprovedRedirectURIs, rec.ApprovedKeyThumbprints, rec.ApprovedJWKSURI = rec.RedirectURIs, rec.KeyThumbprints, rec.JWKSURI
	rec.ApprovedDocumentDigest = rec.DocumentDigest
	if !rec.RemoteKeysFetchedAt.IsZero() {
		rec.ApprovedRemoteKeyThumbprints, rec.RemoteKeysApprovedAt = rec.RemoteKeyThumbprints, now
	}
	after = append(after, rec.ApprovedKeyThumbprints...)
	after = append(after, rec.ApprovedRemoteKeyThumbprints...)
	rec.Changed, rec.ApprovedAt, rec.ApprovedBy = false, now, by
	appendHistory(rec, store.ClientChange{At: now, What: "approved", Old: before, New: after, By: by})
	if err := inv.st.PutClientRecord(ctx, rec); err != nil {
		return fmt.Errorf("inventory: approving client %q: %w", clientID, err)
	}
	inv.setCached(clientKey(clientID), false)
	detail := fmt.Sprintf("client %s approved: redirect URIs %s; keys %s", clientID, listOrNone(rec.RedirectURIs), listOrNone(rec.KeyThumbprints))
	if !rec.RemoteKeysFetchedAt.IsZero() {
		detail += fmt.Sprintf("; keys behind jwks_uri %s: %s", rec.RemoteKeysURI, listOrNone(rec.RemoteKeyThumbprints))
	}
	if rec.DocumentDigest != "" {
		detail += "; document sha256 " + rec.DocumentDigest
	}
	if !was {
		detail += " (it was not flagged)"
	}
	inv.emit(Event{Time: now, Kind: EventClientApproved, Client: clientID, By: by, NewDigest: rec.DocumentDigest, Detail: detail})
	return nil
}

// IsClientBlocked reports whether the client must be refused because its
// metadata changed since approval and Options.BlockChangedClients is set.
// Unknown clients are not blocked. If the store cannot be read it fails
// closed (true) while blocking is configured.
func (inv *Inventory) IsClientBlocked(ctx context.Context, clientID string) bool {
	if !inv.opts.BlockChangedClients {
		return false
	}
	f, err := inv.flagged(clientKey(clientID), func() (bool, error) {
		rec, err := inv.st.GetClientRecord(ctx, clientID)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return rec.Changed, nil
	})
	return err != nil || f
}

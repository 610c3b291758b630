package inventory

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/store"
)

// MaxHistory bounds the changes kept in a client record's history (the
// oldest are dropped first).
const MaxHistory = 32

// DocumentDigest returns the hex SHA-256 of the RFC 8785 canonical JSON
// of a metadata document, so that member order and whitespace do not
// matter and every member does.
func DocumentDigest(doc []byte) (string, error) {
	v := jsontext.Value(slices.Clone(doc))
	if err := v.Canonicalize(); err != nil {
		return "", fmt.Errorf("metadata document: %w", err)
	}
	sum := sha256.Sum256(v)
	return hex.EncodeToString(sum[:]), nil
}

// KeySetThumbprints returns the thumbprints (see KeyThumbprint) of the
// keys of a JWK Set ({"keys": [...]}), sorted, without duplicates.
func KeySetThumbprints(jwks []byte) ([]string, error) {
	if len(jwks) > MaxDocumentSize {
		return nil, fmt.Errorf("key set is %d bytes, more than %d", len(jwks), MaxDocumentSize)
	}
	var set struct {
		Keys []jsontext.Value `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	var out []string
	for i, k := range set.Keys {
		tp, err := KeyThumbprint(k)
		if err != nil {
			return nil, fmt.Errorf("key set: key %d: %w", i, err)
		}
		if !slices.Contains(out, tp) {
			out = append(out, tp)
		}
	}
	slices.Sort(out)
	return out, nil
}

// ClientKeys is a key set a client can sign with, as the authorization
// server verified a client assertion against it (or re-fetched it).
type ClientKeys struct {
	// ClientID is the client.
	ClientID string
	// JWKSURI is where the keys were fetched from; "" for keys registered
	// with the client (inline jwks, or a pre-registered client's keys).
	JWKSURI string
	// JWKS is the key set (a JSON JWK Set) as registered or fetched.
	JWKS []byte
	// Used is the RFC 7638 thumbprint of the key that verified a client
	// assertion; "" for a re-check without use.
	Used string
}

// RecordClientKeys records a key set a client can sign with, and checks
// the key that authenticated it.
//
// Keys behind a jwks_uri are compared with the approved keys behind it:
// the first set fetched becomes the baseline (trust on first use,
// EventClientKeysFirstSeen); a later set that differs flags the client
// (EventClientKeysChanged) and, with Options.BlockChangedClients, blocks
// it until ApproveClient. Registered keys (k.JWKSURI == "") are compared
// with the approved keys of the client's metadata; a client without a
// recorded document (pre-registered) gets its first registered keys as
// baseline.
//
// k.Used must be a key of k.JWKS; a key set that does not contain it is
// refused with an error. Used keys are thereby always fingerprinted: a
// key that is not approved flags the client like any other key change.
func (inv *Inventory) RecordClientKeys(ctx context.Context, k ClientKeys) (Change, error) {
	ch := Change{ClientID: k.ClientID}
	if k.ClientID == "" {
		return ch, errors.New("inventory: empty client id")
	}
	tps, err := KeySetThumbprints(k.JWKS)
	if err != nil {
		return ch, fmt.Errorf("inventory: client %q: %w", k.ClientID, err)
	}
	if k.Used != "" && !slices.Contains(tps, k.Used) {
		return ch, fmt.Errorf("inventory: client %q: the key %s that verified its assertion is not in the key set reported", k.ClientID, k.Used)
	}
	now := inv.now()

	inv.mu.Lock()
	defer inv.mu.Unlock()
	rec, err := inv.st.GetClientRecord(ctx, k.ClientID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		rec = &store.ClientRecord{ClientID: k.ClientID, FirstSeen: now}
	case err != nil:
		return ch, fmt.Errorf("inventory: client %q: %w", k.ClientID, err)
	}
	if rec.FirstSeen.IsZero() {
		rec.FirstSeen = now
	}
	wasFlagged := rec.Changed
	var what string
	var approved []string
	if k.JWKSURI != "" {
		what = "keys behind jwks_uri " + k.JWKSURI
		ch.KeysChanged = !rec.RemoteKeysFetchedAt.IsZero() && (!slices.Equal(rec.RemoteKeyThumbprints, tps) || rec.RemoteKeysURI != k.JWKSURI)
		if ch.KeysChanged {
			addHistory(rec, now, "jwks_uri keys", rec.RemoteKeyThumbprints, tps)
		}
		rec.RemoteKeysURI, rec.RemoteKeyThumbprints, rec.RemoteKeysFetchedAt = k.JWKSURI, tps, now
		if rec.RemoteKeysApprovedAt.IsZero() {
			ch.FirstSeen = true
			rec.ApprovedRemoteKeyThumbprints, rec.RemoteKeysApprovedAt = tps, now
		}
		approved = rec.ApprovedRemoteKeyThumbprints
	} else {
		what = "registered keys"
		if rec.ApprovedAt.IsZero() {
			// No document recorded (a pre-registered client): its
			// registered keys are the baseline.
			ch.FirstSeen = true
			rec.KeyThumbprints, rec.ApprovedKeyThumbprints = tps, tps
			rec.ApprovedAt, rec.ApprovedBy = now, ""
		} else if !slices.Equal(rec.KeyThumbprints, tps) {
			ch.KeysChanged = true
			addHistory(rec, now, "jwks", rec.KeyThumbprints, tps)
			rec.KeyThumbprints = tps
		}
		approved = rec.ApprovedKeyThumbprints
	}
	drift(rec, &ch)
	rec.Changed = ch.Flagged
	if ch.Flagged && (!wasFlagged || ch.KeysChanged) {
		rec.ChangedAt = now
	}
	ch.Blocked = ch.Flagged && inv.opts.BlockChangedClients
	unapproved := k.Used != "" && !slices.Contains(approved, k.Used)

	dirty := ch.FirstSeen || ch.KeysChanged || wasFlagged != rec.Changed || now.Sub(rec.LastSeen) >= inv.opts.SeenResolution
	if k.JWKSURI != "" && !ch.KeysChanged && !ch.FirstSeen && k.Used == "" {
		dirty = true // a re-check: record when the keys were last fetched
	}
	if dirty {
		rec.LastSeen = now
		if err := inv.st.PutClientRecord(ctx, rec); err != nil {
			return ch, fmt.Errorf("inventory: client %q: %w", k.ClientID, err)
		}
		inv.markTouched(k.ClientID, now)
	}
	inv.setCached(clientKey(k.ClientID), rec.Changed)

	ev := Event{Time: now, Client: k.ClientID, OldDigest: strings.Join(approved, ","), NewDigest: strings.Join(tps, ","), Flagged: ch.Flagged, Blocked: ch.Blocked}
	switch {
	case ch.FirstSeen:
		ev.Kind, ev.Detail = EventClientKeysFirstSeen, fmt.Sprintf("%s of client %s recorded as approved baseline (trust on first use): %s", what, k.ClientID, listOrNone(tps))
	case ch.Flagged && (!wasFlagged || ch.KeysChanged):
		ev.Kind, ev.Detail = EventClientKeysChanged, describeKeyChange(k.ClientID, what, approved, tps, k.Used, unapproved, ch.Blocked)
	case wasFlagged && !ch.Flagged:
		ev.Kind, ev.Detail = EventClientKeysReverted, fmt.Sprintf("%s of client %s are back to the approved keys %s", what, k.ClientID, listOrNone(tps))
	}
	if ev.Kind != "" {
		inv.emit(ev)
	}
	return ch, nil
}

func describeKeyChange(clientID, what string, approved, current []string, used string, unapproved, blocked bool) string {
	added, removed := diff(approved, current)
	s := fmt.Sprintf("%s of client %s differ from the approved keys: old %s; new %s;", what, clientID, listOrNone(approved), listOrNone(current))
	if len(added) > 0 {
		s += fmt.Sprintf(" added %s;", strings.Join(added, ", "))
	}
	if len(removed) > 0 {
		s += fmt.Sprintf(" removed %s;", strings.Join(removed, ", "))
	}
	if unapproved {
		s += fmt.Sprintf(" a client assertion was signed with the unapproved key %s;", used)
	}
	if blocked {
		s += " blocked until approved (mcpgate inventory approve-client " + clientID + ")"
	} else {
		s += " flagged"
	}
	return s
}

// drift compares rec's current trust objects with its approved baseline
// and sets ch's differences and Flagged.
func drift(rec *store.ClientRecord, ch *Change) {
	if !rec.ApprovedAt.IsZero() {
		ch.AddedRedirectURIs, ch.RemovedRedirectURIs = diff(rec.ApprovedRedirectURIs, rec.RedirectURIs)
		ch.AddedKeys, ch.RemovedKeys = diff(rec.ApprovedKeyThumbprints, rec.KeyThumbprints)
		ch.JWKSURIChanged = rec.ApprovedJWKSURI != rec.JWKSURI
	}
	if !rec.RemoteKeysApprovedAt.IsZero() {
		ch.AddedRemoteKeys, ch.RemovedRemoteKeys = diff(rec.ApprovedRemoteKeyThumbprints, rec.RemoteKeyThumbprints)
	}
	ch.Flagged = len(ch.AddedRedirectURIs)+len(ch.RemovedRedirectURIs)+len(ch.AddedKeys)+len(ch.RemovedKeys)+
		len(ch.AddedRemoteKeys)+len(ch.RemovedRemoteKeys) > 0 || ch.JWKSURIChanged
}

// addHistory records a change of one trust object if old and new differ.
func addHistory(rec *store.ClientRecord, at time.Time, what string, old, new []string) {
	if slices.Equal(old, new) {
		return
	}
	appendHistory(rec, store.ClientChange{At: at, What: what, Old: slices.Clone(old), New: slices.Clone(new)})
}

func appendHistory(rec *store.ClientRecord, c store.ClientChange) {
	rec.History = append(rec.History, c)
	if n := len(rec.History) - MaxHistory; n > 0 {
		rec.History = slices.Delete(rec.History, 0, n)
	}
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func listOrNone(v []string) string {
	if len(v) == 0 {
		return "(none)"
	}
	return strings.Join(v, ", ")
}

// RecheckOptions bound one round of RecheckClients.
type RecheckOptions struct {
	// SeenWithin selects the clients seen (metadata fetched, keys used)
	// within this long; 0 means 30 days.
	SeenWithin time.Duration
	// MaxClients bounds how many clients a round checks, the most
	// recently seen first; 0 means 1000.
	MaxClients int
	// Timeout bounds the whole round; 0 means 2 minutes. Clients not
	// reached in time are counted as skipped.
	Timeout time.Duration
}

// RecheckResult is what a round of RecheckClients did.
type RecheckResult struct {
	// Checked is how many clients were checked without error; Failed how
	// many checks failed (Errors holds the errors); Skipped how many
	// selected clients the round's deadline left unchecked.
	Checked, Failed, Skipped int
	Errors                   []error
}

// RecheckClients calls check for every client seen within o.SeenWithin,
// the most recently seen first, at most o.MaxClients of them, until
// o.Timeout. check re-fetches the client's trust objects (its metadata
// document, the keys behind its jwks_uri) and records them with
// RecordClientMetadata and RecordClientKeys, which flag or block changes.
func (inv *Inventory) RecheckClients(ctx context.Context, check func(ctx context.Context, clientID string) error, o *RecheckOptions) (RecheckResult, error) {
	var res RecheckResult
	var opts RecheckOptions
	if o != nil {
		opts = *o
	}
	if opts.SeenWithin <= 0 {
		opts.SeenWithin = 30 * 24 * time.Hour
	}
	if opts.MaxClients <= 0 {
		opts.MaxClients = 1000
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	recs, err := inv.st.ListClientRecords(ctx)
	if err != nil {
		return res, fmt.Errorf("inventory: re-check: %w", err)
	}
	since := inv.now().Add(-opts.SeenWithin)
	recs = slices.DeleteFunc(recs, func(r *store.ClientRecord) bool { return r.LastSeen.Before(since) })
	slices.SortStableFunc(recs, func(a, b *store.ClientRecord) int { return b.LastSeen.Compare(a.LastSeen) })
	if len(recs) > opts.MaxClients {
		recs = recs[:opts.MaxClients]
	}
	for i, r := range recs {
		if ctx.Err() != nil {
			res.Skipped = len(recs) - i
			break
		}
		if err := check(ctx, r.ClientID); err != nil {
			res.Failed++
			res.Errors = append(res.Errors, fmt.Errorf("client %s: %w", r.ClientID, err))
			continue
		}
		res.Checked++
	}
	return res, nil
}

// RunRecheck runs RecheckClients every interval until ctx is done,
// telling report (if not nil) the outcome of each round.
func (inv *Inventory) RunRecheck(ctx context.Context, interval time.Duration, check func(ctx context.Context, clientID string) error, o *RecheckOptions, report func(RecheckResult, error)) {
	if interval <= 0 {
		interval = time.Hour
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		res, err := inv.RecheckClients(ctx, check, o)
		if report != nil {
			report(res, err)
		}
	}
}

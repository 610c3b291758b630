package gateway

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/internal/jsonraw"
	"github.com/mcpgate/mcpgate/internal/keyfile"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
)

// The result of a task that ended is kept with its record, so that the
// owner can fetch it from any session of theirs, after a gateway restart
// and after the upstream forgot the task: the watcher fetches tasks/result
// once when it sees a terminal status (never on input_required, which
// would consume the request meant for the client) and stores it sealed
// with AES-256-GCM, bound to the task id and its owner, with its SHA-256
// digest (audit.Digest). A result larger than maxStoredTaskResult keeps
// only its digest and size. Results go when the task's record expires.

const (
	// TaskResultKeyFile is the file in the data directory holding the key
	// that seals stored task results.
	TaskResultKeyFile = "task-results.key"
	// maxStoredTaskResult bounds the size of a stored task result: 4 MiB.
	maxStoredTaskResult = 4 << 20
	// taskResultSealVersion is the first byte of a sealed result.
	taskResultSealVersion = 1
)

// resultSealer seals task results with the key in a key file (see
// keyfile.LoadOrCreate), read or created on first use; "" means a random
// key that ends with the process.
type resultSealer struct {
	keyPath string

	once sync.Once
	aead cipher.AEAD
	err  error
}

func (s *resultSealer) key() (cipher.AEAD, error) {
	s.once.Do(func() {
		if s.aead, s.err = keyfile.AESGCM(s.keyPath); s.err != nil {
			s.err = fmt.Errorf("task result key: %w", s.err)
		}
	})
	return s.aead, s.err
}

// resultAAD binds a sealed result to its task and owner.
func resultAAD(taskID, principal string) []byte {
	b := []byte("mcpgate task result\x00")
	b = binary.AppendUvarint(b, uint64(len(taskID)))
	b = append(b, taskID...)
	b = binary.AppendUvarint(b, uint64(len(principal)))
	return append(b, principal...)
}

// seal returns plain sealed for the task of principal.
func (s *resultSealer) seal(taskID, principal string, plain []byte) ([]byte, error) {
	aead, err := s.key()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plain)+aead.Overhead())
	out[0] = taskResultSealVersion
	rand.Read(out[1:])
	return aead.Seal(out, out[1:], plain, resultAAD(taskID, principal)), nil
}

// open returns what seal sealed for the same task and principal.
func (s *resultSealer) open(taskID, principal string, sealed []byte) ([]byte, error) {
	aead, err := s.key()
	if err != nil {
		return nil, err
	}
	n := aead.NonceSize()
	if len(sealed) < 1+n+aead.Overhead() || sealed[0] != taskResultSealVersion {
		return nil, errors.New("sealed task result: bad format")
	}
	plain, err := aead.Open(nil, sealed[1:1+n], sealed[1+n:], resultAAD(taskID, principal))
	if err != nil {
		return nil, errors.New("sealed task result: does not open with this key")
	}
	return plain, nil
}

// keepResult records res, the tasks/result answer of a task that ended
// ({"result": ...} or {"error": ...}), in rec (not yet written to the
// store): sealed when at most g.maxTaskResult bytes, its digest and size
// always. The digest is that of the result (or error object) alone, as
// its owner receives it from the upstream.
func (g *Gateway) keepResult(rec *store.GatewayTask, res jsontext.Value) error {
	inner := valueOf(res, "result")
	if inner == nil {
		inner = valueOf(res, "error")
	}
	digest, err := audit.Digest(inner)
	if err != nil {
		return fmt.Errorf("digesting the task result: %w", err)
	}
	rec.ResultDigest, rec.ResultSize, rec.ResultSealed = digest, int64(len(res)), nil
	if int64(len(res)) > g.maxTaskResult() {
		return nil
	}
	sealed, err := g.results.seal(rec.ID, rec.Principal, res)
	if err != nil {
		return err
	}
	rec.ResultSealed = sealed
	return nil
}

// maxTaskResult is the bound of a stored task result.
func (g *Gateway) maxTaskResult() int64 {
	if g.storedResultMax > 0 {
		return g.storedResultMax
	}
	return maxStoredTaskResult
}

// wrapValue returns {"name": v}.
func wrapValue(name string, v jsontext.Value) (jsontext.Value, error) {
	var o jsonraw.Object
	if err := o.Set(name, v); err != nil {
		return nil, err
	}
	return o.Bytes(), nil
}

// jsonrpcErrorObject returns the JSON-RPC error object of e.
func jsonrpcErrorObject(e *jsonrpc.Error) (jsontext.Value, error) {
	var o jsonraw.Object
	if err := o.Set("code", jsontext.Value(strconv.FormatInt(e.Code, 10))); err != nil {
		return nil, err
	}
	if err := o.SetString("message", e.Message); err != nil {
		return nil, err
	}
	if len(e.Data) > 0 {
		if err := o.Set("data", e.Data); err != nil {
			return nil, err
		}
	}
	return o.Bytes(), nil
}

// storedResult answers tasks/result from the record of a task that ended
// and whose result the gateway kept; ok is false when it kept none.
func (g *Gateway) storedResult(rec *store.GatewayTask) (res jsontext.Value, ok bool, err error) {
	if rec.ResultDigest == "" || !isTerminal(rec.Status) {
		return nil, false, nil
	}
	if rec.ResultSealed == nil {
		return nil, true, jsonrpc.NewError(jsonrpc.CodeInternalError,
			"the task's result (%d bytes, SHA-256 %s) was larger than the gateway keeps (%d bytes), and its upstream no longer has it",
			rec.ResultSize, rec.ResultDigest, g.maxTaskResult())
	}
	plain, err := g.results.open(rec.ID, rec.Principal, rec.ResultSealed)
	if err != nil {
		return nil, true, jsonrpc.NewError(jsonrpc.CodeInternalError, "the task's stored result cannot be read: %v", err)
	}
	if e := valueOf(plain, "error"); e.Kind() == '{' {
		code, _ := strconv.ParseInt(string(valueOf(e, "code")), 10, 64)
		return nil, true, &jsonrpc.Error{Code: code, Message: stringOf(e, "message"), Data: valueOf(e, "data")}
	}
	return valueOf(plain, "result"), true, nil
}

// fetchResult fetches the result of a task that ended from its upstream
// session and keeps it in rec (not yet written). A task that ended without
// a result (the upstream answers tasks/result with an error) keeps that
// error's JSON-RPC error object as its result, so that its owner gets the
// same answer later. It returns an error only when no answer came (the
// upstream could not be reached, the call timed out) or the answer could
// not be kept: the watcher then tries again (see pollWatched).
func (g *Gateway) fetchResult(ctx context.Context, cs *mcp.ClientSession, rec *store.GatewayTask) error {
	if isModernSession(cs) {
		return g.fetchModernResult(ctx, cs, rec) // modern_upstream_tasks.go
	}
	cctx, cancel := context.WithTimeout(ctx, watchCallTimeout)
	defer cancel()
	params, _ := withString(nil, "taskId", rec.UpstreamTaskID)
	res, err := cs.CallRaw(cctx, mcp.MethodTasksResult, params)
	if err != nil {
		var we *jsonrpc.Error
		if !errors.As(err, &we) {
			g.logger.Debug("task watcher: fetching a result", "task", rec.ID, "error", err)
			return err
		}
		res, err = jsonrpcErrorObject(we)
		if err != nil {
			return err
		}
		res, err = wrapValue("error", res)
	} else {
		res, err = wrapValue("result", res)
	}
	if err != nil {
		return err
	}
	if err := g.keepResult(rec, res); err != nil {
		g.logger.Warn("keeping a task result", "task", rec.ID, "error", err)
		return err
	}
	return nil
}

// recordResult writes the result fetchResult kept in rec, with an audit
// record (task.result) carrying its digest.
func (g *Gateway) recordResult(ctx context.Context, rec *store.GatewayTask) {
	if rec.ResultDigest == "" {
		return
	}
	if err := g.taskStore.PutGatewayTask(ctx, rec); err != nil {
		g.logger.Warn("recording a task result", "task", rec.ID, "error", err)
		return
	}
	_ = g.auditAppend(ctx, &audit.Record{User: rec.Principal, Client: rec.ClientID, Upstream: rec.Upstream,
		Action: "task.result", Target: rec.ID, Outcome: rec.Status, ResultDigest: rec.ResultDigest})
}

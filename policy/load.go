package policy

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// maxFileSize bounds one policy file.
const maxFileSize = 4 << 20

// Annotation keys with a meaning to mcpgate.
const (
	// AnnotationID names a policy: @id("no-shell").
	AnnotationID = "id"
	// AnnotationApproval on a permit makes a decision it takes part in
	// require human approval: @approval("required") or @approval.
	AnnotationApproval = "approval"
	// AnnotationReason gives the human sentence used in the decision's
	// reason: @reason("shell access is disabled").
	AnnotationReason = "reason"
)

// File is one policy source: a name used in positions and ids, and its text.
type File struct {
	Name    string
	Content []byte
	// key is the name used in the version hash: the path relative to the
	// directory it was found in, or the base name of a file named
	// directly, so that the version does not depend on how a path is
	// spelled. Empty means Name.
	key string
}

// compiledPolicy is one loaded policy statement.
type compiledPolicy struct {
	id       string // @id or file:line:col
	pos      string // file:line:col
	policy   *cedar.Policy
	forbid   bool
	approval bool
	// maxTaskTTL and maxConcurrentTasks are the task annotations (see
	// tasks.go); zero when absent.
	maxTaskTTL         time.Duration
	maxConcurrentTasks int
	reason             string
	desc               string // how reasons name it
	needs              *contextNeeds
	// principalAttrs are the principal attributes its conditions read.
	principalAttrs []string
	// principal and resource scope constraints that name an entity, for a
	// cheap exact pre-check (see requestScope.mayMatch).
	principalScope, resourceScope types.EntityUID
}

// requestScope holds the entities a request's principal and resource are
// "in": themselves and, in the mcpgate model, their only possible parent.
type requestScope struct {
	principal, principalParent types.EntityUID
	resource, resourceParent   types.EntityUID
}

// mayMatch reports whether p's principal and resource scopes can hold for
// the request. It is exact for the fixed mcpgate hierarchy (principal in
// IdP, resource in Upstream), so skipping a policy for which it is false
// changes neither the decision nor the diagnostics: a scope that does not
// hold makes a policy false without evaluating its conditions.
func (rs *requestScope) mayMatch(p *compiledPolicy) bool {
	if u := p.principalScope; u.Type != "" && u != rs.principal && u != rs.principalParent {
		return false
	}
	if u := p.resourceScope; u.Type != "" && u != rs.resource && u != rs.resourceParent {
		return false
	}
	return true
}

// filteredPolicies iterates the candidates whose scopes can hold.
type filteredPolicies struct {
	policies policySlice
	scope    requestScope
	all      bool // no pre-check (tests)
}

// All implements [cedar.PolicyIterator].
func (f *filteredPolicies) All() iter.Seq2[types.PolicyID, *cedar.Policy] {
	return func(yield func(types.PolicyID, *cedar.Policy) bool) {
		for _, p := range f.policies {
			if (f.all || f.scope.mayMatch(p)) && !yield(types.PolicyID(p.id), p.policy) {
				return
			}
		}
	}
}

// candidates are the policies that may match some class of requests, with
// the parts of the context they may read.
type candidates struct {
	policies policySlice
	needs    *contextNeeds
}

// policySet is an immutable loaded set; the engine swaps whole sets.
type policySet struct {
	version  string
	policies []*compiledPolicy
	// index holds, for every known action and principal and resource
	// entity type, the policies whose scope can match such a request, in
	// file order. Scope constraints are evaluated before conditions and
	// cannot fail, so evaluating only these policies gives the same
	// decision and diagnostics as evaluating all of them.
	index       map[indexKey]*candidates
	byID        map[types.PolicyID]*compiledPolicy
	files       []string
	fingerprint string // names, sizes and mtimes at load time (for Watch)
}

// policySlice is an ordered list of policies.
type policySlice []*compiledPolicy

type indexKey struct {
	action    string
	principal types.EntityType
	resource  types.EntityType
}

var (
	principalTypes = []types.EntityType{TypeUser, TypeClient, TypeAnonymous}
	resourceTypes  = []types.EntityType{TypeTool, TypeResource, TypePrompt, TypeTask, TypeCompletion, TypeUpstream}
)

// candidates returns the policies that can match a request with this
// action, principal and resource. Requests outside the index (an action
// the model does not know) get a filtered copy that builds the whole
// context.
func (s *policySet) candidates(action types.EntityUID, principal, resource types.EntityUID) *candidates {
	if c, ok := s.index[indexKey{string(action.ID), principal.Type, resource.Type}]; ok {
		return c
	}
	c := &candidates{needs: allNeeds}
	for _, p := range s.policies {
		if p.mayMatch(action, principal.Type, resource.Type) {
			c.policies = append(c.policies, p)
		}
	}
	return c
}

func (s *policySet) buildIndex() {
	s.index = map[indexKey]*candidates{}
	for a := range actionGroups {
		for _, pt := range principalTypes {
			for _, rt := range resourceTypes {
				c := &candidates{needs: &contextNeeds{}}
				for _, p := range s.policies {
					if p.mayMatch(actionUID(a), pt, rt) {
						c.policies = append(c.policies, p)
						c.needs.merge(p.needs)
					}
				}
				s.index[indexKey{a, pt, rt}] = c
			}
		}
	}
}

// mayMatch reports whether the policy's scope can match a request with
// this action and these principal and resource types. It errs on the side
// of true.
func (p *compiledPolicy) mayMatch(action types.EntityUID, principal, resource types.EntityType) bool {
	a := (*xast.Policy)(p.policy.AST())
	switch s := a.Action.(type) {
	case xast.ScopeTypeEq:
		if s.Entity != action {
			return false
		}
	case xast.ScopeTypeIn:
		if !actionIn(action, s.Entity) {
			return false
		}
	case xast.ScopeTypeInSet:
		if !slices.ContainsFunc(s.Entities, func(g types.EntityUID) bool { return actionIn(action, g) }) {
			return false
		}
	}
	return typeMayMatch(a.Principal, principal) && typeMayMatch(a.Resource, resource)
}

func actionIn(action, group types.EntityUID) bool {
	if action == group {
		return true
	}
	if group.Type != TypeAction {
		return false
	}
	return slices.Contains(actionGroups[string(action.ID)], string(group.ID))
}

func typeMayMatch(scope xast.IsScopeNode, t types.EntityType) bool {
	switch s := scope.(type) {
	case xast.ScopeTypeEq:
		return s.Entity.Type == t
	case xast.ScopeTypeIs:
		return s.Type == t
	case xast.ScopeTypeIsIn:
		return s.Type == t
	}
	return true
}

// Len returns the number of policy statements in the set.
func (s *policySet) Len() int { return len(s.policies) }

// discover expands paths into a sorted list of policy files with a
// fingerprint of their names, sizes and modification times. Directories are
// searched recursively for *.cedar files; files named directly are taken
// whatever their extension.
func discover(paths []string) (files []string, fingerprint string, err error) {
	files, _, fingerprint, err = discoverKeys(paths)
	return files, fingerprint, err
}

func discoverKeys(paths []string) (files []string, keys map[string]string, fingerprint string, err error) {
	seen := map[string]bool{}
	keys = map[string]string{}
	h := sha256.New()
	add := func(p, key string) {
		if seen[p] {
			return
		}
		seen[p] = true
		files = append(files, p)
		keys[p] = filepath.ToSlash(key)
	}
	infos := map[string]fs.FileInfo{}
	for _, root := range paths {
		info, err := os.Stat(root)
		if err != nil {
			return nil, nil, "", fmt.Errorf("policy path: %w", err)
		}
		if !info.IsDir() {
			infos[root] = info
			add(root, filepath.Base(root))
			continue
		}
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(d.Name(), ".cedar") {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			infos[p] = info
			rel, err := filepath.Rel(root, p)
			if err != nil {
				rel = p
			}
			add(p, rel)
			return nil
		})
		if err != nil {
			return nil, nil, "", fmt.Errorf("policy path: %w", err)
		}
	}
	slices.Sort(files)
	for _, f := range files {
		info := infos[f]
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", f, info.Size(), info.ModTime().UnixNano())
	}
	return files, keys, hex.EncodeToString(h.Sum(nil)), nil
}

// readFiles reads the policy files found under paths.
func readFiles(paths []string) ([]File, string, error) {
	names, keys, fp, err := discoverKeys(paths)
	if err != nil {
		return nil, "", err
	}
	files := make([]File, 0, len(names))
	for _, n := range names {
		b, err := readLimited(n)
		if err != nil {
			return nil, "", err
		}
		files = append(files, File{Name: n, Content: b, key: keys[n]})
	}
	return files, fp, nil
}

func readLimited(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("policy file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("policy file: %w", err)
	}
	if info.Size() > maxFileSize {
		return nil, fmt.Errorf("policy file %s: larger than %d bytes", name, maxFileSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("policy file %s: %w", name, err)
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("policy file %s: larger than %d bytes", name, maxFileSize)
	}
	return b, nil
}

// versionOf returns the version string of a set of files: the first 16 hex
// digits of the SHA-256 over each file's key and content, in key order.
func versionOf(files []File) string {
	sorted := slices.Clone(files)
	for i := range sorted {
		if sorted[i].key == "" {
			sorted[i].key = sorted[i].Name
		}
	}
	slices.SortFunc(sorted, func(a, b File) int {
		return cmp.Or(strings.Compare(a.key, b.key), bytes.Compare(a.Content, b.Content))
	})
	h := sha256.New()
	var n [8]byte
	for _, f := range sorted {
		binary.BigEndian.PutUint64(n[:], uint64(len(f.key)))
		h.Write(n[:])
		h.Write([]byte(f.key))
		binary.BigEndian.PutUint64(n[:], uint64(len(f.Content)))
		h.Write(n[:])
		h.Write(f.Content)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// ValidationError lists every problem found in a policy set, each prefixed
// with file:line:column.
type ValidationError struct {
	Problems []string
}

// Error lists the problems, one per line.
func (e *ValidationError) Error() string {
	if len(e.Problems) == 1 {
		return "invalid policy: " + e.Problems[0]
	}
	return fmt.Sprintf("%d policy problems:\n  %s", len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// compile parses and checks files and returns the policy set.
func compile(files []File) (*policySet, error) {
	set := &policySet{byID: map[types.PolicyID]*compiledPolicy{}, version: versionOf(files)}
	var problems []string
	// Policy ids default to the position in the file's key (its path
	// relative to its directory): stable however the path is spelled, and
	// no server paths in the reasons sent to callers. Keys shared by
	// several files fall back to the full names.
	keyCount := map[string]int{}
	for _, f := range files {
		keyCount[f.key]++
	}
	for _, f := range files {
		set.files = append(set.files, f.Name)
		idName := f.key
		if idName == "" || keyCount[f.key] > 1 {
			idName = f.Name
		}
		list, err := cedar.NewPolicyListFromBytes(f.Name, f.Content)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s", f.Name, strings.Replace(strings.TrimPrefix(err.Error(), "parser error: "), "<input>", f.Name, 1)))
			continue
		}
		for _, p := range list {
			cp, errs := check(f.Name, idName, p)
			problems = append(problems, errs...)
			if cp == nil {
				continue
			}
			if prev, ok := set.byID[types.PolicyID(cp.id)]; ok {
				pos := p.Position()
				problems = append(problems, fmt.Sprintf("%s:%d:%d: duplicate policy id %q (first at %s)", f.Name, pos.Line, pos.Column, cp.id, prev.pos))
				continue
			}
			set.byID[types.PolicyID(cp.id)] = cp
			set.policies = append(set.policies, cp)
		}
	}
	if len(problems) > 0 {
		return nil, &ValidationError{Problems: problems}
	}
	set.buildIndex()
	return set, nil
}

// check validates one policy against the mcpgate model: known entity types,
// known actions and action groups, well-formed ids and annotations.
// Problems name the file as given; the policy's position uses idName.
func check(file, idName string, p *cedar.Policy) (*compiledPolicy, []string) {
	pos := p.Position()
	at := fmt.Sprintf("%s:%d:%d", file, pos.Line, pos.Column)
	short := fmt.Sprintf("%s:%d:%d", idName, pos.Line, pos.Column)
	cp := &compiledPolicy{id: short, pos: short, policy: p, forbid: p.Effect() == cedar.Forbid}
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, at+": "+fmt.Sprintf(format, args...))
	}
	annotations := p.Annotations()
	for _, k := range slices.Sorted(maps.Keys(annotations)) {
		v := annotations[k]
		switch k {
		case AnnotationID:
			if strings.TrimSpace(string(v)) == "" {
				bad("empty @id")
			} else {
				cp.id = string(v)
			}
		case AnnotationApproval:
			if v != "" && v != "required" {
				bad(`@approval must be @approval("required"), got %q`, v)
			}
			if cp.forbid {
				bad("@approval on a forbid policy has no effect; put it on a permit")
			}
			cp.approval = true
		case AnnotationReason:
			cp.reason = string(v)
		case AnnotationMaxTaskTTL, AnnotationMaxConcurrentTasks:
			if msg := parseTaskAnnotation(cp, string(k), string(v)); msg != "" {
				bad("%s", msg)
			}
		}
	}
	a := (*xast.Policy)(p.AST())
	checkUID := func(where string, uid types.EntityUID) {
		if !slices.Contains(entityTypes, string(uid.Type)) {
			bad("%s: unknown entity type %q (known: %s)", where, uid.Type, strings.Join(entityTypes, ", "))
			return
		}
		id := string(uid.ID)
		switch string(uid.Type) {
		case TypeAction:
			if _, ok := actionGroups[id]; !ok && !slices.Contains(ActionGroups(), id) {
				bad("%s: unknown action %s (actions: %s; groups: %s)", where, uid, strings.Join(Actions(), ", "), strings.Join(ActionGroups(), ", "))
			}
		case TypeTool, TypePrompt, TypeCompletion:
			if !strings.Contains(id, "/") {
				bad(`%s: %s ids have the form "<upstream>/<name>", got %q`, where, uid.Type, id)
			}
		}
	}
	checkType := func(where string, t types.EntityType) {
		if !slices.Contains(entityTypes, string(t)) {
			bad("%s: unknown entity type %q (known: %s)", where, t, strings.Join(entityTypes, ", "))
		}
	}
	scope := func(where string, s xast.IsScopeNode) {
		switch s := s.(type) {
		case xast.ScopeTypeEq:
			checkUID(where, s.Entity)
		case xast.ScopeTypeIn:
			checkUID(where, s.Entity)
		case xast.ScopeTypeInSet:
			for _, e := range s.Entities {
				checkUID(where, e)
			}
		case xast.ScopeTypeIs:
			checkType(where, s.Type)
		case xast.ScopeTypeIsIn:
			checkType(where, s.Type)
			checkUID(where, s.Entity)
		}
	}
	scope("principal", a.Principal)
	scope("action", a.Action)
	scope("resource", a.Resource)
	for _, c := range a.Conditions {
		xast.Inspect(xast.NewNode(c.Body), func(n xast.IsNode) bool {
			switch n := n.(type) {
			case xast.NodeValue:
				walkValue(n.Value, func(uid types.EntityUID) { checkUID("condition", uid) })
			case xast.NodeTypeIs:
				checkType("condition", n.EntityType)
			case xast.NodeTypeIsIn:
				checkType("condition", n.EntityType)
			}
			return true
		})
	}
	if len(problems) > 0 {
		return nil, problems
	}
	cp.desc = describePolicy(cp)
	cp.needs = analyseNeeds(a)
	cp.principalAttrs = principalReads(a)
	cp.principalScope = scopeEntity(a.Principal)
	cp.resourceScope = scopeEntity(a.Resource)
	return cp, nil
}

// scopeEntity returns the entity a principal or resource scope requires the
// request's entity to be or be in, or the zero UID.
func scopeEntity(s xast.IsScopeNode) types.EntityUID {
	switch s := s.(type) {
	case xast.ScopeTypeEq:
		return s.Entity
	case xast.ScopeTypeIn:
		return s.Entity
	case xast.ScopeTypeIsIn:
		return s.Entity
	}
	return types.EntityUID{}
}

func walkValue(v types.Value, fn func(types.EntityUID)) {
	switch v := v.(type) {
	case types.EntityUID:
		fn(v)
	case types.Set:
		for e := range v.All() {
			walkValue(e, fn)
		}
	case types.Record:
		for _, e := range v.All() {
			walkValue(e, fn)
		}
	}
}

// loadSet reads and compiles the files under paths.
func loadSet(paths []string) (*policySet, error) {
	files, fp, err := readFiles(paths)
	if err != nil {
		return nil, err
	}
	set, err := compile(files)
	if err != nil {
		return nil, err
	}
	set.fingerprint = fp
	return set, nil
}

// ParseFiles compiles policy sources without touching the file system and
// reports every problem found, each with file:line:column. It returns the
// policy-set version and the number of policies.
func ParseFiles(files ...File) (version string, count int, err error) {
	set, err := compile(files)
	if err != nil {
		return "", 0, err
	}
	return set.version, set.Len(), nil
}

package console

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mcpgate/mcpgate/policy"
)

// Bounds on the policy files the policies page shows.
const (
	// maxPolicyFiles is how many files are shown.
	maxPolicyFiles = 200
	// maxPolicyFileBytes is the largest file shown (larger ones are named
	// but not shown).
	maxPolicyFileBytes = 256 << 10
)

// policyFile is one policy file as it is on disk now.
type policyFile struct {
	// Path is where it was read; Name is its name in the policy set (the
	// path relative to the configured directory, or the base name of a
	// configured file), as the version hash counts it.
	Path string `json:"path"`
	Name string `json:"name"`
	// Text is its content ("" with Error set when it could not be read
	// or is too large).
	Text  string `json:"text"`
	Error string `json:"error,omitempty"`
}

// onDisk is the policy files under the configured paths now, and the
// version they would load as.
type onDisk struct {
	Files []policyFile `json:"files"`
	// Version is the version of these files (policy.ParseFiles); when it
	// differs from the loaded version, the files changed and were not (or
	// not yet) reloaded, or do not load: Error says why.
	Version string `json:"version,omitempty"`
	Error   string `json:"error,omitempty"`
	// Truncated reports more than maxPolicyFiles files.
	Truncated bool `json:"truncated,omitempty"`
}

// readPolicyFiles reads the *.cedar files under paths (a path that is a
// file is read as is), as the engine finds them, within the bounds above.
func readPolicyFiles(paths []string) *onDisk {
	d := &onDisk{Files: []policyFile{}}
	var srcs []policy.File
	var errs []string
	add := func(path, name string) {
		if len(d.Files) >= maxPolicyFiles {
			d.Truncated = true
			return
		}
		pf := policyFile{Path: path, Name: filepath.ToSlash(name)}
		b, err := readBounded(path)
		if err != nil {
			pf.Error = err.Error()
		} else {
			pf.Text = string(b)
			srcs = append(srcs, policy.File{Name: pf.Name, Content: b})
		}
		d.Files = append(d.Files, pf)
	}
	for _, root := range paths {
		info, err := os.Stat(root)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if !info.IsDir() {
			add(root, filepath.Base(root))
			continue
		}
		_ = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || !strings.HasSuffix(e.Name(), ".cedar") {
				return nil
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				rel = p
			}
			add(p, rel)
			return nil
		})
	}
	slices.SortFunc(d.Files, func(a, b policyFile) int { return strings.Compare(a.Path, b.Path) })
	d.Error = strings.Join(errs, "; ")
	if d.Error == "" && !d.Truncated && len(srcs) == len(d.Files) {
		v, _, err := policy.ParseFiles(srcs...)
		if err != nil {
			d.Error = err.Error()
		}
		d.Version = v
	}
	return d
}

// readBounded reads a file of at most maxPolicyFileBytes.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPolicyFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxPolicyFileBytes {
		return nil, fmt.Errorf("larger than %d bytes: not shown", maxPolicyFileBytes)
	}
	return b, nil
}

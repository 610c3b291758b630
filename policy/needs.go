package policy

import (
	"maps"

	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// contextNeeds records which parts of the context a group of policies can
// read, so that a decision builds only those. It is conservative: any use of
// context (or of context.arguments) other than reading a named attribute
// counts as needing all of it.
type contextNeeds struct {
	allContext bool
	attrs      map[types.String]bool // context.X or context has X
	allArgs    bool
	args       map[types.String]bool // context.arguments.X or context.arguments has X
}

func (n *contextNeeds) context(attr types.String) bool {
	return n.allContext || n.attrs[attr]
}

func (n *contextNeeds) argument(name types.String) bool {
	return n.allContext || n.allArgs || n.args[name]
}

func (n *contextNeeds) merge(o *contextNeeds) {
	n.allContext = n.allContext || o.allContext
	n.allArgs = n.allArgs || o.allArgs
	if n.attrs == nil {
		n.attrs = map[types.String]bool{}
	}
	if n.args == nil {
		n.args = map[types.String]bool{}
	}
	maps.Copy(n.attrs, o.attrs)
	maps.Copy(n.args, o.args)
}

// allNeeds is used for requests outside the index.
var allNeeds = &contextNeeds{allContext: true}

func isContext(n xast.IsNode) bool {
	v, ok := n.(xast.NodeTypeVariable)
	return ok && v.Name == "context"
}

func isArguments(n xast.IsNode) bool {
	a, ok := n.(xast.NodeTypeAccess)
	return ok && a.Value == "arguments" && isContext(a.Arg)
}

// strOp returns the operand and attribute name of an attribute access or a
// has test.
func strOp(n xast.IsNode) (xast.IsNode, types.String, bool) {
	switch n := n.(type) {
	case xast.NodeTypeAccess:
		return n.Arg, n.Value, true
	case xast.NodeTypeHas:
		return n.Arg, n.Value, true
	}
	return nil, "", false
}

// analyseNeeds computes the context needs of one policy.
func analyseNeeds(p *xast.Policy) *contextNeeds {
	n := &contextNeeds{attrs: map[types.String]bool{}, args: map[types.String]bool{}}
	var contextUses, contextReads, argumentUses, argumentReads int
	for _, c := range p.Conditions {
		xast.Inspect(xast.NewNode(c.Body), func(node xast.IsNode) bool {
			if isContext(node) {
				contextUses++
			}
			if isArguments(node) {
				argumentUses++
			}
			if arg, name, ok := strOp(node); ok {
				if isContext(arg) {
					contextReads++
					n.attrs[name] = true
				}
				if isArguments(arg) {
					argumentReads++
					n.args[name] = true
				}
			}
			return true
		})
	}
	n.allContext = contextUses != contextReads
	n.allArgs = argumentUses != argumentReads
	return n
}

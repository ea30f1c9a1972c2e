// Command apilist prints the exported API of one module of this repository,
// one declaration a line, sorted, in the manner of Go's own api/*.txt files.
// .ci/apicheck runs it for each user-facing module and compares the output
// with the listings in api/.
//
// Usage:
//
//	apilist DIR
//
// DIR is a module's directory. The packages listed are the module's own
// importable packages: not main packages, not internal/ ones, and not those
// under examples/ (example programs and their helpers are not API). Only what
// the compiler checks is listed (names, types, signatures, fields, methods,
// constant values); doc comments are not, so rewording one is not an API change.
package main

import (
	"fmt"
	"go/types"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/tools/go/packages"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: apilist DIR")
		os.Exit(2)
	}
	lines, err := list(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "apilist:", err)
		os.Exit(1)
	}
	for _, l := range lines {
		fmt.Println(l)
	}
}

func list(dir string) ([]string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedTypes | packages.NeedModule,
		Dir:  abs,
	}
	pkgs, err := packages.Load(cfg, "./...")
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, p := range pkgs {
		if len(p.Errors) > 0 {
			return nil, fmt.Errorf("%s: %v", p.PkgPath, p.Errors[0])
		}
		if p.Module == nil || filepath.Clean(p.Module.Dir) != abs || !public(p.Module.Path, p.PkgPath) || p.Name == "main" {
			continue
		}
		lines = append(lines, pkgLines(p.Types)...)
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%s: no public package found", dir)
	}
	slices.Sort(lines)
	return slices.Compact(lines), nil
}

// public tells whether pkg, a package of module mod, is one users may import
// as API: not internal, not an example's.
func public(mod, pkg string) bool {
	rel := strings.TrimPrefix(strings.TrimPrefix(pkg, mod), "/")
	for _, elem := range strings.Split(rel, "/") {
		if elem == "internal" || elem == "examples" || elem == "testdata" {
			return false
		}
	}
	return true
}

func pkgLines(pkg *types.Package) []string {
	prefix := "pkg " + pkg.Path() + ", "
	qual := func(other *types.Package) string {
		if other == pkg {
			return ""
		}
		return other.Name()
	}
	typ := func(t types.Type) string { return types.TypeString(t, qual) }
	var out []string
	add := func(format string, args ...any) { out = append(out, prefix+fmt.Sprintf(format, args...)) }

	scope := pkg.Scope()
	for _, name := range scope.Names() {
		obj := scope.Lookup(name)
		if !obj.Exported() {
			continue
		}
		switch obj := obj.(type) {
		case *types.Const:
			add("const %s %s = %s", name, typ(obj.Type()), obj.Val().ExactString())
		case *types.Var:
			add("var %s %s", name, typ(obj.Type()))
		case *types.Func:
			add("func %s%s", name, signature(obj.Type().(*types.Signature), qual))
		case *types.TypeName:
			typeLines(obj, qual, add)
		}
	}
	return out
}

func typeLines(obj *types.TypeName, qual types.Qualifier, add func(string, ...any)) {
	name := obj.Name()
	typ := func(t types.Type) string { return types.TypeString(t, qual) }
	if obj.IsAlias() {
		add("type %s = %s", name, typ(types.Unalias(obj.Type())))
		return
	}
	named, ok := obj.Type().(*types.Named)
	if !ok {
		add("type %s %s", name, typ(obj.Type()))
		return
	}
	if tp := named.TypeParams(); tp.Len() > 0 {
		var b strings.Builder
		b.WriteString("[")
		for i := range tp.Len() {
			if i > 0 {
				b.WriteString(", ")
			}
			p := tp.At(i)
			fmt.Fprintf(&b, "%s %s", p.Obj().Name(), typ(p.Constraint()))
		}
		b.WriteString("]")
		name += b.String()
	}
	switch u := named.Underlying().(type) {
	case *types.Struct:
		add("type %s struct", name)
		for f := range u.Fields() {
			if !f.Exported() {
				continue
			}
			if f.Embedded() {
				add("type %s struct, embedded %s", name, typ(f.Type()))
			} else {
				add("type %s struct, %s %s", name, f.Name(), typ(f.Type()))
			}
		}
	case *types.Interface:
		add("type %s interface", name)
		for i := range u.NumExplicitMethods() {
			m := u.ExplicitMethod(i)
			if !m.Exported() {
				add("type %s interface, unexported methods", name)
				continue
			}
			add("type %s interface, %s%s", name, m.Name(), signature(m.Type().(*types.Signature), qual))
		}
		for i := range u.NumEmbeddeds() {
			add("type %s interface, embedded %s", name, typ(u.EmbeddedType(i)))
		}
	default:
		add("type %s %s", name, typ(u))
	}
	// The methods declared on the type, with their receivers as written.
	for i := range named.NumMethods() {
		m := named.Method(i)
		if !m.Exported() {
			continue
		}
		sig := m.Type().(*types.Signature)
		recv := obj.Name()
		if rtp := sig.RecvTypeParams(); rtp.Len() > 0 {
			var ps []string
			for j := range rtp.Len() {
				ps = append(ps, rtp.At(j).Obj().Name())
			}
			recv += "[" + strings.Join(ps, ", ") + "]"
		}
		if _, ptr := sig.Recv().Type().(*types.Pointer); ptr {
			recv = "*" + recv
		}
		add("method (%s) %s%s", recv, m.Name(), signature(sig, qual))
	}
}

// signature prints a function's type parameters, parameters and results,
// without the receiver and without the parameters' names (renaming a
// parameter is not an API change).
func signature(sig *types.Signature, qual types.Qualifier) string {
	typ := func(t types.Type) string { return types.TypeString(t, qual) }
	var b strings.Builder
	if tp := sig.TypeParams(); tp.Len() > 0 {
		b.WriteString("[")
		for i := range tp.Len() {
			if i > 0 {
				b.WriteString(", ")
			}
			p := tp.At(i)
			fmt.Fprintf(&b, "%s %s", p.Obj().Name(), typ(p.Constraint()))
		}
		b.WriteString("]")
	}
	tuple := func(t *types.Tuple, variadic bool) string {
		var parts []string
		for i := range t.Len() {
			vt := t.At(i).Type()
			if variadic && i == t.Len()-1 {
				parts = append(parts, "..."+typ(vt.(*types.Slice).Elem()))
				continue
			}
			parts = append(parts, typ(vt))
		}
		return strings.Join(parts, ", ")
	}
	b.WriteString("(" + tuple(sig.Params(), sig.Variadic()) + ")")
	switch r := sig.Results(); r.Len() {
	case 0:
	case 1:
		b.WriteString(" " + tuple(r, false))
	default:
		b.WriteString(" (" + tuple(r, false) + ")")
	}
	return b.String()
}

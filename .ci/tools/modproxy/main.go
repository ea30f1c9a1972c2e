// Command modproxy writes a file-system Go module proxy (for
// GOPROXY=file://DIR) serving this repository's user-facing modules from the
// working tree, at the versions the repository's go.mod files declare:
//
//   - the root module at the version riverenrich/go.mod and otelenrich/go.mod
//     require of it (they must agree);
//   - riverenrich and otelenrich at the versions bench/go.mod requires of them.
//
// Each module gets the files a tag would publish: @v/list, @v/VERSION.info,
// @v/VERSION.mod and @v/VERSION.zip, the zip made with golang.org/x/mod/zip
// from the files git would commit (tracked, or untracked and not ignored),
// without the directories of nested modules. .ci/consumer uses it to check
// the modules as a user fetches them, without the network for our modules.
//
// Usage:
//
//	modproxy -repo DIR -out DIR
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/zip"
)

const rootPath = "github.com/batchenrich/batchenrich"

func main() {
	repo := flag.String("repo", ".", "the repository's root directory")
	out := flag.String("out", "", "the proxy directory to write (created)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "usage: modproxy -repo DIR -out DIR")
		os.Exit(2)
	}
	if err := run(*repo, *out); err != nil {
		fmt.Fprintln(os.Stderr, "modproxy:", err)
		os.Exit(1)
	}
}

type mod struct {
	dir     string // relative to the repository, "" for the root
	path    string
	version string
}

func run(repo, out string) error {
	repo, err := filepath.Abs(repo)
	if err != nil {
		return err
	}
	rootVersion, err := agreedVersion(repo, rootPath, "riverenrich/go.mod", "otelenrich/go.mod")
	if err != nil {
		return err
	}
	riverVersion, err := agreedVersion(repo, rootPath+"/riverenrich", "bench/go.mod")
	if err != nil {
		return err
	}
	otelVersion, err := agreedVersion(repo, rootPath+"/otelenrich", "bench/go.mod")
	if err != nil {
		return err
	}
	mods := []mod{
		{"", rootPath, rootVersion},
		{"riverenrich", rootPath + "/riverenrich", riverVersion},
		{"otelenrich", rootPath + "/otelenrich", otelVersion},
	}
	files, err := gitFiles(repo)
	if err != nil {
		return err
	}
	nested := map[string]bool{} // directories holding a go.mod, below the root
	for _, f := range files {
		if path.Base(f) == "go.mod" && path.Dir(f) != "." {
			nested[path.Dir(f)] = true
		}
	}
	for _, m := range mods {
		if err := write(repo, out, m, files, nested); err != nil {
			return fmt.Errorf("%s@%s: %w", m.path, m.version, err)
		}
		fmt.Printf("%s@%s\n", m.path, m.version)
	}
	return nil
}

// agreedVersion returns the version of modPath that every listed go.mod
// requires, refusing when they disagree or one does not require it.
func agreedVersion(repo, modPath string, gomods ...string) (string, error) {
	var version string
	for _, g := range gomods {
		data, err := os.ReadFile(filepath.Join(repo, g))
		if err != nil {
			return "", err
		}
		f, err := modfile.ParseLax(g, data, nil)
		if err != nil {
			return "", err
		}
		found := ""
		for _, r := range f.Require {
			if r.Mod.Path == modPath {
				found = r.Mod.Version
			}
		}
		for _, r := range f.Replace {
			if r.Old.Path == modPath {
				return "", fmt.Errorf("%s replaces %s: a module users fetch must not", g, modPath)
			}
		}
		switch {
		case found == "":
			return "", fmt.Errorf("%s does not require %s", g, modPath)
		case version != "" && found != version:
			return "", fmt.Errorf("%s requires %s %s, another go.mod %s: they must agree", g, modPath, found, version)
		}
		version = found
	}
	return version, nil
}

// gitFiles lists the files git would commit, relative to repo, with '/'.
func gitFiles(repo string) ([]string, error) {
	cmd := exec.Command("git", "-C", repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files: %v: %s", err, stderr.String())
	}
	var files []string
	for _, f := range strings.Split(string(b), "\x00") {
		if f == "" {
			continue
		}
		if _, err := os.Lstat(filepath.Join(repo, f)); err != nil {
			continue // deleted in the working tree
		}
		files = append(files, f)
	}
	return files, nil
}

type file struct {
	repoPath string // relative to the repository
	zipPath  string // relative to the module
	abs      string
}

func (f file) Path() string                 { return f.zipPath }
func (f file) Lstat() (os.FileInfo, error)  { return os.Lstat(f.abs) }
func (f file) Open() (io.ReadCloser, error) { return os.Open(f.abs) }

func write(repo, out string, m mod, files []string, nested map[string]bool) error {
	prefix := ""
	if m.dir != "" {
		prefix = m.dir + "/"
	}
	var zfiles []zip.File
	for _, f := range files {
		if !strings.HasPrefix(f, prefix) {
			continue
		}
		rel := strings.TrimPrefix(f, prefix)
		if inNested(path.Join(m.dir, path.Dir(rel)), m.dir, nested) {
			continue
		}
		zfiles = append(zfiles, file{repoPath: f, zipPath: rel, abs: filepath.Join(repo, filepath.FromSlash(f))})
	}
	esc, err := module.EscapePath(m.path)
	if err != nil {
		return err
	}
	dir := filepath.Join(out, filepath.FromSlash(esc), "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	base := filepath.Join(dir, m.version)
	zf, err := os.Create(base + ".zip")
	if err != nil {
		return err
	}
	mv := module.Version{Path: m.path, Version: m.version}
	if err := zip.Create(zf, mv, zfiles); err != nil {
		zf.Close()
		return err
	}
	if err := zf.Close(); err != nil {
		return err
	}
	gomod, err := os.ReadFile(filepath.Join(repo, m.dir, "go.mod"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(base+".mod", gomod, 0o644); err != nil {
		return err
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{m.version, time.Now().UTC().Truncate(time.Second)})
	if err != nil {
		return err
	}
	if err := os.WriteFile(base+".info", info, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "list"), []byte(m.version+"\n"), 0o644)
}

// inNested reports whether dir (relative to the repository) is, or is
// inside, the directory of a module nested below the module at modDir.
func inNested(dir, modDir string, nested map[string]bool) bool {
	for d := dir; d != "." && d != "" && d != modDir; d = path.Dir(d) {
		if nested[d] {
			return true
		}
	}
	return false
}

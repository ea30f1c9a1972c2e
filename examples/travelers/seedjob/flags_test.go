package seedjob

import (
	"strings"
	"testing"
)

func TestCheckExecutionID(t *testing.T) {
	for _, ok := range []string{"a", "travelers-20261128-1", "A.b_c:d-9", strings.Repeat("x", 128)} {
		if err := CheckExecutionID(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for id, want := range map[string]string{
		"":                       `-execution-id "": use 1 to 128`,
		"a\x1b[2Jb":              `-execution-id "a\x1b[2Jb"`,
		"a\nb":                   `-execution-id "a\nb"`,
		"col#p1":                 `-execution-id "col#p1"`,
		"-json":                  `-execution-id "-json"`,
		"a\xffb":                 `-execution-id "a\xffb"`,
		strings.Repeat("x", 129): `xxxxxxxxxx…": use 1 to 128`,
	} {
		err := CheckExecutionID(id)
		if err == nil || !strings.Contains(err.Error(), want) || strings.ContainsAny(err.Error(), "\x1b\n") {
			t.Errorf("%q: error %v, want one saying %s, with no control character", id, err, want)
		}
	}
}

func TestCheckBounds(t *testing.T) {
	if err := CheckBounds(Bound{"-rows", 0, 0, 10}, Bound{"-batch-size", 10, 1, 10}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		b    Bound
		want string
	}{
		{Bound{"-rows", 1_000_000_000, 0, 10_000_000}, "-rows 1000000000: must be between 0 and 10000000"},
		{Bound{"-batch-size", 0, 1, 100}, "-batch-size 0: must be between 1 and 100"},
	} {
		if err := CheckBounds(Bound{"-ok", 1, 1, 1}, c.b); err == nil || err.Error() != c.want {
			t.Errorf("%+v: %v, want %s", c.b, err, c.want)
		}
	}
}

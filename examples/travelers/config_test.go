package main

import (
	"io"
	"strings"
	"testing"
)

func noEnv(string) string { return "" }

func TestParseFlagsRefusesBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-batch-size", "0"}, "-batch-size 0"},
		{[]string{"-batch-size", "-3"}, "-batch-size -3"},
		{[]string{"-batch-size", "abc"}, "invalid value"},
		{[]string{"-max-batches", "0"}, "-max-batches 0"},
		{[]string{"-concurrency", "0"}, "-concurrency 0"},
		{[]string{"-concurrency", "100000"}, "-concurrency 100000"},
		{[]string{"-seed-rows", "-1"}, "-seed-rows -1"},
		{[]string{"-http-timeout", "0s"}, "-http-timeout 0s"},
		{[]string{"-http-retries", "-1"}, "-http-retries -1"},
		{[]string{"-profile-url", "ftp://example.com/x"}, "-profile-url"},
		{[]string{"-profile-url", "not a url"}, "-profile-url"},
		{[]string{"-dsn", "mysql://root@localhost/db"}, `unsupported scheme "mysql"`},
		{[]string{"-dsn", "sqlite:"}, "no SQLite file path"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"-no-such-flag"}, "not defined"},
		// Every number bounded, the product of two included.
		{[]string{"-max-batches", "4611686018427387904"}, "-max-batches 4611686018427387904: must be between 1 and 10000000"},
		{[]string{"-batch-size", "100001"}, "-batch-size 100001: must be between 1 and 100000"},
		{[]string{"-seed-rows", "10000001"}, "-seed-rows 10000001"},
		{[]string{"-http-retries", "21"}, "-http-retries 21"},
		{[]string{"-http-timeout", "10000h"}, "-http-timeout 10000h0m0s: must be positive and at most 1h0m0s"},
		// -execution-id: the documented safe set only.
		{[]string{"-execution-id", "a\nb"}, `-execution-id "a\nb": use 1 to 128 letters`},
		{[]string{"-execution-id", "a\x1b[2Jb"}, `-execution-id "a\x1b[2Jb"`},
		{[]string{"-execution-id", "a\xffb"}, `-execution-id "a\xffb"`},
		{[]string{"-execution-id", "a b"}, `-execution-id "a b"`},
		{[]string{"-execution-id", "-json"}, `-execution-id "-json"`},
		{[]string{"-execution-id", strings.Repeat("x", 129)}, `xxxxxxxxxx…": use 1 to 128`},
		// -dsn: recognised or refused, never guessed to be a file.
		{[]string{"-dsn", "localhost"}, "-dsn: not a PostgreSQL URL (postgres://…), a keyword connection string"},
		{[]string{"-dsn", "host=h password='s3cr3t"}, "-dsn: not a valid keyword connection string: unterminated quoted value at offset 7"},
		{[]string{"-dsn", "postgres://u:s3/cr3t@h/db"}, "-dsn: not a valid PostgreSQL URL (percent-encode"},
		// -profile-url: parameters the job fills, secrets never echoed.
		{[]string{"-profile-url", "http://h/anything/{x}"}, "-profile-url: parameter {x} is not one the job fills (it fills {traveler_id} and {traveler_name})"},
		{[]string{"-profile-url", "ftp://u:s3cr3t@h/x?api_key=s3cr3t"}, "-profile-url ftp://xxxxx@h/x?api_key=xxxxx: must be an http:// or https:// URL"},
		{[]string{"-profile-url", "https://u:s3/cr3t@h/x"}, "-profile-url: not a valid URL (percent-encode"},
	}
	for _, tt := range tests {
		_, err := parseFlags(tt.args, io.Discard, noEnv)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseFlags(%q) = %v, want an error containing %q", tt.args, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("parseFlags(%q): error spans lines: %q", tt.args, err)
		}
		if err != nil && (strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "cr3t")) {
			t.Errorf("parseFlags(%q): error shows the secret: %q", tt.args, err)
		}
	}
}

func TestParseFlagsAccepts(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-execution-id", "travelers-20261128-1"},
		{"-execution-id", "a.b_c:d-E9"},
		{"-execution-id", strings.Repeat("x", 128)},
		{"-max-batches", "10000000", "-batch-size", "100000", "-seed-rows", "10000000"},
		{"-profile-url", "https://h/travelers/{traveler_id}?name={traveler_name}"},
	} {
		if _, err := parseFlags(args, io.Discard, noEnv); err != nil {
			t.Errorf("parseFlags(%q): %v", args, err)
		}
	}
	c, _ := parseFlags([]string{"-profile-url", "https://h/t/{traveler_id}/{traveler_id}?n={traveler_name}"}, io.Discard, noEnv)
	if strings.Join(c.pathParams, ",") != "traveler_id,traveler_name" {
		t.Errorf("pathParams = %q", c.pathParams)
	}
}

func TestExpectedRows(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ seed, size, batches, want int }{
		{2000, 100, 20, 2000}, {450, 100, 4, 400}, {450, 100, 5, 450}, {0, 100, 1, 0},
		{maxSeedRows, maxBatchSize, maxMaxBatches, maxSeedRows}, {10, 1, 4611686018427387904, 10},
	} {
		if got := expectedRows(tt.seed, tt.size, tt.batches); got != tt.want {
			t.Errorf("expectedRows(%d, %d, %d) = %d, want %d", tt.seed, tt.size, tt.batches, got, tt.want)
		}
	}
}

func TestParseFlagsDSN(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dsn, env   string
		driver     string
		dsnContain string
	}{
		{"", "", "sqlite", "travelers.db?_pragma=busy_timeout"},
		{"", "postgres://u@h/db", "postgres", "postgres://u@h/db"},
		{"postgresql://u:secret@h/db", "", "postgres", "postgresql://"},
		{"my.db", "postgres://u@h/db", "sqlite", "file:my.db?"},
		{"sqlite:///tmp/a.db", "", "sqlite", "file:/tmp/a.db?"},
		{"file:b.db?mode=rwc", "", "sqlite", "file:b.db?_pragma"},
		{"./data", "", "sqlite", "file:./data?"},
		{"x.sqlite3", "", "sqlite", "file:x.sqlite3?"},
		{"/tmp/a?b#c.db", "", "sqlite", "file:/tmp/a%3fb%23c.db?"},
		{"host=127.0.0.1 user=postgres password=secret dbname=x", "", "postgres", "password=secret"},
		{"", "dbname=x password=secret", "postgres", "dbname=x"},
		{"postgres://u@h/db?password=secret&sslmode=disable", "", "postgres", "password=secret"},
	}
	for _, tt := range tests {
		args := []string{}
		if tt.dsn != "" {
			args = append(args, "-dsn", tt.dsn)
		}
		c, err := parseFlags(args, io.Discard, func(k string) string {
			if k == "DATABASE_URL" {
				return tt.env
			}
			return ""
		})
		if err != nil || c.driver != tt.driver || !strings.Contains(c.dsn, tt.dsnContain) {
			t.Errorf("dsn %q env %q: driver %q dsn %q err %v", tt.dsn, tt.env, c.driver, c.dsn, err)
		}
		if strings.Contains(c.dbDesc, "secret") {
			t.Errorf("description shows the password: %s", c.dbDesc)
		}
	}
	c, err := parseFlags(nil, io.Discard, noEnv)
	if err != nil || c.seedRows != 2000 || c.batchSize != 100 || c.maxBatches != 20 || c.concurrency != 25 || c.executionID == "" {
		t.Fatalf("defaults = %+v, %v", c, err)
	}
}

func TestParseFlagsNamesDatabaseURL(t *testing.T) {
	t.Parallel()
	_, err := parseFlags(nil, io.Discard, func(k string) string {
		if k == "DATABASE_URL" {
			return "s3cr3t"
		}
		return ""
	})
	if err == nil || !strings.HasSuffix(err.Error(), "(the value of $DATABASE_URL)") || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("err = %v", err)
	}
}

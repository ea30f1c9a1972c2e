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
	}
	for _, tt := range tests {
		_, err := parseFlags(tt.args, io.Discard, noEnv)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseFlags(%q) = %v, want an error containing %q", tt.args, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("parseFlags(%q): error spans lines: %q", tt.args, err)
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

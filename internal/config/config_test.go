package config

import (
	"flag"
	"reflect"
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestDefaultsAreValid(t *testing.T) {
	t.Parallel()
	c, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Fatalf("Load with nothing set = %+v, want Default() %+v", c, Default())
	}
}

// Precedence: defaults < environment < flags, for every kind of setting.
func TestPrecedence(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		env   map[string]string
		args  []string
		check func(Config) bool
	}{
		{"env string", map[string]string{"CHATD_ADDR": ":4000"}, nil,
			func(c Config) bool { return c.Addr == ":4000" }},
		{"flag beats env (string)", map[string]string{"CHATD_ADDR": ":4000"}, []string{"-addr", ":5000"},
			func(c Config) bool { return c.Addr == ":5000" }},
		{"env bool", map[string]string{"CHATD_DEMO": "true"}, nil,
			func(c Config) bool { return c.Demo }},
		{"flag beats env (bool)", map[string]string{"CHATD_DEMO": "true"}, []string{"-demo=false"},
			func(c Config) bool { return !c.Demo }},
		{"bare bool flag", nil, []string{"-demo"},
			func(c Config) bool { return c.Demo }},
		{"env int", map[string]string{"CHATD_HISTORY_LIMIT": "50"}, nil,
			func(c Config) bool { return c.HistoryLimit == 50 }},
		{"flag beats env (int)", map[string]string{"CHATD_HISTORY_LIMIT": "50"}, []string{"-history-limit=60"},
			func(c Config) bool { return c.HistoryLimit == 60 }},
		{"env int64", map[string]string{"CHATD_MAX_UPLOAD_BYTES": "1000"}, nil,
			func(c Config) bool { return c.MaxUploadBytes == 1000 }},
		{"flag int64", nil, []string{"-max-body-bytes", "2048"},
			func(c Config) bool { return c.MaxBodyBytes == 2048 }},
		{"env duration", map[string]string{"CHATD_TOKEN_TTL": "720h"}, nil,
			func(c Config) bool { return c.TokenTTL == 720*time.Hour }},
		{"flag beats env (duration)", map[string]string{"CHATD_SHUTDOWN_TIMEOUT": "1m"}, []string{"-shutdown-timeout", "2s"},
			func(c Config) bool { return c.ShutdownTimeout == 2*time.Second }},
		{"env float", map[string]string{"CHATD_USER_SEND_RATE": "0.5"}, nil,
			func(c Config) bool { return c.UserSendRate == 0.5 }},
		{"flag beats env (float)", map[string]string{"CHATD_USER_SEND_RATE": "0.5"}, []string{"-user-send-rate=0"},
			func(c Config) bool { return c.UserSendRate == 0 }},
		{"empty env keeps the default", map[string]string{"CHATD_LOG_LEVEL": ""}, nil,
			func(c Config) bool { return c.LogLevel == "info" }},
		{"other settings untouched", map[string]string{"CHATD_ADDR": ":4000"}, []string{"-history-limit=7"},
			func(c Config) bool {
				d := Default()
				d.Addr, d.HistoryLimit = ":4000", 7
				return reflect.DeepEqual(c, d)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(tc.args, env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("got %+v", c)
			}
		})
	}
}

// Every setting has an environment variable and a flag, and both reach it.
func TestEverySettingIsReachable(t *testing.T) {
	t.Parallel()
	var c Config
	for _, s := range c.settings() {
		if got := EnvName(s.name); !strings.HasPrefix(got, "CHATD_") || strings.ContainsAny(got, "-abcdefghijklmnopqrstuvwxyz") {
			t.Errorf("%s: env name %q", s.name, got)
		}
		if !strings.Contains(Usage(), "-"+s.name+" (env "+EnvName(s.name)+")") {
			t.Errorf("Usage does not list -%s", s.name)
		}
	}
}

func TestBadValuesNameTheVariable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want []string // all in the error
	}{
		{"env int", map[string]string{"CHATD_HISTORY_LIMIT": "many"}, nil, []string{"CHATD_HISTORY_LIMIT", `"many"`, "integer"}},
		{"env int64", map[string]string{"CHATD_MAX_BODY_BYTES": "1MB"}, nil, []string{"CHATD_MAX_BODY_BYTES", `"1MB"`}},
		{"env bool", map[string]string{"CHATD_DEMO": "yes please"}, nil, []string{"CHATD_DEMO", "true or false"}},
		{"env duration", map[string]string{"CHATD_TOKEN_TTL": "30"}, nil, []string{"CHATD_TOKEN_TTL", "duration"}},
		{"env float", map[string]string{"CHATD_APP_SEND_RATE": "fast"}, nil, []string{"CHATD_APP_SEND_RATE", "number"}},
		{"flag int", nil, []string{"-history-limit", "many"}, []string{"-history-limit", "many"}},
		{"flag duration", nil, []string{"-signature-window=forever"}, []string{"-signature-window", "forever"}},
		{"unknown flag", nil, []string{"-no-such-thing"}, []string{"no-such-thing"}},
		{"stray argument", nil, []string{"extra"}, []string{`"extra"`}},
		// Store and broker values may hold a password: named, never echoed.
		{"invalid store", map[string]string{"CHATD_STORE": "mysql://x"}, nil, []string{"CHATD_STORE", "sqlite:PATH"}},
		{"invalid broker", nil, []string{"-broker", "kafka://x"}, []string{"-broker", "CHATD_BROKER", "nats://"}},
		{"invalid store with password", map[string]string{"CHATD_STORE": "mysql://u:hunter2@db/x"}, nil, []string{"CHATD_STORE"}},
		{"invalid log level", map[string]string{"CHATD_LOG_LEVEL": "loud"}, nil, []string{"CHATD_LOG_LEVEL", "loud"}},
		{"too small", map[string]string{"CHATD_MAX_BODY_BYTES": "10"}, nil, []string{"CHATD_MAX_BODY_BYTES", "1024"}},
		{"short token ttl", nil, []string{"-token-ttl=1s"}, []string{"-token-ttl", "CHATD_TOKEN_TTL"}},
		{"negative rate", map[string]string{"CHATD_USER_SEND_RATE": "-1"}, nil, []string{"CHATD_USER_SEND_RATE", "negative"}},
		{"negative sockets", nil, []string{"-max-user-sockets=-1"}, []string{"CHATD_MAX_USER_SOCKETS", "negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(tc.args, env(tc.env))
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q echoes a password", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Addr, c.HistoryLimit, c.MaxGroupSize = "", 0, 1
	err := c.Validate()
	for _, w := range []string{"CHATD_ADDR", "CHATD_HISTORY_LIMIT", "CHATD_MAX_GROUP_SIZE"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Validate() = %v, want it to mention %s", err, w)
		}
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	if _, err := Load([]string{"-h"}, env(nil)); err != flag.ErrHelp {
		t.Fatalf("-h: err = %v, want flag.ErrHelp", err)
	}
}

// Every kind of setting round-trips through its flag.Value, and Usage shows
// the defaults as a user would type them.
func TestValues(t *testing.T) {
	t.Parallel()
	u := Usage()
	for _, want := range []string{`(default ":3000")`, "(default false)", "(default 100)", "(default 1048576)", "(default 5m0s)", "(default 20)", "(default 0s)"} {
		if !strings.Contains(u, want) {
			t.Errorf("Usage lacks %s", want)
		}
	}
	c := Default()
	for _, s := range c.settings() {
		v, _ := valueOf(s.name, s.ptr)
		if err := v.Set(v.String()); err != nil {
			t.Errorf("-%s: %q does not parse back: %v", s.name, v.String(), err)
		}
	}
	if c != Default() {
		t.Errorf("setting every value to itself changed the config: %+v", c)
	}
}

func TestAllowedOrigins(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"https://a.example", []string{"https://a.example"}},
		{" https://a.example , ,https://b.example ", []string{"https://a.example", "https://b.example"}},
	} {
		if got := (Config{Origins: tc.in}).AllowedOrigins(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("AllowedOrigins(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

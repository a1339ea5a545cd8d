package api

import (
	"fmt"
	"strings"

	"github.com/chatd/chatd/internal/chat"
	"github.com/chatd/chatd/internal/params"
)

// boolParam reads an optional boolean: true/false, 1/0 (as text, JSON
// booleans or numbers). present is false when the key is absent, null or
// empty; any other value is a clear error.
func boolParam(p *params.Params, key string) (v, present bool, err error) {
	s, ok := p.String(key)
	if !ok || s == "" {
		if p.Get(key) != nil && !ok && p.Get(key).Kind() != params.Null {
			return false, false, fmt.Errorf("%w: %s must be true or false", chat.ErrInvalid, key)
		}
		return false, false, nil
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1":
		return true, true, nil
	case "false", "0":
		return false, true, nil
	}
	return false, false, fmt.Errorf("%w: %s must be true or false", chat.ErrInvalid, key)
}

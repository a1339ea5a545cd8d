package chat

import (
	"errors"
	"net/http"

	"github.com/chatd/chatd/internal/store"
)

// Domain errors. Operations wrap them with detail (fmt.Errorf("%w: ...")); the
// transports turn them into client errors through Describe only.
var (
	ErrInvalid      = errors.New("invalid parameter")
	ErrUnknownApp   = errors.New("unknown or locked app")
	ErrUnknownUser  = errors.New("unknown user")
	ErrUnknownGroup = errors.New("unknown group")
	ErrNotFound     = errors.New("not found")
	ErrNotMember    = errors.New("not a member of this conversation")
	ErrBadToken     = errors.New("invalid token")
	ErrBadSignature = errors.New("bad signature")
	ErrTooLarge     = errors.New("too large")
	ErrForbidden    = errors.New("forbidden")
	ErrRateLimited  = errors.New("rate limited")
	ErrUnavailable  = errors.New("unavailable")
	ErrTimeout      = errors.New("request timed out")
)

// node-chat's status codes.
const (
	CodeOK           = 1
	CodeOther        = 1000
	CodeBadParam     = 1002
	CodeBadSignature = 1004
	CodeUnknownApp   = 1006
)

// Describe maps an error to what a client sees: node-chat's status code, an
// HTTP status, and a message. It is the one place where errors become client
// errors; unexpected errors get a generic message so internals never leak.
func Describe(err error) (code, httpStatus int, message string) {
	switch {
	case err == nil:
		return CodeOK, http.StatusOK, ""
	case errors.Is(err, ErrInvalid):
		// node-chat answers validation errors with 422; clients branch on it.
		return CodeBadParam, http.StatusUnprocessableEntity, err.Error()
	case errors.Is(err, ErrTooLarge):
		return CodeBadParam, http.StatusRequestEntityTooLarge, err.Error()
	case errors.Is(err, ErrBadSignature):
		return CodeBadSignature, http.StatusBadRequest, err.Error()
	case errors.Is(err, ErrUnknownApp):
		return CodeUnknownApp, http.StatusBadRequest, err.Error()
	case errors.Is(err, ErrUnknownUser), errors.Is(err, ErrUnknownGroup), errors.Is(err, ErrNotFound):
		return CodeBadParam, http.StatusNotFound, err.Error()
	case errors.Is(err, ErrNotMember), errors.Is(err, store.ErrNotMember):
		return CodeOther, http.StatusForbidden, ErrNotMember.Error()
	case errors.Is(err, ErrBadToken):
		return CodeOther, http.StatusUnauthorized, err.Error()
	case errors.Is(err, ErrRateLimited):
		return CodeOther, http.StatusTooManyRequests, err.Error()
	case errors.Is(err, ErrUnavailable):
		return CodeOther, http.StatusServiceUnavailable, err.Error()
	case errors.Is(err, ErrBlocked):
		return CodeOther, http.StatusForbidden, err.Error()
	case errors.Is(err, ErrForbidden):
		return CodeOther, http.StatusForbidden, err.Error()
	case errors.Is(err, ErrTimeout):
		return CodeOther, http.StatusRequestTimeout, err.Error()
	}
	return CodeOther, http.StatusInternalServerError, "internal error"
}

package httpguard

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// Timeouts bound the time a request may take on the wire.
type Timeouts struct {
	// Read bounds the arrival of an ordinary request's body, from the end
	// of its header. A streamed body (an upload) may take longer as long as
	// it keeps coming: no gap longer than Read, and after the first Read, an
	// average of at least MinRate bytes a second.
	Read time.Duration
	// Write bounds the writing of an ordinary answer, from the start of the
	// request; a streamed answer (a download) may take longer as long as
	// each write completes within Write.
	Write time.Duration
	// MinRate is a streamed body's slowest accepted average, bytes/s.
	MinRate int64
}

// Class says how a request is bounded.
type Class int

const (
	Ordinary Class = iota // Read and Write bound the whole body and answer
	Streamed              // uploads and downloads: bounded by progress
	Own                   // the handler sets its own deadlines (long-polling, websockets); bodies as Ordinary
)

// Deadlines wraps h so that every request gets the deadlines of its class.
// A client that stops sending its body gets its connection closed (the
// handler sees a read error) instead of holding it.
func Deadlines(h http.Handler, t Timeouts, classify func(*http.Request) Class) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		class := classify(r)
		rc := http.NewResponseController(w)
		now := time.Now()
		if r.Body != nil && r.Body != http.NoBody && t.Read > 0 {
			b := &body{ReadCloser: r.Body, rc: rc, start: now, t: t, streamed: class == Streamed}
			b.arm(now)
			// On a shallow copy: net/http looks at the original request's
			// body after the handler to decide whether to drain it or close.
			r = r.WithContext(r.Context())
			r.Body = b
		}
		if t.Write > 0 {
			switch class {
			case Ordinary:
				_ = rc.SetWriteDeadline(now.Add(t.Write))
			case Streamed:
				_ = rc.SetWriteDeadline(now.Add(t.Write))
				w = &progressWriter{ResponseWriter: w, rc: rc, d: t.Write}
			}
		}
		h.ServeHTTP(w, r)
	})
}

// body applies the read deadline while the body is being read, and lifts it
// once the body is whole: net/http's own read of the idle connection must
// not time out while the handler works.
type body struct {
	io.ReadCloser
	rc       *http.ResponseController
	start    time.Time
	t        Timeouts
	streamed bool
	n        int64
	done     bool
}

func (b *body) arm(now time.Time) {
	d := b.start.Add(b.t.Read)
	if b.streamed {
		d = now.Add(b.t.Read)
		if b.t.MinRate > 0 {
			// The budget grows with what arrived: Read plus 1/MinRate a byte.
			budget := b.start.Add(b.t.Read + time.Duration(float64(b.n)/float64(b.t.MinRate)*float64(time.Second)))
			if budget.Before(d) {
				d = budget
			}
		}
	}
	_ = b.rc.SetReadDeadline(d)
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	switch {
	case err == io.EOF && !b.done:
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = ErrSlowBody
	case err == nil && b.streamed && n > 0:
		b.arm(time.Now())
	}
	return n, err
}

// ErrSlowBody is the read error of a body that did not arrive in time.
var ErrSlowBody = errors.New("request body not received in time")

// progressWriter extends the write deadline before each write.
type progressWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *progressWriter) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	return w.ResponseWriter.Write(p)
}

func (w *progressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *progressWriter) Flush() { _ = w.rc.Flush() }

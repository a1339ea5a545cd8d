package broker

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestFanoutBoundedQueue(t *testing.T) {
	tests := []struct {
		name          string
		queueLen, pub int
		wantDelivered int
	}{
		{"fits", 16, 10, 10},
		{"exactly full", 16, 16, 16},
		{"overflow", 16, 40, 16},
		{"one slot", 1, 5, 1},
		{"ring grows past 8", 100, 100, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFanout(tc.queueLen)
			var overflowed atomic.Int64
			f.OnOverflow(func(topic string, p any) {
				if topic == "t" {
					overflowed.Add(1)
				}
			})
			gate := make(chan struct{})
			var (
				mu   sync.Mutex
				got  []int
				wg   sync.WaitGroup
				once sync.Once
			)
			wg.Add(tc.wantDelivered + 1) // +1: the first call, held at the gate
			s, first, ok := f.Add("t", func(p []byte) {
				once.Do(func() { <-gate })
				mu.Lock()
				got = append(got, int(p[0]))
				mu.Unlock()
				wg.Done()
			}, true)
			if !ok || !first || s.Topic() != "t" {
				t.Fatalf("Add: first=%v ok=%v", first, ok)
			}
			// The first payload is taken by the handler and blocks it; the rest queue.
			f.Deliver("t", []byte{255})
			for i := range tc.pub {
				f.Deliver("t", []byte{byte(i)})
			}
			close(gate)
			// The handler took payload 255 off the queue before blocking, unless the
			// drain goroutine had not started yet: then it too sat in the queue.
			st := f.Stats()
			wantDropped := tc.pub - tc.wantDelivered
			if st.Dropped != uint64(wantDropped) && st.Dropped != uint64(wantDropped+1) {
				t.Fatalf("Dropped = %d, want %d or %d", st.Dropped, wantDropped, wantDropped+1)
			}
			// No drop goes unreported.
			if got := overflowed.Load(); got != int64(st.Dropped) {
				t.Fatalf("%d payloads reported to OnOverflow, %d dropped", got, st.Dropped)
			}
			wg.Add(-int(st.Dropped) + wantDropped)
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			if got[0] != 255 {
				t.Fatalf("first delivered %d, want 255", got[0])
			}
			// Payloads arrive in publish order. Which ones were dropped depends on
			// whether the drain goroutine had taken 255 off the queue yet, so only
			// the order and the count are certain.
			for i := 2; i < len(got); i++ {
				if got[i] <= got[i-1] {
					t.Fatalf("delivery %d = %d after %d: out of order", i, got[i], got[i-1])
				}
			}
			if len(got) != tc.pub+1-int(st.Dropped) {
				t.Fatalf("%d delivered with %d dropped of %d", len(got), st.Dropped, tc.pub+1)
			}
		})
	}
}

func TestFanoutPendingAndRemove(t *testing.T) {
	f := NewFanout(4)
	done := make(chan []byte, 4)
	s, _, _ := f.Add("t", func(p []byte) { done <- p }, false)
	if n := f.Deliver("t", []byte("early")); n != 0 {
		t.Fatalf("pending subscription accepted %d payloads", n)
	}
	f.Activate("t")
	if n := f.Deliver("t", []byte("late")); n != 1 {
		t.Fatalf("active subscription accepted %d payloads, want 1", n)
	}
	if p := <-done; string(p) != "late" {
		t.Fatalf("got %q", p)
	}
	s2, first, _ := f.Add("t", func([]byte) {}, false)
	if first {
		t.Fatal("second Add reported first")
	}
	f.ActivateAll()
	if !s2.Active() {
		t.Fatal("ActivateAll left a subscription pending")
	}
	if last := f.Remove(s); last {
		t.Fatal("Remove of one of two reported last")
	}
	if last := f.Remove(s); last {
		t.Fatal("second Remove of the same subscription reported last")
	}
	if last := f.Remove(s2); !last {
		t.Fatal("Remove of the final subscription did not report last")
	}
	if f.Has("t") || len(f.Topics()) != 0 {
		t.Fatal("topic still listed after its last Remove")
	}
	if got := f.Stats().Subscriptions; got != 0 {
		t.Fatalf("Subscriptions = %d, want 0", got)
	}
	f.Close()
	if _, _, ok := f.Add("t", func([]byte) {}, true); ok {
		t.Fatal("Add after Close succeeded")
	}
}

// DeliverBoth: handlers added with AddValue get the value, those added with
// Add the encoding.
func TestFanoutDeliverBoth(t *testing.T) {
	f := NewFanout(4)
	raw, val := make(chan []byte, 1), make(chan any, 1)
	f.Add("t", func(p []byte) { raw <- p }, true)
	f.AddValue("t", func(v any) { val <- v }, true)
	type value struct{}
	v := &value{}
	if n := f.DeliverBoth("t", v, []byte("enc")); n != 2 {
		t.Fatalf("DeliverBoth reached %d subscriptions, want 2", n)
	}
	if p := <-raw; string(p) != "enc" {
		t.Errorf("Add handler got %q, want the encoding", p)
	}
	if got := <-val; got != any(v) {
		t.Errorf("AddValue handler got %v, want the value", got)
	}
}

package bench

import (
	"io"
	"net"
	"testing"
	"time"
)

// BenchmarkLoopbackWrite measures the floor under every fan-out delivery on
// loopback: one write of a push-sized websocket frame (350 bytes) to one of
// 1,000 TCP connections whose readers drain them. On loopback the kernel runs
// the receiver's TCP path inside the sender's write, so this is the cost
// chatd and any other server pay per delivery when nothing can be coalesced.
// write-ns/op is the time spent inside Write alone.
func BenchmarkLoopbackWrite(b *testing.B) {
	const conns = 1000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, conns)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var senders []net.Conn
	for range conns {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		r := <-accepted
		defer r.Close()
		go io.Copy(io.Discard, r)
		senders = append(senders, c)
	}
	frame := make([]byte, 350)
	b.ResetTimer()
	var inWrite time.Duration
	for i := 0; b.Loop(); i++ {
		t := time.Now()
		if _, err := senders[i%conns].Write(frame); err != nil {
			b.Fatal(err)
		}
		inWrite += time.Since(t)
	}
	b.ReportMetric(float64(inWrite.Nanoseconds())/float64(b.N), "write-ns/op")
}

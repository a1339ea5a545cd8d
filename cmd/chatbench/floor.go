package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"syscall"
	"time"
	"unsafe"
)

// loopbackFloor measures the per-delivery floor of the fan-out scenario, the
// same as BenchmarkLoopbackWrite in bench/: one write of a push-sized
// websocket frame (350 bytes) to one of conns loopback TCP connections,
// round robin. On loopback the kernel runs the receiver's TCP path inside the
// sender's write, so this is what any server pays per delivery when nothing
// can be coalesced. The writer runs on a thread of its own pinned to cpu
// (the server's, when >= 0) and the figure is that thread's CPU time per
// write (getrusage RUSAGE_THREAD: the same utime+stime accounting as the
// servers' /proc figures), so it is comparable with chatd's CPU per delivery.
func loopbackFloor(ctx context.Context, cpu, conns, writes int) (time.Duration, error) {
	return loopbackFloorSize(ctx, cpu, conns, writes, 350)
}

// loopbackFloorSize is loopbackFloor with writes of size bytes.
func loopbackFloorSize(ctx context.Context, cpu, conns, writes, size int) (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
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
	senders := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range senders {
			c.Close()
		}
	}()
	for i := range conns {
		c, err := net.DialTCP("tcp", &net.TCPAddr{IP: srcIPs[i%len(srcIPs)]}, ln.Addr().(*net.TCPAddr))
		if err != nil {
			return 0, err
		}
		senders = append(senders, c)
		r := <-accepted
		defer r.Close()
		go io.Copy(io.Discard, r)
	}
	// The writer keeps a P busy; the readers need another.
	prev := runtime.GOMAXPROCS(0)
	runtime.GOMAXPROCS(prev + 1)
	defer runtime.GOMAXPROCS(prev)

	type result struct {
		cpu time.Duration
		err error
	}
	done := make(chan result, 1)
	go func() {
		// Locked and never unlocked: the thread, whose affinity changed,
		// exits with this goroutine.
		runtime.LockOSThread()
		if cpu >= 0 {
			if err := pinThread(cpu); err != nil {
				done <- result{err: err}
				return
			}
		}
		frame := make([]byte, size)
		for i := range conns { // warm up: every connection written once
			if _, err := senders[i].Write(frame); err != nil {
				done <- result{err: err}
				return
			}
		}
		before, err := threadCPU()
		if err != nil {
			done <- result{err: err}
			return
		}
		for i := 0; i < writes && ctx.Err() == nil; i++ {
			if _, err := senders[i%conns].Write(frame); err != nil {
				done <- result{err: err}
				return
			}
		}
		after, err := threadCPU()
		done <- result{cpu: after - before, err: err}
	}()
	r := <-done
	if r.err != nil {
		return 0, fmt.Errorf("loopback floor: %w", r.err)
	}
	return r.cpu / time.Duration(writes), nil
}

// pinThread sets the calling thread's CPU affinity to cpu.
func pinThread(cpu int) error {
	var mask [16]uint64
	mask[cpu/64] |= 1 << (cpu % 64)
	_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, unsafe.Sizeof(mask), uintptr(unsafe.Pointer(&mask)))
	if errno != 0 {
		return errno
	}
	return nil
}

// threadCPU is the calling thread's user+system CPU time.
func threadCPU() (time.Duration, error) {
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

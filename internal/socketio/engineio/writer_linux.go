package engineio

import "golang.org/x/sys/unix"

// sysWritev is the system call a shard writes with (tests count calls).
var sysWritev = unix.Writev

// writev is the syscall.RawConn callback of a pass: it writes w.pending with
// as few writev calls as IOV_MAX allows and stops at the first short write,
// leaving the rest in w.pending. It always returns true, so that a full socket
// buffer never parks the writer.
func (w *writerShard) writev(fd uintptr) bool {
	for len(w.pending) > 0 {
		iov := w.pending[:min(len(w.pending), maxIovecs)]
		want := 0
		for _, b := range iov {
			want += len(b)
		}
		n, err := w.sysWritev(int(fd), iov)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return true
		}
		if err != nil {
			w.err = err
			return true
		}
		w.consume(n)
		if n < want {
			return true
		}
	}
	return true
}

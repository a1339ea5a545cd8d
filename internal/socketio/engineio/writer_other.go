//go:build !linux

package engineio

// writev leaves everything pending: elsewhere than Linux every batch takes the
// slow path, a goroutine that writes it with blocking writes.
func (w *writerShard) writev(fd uintptr) bool { return true }

var sysWritev func(fd int, iovs [][]byte) (int, error)

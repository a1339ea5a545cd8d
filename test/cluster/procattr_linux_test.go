package cluster_test

import "syscall"

// procAttr puts a child in its own process group, so a kill reaches nothing
// else, and has the kernel kill it if the test process dies first (a test
// binary stopped by its timeout leaves no chatd or broker behind).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

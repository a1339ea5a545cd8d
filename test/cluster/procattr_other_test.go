//go:build !linux

package cluster_test

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// procStat returns utime+stime (clock ticks of 10 ms on Linux) and the
// parent pid of a process, from /proc/PID/stat.
func procStat(pid int) (cpu time.Duration, ppid int, comm string, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, "", false
	}
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return 0, 0, "", false
	}
	comm = string(b[open+1 : end])
	f := strings.Fields(string(b[end+2:]))
	if len(f) < 13 {
		return 0, 0, "", false
	}
	pp, _ := strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond, pp, comm, true
}

// rssKB is the resident set of a process in KiB.
func rssKB(pid int) int64 { return procKB(pid, "status", "VmRSS:") }

// procKB reads the "key   N kB" line of /proc/PID/file; 0 when missing.
func procKB(pid int, file, key string) int64 {
	b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), file))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// children lists the pids whose parent is ppid and whose command name is
// one of names.
func children(ppid int, names ...string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		_, pp, comm, ok := procStat(pid)
		if !ok || pp != ppid {
			continue
		}
		for _, n := range names {
			if comm == n {
				out = append(out, pid)
			}
		}
	}
	return out
}

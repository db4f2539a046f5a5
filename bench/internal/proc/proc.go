// Package proc reads what the benchmarks measure of a server's processes
// from Linux's /proc: CPU time (utime+stime in 10 ms ticks from
// /proc/PID/stat, or on-CPU nanoseconds per thread from schedstat), the
// process tree, and memory (VmRSS, Pss). A process that has gone counts as
// zero: servers fork and reap session processes while we read.
package proc

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// tick is one clock tick of /proc/PID/stat: USER_HZ is 100 on Linux.
const tick = 10 * time.Millisecond

// Stat is what the benchmarks use of /proc/PID/stat.
type Stat struct {
	PPID int
	Comm string
	// CPU is utime+stime of the process; ChildCPU is cutime+cstime, the
	// time of the children it has reaped.
	CPU, ChildCPU time.Duration
}

// ReadStat reads /proc/PID/stat; ok is false when the process is gone.
func ReadStat(pid int) (st Stat, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return Stat{}, false
	}
	// The command name is in parentheses and may hold spaces and ")".
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open || end+2 > len(b) {
		return Stat{}, false
	}
	// f[0] is field 3 (state): field k of proc(5) is f[k-3].
	f := strings.Fields(string(b[end+2:]))
	if len(f) < 15 {
		return Stat{}, false
	}
	num := func(k int) int64 { v, _ := strconv.ParseInt(f[k-3], 10, 64); return v }
	return Stat{
		PPID:     int(num(4)),
		Comm:     string(b[open+1 : end]),
		CPU:      time.Duration(num(14)+num(15)) * tick,
		ChildCPU: time.Duration(num(16)+num(17)) * tick,
	}, true
}

// TickCPU sums utime+stime of the processes.
func TickCPU(pids []int) time.Duration {
	var sum time.Duration
	for _, p := range pids {
		st, _ := ReadStat(p)
		sum += st.CPU
	}
	return sum
}

// TreeCPU is the CPU time of root, of every live process under it, and of
// the children each of them reaped (cutime+cstime): the whole cost of a
// server that forks a process per session, the ended sessions included.
func TreeCPU(root int) time.Duration {
	var sum time.Duration
	for _, p := range Descendants(root) {
		st, _ := ReadStat(p)
		sum += st.CPU + st.ChildCPU
	}
	return sum
}

// SchedCPU sums the on-CPU time of every thread of the processes, in ns
// (field 1 of /proc/PID/task/TID/schedstat). Threads that have exited are
// not counted (TickCPU counts them, in 10 ms ticks).
func SchedCPU(pids []int) time.Duration {
	var sum time.Duration
	for _, p := range pids {
		base := filepath.Join("/proc", strconv.Itoa(p), "task")
		tasks, _ := os.ReadDir(base)
		for _, t := range tasks {
			b, err := os.ReadFile(filepath.Join(base, t.Name(), "schedstat"))
			if err != nil {
				continue
			}
			if f := strings.Fields(string(b)); len(f) > 0 {
				ns, _ := strconv.ParseInt(f[0], 10, 64)
				sum += time.Duration(ns)
			}
		}
	}
	return sum
}

// RSSKB is the resident set of a process in KiB.
func RSSKB(pid int) int64 { return kb(pid, "status", "VmRSS:") }

// PSSKB is the proportional set size of a process in KiB: shared pages
// (Dovecot's processes share their libraries) are split among their users.
func PSSKB(pid int) int64 { return kb(pid, "smaps_rollup", "Pss:") }

// kb reads the "key   N kB" line of /proc/PID/file; 0 when missing.
func kb(pid int, file, key string) int64 {
	b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), file))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// all reads the stat of every live process.
func all() map[int]Stat {
	ents, _ := os.ReadDir("/proc")
	out := map[int]Stat{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := ReadStat(pid); ok {
			out[pid] = st
		}
	}
	return out
}

// Children lists the processes whose parent is ppid and whose command name
// is one of names.
func Children(ppid int, names ...string) []int {
	var out []int
	for pid, st := range all() {
		if st.PPID == ppid && slices.Contains(names, st.Comm) {
			out = append(out, pid)
		}
	}
	return out
}

// Descendants is root and every process below it.
func Descendants(root int) []int {
	kids := map[int][]int{}
	for pid, st := range all() {
		kids[st.PPID] = append(kids[st.PPID], pid)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, kids[out[i]]...)
	}
	return out
}

// DiskWritten returns the octets written so far to the block device that
// holds path (sectors written, field 10 of /proc/diskstats, are 512 octets
// whatever the device's own sector size). It counts every writer of the
// device, so it is a figure for a quiet machine; ok is false when the
// device is not listed (a file system not on a block device: tmpfs,
// overlay).
func DiskWritten(path string) (n int64, ok bool) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, false
	}
	maj := strconv.FormatUint(uint64(unix.Major(st.Dev)), 10)
	min := strconv.FormatUint(uint64(unix.Minor(st.Dev)), 10)
	b, err := os.ReadFile("/proc/diskstats")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 || f[0] != maj || f[1] != min {
			continue
		}
		sectors, err := strconv.ParseInt(f[9], 10, 64)
		if err != nil {
			return 0, false
		}
		return sectors * 512, true
	}
	return 0, false
}

package proc

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDiskWritten writes 8 MiB with fsync under the test's directory: the
// device's counter must grow by at least that much (other writers only add
// to it), and a path that does not exist is not counted.
func TestDiskWritten(t *testing.T) {
	dir := t.TempDir()
	before, ok := DiskWritten(dir)
	if !ok {
		// This machine kind keeps its temporary directory on a block
		// device; tmpfs or overlay elsewhere has no counter to read.
		if os.Getenv("CI") == "true" {
			t.Fatalf("no /proc/diskstats entry for the device of %s", dir)
		}
		t.Skipf("no /proc/diskstats entry for the device of %s", dir)
	}
	f, err := os.Create(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i * 7) // not all zeros, in case the device compresses
	}
	for range 8 {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	after, ok := DiskWritten(dir)
	if !ok {
		t.Fatal("the device's counter went away")
	}
	if got := after - before; got < 8<<20 {
		t.Errorf("device counter grew by %d octets after an fsynced 8 MiB write, want at least %d", got, 8<<20)
	}
	if _, ok := DiskWritten(filepath.Join(dir, "missing")); ok {
		t.Error("a missing path was given a device")
	}
}

package storage

import "testing"

// FuzzBlobLayout checks the chunk arithmetic against its definition: the
// chunks a blob is written in (chunkSpans) cover it once, in order, none
// over ChunkSize, chunk 0 of l0 octets, each starting where chunkStart
// says; chunkAt finds for any offset the chunk that holds it.
func FuzzBlobLayout(f *testing.F) {
	for _, seed := range [][3]uint64{
		{0, 0, 0}, {1, 0, 0}, {1, 1, 0}, {ChunkSize, 100, ChunkSize - 1},
		{ChunkSize + 1, ChunkSize, ChunkSize}, {3*ChunkSize + 5, ChunkSize, 2 * ChunkSize},
		{2 * ChunkSize, ChunkSize - 1, ChunkSize + 3}, {5 * ChunkSize, 7, 3*ChunkSize + 7},
		{5000, 0, 4999}, {ChunkSize + 10, 9, 8},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, size, l0, off uint64) {
		size %= 6*ChunkSize + 1
		l0 %= min(size, ChunkSize) + 1
		type span struct{ seq, start, end int64 }
		var spans []span
		chunkSpans(int64(size), int64(l0), func(seq, start, end int64) error {
			spans = append(spans, span{seq, start, end})
			return nil
		})
		var pos int64
		for i, s := range spans {
			if s.seq != int64(i) || s.start != pos || s.end < s.start || s.end-s.start > ChunkSize ||
				s.start != chunkStart(s.seq, int64(l0)) {
				t.Fatalf("size %d, l0 %d: chunk %d is %+v after %d", size, l0, i, s, pos)
			}
			if (i == 0 && s.end != int64(l0)) || (i > 0 && s.end == s.start) {
				t.Fatalf("size %d, l0 %d: chunk %+v", size, l0, s)
			}
			pos = s.end
		}
		if pos != int64(size) {
			t.Fatalf("size %d, l0 %d: chunks end at %d", size, l0, pos)
		}

		check := func(o int64) {
			seq := chunkAt(o, int64(l0))
			if seq < 0 || seq >= int64(len(spans)) {
				t.Fatalf("size %d, l0 %d: offset %d in chunk %d of %d", size, l0, o, seq, len(spans))
			}
			if s := spans[seq]; o < s.start || o >= s.end {
				t.Fatalf("size %d, l0 %d: offset %d in chunk %d, which is %+v", size, l0, o, seq, s)
			}
		}
		for _, s := range spans {
			if s.end > s.start {
				check(s.start)
				check(s.end - 1)
			}
		}
		if size > 0 {
			check(int64(off % size))
		}
	})
}

package imap_test

import (
	"bytes"
	"testing"

	"pombo/imap"
)

// BenchmarkFilterHeader filters the header sections of 50 corpus messages
// with Thunderbird's message-list fields, the filter\n// compiled once and its buffer reused, as in a FETCH.
func BenchmarkFilterHeader(b *testing.B) {
	msgs := corpus(b, 2000)[1950:] // as the newest 50 of the FETCH benchmark
	var hdrs [][]byte
	for _, m := range msgs {
		end := bytes.Index(m, []byte("\r\n\r\n"))
		if end < 0 {
			end = len(m) - 4
		}
		hdrs = append(hdrs, m[:end+4])
	}
	filter := imap.FieldFilter(tbFields, nil)
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, h := range hdrs {
			buf = filter(buf[:0], h)
		}
	}
}

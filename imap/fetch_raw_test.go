package imap_test

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
)

// scanResponse reads the responses to the command tagged tag, the content
// of literals included, and returns the number of untagged responses and
// the status of the tagged one. With keep, it appends every octet read to
// *keep.
func scanResponse(br *bufio.Reader, tag string, keep *[]byte) (untagged int, status string, err error) {
	prefix := []byte(tag + " ")
	start := true
	for {
		line, err := br.ReadSlice('\n')
		if keep != nil {
			*keep = append(*keep, line...)
		}
		if err != nil && err != bufio.ErrBufferFull {
			return untagged, "", err
		}
		if start {
			if len(line) > 2 && line[0] == '*' && line[1] == ' ' {
				untagged++
			} else if rest, ok := bytes.CutPrefix(line, prefix); ok {
				st, _, _ := bytes.Cut(rest, []byte(" "))
				return untagged, string(st), nil
			}
		}
		if err == bufio.ErrBufferFull {
			start = false // the rest of a long line
			continue
		}
		// A line ending in {n} goes on after n octets of literal.
		start = true
		l := bytes.TrimRight(line, "\r\n")
		if len(l) == 0 || l[len(l)-1] != '}' {
			continue
		}
		i := bytes.LastIndexByte(l, '{')
		if i < 0 {
			continue
		}
		n, err := strconv.Atoi(string(bytes.TrimSuffix(l[i+1:len(l)-1], []byte("+"))))
		if err != nil {
			continue
		}
		if keep != nil {
			lit := make([]byte, n)
			if _, err := io.ReadFull(br, lit); err != nil {
				return untagged, "", err
			}
			*keep = append(*keep, lit...)
		} else if _, err := br.Discard(n); err != nil {
			return untagged, "", err
		}
		start = false
	}
}

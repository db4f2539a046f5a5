package storage

import (
	"bytes"
	"encoding/json"
	"testing"
	"testing/iotest"
)

// FuzzParseMessage: no panic on any input, and the invariants of
// checkInvariants (sizes add up and are non-negative, bounded depth, parts,
// text and addresses, valid UTF-8, JSON-encodable). The result must not
// depend on how the reader splits its reads. Seeds: the hostile shapes
// below, plus real messages in testdata/fuzz/FuzzParseMessage.
func FuzzParseMessage(f *testing.F) {
	for _, s := range [][]byte{
		nil,
		[]byte("\r\n"),
		[]byte("Subject: only"),
		crlf("Subject: hi\nFrom: a@b\nno blank line\n"),
		crlf("From: =?utf-8?q?J=C3=BCrgen?= <j@x>, team: a@x, \"B\" <b@y>;\nTo: (c) <@r:u@h>, garbage\nDate: Tue, 4 Jun 2024 10:00:00 +9900\nSubject: =?UTF-8?B?5pel5g==?= =?UTF-8?B?nKzoqp4=?=\n\nx"),
		crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\nContent-Type: text/plain\n--b--\ntrailing"),
		crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nnever closed\n"),
		crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: multipart/alternative; boundary=b\n\n--b\n\nx\n--b--\n"),
		crlf("Content-Type: message/rfc822\n\nContent-Type: message/rfc822\n\nSubject: in\n\nbody"),
		crlf("Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: digest\n\nx\n--d--\n"),
		crlf("Content-Type: text/html; charset=iso-8859-1\nContent-Transfer-Encoding: base64\n\nPHA+R3L832UgPGI+YXVzPC9iPiBN/G5jaGVuPC9wPg==\n"),
		crlf("Content-Type: text/plain; charset=utf-16le\nContent-Transfer-Encoding: quoted-printable\n\nh=00i=00=\n=0\n"),
		crlf("Content-Type: application/pdf; name*0*=utf-8''%E2%82%AC; name*1=x; name*2*=%ZZ\n\n%PDF"),
		hostileHeaders(20),
		nested(30),
		message4K(),
		[]byte("\x00\xff\r\r\n--\n:\n \n\t\n=?\n"),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		pm := parse(t, raw)
		pm2, err := ParseMessage(iotest.OneByteReader(bytes.NewReader(raw)))
		if err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(pm)
		b, _ := json.Marshal(pm2)
		if !bytes.Equal(a, b) {
			t.Fatalf("result depends on read sizes:\n%s\n%s", a, b)
		}
	})
}

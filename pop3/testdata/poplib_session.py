"""A POP3 session with Python's poplib against pombo; exits non-zero on the
first mismatch. The expected messages are files in EXPECTED, one per
message in maildrop order, as storage holds them.

usage: poplib_session.py HOST PORT USER PASSWORD EXPECTED
"""
import os
import poplib
import ssl
import sys

host, port, user, password, expected = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
want = [open(os.path.join(expected, n), "rb").read() for n in sorted(os.listdir(expected))]


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)


def error_of(fn, *args):
    try:
        fn(*args)
    except poplib.error_proto as e:
        return e.args[0]
    sys.exit("FAIL: %s%r did not fail" % (fn.__name__, args))


p = poplib.POP3(host, port, timeout=30)
check(p.getwelcome().startswith(b"+OK "), "welcome %r" % p.getwelcome())
capa = p.capa()
for c in ("TOP", "UIDL", "USER", "SASL", "STLS", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE", "EXPIRE"):
    check(c in capa, "CAPA lacks %s: %r" % (c, capa))
check(capa["SASL"] == ["PLAIN", "LOGIN"], "SASL %r" % capa["SASL"])
check(capa["EXPIRE"] == ["NEVER"], "EXPIRE %r" % capa["EXPIRE"])

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
p.stls(ctx)
check("STLS" not in p.capa(), "STLS offered after STLS")

# A wrong password, then the right one.
p.user(user)
check(error_of(p.pass_, "wrong").startswith(b"-ERR [AUTH]"), "wrong password")
p.user(user)
r = p.pass_(password)
check(r.startswith(b"+OK maildrop has %d messages" % len(want)), "PASS %r" % r)

count, size = p.stat()
check(count == len(want) and size == sum(map(len, want)), "STAT %r" % ((count, size),))
r, listing, _ = p.list()
check([l.split() for l in listing] == [[b"%d" % (i + 1), b"%d" % len(m)] for i, m in enumerate(want)], "LIST %r" % listing)
r, uidls, _ = p.uidl()
ids = [l.split()[1] for l in uidls]
check(len(set(ids)) == len(want), "UIDL not unique: %r" % uidls)
check(p.uidl(2).split()[2] == ids[1], "UIDL 2")

for i, m in enumerate(want):
    r, lines, octets = p.retr(i + 1)
    check(r.startswith(b"+OK %d octets" % len(m)), "RETR %d: %r" % (i + 1, r))
    got = b"\r\n".join(lines) + b"\r\n"
    check(got == m, "RETR %d: content differs" % (i + 1))

r, lines, _ = p.top(1, 0)
head = want[0].split(b"\r\n\r\n", 1)[0]
check(b"\r\n".join(lines) == head + b"\r\n", "TOP 1 0: %r" % lines)

p.dele(1)
check(error_of(p.retr, 1).startswith(b"-ERR"), "RETR of a deleted message")
check(p.stat()[0] == len(want) - 1, "STAT after DELE")
p.rset()
check(p.stat()[0] == len(want), "STAT after RSET")
check(error_of(p.retr, len(want) + 1).startswith(b"-ERR"), "RETR past the end")
p.dele(len(want))
r = p.quit()
check(r.startswith(b"+OK"), "QUIT %r" % r)
print("OK")

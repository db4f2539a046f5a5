"""Write, for each message file in SRC, what getmail's MDA_lmtp destination
sends to an LMTP server once the message was received over POP3: getmail
parses the lines poplib hands it with Python's email package and passes the
result to smtplib's send_message, which regenerates it with CRLF line ends
and drops Bcc:/Resent-Bcc:. Running that very code (getmail's Message,
smtplib's send_message, stopped where it would send) on storage's octets
gives what the LMTP server must receive if POP3 delivered exactly those
octets.

usage: getmail_expect.py SRC DST   (run with getmail's own interpreter)
"""
import os
import smtplib
import sys

from getmailcore.message import Message


class Capture(smtplib.SMTP):
    """send_message up to the octets it would send, without a server."""

    def __init__(self):
        super().__init__()  # no host: no connection
        self.sent = None

    def ehlo_or_helo_if_needed(self):
        pass

    def has_extn(self, opt):
        return opt.lower() == "smtputf8"  # the test's LMTP server offers it

    def sendmail(self, from_addr, to_addrs, msg, mail_options=(), rcpt_options=()):
        self.sent = msg
        return {}


src, dst, rcpt = sys.argv[1], sys.argv[2], sys.argv[3]
for name in sorted(os.listdir(src)):
    with open(os.path.join(src, name), "rb") as f:
        data = f.read()
    # What poplib.retr returns: the lines, CRLF removed (and dot-stuffing
    # undone, which the server's stuffing and poplib cancel out).
    lines = data.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    msg = Message(fromlines=lines + [b""])  # as getmail's POP3 retriever does
    c = Capture()
    c.send_message(msg.content(), msg.sender, rcpt)  # as MDA_lmtp does
    out = c.sent
    if not out.endswith(b"\r\n"):
        out += b"\r\n"  # smtplib.data ends the data with CRLF
    with open(os.path.join(dst, name), "wb") as f:
        f.write(out)

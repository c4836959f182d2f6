#!/usr/bin/env python3
"""Reads a message the test SMTP server saved (tests/smtp/README.md) with
python's email package, an independent parser, and prints one FIELD:

  subject, from, to, message-id   the header, decoded (RFC 2047)
  date          the Date header as ISO 8601 UTC, or "unparsable"
  content-type  the top part's type, e.g. multipart/alternative
  parts         the leaf parts' types, comma-separated
  charsets      the leaf parts' charsets, comma-separated
  encodings     the leaf parts' Content-Transfer-Encodings, comma-separated
  text, html    the body of the first text/plain or text/html part, decoded,
                its line breaks as LF
  defects       the number of defects the parser found (0 is right)
  wire          "ok", or what breaks RFC 5322 on the wire: a line not ended
                by CRLF, longer than 998 octets, a header not in ASCII
  header:NAME   the raw value of header NAME (undecoded, unfolded)

Usage: smtp-inspect.py FILE FIELD
"""
import email
import email.policy
import email.utils
import sys


def wire(raw):
    problems = []
    lines = raw.split(b"\r\n")
    if lines[-1] != b"":
        problems.append("the message does not end with CRLF")
    in_headers = True
    for i, line in enumerate(lines[:-1], 1):
        if b"\n" in line or b"\r" in line:
            problems.append("line %d: a bare CR or LF" % i)
        if len(line) > 998:
            problems.append("line %d: %d octets" % (i, len(line)))
        if in_headers:
            if line == b"":
                in_headers = False
            elif any(c >= 0x80 for c in line):
                problems.append("line %d: a header not in ASCII" % i)
    return "; ".join(problems) or "ok"


def main():
    path, field = sys.argv[1], sys.argv[2]
    with open(path, "rb") as f:
        raw = f.read()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    leaves = [p for p in msg.walk() if not p.is_multipart()]
    if field in ("subject", "from", "to", "message-id"):
        out = str(msg.get(field, ""))
    elif field == "date":
        try:
            out = email.utils.parsedate_to_datetime(msg["date"]).isoformat()
        except (TypeError, ValueError):
            out = "unparsable"
    elif field == "content-type":
        out = msg.get_content_type()
    elif field == "parts":
        out = ",".join(p.get_content_type() for p in leaves)
    elif field == "charsets":
        out = ",".join(str(p.get_content_charset()) for p in leaves)
    elif field == "encodings":
        out = ",".join(str(p.get("content-transfer-encoding", "7bit")) for p in leaves)
    elif field in ("text", "html"):
        want = "text/plain" if field == "text" else "text/html"
        part = next((p for p in leaves if p.get_content_type() == want), None)
        out = part.get_content().replace("\r\n", "\n") if part is not None else ""
    elif field == "defects":
        n = sum(len(p.defects) for p in msg.walk())
        n += sum(len(getattr(v, "defects", ())) for p in msg.walk() for v in p.values())
        out = str(n)
    elif field == "wire":
        out = wire(raw)
    elif field.startswith("header:"):
        compat = email.message_from_bytes(raw, policy=email.policy.compat32)
        value = compat.get(field[7:], "")
        out = "".join(str(value).replace("\r\n", "\n").split("\n"))
    else:
        print("smtp-inspect: unknown field %s" % field, file=sys.stderr)
        sys.exit(2)
    sys.stdout.write(out)


if __name__ == "__main__":
    main()

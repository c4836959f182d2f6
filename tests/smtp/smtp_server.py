#!/usr/bin/env python3
"""The test suite's SMTP server (tests/smtp/README.md): aiosmtpd on
127.0.0.1 with four listeners, each message saved as a file.

  plain     no AUTH, no TLS
  auth      AUTH PLAIN/LOGIN required, over cleartext (loopback only)
  starttls  STARTTLS required first, then AUTH
  smtps     TLS from the first byte (implicit TLS), then AUTH

Recipients whose local part is tempfail / reject / slow (any domain) are
answered 451 / 550 / after 30 s at RCPT; datafail@ gets 451 at the end of
DATA. Everything else is accepted and written to DIR/mail as
NAME.envelope (KEY=VALUE lines) then NAME.eml (the raw message), in that
order, each by a rename, so a reader that sees the .eml sees both whole.

Run by smtp-fixture.sh, never by hand: it ends by itself when DIR/server.pid
no longer holds its pid or after three hours.
"""
import argparse
import asyncio
import logging
import os
import signal
import socket
import ssl
import sys
import time
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

LIFETIME_S = 3 * 3600


class Handler:
    def __init__(self, maildir, listener):
        self.maildir = maildir
        self.listener = listener
        self.counter = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local == "tempfail":
            return "451 4.3.0 tempfail: try again later"
        if local == "reject":
            return "550 5.1.1 reject: no such mailbox"
        if local == "slow":
            await asyncio.sleep(30)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(a.split("@", 1)[0].lower() == "datafail" for a in envelope.rcpt_tos):
            return "451 4.3.0 datafail: try again later"
        self.counter += 1
        name = "%020d-%d-%d" % (time.time_ns(), os.getpid(), self.counter)
        tls = "1" if session.ssl is not None or self.listener == "smtps" else "0"
        login = getattr(session.auth_data, "login", b"") if session.authenticated else b""
        login = login.decode("utf-8", "replace")
        lines = [
            "LISTENER=" + self.listener,
            "MAIL_FROM=" + (envelope.mail_from or ""),
            "RCPT_TO=" + ",".join(envelope.rcpt_tos),
            "AUTH_USER=" + (login or ""),
            "TLS=" + tls,
            "SIZE=%d" % len(envelope.original_content),
        ]
        write_atomic(os.path.join(self.maildir, name + ".envelope"),
                     ("\n".join(lines) + "\n").encode())
        write_atomic(os.path.join(self.maildir, name + ".eml"),
                     envelope.original_content)
        print("smtp_server: %s: %s from %s to %s" % (
            self.listener, name, envelope.mail_from, ",".join(envelope.rcpt_tos)),
            flush=True)
        return "250 2.0.0 OK queued as " + name


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def make_authenticator(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == user and auth_data.password == password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
    return authenticate


def listen(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    s.setblocking(False)
    return s


async def watchdog(pidfile, started):
    while True:
        await asyncio.sleep(1)
        try:
            with open(pidfile) as f:
                mine = f.read().strip() == str(os.getpid())
        except OSError:
            mine = False
        if not mine or time.monotonic() - started > LIFETIME_S:
            os._exit(0)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--ports", default="", help="NAME=PORT,... (0: any)")
    ap.add_argument("--credentials", required=True, help="file: user:password")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    args = ap.parse_args()
    # The cleartext AUTH listener is on purpose (loopback); keep the log to
    # what the tests may want to read.
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    with open(args.credentials, "rb") as f:
        user, _, password = f.read().rstrip(b"\r\n").partition(b":")
    maildir = os.path.join(args.dir, "mail")
    os.makedirs(maildir, exist_ok=True)
    want = dict(p.split("=") for p in args.ports.split(",") if p)

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(args.cert, args.key)
    auth = make_authenticator(user, password)
    hostname = "smtp.guestuser.test"
    listeners = {
        "plain": dict(),
        "auth": dict(auth_required=True, auth_require_tls=False, authenticator=auth),
        "starttls": dict(tls_context=tls, require_starttls=True, auth_required=True,
                         auth_require_tls=True, authenticator=auth),
        "smtps": dict(auth_required=True, auth_require_tls=False, authenticator=auth),
    }
    loop = asyncio.get_running_loop()
    ports = {}
    for name, opts in listeners.items():
        sock = listen(int(want.get(name, 0)))
        ports[name] = sock.getsockname()[1]
        handler = Handler(maildir, name)

        def factory(handler=handler, opts=opts):
            return SMTP(handler, hostname=hostname, timeout=60, **opts)

        await loop.create_server(factory, sock=sock,
                                 ssl=tls if name == "smtps" else None)
    write_atomic(os.path.join(args.dir, "ports"),
                 ("".join("%s=%d\n" % kv for kv in ports.items())).encode())
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    wd = asyncio.ensure_future(watchdog(os.path.join(args.dir, "server.pid"),
                                        time.monotonic()))
    print("smtp_server: listening on %s" % ports, flush=True)
    await stop.wait()
    wd.cancel()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except OSError as e:
        print("smtp_server: %s" % e, file=sys.stderr, flush=True)
        sys.exit(1)

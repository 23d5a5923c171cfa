"""A tiny SMTP server on 127.0.0.1 for the outbox tests (RFC 5321 subset)."""

from __future__ import annotations

import socketserver
import threading
from dataclasses import dataclass, field


@dataclass
class Mailbox:
    messages: list[tuple[str, list[str], str]] = field(default_factory=list)


class _Handler(socketserver.StreamRequestHandler):
    mailbox: Mailbox

    def _say(self, line: str) -> None:
        self.wfile.write((line + "\r\n").encode())

    def handle(self) -> None:
        self._say("220 stub ESMTP")
        sender, rcpts = "", []
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            cmd = raw.decode().strip()
            verb = cmd.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self._say("250 stub")
            elif verb == "MAIL":
                sender, rcpts = cmd.split(":", 1)[1].strip(), []
                self._say("250 OK")
            elif verb == "RCPT":
                rcpts.append(cmd.split(":", 1)[1].strip())
                self._say("250 OK")
            elif verb == "DATA":
                self._say("354 end with .")
                lines = []
                while True:
                    line = self.rfile.readline().decode()
                    if line in (".\r\n", ".\n", ""):
                        break
                    lines.append(line)
                self.mailbox.messages.append((sender, rcpts, "".join(lines)))
                self._say("250 queued")
            elif verb == "QUIT":
                self._say("221 bye")
                return
            else:
                self._say("250 OK")


class SmtpStub:
    def __init__(self) -> None:
        self.mailbox = Mailbox()
        handler = type("H", (_Handler,), {"mailbox": self.mailbox})
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> SmtpStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

"""Receivers for the notification tests: one HTTP server (webhook, ntfy and a
fake Telegram Bot API) and an SMTP sink (aiosmtpd), each request appended as
one JSON line to OUT (flushed and fsynced before the answer goes out).

usage: notify_sink.py OUT HTTP_ADDR HTTP_PORT SMTP_PORT GOOD_TELEGRAM_TOKEN
"""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

out_path, addr, http_port, smtp_port, good_token = sys.argv[1:6]
lock = threading.Lock()
counter = [0]


def record(entry):
    with lock:
        counter[0] += 1
        entry["n"] = counter[0]
        with open(out_path, "a") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return counter[0]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode("utf-8", "replace")
        path = self.path
        status, answer = 200, b"ok"
        if path.startswith("/bot"):
            token = path[len("/bot"):].split("/", 1)[0]
            if token == good_token:
                n = record({"kind": "telegram", "path": "/bot<good>/sendMessage", "body": body})
                answer = json.dumps({"ok": True, "result": {"message_id": n}}).encode()
            else:
                record({"kind": "telegram-bad", "path": "/bot<bad>/sendMessage", "body": body})
                status = 401
                answer = json.dumps(
                    {"ok": False, "error_code": 401, "description": "Unauthorized"}
                ).encode()
        else:
            kind = "ntfy" if path.startswith("/ntfy") else "webhook"
            if path.startswith("/am"):
                kind = "alertmanager"
            record(
                {
                    "kind": kind,
                    "path": path,
                    "title": self.headers.get("Title"),
                    "id": self.headers.get("X-Linkwatch-Id"),
                    "body": body,
                }
            )
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


class Sink:
    async def handle_DATA(self, server, session, envelope):
        record(
            {
                "kind": "email",
                "from": envelope.mail_from,
                "to": envelope.rcpt_tos,
                "body": envelope.content.decode("utf-8", "replace"),
            }
        )
        return "250 OK queued"


from aiosmtpd.controller import Controller  # noqa: E402

smtp = Controller(Sink(), hostname=addr, port=int(smtp_port))
smtp.start()
httpd = ThreadingHTTPServer((addr, int(http_port)), Handler)
print("sink ready", flush=True)
httpd.serve_forever()

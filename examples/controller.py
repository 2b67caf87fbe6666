#!/usr/bin/env python3
"""A minimal Scope controller plugin: a light switch on this host's node.

Run it next to scope-probe (Python 3 standard library only):

    python3 examples/controller.py /var/run/scope/plugins/light.sock [HOSTNAME]

It listens for HTTP on the unix socket. scope-probe polls GET /report; the report puts a
"light" value and two controls ("on", "off") on the Host node `<HOSTNAME>;<host>` (the
probe's own Host node when HOSTNAME is the probe's --hostname, by default the kernel's).
Clicking a control in the Scope UI reaches POST /control; the answer carries a shortcut
report, so the UI shows the new state at once instead of at the next publish.
"""

import datetime
import http.server
import json
import os
import socket
import socketserver
import sys

PLUGIN_ID = "light"  # must equal the socket's file name without its extension
state = {"light": "off"}


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def report(host):
    ts = now()
    # Offer the control that changes the state: "on" while off, "off" while on.
    active = "on" if state["light"] == "off" else "off"
    return {
        "Host": {
            "nodes": {
                host + ";<host>": {
                    "latest": {
                        "light": {"timestamp": ts, "value": state["light"]},
                        "active_controls": {"timestamp": ts, "value": active},
                    }
                }
            },
            "metadata_templates": {
                "light": {"id": "light", "label": "Light", "priority": 20.0, "from": "latest"}
            },
            "controls": {
                "on": {"id": "on", "human": "Light on", "icon": "fa-lightbulb-o", "rank": 1},
                "off": {"id": "off", "human": "Light off", "icon": "fa-power-off", "rank": 2},
            },
        },
        "Plugins": [
            {
                "id": PLUGIN_ID,
                "label": "Light switch",
                "description": "An example controller plugin",
                "interfaces": ["reporter", "controller"],
                "api_version": "1",
            }
        ],
    }


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.startswith("/report"):
            self.reply(report(self.server.host))
        else:
            self.send_error(404)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        request = json.loads(self.rfile.read(length) or b"{}")
        if not self.path.startswith("/control"):
            return self.send_error(404)
        control = request.get("Control")
        if control not in ("on", "off"):
            return self.reply({"error": "unknown control %r" % control})
        state["light"] = control
        self.reply({"shortcutReport": report(self.server.host)})

    def log_message(self, fmt, *args):
        sys.stderr.write("light: " + fmt % args + "\n")

    def address_string(self):
        return "scope-probe"


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "/var/run/scope/plugins/light.sock"
    host = sys.argv[2] if len(sys.argv) > 2 else socket.gethostname()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if os.path.exists(path):
        os.unlink(path)
    server = Server(path, Handler)
    server.host = host
    try:
        server.serve_forever()
    finally:
        os.unlink(path)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
# Opens N idle TLS connections to 127.0.0.1:PORT (handshake done, nothing sent) and holds them
# until stdin closes; prints "ready N" once all are up. For RSS-per-idle-connection figures.
import selectors
import socket
import ssl
import sys

port, count, ca, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
conns = []
batch = 200
pending = []
sel = selectors.DefaultSelector()
opened = 0
while opened < count or pending:
    while opened < count and len(pending) < batch:
        raw = socket.create_connection(("127.0.0.1", port))
        raw.setblocking(False)
        s = ctx.wrap_socket(raw, server_hostname=name, do_handshake_on_connect=False)
        pending.append(s)
        opened += 1
    still = []
    for s in pending:
        try:
            s.do_handshake()
            conns.append(s)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            still.append(s)
    if still and len(still) == len(pending):
        rl = [s for s in still]
        sel_r = selectors.DefaultSelector()
        for s in rl:
            sel_r.register(s, selectors.EVENT_READ)
        sel_r.select(timeout=1.0)
        sel_r.close()
    pending = still
print("ready %d" % len(conns), flush=True)
sys.stdin.read()

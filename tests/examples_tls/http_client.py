"""HTTP/1.1-over-TLS checks of //examples:https_hello with Python's ssl module.

Usage: http_client.py PORT CAFILE [--idle SECONDS]. Exits non-zero with a message naming the
failed check. With --idle, only checks that a server started with --idle-timeout SECONDS closes
an idle connection: not before SECONDS, and well before a generous deadline.
"""
import http.client
import socket
import ssl
import sys
import time

PORT = int(sys.argv[1])
CTX = ssl.create_default_context(cafile=sys.argv[2])
HELLO = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nhello world\n"


def connect():
    raw = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    return CTX.wrap_socket(raw, server_hostname="example.com")


def read_response(f):
    """One response: (status line, {lower-case header: value}, body) or None at EOF."""
    status = f.readline()
    if not status:
        return None
    headers = {}
    while True:
        line = f.readline()
        assert line, "EOF inside response headers"
        if line == b"\r\n":
            break
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = f.read(int(headers.get("content-length", "0")))
    return status.decode().rstrip("\r\n"), headers, body


def expect_eof(s, f, what):
    try:
        rest = f.read()
    except (ConnectionResetError, ssl.SSLError) as e:
        raise AssertionError(f"{what}: expected a clean close, got {e!r}")
    assert rest == b"", f"{what}: data after the last response: {rest!r}"


def check(name, fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - report any failure with the check's name
        print(f"FAIL: python {name}: {e!r}")
        sys.exit(1)
    print(f"ok: python {name}")


def keep_alive():
    # Three requests, one at a time, on one connection; the exact response bytes.
    s = connect()
    assert s.version() in ("TLSv1.3", "TLSv1.2"), s.version()
    for i in range(3):
        s.sendall(b"GET /%d HTTP/1.1\r\nHost: example.com\r\n\r\n" % i)
        got = b""
        while len(got) < len(HELLO):
            chunk = s.recv(len(HELLO) - len(got))
            assert chunk, f"EOF after {len(got)} bytes of response {i}"
            got += chunk
        assert got == HELLO, got
    s.close()


def http_client_module():
    # http.client reuses one connection for three requests. (It connects to 127.0.0.1, which the
    # certificate does not name, so this context checks the chain only.)
    ctx = ssl.create_default_context(cafile=sys.argv[2])
    ctx.check_hostname = False
    conn = http.client.HTTPSConnection("127.0.0.1", PORT, context=ctx, timeout=10)
    socks = []
    for i in range(3):
        conn.request("GET", f"/x{i}", headers={"Host": "example.com"})
        r = conn.getresponse()
        assert r.status == 200 and r.read() == b"hello world\n", r.status
        socks.append(conn.sock)
    assert all(s is socks[0] for s in socks), "connection was not reused"
    conn.close()


def pipelined():
    s = connect()
    f = s.makefile("rb")
    s.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
              b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
              b"\r\nHEAD /c HTTP/1.1\r\nhost: x\r\n\r\n"
              b"GET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, _, body = read_response(f)
    assert status == "HTTP/1.1 200 OK" and body == b"hello world\n", (status, body)
    status, headers, _ = read_response(f)
    assert status == "HTTP/1.1 405 Method Not Allowed", status
    assert headers.get("allow") == "GET, HEAD", headers
    status = f.readline()
    assert status == b"HTTP/1.1 200 OK\r\n", status
    while f.readline() != b"\r\n":
        pass  # HEAD: headers only
    status, headers, body = read_response(f)
    assert status == "HTTP/1.1 200 OK" and body == b"hello world\n", (status, body)
    assert headers.get("connection") == "close", headers
    expect_eof(s, f, "after Connection: close")


def split_reads():
    # A request dribbled byte by byte, a body split across writes, then another request.
    s = connect()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    for b in b"GET /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab":
        s.sendall(bytes([b]))
    s.sendall(b"cd")
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    for _ in range(2):
        status, _, body = read_response(f)
        assert status == "HTTP/1.1 200 OK" and body == b"hello world\n", (status, body)
    s.close()


def http10():
    s = connect()
    f = s.makefile("rb")
    s.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    status, headers, body = read_response(f)
    assert status == "HTTP/1.1 200 OK" and headers.get("connection") == "keep-alive", headers
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    status, headers, body = read_response(f)
    assert body == b"hello world\n" and headers.get("connection") == "close", headers
    expect_eof(s, f, "after an HTTP/1.0 request without keep-alive")


def bad(request, what, status_line="HTTP/1.1 400 Bad Request", cause=""):
    s = connect()
    f = s.makefile("rb")
    s.sendall(request)
    r = read_response(f)
    assert r is not None, f"{what}: no response"
    status, headers, body = r
    assert status == status_line, f"{what}: {status}"
    assert headers.get("connection") == "close", headers
    assert cause.encode() in body, f"{what}: the body does not name the cause {cause!r}: {body!r}"
    expect_eof(s, f, what)


def malformed():
    bad(b"GARBAGE\r\n\r\n", "request line without spaces")
    bad(b"GET /\r\n\r\n", "request line without a version")
    bad(b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", "request line with a bad version")
    bad(b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", "method that is not a token")
    bad(b"GET / HTTP/1.1\r\nHost x\r\n\r\n", "header without a colon")
    bad(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", "space before the colon")
    bad(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", "bad Content-Length")
    bad(b"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 without Host", cause="without Host")
    bad(b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", "obs-fold", cause="obs-fold")
    bad(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "Content-Length with Transfer-Encoding", cause="together")
    bad(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "chunked body",
        "HTTP/1.1 501 Not Implemented", cause="chunked")
    bad(b"GET / HTTP/2.0\r\n\r\n", "HTTP/2.0", "HTTP/1.1 505 HTTP Version Not Supported")
    # Random bytes (never a request line): answered at once, not waited on.
    bad(bytes(range(256)) * 4, "binary garbage", cause="not a token")


def bare_lf():
    # RFC 9112 §2.2: a bare LF ends a line.
    s = connect()
    f = s.makefile("rb")
    s.sendall(b"GET /1 HTTP/1.1\nHost: x\n\nGET /2 HTTP/1.0\n\n")
    status, _, body = read_response(f)
    assert status == "HTTP/1.1 200 OK" and body == b"hello world\n", (status, body)
    status, headers, body = read_response(f)
    assert body == b"hello world\n" and headers.get("connection") == "close", headers
    expect_eof(s, f, "after an HTTP/1.0 request with bare LFs")


def overlong():
    too_large = "HTTP/1.1 431 Request Header Fields Too Large"
    bad(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (17 * 1024), "17 KiB of headers, unfinished",
        too_large)
    bad(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (17 * 1024) + b"\r\n\r\n", "17 KiB of headers",
        too_large)
    bad(b"GET /" + b"a" * (9 * 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n", "a 9 KiB request line",
        "HTTP/1.1 414 URI Too Long")
    # Just under the limit is fine.
    s = connect()
    f = s.makefile("rb")
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (15 * 1024) + b"\r\n\r\n")
    status, _, body = read_response(f)
    assert status == "HTTP/1.1 200 OK" and body == b"hello world\n", status
    s.close()


def idle(seconds):
    # A connection that sends one request and then nothing is closed after `seconds`.
    s = connect()
    f = s.makefile("rb")
    s.settimeout(seconds + 60)  # the generous deadline
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, _ = read_response(f)
    assert status == "HTTP/1.1 200 OK", status
    start = time.monotonic()
    expect_eof(s, f, "idle connection")
    waited = time.monotonic() - start
    assert waited >= seconds * 0.9, f"closed after {waited:.2f} s, before the {seconds} s timeout"


if len(sys.argv) > 3 and sys.argv[3] == "--idle":
    check(f"idle connection closed after {sys.argv[4]} s", lambda: idle(float(sys.argv[4])))
    sys.exit(0)

check("3 keep-alive requests on one connection", keep_alive)
check("http.client reuses the connection", http_client_module)
check("pipelined GET, POST with body, HEAD, Connection: close", pipelined)
check("requests split across reads", split_reads)
check("HTTP/1.0 keep-alive and close", http10)
check("bare LF line ends", bare_lf)
check("malformed requests get 400 (501, 505) with the cause and a close", malformed)
check("an over-long request line gets 414, over-long headers 431", overlong)

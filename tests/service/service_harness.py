"""The harness shared by the end-to-end tests of //examples:echo_service (tests/service) and the
hostile-peer tests (tests/hostile): a Service runs one echo_service process and reads its JSON log
lines, sd_notify datagrams, listening ports and /metrics; ServiceTest starts services for a case
and stops them (SIGTERM, exit 0) at its end; small client helpers (TLS context for example.com,
echo, waits for the server's close) and a strict Prometheus text parser.

    import service_harness as harness
    from service_harness import ServiceTest, echo

    class MyTest(ServiceTest):
        def test_echo(self):
            svc = self.start("--listen", self.ssl_listen(), "--metrics", self.METRICS)
            echo(svc.tls(), b"hi\n")
            svc.wait_metric("whorl_connections_accepted_total", 1)

    if __name__ == "__main__":
        harness.main()   # --binary PATH --certs DIR [unittest args]

Waits are on what the service says, with deadlines, never sleeps. Each Service belongs to the case
that started it (its cleanups stop it and close its client sockets); BINARY and CERTS are set once
by main(). Standard library only. Honours Bazel's TEST_TMPDIR, TEST_TOTAL_SHARDS /
TEST_SHARD_INDEX and TEST_UNDECLARED_OUTPUTS_DIR (each service's full log is kept there).
"""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
import uuid

BINARY = None  # set by main()
CERTS = None  # the certs/ directory
HOSTNAME = "example.com"  # the name in certs/server.pem

# Upper bounds for waits: generous, since they only bound how long a broken service takes to fail
# a case (sanitizer builds are several times slower).
START_TIMEOUT = 30.0
WAIT = 10.0


def now():
    return time.monotonic()


def ca_file():
    return os.path.join(CERTS, "public.pem")


def server_pem():
    return os.path.join(CERTS, "server.pem")


def client_context(max_version=None, alpn=None):
    ctx = ssl.create_default_context(cafile=ca_file())
    ctx.check_hostname = True
    if max_version is not None:
        ctx.maximum_version = max_version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def recv_exact(sock, n, timeout=WAIT):
    """Reads exactly n bytes; fails on EOF or after `timeout` seconds."""
    sock.settimeout(timeout)
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise AssertionError("EOF after %d of %d echoed bytes" % (len(out), n))
        out += chunk
    return out


def echo(sock, payload, timeout=WAIT):
    sock.sendall(payload)
    got = recv_exact(sock, len(payload), timeout)
    if got != payload:
        raise AssertionError("echo mismatch: sent %r, got %r" % (payload[:64], got[:64]))
    return got


def wait_closed_by_server(sock, timeout=WAIT):
    """Waits until the server ends the connection; returns what arrived before that ("EOF",
    "reset" or the SSL error's name). Fails if the connection is still open after `timeout`."""
    sock.settimeout(timeout)
    got = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return got, "EOF"
            got += chunk
    except (ConnectionResetError, BrokenPipeError):
        return got, "reset"
    except ssl.SSLError as e:  # e.g. SSLEOFError, or an alert
        return got, type(e).__name__
    except socket.timeout:
        raise AssertionError("the server did not close the connection within %.1f s" % timeout)


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A port nothing listens on right now (for the few cases that need to know it in advance)."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def parse_prometheus(text):
    """Parses Prometheus text exposition format 0.0.4 strictly enough to catch broken output.
    Returns {(name, frozenset(labels.items())): float}."""
    sample_re = re.compile(
        r'^([a-zA-Z_:][a-zA-Z0-9_:]*)'
        r'(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")'
        r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*,?)?\})?'
        r' (-?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|NaN|\+Inf|-Inf))'
        r'(?: -?[0-9]+)?$')
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
    types = {}
    samples = {}
    if not text.endswith("\n"):
        raise AssertionError("exposition does not end with a newline")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("#"):
            m = re.match(r"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$", line)
            if not m:
                raise AssertionError("line %d: bad comment line %r" % (n, line))
            if m.group(1) == "TYPE":
                if m.group(3) not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    raise AssertionError("line %d: bad type %r" % (n, line))
                if m.group(2) in types:
                    raise AssertionError("line %d: second TYPE for %s" % (n, m.group(2)))
                types[m.group(2)] = m.group(3)
            continue
        if not line.strip():
            raise AssertionError("line %d: empty line" % n)
        m = sample_re.match(line)
        if not m:
            raise AssertionError("line %d: not `name{labels} value`: %r" % (n, line))
        name = m.group(1)
        if name not in types:
            raise AssertionError("line %d: sample of %s before its # TYPE" % (n, name))
        labels = frozenset(label_re.findall(m.group(2) or ""))
        key = (name, labels)
        if key in samples:
            raise AssertionError("line %d: duplicate series %r" % (n, line))
        samples[key] = float(m.group(3))
    return samples


def metric_sum(samples, name, **labels):
    """The sum of every series of `name` whose labels include `labels` (e.g. over shards). The
    family must be in the scrape; a labelled series that is not (a dynamic label value that never
    happened) counts as 0."""
    if not any(n == name for n, _ in samples):
        raise AssertionError("no metric %s in the scrape" % name)
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


class Service:
    """One echo_service process: its log (parsed JSON lines), its sd_notify socket, its ports."""

    def __init__(self, case, args, name="svc", notify=True, env=None, preexec_fn=None):
        self.case = case
        self.name = name
        self.args = list(args)
        self.lines = []  # raw stderr lines
        self.records = []  # parsed: dict for JSON lines, {"raw": line} otherwise
        self.cond = threading.Condition()
        self.notify_messages = []
        self.notify_sock = None
        self.notify_name = None
        self.listening = []  # [(host, port, "TLS"|"plain TCP")] in --listen order
        self.metrics_port = None
        if env is None:
            env = dict(os.environ)
            env.pop("NOTIFY_SOCKET", None)
        if notify:
            # An abstract socket: no path-length worries in Bazel's deep TEST_TMPDIR.
            self.notify_name = "whorl-test-" + uuid.uuid4().hex
            self.notify_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.notify_sock.bind("\0" + self.notify_name)
            env["NOTIFY_SOCKET"] = "@" + self.notify_name
        self.proc = subprocess.Popen([BINARY] + self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                     preexec_fn=preexec_fn)
        self.started = now()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.stdout = b""
        self.out_reader = threading.Thread(target=self._read_stdout, daemon=True)
        self.out_reader.start()

    def _read(self):
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict):
                    rec = {"raw": line}
            except ValueError:
                rec = {"raw": line}
            with self.cond:
                self.lines.append(line)
                self.records.append(rec)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def tail(self, n=40):
        """The end of the log, for failure messages (the whole log is kept by _keep_logs)."""
        with self.cond:
            lines = self.lines[-n:]
            skipped = len(self.lines) - len(lines)
        return ("[%d lines before]\n" % skipped if skipped else "") + "\n".join(lines)

    def _read_stdout(self):
        self.stdout = self.proc.stdout.read()

    # --- logs ---------------------------------------------------------------------------------

    def wait_log(self, pred, timeout=WAIT, start=0, what="a log line"):
        """The first record at index >= start for which pred(record) holds, waiting for it."""
        deadline = now() + timeout
        with self.cond:
            i = start
            while True:
                while i < len(self.records):
                    if pred(self.records[i]):
                        return self.records[i]
                    i += 1
                left = deadline - now()
                if left <= 0:
                    raise AssertionError("%s: no %s within %.1f s; log:\n%s" %
                                         (self.name, what, timeout, self.tail()))
                if self.proc.poll() is not None and not self.reader.is_alive():
                    raise AssertionError("%s exited (%s) without %s; log:\n%s" %
                                         (self.name, self.proc.returncode, what,
                                          self.tail()))
                self.cond.wait(min(left, 0.2))

    def wait_msg(self, pattern, timeout=WAIT, start=0):
        rx = re.compile(pattern)
        return self.wait_log(lambda r: bool(rx.search(r.get("msg", r.get("raw", "")))),
                             timeout, start, what="log line matching /%s/" % pattern)

    def mark(self):
        """The current end of the log, for waits on what comes after it."""
        with self.cond:
            return len(self.records)

    def closed_events(self, start=0):
        with self.cond:
            return [r for r in self.records[start:] if r.get("msg") == "connection closed"]

    def wait_closed_event(self, peer, timeout=WAIT, start=0):
        """The "connection closed" record of the connection from `peer` ("host:port")."""
        return self.wait_log(
            lambda r: r.get("msg") == "connection closed" and r.get("peer") == peer,
            timeout, start, what="'connection closed' for peer %s" % peer)

    def messages(self):
        with self.cond:
            return [r.get("msg", r.get("raw", "")) for r in self.records]

    # --- sd_notify ----------------------------------------------------------------------------

    def wait_notify(self, state, timeout=WAIT):
        """Reads notify datagrams until one carries `state` (e.g. "READY=1"); returns the list of
        datagrams read by this call (the last one holding `state`)."""
        deadline = now() + timeout
        got = []
        while True:
            left = deadline - now()
            if left <= 0:
                raise AssertionError("%s: no %s from sd_notify within %.1f s (got %r); log:\n%s" %
                                     (self.name, state, timeout, got, self.tail()))
            self.notify_sock.settimeout(min(left, 0.2))
            try:
                data = self.notify_sock.recv(4096).decode()
            except socket.timeout:
                if self.proc.poll() is not None:
                    raise AssertionError("%s exited (%s) before %s; log:\n%s" %
                                         (self.name, self.proc.returncode, state,
                                          self.tail()))
                continue
            self.notify_messages.append(data)
            got.append(data)
            if state in data.split("\n"):
                return got

    # --- start-up -----------------------------------------------------------------------------

    def wait_ready(self):
        """Waits until the service is up: READY=1 (sent after run() blocks the signals, so a
        SIGHUP/SIGTERM from here on is handled, not fatal) and its start-up log lines."""
        if self.notify_sock is not None:
            self.wait_notify("READY=1", START_TIMEOUT)
        self.wait_msg(r"^echo service: ", START_TIMEOUT)
        if self.notify_sock is None:
            self.wait_signals_blocked()
        with self.cond:
            for r in self.records:
                m = re.match(r"^listening on (\[[^\]]+\]|[^ :]+):(\d+) \((TLS|plain TCP)",
                             r.get("msg", ""))
                if m:
                    self.listening.append((m.group(1).strip("[]"), int(m.group(2)), m.group(3)))
                m = re.match(r"^metrics on http://([^/]+):(\d+)/metrics$", r.get("msg", ""))
                if m:
                    self.metrics_port = int(m.group(2))
        return self

    def wait_signals_blocked(self):
        """Without READY=1 to wait for: waits until the main thread blocks SIGHUP and SIGTERM
        (Runtime::run reads them from a signalfd). The service logs its start-up and accepts
        connections before that; a signal in between takes its default action (see the report:
        it kills the process)."""
        path = "/proc/%d/task/%d/status" % (self.proc.pid, self.proc.pid)
        want = (1 << (signal.SIGHUP - 1)) | (1 << (signal.SIGTERM - 1))
        deadline = now() + START_TIMEOUT
        while True:
            with open(path) as f:
                blocked = int(re.search(r"^SigBlk:\s*([0-9a-f]+)$", f.read(), re.M).group(1), 16)
            if blocked & want == want:
                return
            if now() > deadline:
                raise AssertionError("%s never blocked SIGHUP/SIGTERM; log:\n%s" %
                                     (self.name, self.tail()))
            time.sleep(0.005)  # polling /proc: there is nothing to wait on

    def port(self, i=0):
        return self.listening[i][1]

    # --- clients ------------------------------------------------------------------------------

    def tcp(self, i=0, timeout=WAIT):
        host = self.listening[i][0]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect((host, self.port(i)))
        self.case.addCleanup(s.close)
        return s

    def tls(self, i=0, ctx=None, session=None, timeout=WAIT, before_handshake=b"", strict=False):
        """A TLS client connection to listener i. strict: an EOF without close_notify raises
        SSLEOFError instead of reading as b"" (so b"" means the server sent close_notify)."""
        raw = self.tcp(i, timeout)
        if before_handshake:
            raw.sendall(before_handshake)
        ctx = ctx or client_context()
        s = ctx.wrap_socket(raw, server_hostname=HOSTNAME, session=session,
                            suppress_ragged_eofs=not strict)
        self.case.addCleanup(s.close)
        return s

    # --- metrics ------------------------------------------------------------------------------

    def scrape(self):
        url = "http://127.0.0.1:%d/metrics" % self.metrics_port
        with urllib.request.urlopen(url, timeout=WAIT) as resp:
            if resp.status != 200:
                raise AssertionError("GET /metrics: %d" % resp.status)
            ctype = resp.headers.get("Content-Type", "")
            if not ctype.startswith("text/plain"):
                raise AssertionError("GET /metrics: Content-Type %r" % ctype)
            return parse_prometheus(resp.read().decode("utf-8"))

    def wait_metric(self, name, value, timeout=WAIT, **labels):
        """Waits until metric_sum(name, labels) == value (counters update on the shard threads)."""
        deadline = now() + timeout
        while True:
            got = metric_sum(self.scrape(), name, **labels)
            if got == value:
                return
            if now() > deadline:
                raise AssertionError("%s%r is %s, want %s" % (name, labels, got, value))
            time.sleep(0.05)  # a poll interval, not a synchronisation

    # --- signals and exit ---------------------------------------------------------------------

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=WAIT):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s still running %.1f s later; log:\n%s" %
                                 (self.name, timeout, self.tail()))
        self.reader.join(WAIT)
        self.out_reader.join(WAIT)
        return rc

    def stop(self):
        """SIGTERM; the service must exit 0."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        rc = self.wait_exit(WAIT + 10)
        if rc != 0:
            raise AssertionError("%s exited %s after SIGTERM; log:\n%s" %
                                 (self.name, rc, self.tail()))

    def kill(self):
        """The last cleanup: SIGKILL if still running, then closes the pipes and sockets."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(WAIT)
        self.out_reader.join(WAIT)
        self.proc.stderr.close()
        self.proc.stdout.close()
        if self.notify_sock is not None:
            self.notify_sock.close()


class ServiceTest(unittest.TestCase):
    """Base: temp dir, service start with cleanup (SIGTERM, exit 0) and log keeping."""

    def setUp(self):
        base = os.environ.get("TEST_TMPDIR") or tempfile.gettempdir()
        self.tmp = tempfile.mkdtemp(prefix=self._testMethodName[:40] + "-", dir=base)
        self.services = []
        self.addCleanup(self._keep_logs)

    def _keep_logs(self):
        outdir = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR")
        failed = not getattr(getattr(self, "_outcome", None), "success", True)
        for svc in self.services:
            text = "\n".join(svc.lines) + "\n"
            if outdir:
                path = os.path.join(outdir, "%s.%s.log" % (self._testMethodName, svc.name))
                with open(path, "w") as f:
                    f.write(text)
            if failed:
                sys.stderr.write("---- %s: %s log (end) ----\n%s\n" %
                                 (self._testMethodName, svc.name, svc.tail(150)))
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, *args, name="svc", ready=True, notify=True, clean_stop=True, env=None,
              log_format="json", drain_timeout="3", shards="2", preexec_fn=None):
        """Starts the service with `args` after these defaults (None: leave out): JSON logs, a
        3 s drain, 2 shards (so that connections spread over two reactors). preexec_fn runs in
        the child before exec (e.g. to lower a resource limit)."""
        argv = []
        if log_format:
            argv += ["--log-format", log_format]
        if drain_timeout is not None:
            argv += ["--drain-timeout", drain_timeout]
        if shards is not None:
            argv += ["--shards", shards]
        argv += list(args)
        svc = Service(self, argv, name=name, notify=notify, env=env, preexec_fn=preexec_fn)
        self.services.append(svc)
        # Cleanups run last-in first-out: the client sockets registered later close first, then
        # the service gets SIGTERM and must exit 0 (kill is the fallback if that check fails).
        self.addCleanup(svc.kill)
        if clean_stop:
            self.addCleanup(svc.stop)
        if ready:
            svc.wait_ready()
        return svc

    def write(self, name, text, mode="w"):
        path = os.path.join(self.tmp, name)
        with open(path, mode) as f:
            f.write(text)
        return path

    def replace_file(self, path, source=None, text=None):
        """Replaces `path` atomically (rename over it), as a deployment tool would."""
        tmp = path + ".new"
        if source is not None:
            shutil.copyfile(source, tmp)
        else:
            with open(tmp, "w") as f:
                f.write(text)
        os.replace(tmp, path)

    def make_second_certificate(self):
        """A new key and a leaf certificate for example.com signed by certs/server.pem's key
        (certs/public.pem is a CA certificate), so clients trusting public.pem accept it; its
        subject, serial and key differ from server.pem's. Returns the key+cert PEM file."""
        key = os.path.join(self.tmp, "second.key")
        csr = os.path.join(self.tmp, "second.csr")
        crt = os.path.join(self.tmp, "second.crt")
        ext = self.write("second.ext",
                         "basicConstraints = critical, CA:FALSE\n"
                         "keyUsage = critical, digitalSignature\n"
                         "extendedKeyUsage = serverAuth\n"
                         "subjectAltName = DNS:example.com\n"
                         "subjectKeyIdentifier = hash\n"
                         "authorityKeyIdentifier = keyid\n")
        run = lambda *a: subprocess.run(["openssl"] + list(a), check=True, capture_output=True)
        run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
        run("req", "-new", "-key", key, "-subj", "/O=whorl/CN=whorl reload test",
            "-out", csr)
        run("x509", "-req", "-in", csr, "-CA", ca_file(), "-CAkey", server_pem(),
            "-set_serial", "0x5e11ab1e%08x" % (os.getpid() & 0xffffffff), "-days", "2",
            "-extfile", ext, "-out", crt)
        pem = os.path.join(self.tmp, "second.pem")
        with open(pem, "w") as out:
            for part in (key, crt):
                with open(part) as f:
                    out.write(f.read())
        return pem

    def ssl_listen(self, pem=None, extra=""):
        return "ssl:0:privateKey=%s:interface=127.0.0.1%s" % (pem or server_pem(), extra)

    TCP = "tcp:0:interface=127.0.0.1"
    METRICS = "tcp:0:interface=127.0.0.1"


def peer_of(sock):
    host, port = sock.getsockname()[:2]
    return ("[%s]:%d" % (host, port)) if ":" in host else ("%s:%d" % (host, port))


def load_tests(loader, standard_tests, pattern):
    """Bazel test sharding: each shard runs every TEST_TOTAL_SHARDS-th case."""
    total = int(os.environ.get("TEST_TOTAL_SHARDS", "1"))
    index = int(os.environ.get("TEST_SHARD_INDEX", "0"))
    status = os.environ.get("TEST_SHARD_STATUS_FILE")
    if status:
        open(status, "w").close()
    if total <= 1:
        return standard_tests

    def flatten(suite):
        for t in suite:
            if isinstance(t, unittest.TestSuite):
                yield from flatten(t)
            else:
                yield t

    tests = sorted(flatten(standard_tests), key=lambda t: t.id())
    return unittest.TestSuite(t for i, t in enumerate(tests) if i % total == index)


USAGE = """usage: %s --binary PATH --certs DIR [unittest arguments, e.g. a class or case name]

  --binary PATH   the echo_service binary under test
  --certs DIR     the repository's certs/ directory (public.pem, server.pem, test/)
  --help          this text; unittest's own options follow its -h
"""


def main():
    """Takes --binary PATH and --certs DIR (or --binary=PATH, --certs=DIR) off the command line,
    then runs unittest.main on the calling script's cases with the rest."""
    global BINARY, CERTS
    argv = [sys.argv[0]]
    args = sys.argv[1:]
    while args:
        a = args.pop(0)
        name, eq, value = a.partition("=")
        if name in ("--binary", "--certs"):
            if not eq:
                if not args:
                    sys.exit("%s needs a value\n\n%s" % (name, USAGE % sys.argv[0]))
                value = args.pop(0)
            if name == "--binary":
                BINARY = os.path.abspath(value)
            else:
                CERTS = os.path.abspath(value)
        elif a == "--help":
            sys.stdout.write(USAGE % sys.argv[0])
            sys.exit(0)
        else:
            argv.append(a)
    if not BINARY or not CERTS:
        sys.exit(USAGE % sys.argv[0])
    unittest.main(argv=argv, verbosity=2)

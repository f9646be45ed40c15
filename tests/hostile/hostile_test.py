"""Hostile peers against //examples:echo_service: each case attacks a fresh service and asserts
that it stays alive and serves a normal TLS client afterwards (and during, where that makes
sense), that it logs and counts every close it makes, and that its descriptors return to their
baseline. Each case prints one line for the record, e.g.

  hostile: scenario=slowloris_handshake connections=100 fds_before=21 fds_peak=121 fds_after=21
           rss_kb_before=9876 rss_kb_peak=12345 rss_kb_after=10001 seconds=4.2   (one line)

(fds: /proc/PID/fd; rss: VmRSS of /proc/PID/status; peak: the largest sample taken during the
attack), and appends it to $TEST_UNDECLARED_OUTPUTS_DIR/hostile_usage.txt.

  SlowlorisTest          ClientHellos dribbled a byte at a time -> --handshake-timeout
  SendNeverReadTest      clients that send and never read -> --send-timeout
  MaxConnectionsFloodTest  silent connections past --max-connections -> refused, slots return
  ResetStormTest         partial ClientHellos then RST (SO_LINGER 0); RSTs with the echo in flight
  FdExhaustionTest       a flood past RLIMIT_NOFILE -> accept errors counted, served after
  RenegotiationTest      TLS 1.2 renegotiation (openssl s_client "R", raw), TLS 1.3 ClientHello
  RecordFloodTest        zero-length and one-byte application-data records (TLS 1.3 and 1.2)
  MetricsFloodTest       silent connections to --metrics -> --metrics-max-connections, timeout
  TlsRecordsTest         the record code against published AES, AES-GCM, ChaCha20-Poly1305 vectors

Usage (from the runfiles root, as hostile_test.sh does; unittest arguments select cases):

    PYTHONPATH=tests/service python3 tests/hostile/hostile_test.py --binary PATH --certs DIR

Shares tests/service/service_harness.py with the echo_service tests. Waits are on what the
service says or on its sockets, with deadlines; the only sleeps pace the attackers. Standard
library only (tls_records.py builds the records Python's ssl never writes).
"""

import os
import re
import resource
import select
import socket
import ssl
import struct
import subprocess
import threading
import time
import unittest

import service_harness as harness
from service_harness import (HOSTNAME, WAIT, ServiceTest, client_context, echo, metric_sum, now,
                             peer_of)
from service_harness import load_tests  # noqa: F401 -- unittest calls it here (Bazel sharding)
import tls_records
from tls_records import RecordClient


# --- the service's process ---------------------------------------------------------------------


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def fd_targets(pid):
    """What the descriptors are (for failure messages): "socket:[123]", "anon_inode:[io_uring]"."""
    out = []
    for fd in sorted(os.listdir("/proc/%d/fd" % pid), key=int):
        try:
            out.append("%s -> %s" % (fd, os.readlink("/proc/%d/fd/%s" % (pid, fd))))
        except OSError:
            pass
    return out


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"^VmRSS:\s*(\d+) kB$", f.read(), re.M).group(1))


class Usage:
    """Descriptors and resident memory of one service: at the baseline, the peak of the samples
    taken during an attack, and after it."""

    def __init__(self, svc):
        self.pid = svc.proc.pid
        self.t0 = now()
        self.fds_before = fd_count(self.pid)
        self.rss_before = rss_kb(self.pid)
        self.fds_peak = self.fds_before
        self.rss_peak = self.rss_before

    def sample(self):
        self.fds_peak = max(self.fds_peak, fd_count(self.pid))
        self.rss_peak = max(self.rss_peak, rss_kb(self.pid))


# --- attackers' helpers ------------------------------------------------------------------------


def client_hello(max_version=None):
    """The first flight of a Python TLS client (one record holding its ClientHello)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context(max_version).wrap_bio(incoming, outgoing, server_hostname=HOSTNAME)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def read_until_closed(socks, timeout, on_tick=None, count=None):
    """Waits until the server has ended every connection in `socks`, or `count` of them (EOF or
    reset; bytes before it are read and dropped). Returns {sock: seconds from the call to its
    end}; the ones still open at `timeout` are missing. on_tick, if given, runs between waits (at
    least every 0.1 s)."""
    t0 = now()
    ended = {}
    poller = select.poll()  # not select(): descriptors may be above FD_SETSIZE
    by_fd = {}
    for s in socks:
        poller.register(s, select.POLLIN)
        by_fd[s.fileno()] = s
    while len(ended) < (len(socks) if count is None else count):
        left = t0 + timeout - now()
        if left <= 0:
            break
        if on_tick:
            on_tick()
        for fd, _ in poller.poll(int(min(left, 0.1) * 1000) + 1):
            s = by_fd[fd]
            try:
                data = s.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            except BlockingIOError:
                continue
            if not data:
                ended[s] = now() - t0
                poller.unregister(fd)
    return ended


def connect_many(host, port, n, case, blocking=True):
    """n TCP connections that say nothing; closed by the case's cleanup. blocking=False starts
    the connects and returns without waiting for them (past a full backlog they may not finish)."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        case.addCleanup(s.close)
        if blocking:
            s.settimeout(WAIT)
            s.connect((host, port))
            s.setblocking(False)
        else:
            s.setblocking(False)
            err = s.connect_ex((host, port))
            if err not in (0, 115):  # EINPROGRESS
                raise OSError(err, os.strerror(err))
        socks.append(s)
    return socks


def reset(sock):
    """Closes with an RST instead of a FIN (SO_LINGER on, zero seconds)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class HostileTest(ServiceTest):
    """Base: a service with one TLS listener and /metrics, its baseline, and the checks every
    case ends with."""

    def start_service(self, *args, **kw):
        svc = self.start("--listen", self.ssl_listen(), "--metrics", self.METRICS, *args, **kw)
        # The baseline is taken before any connection; a normal client then warms the service up
        # (lazy set-up, if any, would fail here rather than look like a leak later).
        fds = fd_count(svc.proc.pid)
        self.serve_normal_client(svc)
        self.wait_fds(svc, fds)
        return svc

    def serve_normal_client(self, svc, payload=b"a normal client\n", retry_for=0.0):
        """A TLS client that verifies the server, is echoed and closes with close_notify.
        retry_for: seconds during which a failure to connect or to be echoed is retried (a
        service that is getting its descriptors back). Returns once the service has logged the
        orderly close (by then the connection's place among --max-connections is free again)."""
        deadline = now() + retry_for
        while True:
            try:
                mark = svc.mark()
                s = svc.tls()
                peer = peer_of(s)
                echo(s, payload)
                s.unwrap().close()
                rec = svc.wait_closed_event(peer, start=mark)
                self.assertEqual(rec["kind"], "closed", rec)
                return
            except (AssertionError, OSError):  # ssl.SSLError and timeouts are OSErrors
                if now() > deadline:
                    raise
                time.sleep(0.05)  # a client's retry interval

    def wait_fds(self, svc, want, timeout=WAIT * 2):
        """Waits until the service has at most `want` descriptors (connections close
        asynchronously). At most, not exactly: under ASan+UBSan the sanitizer runtime opens a pipe
        for a moment (its memory-accessibility check), so a baseline sampled at that moment counts
        descriptors that are gone a little later; a leak stays above the baseline."""
        deadline = now() + timeout
        while True:
            got = fd_count(svc.proc.pid)
            if got <= want:
                return got
            if now() > deadline:
                raise AssertionError("%s has %d descriptors, %d at the baseline:\n%s" %
                                     (svc.name, got, want, "\n".join(fd_targets(svc.proc.pid))))
            time.sleep(0.05)  # polling /proc: there is nothing to wait on

    def finish(self, svc, usage, scenario, connections):
        """The checks every case ends with: the service is alive and serves a normal client, no
        client connection is left open, its descriptors are back at the baseline. Then the
        record line."""
        self.assertIsNone(svc.proc.poll(), "the service exited")
        self.serve_normal_client(svc, b"served after %s\n" % scenario.encode())
        svc.wait_metric("whorl_connections_open", 0)
        fds_after = self.wait_fds(svc, usage.fds_before)
        line = ("hostile: scenario=%s connections=%d fds_before=%d fds_peak=%d fds_after=%d "
                "rss_kb_before=%d rss_kb_peak=%d rss_kb_after=%d seconds=%.1f" %
                (scenario, connections, usage.fds_before, usage.fds_peak, fds_after,
                 usage.rss_before, usage.rss_peak, rss_kb(svc.proc.pid), now() - usage.t0))
        print(line, flush=True)
        outdir = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR")
        if outdir:
            with open(os.path.join(outdir, "hostile_usage.txt"), "a") as f:
                f.write(line + "\n")

    def closed_records(self, svc, peers, start, timeout=WAIT):
        """The "connection closed" records of `peers` ("host:port"), waiting for all of them."""
        peers = set(peers)

        def found():
            return {r["peer"]: r for r in svc.closed_events(start) if r.get("peer") in peers}

        with svc.cond:  # the log reader notifies it for every line
            if not svc.cond.wait_for(lambda: len(found()) == len(peers), timeout):
                raise AssertionError("%d of %d connections were not logged as closed; log:\n%s" %
                                     (len(peers) - len(found()), len(peers), svc.tail()))
            return found()

    def scrape_sum(self, svc, name, **labels):
        return metric_sum(svc.scrape(), name, **labels)


# 1 --------------------------------------------------------------------------------------------
class SlowlorisTest(HostileTest):
    CONNECTIONS = 100
    TIMEOUT = 2  # --handshake-timeout, seconds
    TICK = 0.1  # one byte per connection per tick: a 517-byte ClientHello would take 52 s

    def test_slowloris_handshake(self):
        svc = self.start_service("--handshake-timeout", str(self.TIMEOUT))
        usage = Usage(svc)
        hello = client_hello()
        self.assertGreater(len(hello) * self.TICK, self.TIMEOUT + WAIT,
                           "the ClientHello is too short to outlast the timeout at this pace")
        mark = svc.mark()
        socks = connect_many("127.0.0.1", svc.port(), self.CONNECTIONS, self)
        peers = [peer_of(s) for s in socks]
        sent = [0]
        next_tick = [now()]
        served_during = [False]

        def dribble():
            if now() < next_tick[0]:
                return
            next_tick[0] += self.TICK
            i = sent[0]
            for s in socks:
                try:
                    s.send(hello[i:i + 1])
                except OSError:  # closed by the server: read_until_closed sees it
                    pass
            sent[0] += 1
            if sent[0] == int(1 / self.TICK):  # a second in: everyone is mid-handshake
                usage.sample()
                self.serve_normal_client(svc, b"served during the slowloris\n")
                served_during[0] = True

        ended = read_until_closed(socks, self.TIMEOUT + WAIT, on_tick=dribble)
        self.assertEqual(len(ended), self.CONNECTIONS,
                         "%d dribbling connections outlived --handshake-timeout %d" %
                         (self.CONNECTIONS - len(ended), self.TIMEOUT))
        self.assertTrue(served_during[0])
        self.assertLess(sent[0], len(hello), "the whole ClientHello went out")
        self.assertGreater(min(ended.values()), self.TIMEOUT * 0.9,
                           "a connection was closed before the handshake timeout")
        recs = self.closed_records(svc, peers, mark)
        for rec in recs.values():
            self.assertEqual(rec["kind"], "timeout", rec)
            self.assertIn("handshake timed out", rec["reason"], rec)
            self.assertEqual(rec["tls_version"], "", rec)
            self.assertGreaterEqual(rec["duration_ms"], self.TIMEOUT * 1000 * 0.9, rec)
        svc.wait_metric("whorl_tls_handshakes_total", self.CONNECTIONS, result="failed",
                        reason="timeout")
        svc.wait_metric("whorl_connections_closed_total", self.CONNECTIONS, reason="timeout")
        self.finish(svc, usage, "slowloris_handshake", self.CONNECTIONS)


# 2 --------------------------------------------------------------------------------------------
class SendNeverReadTest(HostileTest):
    CLIENTS = 3
    TIMEOUT = 2  # --send-timeout, seconds

    def test_send_never_read(self):
        svc = self.start_service("--send-timeout", str(self.TIMEOUT))
        usage = Usage(svc)
        closed0 = self.scrape_sum(svc, "whorl_connections_closed_total", reason="send_timeout")
        mark = svc.mark()
        clients = []
        for _ in range(self.CLIENTS):
            raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.addCleanup(raw.close)
            # A small receive window (set before connecting): the echo backs up sooner.
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            raw.settimeout(WAIT)
            raw.connect(("127.0.0.1", svc.port()))
            # Strict: an end without close_notify raises instead of reading as b"".
            s = client_context().wrap_socket(raw, server_hostname=HOSTNAME,
                                             suppress_ragged_eofs=False)
            self.addCleanup(s.close)
            echo(s, b"from now on I only send\n")
            clients.append(s)
        peers = [peer_of(s) for s in clients]
        # Each sends until its own writes have been stuck for half a second: the server's send
        # buffer, its write queue (then it stops reading) and its receive buffer are full.
        chunk = b"never read this\n" * 4096
        sent = 0
        for s in clients:
            s.settimeout(0.5)
            t_fill = now()
            while True:
                try:
                    s.sendall(chunk)
                    sent += len(chunk)
                except socket.timeout:
                    break
                except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
                    break  # the send timeout already struck (a slow fill under a sanitizer)
                self.assertLess(now() - t_fill, WAIT * 3, "the buffers never filled")
        usage.sample()
        self.serve_normal_client(svc, b"served while others stopped reading\n")
        # Closed by the send timeout (no idle timeout is anywhere near), logged and counted.
        recs = self.closed_records(svc, peers, mark, timeout=self.TIMEOUT + WAIT)
        for rec in recs.values():
            self.assertEqual(rec["kind"], "send_timeout", rec)
            self.assertIn("send timeout", rec["reason"], rec)
        svc.wait_metric("whorl_connections_closed_total", closed0 + self.CLIENTS,
                        reason="send_timeout")
        for s in clients:  # and the clients see their connections end, abruptly
            got, how = harness.wait_closed_by_server(s)
            self.assertIn(how, ("reset", "SSLEOFError"))
        print("send never read: %d clients sent %d bytes" % (self.CLIENTS, sent), flush=True)
        self.finish(svc, usage, "send_never_read", self.CLIENTS)

# 3 --------------------------------------------------------------------------------------------
class MaxConnectionsFloodTest(HostileTest):
    LIMIT = 20
    EXTRA = 60

    def test_silent_flood_past_max_connections(self):
        # A long handshake timeout: the admitted ones stay until the attacker lets go.
        svc = self.start_service("--max-connections", str(self.LIMIT), "--handshake-timeout", "60")
        usage = Usage(svc)
        refused0 = self.scrape_sum(svc, "whorl_connections_refused_total", reason="max_connections")
        accepted0 = self.scrape_sum(svc, "whorl_connections_accepted_total")
        mark = svc.mark()
        socks = connect_many("127.0.0.1", svc.port(), self.LIMIT + self.EXTRA, self)
        svc.wait_metric("whorl_connections_refused_total", refused0 + self.EXTRA,
                        reason="max_connections")
        svc.wait_metric("whorl_connections_open", self.LIMIT)
        usage.sample()
        # The refused ones are closed at once (FIN); the admitted ones wait in their handshakes.
        ended = read_until_closed(socks, WAIT, count=self.EXTRA)
        self.assertEqual(len(ended), self.EXTRA, "closed by the server, of %d: want the %d extras" %
                         (len(socks), self.EXTRA))
        admitted = [s for s in socks if s not in ended]
        self.assertEqual(read_until_closed(admitted, 0.2), {}, "an admitted one was closed")
        rec = svc.wait_msg(r"^max-connections \(%d\) reached" % self.LIMIT, start=mark)
        self.assertEqual(rec["level"], "warning")
        # Refused below TLS: no handshake was started for them, and no connection was logged.
        self.assertEqual(self.scrape_sum(svc, "whorl_connections_accepted_total"),
                         accepted0 + self.LIMIT)
        self.assertEqual(svc.closed_events(mark), [])
        # A normal client is refused too while the places are taken (but /metrics answers).
        with self.assertRaises(OSError):
            self.serve_normal_client(svc)
        # The attacker lets go: each admitted connection is logged and counted as a handshake
        # the peer abandoned, and the places come back, all of them.
        peers = [peer_of(s) for s in admitted]
        failed0 = self.scrape_sum(svc, "whorl_tls_handshakes_total", result="failed",
                                  reason="peer_closed")
        for s in admitted:
            s.close()
        for r in self.closed_records(svc, peers, mark).values():
            self.assertEqual(r["kind"], "tls", r)
            self.assertIn("closed the connection during the TLS handshake", r["reason"], r)
        svc.wait_metric("whorl_tls_handshakes_total", failed0 + self.LIMIT, result="failed",
                        reason="peer_closed")
        svc.wait_metric("whorl_connections_open", 0)
        self.serve_normal_client(svc)
        again = connect_many("127.0.0.1", svc.port(), self.LIMIT, self)
        svc.wait_metric("whorl_connections_open", self.LIMIT)
        self.assertEqual(read_until_closed(again, 0.5), {}, "a place did not come back")
        for s in again:
            s.close()
        self.finish(svc, usage, "max_connections_flood", 2 * self.LIMIT + self.EXTRA)


# 4 --------------------------------------------------------------------------------------------
class ResetStormTest(HostileTest):
    BATCHES = 6
    BATCH = 50

    def test_reset_storm_mid_handshake(self):
        svc = self.start_service()
        usage = Usage(svc)
        hello = client_hello()
        m0 = svc.scrape()
        mark = svc.mark()
        total = self.BATCHES * self.BATCH
        for b in range(self.BATCHES):
            socks = connect_many("127.0.0.1", svc.port(), self.BATCH, self)
            for i, s in enumerate(socks):
                # Half a ClientHello (or, for some, just the record header), then an RST.
                s.send(hello[:5] if i % 5 == 0 else hello[:len(hello) // 2])
            usage.sample()
            for s in socks:
                reset(s)
            self.serve_normal_client(svc, b"served during the reset storm %d\n" % b)
        # Each connection is either accepted, served and logged, or failed accept() (a reset
        # before the accept may do that); nothing is left over.
        deadline = now() + WAIT
        while True:
            m = svc.scrape()
            delta = lambda name, **l: metric_sum(m, name, **l) - metric_sum(m0, name, **l)
            accepted = delta("whorl_connections_accepted_total") - self.BATCHES
            accept_errors = delta("whorl_accept_errors_total")
            if accepted + accept_errors == total and metric_sum(m, "whorl_connections_open") == 0:
                break
            self.assertLess(now(), deadline, "of %d reset connections: %d accepted, %d accept "
                            "errors, %d open" % (total, accepted, accept_errors,
                                                 metric_sum(m, "whorl_connections_open")))
            time.sleep(0.05)  # a poll interval, not a synchronisation
        with svc.cond:
            svc.cond.wait_for(lambda: len([r for r in svc.closed_events(mark)
                                          if r["bytes_in"] == 0]) == accepted, WAIT)
        storm = [r for r in svc.closed_events(mark) if r["bytes_in"] == 0]
        self.assertEqual(len(storm), accepted)
        for r in storm:
            self.assertEqual(r["tls_version"], "", r)
            self.assertIn(r["kind"], ("tls", "lost", "io"), r)
        kinds = {}
        for r in storm:
            kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
        for kind, n in kinds.items():
            self.assertEqual(delta("whorl_connections_closed_total", reason=kind), n, kind)
        failed = delta("whorl_tls_handshakes_total", result="failed")
        self.assertEqual(failed, accepted)
        reasons = {}
        for (n, l), v in m.items():
            l = dict(l)
            if n == "whorl_tls_handshakes_total" and l.get("result") == "failed":
                reasons[l["reason"]] = reasons.get(l["reason"], 0) + v - metric_sum(m0, n, **l)
        print("reset storm: %d accepted (closes by kind %r), %d accept errors, failed handshakes "
              "by reason %r" % (accepted, kinds, accept_errors, reasons), flush=True)
        self.finish(svc, usage, "reset_storm", total)


    def test_reset_storm_with_echo_in_flight(self):
        """RSTs after the handshake, while the server is echoing what the client just sent."""
        n = 100
        svc = self.start_service()
        usage = Usage(svc)
        m0 = svc.scrape()
        mark = svc.mark()
        peers = []
        payload = b"reset while you echo this\n" * 2500  # 65 000 bytes
        served = 0  # normal clients, closed in order ("closed")
        for i in range(n):
            s = svc.tls()
            peers.append(peer_of(s))
            s.settimeout(1)
            try:
                s.sendall(payload)
            except socket.timeout:
                pass  # the echo backed up: reset now all the same
            if i % 10 == 0:
                usage.sample()
            reset(s)
            if i % 25 == 0:
                self.serve_normal_client(svc, b"served during the reset storm %d\n" % i)
                served += 1
        recs = self.closed_records(svc, peers, mark)
        kinds = {}
        for r in recs.values():
            self.assertEqual(r["tls_version"], "TLSv1.3", r)
            self.assertIn(r["kind"], ("lost", "io", "closed"), r)
            self.assertLessEqual(r["bytes_out"], r["bytes_in"], r)
            kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
        m = svc.scrape()
        delta = lambda name, **l: metric_sum(m, name, **l) - metric_sum(m0, name, **l)
        for kind, count in kinds.items():
            self.assertEqual(delta("whorl_connections_closed_total", reason=kind) -
                             (served if kind == "closed" else 0), count, kind)
        self.assertEqual(delta("whorl_tls_handshakes_total", result="failed"), 0)
        print("reset storm with echo in flight: closes by kind %r" % kinds, flush=True)
        self.finish(svc, usage, "reset_storm_echo_in_flight", n)


# 5 --------------------------------------------------------------------------------------------
class FdExhaustionTest(HostileTest):
    NOFILE = 128  # RLIMIT_NOFILE of the service
    FLOOD = 200

    def test_fd_exhaustion(self):
        limit = self.NOFILE
        svc = self.start_service(
            "--max-connections", "100000",  # not the limit under test: the descriptors are
            "--handshake-timeout", "60",
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)))
        with open("/proc/%d/maps" % svc.proc.pid) as f:
            if "libubsan" in f.read():
                # UBSan's vptr check reads a vtable only after testing that it is readable, and
                # the test (IsAccessibleMemoryRange in GCC 12's libsanitizer) writes it into a
                # pipe(): with no descriptor free it reports "invalid vptr" for a sound object
                # and kills the process. Its suppressions do not cover that report.
                self.skipTest("UBSan's vptr check needs free descriptors (it calls pipe()); "
                              "descriptor exhaustion runs in the plain build")
        usage = Usage(svc)
        self.assertLess(usage.fds_before + 20, limit, "no room for connections under the limit")
        m0 = svc.scrape()
        bystander = svc.tls()  # connected before the flood: served all along
        echo(bystander, b"before the flood\n")
        mark = svc.mark()
        socks = connect_many("127.0.0.1", svc.port(), self.FLOOD, self, blocking=False)
        rec = svc.wait_msg(r"^accept: Too many open files", start=mark)
        self.assertEqual(rec["level"], "warning")
        self.assertIn("ulimit -n", rec["msg"])
        usage.sample()
        self.assertEqual(usage.fds_peak, limit)
        self.assertIsNone(svc.proc.poll(), "the service exited out of descriptors")
        echo(bystander, b"served without a descriptor to spare\n")
        self.assertEqual(fd_count(svc.proc.pid), limit)  # still exhausted meanwhile
        # The flood ends: the accepted connections see EOF, the ones still in the backlog are
        # accepted (and closed) once descriptors are free again, then a normal client is served.
        for s in socks:
            s.close()
        self.serve_normal_client(svc, b"served after the descriptors came back\n",
                                 retry_for=WAIT)
        # Each shard has its own listening socket and back-off: the other one may still be
        # accepting what waited in its backlog. Every flood connection is accepted in the end.
        svc.wait_metric("whorl_connections_accepted_total",
                        metric_sum(m0, "whorl_connections_accepted_total") + self.FLOOD + 2)
        echo(bystander, b"after the flood\n")
        bystander.unwrap().close()
        svc.wait_metric("whorl_connections_open", 0)
        m = svc.scrape()
        accept_errors = (metric_sum(m, "whorl_accept_errors_total") -
                         metric_sum(m0, "whorl_accept_errors_total"))
        self.assertGreater(accept_errors, 0)
        with svc.cond:
            svc.cond.wait_for(lambda: len([r for r in svc.closed_events(mark)
                                          if r["bytes_in"] == 0]) >= self.FLOOD, WAIT)
        flood = [r for r in svc.closed_events(mark) if r["bytes_in"] == 0]
        self.assertEqual(len(flood), self.FLOOD)
        for r in flood:
            self.assertEqual(r["kind"], "tls", r)
            self.assertIn("closed the connection during the TLS handshake", r["reason"], r)
        self.assertEqual(
            metric_sum(m, "whorl_tls_handshakes_total", result="failed") -
            metric_sum(m0, "whorl_tls_handshakes_total", result="failed"), self.FLOOD)
        print("fd exhaustion: %d accept errors" % accept_errors, flush=True)
        self.finish(svc, usage, "fd_exhaustion", self.FLOOD)


# 6 --------------------------------------------------------------------------------------------
class RenegotiationTest(HostileTest):
    def s_client(self, port, *args):
        """openssl s_client verifying example.com, its output collected by a thread."""
        p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                              "-CAfile", harness.ca_file(), "-servername", HOSTNAME,
                              "-verify_hostname", HOSTNAME, "-verify_return_error"] + list(args),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        self.addCleanup(p.stdout.close)
        self.addCleanup(p.stdin.close)
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        out = {"text": "", "cond": threading.Condition()}

        def read():
            for line in iter(p.stdout.readline, b""):
                with out["cond"]:
                    out["text"] += line.decode("utf-8", "replace")
                    out["cond"].notify_all()
        threading.Thread(target=read, daemon=True).start()

        def wait_for(text):
            with out["cond"]:
                if not out["cond"].wait_for(lambda: text in out["text"], WAIT):
                    raise AssertionError("s_client never printed %r:\n%s" % (text, out["text"]))
        return p, out, wait_for

    def test_renegotiation_refused(self):
        svc = self.start_service()
        usage = Usage(svc)
        m0 = svc.scrape()
        mark = svc.mark()
        bystander = svc.tls()
        echo(bystander, b"before the renegotiations\n")

        # openssl s_client over TLS 1.2: "R" asks for a renegotiation. The server answers with a
        # no_renegotiation alert; s_client gives up with a handshake_failure alert, which ends the
        # connection.
        p, out, wait_for = self.s_client(svc.port(), "-tls1_2")
        p.stdin.write(b"hello renegotiation\n")
        p.stdin.flush()
        wait_for("\nhello renegotiation\n")  # the echo
        p.stdin.write(b"R\n")
        p.stdin.flush()
        rc = p.wait(WAIT)
        self.assertNotEqual(rc, 0, out["text"])
        self.assertIn("RENEGOTIATING", out["text"])
        self.assertIn("no renegotiation", out["text"])
        rec = svc.wait_log(lambda r: r.get("msg") == "connection closed" and
                           r.get("tls_version") == "TLSv1.2", start=mark,
                           what="s_client's connection closed")
        self.assertEqual(rec["kind"], "tls", rec)
        self.assertIn("handshake failure", rec["reason"], rec)
        self.assertEqual((rec["bytes_in"], rec["bytes_out"]), (20, 20), rec)

        # The same request without a client that gives up: a ClientHello under the TLS 1.2
        # application keys. Refused with the alert, and the connection goes on: the data after
        # it is echoed.
        keylog = os.path.join(self.tmp, "keylog")
        ctx = client_context(ssl.TLSVersion.TLSv1_2)
        ctx.keylog_filename = keylog
        c = RecordClient.connect(("127.0.0.1", svc.port()), ctx, HOSTNAME, keylog)
        self.addCleanup(c.close)
        peer = peer_of(c.sock)
        c.send_raw(c.records([b"ping\n"]))
        self.assertEqual(c.read_exact(5), b"ping\n")
        c.send_raw(c.records([client_hello(ssl.TLSVersion.TLSv1_2)[5:]], content_type=22) +
                   c.records([b"after\n"]))
        with self.assertRaisesRegex(ssl.SSLError, "NO_RENEGOTIATION"):
            c.read_some(WAIT)
        # Python's client stops at that alert, so end with a FIN and read the rest raw (closing
        # with unread bytes would reset the connection instead).
        c.sock.shutdown(socket.SHUT_WR)
        read_until_closed([c.sock], WAIT)
        rec = svc.wait_closed_event(peer, start=mark)
        self.assertEqual(rec["kind"], "lost", rec)  # no close_notify: Python could not send it
        self.assertEqual((rec["bytes_in"], rec["bytes_out"]), (11, 11), rec)

        # TLS 1.3 has no renegotiation: a ClientHello after the handshake is a fatal error.
        ctx = client_context()
        ctx.keylog_filename = keylog
        c = RecordClient.connect(("127.0.0.1", svc.port()), ctx, HOSTNAME, keylog)
        self.addCleanup(c.close)
        self.assertEqual(c.sealer.version, "TLSv1.3")
        peer = peer_of(c.sock)
        c.send_raw(c.records([client_hello()[5:]], content_type=22))
        with self.assertRaisesRegex(ssl.SSLError, "UNEXPECTED_MESSAGE"):
            c.read_some(WAIT)
        rec = svc.wait_closed_event(peer, start=mark)
        self.assertEqual(rec["kind"], "tls", rec)
        self.assertEqual(rec["reason"], "unexpected message", rec)
        usage.sample()

        echo(bystander, b"after the renegotiations\n")
        bystander.unwrap().close()
        m = svc.scrape()
        delta = lambda name, **l: metric_sum(m, name, **l) - metric_sum(m0, name, **l)
        svc.wait_metric("whorl_connections_closed_total",
                        metric_sum(m0, "whorl_connections_closed_total", reason="tls") + 2,
                        reason="tls")
        self.assertEqual(delta("whorl_tls_handshakes_total", result="failed"), 0)
        self.finish(svc, usage, "renegotiation", 4)


# 7 --------------------------------------------------------------------------------------------
class RecordFloodTest(HostileTest):
    EMPTY_RUN = 32  # OpenSSL's limit on consecutive empty records (MAX_EMPTY_RECORDS)
    RUNS = 100
    ONE_BYTE = 5000

    def flood(self, version, scenario):
        svc = self.start_service()
        usage = Usage(svc)
        keylog = os.path.join(self.tmp, "keylog")
        ctx = client_context(version)
        ctx.keylog_filename = keylog
        c = RecordClient.connect(("127.0.0.1", svc.port()), ctx, HOSTNAME, keylog)
        self.addCleanup(c.close)
        self.assertEqual(c.sealer.version, {ssl.TLSVersion.TLSv1_3: "TLSv1.3",
                                            ssl.TLSVersion.TLSv1_2: "TLSv1.2"}[version])
        peer = peer_of(c.sock)
        m0 = svc.scrape()

        def send_while_others_are_served(records, expect):
            sender = threading.Thread(target=c.send_raw, args=(records,), daemon=True)
            sender.start()
            self.serve_normal_client(svc, b"served during the record flood\n")
            usage.sample()
            got = c.read_exact(len(expect), timeout=WAIT * 3)
            sender.join(WAIT)
            self.assertEqual(got, expect)

        # Zero-length application-data records, as many in a row as OpenSSL takes, then a byte:
        # 3200 empty records in all, served.
        send_while_others_are_served(c.records(([b""] * self.EMPTY_RUN + [b"z"]) * self.RUNS),
                                     b"z" * self.RUNS)
        # Thousands of one-byte records: every byte echoed.
        data = bytes(0x41 + i % 26 for i in range(self.ONE_BYTE))
        send_while_others_are_served(c.records([data[i:i + 1] for i in range(len(data))]), data)
        # More empty records in a row than that: a fatal alert, and the connection is closed with
        # OpenSSL's reason.
        c.send_raw(c.records([b""] * (self.EMPTY_RUN + 1) + [b"!"]))
        with self.assertRaisesRegex(ssl.SSLError, "UNEXPECTED_MESSAGE"):
            c.read_some(WAIT)
        rec = svc.wait_closed_event(peer)
        self.assertEqual(rec["kind"], "tls", rec)
        self.assertEqual(rec["reason"], "record too small", rec)
        n = self.RUNS + self.ONE_BYTE
        self.assertEqual((rec["bytes_in"], rec["bytes_out"]), (n, n), rec)
        m = svc.scrape()
        self.assertEqual(metric_sum(m, "whorl_connections_closed_total", reason="tls") -
                         metric_sum(m0, "whorl_connections_closed_total", reason="tls"), 1)
        self.finish(svc, usage, scenario, 1)

    def test_tls13_record_flood(self):
        self.flood(ssl.TLSVersion.TLSv1_3, "record_flood_tls13")

    def test_tls12_record_flood(self):
        self.flood(ssl.TLSVersion.TLSv1_2, "record_flood_tls12")


# 8 --------------------------------------------------------------------------------------------
class MetricsFloodTest(HostileTest):
    LIMIT = 16  # --metrics-max-connections (its default)
    FLOOD = 300
    TIMEOUT = 2  # --metrics-timeout, seconds

    def test_metrics_flood(self):
        svc = self.start_service("--metrics-max-connections", str(self.LIMIT),
                                 "--metrics-timeout", str(self.TIMEOUT))
        usage = Usage(svc)
        m0 = svc.scrape()
        self.wait_fds(svc, usage.fds_before)  # that scrape's connection has left its place
        mark = svc.mark()
        t_open = now()
        socks = connect_many("127.0.0.1", svc.metrics_port, self.FLOOD, self)
        # Past the limit, metrics connections are closed at once; TLS clients are served.
        ended = read_until_closed(socks, WAIT, count=self.FLOOD - self.LIMIT)
        self.assertEqual(len(ended), self.FLOOD - self.LIMIT)
        rec = svc.wait_msg(r"^metrics-max-connections \(%d\) reached" % self.LIMIT, start=mark)
        self.assertEqual(rec["level"], "warning")
        usage.sample()
        for i in range(3):
            self.serve_normal_client(svc, b"served during the metrics flood %d\n" % i)
        held = [s for s in socks if s not in ended]
        self.assertEqual(read_until_closed(held, 0.2), {}, "a connection within the limit was "
                         "closed at once")
        with self.assertRaises(OSError):  # a scrape too is one connection too many now
            svc.scrape()
        # The silent ones within the limit are closed by --metrics-timeout.
        t_wait = now()
        ended = read_until_closed(held, self.TIMEOUT + WAIT)
        self.assertEqual(len(ended), self.LIMIT, "silent /metrics connections outlived "
                         "--metrics-timeout")
        self.assertGreater(t_wait + min(ended.values()) - t_open, self.TIMEOUT * 0.9)
        peers = {peer_of(s) for s in held}
        with svc.cond:  # each logged with its reason
            svc.cond.wait_for(lambda: len(self.metrics_closes(svc, mark, peers)) == self.LIMIT,
                              WAIT)
        recs = self.metrics_closes(svc, mark, peers)
        self.assertEqual(len(recs), self.LIMIT)
        for rec in recs:
            self.assertEqual(rec["kind"], "timeout", rec)
            self.assertGreaterEqual(rec["duration_ms"], self.TIMEOUT * 1000 * 0.9, rec)
        # A place is given back just after its socket closes: a scrape right then may still be
        # refused (and counted), so retry.
        refused_scrapes = 1
        deadline = now() + WAIT
        while True:
            try:
                m = svc.scrape()
                break
            except OSError:
                self.assertLess(now(), deadline, "/metrics refuses scrapes after the flood")
                refused_scrapes += 1
                time.sleep(0.05)  # a client's retry interval
        # A dynamic family (closes by reason) is in the scrape only once it has a series.
        before = lambda name, **l: (metric_sum(m0, name, **l)
                                    if any(n == name for n, _ in m0) else 0)
        delta = lambda name, **l: metric_sum(m, name, **l) - before(name, **l)
        self.assertEqual(delta("whorl_metrics_connections_refused_total"),
                         self.FLOOD - self.LIMIT + refused_scrapes)
        self.assertEqual(delta("whorl_metrics_connections_closed_total", reason="timeout"),
                         self.LIMIT)
        self.finish(svc, usage, "metrics_flood", self.FLOOD)

    @staticmethod
    def metrics_closes(svc, start, peers):
        with svc.cond:
            return [r for r in svc.records[start:]
                    if r.get("msg") == "metrics connection closed" and r.get("peer") in peers]


# The record code itself, against published vectors (the server checks it too: a wrong record is
# a bad_record_mac alert).
class TlsRecordsTest(unittest.TestCase):
    def test_aes(self):  # FIPS 197 appendix C.1 and C.3
        block = bytes.fromhex("00112233445566778899aabbccddeeff")
        self.assertEqual(tls_records.AES(bytes(range(16))).encrypt_block(block).hex(),
                         "69c4e0d86a7b0430d8cdb78070b4c55a")
        self.assertEqual(tls_records.AES(bytes(range(32))).encrypt_block(block).hex(),
                         "8ea2b7ca516745bfeafc49904b496089")

    def test_aes_gcm(self):  # the GCM specification's test case 4
        out = tls_records.AESGCM(bytes.fromhex("feffe9928665731c6d6a8f9467308308")).seal(
            bytes.fromhex("cafebabefacedbaddecaf888"),
            bytes.fromhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                          "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"),
            bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2"))
        self.assertEqual(out.hex(),
                         "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
                         "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091"
                         "5bc94fbc3221a5db94fae95ae7121a47")

    def test_chacha20_poly1305(self):  # RFC 8439 section 2.8.2
        plaintext = (b"Ladies and Gentlemen of the class of '99: If I could offer you only one "
                     b"tip for the future, sunscreen would be it.")
        out = tls_records.ChaCha20Poly1305(bytes(range(0x80, 0xA0))).seal(
            bytes.fromhex("070000004041424344454647"), plaintext,
            bytes.fromhex("50515253c0c1c2c3c4c5c6c7"))
        self.assertEqual(len(out), len(plaintext) + 16)
        self.assertEqual(out[:16].hex(), "d31a8d34648e60db7b86afbc53ef7ec2")
        self.assertEqual(out[-16:].hex(), "1ae10b594f09e26a7e902ecbd0600691")

def main():
    # The attackers hold hundreds of sockets: take the hard limit on descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    harness.main()


if __name__ == "__main__":
    main()

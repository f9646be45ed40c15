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
  ResetStormTest         partial ClientHellos then RST (SO_LINGER 0)
  FdExhaustionTest       a flood past RLIMIT_NOFILE -> accept errors counted, served after
  RenegotiationTest      TLS 1.2 renegotiation (openssl s_client "R", raw), TLS 1.3 ClientHello
  RecordFloodTest        zero-length and one-byte application-data records (TLS 1.3 and 1.2)
  MetricsFloodTest       silent connections to --metrics -> --metrics-max-connections, timeout

Usage (from the runfiles root, as hostile_test.sh does; unittest arguments select cases):

    PYTHONPATH=tests/service python3 tests/hostile/hostile_test.py --binary PATH --certs DIR

Shares tests/service/service_harness.py with the echo_service tests. Waits are on what the
service says or on its sockets, with deadlines; the only sleeps pace the attackers. Standard
library only (tls_records.py builds the records Python's ssl never writes).
"""

import functools
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

import service_harness as harness
from service_harness import (HOSTNAME, WAIT, ServiceTest, client_context, echo, metric_sum, now,
                             peer_of)
from service_harness import load_tests  # noqa: F401 -- unittest calls it here (Bazel sharding)
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


def requires_flag(flag, feature):
    """Skips a case whose service flag is not in this build's --help yet (a feature of another
    branch): the skip message names it."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(self):
            if flag not in service_help():
                self.skipTest("needs %s (%s), which this echo_service does not have yet" %
                              (flag, feature))
            return fn(self)
        return run
    return wrap


@functools.lru_cache(maxsize=None)
def service_help():
    return subprocess.run([harness.BINARY, "--help"], capture_output=True, text=True,
                          timeout=WAIT).stdout


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


def read_until_closed(socks, timeout, on_tick=None):
    """Waits until the server has ended every connection in `socks` (EOF or reset; bytes before
    it are read and dropped). Returns {sock: seconds from the call to its end}; the ones still
    open at `timeout` are missing. on_tick, if given, runs between waits (at least every 0.1 s)."""
    t0 = now()
    ended = {}
    while len(ended) < len(socks):
        left = t0 + timeout - now()
        if left <= 0:
            break
        if on_tick:
            on_tick()
        live = [s for s in socks if s not in ended]
        r, _, _ = select.select(live, [], [], min(left, 0.1))
        for s in r:
            try:
                data = s.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            except BlockingIOError:
                continue
            if not data:
                ended[s] = now() - t0
    return ended


def still_open(sock):
    """True if nothing (no bytes, no EOF, no reset) is waiting on the socket right now."""
    r, _, _ = select.select([sock], [], [], 0)
    return not r


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
        # The baseline is taken before any connection; a normal client and a scrape then warm the
        # service up (lazy set-up, if any, must not look like a leak later).
        fds = fd_count(svc.proc.pid)
        self.serve_normal_client(svc)
        svc.wait_metric("whorl_connections_open", 0)
        self.wait_fds(svc, fds)
        return svc

    def serve_normal_client(self, svc, payload=b"a normal client\n", retry_for=0.0):
        """A TLS client that verifies the server, is echoed and closes with close_notify.
        retry_for: seconds during which a failure to connect or to be echoed is retried (a
        service that is getting its descriptors or places back)."""
        deadline = now() + retry_for
        while True:
            try:
                s = svc.tls()
                echo(s, payload)
                s.unwrap().close()
                return
            except (AssertionError, OSError):  # ssl.SSLError and timeouts are OSErrors
                if now() > deadline:
                    raise
                time.sleep(0.05)  # a client's retry interval

    def wait_fds(self, svc, want, timeout=WAIT * 2):
        """Waits until the service has `want` descriptors (connections close asynchronously)."""
        deadline = now() + timeout
        while True:
            got = fd_count(svc.proc.pid)
            if got == want:
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


def main():
    # The attackers hold hundreds of sockets: take the hard limit on descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    harness.main()


if __name__ == "__main__":
    main()

"""Hand-built TLS application-data records for a connection whose handshake Python's ssl module
did: the hostile tests send records OpenSSL's own writer never produces (zero-length ones, floods
of one-byte ones) and the server must cope with them.

    conn = RecordClient.connect(("127.0.0.1", port), ctx, "example.com", keylog_path)
    conn.send_raw(conn.records([b""] * 16 + [b"ping\\n"]))   # 16 empty records, then data
    assert conn.read_exact(5) == b"ping\\n"                   # the echo, decrypted by ssl

After the handshake the client's write direction belongs to this module: Sealer encrypts records
with the client's traffic keys (from the key log Python writes, SSLKEYLOGFILE format) and its own
sequence numbers, so the ssl.SSLObject must never write again (not even close_notify: close the
socket). The read direction stays with the SSLObject, which decrypts the echo and the server's
session tickets. TLS 1.3 and TLS 1.2, with AES-GCM (128 and 256) or ChaCha20-Poly1305, the
suites the server offers; the ciphers are written here in pure Python (standard library only),
fast enough for thousands of small records. RecordClient owns its socket and SSLObject.
"""

import hashlib
import hmac
import select
import socket
import ssl
import struct

# --- AES (FIPS 197), encryption only, with T-tables ----------------------------------------------


def _build_tables():
    sbox = [0] * 256
    # The S-box from the multiplicative inverse in GF(2^8) and the affine map: p walks the
    # field by 3, q by 1/3, so q = 1/p at every step.
    p = q = 1
    while True:
        p = p ^ ((p << 1) & 0xFF) ^ (0x1B if p & 0x80 else 0)
        q ^= q << 1
        q ^= q << 2
        q ^= q << 4
        q &= 0xFF
        if q & 0x80:
            q ^= 0x09
        x = q ^ (((q << 1) | (q >> 7)) & 0xFF) ^ (((q << 2) | (q >> 6)) & 0xFF)
        x ^= (((q << 3) | (q >> 5)) & 0xFF) ^ (((q << 4) | (q >> 4)) & 0xFF)
        sbox[p] = x ^ 0x63
        if p == 1:
            break
    sbox[0] = 0x63

    def xtime(a):
        return ((a << 1) ^ 0x1B) & 0xFF if a & 0x80 else a << 1

    te = [[0] * 256 for _ in range(4)]
    for i in range(256):
        s = sbox[i]
        s2 = xtime(s)
        s3 = s2 ^ s
        w = (s2 << 24) | (s << 16) | (s << 8) | s3
        for r in range(4):
            te[r][i] = ((w >> (8 * r)) | (w << (32 - 8 * r))) & 0xFFFFFFFF
    return sbox, te


_SBOX, _TE = _build_tables()


class AES:
    def __init__(self, key):
        if len(key) not in (16, 32):
            raise ValueError("AES key of %d bytes" % len(key))
        nk = len(key) // 4
        self.rounds = nk + 6
        w = list(struct.unpack(">%dI" % nk, key))
        rcon = 1
        sb = _SBOX
        for i in range(nk, 4 * (self.rounds + 1)):
            t = w[i - 1]
            if i % nk == 0:
                t = ((t << 8) | (t >> 24)) & 0xFFFFFFFF
                t = ((sb[t >> 24] << 24) | (sb[(t >> 16) & 0xFF] << 16) |
                     (sb[(t >> 8) & 0xFF] << 8) | sb[t & 0xFF])
                t ^= rcon << 24
                rcon = ((rcon << 1) ^ 0x1B) & 0xFF if rcon & 0x80 else rcon << 1
            elif nk > 6 and i % nk == 4:
                t = ((sb[t >> 24] << 24) | (sb[(t >> 16) & 0xFF] << 16) |
                     (sb[(t >> 8) & 0xFF] << 8) | sb[t & 0xFF])
            w.append(w[i - nk] ^ t)
        self.w = w

    def encrypt_block(self, block):
        w = self.w
        t0, t1, t2, t3 = _TE
        sb = _SBOX
        s0, s1, s2, s3 = struct.unpack(">4I", block)
        s0 ^= w[0]
        s1 ^= w[1]
        s2 ^= w[2]
        s3 ^= w[3]
        k = 4
        for _ in range(self.rounds - 1):
            s0, s1, s2, s3 = (
                t0[s0 >> 24] ^ t1[(s1 >> 16) & 0xFF] ^ t2[(s2 >> 8) & 0xFF] ^ t3[s3 & 0xFF] ^ w[k],
                t0[s1 >> 24] ^ t1[(s2 >> 16) & 0xFF] ^ t2[(s3 >> 8) & 0xFF] ^ t3[s0 & 0xFF] ^
                w[k + 1],
                t0[s2 >> 24] ^ t1[(s3 >> 16) & 0xFF] ^ t2[(s0 >> 8) & 0xFF] ^ t3[s1 & 0xFF] ^
                w[k + 2],
                t0[s3 >> 24] ^ t1[(s0 >> 16) & 0xFF] ^ t2[(s1 >> 8) & 0xFF] ^ t3[s2 & 0xFF] ^
                w[k + 3])
            k += 4
        out = []
        for a, b, c, d, x in ((s0, s1, s2, s3, w[k]), (s1, s2, s3, s0, w[k + 1]),
                              (s2, s3, s0, s1, w[k + 2]), (s3, s0, s1, s2, w[k + 3])):
            out.append(((sb[a >> 24] << 24) | (sb[(b >> 16) & 0xFF] << 16) |
                        (sb[(c >> 8) & 0xFF] << 8) | sb[d & 0xFF]) ^ x)
        return struct.pack(">4I", *out)


# --- AES-GCM (NIST SP 800-38D), 96-bit nonces --------------------------------------------------


def _gf_mult(x, y):
    z = 0
    for i in range(127, -1, -1):
        if (x >> i) & 1:
            z ^= y
        y = (y >> 1) ^ (0xE1 << 120) if y & 1 else y >> 1
    return z


class AESGCM:
    def __init__(self, key):
        self.aes = AES(key)
        self.h = int.from_bytes(self.aes.encrypt_block(bytes(16)), "big")

    def _ghash(self, aad, ct):
        y = 0
        for data in (aad, ct):
            for i in range(0, len(data), 16):
                y = _gf_mult(y ^ int.from_bytes(data[i:i + 16].ljust(16, b"\0"), "big"), self.h)
        return _gf_mult(y ^ ((len(aad) * 8) << 64 | len(ct) * 8), self.h)

    def seal(self, nonce, plaintext, aad):
        if len(nonce) != 12:
            raise ValueError("GCM nonce of %d bytes" % len(nonce))
        ct = bytearray()
        for i in range(0, len(plaintext), 16):
            ks = self.aes.encrypt_block(nonce + struct.pack(">I", 2 + i // 16))
            ct += bytes(a ^ b for a, b in zip(plaintext[i:i + 16], ks))
        ct = bytes(ct)
        tag = self._ghash(aad, ct) ^ int.from_bytes(
            self.aes.encrypt_block(nonce + b"\0\0\0\1"), "big")
        return ct + tag.to_bytes(16, "big")


# --- ChaCha20-Poly1305 (RFC 8439) --------------------------------------------------------------


def _chacha_block(key_words, counter, nonce_words):
    m = 0xFFFFFFFF
    state = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574] + key_words + [counter] + nonce_words
    x = list(state)

    def step(a, b, d, shift):  # a += b; d ^= a; d <<<= shift
        x[a] = (x[a] + x[b]) & m
        v = x[d] ^ x[a]
        x[d] = ((v << shift) | (v >> (32 - shift))) & m

    def quarter_round(a, b, c, d):
        step(a, b, d, 16)
        step(c, d, b, 12)
        step(a, b, d, 8)
        step(c, d, b, 7)

    for _ in range(10):  # 20 rounds: a column round and a diagonal round each time
        for a, b, c, d in ((0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15),
                           (0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14)):
            quarter_round(a, b, c, d)
    return struct.pack("<16I", *((a + b) & m for a, b in zip(x, state)))


class ChaCha20Poly1305:
    def __init__(self, key):
        if len(key) != 32:
            raise ValueError("ChaCha20 key of %d bytes" % len(key))
        self.key = list(struct.unpack("<8I", key))

    def seal(self, nonce, plaintext, aad):
        nw = list(struct.unpack("<3I", nonce))
        otk = _chacha_block(self.key, 0, nw)[:32]
        ct = bytearray()
        for i in range(0, len(plaintext), 64):
            ks = _chacha_block(self.key, 1 + i // 64, nw)
            ct += bytes(a ^ b for a, b in zip(plaintext[i:i + 64], ks))
        ct = bytes(ct)
        r = int.from_bytes(otk[:16], "little") & 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
        s = int.from_bytes(otk[16:], "little")
        pad = lambda b: b + bytes(-len(b) % 16)
        mac_data = pad(aad) + pad(ct) + struct.pack("<QQ", len(aad), len(ct))
        acc = 0
        p = (1 << 130) - 5
        for i in range(0, len(mac_data), 16):
            acc = ((acc + int.from_bytes(mac_data[i:i + 16] + b"\1", "little")) * r) % p
        tag = ((acc + s) & ((1 << 128) - 1)).to_bytes(16, "little")
        return ct + tag


# --- TLS key schedules -------------------------------------------------------------------------

# Cipher suite (OpenSSL's name, as ssl.SSLObject.cipher() gives it) -> (AEAD, key bytes, hash).
SUITES = {
    "TLS_AES_128_GCM_SHA256": (AESGCM, 16, "sha256"),
    "TLS_AES_256_GCM_SHA384": (AESGCM, 32, "sha384"),
    "TLS_CHACHA20_POLY1305_SHA256": (ChaCha20Poly1305, 32, "sha256"),
    "ECDHE-ECDSA-AES128-GCM-SHA256": (AESGCM, 16, "sha256"),
    "ECDHE-ECDSA-AES256-GCM-SHA384": (AESGCM, 32, "sha384"),
    "ECDHE-RSA-AES128-GCM-SHA256": (AESGCM, 16, "sha256"),
    "ECDHE-RSA-AES256-GCM-SHA384": (AESGCM, 32, "sha384"),
    "ECDHE-ECDSA-CHACHA20-POLY1305": (ChaCha20Poly1305, 32, "sha256"),
    "ECDHE-RSA-CHACHA20-POLY1305": (ChaCha20Poly1305, 32, "sha256"),
}


def hkdf_expand_label(secret, label, length, hash_name):
    """TLS 1.3 HKDF-Expand-Label(secret, label, "", length) (RFC 8446 § 7.1)."""
    full = b"tls13 " + label
    info = struct.pack(">H", length) + bytes([len(full)]) + full + b"\0"
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(secret, block + info + bytes([i]), hash_name).digest()
        out += block
        i += 1
    return out[:length]


def tls12_prf(secret, label, seed, length, hash_name):
    """The TLS 1.2 PRF, P_hash (RFC 5246 § 5)."""
    seed = label + seed
    a, out = seed, b""
    while len(out) < length:
        a = hmac.new(secret, a, hash_name).digest()
        out += hmac.new(secret, a + seed, hash_name).digest()
    return out[:length]


class Sealer:
    """Encrypts the client's application-data records from its next sequence number on."""

    def __init__(self, version, suite, aead, iv, seq):
        self.version = version  # "TLSv1.3" or "TLSv1.2"
        self.suite = suite
        self.aead = aead
        self.iv = iv
        self.seq = seq

    def record(self, data, content_type=23):
        if len(data) > 16384:
            raise ValueError("a record holds at most 2^14 bytes")
        seq = struct.pack(">Q", self.seq)
        self.seq += 1
        if self.version == "TLSv1.3":
            inner = data + bytes([content_type])
            length = len(inner) + 16
            nonce = bytes(a ^ b for a, b in zip(self.iv, bytes(4) + seq))
            header = struct.pack(">BHH", 23, 0x0303, length)
            return header + self.aead.seal(nonce, inner, header)
        aad = seq + struct.pack(">BHH", content_type, 0x0303, len(data))
        if isinstance(self.aead, AESGCM):
            # 4 implicit bytes from the key block, 8 explicit ones sent (the sequence number, as
            # OpenSSL does).
            body = seq + self.aead.seal(self.iv + seq, data, aad)
        else:
            nonce = bytes(a ^ b for a, b in zip(self.iv, bytes(4) + seq))
            body = self.aead.seal(nonce, data, aad)
        return struct.pack(">BHH", content_type, 0x0303, len(body)) + body


def read_keylog(path, client_random):
    """{label: secret} of the key-log lines of the connection whose ClientHello.random is
    client_random."""
    out = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and bytes.fromhex(parts[1]) == client_random:
                out[parts[0]] = bytes.fromhex(parts[2])
    return out


def hello_random(flight, msg_type):
    """The random of the first handshake message of `msg_type` (1 ClientHello, 2 ServerHello) in
    the plaintext records at the start of `flight`."""
    i = 0
    while i + 5 <= len(flight):
        ctype, _, length = struct.unpack(">BHH", flight[i:i + 5])
        body = flight[i + 5:i + 5 + length]
        if ctype == 22 and body and body[0] == msg_type:
            return body[6:38]
        i += 5 + length
    raise ValueError("no handshake message %d in the first %d bytes" % (msg_type, len(flight)))


class RecordClient:
    """A TLS connection: handshake by an ssl.SSLObject over memory BIOs, then client records
    written by Sealer and server records read by the SSLObject."""

    def __init__(self, sock, sslobj, incoming, outgoing, sealer):
        self.sock = sock
        self.sslobj = sslobj
        self.incoming = incoming
        self.outgoing = outgoing
        self.sealer = sealer
        self.eof = False

    @classmethod
    def connect(cls, address, ctx, hostname, keylog_path, timeout=10.0):
        """Connects and handshakes. `ctx` must write its key log to keylog_path (the caller sets
        ctx.keylog_filename; one file may serve many connections)."""
        sock = socket.create_connection(address, timeout=timeout)
        try:
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            sslobj = ctx.wrap_bio(incoming, outgoing, server_hostname=hostname)
            sent, received = b"", b""
            while True:
                try:
                    sslobj.do_handshake()
                    done = True
                except ssl.SSLWantReadError:
                    done = False
                out = outgoing.read()
                if out:
                    sock.sendall(out)
                    sent += out
                if done:
                    break
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("the server closed the connection during the handshake")
                received += data
                incoming.write(data)
            version = sslobj.version()
            suite = sslobj.cipher()[0]
            if suite not in SUITES:
                raise ValueError("no record code here for cipher suite %s" % suite)
            aead_type, key_len, hash_name = SUITES[suite]
            secrets = read_keylog(keylog_path, hello_random(sent, 1))
            if version == "TLSv1.3":
                secret = secrets["CLIENT_TRAFFIC_SECRET_0"]
                key = hkdf_expand_label(secret, b"key", key_len, hash_name)
                iv = hkdf_expand_label(secret, b"iv", 12, hash_name)
                seq = 0  # the client's Finished went under the handshake keys
            elif version == "TLSv1.2":
                iv_len = 4 if aead_type is AESGCM else 12
                block = tls12_prf(secrets["CLIENT_RANDOM"], b"key expansion",
                                  hello_random(received, 2) + hello_random(sent, 1),
                                  2 * key_len + 2 * iv_len, hash_name)
                key = block[:key_len]
                iv = block[2 * key_len:2 * key_len + iv_len]
                seq = 1  # the client's Finished was record 0 under these keys
            else:
                raise ValueError("no record code here for %s" % version)
            return cls(sock, sslobj, incoming, outgoing,
                       Sealer(version, suite, aead_type(key), iv, seq))
        except BaseException:
            sock.close()
            raise

    def records(self, payloads, content_type=23):
        """The records carrying `payloads` (one record each, b"" for a zero-length record)."""
        return b"".join(self.sealer.record(p, content_type) for p in payloads)

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_some(self, timeout):
        """Plaintext the server sent, b"" at its end of the connection; raises socket.timeout
        when nothing comes within `timeout`, ssl.SSLError on a bad record or a fatal alert."""
        while True:
            try:
                return self.sslobj.read(65536)
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                return b""
            if self.eof:
                return b""
            poller = select.poll()
            poller.register(self.sock, select.POLLIN)
            if not poller.poll(int(timeout * 1000)):
                raise socket.timeout("nothing from the server within %.1f s" % timeout)
            data = self.sock.recv(65536)
            if not data:
                self.eof = True
                self.incoming.write_eof()
            else:
                self.incoming.write(data)

    def read_exact(self, n, timeout=10.0):
        out = b""
        while len(out) < n:
            chunk = self.read_some(timeout)
            if not chunk:
                raise AssertionError("EOF after %d of %d echoed bytes" % (len(out), n))
            out += chunk
        return out

    def close(self):
        self.sock.close()

/*
 * ktls_smoke: a self-contained kernel TLS smoke test for tools/ktls-vm.
 *
 * Built on the host with `gcc -static -O2` (no OpenSSL), run inside the VM.
 * For TLS 1.3 with AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305, and for
 * TLS 1.2 with AES-128-GCM, over TCP connections on 127.0.0.1, it:
 *   - installs TCP_ULP "tls" + TLS_TX on one side and TLS_RX on the other with
 *     a fixed key, sends a message and checks that it arrives unchanged;
 *   - installs TLS_TX on one side only and reads the raw bytes on the other,
 *     checking that a well-formed, encrypted application-data record went out;
 * then, for TLS 1.3 AES-128-GCM, a KeyUpdate: the sender sends a KeyUpdate
 * handshake record (TLS_SET_RECORD_TYPE cmsg) and installs a new TLS_TX key;
 * the receiver gets the record (TLS_GET_RECORD_TYPE cmsg), reads fail with
 * EKEYEXPIRED until it installs the new TLS_RX key, then data flows again. On
 * kernels >= 6.14 that must work; before, the second TLS_TX must be refused;
 * and checks that the kernel's own counters in /proc/net/tls_stat moved.
 * Prints "kTLS OK" and /proc/net/tls_stat, exits 0; exits 1 on any failure
 * with a message saying what failed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

static int failures;

static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("ktls_smoke: FAIL: ", stdout);
  vprintf(fmt, ap);
  fputc('\n', stdout);
  va_end(ap);
  fflush(stdout);
  failures++;
}

/* Connected TCP pair over 127.0.0.1: *a is the connecting side, *b accepted. */
static int tcp_pair(int *a, int *b) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  if (l < 0) return fail("socket: %s", strerror(errno)), -1;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 1) < 0 ||
      getsockname(l, (struct sockaddr *)&sa, &len) < 0) {
    fail("bind/listen on 127.0.0.1: %s (is lo up?)", strerror(errno));
    close(l);
    return -1;
  }
  *a = socket(AF_INET, SOCK_STREAM, 0);
  if (*a < 0 || connect(*a, (struct sockaddr *)&sa, sizeof sa) < 0) {
    fail("connect: %s", strerror(errno));
    close(l);
    return -1;
  }
  *b = accept(l, NULL, NULL);
  close(l);
  if (*b < 0) return fail("accept: %s", strerror(errno)), -1;
  return 0;
}

struct cipher {
  const char *name;
  unsigned short version;
  unsigned short type;
  size_t key_size, iv_size, salt_size, tag_size;
  size_t explicit_nonce; /* bytes of nonce on the wire per record (TLS 1.2 GCM) */
};

/* Fills a crypto_info for `c` with fixed key material; returns its size. */
static size_t crypto_info(const struct cipher *c, unsigned char *buf) {
  unsigned char key[32], iv[12], salt[4], seq[8] = {0};
  for (int i = 0; i < 32; i++) key[i] = (unsigned char)(0x10 + i);
  for (int i = 0; i < 12; i++) iv[i] = (unsigned char)(0xa0 + i);
  for (int i = 0; i < 4; i++) salt[i] = (unsigned char)(0xc0 + i);
  switch (c->type) {
  case TLS_CIPHER_AES_GCM_128: {
    struct tls12_crypto_info_aes_gcm_128 *ci = (void *)buf;
    memset(ci, 0, sizeof *ci);
    ci->info.version = c->version;
    ci->info.cipher_type = c->type;
    memcpy(ci->key, key, sizeof ci->key);
    memcpy(ci->iv, iv, sizeof ci->iv);
    memcpy(ci->salt, salt, sizeof ci->salt);
    memcpy(ci->rec_seq, seq, sizeof ci->rec_seq);
    return sizeof *ci;
  }
  case TLS_CIPHER_AES_GCM_256: {
    struct tls12_crypto_info_aes_gcm_256 *ci = (void *)buf;
    memset(ci, 0, sizeof *ci);
    ci->info.version = c->version;
    ci->info.cipher_type = c->type;
    memcpy(ci->key, key, sizeof ci->key);
    memcpy(ci->iv, iv, sizeof ci->iv);
    memcpy(ci->salt, salt, sizeof ci->salt);
    memcpy(ci->rec_seq, seq, sizeof ci->rec_seq);
    return sizeof *ci;
  }
  case TLS_CIPHER_CHACHA20_POLY1305: {
    struct tls12_crypto_info_chacha20_poly1305 *ci = (void *)buf;
    memset(ci, 0, sizeof *ci);
    ci->info.version = c->version;
    ci->info.cipher_type = c->type;
    memcpy(ci->key, key, sizeof ci->key);
    memcpy(ci->iv, iv, sizeof ci->iv);
    memcpy(ci->rec_seq, seq, sizeof ci->rec_seq);
    return sizeof *ci;
  }
  }
  return 0;
}

static int install(int fd, int dir, const struct cipher *c, const char *what) {
  unsigned char buf[128];
  size_t n = crypto_info(c, buf);
  if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", 4) < 0 && errno != EEXIST) {
    fail("%s: setsockopt(TCP_ULP, \"tls\"): %s%s", what, strerror(errno),
         errno == ENOENT ? " (kernel without CONFIG_TLS / tls module not loaded)" : "");
    return -1;
  }
  if (setsockopt(fd, SOL_TLS, dir, buf, (socklen_t)n) < 0) {
    fail("%s: setsockopt(SOL_TLS, %s, %s): %s", what, dir == TLS_TX ? "TLS_TX" : "TLS_RX",
         c->name, strerror(errno));
    return -1;
  }
  return 0;
}

static int read_full(int fd, unsigned char *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = recv(fd, buf + got, n - got, 0);
    if (r <= 0) return r == 0 ? (errno = ECONNRESET, -1) : -1;
    got += (size_t)r;
  }
  return 0;
}

static const char message[] = "whorl kTLS smoke test: hello through the kernel record layer";

/* kTLS TX -> kTLS RX: the plaintext must come back unchanged. */
static void roundtrip(const struct cipher *c) {
  int a, b;
  char what[96];
  snprintf(what, sizeof what, "%s TLS 1.%d roundtrip", c->name,
           c->version == TLS_1_3_VERSION ? 3 : 2);
  if (tcp_pair(&a, &b) < 0) return;
  if (install(a, TLS_TX, c, what) == 0 && install(b, TLS_RX, c, what) == 0) {
    ssize_t s = send(a, message, sizeof message, 0);
    if (s != (ssize_t)sizeof message) {
      fail("%s: send: %zd (%s)", what, s, strerror(errno));
    } else {
      unsigned char got[sizeof message];
      if (read_full(b, got, sizeof got) < 0)
        fail("%s: recv: %s", what, strerror(errno));
      else if (memcmp(got, message, sizeof message) != 0)
        fail("%s: received bytes differ from the ones sent", what);
      else
        printf("ok   %s\n", what);
    }
  }
  close(a);
  close(b);
}

/* kTLS TX -> plain TCP: a real, encrypted record must be on the wire. */
static void wire(const struct cipher *c) {
  int a, b;
  char what[96];
  snprintf(what, sizeof what, "%s TLS 1.%d record on the wire", c->name,
           c->version == TLS_1_3_VERSION ? 3 : 2);
  if (tcp_pair(&a, &b) < 0) return;
  if (install(a, TLS_TX, c, what) == 0) {
    if (send(a, message, sizeof message, 0) != (ssize_t)sizeof message) {
      fail("%s: send: %s", what, strerror(errno));
    } else {
      int tls13 = c->version == TLS_1_3_VERSION;
      size_t expect = c->explicit_nonce + sizeof message + (tls13 ? 1 : 0) + c->tag_size;
      unsigned char hdr[5], body[256];
      if (read_full(b, hdr, sizeof hdr) < 0) {
        fail("%s: recv header: %s", what, strerror(errno));
      } else {
        size_t len = (size_t)hdr[3] << 8 | hdr[4];
        if (hdr[0] != 23 || hdr[1] != 3 || hdr[2] != 3 || len != expect) {
          fail("%s: header %02x %02x%02x len %zu, want 17 0303 len %zu", what, hdr[0], hdr[1],
               hdr[2], len, expect);
        } else if (read_full(b, body, len) < 0) {
          fail("%s: recv body: %s", what, strerror(errno));
        } else if (memmem(body, len, message, 16) != NULL) {
          fail("%s: plaintext visible on the wire", what);
        } else {
          printf("ok   %s (%zu-byte record, ciphertext)\n", what, len);
        }
      }
    }
  }
  close(a);
  close(b);
}

/* Fixed key material variant for the rekeyed direction. */
static size_t crypto_info_updated(const struct cipher *c, unsigned char *buf) {
  size_t n = crypto_info(c, buf);
  struct tls12_crypto_info_aes_gcm_128 *ci = (void *)buf;
  for (size_t i = 0; i < sizeof ci->key; i++) ci->key[i] ^= 0x5a;
  ci->iv[0] ^= 0x5a;
  return n;
}

static int kernel_at_least(int major, int minor) {
  struct utsname u;
  int ma = 0, mi = 0;
  if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2) return 0;
  return ma > major || (ma == major && mi >= minor);
}

/* TLS 1.3 KeyUpdate over kTLS: supported from 6.14, refused before. */
static void rekey(const struct cipher *c) {
  const char *what = "AES-128-GCM TLS 1.3 KeyUpdate";
  int expect = kernel_at_least(6, 14);
  int a, b;
  if (tcp_pair(&a, &b) < 0) return;
  if (install(a, TLS_TX, c, what) < 0 || install(b, TLS_RX, c, what) < 0) goto out;

  static const char before[] = "before the key update", after[] = "after the key update";
  unsigned char got[64];
  if (send(a, before, sizeof before, 0) != (ssize_t)sizeof before ||
      read_full(b, got, sizeof before) < 0 || memcmp(got, before, sizeof before) != 0) {
    fail("%s: data before the update did not arrive: %s", what, strerror(errno));
    goto out;
  }

  /* KeyUpdate(update_not_requested) as a handshake record under the old key. */
  unsigned char key_update[] = {24, 0, 0, 1, 0};
  char cbuf[CMSG_SPACE(sizeof(unsigned char))] = {0};
  struct iovec iov = {key_update, sizeof key_update};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                       .msg_controllen = sizeof cbuf};
  struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_TLS;
  cm->cmsg_type = TLS_SET_RECORD_TYPE;
  cm->cmsg_len = CMSG_LEN(sizeof(unsigned char));
  *CMSG_DATA(cm) = 22; /* handshake */
  if (sendmsg(a, &msg, 0) != (ssize_t)sizeof key_update) {
    fail("%s: sendmsg(KeyUpdate record): %s", what, strerror(errno));
    goto out;
  }

  unsigned char info[128];
  size_t n = crypto_info_updated(c, info);
  if (setsockopt(a, SOL_TLS, TLS_TX, info, (socklen_t)n) < 0) {
    if (expect)
      fail("%s: setsockopt(TLS_TX) with the new key: %s (kernel >= 6.14 should rekey)", what,
           strerror(errno));
    else
      printf("ok   %s refused by this kernel (< 6.14): TLS_TX again: %s\n", what,
             strerror(errno));
    goto out;
  }
  if (!expect) printf("note %s: TLS_TX rekey accepted by a kernel < 6.14\n", what);
  if (send(a, after, sizeof after, 0) != (ssize_t)sizeof after) {
    fail("%s: send under the new key: %s", what, strerror(errno));
    goto out;
  }

  /* The receiver: the KeyUpdate record comes with its type... */
  unsigned char rbuf[64];
  char rcbuf[CMSG_SPACE(sizeof(unsigned char))];
  struct iovec riov = {rbuf, sizeof rbuf};
  struct msghdr rmsg = {.msg_iov = &riov, .msg_iovlen = 1, .msg_control = rcbuf,
                        .msg_controllen = sizeof rcbuf};
  ssize_t r = recvmsg(b, &rmsg, 0);
  struct cmsghdr *rc = CMSG_FIRSTHDR(&rmsg);
  if (r != (ssize_t)sizeof key_update || !rc || rc->cmsg_level != SOL_TLS ||
      rc->cmsg_type != TLS_GET_RECORD_TYPE || *CMSG_DATA(rc) != 22 ||
      memcmp(rbuf, key_update, sizeof key_update) != 0) {
    fail("%s: receiver did not get the KeyUpdate record with type 22 (recvmsg %zd: %s)", what,
         r, r < 0 ? strerror(errno) : "wrong type or bytes");
    goto out;
  }
  /* ...then reads fail with EKEYEXPIRED until the new key is installed. */
  r = recv(b, rbuf, sizeof rbuf, MSG_DONTWAIT);
  if (!(r < 0 && errno == EKEYEXPIRED)) {
    fail("%s: read before the new TLS_RX: %zd (%s), want EKEYEXPIRED", what, r,
         r < 0 ? strerror(errno) : "data");
    goto out;
  }
  if (setsockopt(b, SOL_TLS, TLS_RX, info, (socklen_t)n) < 0) {
    fail("%s: setsockopt(TLS_RX) with the new key: %s", what, strerror(errno));
    goto out;
  }
  if (read_full(b, got, sizeof after) < 0 || memcmp(got, after, sizeof after) != 0) {
    fail("%s: data after the update did not arrive: %s", what, strerror(errno));
    goto out;
  }
  printf("ok   %s (KeyUpdate record seen, EKEYEXPIRED until the new TLS_RX, data flows)\n",
         what);
out:
  close(a);
  close(b);
}

static long stat_value(const char *name) {
  FILE *f = fopen("/proc/net/tls_stat", "r");
  if (!f) return -1;
  char key[64];
  long v, found = -1;
  while (fscanf(f, "%63s %ld", key, &v) == 2)
    if (strcmp(key, name) == 0) found = v;
  fclose(f);
  return found;
}

static void print_stat(void) {
  FILE *f = fopen("/proc/net/tls_stat", "r");
  if (!f) {
    printf("/proc/net/tls_stat: %s\n", strerror(errno));
    return;
  }
  printf("/proc/net/tls_stat:\n");
  char line[256];
  while (fgets(line, sizeof line, f)) printf("  %s", line);
  fclose(f);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct utsname u;
  uname(&u);
  printf("ktls_smoke: kernel %s (%s)\n", u.release, u.version);

  long tx0 = stat_value("TlsTxSw"), rx0 = stat_value("TlsRxSw");
  if (tx0 < 0) printf("ktls_smoke: note: /proc/net/tls_stat not readable before the test\n");

  const struct cipher ciphers[] = {
      {"AES-128-GCM", TLS_1_3_VERSION, TLS_CIPHER_AES_GCM_128, 16, 8, 4, 16, 0},
      {"AES-256-GCM", TLS_1_3_VERSION, TLS_CIPHER_AES_GCM_256, 32, 8, 4, 16, 0},
      {"ChaCha20-Poly1305", TLS_1_3_VERSION, TLS_CIPHER_CHACHA20_POLY1305, 32, 12, 0, 16, 0},
      {"AES-128-GCM", TLS_1_2_VERSION, TLS_CIPHER_AES_GCM_128, 16, 8, 4, 16, 8},
  };
  const int n = (int)(sizeof ciphers / sizeof ciphers[0]);
  for (int i = 0; i < n; i++) {
    roundtrip(&ciphers[i]);
    wire(&ciphers[i]);
  }
  long txr0 = stat_value("TlsTxRekeyOk"), rxr0 = stat_value("TlsRxRekeyOk");
  rekey(&ciphers[0]);
  if (kernel_at_least(6, 14) && txr0 >= 0) {
    long txr1 = stat_value("TlsTxRekeyOk"), rxr1 = stat_value("TlsRxRekeyOk");
    if (txr1 - txr0 != 1 || rxr1 - rxr0 != 1)
      fail("rekey counters: TlsTxRekeyOk +%ld, TlsRxRekeyOk +%ld, want +1 each", txr1 - txr0,
           rxr1 - rxr0);
  }

  /* Each cipher opened two TX sockets (roundtrip + wire) and one RX socket (+ rekey's). */
  long tx1 = stat_value("TlsTxSw"), rx1 = stat_value("TlsRxSw");
  if (tx1 < 0)
    fail("/proc/net/tls_stat has no TlsTxSw counter");
  else if (tx0 >= 0 && (tx1 - tx0 < 2 * n || rx1 - rx0 < n))
    fail("tls_stat counters did not move as expected: TlsTxSw +%ld (want %d), TlsRxSw +%ld "
         "(want %d)", tx1 - tx0, 2 * n, rx1 - rx0, n);

  print_stat();
  if (failures) {
    printf("ktls_smoke: %d check(s) failed\n", failures);
    return 1;
  }
  printf("kTLS OK\n");
  return 0;
}

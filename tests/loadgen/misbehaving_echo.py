"""TCP echo servers that misbehave in one way each, for checking //tools:loadgen. Prints its port
on stdout.

  python3 misbehaving_echo.py corrupt
      corrupts one byte per connection after the first 50,000 bytes (loadgen must verify every
      echoed byte)
  python3 misbehaving_echo.py slow-start STALL DELAY
      falls behind at the start of every connection and then catches up: waits STALL seconds
      after accepting, then echoes each message DELAY seconds after it arrived (about 1/DELAY
      messages per second); loadgen's open loop must count only requests scheduled inside the
      measured window
"""
import socket
import sys
import threading
import time


def corrupt(conn):
    seen = 0
    corrupted = False
    while True:
        data = conn.recv(65536)
        if not data:
            break
        seen += len(data)
        if not corrupted and seen > 50000:
            data = bytes([data[0] ^ 0x01]) + data[1:]
            corrupted = True
        conn.sendall(data)


def slow_start(stall, delay):
    def serve(conn):
        time.sleep(stall)
        while True:
            data = conn.recv(65536)
            if not data:
                break
            time.sleep(delay)
            conn.sendall(data)
    return serve


def run(serve, conn):
    try:
        serve(conn)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    if sys.argv[1:2] == ["corrupt"]:
        serve = corrupt
    elif sys.argv[1:2] == ["slow-start"] and len(sys.argv) == 4:
        serve = slow_start(float(sys.argv[2]), float(sys.argv[3]))
    else:
        sys.exit(__doc__)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(128)
    print(server.getsockname()[1], flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=run, args=(serve, conn), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())

"""A TCP echo server that falls behind at the start of every connection and then catches up: it
waits STALL seconds after accepting, then echoes each message DELAY seconds after it arrived (so
it drains a backlog at about 1/DELAY messages per second). For checking that //tools:loadgen's
open loop counts only requests scheduled inside the measured window. Prints its port on stdout.

  python3 slow_start_echo.py 0.9 0.001
"""
import socket
import sys
import threading
import time


def serve(conn, stall, delay):
    try:
        time.sleep(stall)
        while True:
            data = conn.recv(65536)
            if not data:
                break
            time.sleep(delay)
            conn.sendall(data)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    stall, delay = float(sys.argv[1]), float(sys.argv[2])
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(128)
    print(server.getsockname()[1], flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn, stall, delay), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())

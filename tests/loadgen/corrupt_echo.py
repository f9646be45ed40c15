"""A TCP echo server that corrupts one byte per connection after the first 50,000 bytes, for
checking that //tools:loadgen verifies every echoed byte. Prints its port on stdout."""
import socket
import sys
import threading


def serve(conn):
    seen = 0
    corrupted = False
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            seen += len(data)
            if not corrupted and seen > 50000:
                data = bytes([data[0] ^ 0x01]) + data[1:]
                corrupted = True
            conn.sendall(data)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(128)
    print(server.getsockname()[1], flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())

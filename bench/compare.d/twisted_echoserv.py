#!/usr/bin/python3
# Twisted's echoserv.py (plain TCP echo), the peer for bench/compare. Port from argv[1].
import sys

from twisted.internet import protocol, reactor


class Echo(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


factory = protocol.Factory.forProtocol(Echo)
reactor.listenTCP(int(sys.argv[1]), factory, interface="127.0.0.1")
print("listening on 127.0.0.1:%s" % sys.argv[1], flush=True)
reactor.run()

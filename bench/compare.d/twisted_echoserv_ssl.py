#!/usr/bin/python3
# The seed's echoserv_ssl.py (Echo over TLS with one PEM holding key and certificate), the peer
# for bench/compare. Arguments: port, PEM path.
import sys

from twisted.internet import protocol, reactor, ssl


class Echo(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


with open(sys.argv[2], "rb") as f:
    certificate = ssl.PrivateCertificate.loadPEM(f.read())
factory = protocol.Factory.forProtocol(Echo)
reactor.listenSSL(int(sys.argv[1]), factory, certificate.options(), interface="127.0.0.1")
print("listening on 127.0.0.1:%s" % sys.argv[1], flush=True)
reactor.run()

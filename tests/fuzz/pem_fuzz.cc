// Fuzz target: PEM loading (framework/tls/certificate.h), the certificate, key and CA files an
// operator points the servers at.
//
// Each loader gets the bytes whole (PEM files are read whole). What loads must survive a round
// trip: a certificate dumped as PEM loads again to the same PEM, a bundle keeps its count, a
// private certificate's certificate matches what Certificate::loadPEM finds first. Every failure
// has a message.
#include <cstdint>
#include <string>
#include <string_view>

#include "framework/tls/certificate.h"
#include "tests/fuzz/fuzz_support.h"

using whorl::tls::Certificate;
using whorl::tls::KeyPair;
using whorl::tls::PrivateCertificate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view pem = whorl::fuzz::asText(data, size);
  auto hasMessage = [](const whorl::Status& s) {
    whorl::fuzz::check(!s.message().empty(), "an error has a message");
  };

  auto cert = Certificate::loadPEM(pem);
  if (cert) {
    std::string dumped = cert->dumpPEM();
    auto again = Certificate::loadPEM(dumped);
    whorl::fuzz::check(again.isOk(), "a dumped certificate loads again");
    whorl::fuzz::check(again->dumpPEM() == dumped, "dump, load, dump is stable");
    // What logs and verification read from a certificate: must cope with any that parses.
    (void)cert->toString();
    (void)cert->subjectAltNames();
    (void)cert->commonName();
    (void)cert->sha256Digest();
    whorl::fuzz::check(Certificate::loadDER(cert->dumpDER()).isOk(), "a certificate's DER loads");
  } else {
    hasMessage(cert.status());
  }

  auto all = Certificate::loadAllPEM(pem);
  if (all) {
    whorl::fuzz::check(!all->empty(), "a loaded bundle holds a certificate");
    whorl::fuzz::check(cert.isOk(), "loadAllPEM and loadPEM agree on whether there is one");
    whorl::fuzz::check(all->front().dumpPEM() == cert->dumpPEM(), "the first is loadPEM's");
    std::string bundle;
    for (const auto& c : *all) bundle += c.dumpPEM();
    auto again = Certificate::loadAllPEM(bundle);
    whorl::fuzz::check(again.isOk() && again->size() == all->size(), "a bundle round-trips");
  } else {
    hasMessage(all.status());
  }

  auto key = KeyPair::loadPEM(pem);
  if (!key) hasMessage(key.status());

  auto pc = PrivateCertificate::loadPEM(pem);
  if (pc) {
    whorl::fuzz::check(key.isOk(), "a private certificate has a key KeyPair::loadPEM finds");
    whorl::fuzz::check(cert.isOk(), "a private certificate has a certificate");
  } else {
    hasMessage(pc.status());
  }

  auto der = Certificate::loadDER(pem);
  if (der) {
    auto again = Certificate::loadPEM(der->dumpPEM());
    whorl::fuzz::check(again.isOk(), "a DER certificate dumps as loadable PEM");
  } else {
    hasMessage(der.status());
  }
  return 0;
}

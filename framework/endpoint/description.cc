#include "framework/endpoint/description.h"

#include <charconv>
#include <chrono>
#include <climits>
#include <cmath>
#include <span>

#include "framework/base/address.h"
#include "framework/base/files.h"
#include "framework/endpoint/tls_endpoint.h"
#include "framework/tls/certificate.h"
#include "framework/tls/options.h"

namespace whorl::endpoint {

const std::string* Description::kwarg(std::string_view key) const {
  for (const auto& [k, v] : kwargs) {
    if (k == key) return &v;
  }
  return nullptr;
}

namespace {

// "<what> in "<text>"[ <hint>]": every error names the bad part and quotes the whole string.
Status bad(std::string_view what, std::string_view text, std::string_view hint = {}) {
  std::string m(what);
  m += " in \"";
  m += text;
  m += '"';
  if (!hint.empty()) {
    m += ' ';
    m += hint;
  }
  return Status::invalidArgument(std::move(m));
}

template <typename T, typename Name>
std::string joinNames(std::span<const T> items, Name name) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += ", ";
    out += name(item);
  }
  return out;
}

// One argument an endpoint type accepts; positional arguments fill them in this order.
struct Param {
  std::string_view name;
  bool required;
};

// A description's arguments matched to the parameters of its type.
class Args {
 public:
  static Result<Args> bind(const Description& d, std::string_view text,
                           std::span<const Param> params) {
    Args a;
    a.text_ = text;
    auto names = [&] { return joinNames(params, [](const Param& p) { return p.name; }); };
    if (d.args.size() > params.size()) {
      return bad(
          "too many arguments", text,
          "(" + d.type + " takes at most " + std::to_string(params.size()) + ": " + names() + ")");
    }
    for (size_t i = 0; i < d.args.size(); ++i) a.values_.emplace_back(params[i].name, d.args[i]);
    for (const auto& [key, value] : d.kwargs) {
      const Param* p = nullptr;
      for (const auto& candidate : params) {
        if (candidate.name == key) p = &candidate;
      }
      if (p == nullptr) return bad("unknown key '" + key + "'", text, "(known: " + names() + ")");
      if (a.get(key) != nullptr) {
        return bad("'" + key + "' given both positionally and as " + key + "=", text);
      }
      a.values_.emplace_back(p->name, value);
    }
    for (const auto& p : params) {
      if (p.required && a.get(p.name) == nullptr) {
        return bad("missing " + std::string(p.name), text);
      }
    }
    return a;
  }

  // The value given for `name`, or nullptr.
  const std::string* get(std::string_view name) const {
    for (const auto& [n, v] : values_) {
      if (n == name) return &v;
    }
    return nullptr;
  }
  Status error(std::string_view what) const { return bad(what, text_); }

 private:
  std::string_view text_;
  std::vector<std::pair<std::string_view, std::string>> values_;
};

template <typename T>
bool parseInteger(std::string_view s, T* out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

Result<uint16_t> portArg(const Args& a, unsigned minPort) {
  const std::string& s = *a.get("port");
  unsigned v = 0;
  if (!parseInteger(s, &v) || v < minPort || v > 65535) {
    return a.error("port '" + s + "' is not a number " + std::to_string(minPort) + "-65535");
  }
  return static_cast<uint16_t>(v);
}

// backlog=N: a positive listen backlog, into *out when given.
Status backlogArg(const Args& a, int* out) {
  const std::string* backlog = a.get("backlog");
  if (backlog == nullptr) return Status::ok();
  int v = 0;
  if (!parseInteger(*backlog, &v) || v < 1) {
    return a.error("backlog '" + *backlog + "' is not a positive number");
  }
  *out = v;
  return Status::ok();
}

// timeout=SECONDS: positive, fractional allowed, at most a year (anything longer is a typo and
// would overflow the millisecond count); rounded up so that a tiny timeout never becomes 0.
Status timeoutArg(const Args& a, std::chrono::milliseconds* out) {
  const std::string* timeout = a.get("timeout");
  if (timeout == nullptr) return Status::ok();
  double seconds = 0;
  const std::string& s = *timeout;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), seconds);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(seconds) ||
      seconds <= 0 || seconds > 365.0 * 24 * 3600) {
    return a.error("timeout '" + s + "' is not a positive number of seconds");
  }
  *out = std::chrono::milliseconds(static_cast<int64_t>(std::ceil(seconds * 1000)));
  return Status::ok();
}

// ---- Server types ----------------------------------------------------------------------------

// A server description resolved, and for ssl: the TLS context built from its options: building
// it is the only complete check of them (OpenSSL alone judges, say, a key too small for its
// security level), and serverFromString uses it rather than building a second one.
struct ParsedServer {
  ServerSpec spec;
  std::shared_ptr<tls::TlsContext> context;
};

constexpr Param kTcpServerParams[] = {
    {"port", true},
    {"interface", false},
    {"backlog", false},
};

Result<ParsedServer> parseTcpServer(const Args& a, int family) {
  auto port = portArg(a, 0);
  if (!port) return port.status();
  ParsedServer parsed;
  ServerSpec& spec = parsed.spec;
  spec.family = family;
  spec.port = *port;
  if (const std::string* iface = a.get("interface"); iface != nullptr && !iface->empty()) {
    auto addr = Address::parse(*iface, 0);
    if (!addr || addr->family() != family) {
      return a.error("interface '" + *iface + "' is not an " +
                     (family == AF_INET6 ? "IPv6" : "IPv4") + " address");
    }
    spec.tcp.interface = *iface;
  }
  WHORL_RETURN_IF_ERROR(backlogArg(a, &spec.tcp.backlog));
  return parsed;
}

constexpr Param kSslServerParams[] = {
    {"port", true},
    {"privateKey", true},
    {"certKey", false},
    {"extraCertChain", false},
    {"dhParameters", false},
    {"interface", false},
    {"backlog", false},
    {"caCerts", false},
    {"tlsMinimum", false},
    {"tlsMaximum", false},
    {"ktls", false},
    {"alpn", false},
};

// privateKey=FILE[:certKey=FILE]: the server's certificate and key, each file read once.
// Further certificates in the certificate file are the chain, as in a combined PEM, when that
// file holds the certificate's key too.
Result<tls::CertificateOptions> identityArgs(const Args& a) {
  const std::string& keyPath = *a.get("privateKey");
  const std::string* certArg = a.get("certKey");
  const std::string& certPath = certArg ? *certArg : keyPath;
  std::string certName = certArg ? "certKey: " : "privateKey: ";
  auto keyText = readFile(keyPath);
  if (!keyText) return a.error("privateKey: " + keyText.status().message());
  auto key = tls::KeyPair::loadPEM(*keyText);
  if (!key) return a.error("privateKey: " + key.status().withContext(keyPath).message());
  Result<std::string> certText = certArg ? readFile(certPath) : std::move(keyText);
  if (!certText) return a.error(certName + certText.status().message());
  auto cert = tls::Certificate::loadPEM(*certText);
  if (!cert) return a.error(certName + cert.status().withContext(certPath).message());
  auto identity = tls::PrivateCertificate::fromCertificateAndKeyPair(*cert, *key);
  if (!identity) return a.error(identity.status().message());
  tls::CertificateOptions options = identity->options();
  if (auto whole = tls::PrivateCertificate::loadPEM(*certText); whole) {
    options.extraCertChain = whole->chain();
  }
  if (const std::string* chain = a.get("extraCertChain")) {
    auto root = tls::trustRootFromPath(*chain);
    if (!root) return a.error("extraCertChain: " + root.status().message());
    options.extraCertChain = root->certificates();
  }
  return options;
}

// alpn=P1,P2: comma-separated, in preference order ("alpn=h2,http/1.1": ':' separates fields).
Status alpnArg(const Args& a, std::vector<std::string>* out) {
  const std::string* alpn = a.get("alpn");
  if (alpn == nullptr) return Status::ok();
  static constexpr const char* kRule = "alpn: protocol names are 1-255 bytes, separated by commas";
  std::string_view rest = *alpn;
  if (rest.empty()) return a.error(kRule);
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view name = rest.substr(0, comma);
    if (name.empty() || name.size() > 255) return a.error(kRule);
    out->emplace_back(name);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (comma != std::string_view::npos && rest.empty()) return a.error(kRule);
  }
  return Status::ok();
}

// tlsMinimum=V, tlsMaximum=V (their combination is checked later, with the other TLS options).
// An explicit minimum is taken as asked, even below the default floor.
Status versionArgs(const Args& a, tls::CertificateOptions* options) {
  if (const std::string* v = a.get("tlsMinimum")) {
    auto version = tls::parseTLSVersion(*v);
    if (!version) return a.error("tlsMinimum: " + version.status().message());
    options->insecurelyLowerMinimumTo = *version;
  }
  if (const std::string* v = a.get("tlsMaximum")) {
    auto version = tls::parseTLSVersion(*v);
    if (!version) return a.error("tlsMaximum: " + version.status().message());
    options->lowerMaximumSecurityTo = *version;
  }
  return Status::ok();
}

// ssl:PORT:privateKey=FILE[:certKey=FILE]...: Twisted's SSL server string, plus caCerts (client
// certificates required, anchored in that file or directory) and the TLS version bounds.
Result<ParsedServer> parseSslServer(const Args& a) {
  auto port = portArg(a, 0);
  if (!port) return port.status();
  auto options = identityArgs(a);
  if (!options) return options.status();
  if (const std::string* dh = a.get("dhParameters")) {
    auto params = tls::DiffieHellmanParameters::fromFile(*dh);
    if (!params) return a.error("dhParameters: " + params.status().message());
    options->dhParameters = *params;
  }
  if (const std::string* ca = a.get("caCerts")) {
    auto root = tls::trustRootFromPath(*ca);
    if (!root) return a.error("caCerts: " + root.status().message());
    options->trustRoot = *root;
  }
  WHORL_RETURN_IF_ERROR(versionArgs(a, &*options));
  if (const std::string* k = a.get("ktls")) {
    auto mode = tls::parseKtlsMode(*k);
    if (!mode) return a.error(mode.status().message());
    options->ktls = *mode;
  }
  WHORL_RETURN_IF_ERROR(alpnArg(a, &options->acceptableProtocols));
  if (auto range = options->versionRange(); !range) return a.error(range.status().message());
  ParsedServer parsed;
  parsed.spec.port = *port;
  if (const std::string* iface = a.get("interface"); iface != nullptr && !iface->empty()) {
    auto addr = Address::parse(*iface, 0);
    if (!addr) return a.error("interface '" + *iface + "' is not an IP address");
    parsed.spec.tcp.interface = *iface;
    if (addr->isIPv6()) parsed.spec.family = AF_INET6;
  }
  WHORL_RETURN_IF_ERROR(backlogArg(a, &parsed.spec.tcp.backlog));
  auto context = options->context();
  if (!context) return a.error(context.status().message());
  parsed.context = std::move(*context);
  parsed.spec.tls = std::move(*options);
  return parsed;
}

struct ServerType {
  std::string_view name;
  std::span<const Param> params;
  Result<ParsedServer> (*build)(const Args&);
};

// Adding a server type: a parameter list, a parser, and a row here.
const ServerType kServerTypes[] = {
    {"tcp", kTcpServerParams, [](const Args& a) { return parseTcpServer(a, AF_INET); }},
    {"tcp6", kTcpServerParams, [](const Args& a) { return parseTcpServer(a, AF_INET6); }},
    {"ssl", kSslServerParams, parseSslServer},
};

// ---- Client types ----------------------------------------------------------------------------

constexpr Param kTcpClientParams[] = {
    {"host", true},
    {"port", true},
    {"timeout", false},
};

Result<std::unique_ptr<ClientEndpoint>> buildTcpClient(reactor::Shard& shard, const Args& a) {
  const std::string& host = *a.get("host");
  if (host.empty()) return a.error("empty host");
  auto port = portArg(a, 1);
  if (!port) return port.status();
  TcpClientOptions options;
  WHORL_RETURN_IF_ERROR(timeoutArg(a, &options.timeout));
  return std::unique_ptr<ClientEndpoint>(
      std::make_unique<HostnameEndpoint>(shard, host, *port, std::move(options)));
}

constexpr Param kTlsClientParams[] = {
    {"host", true},
    {"port", true},
    {"timeout", false},
    {"trustRoots", false},
    {"certificate", false},
    {"privateKey", false},
    {"ktls", false},
};

// tls:HOST:PORT[:trustRoots=PATH][:certificate=FILE][:privateKey=FILE][:timeout=S]: Twisted's
// TLS client string. Verifies HOST against trustRoots (a PEM file or a directory; default: the
// system store).
Result<std::unique_ptr<ClientEndpoint>> buildTlsClient(reactor::Shard& shard, const Args& a) {
  const std::string& host = *a.get("host");
  if (host.empty()) return a.error("empty host");
  auto port = portArg(a, 1);
  if (!port) return port.status();
  std::optional<tls::TrustRoot> trust;
  if (const std::string* roots = a.get("trustRoots")) {
    auto root = tls::trustRootFromPath(*roots);
    if (!root) return a.error("trustRoots: " + root.status().message());
    trust = *root;
  }
  std::optional<tls::PrivateCertificate> clientCert;
  const std::string* certPath = a.get("certificate");
  const std::string* keyPath = a.get("privateKey");
  if (certPath != nullptr || keyPath != nullptr) {
    const std::string& cp = certPath ? *certPath : *keyPath;
    const std::string& kp = keyPath ? *keyPath : *certPath;
    auto cert = tls::Certificate::loadPEMFile(cp);
    if (!cert) return a.error("certificate: " + cert.status().message());
    auto key = tls::KeyPair::loadPEMFile(kp);
    if (!key) return a.error("privateKey: " + key.status().message());
    auto pc = tls::PrivateCertificate::fromCertificateAndKeyPair(*cert, *key);
    if (!pc) return a.error(pc.status().message());
    clientCert = *pc;
  }
  TcpClientOptions tcp;
  WHORL_RETURN_IF_ERROR(timeoutArg(a, &tcp.timeout));
  tls::ClientTLSExtras extras;
  if (const std::string* k = a.get("ktls")) {
    auto mode = tls::parseKtlsMode(*k);
    if (!mode) return a.error(mode.status().message());
    extras.ktls = *mode;
  }
  tls::TLSOptions options = tls::optionsForClientTLS(host, trust, clientCert, {}, extras);
  if (!options) return a.error(options.status().message());
  return std::unique_ptr<ClientEndpoint>(
      std::make_unique<SSL4ClientEndpoint>(shard, host, *port, options, std::move(tcp)));
}

struct ClientType {
  std::string_view name;
  std::span<const Param> params;
  Result<std::unique_ptr<ClientEndpoint>> (*build)(reactor::Shard&, const Args&);
};

// Adding a client type: a parameter list, a builder, and a row here.
const ClientType kClientTypes[] = {
    {"tcp", kTcpClientParams, buildTcpClient},
    {"tls", kTlsClientParams, buildTlsClient},
};

// Finds d.type in `types` and builds it with `build(type, args)`, or explains which types exist.
template <typename Out, typename Type, typename Build>
Result<Out> fromString(std::span<const Type> types, std::string_view text, Build build) {
  auto d = parseDescription(text);
  if (!d) return d.status();
  for (const auto& type : types) {
    if (type.name != d->type) continue;
    auto args = Args::bind(*d, text, type.params);
    if (!args) return args.status();
    return build(type, *args);
  }
  return bad("unknown endpoint type '" + d->type + "'", text,
             "(supported: " + joinNames(types, [](const Type& t) { return t.name; }) + ")");
}

Result<ParsedServer> parseServer(std::string_view description) {
  auto parsed = fromString<ParsedServer>(std::span<const ServerType>(kServerTypes), description,
                                         [](const ServerType& t, const Args& a) { return t.build(a); });
  if (parsed) parsed->spec.description = std::string(description);
  return parsed;
}

// For ssl: `context` when given (built from spec.tls already), else a context built now.
std::unique_ptr<ServerEndpoint> endpointFor(reactor::Runtime& runtime, ServerSpec spec,
                                            std::shared_ptr<tls::TlsContext> context) {
  if (spec.tls) {
    tls::TLSOptions options = context ? tls::TLSOptions(std::move(context)) : *spec.tls;
    return std::make_unique<SSL4ServerEndpoint>(runtime, spec.port, std::move(options),
                                                std::move(spec.tcp), spec.family);
  }
  if (spec.family == AF_INET6) {
    return std::make_unique<TCP6ServerEndpoint>(runtime, spec.port, std::move(spec.tcp));
  }
  return std::make_unique<TCP4ServerEndpoint>(runtime, spec.port, std::move(spec.tcp));
}

}  // namespace

Result<Description> parseDescription(std::string_view text) {
  if (text.empty()) return Status::invalidArgument("empty endpoint description \"\"");
  Description d;
  std::string current;
  std::string key;
  bool haveKey = false;  // an unescaped '=' was seen in the current field
  bool first = true;

  auto endField = [&]() -> Status {
    if (first) {
      first = false;
      if (haveKey || current.empty()) return bad("missing endpoint type", text);
      d.type = std::move(current);
    } else if (haveKey) {
      if (key.empty()) return bad("empty key", text);
      if (d.kwarg(key) != nullptr) return bad("duplicate key '" + key + "'", text);
      d.kwargs.emplace_back(std::move(key), std::move(current));
    } else {
      d.args.push_back(std::move(current));
    }
    current.clear();
    key.clear();
    haveKey = false;
    return Status::ok();
  };

  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\\') {
      if (i + 1 == text.size()) return bad("trailing backslash", text);
      current += text[++i];
    } else if (c == ':') {
      WHORL_RETURN_IF_ERROR(endField());
    } else if (c == '=' && !haveKey) {
      key = std::move(current);
      current.clear();
      haveKey = true;
    } else {
      current += c;
    }
  }
  WHORL_RETURN_IF_ERROR(endField());
  return d;
}

Result<ServerSpec> serverSpecFromString(std::string_view description) {
  auto parsed = parseServer(description);
  if (!parsed) return parsed.status();
  return std::move(parsed->spec);
}

std::unique_ptr<ServerEndpoint> serverFromSpec(reactor::Runtime& runtime, ServerSpec spec) {
  return endpointFor(runtime, std::move(spec), nullptr);
}

Result<std::unique_ptr<ServerEndpoint>> serverFromString(reactor::Runtime& runtime,
                                                         std::string_view description) {
  auto parsed = parseServer(description);
  if (!parsed) return parsed.status();
  return endpointFor(runtime, std::move(parsed->spec), std::move(parsed->context));
}

Result<std::unique_ptr<ClientEndpoint>> clientFromString(reactor::Shard& shard,
                                                         std::string_view description) {
  return fromString<std::unique_ptr<ClientEndpoint>>(
      std::span<const ClientType>(kClientTypes), description,
      [&shard](const ClientType& t, const Args& a) { return t.build(shard, a); });
}

}  // namespace whorl::endpoint

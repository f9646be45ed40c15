// Tests for Flags: value syntaxes, booleans, repeatable flags, errors, positional arguments, "--"
// and --help.
#include "framework/base/flags.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

namespace whorl {
namespace {

// Holds every kind of flag bound to fields, with non-trivial defaults.
class FlagsTest : public ::testing::Test {
 protected:
  FlagsTest() {
    flags_.add("port", &port_, "TCP port to listen on");
    flags_.add("host", &host_, "host to connect to");
    flags_.add("ratio", &ratio_, "share of requests to sample");
    flags_.add("bytes", &bytes_, "bytes to send");
    flags_.add("verbose", &verbose_, "log every connection");
    flags_.add("color", &color_, "colour the output");
    flags_.add("peer", &peers_, "a peer to contact");
    flags_.add("note", &note_, "free text");
  }

  Status parse(std::initializer_list<const char*> args) {
    argv_.assign({"prog"});
    argv_.insert(argv_.end(), args.begin(), args.end());
    return flags_.parse(static_cast<int>(argv_.size()), argv_.data());
  }

  void expectError(std::initializer_list<const char*> args, const std::string& message) {
    Status s = parse(args);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.toString();
    EXPECT_EQ(s.message(), message);
  }

  int port_ = 8000;
  std::string host_ = "localhost";
  double ratio_ = 0.5;
  uint64_t bytes_ = 1024;
  bool verbose_ = false;
  bool color_ = true;
  std::vector<std::string> peers_{"a.example", "b.example"};
  std::string note_;
  Flags flags_{"prog", "Does things for tests."};
  std::vector<const char*> argv_;
};

TEST_F(FlagsTest, DefaultsStayWithoutArguments) {
  ASSERT_TRUE(parse({}).isOk());
  EXPECT_EQ(port_, 8000);
  EXPECT_EQ(host_, "localhost");
  EXPECT_EQ(ratio_, 0.5);
  EXPECT_EQ(bytes_, 1024u);
  EXPECT_FALSE(verbose_);
  EXPECT_TRUE(color_);
  EXPECT_EQ(peers_, (std::vector<std::string>{"a.example", "b.example"}));
  EXPECT_TRUE(flags_.positional().empty());
  EXPECT_FALSE(flags_.helpRequested());
}

TEST_F(FlagsTest, NameSpaceValue) {
  Status s = parse({"--port", "8080", "--host", "example.com", "--ratio", "0.25", "--bytes",
                    "18446744073709551615", "--note", "two words"});
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(port_, 8080);
  EXPECT_EQ(host_, "example.com");
  EXPECT_EQ(ratio_, 0.25);
  EXPECT_EQ(bytes_, UINT64_MAX);
  EXPECT_EQ(note_, "two words");
  EXPECT_TRUE(flags_.positional().empty());
}

TEST_F(FlagsTest, NameEqualsValue) {
  Status s = parse({"--port=9", "--host=example.org", "--ratio=1e-3", "--bytes=7", "--note=a=b"});
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(port_, 9);
  EXPECT_EQ(host_, "example.org");
  EXPECT_EQ(ratio_, 1e-3);
  EXPECT_EQ(bytes_, 7u);
  EXPECT_EQ(note_, "a=b");  // only the first '=' separates name and value
}

TEST_F(FlagsTest, EmptyAndNegativeValues) {
  Status s = parse({"--host=", "--port", "-5"});
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(host_, "");
  EXPECT_EQ(port_, -5);  // a non-bool flag takes the next argument even if it starts with '-'
}

TEST_F(FlagsTest, LastValueWins) {
  ASSERT_TRUE(parse({"--port=1", "--port", "2"}).isOk());
  EXPECT_EQ(port_, 2);
}

TEST_F(FlagsTest, BareBoolIsTrue) {
  ASSERT_TRUE(parse({"--verbose"}).isOk());
  EXPECT_TRUE(verbose_);
  EXPECT_TRUE(color_);
}

TEST_F(FlagsTest, ExplicitBoolValues) {
  for (const char* t : {"true", "1", "yes", "on"}) {
    verbose_ = false;
    std::string arg = "--verbose=" + std::string(t);
    ASSERT_TRUE(parse({arg.c_str()}).isOk()) << t;
    EXPECT_TRUE(verbose_) << t;
  }
  for (const char* f : {"false", "0", "no", "off"}) {
    color_ = true;
    std::string arg = "--color=" + std::string(f);
    ASSERT_TRUE(parse({arg.c_str()}).isOk()) << f;
    EXPECT_FALSE(color_) << f;
  }
}

TEST_F(FlagsTest, BareBoolDoesNotTakeTheNextArgument) {
  ASSERT_TRUE(parse({"--color", "false"}).isOk());
  EXPECT_TRUE(color_);
  EXPECT_EQ(flags_.positional(), std::vector<std::string>{"false"});
}

TEST_F(FlagsTest, BadBool) {
  expectError({"--verbose=maybe"}, "--verbose: 'maybe' is not true or false");
  expectError({"--verbose="}, "--verbose: '' is not true or false");
}

TEST_F(FlagsTest, RepeatableFlagReplacesDefaultsThenAppends) {
  Status s = parse({"--peer", "x", "--port=1", "--peer=y", "--peer", "z"});
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(peers_, (std::vector<std::string>{"x", "y", "z"}));
}

TEST_F(FlagsTest, UnknownFlag) {
  expectError({"--nope"}, "unknown flag --nope (see --help)");
  expectError({"--port=1", "--nope=3"}, "unknown flag --nope (see --help)");
  expectError({"--Port=1"}, "unknown flag --Port (see --help)");
}

TEST_F(FlagsTest, MissingValue) {
  expectError({"--port"}, "--port needs a value");
  expectError({"--verbose", "--host"}, "--host needs a value");
  expectError({"--peer"}, "--peer needs a value");
}

TEST_F(FlagsTest, BadNumbers) {
  expectError({"--port=abc"}, "--port: 'abc' is not a valid number");
  expectError({"--port", "12x"}, "--port: '12x' is not a valid number");
  expectError({"--port="}, "--port: '' is not a valid number");
  expectError({"--port=1.5"}, "--port: '1.5' is not a valid number");
  expectError({"--port=99999999999"}, "--port: '99999999999' is not a valid number");
  expectError({"--bytes=-1"}, "--bytes: '-1' is not a valid number");
  expectError({"--bytes=18446744073709551616"},
              "--bytes: '18446744073709551616' is not a valid number");
  expectError({"--ratio=fast"}, "--ratio: 'fast' is not a valid number");
  expectError({"--ratio=1.5x"}, "--ratio: '1.5x' is not a valid number");
  expectError({"--ratio="}, "--ratio: '' is not a valid number");
}

TEST_F(FlagsTest, BadNumberLeavesTheDefault) {
  ASSERT_FALSE(parse({"--port=abc"}).isOk());
  EXPECT_EQ(port_, 8000);
}

TEST_F(FlagsTest, PositionalArguments) {
  Status s = parse({"first", "--port=1", "second", "-x", "-", "--host", "h", "third"});
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(flags_.positional(), (std::vector<std::string>{"first", "second", "-x", "-", "third"}));
  EXPECT_EQ(port_, 1);
  EXPECT_EQ(host_, "h");
}

TEST_F(FlagsTest, DoubleDashEndsFlags) {
  Status s = parse({"--port=1", "a", "--", "--port=2", "--nope", "--", "b"});
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(port_, 1);
  EXPECT_EQ(flags_.positional(), (std::vector<std::string>{"a", "--port=2", "--nope", "--", "b"}));
}

TEST_F(FlagsTest, HelpSetsHelpRequested) {
  Status s = parse({"--port=1", "--help"});
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_TRUE(flags_.helpRequested());
  EXPECT_EQ(port_, 1);
}

TEST_F(FlagsTest, HelpAfterDoubleDashIsPositional) {
  ASSERT_TRUE(parse({"--", "--help"}).isOk());
  EXPECT_FALSE(flags_.helpRequested());
  EXPECT_EQ(flags_.positional(), std::vector<std::string>{"--help"});
}

// The usage line of one flag: from "  --name" to the end of that line.
std::string usageLine(const std::string& usage, const std::string& name) {
  std::string start = "  --" + name + " ";
  size_t at = usage.find(start);
  if (at == std::string::npos) return "";
  size_t end = usage.find('\n', at);
  return usage.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

TEST_F(FlagsTest, UsageListsEveryFlagWithHelpAndDefault) {
  flags_.setPositionalHelp("HOST [PORT]");
  std::string u = flags_.usage();
  EXPECT_EQ(u.rfind("usage: prog [flags] HOST [PORT]\n", 0), 0u) << u;
  EXPECT_NE(u.find("Does things for tests."), std::string::npos) << u;

  struct Expected {
    const char* name;
    const char* help;
    const char* defaultText;  // nullptr: no default shown
    bool takesValue;
  };
  for (const Expected& e : std::initializer_list<Expected>{
           {"port", "TCP port to listen on", "8000", true},
           {"host", "host to connect to", "localhost", true},
           {"ratio", "share of requests to sample", "0.5", true},
           {"bytes", "bytes to send", "1024", true},
           {"verbose", "log every connection", "false", false},
           {"color", "colour the output", "true", false},
           {"peer", "a peer to contact (repeatable)", "a.example,b.example", true},
           {"note", "free text", nullptr, true},
       }) {
    SCOPED_TRACE(e.name);
    std::string line = usageLine(u, e.name);
    ASSERT_FALSE(line.empty()) << u;
    EXPECT_EQ(line.find(" VALUE") != std::string::npos, e.takesValue) << line;
    EXPECT_NE(line.find(e.help), std::string::npos) << line;
    if (e.defaultText != nullptr) {
      EXPECT_NE(line.find(std::string("(default: ") + e.defaultText + ")"), std::string::npos)
          << line;
    } else {
      EXPECT_EQ(line.find("(default:"), std::string::npos) << line;
    }
  }
  EXPECT_NE(usageLine(u, "help").find("show this help"), std::string::npos) << u;
}

TEST_F(FlagsTest, UsageShowsTheDefaultsNotParsedValues) {
  ASSERT_TRUE(parse({"--port=1"}).isOk());
  EXPECT_NE(usageLine(flags_.usage(), "port").find("(default: 8000)"), std::string::npos);
}

// --- flags whose values the Flags object keeps: add(name, default, help) ---

// Parses args (after "prog") with `flags`.
Status parseWith(Flags& flags, std::initializer_list<const char*> args) {
  std::vector<const char*> argv{"prog"};
  argv.insert(argv.end(), args.begin(), args.end());
  return flags.parse(static_cast<int>(argv.size()), argv.data());
}

TEST(OwnedFlagsTest, OneLineDeclarationsWithDefaults) {
  Flags flags("prog", "Owns its values.");
  auto& port = flags.add("port", 8000, "TCP port to listen on");
  auto& bytes = flags.add("bytes", uint64_t{1024}, "bytes to send");
  auto& ratio = flags.add("ratio", 0.5, "share of requests to sample");
  auto& host = flags.add("host", "localhost", "host to connect to");
  auto& name = flags.add("name", std::string("whorl"), "server name");
  auto& verbose = flags.add("verbose", false, "log every connection");
  auto& peers = flags.add("peer", std::vector<std::string>{"a.example"}, "a peer to contact");
  static_assert(std::is_same_v<decltype(port), int&>);
  static_assert(std::is_same_v<decltype(bytes), uint64_t&>);
  static_assert(std::is_same_v<decltype(ratio), double&>);
  static_assert(std::is_same_v<decltype(host), std::string&>);  // a literal becomes a string
  static_assert(std::is_same_v<decltype(name), std::string&>);
  static_assert(std::is_same_v<decltype(verbose), bool&>);
  static_assert(std::is_same_v<decltype(peers), std::vector<std::string>&>);
  ASSERT_TRUE(parseWith(flags, {}).isOk());
  EXPECT_EQ(port, 8000);
  EXPECT_EQ(bytes, 1024u);
  EXPECT_EQ(ratio, 0.5);
  EXPECT_EQ(host, "localhost");
  EXPECT_EQ(name, "whorl");
  EXPECT_FALSE(verbose);
  EXPECT_EQ(peers, std::vector<std::string>{"a.example"});
}

TEST(OwnedFlagsTest, NameSpaceValueAndNameEqualsValue) {
  Flags flags("prog", "Owns its values.");
  auto& port = flags.add("port", 8000, "TCP port to listen on");
  auto& bytes = flags.add("bytes", uint64_t{1024}, "bytes to send");
  auto& ratio = flags.add("ratio", 0.5, "share of requests to sample");
  auto& host = flags.add("host", "localhost", "host to connect to");
  auto& verbose = flags.add("verbose", false, "log every connection");
  auto& color = flags.add("color", true, "colour the output");
  auto& peers = flags.add("peer", std::vector<std::string>{"a.example"}, "a peer to contact");
  Status s = parseWith(flags, {"--port", "8080", "--bytes=7", "--ratio", "0.25",
                               "--host=example.org", "--verbose", "--color=false", "--peer", "x",
                               "--peer=y", "rest"});
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(port, 8080);
  EXPECT_EQ(bytes, 7u);
  EXPECT_EQ(ratio, 0.25);
  EXPECT_EQ(host, "example.org");
  EXPECT_TRUE(verbose);
  EXPECT_FALSE(color);
  EXPECT_EQ(peers, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(flags.positional(), std::vector<std::string>{"rest"});

  s = parseWith(flags, {"--port=9", "--host", "example.com", "--ratio=1e-3", "--bytes", "8"});
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(port, 9);
  EXPECT_EQ(host, "example.com");
  EXPECT_EQ(ratio, 1e-3);
  EXPECT_EQ(bytes, 8u);
  EXPECT_EQ(parseWith(flags, {"--port=x"}).message(), "--port: 'x' is not a valid number");
}

TEST(OwnedFlagsTest, ValuesStayPutAsMoreFlagsAreAdded) {
  Flags flags("prog", "Owns its values.");
  auto& first = flags.add("first", 1, "the first flag");
  auto& text = flags.add("text", "t", "a string flag");
  std::vector<int*> numbers;
  for (int i = 0; i < 200; ++i) numbers.push_back(&flags.add("n" + std::to_string(i), i, "more"));
  ASSERT_TRUE(parseWith(flags, {"--first", "11", "--text=changed", "--n150", "-3"}).isOk());
  EXPECT_EQ(first, 11);
  EXPECT_EQ(text, "changed");
  EXPECT_EQ(*numbers[150], -3);
  EXPECT_EQ(*numbers[199], 199);
}

TEST(OwnedFlagsTest, HelpShowsTheDefaults) {
  Flags flags("prog", "Owns its values.");
  (void)flags.add("port", 8000, "TCP port to listen on");
  (void)flags.add("bytes", uint64_t{1024}, "bytes to send");
  (void)flags.add("ratio", 0.5, "share of requests to sample");
  (void)flags.add("host", "localhost", "host to connect to");
  (void)flags.add("color", true, "colour the output");
  (void)flags.add("peer", std::vector<std::string>{"a.example", "b.example"}, "a peer");
  (void)flags.add("note", "", "free text");
  int bound = 3;
  flags.add("bound", &bound, "the pointer form still works");
  ASSERT_TRUE(parseWith(flags, {"--port=1", "--bound=4"}).isOk());
  EXPECT_EQ(bound, 4);
  std::string u = flags.usage();
  EXPECT_NE(usageLine(u, "port").find("TCP port to listen on (default: 8000)"), std::string::npos)
      << u;
  EXPECT_NE(usageLine(u, "bytes").find("(default: 1024)"), std::string::npos) << u;
  EXPECT_NE(usageLine(u, "ratio").find("(default: 0.5)"), std::string::npos) << u;
  EXPECT_NE(usageLine(u, "host").find("(default: localhost)"), std::string::npos) << u;
  EXPECT_NE(usageLine(u, "color").find("(default: true)"), std::string::npos) << u;
  EXPECT_NE(usageLine(u, "peer").find("(default: a.example,b.example)"), std::string::npos) << u;
  EXPECT_EQ(usageLine(u, "note").find("(default:"), std::string::npos) << u;
  EXPECT_NE(usageLine(u, "bound").find("(default: 3)"), std::string::npos) << u;
}

// --- declared positional arguments: addArgument ---

TEST(ArgumentsTest, AssignedInOrderWithDefaultsForOptionalOnes) {
  Flags flags("check", "Checks a server.");
  auto& host = flags.addArgument("HOST", "server to check");
  auto& port = flags.addArgument("PORT", 443, "its port");
  auto& ca = flags.add("ca", "", "authority");
  ASSERT_TRUE(parseWith(flags, {"example.org"}).isOk());
  EXPECT_EQ(host, "example.org");
  EXPECT_EQ(port, 443);
  ASSERT_TRUE(parseWith(flags, {"--ca", "ca.pem", "localhost", "8443"}).isOk());
  EXPECT_EQ(host, "localhost");
  EXPECT_EQ(port, 8443);
  EXPECT_EQ(ca, "ca.pem");
  ASSERT_TRUE(parseWith(flags, {"localhost", "--ca=x.pem", "9"}).isOk());  // flags anywhere
  EXPECT_EQ(port, 9);
  ASSERT_TRUE(parseWith(flags, {"--", "--odd-host"}).isOk());
  EXPECT_EQ(host, "--odd-host");
}

TEST(ArgumentsTest, MissingExtraAndMalformedOnesAreErrorsThatNameThem) {
  Flags flags("check", "Checks a server.");
  (void)flags.addArgument("HOST", "server to check");
  (void)flags.addArgument("PORT", 443, "its port");
  EXPECT_EQ(parseWith(flags, {}).message(), "missing HOST (see --help)");
  EXPECT_EQ(parseWith(flags, {"a", "1", "b"}).message(), "unexpected argument 'b' (see --help)");
  EXPECT_EQ(parseWith(flags, {"a", "44x"}).message(), "PORT: '44x' is not a valid number");
  // --help is not an error, even without the required argument.
  EXPECT_TRUE(parseWith(flags, {"--help"}).isOk());
  EXPECT_TRUE(flags.helpRequested());
}

TEST(ArgumentsTest, HelpListsThem) {
  Flags flags("check", "Checks a server.");
  (void)flags.addArgument("HOST", "server to check");
  (void)flags.addArgument("PORT", 443, "its port");
  std::string u = flags.usage();
  EXPECT_EQ(u.rfind("usage: check [flags] HOST [PORT]\n", 0), 0u) << u;
  EXPECT_NE(u.find("  HOST                      server to check\n"), std::string::npos) << u;
  EXPECT_NE(u.find("  PORT                      its port (default: 443)\n"), std::string::npos) << u;
}

TEST(DurationFlagsTest, SecondsByDefaultOrWithAUnit) {
  using std::chrono::milliseconds;
  Flags flags("prog", "Waits.");
  auto& drain = flags.add("drain-timeout", std::chrono::seconds(10), "grace period");
  auto& poll = flags.add("poll", milliseconds(250), "poll interval");
  EXPECT_EQ(drain, milliseconds(10000));
  ASSERT_TRUE(parseWith(flags, {"--drain-timeout", "2.5", "--poll=1s"}).isOk());
  EXPECT_EQ(drain, milliseconds(2500));
  EXPECT_EQ(poll, milliseconds(1000));
  ASSERT_TRUE(parseWith(flags, {"--drain-timeout=300ms", "--poll", "2m"}).isOk());
  EXPECT_EQ(drain, milliseconds(300));
  EXPECT_EQ(poll, milliseconds(120000));
  EXPECT_EQ(parseWith(flags, {"--poll=5h"}).message(),
            "--poll: '5h' is not a duration (seconds, or a number with ms, s or m)");
  EXPECT_FALSE(parseWith(flags, {"--poll=-1"}).isOk());
  std::string u = flags.usage();
  EXPECT_NE(usageLine(u, "drain-timeout").find("(default: 10s)"), std::string::npos) << u;
  EXPECT_NE(usageLine(u, "poll").find("(default: 250ms)"), std::string::npos) << u;
}

}  // namespace
}  // namespace whorl

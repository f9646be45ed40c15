// The load generator's flags and its report formats.
#include "tools/loadgen/options.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tools/loadgen/report.h"

namespace whorl::loadgen {
namespace {

Status parse(std::vector<const char*> args, LoadOptions* o) {
  args.insert(args.begin(), "loadgen");
  return parseLoadOptions(static_cast<int>(args.size()), args.data(), o);
}

TEST(LoadOptions, Defaults) {
  LoadOptions o;
  ASSERT_TRUE(parse({"--target", "127.0.0.1:8443"}, &o).isOk());
  EXPECT_EQ(o.mode, Mode::kHttp);
  EXPECT_TRUE(o.tls);
  EXPECT_EQ(o.host, "127.0.0.1");
  EXPECT_EQ(o.port, 8443);
  EXPECT_EQ(o.hostname, "127.0.0.1");
  EXPECT_EQ(o.path, "/");
  EXPECT_EQ(o.pipeline, 1);
  EXPECT_EQ(o.rate, 0);
  EXPECT_FALSE(o.resume);
}

TEST(LoadOptions, EveryFlag) {
  LoadOptions o;
  Status s = parse({"--mode=handshake",
                    "--target=[::1]:9000",
                    "--sni",
                    "example.com",
                    "--ca",
                    "certs/public.pem",
                    "--connections",
                    "64",
                    "--shards=2",
                    "--duration",
                    "3.5",
                    "--warmup",
                    "0",
                    "--rate",
                    "1000",
                    "--request",
                    "echo",
                    "--size",
                    "4096",
                    "--resume",
                    "--timeout",
                    "2",
                    "--ktls",
                    "auto",
                    "--cpus",
                    "0,2-3",
                    "--json"},
                   &o);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(o.mode, Mode::kHandshake);
  EXPECT_EQ(o.request, Request::kEcho);
  EXPECT_EQ(o.host, "::1");
  EXPECT_EQ(o.port, 9000);
  EXPECT_EQ(o.hostname, "example.com");
  EXPECT_EQ(o.caPath, "certs/public.pem");
  EXPECT_EQ(o.connections, 64);
  EXPECT_EQ(o.shards, 2);
  EXPECT_DOUBLE_EQ(o.duration, 3.5);
  EXPECT_DOUBLE_EQ(o.warmup, 0);
  EXPECT_DOUBLE_EQ(o.rate, 1000);
  EXPECT_EQ(o.size, 4096u);
  EXPECT_TRUE(o.resume);
  EXPECT_EQ(o.ktls, "auto");
  EXPECT_EQ(o.cpus, (std::vector<int>{0, 2, 3}));
  EXPECT_TRUE(o.json);
}

TEST(LoadOptions, Errors) {
  struct Case {
    std::vector<const char*> args;
    std::string mentions;
  };
  for (const Case& c : std::vector<Case>{
           {{}, "--target"},
           {{"--target", "localhost"}, ":PORT"},
           {{"--target", "::1:80"}, "brackets"},
           {{"--target", "h:0"}, "port"},
           {{"--target", "h:70000"}, "port"},
           {{"--target", "h:1", "--mode", "ftp"}, "--mode"},
           {{"--target", "h:1", "--tls", "off"}, "--tls=off"},
           {{"--target", "h:1", "--tls=off", "--resume"}, "--resume"},
           {{"--target", "h:1", "--tls=off", "--ca", "x.pem"}, "--ca"},
           {{"--target", "h:1", "--connections", "0"}, "--connections"},
           {{"--target", "h:1", "--pipeline", "0"}, "--pipeline"},
           {{"--target", "h:1", "--server-pid", "-3"}, "--server-pid"},
           {{"--target", "h:1", "--mode=handshake", "--pipeline", "2"}, "--pipeline"},
           {{"--target", "h:1", "--request", "http"}, "--request"},
           {{"--target", "h:1", "--mode=handshake", "--request", "ftp"}, "--request"},
           {{"--target", "h:1", "--duration", "0"}, "--duration"},
           {{"--target", "h:1", "--warmup", "-1"}, "--warmup"},
           {{"--target", "h:1", "--rate", "-5"}, "--rate"},
           {{"--target", "h:1", "--size", "0"}, "--size"},
           {{"--target", "h:1", "--path", "nope"}, "--path"},
           {{"--target", "h:1", "--path", "/a b"}, "--path"},
           {{"--target", "h:1", "--hostname", "a", "--sni", "b"}, "--sni"},
           {{"--target", "h:1", "--ktls", "maybe"}, "--ktls"},
           {{"--target", "h:1", "--cpus", "3-1"}, "--cpus"},
           {{"--target", "h:1", "--bogus"}, "--bogus"},
       }) {
    LoadOptions o;
    Status s = parse(c.args, &o);
    EXPECT_FALSE(s.isOk()) << c.mentions;
    EXPECT_NE(s.message().find(c.mentions), std::string::npos) << s.message();
  }
}

TEST(LoadOptions, Help) {
  LoadOptions o;
  ASSERT_TRUE(parse({"--help"}, &o).isOk());
  EXPECT_TRUE(o.help);
  std::string usage = loadUsage();
  for (const char* flag : {"--mode", "--target", "--tls", "--hostname", "--sni", "--ca",
                           "--connections", "--shards", "--duration", "--warmup", "--rate",
                           "--pipeline", "--size", "--path", "--request", "--resume", "--json"}) {
    EXPECT_NE(usage.find(flag), std::string::npos) << flag;
  }
}

TEST(Report, JsonHasEveryField) {
  RunInfo info;
  info.mode = "http";
  info.target = "127.0.0.1:8443";
  info.hostname = "example.com";
  info.path = "/a\"b";
  info.connections = 4;
  info.shards = 1;
  info.windowSeconds = 2;
  info.notes = {"a note"};
  info.lateRequests = 7;
  LoadStats s;
  s.requests = 1000;
  s.handshakes = 4;
  s.resumed = 1;
  s.bytesIn = 2000000;
  s.bytesOut = 1000000;
  for (uint64_t v = 1; v <= 200; ++v) s.latency.record(v);  // exact buckets
  s.addError(ErrorKind::kTimeout);
  s.addStatusError(503);
  s.addStatusError(503);
  std::string json = formatJson(info, s);
  for (const char* field :
       {"\"mode\":\"http\"", "\"requests\":1000", "\"requests_per_sec\":500.0",
        "\"handshakes_per_sec\":2.0", "\"resumed_fraction\":0.2500", "\"mb_in_per_sec\":1.000",
        "\"mb_out_per_sec\":0.500", "\"p50\":100", "\"p99_9\":200", "\"max\":200", "\"errors\":3",
        "\"timeout\":1", "\"status-503\":2", "\"path\":\"/a\\\"b\"", "\"notes\":[\"a note\"]", "\"late_requests\":7"}) {
    EXPECT_NE(json.find(field), std::string::npos) << field << " in " << json;
  }
  EXPECT_EQ(json.find("\"server\""), std::string::npos) << "no --server-pid, no server figures";
  info.serverPid = 42;
  info.serverSampled = true;
  info.serverUserSeconds = 0.004;
  info.serverSystemSeconds = 0.006;
  info.serverWakeups = 500;
  json = formatJson(info, s);
  for (const char* field : {"\"server\":{\"pid\":42", "\"cpu_s\":0.0100", "\"cpu_us_per_req\":10.000",
                            "\"user_us_per_req\":4.000", "\"wakeups_per_req\":0.5000"}) {
    EXPECT_NE(json.find(field), std::string::npos) << field << " in " << json;
  }
  EXPECT_EQ(json.find('\n'), std::string::npos);
  EXPECT_EQ(describeErrors(s), "timeout 1, status-503 2");
  EXPECT_EQ(describeErrors(LoadStats()), "none");

  std::string text = formatText(info, s);
  for (const char* part : {"requests", "handshakes", "MB in", "MB out", "latency us", "p99.9",
                           "errors", "timeout 1, status-503 2", "note: a note",
                           "pid 42: 10.00 us CPU/request (user 4.00, sys 6.00), 0.500 wake-ups/request"}) {
    EXPECT_NE(text.find(part), std::string::npos) << part << " in\n" << text;
  }
}

TEST(Report, MergeAddsEverything) {
  LoadStats a, b;
  a.requests = 1;
  b.requests = 2;
  a.addError(ErrorKind::kConnect);
  b.addError(ErrorKind::kConnect);
  b.addStatusError(404);
  a.latency.record(10);
  b.latency.record(20);
  a.merge(b);
  EXPECT_EQ(a.requests, 3u);
  EXPECT_EQ(a.totalErrors(), 3u);
  EXPECT_EQ(a.latency.count(), 2u);
  EXPECT_EQ(a.latency.max(), 20u);
}

}  // namespace
}  // namespace whorl::loadgen

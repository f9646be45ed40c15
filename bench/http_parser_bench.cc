// http_parser_bench: whorl::http::RequestParser on the requests https_hello serves.
//
//   bazel run -c opt //bench:http_parser_bench
//
// Each iteration parses a prepared input of pipelined requests; items_per_second is requests,
// allocs/iter heap allocations per input (see alloc_counter.h).
// BM_WrkRequests:   64 copies of the request wrk sends (GET / with Host), fed whole: heads are
//                   parsed in place, the path every keep-alive request takes.
// BM_CurlRequests:  the same with curl's three fields and a 20-field browser-like head.
// BM_Split:         the wrk input in 1500-byte chunks (heads straddle chunks: the copying path)
//                   and one byte at a time.
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

#include "bench/alloc_counter.h"
#include "framework/http/request_parser.h"

namespace {

using whorl::http::RequestParser;

constexpr std::string_view kWrk = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8443\r\n\r\n";
constexpr std::string_view kCurl =
    "GET / HTTP/1.1\r\nHost: example.com:8443\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";

std::string browserRequest() {
  std::string r = "GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\n";
  for (int i = 0; i < 18; ++i) r += "X-Field-" + std::to_string(i) + ": some value, another\r\n";
  return r + "\r\n";
}

std::string repeat(std::string_view request, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += request;
  return s;
}

void run(benchmark::State& state, const std::string& input, size_t chunk, int requests) {
  RequestParser parser;
  uint64_t before = whorl::bench::allocationCount();
  int64_t parsed = 0;
  for (auto _ : state) {
    for (size_t pos = 0; pos < input.size(); pos += chunk) {
      std::string_view data = std::string_view(input).substr(pos, chunk);
      while (!data.empty()) {
        size_t used = 0;
        RequestParser::Event e = parser.feed(data, &used);
        data.remove_prefix(used);
        if (e == RequestParser::Event::kRequest) ++parsed;
        if (e == RequestParser::Event::kError) {
          state.SkipWithError(std::string(parser.error().reason).c_str());
          return;
        }
      }
    }
  }
  whorl::bench::reportAllocations(state, before);
  if (parsed != requests * state.iterations()) state.SkipWithError("wrong number of requests");
  state.SetItemsProcessed(parsed);
  state.SetBytesProcessed(static_cast<int64_t>(input.size()) * state.iterations());
}

void BM_WrkRequests(benchmark::State& state) {
  std::string input = repeat(kWrk, 64);
  run(state, input, input.size(), 64);
}
BENCHMARK(BM_WrkRequests);

void BM_CurlRequests(benchmark::State& state) {
  std::string input = repeat(state.range(0) == 0 ? kCurl : browserRequest(), 64);
  run(state, input, input.size(), 64);
}
BENCHMARK(BM_CurlRequests)->Arg(0)->Arg(1)->ArgName("browser");

void BM_Split(benchmark::State& state) {
  std::string input = repeat(kWrk, 64);
  run(state, input, static_cast<size_t>(state.range(0)), 64);
}
BENCHMARK(BM_Split)->Arg(1500)->Arg(1)->ArgName("chunk");

}  // namespace

// Flags: the command-line parser every whorl program uses.
//
//   Flags flags("echoclient", "Sends three lines to an echo server and prints the replies.");
//   auto& port = flags.add("port", 8000, "port to connect to");             // int&
//   auto& host = flags.add("host", "localhost", "host to connect to");      // std::string&
//   flags.parseOrExit(argc, argv);   // --help prints the flags and exits 0; errors exit 2
//   connect(host, port);
//
//   int shards = 0;                                  // or bind a variable of your own
//   flags.add("shards", &shards, "reactor threads (0: one per CPU)");
//
//   auto& host = flags.addArgument("HOST", "server to check");           // required positional
//   auto& port = flags.addArgument("PORT", 443, "its port");             // optional: [PORT]
//
// Every flag is accepted as `--name value` and `--name=value`; booleans as bare `--name` (true)
// or `--name=false`.
// Repeatable flags bind to a std::vector<std::string>. Arguments that are not flags are collected
// in positional(). add(name, default, help) keeps the value in the Flags object (at a fixed
// address: adding more flags does not move it) and returns a reference valid while the Flags
// object lives; add(name, &variable, help) holds a pointer to the caller's variable, which must
// outlive it. Either way --help shows the default.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "framework/base/status.h"

namespace whorl {

class Flags {
 public:
  Flags(std::string program, std::string description);

  void add(std::string name, int* value, std::string help);
  void add(std::string name, uint64_t* value, std::string help);
  void add(std::string name, double* value, std::string help);
  void add(std::string name, std::string* value, std::string help);
  void add(std::string name, bool* value, std::string help);
  void add(std::string name, std::vector<std::string>* values, std::string help);
  // A duration: "10" means seconds; or with a unit: "250ms", "1.5s", "2m".
  void add(std::string name, std::chrono::milliseconds* value, std::string help);
  // The same flags with the value kept here, starting at `defaultValue`.
  [[nodiscard]] int& add(std::string name, int defaultValue, std::string help);
  [[nodiscard]] uint64_t& add(std::string name, uint64_t defaultValue, std::string help);
  [[nodiscard]] double& add(std::string name, double defaultValue, std::string help);
  [[nodiscard]] std::string& add(std::string name, std::string defaultValue, std::string help);
  [[nodiscard]] std::string& add(std::string name, const char* defaultValue, std::string help);
  [[nodiscard]] bool& add(std::string name, bool defaultValue, std::string help);
  [[nodiscard]] std::vector<std::string>& add(std::string name,
                                              std::vector<std::string> defaultValues,
                                              std::string help);
  [[nodiscard]] std::chrono::milliseconds& add(std::string name,
                                               std::chrono::milliseconds defaultValue,
                                               std::string help);
  // Documents positional arguments in --help, e.g. "HOST [PORT]" (addArgument does it for you).
  void setPositionalHelp(std::string usage) { positionalHelp_ = std::move(usage); }
  // Declared positional arguments, assigned in order by parse(), which then fails on a missing
  // required one or an extra one; --help lists them. Required ones come first: an argument with a
  // default is optional. Without any, arguments are only collected in positional().
  [[nodiscard]] std::string& addArgument(std::string name, std::string help);
  [[nodiscard]] std::string& addArgument(std::string name, std::string defaultValue,
                                         std::string help);
  [[nodiscard]] int& addArgument(std::string name, int defaultValue, std::string help);

  // Parses argv. Returns an error naming the bad flag; --help sets helpRequested().
  Status parse(int argc, const char* const* argv);
  // parse(), then on --help print usage and exit(0), on error print it and exit(2).
  void parseOrExit(int argc, const char* const* argv);

  bool helpRequested() const { return helpRequested_; }
  const std::vector<std::string>& positional() const { return positional_; }
  std::string usage() const;

 private:
  struct Flag {
    std::string name;
    std::string help;
    std::string defaultText;
    bool isBool = false;
    std::function<Status(std::string_view)> set;
  };
  struct Argument {
    std::string name;
    std::string help;
    bool required = true;
    std::string defaultText;
    std::function<Status(std::string_view)> set;
  };
  Flag* find(std::string_view name);
  Status assignArguments();
  template <typename T>
  T& addOwned(std::string name, T defaultValue, std::string help);

  std::string program_;
  std::string description_;
  std::string positionalHelp_;
  std::vector<Flag> flags_;
  std::vector<Argument> arguments_;
  std::vector<std::shared_ptr<void>> owned_;  // the values of add(name, default, help)
  std::vector<std::string> positional_;
  bool helpRequested_ = false;
};

}  // namespace whorl

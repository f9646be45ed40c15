// Flags: the command-line parser every whorl program uses.
//
//   int port = 8000;
//   std::string host = "localhost";
//   Flags flags("echoclient", "Sends three lines to an echo server and prints the replies.");
//   flags.add("port", &port, "port to connect to");
//   flags.add("host", &host, "host to connect to");
//   flags.parseOrExit(argc, argv);   // --help prints the flags and exits 0; errors exit 2
//
// Every flag is accepted as `--name value` and `--name=value`; booleans as bare `--name` (true)
// or `--name=false`.
// Repeatable flags bind to a std::vector<std::string>. Arguments that are not flags are collected
// in positional(). The Flags object holds pointers to the caller's variables; they must outlive it.
#pragma once

#include <cstdint>
#include <functional>
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
  // Documents positional arguments in --help, e.g. "HOST [PORT]".
  void setPositionalHelp(std::string usage) { positionalHelp_ = std::move(usage); }

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
  Flag* find(std::string_view name);

  std::string program_;
  std::string description_;
  std::string positionalHelp_;
  std::vector<Flag> flags_;
  std::vector<std::string> positional_;
  bool helpRequested_ = false;
};

}  // namespace whorl

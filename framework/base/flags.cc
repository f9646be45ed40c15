#include "framework/base/flags.h"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <memory>

namespace whorl {

namespace {
// `label` names what was parsed in errors: "--port" for a flag, "PORT" for an argument.
template <typename T>
Status parseNumberAs(std::string_view label, std::string_view text, T* out) {
  T v{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) {
    return Status::invalidArgument(std::string(label) + ": '" + std::string(text) +
                                   "' is not a valid number");
  }
  *out = v;
  return Status::ok();
}
template <typename T>
Status parseNumber(std::string_view name, std::string_view text, T* out) {
  return parseNumberAs("--" + std::string(name), text, out);
}
}  // namespace

Flags::Flags(std::string program, std::string description)
    : program_(std::move(program)), description_(std::move(description)) {}

void Flags::add(std::string name, int* value, std::string help) {
  flags_.push_back({name, std::move(help), std::to_string(*value), false,
                    [name, value](std::string_view t) { return parseNumber(name, t, value); }});
}

void Flags::add(std::string name, uint64_t* value, std::string help) {
  flags_.push_back({name, std::move(help), std::to_string(*value), false,
                    [name, value](std::string_view t) { return parseNumber(name, t, value); }});
}

void Flags::add(std::string name, double* value, std::string help) {
  char def[32];
  std::snprintf(def, sizeof(def), "%g", *value);
  flags_.push_back({name, std::move(help), def, false, [name, value](std::string_view t) {
                      std::string s(t);
                      char* end = nullptr;
                      double v = std::strtod(s.c_str(), &end);
                      if (s.empty() || end != s.c_str() + s.size()) {
                        return Status::invalidArgument("--" + name + ": '" + s +
                                                       "' is not a valid number");
                      }
                      *value = v;
                      return Status::ok();
                    }});
}

void Flags::add(std::string name, std::string* value, std::string help) {
  flags_.push_back({name, std::move(help), *value, false, [value](std::string_view t) {
                      *value = std::string(t);
                      return Status::ok();
                    }});
}

void Flags::add(std::string name, bool* value, std::string help) {
  flags_.push_back({name, std::move(help), *value ? "true" : "false", true,
                    [name, value](std::string_view t) {
                      if (t == "true" || t == "1" || t == "yes" || t == "on") {
                        *value = true;
                      } else if (t == "false" || t == "0" || t == "no" || t == "off") {
                        *value = false;
                      } else {
                        return Status::invalidArgument("--" + name + ": '" + std::string(t) +
                                                       "' is not true or false");
                      }
                      return Status::ok();
                    }});
}

void Flags::add(std::string name, std::vector<std::string>* values, std::string help) {
  std::string def;
  for (const auto& v : *values) def += (def.empty() ? "" : ",") + v;
  // The first use on the command line replaces the defaults; later uses append.
  auto replaced = std::make_shared<bool>(false);
  flags_.push_back({name, std::move(help) + " (repeatable)", def, false,
                    [values, replaced](std::string_view t) {
                      if (!*replaced) {
                        values->clear();
                        *replaced = true;
                      }
                      values->emplace_back(t);
                      return Status::ok();
                    }});
}

void Flags::add(std::string name, std::chrono::milliseconds* value, std::string help) {
  auto ms = value->count();
  std::string def = ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
  flags_.push_back({name, std::move(help), def, false, [name, value](std::string_view t) {
                      std::string s(t);
                      char* end = nullptr;
                      double v = std::strtod(s.c_str(), &end);
                      std::string_view unit(end);
                      double scale = unit.empty() || unit == "s" ? 1000
                                     : unit == "ms"              ? 1
                                     : unit == "m"               ? 60000
                                                                 : -1;
                      if (s.empty() || end == s.c_str() || scale < 0 || v < 0) {
                        return Status::invalidArgument(
                            "--" + name + ": '" + s +
                            "' is not a duration (seconds, or a number with ms, s or m)");
                      }
                      *value = std::chrono::milliseconds(static_cast<int64_t>(v * scale));
                      return Status::ok();
                    }});
}

template <typename T>
T& Flags::addOwned(std::string name, T defaultValue, std::string help) {
  auto value = std::make_shared<T>(std::move(defaultValue));
  owned_.push_back(value);
  add(std::move(name), value.get(), std::move(help));
  return *value;
}

int& Flags::add(std::string name, int defaultValue, std::string help) {
  return addOwned(std::move(name), defaultValue, std::move(help));
}

uint64_t& Flags::add(std::string name, uint64_t defaultValue, std::string help) {
  return addOwned(std::move(name), defaultValue, std::move(help));
}

double& Flags::add(std::string name, double defaultValue, std::string help) {
  return addOwned(std::move(name), defaultValue, std::move(help));
}

std::string& Flags::add(std::string name, std::string defaultValue, std::string help) {
  return addOwned(std::move(name), std::move(defaultValue), std::move(help));
}

std::string& Flags::add(std::string name, const char* defaultValue, std::string help) {
  return addOwned(std::move(name), std::string(defaultValue != nullptr ? defaultValue : ""),
                  std::move(help));
}

bool& Flags::add(std::string name, bool defaultValue, std::string help) {
  return addOwned(std::move(name), defaultValue, std::move(help));
}

std::vector<std::string>& Flags::add(std::string name, std::vector<std::string> defaultValues,
                                     std::string help) {
  return addOwned(std::move(name), std::move(defaultValues), std::move(help));
}

std::chrono::milliseconds& Flags::add(std::string name, std::chrono::milliseconds defaultValue,
                                      std::string help) {
  return addOwned(std::move(name), defaultValue, std::move(help));
}

std::string& Flags::addArgument(std::string name, std::string help) {
  auto value = std::make_shared<std::string>();
  owned_.push_back(value);
  arguments_.push_back({std::move(name), std::move(help), true, "", [v = value.get()](std::string_view t) {
                          *v = std::string(t);
                          return Status::ok();
                        }});
  return *value;
}

std::string& Flags::addArgument(std::string name, std::string defaultValue, std::string help) {
  std::string& value = addArgument(std::move(name), std::move(help));
  arguments_.back().required = false;
  arguments_.back().defaultText = defaultValue;
  value = std::move(defaultValue);
  return value;
}

int& Flags::addArgument(std::string name, int defaultValue, std::string help) {
  auto value = std::make_shared<int>(defaultValue);
  owned_.push_back(value);
  std::string label = name;
  arguments_.push_back({std::move(name), std::move(help), false, std::to_string(defaultValue),
                        [label, v = value.get()](std::string_view t) {
                          return parseNumberAs(label, t, v);
                        }});
  return *value;
}

Status Flags::assignArguments() {
  if (arguments_.empty()) return Status::ok();
  if (positional_.size() > arguments_.size()) {
    return Status::invalidArgument("unexpected argument '" + positional_[arguments_.size()] +
                                   "' (see --help)");
  }
  for (size_t i = 0; i < arguments_.size(); ++i) {
    if (i < positional_.size()) {
      WHORL_RETURN_IF_ERROR(arguments_[i].set(positional_[i]));
    } else if (arguments_[i].required) {
      return Status::invalidArgument("missing " + arguments_[i].name + " (see --help)");
    }
  }
  return Status::ok();
}

Flags::Flag* Flags::find(std::string_view name) {
  for (auto& f : flags_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

Status Flags::parse(int argc, const char* const* argv) {
  positional_.clear();
  helpRequested_ = false;
  bool onlyPositional = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (onlyPositional || arg.size() < 2 || arg.substr(0, 2) != "--") {
      positional_.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      onlyPositional = true;
      continue;
    }
    std::string_view body = arg.substr(2);
    std::string_view name = body;
    std::string_view value;
    bool hasValue = false;
    if (auto eq = body.find('='); eq != std::string_view::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
      hasValue = true;
    }
    if (name == "help") {
      helpRequested_ = true;
      continue;
    }
    Flag* f = find(name);
    if (f == nullptr) {
      return Status::invalidArgument("unknown flag --" + std::string(name) + " (see --help)");
    }
    if (!hasValue) {
      if (f->isBool) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return Status::invalidArgument("--" + std::string(name) + " needs a value");
      }
    }
    WHORL_RETURN_IF_ERROR(f->set(value));
  }
  if (helpRequested_) return Status::ok();
  return assignArguments();
}

void Flags::parseOrExit(int argc, const char* const* argv) {
  Status s = parse(argc, argv);
  if (helpRequested_) {
    std::fputs(usage().c_str(), stdout);
    std::exit(0);
  }
  if (!s.isOk()) {
    std::fprintf(stderr, "%s: %s\n", program_.c_str(), s.message().c_str());
    std::exit(2);
  }
}

std::string Flags::usage() const {
  std::string u = "usage: " + program_ + " [flags]";
  if (!positionalHelp_.empty()) {
    u += " " + positionalHelp_;
  } else {
    for (const auto& a : arguments_) u += a.required ? " " + a.name : " [" + a.name + "]";
  }
  u += "\n\n" + description_ + "\n\n";
  if (!arguments_.empty()) {
    u += "arguments:\n";
    for (const auto& a : arguments_) {
      std::string left = "  " + a.name;
      if (left.size() < 28) left.resize(28, ' ');
      else left += "  ";
      u += left + a.help;
      if (!a.required) u += " (default: " + a.defaultText + ")";
      u += "\n";
    }
    u += "\n";
  }
  u += "flags (--name value or --name=value):\n";
  for (const auto& f : flags_) {
    std::string left = "  --" + f.name + (f.isBool ? "" : " VALUE");
    if (left.size() < 28) left.resize(28, ' ');
    else left += "  ";
    u += left + f.help;
    if (!f.defaultText.empty()) u += " (default: " + f.defaultText + ")";
    u += "\n";
  }
  u += "  --help                    show this help and exit\n";
  return u;
}

}  // namespace whorl

"""Project-wide C++ rule wrappers: C++20 and -Wall -Wextra -Werror on whorl's own code."""

WHORL_COPTS = ["-std=c++20", "-Wall", "-Wextra", "-Werror"]

def whorl_cc_library(name, copts = [], **kwargs):
    native.cc_library(name = name, copts = WHORL_COPTS + copts, **kwargs)

def whorl_cc_binary(name, copts = [], **kwargs):
    native.cc_binary(name = name, copts = WHORL_COPTS + copts, **kwargs)

def whorl_cc_test(name, copts = [], linkopts = [], deps = [], **kwargs):
    native.cc_test(
        name = name,
        copts = WHORL_COPTS + copts,
        linkopts = linkopts + ["-lgmock", "-lgtest", "-lpthread"],
        deps = deps + ["//tests:gtest_main"],
        **kwargs
    )

def whorl_cc_benchmark(name, copts = [], linkopts = [], **kwargs):
    native.cc_binary(
        name = name,
        copts = WHORL_COPTS + copts,
        linkopts = linkopts + ["-lbenchmark", "-lbenchmark_main", "-lpthread"],
        **kwargs
    )

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

# The framework's layers, bottom to top; a package may depend only on packages before it:
#   base < uring < api < reactor < {net, tls, http} < metrics < endpoint
# (net, tls and http sit side by side: the TLS layer runs over any transport, so it must not see
# the socket transports; the HTTP parser does no I/O.) Each package's default_visibility lists the packages above it that
# use it, plus the repository's own users below; a dependency against the order fails to build
# with "is not visible", and tools/check-layers asserts the lists with `bazel query`. Projects
# outside this repository depend on //:whorl.
FRAMEWORK_USERS = [
    "//:__pkg__",
    "//bench:__subpackages__",
    "//examples:__subpackages__",
    "//tests:__subpackages__",
    "//tools:__subpackages__",
]

def framework_visibility(*users):
    """default_visibility for a framework package used by the framework packages `users`."""
    return ["//framework/%s:__pkg__" % p for p in users] + FRAMEWORK_USERS

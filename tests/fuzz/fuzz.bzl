"""whorl_fuzz_target: one libFuzzer target and the test that replays its inputs.

whorl_fuzz_target(name = "proxy_protocol", srcs = [...], deps = [...]) makes
  :proxy_protocol_fuzzer       the fuzzer. Under --config=fuzz (clang, tools/fuzz) it links
                               libFuzzer; otherwise it links replay_main.cc and replays the files
                               and directories given on its command line. Tagged manual.
  :proxy_protocol_replay_test  the same sources with replay_main.cc over corpus/proxy_protocol and
                               regressions/proxy_protocol: the normal suite (plain, ASan, TSan)
                               replays every committed input.
"""

load("//tools/bazel:defs.bzl", "WHORL_COPTS")

def whorl_fuzz_target(name, srcs, deps = [], data = [], size = "small"):
    corpus = native.glob(["corpus/%s/**" % name])
    regressions = native.glob(["regressions/%s/**" % name])
    if not corpus:
        fail("tests/fuzz/corpus/%s/ holds no seed input" % name)
    args = ["tests/fuzz/corpus/" + name]
    if regressions:
        args.append("tests/fuzz/regressions/" + name)
    native.cc_binary(
        name = name + "_fuzzer",
        srcs = srcs,
        copts = WHORL_COPTS,
        deps = deps + [":fuzz_support"] + select({
            ":fuzz": [],
            "//conditions:default": [":replay_main"],
        }),
        linkopts = select({
            ":fuzz": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        data = data,
        testonly = True,
        tags = ["manual", "fuzz_target"],
    )
    native.cc_test(
        name = name + "_replay_test",
        size = size,
        srcs = srcs,
        copts = WHORL_COPTS,
        deps = deps + [":fuzz_support", ":replay_main"],
        data = data + corpus + regressions,
        args = args,
        # The threaded configs replay too (tools/dev runs tsan on this tag only).
        tags = ["tsan"],
    )

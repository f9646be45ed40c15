"""whorl_dependencies(): what a workspace that uses whorl declares after @whorl itself.

    local_repository(
        name = "whorl",
        path = "../whorl",
    )

    load("@whorl//tools/bazel:deps.bzl", "whorl_dependencies")

    whorl_dependencies()

It declares the offline stand-ins rules_cc, rules_java and remote_coverage_tools (README.md in this
directory), each as a repository of symlinks to whorl's copy under tools/bazel/. Bazel 4 appends a
WORKSPACE suffix that fetches those three from the network in every main workspace; a
local_repository'd whorl's own WORKSPACE is not read, so the main workspace must declare them
before the suffix does. A name the workspace already declared is left alone.
"""

def _stand_in_impl(rctx):
    source = rctx.path(rctx.attr._anchor).dirname.get_child(rctx.attr.directory)
    for child in source.readdir():
        rctx.symlink(child, child.basename)

_stand_in = repository_rule(
    implementation = _stand_in_impl,
    attrs = {
        "directory": attr.string(mandatory = True),
        "_anchor": attr.label(default = Label("//tools/bazel:deps.bzl")),
    },
    local = True,
)

def whorl_dependencies():
    for name in ["rules_cc", "rules_java", "remote_coverage_tools"]:
        if not native.existing_rule(name):
            _stand_in(name = name, directory = name)

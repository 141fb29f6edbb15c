"""Build rules shared by the spnas packages."""

load("@rules_cc//cc:defs.bzl", "cc_library", "cc_proto_library")

def spnas_proto(name, srcs, deps = []):
    """`<name>_proto` (proto_library) and `<name>_cc_proto` (its C++ classes).

    deps: other proto_library labels the .proto files import.
    """
    native.proto_library(name = name + "_proto", srcs = srcs, deps = deps)
    cc_proto_library(name = name + "_cc_proto", deps = [":" + name + "_proto"])

    # The .proto files themselves: tests check their documented defaults against the code.
    native.exports_files(srcs, visibility = ["//tests:__pkg__"])

def spnas_plugin(name, **kwargs):
    """A cc_library that registers plugins (or a registry) at static initialisation.

    alwayslink keeps its registrations in every binary that depends on it, although nothing
    refers to them by symbol.
    """
    cc_library(name = name, alwayslink = 1, **kwargs)

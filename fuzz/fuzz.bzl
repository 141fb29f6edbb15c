"""Fuzz targets: one binary per reader, built two ways.

Under --config=fuzz (clang, tools/fuzz.sh) the binary is a libFuzzer fuzzer with ASan and
UBSan. In every other build it links replay_main.cc instead, which runs the inputs it is given
once, so `<name>_corpus_test` replays the kept corpus (seeds and every input that ever crashed)
in `bazel test //...`.
"""

load("@rules_cc//cc:defs.bzl", "cc_binary")

def spnas_fuzz_target(name, srcs, deps):
    """`<name>` (the fuzzer) and `<name>_corpus_test` (its corpus, corpus/<name>/, replayed)."""
    cc_binary(
        name = name,
        srcs = srcs,
        deps = deps + [":fuzz_input"] + select({
            ":fuzzing": [],
            "//conditions:default": [":replay_main"],
        }),
        linkopts = select({
            ":fuzzing": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
    )
    native.sh_test(
        name = name + "_corpus_test",
        srcs = ["corpus_test.sh"],
        args = ["$(location :%s)" % name, "fuzz/corpus/" + name],
        data = [":" + name] + native.glob(["corpus/%s/**" % name]),
        size = "small",
    )

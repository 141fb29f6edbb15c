"""cuda_library: CUDA kernels (.cu files) compiled by nvcc into a cc_library.

Each .cu becomes one position-independent object, made by a genrule that runs @libtorch//:nvcc
(the toolkit matching the wheel's CUDA), with SASS for sm_80 and sm_90 and PTX for compute_90,
which newer GPUs compile when they load it. The objects launch on LibTorch's streams and link
against the wheel's CUDA runtime (@libtorch//:cudart), the one LibTorch itself uses.

A .cu may include its own `hdrs`, LibTorch's headers and the toolkit's (nvcc finds those
itself; the toolkit and the wheel are the same CUDA release, checked by libtorch.bzl). The
headers of `deps` are not visible to nvcc: deps are only linked.
"""

load("@rules_cc//cc:defs.bzl", "cc_library")

_NVCC_FLAGS = [
    "-std=c++17",
    "-O3",
    "--expt-relaxed-constexpr",
    "-DNDEBUG",
    "-D_GLIBCXX_USE_CXX11_ABI=1",
    "-Xcompiler -fPIC",
    "-gencode arch=compute_80,code=sm_80",
    "-gencode arch=compute_90,code=sm_90",
    "-gencode arch=compute_90,code=compute_90",
    # The workspace root, for "spnas/..." includes (also of generated files).
    "-I.",
    "-I$(GENDIR)",
    # -isystem: LibTorch's own warnings are not ours.
    "-isystem external/libtorch/include",
    "-isystem external/libtorch/include/torch/csrc/api/include",
]

def cuda_library(name, srcs, hdrs = [], deps = [], copts = [], **kwargs):
    """A cc_library of the objects nvcc makes from `srcs`.

    Args:
      name: the cc_library's name.
      srcs: .cu files.
      hdrs: headers of the library, visible to its dependents and to nvcc.
      deps: libraries the objects need at link time (LibTorch and the CUDA runtime are added).
      copts: extra nvcc flags.
      **kwargs: passed to the cc_library (visibility, testonly, ...).
    """
    objs = []
    for src in srcs:
        if not src.endswith(".cu"):
            fail("cuda_library %s: %s is not a .cu file" % (name, src))
        stem = src[:-len(".cu")]
        obj = "_nvcc/%s/%s.o" % (name, stem)
        native.genrule(
            name = "%s_nvcc_%s" % (name, stem.replace("/", "_")),
            srcs = [src] + hdrs + ["@libtorch//:headers"],
            outs = [obj],
            cmd = " ".join(["$(location @libtorch//:nvcc)", "-c", "$(location %s)" % src, "-o", "$@"] +
                           _NVCC_FLAGS + copts),
            message = "Compiling %s with nvcc" % src,
            tools = ["@libtorch//:nvcc"],
            visibility = ["//visibility:private"],
            testonly = kwargs.get("testonly", False),
        )
        objs.append(obj)
    cc_library(
        name = name,
        srcs = objs,
        hdrs = hdrs,
        deps = deps + ["@libtorch//:libtorch", "@libtorch//:cudart"],
        **kwargs
    )

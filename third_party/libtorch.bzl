"""Binds LibTorch from the torch wheel of the project's Python environment (tools/setup.sh).

The environment is $SPNAS_VENV, or ~/.cache/spnas/venv. A missing environment or a torch of
another version fails here, before any compile action, with the command that fixes it.
The repository also offers `:python`, the environment's interpreter (golden fixtures are made
with it at build time), and `:nvcc`, the CUDA compiler that matches the wheel's CUDA.
"""

_FIX = "Run tools/setup.sh (it creates the environment from tools/requirements.lock)."

def _venv_path(ctx):
    venv = ctx.os.environ.get("SPNAS_VENV", "")
    if not venv:
        venv = ctx.os.environ.get("HOME", "/root") + "/.cache/spnas/venv"
    return venv

# torch/version.py's lines, e.g. "__version__ = '2.11.0+cu130'" and "cuda: Optional[str] = '13.0'".
_VERSION_LINES = {"__version__": "__version__ = ", "cuda": "cuda: Optional[str] = "}

def _read_version(ctx, version_py):
    fields = {}
    for line in ctx.read(version_py).splitlines():
        for key, prefix in _VERSION_LINES.items():
            if line.startswith(prefix):
                fields[key] = line[len(prefix):].strip().strip("'\"")
    return fields

def _libtorch_impl(ctx):
    venv = _venv_path(ctx)
    python = ctx.path(venv + "/bin/python3")
    if not python.exists:
        fail("No Python environment at %s (set SPNAS_VENV to use another). %s" % (venv, _FIX))
    res = ctx.execute([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    if res.return_code != 0:
        fail("The Python environment %s does not run: %s\n%s" % (venv, res.stderr, _FIX))
    site = res.stdout.strip()
    version_py = ctx.path(site + "/torch/version.py")
    if not version_py.exists:
        fail("torch is not installed in %s. %s" % (venv, _FIX))
    fields = _read_version(ctx, version_py)
    found = fields.get("__version__", "?")
    if found.split("+")[0] != ctx.attr.version:
        fail("LibTorch in %s is %s; spnas is built against torch %s. %s" %
             (venv, found, ctx.attr.version, _FIX))
    if fields.get("cuda", "None") != ctx.attr.cuda:
        fail("LibTorch in %s is built for CUDA %s; spnas expects CUDA %s. %s" %
             (venv, fields.get("cuda", "None"), ctx.attr.cuda, _FIX))

    # Only LibTorch's own headers: the wheel also ships an older protobuf's, which must not
    # shadow the system protobuf the project's configs are compiled with.
    for entry in ["ATen", "c10", "caffe2", "torch", "fmt"]:
        ctx.symlink(site + "/torch/include/" + entry, "include/" + entry)
    ctx.symlink(site + "/torch/lib", "lib")
    # CUDA headers and libraries of the wheel's own CUDA (nvidia-cuda-runtime and friends).
    ctx.symlink(site + "/nvidia/cu13", "cuda")
    # NCCL of the wheel (nvidia-nccl-cu13, the version torch pins), for ProcessGroupNCCL.hpp.
    ctx.symlink(site + "/nvidia/nccl", "nccl")
    ctx.file("python.sh", "#!/bin/sh\nexec '%s' \"$@\"\n" % python, executable = True)
    # The same interpreter for C++ (`spnas export` runs python/spnas_torch with it).
    ctx.file("python_path.h", "#define SPNAS_VENV_PYTHON \"%s\"\n" % python)

    nvcc = ctx.which("nvcc") or ctx.path(ctx.attr.nvcc)
    if nvcc.exists:
        ctx.file("nvcc.sh", "#!/bin/sh\nexec '%s' \"$@\"\n" % nvcc, executable = True)
    else:
        ctx.file("nvcc.sh", "#!/bin/sh\necho 'nvcc not found: install the CUDA %s toolkit' >&2\nexit 1\n" %
                            ctx.attr.cuda, executable = True)

    ctx.template("BUILD.bazel", ctx.attr.build_file, {
        "%{lib}": site + "/torch/lib",
        "%{cuda_lib}": site + "/nvidia/cu13/lib",
        "%{nccl_lib}": site + "/nvidia/nccl/lib",
        "%{version}": found,
    })

libtorch_repository = repository_rule(
    implementation = _libtorch_impl,
    attrs = {
        "version": attr.string(mandatory = True, doc = "torch version, without the +cuXXX tag"),
        "cuda": attr.string(mandatory = True, doc = "the CUDA version the wheel is built for"),
        "nvcc": attr.string(default = "/usr/local/cuda/bin/nvcc"),
        "build_file": attr.label(allow_single_file = True),
    },
    environ = ["SPNAS_VENV", "HOME", "PATH"],
    local = True,
)

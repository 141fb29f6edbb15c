/**
 * Copyright (c) 2017-present, Facebook, Inc.
 * All rights reserved.
 *
 * This source code is licensed under the BSD-style license found in the
 * LICENSE file in the root directory of this source tree.
 */

// gloo/config.h.in of Gloo 3135b0b4, filled in as the torch 2.11.0+cu130 Linux wheel's
// build filled it (PyTorch's cmake/Dependencies.cmake and build flags), each value
// checked against the symbols of the wheel's libtorch_cpu.so / libtorch_cuda.so.

#pragma once

#define GLOO_VERSION_MAJOR 0
#define GLOO_VERSION_MINOR 5
#define GLOO_VERSION_PATCH 0

static_assert(
    GLOO_VERSION_MINOR < 100,
    "Programming error: you set a minor version that is too big.");
static_assert(
    GLOO_VERSION_PATCH < 100,
    "Programming error: you set a patch version that is too big.");

#define GLOO_VERSION                                         \
  (GLOO_VERSION_MAJOR * 10000 + GLOO_VERSION_MINOR * 100 +   \
   GLOO_VERSION_PATCH)

// A CUDA wheel: libtorch_cuda.so holds gloo::CudaAllreduceRingChunked and friends.
#define GLOO_USE_CUDA 1
// PyTorch turns NCCL off while it configures Gloo ("we don't use Gloo+NCCL").
#define GLOO_USE_NCCL 0
#define GLOO_USE_ROCM 0
#define GLOO_USE_RCCL 0
#define GLOO_USE_REDIS 0
// Only with USE_GLOO_IBVERBS (off); no gloo::transport::ibverbs symbols.
#define GLOO_USE_IBVERBS 0
// USE_MPI=OFF in torch.__config__.show().
#define GLOO_USE_MPI 0
// No out-of-line gloo::sum<gloo::float16> (math.cc only defines it with AVX).
#define GLOO_USE_AVX 0
// No gloo::transport::uv symbols: libuv is Gloo's transport on Windows only.
#define GLOO_USE_LIBUV 0

#define GLOO_HAVE_TRANSPORT_TCP 1
// The wheels build with USE_GLOO_WITH_OPENSSL (OpenSSL loaded at run time):
// gloo::transport::tcp::tls::CreateDevice is exported.
#define GLOO_HAVE_TRANSPORT_TCP_TLS 1
#define GLOO_HAVE_TRANSPORT_IBVERBS 0
#define GLOO_HAVE_TRANSPORT_UV 0

// PyTorch sets it for Gloo's CUDA kernels (c10::Half / c10::BFloat16); it only
// changes gloo/cuda_private.h and sources, none of the headers vendored here.
#define GLOO_USE_TORCH_DTYPES 1

// CUDA's BF16, FP16 and FP8 type headers for the kernel files. With clang as nvcc's host
// compiler they define static functions that -Wunused-function (made an error by -Werror)
// flags; they are not ours to fix, so the warning is silenced around them here, once.
// Thread ownership: declarations only.
#pragma once

#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wunused-function"
#endif
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#if defined(__clang__)
#pragma clang diagnostic pop
#endif

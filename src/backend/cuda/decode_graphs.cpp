// See decode_graphs.h.
#include "backend/cuda/decode_graphs.h"

#include <algorithm>

#include "backend/cuda/cuda_check.h"

namespace autoglm::cuda {

int32_t decode_batch_bucket(int32_t n_seqs, int32_t max_seqs) {
  int32_t bucket = 1;
  if (n_seqs <= 8) {
    while (bucket < n_seqs) bucket *= 2;
  } else if (n_seqs <= 64) {
    bucket = (n_seqs + 7) / 8 * 8;
  } else {
    bucket = (n_seqs + 31) / 32 * 32;
  }
  return std::max(n_seqs, std::min(bucket, max_seqs));
}

int32_t decode_context_bucket(int32_t max_context, int64_t limit) {
  int64_t bucket = 256;
  while (bucket < max_context) bucket *= 2;
  return static_cast<int32_t>(std::max<int64_t>(max_context, std::min(bucket, limit)));
}

DecodeGraphs::~DecodeGraphs() {
  for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
}

void DecodeGraphs::launch(int32_t batch, int32_t context, cudaStream_t stream,
                          const std::function<void()>& record) {
  const auto key = std::make_pair(batch, context);
  auto it = graphs_.find(key);
  if (it == graphs_.end()) {
    // Relaxed: the launchers may call cudaFuncSetAttribute (once per kernel) while capturing.
    AUTOGLM_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
    cudaGraph_t graph = nullptr;
    try {
      record();
    } catch (...) {
      cudaStreamEndCapture(stream, &graph);  // leave the stream usable again
      if (graph != nullptr) cudaGraphDestroy(graph);
      (void)cudaGetLastError();
      throw;
    }
    AUTOGLM_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t instantiated = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    AUTOGLM_CUDA_CHECK(instantiated);
    it = graphs_.emplace(key, exec).first;
  }
  AUTOGLM_CUDA_CHECK(cudaGraphLaunch(it->second, stream));
}

}  // namespace autoglm::cuda

// libFuzzer target: arbitrary bytes as a whole safetensors file. The parser must either accept
// (and then every tensor's byte range lies inside the buffer) or throw autoglm::Error; it must
// never crash, read out of bounds, or allocate per the header's claimed length.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "core/error.h"
#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto header = autoglm::parse_safetensors(std::span<const uint8_t>(data, size), "fuzz");
    for (const auto& t : header.tensors) {
      // Accepted files must be internally consistent; touch first and last byte of each tensor.
      if (t.end < t.begin || header.data_start + t.end > size) std::abort();
      if (t.end > t.begin) {
        volatile uint8_t a = data[header.data_start + t.begin];
        volatile uint8_t b = data[header.data_start + t.end - 1];
        (void)a;
        (void)b;
      }
    }
  } catch (const autoglm::Error&) {
  }
  return 0;
}

// libFuzzer target for mask_pii and mask_pii_excerpt: arbitrary bytes as free text. Must not
// crash or slow down (libFuzzer's -timeout catches a super-linear scan); text without digits
// or '@' must come back unchanged (every kind needs one of them); an excerpt must respect its
// byte limit.
// Thread ownership: the fuzzer's thread. Owner: the "jwt" thread.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "security/pii_mask.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string masked = autoglm::security::mask_pii(text);
  bool may_hold_pii = false;
  for (char c : text) may_hold_pii |= (c >= '0' && c <= '9') || c == '@';
  if (!may_hold_pii && masked != text) std::abort();
  const size_t limit = size % 97;
  if (autoglm::security::mask_pii_excerpt(text, limit).size() > limit) std::abort();
  return 0;
}

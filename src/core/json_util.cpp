// See json_util.h.
#include "core/json_util.h"

#include "core/error.h"

namespace autoglm {

Json parse_json_limited(std::string_view text, std::string_view source, int max_depth,
                        ErrorCode code) {
  int depth = 0;
  bool too_deep = false;
  // The callback sees every structural event before the value is built; returning false
  // at the cap stops nlohmann from building deeper values (its parser itself is iterative).
  auto limiter = [&](int d, Json::parse_event_t ev, Json&) {
    (void)d;
    if (ev == Json::parse_event_t::object_start || ev == Json::parse_event_t::array_start) {
      if (++depth > max_depth) too_deep = true;
    } else if (ev == Json::parse_event_t::object_end || ev == Json::parse_event_t::array_end) {
      --depth;
    }
    return !too_deep;
  };
  Json out;
  try {
    out = Json::parse(text.begin(), text.end(), limiter, /*allow_exceptions=*/true,
                      /*ignore_comments=*/false);
  } catch (const Json::exception& e) {
    fail(code, std::string(source) + ": malformed JSON: " + e.what());
  }
  if (too_deep) {
    fail(code, std::string(source) + ": JSON nested deeper than " + std::to_string(max_depth));
  }
  return out;
}

}  // namespace autoglm

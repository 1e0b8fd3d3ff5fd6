// See json_util.h. Parsing goes through a SAX handler rather than nlohmann's DOM parser so
// that (1) nesting depth is capped before anything deep is built, (2) duplicate keys are
// rejected (a JSON object with two meanings for one key is ambiguous, so hostile), and (3)
// members are appended without ordered_map's linear duplicate search, which made objects with
// many keys quadratic (a safetensors header may list hundreds of thousands of tensors).
#include "core/json_util.h"

#include <string>
#include <unordered_set>
#include <vector>

#include "core/error.h"

namespace autoglm {
namespace {

class LimitedBuilder : public nlohmann::json_sax<Json> {
 public:
  explicit LimitedBuilder(int max_depth) : max_depth_(max_depth) {}

  bool null() override { return add(Json(nullptr)); }
  bool boolean(bool v) override { return add(Json(v)); }
  bool number_integer(number_integer_t v) override { return add(Json(v)); }
  bool number_unsigned(number_unsigned_t v) override { return add(Json(v)); }
  bool number_float(number_float_t v, const string_t&) override { return add(Json(v)); }
  bool string(string_t& v) override { return add(Json(std::move(v))); }
  bool binary(binary_t&) override { return fail_with("binary values are not JSON"); }

  bool start_object(std::size_t) override { return open(Json::object()); }
  bool start_array(std::size_t) override { return open(Json::array()); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool key(string_t& k) override {
    if (!frames_.back().keys.insert(k).second) return fail_with("duplicate key '" + k + "'");
    pending_key_ = std::move(k);
    return true;
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& e) override {
    error_ = "malformed JSON at byte " + std::to_string(position) + ": " + e.what();
    return false;
  }

  Json take() { return std::move(root_); }
  const std::string& error() const { return error_; }

 private:
  struct Frame {
    Json* value;
    std::unordered_set<std::string> keys;  // objects only
  };

  bool fail_with(std::string message) {
    error_ = std::move(message);
    return false;
  }
  // Places `v` in the current container (or as the root); returns where it now lives.
  Json* place(Json&& v) {
    if (frames_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Json& parent = *frames_.back().value;
    if (parent.is_array()) {
      auto& items = parent.get_ref<Json::array_t&>();
      items.push_back(std::move(v));
      return &items.back();
    }
    // ordered_map is a vector of pairs: append directly (keys were checked for duplicates).
    auto& members = static_cast<std::vector<std::pair<const std::string, Json>>&>(
        parent.get_ref<Json::object_t&>());
    members.emplace_back(std::move(pending_key_), std::move(v));
    return &members.back().second;
  }
  bool add(Json&& v) {
    place(std::move(v));
    return true;
  }
  bool open(Json&& container) {
    if (static_cast<int>(frames_.size()) >= max_depth_) {
      return fail_with("JSON nested deeper than " + std::to_string(max_depth_));
    }
    frames_.push_back(Frame{place(std::move(container)), {}});
    return true;
  }
  bool close() {
    frames_.pop_back();
    return true;
  }

  int max_depth_;
  Json root_;
  std::vector<Frame> frames_;
  std::string pending_key_;
  std::string error_;
};

}  // namespace

Json parse_json_limited(std::string_view text, std::string_view source, int max_depth,
                        ErrorCode code) {
  LimitedBuilder builder(max_depth);
  bool ok = false;
  try {
    ok = Json::sax_parse(text.begin(), text.end(), &builder, nlohmann::detail::input_format_t::json,
                         /*strict=*/true);
  } catch (const Json::exception& e) {
    fail(code, std::string(source) + ": malformed JSON: " + e.what());
  }
  if (!ok) {
    const std::string& why =
        builder.error().empty() ? std::string("malformed JSON") : builder.error();
    fail(code, std::string(source) + ": " + why);
  }
  return builder.take();
}

}  // namespace autoglm

// Runtime values of the sandboxed Jinja subset: Python-like scalars, lists, ordered dicts,
// namespaces and callables, plus strings that remember which byte ranges came from untrusted
// input (provenance). Printing follows Python's str()/repr() as jinja2 does.
// Thread ownership: values belong to the rendering thread; nothing here is shared.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/json_util.h"
#include "tokenizer/byte_range.h"

namespace autoglm::jinja {

// A string plus the byte ranges of it that came from untrusted data (sorted, disjoint).
struct PStr {
  std::string text;
  std::vector<ByteRange> untrusted;

  static PStr trusted(std::string s) { return PStr{std::move(s), {}}; }
  static PStr tainted(std::string s);
  // A value computed from this string: untrusted as a whole if any part of the input was.
  PStr derived(std::string s) const {
    return untrusted.empty() ? trusted(std::move(s)) : tainted(std::move(s));
  }
  bool any_untrusted() const { return !untrusted.empty(); }
  void append(const PStr& other);
  void append_trusted(std::string_view s) { text.append(s); }
};

struct Value;
struct Undefined {
  std::string name;  // what was looked up, for error messages
};
struct Dict;
struct List;
struct Callable;
using ListPtr = std::shared_ptr<List>;
using DictPtr = std::shared_ptr<Dict>;
using CallablePtr = std::shared_ptr<Callable>;

struct Value {
  std::variant<Undefined, std::nullptr_t, bool, int64_t, double, PStr, ListPtr, DictPtr,
               CallablePtr>
      v;

  Value() : v(Undefined{}) {}
  Value(Undefined u) : v(std::move(u)) {}
  Value(std::nullptr_t) : v(nullptr) {}
  Value(bool b) : v(b) {}
  Value(int64_t i) : v(i) {}
  Value(int i) : v(int64_t{i}) {}
  Value(double d) : v(d) {}
  Value(PStr s) : v(std::move(s)) {}
  // Wrapping a list or dict works out its TreeShape and fails (ErrorCode::kTemplate) past the
  // limits below; a namespace is wrapped as it is.
  Value(ListPtr l);
  Value(DictPtr d);
  Value(CallablePtr c) : v(std::move(c)) {}

  bool is_undefined() const { return std::holds_alternative<Undefined>(v); }
  bool is_none() const { return std::holds_alternative<std::nullptr_t>(v); }
  bool is_bool() const { return std::holds_alternative<bool>(v); }
  bool is_int() const { return std::holds_alternative<int64_t>(v); }
  bool is_float() const { return std::holds_alternative<double>(v); }
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  bool is_string() const { return std::holds_alternative<PStr>(v); }
  bool is_list() const { return std::holds_alternative<ListPtr>(v); }
  bool is_dict() const;  // a mapping (not a namespace)
  bool is_namespace() const;
  bool is_callable() const { return std::holds_alternative<CallablePtr>(v); }

  const PStr& str() const { return std::get<PStr>(v); }
  const List& list() const { return *std::get<ListPtr>(v); }
  Dict& dict() const { return *std::get<DictPtr>(v); }
  double as_double() const;  // numbers and bools only
};

// The tree a list or dict spans, worked out once when it is wrapped in a Value. Lists and dicts
// do not change after that; namespaces, which do, count as leaves, and no walk enters them. So
// every walk over a value (printing, tojson, comparison, destruction) is bounded by this shape
// whatever sharing a template builds: `{% set a = [a, a] %}` repeated doubles the tree, not the
// memory, and a deep one would exhaust the stack.
struct TreeShape {
  uint32_t depth = 1;      // a container with no children is 1 deep; a scalar is 0
  uint64_t nodes = 1;      // containers and leaves, counting shared ones each time they appear
  bool untrusted = false;  // some string or key in the tree came from untrusted input
};
inline constexpr uint32_t kMaxValueDepth = 256;  // JSON input is capped at 128 levels
inline constexpr uint64_t kMaxValueNodes = uint64_t{1} << 24;

struct List : std::vector<Value> {
  using std::vector<Value>::vector;
  TreeShape shape;
};

struct Dict {
  std::vector<std::pair<PStr, Value>> items;  // insertion order, like Python dicts
  bool is_namespace = false;
  TreeShape shape;  // not kept up to date for a namespace

  const Value* find(std::string_view key) const;
  void set(PStr key, Value value);
};

// Something callable from a template: macros, globals, bound methods.
struct Callable {
  using Args = std::vector<Value>;
  using Kwargs = std::vector<std::pair<std::string, Value>>;
  virtual ~Callable() = default;
  virtual Value call(Args args, Kwargs kwargs) = 0;
  virtual std::string describe() const = 0;
};

Value make_list(List items);
Value make_dict();
Value from_json(const Json& j, bool untrusted);
bool truthy(const Value& v);
bool values_equal(const Value& a, const Value& b);
// Whether printing v shows untrusted text (a namespace prints as `<Namespace>`).
bool contains_untrusted(const Value& v);
// How many nodes a walk over v visits: 0 for scalars, strings and namespaces.
uint64_t walk_cost(const Value& v);
std::string type_name(const Value& v);

// Python str() of a value (what `{{ x }}` prints); keeps provenance for strings. Throws
// std::length_error once the text would pass max_bytes.
PStr to_pstr(const Value& v, size_t max_bytes = SIZE_MAX);
std::string python_repr(const Value& v, size_t max_bytes = SIZE_MAX);
std::string python_float_repr(double d);

struct JsonDumpOptions {
  int indent = -1;  // -1: None
  bool ensure_ascii = false;
  bool sort_keys = false;
  std::string item_separator;  // empty: Python's default for the indent mode
  std::string key_separator;
  bool separators_given = false;
  size_t max_bytes = SIZE_MAX;
};
// Python json.dumps(); throws std::invalid_argument for values JSON cannot hold and
// std::length_error once the text would pass opts.max_bytes.
std::string json_dumps(const Value& v, const JsonDumpOptions& opts);

}  // namespace autoglm::jinja

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
struct Callable;
using List = std::vector<Value>;
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
  Value(ListPtr l) : v(std::move(l)) {}
  Value(DictPtr d) : v(std::move(d)) {}
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

struct Dict {
  std::vector<std::pair<PStr, Value>> items;  // insertion order, like Python dicts
  bool is_namespace = false;

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
bool contains_untrusted(const Value& v);
std::string type_name(const Value& v);

// Python str() of a value (what `{{ x }}` prints); keeps provenance for strings.
PStr to_pstr(const Value& v);
std::string python_repr(const Value& v);
std::string python_float_repr(double d);

struct JsonDumpOptions {
  int indent = -1;  // -1: None
  bool ensure_ascii = false;
  bool sort_keys = false;
  std::string item_separator;  // empty: Python's default for the indent mode
  std::string key_separator;
  bool separators_given = false;
};
// Python json.dumps(); throws std::invalid_argument for values JSON cannot hold.
std::string json_dumps(const Value& v, const JsonDumpOptions& opts);

}  // namespace autoglm::jinja

// Runtime values of the Jinja subset: construction from JSON, Python truthiness/equality,
// Python str()/repr() printing and Python json.dumps(). Thread ownership: rendering thread.
#include "tokenizer/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "core/error.h"
#include "core/utf8.h"

namespace autoglm::jinja {

PStr PStr::tainted(std::string s) {
  PStr p{std::move(s), {}};
  if (!p.text.empty()) p.untrusted.push_back({0, p.text.size()});
  return p;
}

void PStr::append(const PStr& other) {
  const size_t base = text.size();
  text += other.text;
  for (const ByteRange& r : other.untrusted) {
    ByteRange shifted{r.begin + base, r.end + base};
    if (!untrusted.empty() && untrusted.back().end == shifted.begin) {
      untrusted.back().end = shifted.end;  // merge adjacent untrusted runs
    } else {
      untrusted.push_back(shifted);
    }
  }
}

namespace {

// The tree a value spans: its own shape for a list or dict, a leaf otherwise (a namespace too,
// see TreeShape).
TreeShape shape_of(const Value& v) {
  if (v.is_list()) return v.list().shape;
  if (v.is_dict()) return v.dict().shape;
  return TreeShape{0, 1, v.is_string() && v.str().any_untrusted()};
}

void add_child(TreeShape& shape, const Value& child) {
  const TreeShape c = shape_of(child);
  shape.depth = std::max(shape.depth, c.depth + 1);
  shape.nodes = std::min(shape.nodes + c.nodes, kMaxValueNodes + 1);
  shape.untrusted = shape.untrusted || c.untrusted;
}

void check_shape(const TreeShape& shape) {
  if (shape.depth > kMaxValueDepth) {
    fail(ErrorCode::kTemplate,
         "value nested deeper than " + std::to_string(kMaxValueDepth) + " lists or dicts");
  }
  if (shape.nodes > kMaxValueNodes) {
    fail(ErrorCode::kTemplate,
         "value spans more than " + std::to_string(kMaxValueNodes) + " elements");
  }
}

}  // namespace

Value::Value(ListPtr l) : v(std::move(l)) {
  List& list = *std::get<ListPtr>(v);
  TreeShape shape;
  for (const Value& e : list) add_child(shape, e);
  check_shape(shape);
  list.shape = shape;
}

Value::Value(DictPtr d) : v(std::move(d)) {
  Dict& dict = *std::get<DictPtr>(v);
  if (dict.is_namespace) return;
  TreeShape shape;
  for (const auto& [k, val] : dict.items) {
    shape.untrusted = shape.untrusted || k.any_untrusted();
    add_child(shape, val);
  }
  check_shape(shape);
  dict.shape = shape;
}

bool Value::is_dict() const {
  auto* d = std::get_if<DictPtr>(&v);
  return d && !(*d)->is_namespace;
}
bool Value::is_namespace() const {
  auto* d = std::get_if<DictPtr>(&v);
  return d && (*d)->is_namespace;
}
double Value::as_double() const {
  if (is_int()) return static_cast<double>(std::get<int64_t>(v));
  if (is_bool()) return std::get<bool>(v) ? 1.0 : 0.0;
  return std::get<double>(v);
}

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, val] : items) {
    if (k.text == key) return &val;
  }
  return nullptr;
}
void Dict::set(PStr key, Value value) {
  for (auto& [k, val] : items) {
    if (k.text == key.text) {
      val = std::move(value);
      return;
    }
  }
  items.emplace_back(std::move(key), std::move(value));
}

Value make_list(List items) {
  return Value(std::make_shared<List>(std::move(items)));
}
Value make_dict() {
  return Value(std::make_shared<Dict>());
}

Value from_json(const Json& j, bool untrusted) {
  switch (j.type()) {
    case Json::value_t::null:
      return Value(nullptr);
    case Json::value_t::boolean:
      return Value(j.get<bool>());
    case Json::value_t::number_integer:
      return Value(j.get<int64_t>());
    case Json::value_t::number_unsigned: {
      auto u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
      return Value(static_cast<int64_t>(u));
    }
    case Json::value_t::number_float:
      return Value(j.get<double>());
    case Json::value_t::string: {
      std::string s = j.get<std::string>();
      return Value(untrusted ? PStr::tainted(std::move(s)) : PStr::trusted(std::move(s)));
    }
    case Json::value_t::array: {
      List items;
      items.reserve(j.size());
      for (const Json& e : j) items.push_back(from_json(e, untrusted));
      return make_list(std::move(items));
    }
    case Json::value_t::object: {
      auto d = std::make_shared<Dict>();
      for (auto it = j.begin(); it != j.end(); ++it) {
        PStr key = untrusted ? PStr::tainted(it.key()) : PStr::trusted(it.key());
        d->items.emplace_back(std::move(key), from_json(it.value(), untrusted));
      }
      return Value(std::move(d));
    }
    default:
      return Value(nullptr);
  }
}

bool truthy(const Value& v) {
  struct Visitor {
    bool operator()(const Undefined&) const { return false; }
    bool operator()(std::nullptr_t) const { return false; }
    bool operator()(bool b) const { return b; }
    bool operator()(int64_t i) const { return i != 0; }
    bool operator()(double d) const { return d != 0.0; }
    bool operator()(const PStr& s) const { return !s.text.empty(); }
    bool operator()(const ListPtr& l) const { return !l->empty(); }
    bool operator()(const DictPtr& d) const { return d->is_namespace || !d->items.empty(); }
    bool operator()(const CallablePtr&) const { return true; }
  };
  return std::visit(Visitor{}, v.v);
}

bool values_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if ((a.is_int() || a.is_bool()) && (b.is_int() || b.is_bool())) {
      auto ai = a.is_bool() ? int64_t{std::get<bool>(a.v)} : std::get<int64_t>(a.v);
      auto bi = b.is_bool() ? int64_t{std::get<bool>(b.v)} : std::get<int64_t>(b.v);
      return ai == bi;
    }
    return a.as_double() == b.as_double();
  }
  if (a.v.index() != b.v.index()) return false;
  if (a.is_undefined() || a.is_none()) return true;
  if (a.is_string()) return a.str().text == b.str().text;
  if (a.is_list()) {
    const List& x = a.list();
    const List& y = b.list();
    if (&x == &y) return true;  // as Python's list comparison, which checks identity first
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      if (!values_equal(x[i], y[i])) return false;
    }
    return true;
  }
  if (std::holds_alternative<DictPtr>(a.v)) {
    const Dict& x = a.dict();
    const Dict& y = b.dict();
    if (&x == &y) return true;
    if (x.is_namespace || y.is_namespace || x.items.size() != y.items.size()) return false;
    for (const auto& [k, val] : x.items) {
      const Value* other = y.find(k.text);
      if (!other || !values_equal(val, *other)) return false;
    }
    return true;
  }
  return std::get<CallablePtr>(a.v) == std::get<CallablePtr>(b.v);
}

bool contains_untrusted(const Value& v) {
  return shape_of(v).untrusted;
}

uint64_t walk_cost(const Value& v) {
  return v.is_list() || v.is_dict() ? shape_of(v).nodes : 0;
}

std::string type_name(const Value& v) {
  static const char* const kNames[] = {"undefined", "NoneType", "bool", "int",     "float",
                                       "str",       "list",     "dict", "function"};
  if (v.is_namespace()) return "Namespace";
  return kNames[v.v.index()];
}

std::string python_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // like "-1.2345e+02"
  const size_t e_pos = sci.find('e');
  const int exp10 = std::stoi(sci.substr(e_pos + 1));
  std::string mant = sci.substr(0, e_pos);
  const bool neg = mant[0] == '-';
  if (neg) mant.erase(0, 1);
  std::string digits;
  for (char c : mant) {
    if (c != '.') digits += c;
  }
  std::string out;
  if (exp10 < -4 || exp10 >= 16) {  // Python repr switches to exponent form here
    out = digits.substr(0, 1);
    if (digits.size() > 1) out.append(".").append(digits, 1);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
    out += eb;
  } else if (exp10 < 0) {
    out = "0." + std::string(static_cast<size_t>(-exp10 - 1), '0') + digits;
  } else {
    const size_t int_len = static_cast<size_t>(exp10) + 1;
    if (digits.size() <= int_len) {
      out = digits + std::string(int_len - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, int_len) + "." + digits.substr(int_len);
    }
  }
  return neg ? "-" + out : out;
}

namespace {

std::string repr_string(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (unsigned char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == static_cast<unsigned char>(quote)) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
  return out;
}

void repr_into(std::string& out, const Value& v, size_t max_bytes) {
  if (v.is_list()) {
    out += '[';
    bool first = true;
    for (const Value& e : v.list()) {
      if (!first) out += ", ";
      first = false;
      repr_into(out, e, max_bytes);
    }
    out += ']';
  } else if (v.is_dict()) {
    out += '{';
    bool first = true;
    for (const auto& [k, val] : v.dict().items) {
      if (!first) out += ", ";
      first = false;
      out += repr_string(k.text);
      out += ": ";
      repr_into(out, val, max_bytes);
    }
    out += '}';
  } else if (v.is_string()) {
    out += repr_string(v.str().text);
  } else {
    out += to_pstr(v).text;
  }
  if (out.size() > max_bytes) throw std::length_error("printed value too large");
}

}  // namespace

std::string python_repr(const Value& v, size_t max_bytes) {
  std::string out;
  repr_into(out, v, max_bytes);
  return out;
}

PStr to_pstr(const Value& v, size_t max_bytes) {
  if (v.is_string()) return v.str();
  if (v.is_undefined()) return PStr{};
  if (v.is_none()) return PStr::trusted("None");
  if (v.is_bool()) return PStr::trusted(std::get<bool>(v.v) ? "True" : "False");
  if (v.is_int()) return PStr::trusted(std::to_string(std::get<int64_t>(v.v)));
  if (v.is_float()) return PStr::trusted(python_float_repr(std::get<double>(v.v)));
  if (v.is_namespace()) return PStr::trusted("<Namespace>");
  if (v.is_callable()) {
    std::string text = "<";
    text.append(std::get<CallablePtr>(v.v)->describe()).append(">");
    return PStr::trusted(std::move(text));
  }
  std::string repr = python_repr(v, max_bytes);
  return contains_untrusted(v) ? PStr::tainted(std::move(repr)) : PStr::trusted(std::move(repr));
}

}  // namespace autoglm::jinja

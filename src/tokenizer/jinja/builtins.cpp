// Built-ins of the Jinja sandbox: attribute/item access, the Python methods the immutable
// sandbox allows on str/dict/list, filters, tests and globals (range, namespace,
// raise_exception, strftime_now). Thread ownership: the rendering thread.
#include <utf8proc.h>
#include <algorithm>
#include <cmath>
#include <ctime>
#include <functional>

#include "core/error.h"
#include "core/utf8.h"
#include "tokenizer/jinja/builtins_internal.h"

namespace autoglm::jinja {

bool is_py_space(char32_t c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f) || c == 0x85 ||
         c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
         c == 0x202f || c == 0x205f || c == 0x3000;
}

std::u32string decode_all(const std::string& s) {
  std::u32string out;
  size_t i = 0;
  while (i < s.size()) {
    const size_t len = utf8::valid_sequence_length(s, i);
    if (len == 0) {
      out.push_back(static_cast<unsigned char>(s[i]));
      ++i;
      continue;
    }
    size_t got = 0;
    out.push_back(utf8::decode(s, i, &got));
    i += len;
  }
  return out;
}

std::string encode_all(const std::u32string& s) {
  std::string out;
  for (char32_t c : s) utf8::append(out, c);
  return out;
}

// Python str.strip/lstrip/rstrip; `chars` empty-optional means whitespace.
std::string py_strip(const std::string& s, const Value* chars, bool left, bool right) {
  std::u32string u = decode_all(s);
  std::u32string set;
  const bool ws = chars == nullptr || chars->is_none() || chars->is_undefined();
  if (!ws) set = decode_all(chars->str().text);
  auto strip_it = [&](char32_t c) {
    return ws ? is_py_space(c) : set.find(c) != std::u32string::npos;
  };
  size_t b = 0, e = u.size();
  if (left) {
    while (b < e && strip_it(u[b])) ++b;
  }
  if (right) {
    while (e > b && strip_it(u[e - 1])) --e;
  }
  return encode_all(u.substr(b, e - b));
}

std::string map_case(const std::string& s, int mode) {  // 0 lower, 1 upper, 2 title, 3 capitalize
  std::u32string u = decode_all(s);
  bool prev_cased = false;
  for (size_t i = 0; i < u.size(); ++i) {
    const auto c = static_cast<utf8proc_int32_t>(u[i]);
    const bool letter = utf8proc_category(c) >= UTF8PROC_CATEGORY_LU &&
                        utf8proc_category(c) <= UTF8PROC_CATEGORY_LO;
    bool upper = mode == 1;
    if (mode == 2) upper = !prev_cased;
    if (mode == 3) upper = i == 0;
    u[i] = static_cast<char32_t>(upper ? utf8proc_toupper(c) : utf8proc_tolower(c));
    prev_cased = letter;
  }
  return encode_all(u);
}

List py_split(const std::string& s, const Value* sep, int64_t maxsplit, const PStr& src) {
  List out;
  auto add = [&](std::string part) { out.push_back(Value(src.derived(std::move(part)))); };
  if (sep == nullptr || sep->is_none()) {
    std::u32string u = decode_all(s);
    size_t i = 0;
    int64_t splits = 0;
    while (i < u.size()) {
      while (i < u.size() && is_py_space(u[i])) ++i;
      if (i >= u.size()) break;
      if (maxsplit >= 0 && splits >= maxsplit) {
        std::u32string rest = u.substr(i);
        while (!rest.empty() && is_py_space(rest.back())) rest.pop_back();
        add(encode_all(rest));
        return out;
      }
      size_t j = i;
      while (j < u.size() && !is_py_space(u[j])) ++j;
      add(encode_all(u.substr(i, j - i)));
      ++splits;
      i = j;
    }
    return out;
  }
  const std::string& d = sep->str().text;
  if (d.empty()) fail(ErrorCode::kTemplate, "empty separator");
  size_t start = 0;
  int64_t splits = 0;
  while (true) {
    const size_t pos = s.find(d, start);
    if (pos == std::string::npos || (maxsplit >= 0 && splits >= maxsplit)) break;
    add(s.substr(start, pos - start));
    start = pos + d.size();
    ++splits;
  }
  add(s.substr(start));
  return out;
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to,
                        int64_t count) {
  if (from.empty()) {
    std::string out;
    int64_t done = 0;
    for (const std::string& c : code_points(s)) {
      if (count < 0 || done < count) {
        out += to;
        ++done;
      }
      out += c;
    }
    if (count < 0 || done < count) out += to;
    return out;
  }
  std::string out;
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t pos = s.find(from, start);
    if (pos == std::string::npos) break;
    out.append(s, start, pos - start);
    out += to;
    start = pos + from.size();
    ++done;
  }
  out.append(s, start);
  return out;
}

const Value* kwarg(const Callable::Kwargs& kwargs, std::string_view name) {
  for (const auto& [k, v] : kwargs) {
    if (k == name) return &v;
  }
  return nullptr;
}

const Value* arg_or_kwarg(const Callable::Args& args, size_t i, const Callable::Kwargs& kwargs,
                          std::string_view name) {
  if (i < args.size()) return &args[i];
  return kwarg(kwargs, name);
}

namespace {

// A global function implemented in C++.
class Builtin : public Callable {
 public:
  using Fn = std::function<Value(Args, Kwargs)>;
  Builtin(std::string name, Fn fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  Value call(Args args, Kwargs kwargs) override { return fn_(std::move(args), std::move(kwargs)); }
  std::string describe() const override { return "built-in function " + name_; }

 private:
  std::string name_;
  Fn fn_;
};

// `obj.method` taken without calling it (e.g. `{% if message.get %}`).
class BoundMethod : public Callable {
 public:
  BoundMethod(Evaluator& ev, Value obj, std::string name)
      : ev_(ev), obj_(std::move(obj)), name_(std::move(name)) {}
  Value call(Args args, Kwargs kwargs) override {
    return ev_.call_method(obj_, name_, std::move(args), std::move(kwargs), 0);
  }
  std::string describe() const override { return "built-in method " + name_; }

 private:
  Evaluator& ev_;
  Value obj_;
  std::string name_;
};

}  // namespace

bool is_known_method(const Value& obj, const std::string& name) {
  static const char* const kStr[] = {"strip",      "lstrip",     "rstrip", "split", "rsplit",
                                     "startswith", "endswith",   "upper",  "lower", "replace",
                                     "title",      "capitalize", "join",   "find",  "count",
                                     "splitlines", "format"};
  static const char* const kDict[] = {"get", "items", "keys", "values"};
  if (obj.is_string()) return std::find(std::begin(kStr), std::end(kStr), name) != std::end(kStr);
  if (obj.is_dict()) return std::find(std::begin(kDict), std::end(kDict), name) != std::end(kDict);
  return false;
}

Value Evaluator::get_attr(const Value& obj, const std::string& attr, size_t offset) {
  if (obj.is_undefined())
    error_at(offset,
             "'" + std::get<Undefined>(obj.v).name + "' is undefined (reading ." + attr + ")");
  if (is_known_method(obj, attr))
    return Value(CallablePtr(std::make_shared<BoundMethod>(*this, obj, attr)));
  if (std::holds_alternative<DictPtr>(obj.v)) {
    const Value* v = obj.dict().find(attr);
    return v ? *v : Value(Undefined{attr});
  }
  return Value(Undefined{attr});
}

Value Evaluator::get_item(const Value& obj, const Value& key, size_t offset) {
  if (obj.is_undefined())
    error_at(offset, "'" + std::get<Undefined>(obj.v).name + "' is undefined (subscripted)");
  if (obj.is_dict() && key.is_string()) {
    const Value* v = obj.dict().find(key.str().text);
    return v ? *v : Value(Undefined{key.str().text});
  }
  if ((obj.is_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = key.is_bool() ? int64_t{std::get<bool>(key.v)} : std::get<int64_t>(key.v);
    if (obj.is_list()) {
      const auto n = static_cast<int64_t>(obj.list().size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value(Undefined{"list index " + std::to_string(i)});
      return obj.list()[static_cast<size_t>(i)];
    }
    std::vector<std::string> chars = code_points(obj.str().text);
    const auto n = static_cast<int64_t>(chars.size());
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value(Undefined{"string index " + std::to_string(i)});
    return Value(obj.str().derived(std::move(chars[static_cast<size_t>(i)])));
  }
  if (key.is_string()) return get_attr(obj, key.str().text, offset);
  return Value(Undefined{"item"});
}

Value Evaluator::call_method(const Value& obj, const std::string& m, Callable::Args args,
                             Callable::Kwargs kwargs, size_t offset) {
  auto arg = [&](size_t i, std::string_view name) { return arg_or_kwarg(args, i, kwargs, name); };
  if (obj.is_dict()) {
    const Dict& d = obj.dict();
    if (m == "get") {
      const Value* key = arg(0, "key");
      if (!key) error_at(offset, "dict.get() needs a key");
      const Value* found = key->is_string() ? d.find(key->str().text) : nullptr;
      if (found) return *found;
      const Value* def = arg(1, "default");
      return def ? *def : Value(nullptr);
    }
    List out;
    for (const auto& [k, v] : d.items) {
      if (m == "items")
        out.push_back(make_list({Value(k), v}));
      else if (m == "keys")
        out.push_back(Value(k));
      else if (m == "values")
        out.push_back(v);
    }
    if (m == "items" || m == "keys" || m == "values") return make_list(std::move(out));
    error_at(offset, "dict method '" + m + "' is not allowed in the sandbox");
  }
  if (obj.is_list())
    error_at(offset, "list method '" + m + "' is not allowed in the sandbox (lists are immutable)");
  if (!obj.is_string()) error_at(offset, "'" + type_name(obj) + "' has no method '" + m + "'");
  const PStr& s = obj.str();
  auto str_arg = [&](size_t i, std::string_view name) -> const PStr& {
    const Value* v = arg(i, name);
    if (!v || !v->is_string())
      error_at(offset, "str." + m + "() argument '" + std::string(name) + "' must be a string");
    return v->str();
  };
  if (m == "strip" || m == "lstrip" || m == "rstrip") {
    const Value* chars = arg(0, "chars");
    if (chars && !chars->is_string() && !chars->is_none())
      error_at(offset, "str." + m + "() argument must be str or None");
    return Value(s.derived(py_strip(s.text, chars, m != "rstrip", m != "lstrip")));
  }
  if (m == "split" || m == "rsplit") {
    const Value* sep = arg(0, "sep");
    if (sep && !sep->is_string() && !sep->is_none())
      error_at(offset, "str.split() separator must be str or None");
    if (sep && sep->is_string() && sep->str().text.empty()) error_at(offset, "empty separator");
    const Value* maxsplit = arg(1, "maxsplit");
    const int64_t ms = maxsplit && maxsplit->is_int() ? std::get<int64_t>(maxsplit->v) : -1;
    if (m == "rsplit" && ms >= 0) error_at(offset, "str.rsplit() with maxsplit is not supported");
    List parts = py_split(s.text, sep, ms, s);
    charge_steps(parts.size(), offset);
    return make_list(std::move(parts));
  }
  if (m == "startswith" || m == "endswith") {
    const Value* p = arg(0, "prefix");
    List options = p && p->is_list() ? p->list() : List{p ? *p : Value()};
    for (const Value& o : options) {
      if (!o.is_string())
        error_at(offset, "str." + m + "() argument must be str or a tuple of str");
      const std::string& t = o.str().text;
      const bool hit = m == "startswith"
                           ? s.text.compare(0, t.size(), t) == 0
                           : (s.text.size() >= t.size() &&
                              s.text.compare(s.text.size() - t.size(), t.size(), t) == 0);
      if (hit) return Value(true);
    }
    return Value(false);
  }
  if (m == "upper" || m == "lower" || m == "title" || m == "capitalize") {
    const int mode = m == "lower" ? 0 : m == "upper" ? 1 : m == "title" ? 2 : 3;
    return Value(s.derived(map_case(s.text, mode)));
  }
  if (m == "replace") {
    const PStr& from = str_arg(0, "old");
    const PStr& to = str_arg(1, "new");
    const Value* count = arg(2, "count");
    std::string r = replace_all(s.text, from.text, to.text,
                                count && count->is_int() ? std::get<int64_t>(count->v) : -1);
    check_string_size(r.size(), offset);
    const bool tainted = s.any_untrusted() || from.any_untrusted() || to.any_untrusted();
    return Value(tainted ? PStr::tainted(std::move(r)) : PStr::trusted(std::move(r)));
  }
  if (m == "join") {
    const Value* items = arg(0, "iterable");
    if (!items) error_at(offset, "str.join() needs an iterable");
    PStr out;
    bool first = true;
    for (const Value& v : iterate(*this, *items, offset)) {
      if (!v.is_string()) error_at(offset, "str.join() expects strings, got " + type_name(v));
      if (!first) out.append(s);
      first = false;
      out.append(v.str());
      check_string_size(out.text.size(), offset);
    }
    return Value(std::move(out));
  }
  if (m == "find" || m == "count") {
    const std::string& t = str_arg(0, "sub").text;
    if (m == "find") {
      const size_t pos = s.text.find(t);
      if (pos == std::string::npos) return Value(int64_t{-1});
      return Value(static_cast<int64_t>(code_points(s.text.substr(0, pos)).size()));
    }
    if (t.empty()) return Value(static_cast<int64_t>(code_points(s.text).size() + 1));
    int64_t n = 0;
    for (size_t pos = s.text.find(t); pos != std::string::npos;
         pos = s.text.find(t, pos + t.size()))
      ++n;
    return Value(n);
  }
  if (m == "splitlines") {
    Value nl(PStr::trusted("\n"));
    List lines = s.text.empty() ? List{} : py_split(s.text, &nl, -1, s);
    if (!lines.empty() && s.text.back() == '\n') lines.pop_back();
    return make_list(std::move(lines));
  }
  error_at(offset, "str method '" + m + "' is not supported in the sandbox");
}

void Evaluator::install_globals(std::unordered_map<std::string, Value>& globals) {
  auto add = [&](const std::string& name, Builtin::Fn fn) {
    globals[name] = Value(CallablePtr(std::make_shared<Builtin>(name, std::move(fn))));
  };
  add("range", [this](Callable::Args args, Callable::Kwargs) {
    int64_t start = 0, stop = 0, step = 1;
    for (const Value& a : args) {
      if (!a.is_int()) error_at(0, "range() arguments must be integers");
    }
    if (args.size() == 1)
      stop = std::get<int64_t>(args[0].v);
    else if (args.size() >= 2) {
      start = std::get<int64_t>(args[0].v);
      stop = std::get<int64_t>(args[1].v);
      if (args.size() >= 3) step = std::get<int64_t>(args[2].v);
    }
    if (step == 0) error_at(0, "range() step must not be zero");
    const double count =
        std::max(0.0, std::ceil((static_cast<double>(stop) - static_cast<double>(start)) /
                                static_cast<double>(step)));
    if (count > static_cast<double>(steps_left())) {
      error_at(0, "step limit exceeded: range() of " +
                      std::to_string(static_cast<uint64_t>(count)) + " items");
    }
    charge_steps(static_cast<uint64_t>(count), 0);
    List out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) out.push_back(Value(i));
    return make_list(std::move(out));
  });
  add("namespace", [this](Callable::Args args, Callable::Kwargs kwargs) {
    auto d = std::make_shared<Dict>();
    d->is_namespace = true;
    namespaces_.push_back(d);
    for (const Value& a : args) {
      if (a.is_dict()) d->items = a.dict().items;
    }
    for (auto& [k, v] : kwargs) d->set(PStr::trusted(k), std::move(v));
    return Value(std::move(d));
  });
  add("raise_exception", [this](Callable::Args args, Callable::Kwargs) -> Value {
    fail(ErrorCode::kTemplate, std::string(name_) + ": template raised an exception: " +
                                   (args.empty() ? std::string() : printed(args[0], 0).text));
  });
  add("strftime_now", [](Callable::Args args, Callable::Kwargs) {
    const std::string fmt =
        !args.empty() && args[0].is_string() ? args[0].str().text : std::string("%Y-%m-%d");
    std::time_t now = std::time(nullptr);
    std::tm tm_now{};
    localtime_r(&now, &tm_now);
    char buf[256];
    const size_t n = std::strftime(buf, sizeof buf, fmt.c_str(), &tm_now);
    return Value(PStr::trusted(std::string(buf, n)));
  });
}

}  // namespace autoglm::jinja

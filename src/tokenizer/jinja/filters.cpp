// Filters and tests of the Jinja sandbox, with jinja2's semantics for the ones chat templates
// use, and transformers' `tojson` (Python json.dumps with ensure_ascii=False by default).
// Provenance: filters that transform text mark the result untrusted if any input part was.
// Thread ownership: the rendering thread.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/error.h"
#include "tokenizer/jinja/builtins_internal.h"

namespace autoglm::jinja {
namespace {

int64_t int_arg(const Value* v, int64_t def) {
  if (!v) return def;
  if (v->is_int()) return std::get<int64_t>(v->v);
  if (v->is_bool()) return std::get<bool>(v->v);
  return def;
}

PStr derived_from(const Value& in, std::string text) {
  return contains_untrusted(in) ? PStr::tainted(std::move(text)) : PStr::trusted(std::move(text));
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

Value Evaluator::apply_filter(const std::string& f, Value in, Callable::Args args,
                              Callable::Kwargs kwargs, size_t offset) {
  auto arg = [&](size_t i, std::string_view name) { return arg_or_kwarg(args, i, kwargs, name); };
  auto need_string = [&]() -> const PStr& {
    if (!in.is_string()) in = Value(printed(in, offset));
    return in.str();
  };
  if (f == "tojson") {
    JsonDumpOptions o;
    const Value* indent = arg(1, "indent");
    if (indent && indent->is_int())
      o.indent = static_cast<int>(std::clamp<int64_t>(std::get<int64_t>(indent->v), 0, 64));
    const Value* ea = arg(0, "ensure_ascii");
    o.ensure_ascii = ea && truthy(*ea);
    const Value* sk = arg(3, "sort_keys");
    o.sort_keys = sk && truthy(*sk);
    const Value* sep = arg(2, "separators");
    if (sep && sep->is_list() && sep->list().size() == 2 && sep->list()[0].is_string() &&
        sep->list()[1].is_string()) {
      o.separators_given = true;
      o.item_separator = sep->list()[0].str().text;
      o.key_separator = sep->list()[1].str().text;
    }
    o.max_bytes = limits().max_output_bytes;
    charge_steps(walk_cost(in), offset);
    std::string text;
    try {
      text = json_dumps(in, o);
    } catch (const std::invalid_argument& e) {
      error_at(offset, std::string("tojson: ") + e.what());
    } catch (const std::length_error&) {
      output_limit_exceeded(offset);
    }
    check_string_size(text.size(), offset);
    return Value(derived_from(in, std::move(text)));
  }
  if (f == "safe" || f == "string") return Value(printed(in, offset));
  if (f == "e" || f == "escape") return Value(need_string().derived(html_escape(in.str().text)));
  if (f == "trim") {
    const Value* chars = arg(0, "chars");
    return Value(need_string().derived(py_strip(in.str().text, chars, true, true)));
  }
  if (f == "upper" || f == "lower" || f == "title" || f == "capitalize") {
    const int mode = f == "lower" ? 0 : f == "upper" ? 1 : f == "title" ? 2 : 3;
    return Value(need_string().derived(map_case(in.str().text, mode)));
  }
  if (f == "replace") {
    const PStr& s = need_string();
    const Value* from = arg(0, "old");
    const Value* to = arg(1, "new");
    if (!from || !to) error_at(offset, "replace needs two arguments");
    PStr a = printed(*from, offset), b = printed(*to, offset);
    std::string r = replace_all(s.text, a.text, b.text, int_arg(arg(2, "count"), -1));
    check_string_size(r.size(), offset);
    const bool tainted = s.any_untrusted() || a.any_untrusted() || b.any_untrusted();
    return Value(tainted ? PStr::tainted(std::move(r)) : PStr::trusted(std::move(r)));
  }
  if (f == "length" || f == "count") {
    if (in.is_string()) return Value(static_cast<int64_t>(code_points(in.str().text).size()));
    if (in.is_list()) return Value(static_cast<int64_t>(in.list().size()));
    if (std::holds_alternative<DictPtr>(in.v))
      return Value(static_cast<int64_t>(in.dict().items.size()));
    if (in.is_undefined()) return Value(int64_t{0});
    error_at(offset, "object of type '" + type_name(in) + "' has no len()");
  }
  if (f == "first" || f == "last") {
    List items = iterate(*this, in, offset);
    if (items.empty()) return Value(Undefined{"first/last of empty sequence"});
    return f == "first" ? items.front() : items.back();
  }
  if (f == "list") return make_list(iterate(*this, in, offset));
  if (f == "reverse") {
    if (in.is_string()) {
      std::vector<std::string> cps = code_points(in.str().text);
      std::string r;
      for (auto it = cps.rbegin(); it != cps.rend(); ++it) r += *it;
      return Value(in.str().derived(std::move(r)));
    }
    List items = iterate(*this, in, offset);
    std::reverse(items.begin(), items.end());
    return make_list(std::move(items));
  }
  if (f == "join") {
    const Value* sep = arg(0, "d");
    PStr sep_s = sep ? printed(*sep, offset) : PStr{};
    const Value* attr = arg(1, "attribute");
    PStr out;
    bool first = true;
    for (Value v : iterate(*this, in, offset)) {
      if (attr) v = get_attr(v, printed(*attr, offset).text, offset);
      if (!first) out.append(sep_s);
      first = false;
      out.append(printed(v, offset));
      check_string_size(out.text.size(), offset);
    }
    return Value(std::move(out));
  }
  if (f == "items") {
    if (in.is_undefined()) return make_list({});
    if (!in.is_dict()) error_at(offset, "items filter expects a mapping, got " + type_name(in));
    List out;
    for (const auto& [k, v] : in.dict().items) out.push_back(make_list({Value(k), v}));
    return make_list(std::move(out));
  }
  if (f == "dictsort") {
    if (!in.is_dict()) error_at(offset, "dictsort expects a mapping");
    auto items = in.dict().items;
    std::stable_sort(items.begin(), items.end(),
                     [](const auto& a, const auto& b) { return a.first.text < b.first.text; });
    List out;
    for (const auto& [k, v] : items) out.push_back(make_list({Value(k), v}));
    return make_list(std::move(out));
  }
  if (f == "map" || f == "select" || f == "reject" || f == "selectattr" || f == "rejectattr") {
    List out;
    const Value* attribute = kwarg(kwargs, "attribute");
    for (const Value& item : iterate(*this, in, offset)) {
      charge_steps(1, offset);
      if (f == "map") {
        if (attribute) {
          Value v = get_attr(item, printed(*attribute, offset).text, offset);
          if (v.is_undefined()) {
            if (const Value* def = kwarg(kwargs, "default")) v = *def;
          }
          out.push_back(v);
        } else {
          if (args.empty() || !args[0].is_string())
            error_at(offset, "map needs a filter name or attribute=");
          Callable::Args rest(args.begin() + 1, args.end());
          out.push_back(apply_filter(args[0].str().text, item, rest, {}, offset));
        }
        continue;
      }
      const bool by_attr = f == "selectattr" || f == "rejectattr";
      size_t test_idx = by_attr ? 1 : 0;
      Value subject = item;
      if (by_attr) {
        if (args.empty() || !args[0].is_string()) error_at(offset, f + " needs an attribute name");
        subject = get_attr(item, args[0].str().text, offset);
      }
      bool ok;
      if (args.size() > test_idx) {
        if (!args[test_idx].is_string()) error_at(offset, f + ": test name must be a string");
        Callable::Args targs(args.begin() + static_cast<std::ptrdiff_t>(test_idx) + 1, args.end());
        ok = apply_test(args[test_idx].str().text, subject, targs, offset);
      } else {
        ok = truthy(subject);
      }
      if (ok == (f == "select" || f == "selectattr")) out.push_back(item);
    }
    return make_list(std::move(out));
  }
  if (f == "unique") {
    List out;
    for (const Value& item : iterate(*this, in, offset)) {
      charge_steps(out.size() + 1, offset);
      if (std::none_of(out.begin(), out.end(),
                       [&](const Value& o) { return equal(o, item, offset); }))
        out.push_back(item);
    }
    return make_list(std::move(out));
  }
  if (f == "sort") {
    List items = iterate(*this, in, offset);
    const bool reverse = truthy(arg(0, "reverse") ? *arg(0, "reverse") : Value(false));
    const Value* attribute = kwarg(kwargs, "attribute");
    charge_steps(items.size() * 8, offset);
    auto key = [&](const Value& v) {
      return attribute ? get_attr(v, printed(*attribute, offset).text, offset) : v;
    };
    std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
      return reverse ? compare(key(b), key(a), offset) < 0 : compare(key(a), key(b), offset) < 0;
    });
    return make_list(std::move(items));
  }
  if (f == "sum" || f == "min" || f == "max") {
    List items = iterate(*this, in, offset);
    if (f == "sum") {
      Value acc = arg(1, "start") ? *arg(1, "start") : Value(int64_t{0});
      for (const Value& v : items) acc = arith("+", acc, v, offset);
      return acc;
    }
    if (items.empty()) return Value(Undefined{f + " of empty sequence"});
    Value best = items[0];
    for (const Value& v : items) {
      const int c = compare(v, best, offset);
      if ((f == "min" && c < 0) || (f == "max" && c > 0)) best = v;
    }
    return best;
  }
  if (f == "abs") {
    if (in.is_int())
      return Value(std::get<int64_t>(in.v) < 0 ? -std::get<int64_t>(in.v)
                                               : std::get<int64_t>(in.v));
    if (in.is_float()) return Value(std::fabs(std::get<double>(in.v)));
    error_at(offset, "bad operand type for abs(): '" + type_name(in) + "'");
  }
  if (f == "int") {
    if (in.is_int()) return in;
    if (in.is_bool()) return Value(int64_t{std::get<bool>(in.v)});
    if (in.is_float() && std::isfinite(std::get<double>(in.v)))
      return Value(static_cast<int64_t>(std::get<double>(in.v)));
    if (in.is_string()) {
      try {
        size_t used = 0;
        std::string t = py_strip(in.str().text, nullptr, true, true);
        const long long v = std::stoll(t, &used, 10);
        if (used == t.size()) return Value(static_cast<int64_t>(v));
      } catch (const std::exception&) {
      }
    }
    return arg(0, "default") ? *arg(0, "default") : Value(int64_t{0});
  }
  if (f == "float") {
    if (in.is_number()) return Value(in.as_double());
    if (in.is_string()) {
      try {
        size_t used = 0;
        std::string t = py_strip(in.str().text, nullptr, true, true);
        const double v = std::stod(t, &used);
        if (used == t.size()) return Value(v);
      } catch (const std::exception&) {
      }
    }
    return arg(0, "default") ? *arg(0, "default") : Value(0.0);
  }
  if (f == "round") {
    const int64_t precision = int_arg(arg(0, "precision"), 0);
    const double scale = std::pow(10.0, static_cast<double>(std::clamp<int64_t>(precision, 0, 15)));
    return Value(std::nearbyint(in.as_double() * scale) / scale);
  }
  if (f == "indent") {
    const PStr& s = need_string();
    const Value* width = arg(0, "width");
    std::string pad =
        width && width->is_string()
            ? width->str().text
            : std::string(static_cast<size_t>(std::clamp<int64_t>(int_arg(width, 4), 0, 256)), ' ');
    const bool first = truthy(arg(1, "first") ? *arg(1, "first") : Value(false));
    const bool blank = truthy(arg(2, "blank") ? *arg(2, "blank") : Value(false));
    std::string out;
    size_t start = 0;
    bool is_first = true;
    while (start <= s.text.size()) {
      const size_t nl = s.text.find('\n', start);
      const std::string line =
          s.text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      if ((!is_first || first) && (blank || !line.empty())) out += pad;
      out += line;
      if (nl == std::string::npos) break;
      out += '\n';
      start = nl + 1;
      is_first = false;
      check_string_size(out.size(), offset);
    }
    return Value(s.derived(std::move(out)));
  }
  if (f == "wordcount")
    return Value(static_cast<int64_t>(py_split(need_string().text, nullptr, -1, in.str()).size()));
  if (f == "attr") {
    const Value* name = arg(0, "name");
    return name ? get_attr(in, printed(*name, offset).text, offset) : Value(Undefined{"attr"});
  }
  if (f == "batch") {
    const int64_t size = int_arg(arg(0, "linecount"), 1);
    if (size <= 0) error_at(offset, "batch size must be positive");
    List out, cur;
    for (const Value& v : iterate(*this, in, offset)) {
      cur.push_back(v);
      if (static_cast<int64_t>(cur.size()) == size) {
        out.push_back(make_list(std::move(cur)));
        cur.clear();
      }
    }
    if (!cur.empty()) out.push_back(make_list(std::move(cur)));
    return make_list(std::move(out));
  }
  error_at(offset, "unknown filter '" + f + "'");
}

bool Evaluator::apply_test(const std::string& t, const Value& in, const Callable::Args& args,
                           size_t offset) {
  auto need_arg = [&]() -> const Value& {
    if (args.empty()) error_at(offset, "test '" + t + "' needs an argument");
    return args[0];
  };
  if (t == "defined") return !in.is_undefined();
  if (t == "undefined") return in.is_undefined();
  if (t == "none") return in.is_none();
  if (t == "boolean") return in.is_bool();
  if (t == "true") return in.is_bool() && std::get<bool>(in.v);
  if (t == "false") return in.is_bool() && !std::get<bool>(in.v);
  if (t == "integer") return in.is_int();
  if (t == "float") return in.is_float();
  if (t == "number") return in.is_number();
  if (t == "string") return in.is_string();
  if (t == "mapping") return in.is_dict();
  if (t == "sequence") return in.is_list() || in.is_string() || in.is_dict();
  if (t == "iterable") return in.is_list() || in.is_string() || in.is_dict();
  if (t == "callable") return in.is_callable();
  if (t == "lower") return in.is_string() && map_case(in.str().text, 0) == in.str().text;
  if (t == "upper") return in.is_string() && map_case(in.str().text, 1) == in.str().text;
  if (t == "even" || t == "odd") {
    if (!in.is_int()) error_at(offset, "test '" + t + "' needs an integer");
    return (std::get<int64_t>(in.v) % 2 == 0) == (t == "even");
  }
  if (t == "divisibleby") {
    const Value& n = need_arg();
    if (!in.is_int() || !n.is_int() || std::get<int64_t>(n.v) == 0)
      error_at(offset, "divisibleby needs non-zero integers");
    return std::get<int64_t>(in.v) % std::get<int64_t>(n.v) == 0;
  }
  if (t == "eq" || t == "equalto" || t == "==") return equal(in, need_arg(), offset);
  if (t == "ne" || t == "!=") return !equal(in, need_arg(), offset);
  if (t == "sameas") {
    const Value& o = need_arg();
    if (in.is_none() || in.is_bool() || o.is_none() || o.is_bool())
      return in.v.index() == o.v.index() && values_equal(in, o);
    return false;
  }
  if (t == "lt" || t == "lessthan" || t == "<") return compare(in, need_arg(), offset) < 0;
  if (t == "le" || t == "<=") return compare(in, need_arg(), offset) <= 0;
  if (t == "gt" || t == "greaterthan" || t == ">") return compare(in, need_arg(), offset) > 0;
  if (t == "ge" || t == ">=") return compare(in, need_arg(), offset) >= 0;
  if (t == "in") return contains(need_arg(), in, offset);
  error_at(offset, "unknown test '" + t + "'");
}

}  // namespace autoglm::jinja

// Python json.dumps() for template values: the semantics of transformers' `tojson` filter
// (ensure_ascii, indent, separators, sort_keys; Python's default separators; float repr).
// Thread ownership: rendering thread.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "core/utf8.h"
#include "tokenizer/jinja/value.h"

namespace autoglm::jinja {
namespace {

void append_u_escape(std::string& out, uint32_t unit) {
  char buf[16];  // "\\u" + up to 8 hex digits for any uint32_t, + NUL
  std::snprintf(buf, sizeof buf, "\\u%04x", unit);
  out += buf;
}

// Decodes one UTF-8 sequence at s[i]; invalid bytes decode as themselves (U+FFFD-free).
uint32_t next_code_point(const std::string& s, size_t& i) {
  const auto c = static_cast<unsigned char>(s[i]);
  int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 1;
  if (i + static_cast<size_t>(len) > s.size()) len = 1;
  uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
  for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
  i += static_cast<size_t>(len);
  return cp;
}

void dump_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        default:
          if (c < 0x20 || (ensure_ascii && c == 0x7f)) {
            append_u_escape(out, c);
          } else {
            out += static_cast<char>(c);
          }
      }
      continue;
    }
    const size_t start = i;
    const uint32_t cp = next_code_point(s, i);
    if (!ensure_ascii) {
      out.append(s, start, i - start);
    } else if (cp >= 0x10000) {
      const uint32_t v = cp - 0x10000;
      append_u_escape(out, 0xd800 + (v >> 10));
      append_u_escape(out, 0xdc00 + (v & 0x3ff));
    } else {
      append_u_escape(out, cp);
    }
  }
  out += '"';
}

struct Dumper {
  const JsonDumpOptions& opts;
  std::string item_sep;
  std::string key_sep;
  std::string out;
  int depth = 0;

  void newline_indent(int level) {
    out += '\n';
    out.append(static_cast<size_t>(opts.indent * level), ' ');
  }

  void dump(const Value& v) {
    if (++depth > 512) throw std::invalid_argument("value nested too deeply for tojson");
    dump_inner(v);
    if (out.size() > opts.max_bytes) throw std::length_error("JSON text too large");
    --depth;
  }

  void dump_inner(const Value& v) {
    if (v.is_none()) {
      out += "null";
    } else if (v.is_bool()) {
      out += std::get<bool>(v.v) ? "true" : "false";
    } else if (v.is_int()) {
      out += std::to_string(std::get<int64_t>(v.v));
    } else if (v.is_float()) {
      const double d = std::get<double>(v.v);
      out += std::isnan(d)   ? "NaN"
             : std::isinf(d) ? (d < 0 ? "-Infinity" : "Infinity")
                             : python_float_repr(d);
    } else if (v.is_string()) {
      dump_string(out, v.str().text, opts.ensure_ascii);
    } else if (v.is_list()) {
      dump_list(v.list());
    } else if (v.is_dict()) {
      dump_dict(v.dict());
    } else {
      throw std::invalid_argument("Object of type " + type_name(v) + " is not JSON serializable");
    }
  }

  void dump_list(const List& items) {
    if (items.empty()) {
      out += "[]";
      return;
    }
    out += '[';
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) out += item_sep;
      if (opts.indent >= 0) newline_indent(depth);
      dump(items[i]);
    }
    if (opts.indent >= 0) newline_indent(depth - 1);
    out += ']';
  }

  void dump_dict(const Dict& d) {
    if (d.items.empty()) {
      out += "{}";
      return;
    }
    std::vector<const std::pair<PStr, Value>*> order;
    for (const auto& kv : d.items) order.push_back(&kv);
    if (opts.sort_keys) {
      std::stable_sort(order.begin(), order.end(),
                       [](auto* a, auto* b) { return a->first.text < b->first.text; });
    }
    out += '{';
    for (size_t i = 0; i < order.size(); ++i) {
      if (i > 0) out += item_sep;
      if (opts.indent >= 0) newline_indent(depth);
      dump_string(out, order[i]->first.text, opts.ensure_ascii);
      out += key_sep;
      dump(order[i]->second);
    }
    if (opts.indent >= 0) newline_indent(depth - 1);
    out += '}';
  }
};

}  // namespace

std::string json_dumps(const Value& v, const JsonDumpOptions& opts) {
  Dumper d{opts, opts.item_separator, opts.key_separator, {}, 0};
  if (!opts.separators_given) {
    d.item_sep = opts.indent >= 0 ? "," : ", ";
    d.key_sep = ": ";
  }
  d.dump(v);
  return std::move(d.out);
}

}  // namespace autoglm::jinja

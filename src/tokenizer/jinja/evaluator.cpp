// Evaluator: statements, expressions, operators and macros (see evaluator.h).
// Thread ownership: one Evaluator per render call.
#include "tokenizer/jinja/evaluator.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/error.h"
#include "tokenizer/jinja/lexer.h"

namespace autoglm::jinja {

namespace {

// The filter chain of a {% filter %} block was parsed around a placeholder literal; apply it
// to `input` without touching the (shared, immutable) AST.
Value apply_filter_chain_impl(Evaluator& ev, const Expr& e, Value input) {
  if (e.kind != ExprKind::kFilter) return input;
  Value inner = apply_filter_chain_impl(ev, *e.children[0], std::move(input));
  Callable::Args args;
  for (size_t i = 1; i < e.children.size(); ++i) args.push_back(ev.eval(*e.children[i]));
  Callable::Kwargs kwargs;
  for (const auto& [k, x] : e.kwargs) kwargs.emplace_back(k, ev.eval(*x));
  return ev.apply_filter(e.name, std::move(inner), std::move(args), std::move(kwargs), e.offset);
}

int64_t as_int(const Value& v) {
  return v.is_bool() ? int64_t{std::get<bool>(v.v)} : std::get<int64_t>(v.v);
}
bool is_integral(const Value& v) {
  return v.is_int() || v.is_bool();
}

}  // namespace

// A macro defined with {% macro %}: renders its body in a fresh scope above the globals.
class MacroCallable : public Callable {
 public:
  MacroCallable(Evaluator& ev, const Stmt& def, Value caller = Value())
      : ev_(ev), def_(def), caller_(std::move(caller)) {}

  Value call(Args args, Kwargs kwargs) override {
    if (++ev_.call_depth > ev_.limits().max_call_depth)
      ev_.error_at(def_.offset, "macro call depth limit exceeded");
    std::unordered_map<std::string, Value> frame;
    for (size_t i = 0; i < def_.params.size(); ++i) {
      const auto& [pname, def_expr] = def_.params[i];
      Value v;
      if (i < args.size()) {
        v = std::move(args[i]);
      } else {
        bool found = false;
        for (auto& [k, kv] : kwargs) {
          if (k == pname) {
            v = kv;
            found = true;
          }
        }
        if (!found && def_expr) v = ev_.eval(*def_expr);
        if (!found && !def_expr) v = Value(Undefined{pname});
      }
      frame[pname] = std::move(v);
    }
    if (!caller_.is_undefined()) frame["caller"] = caller_;
    auto saved = std::move(ev_.scopes_);
    ev_.scopes_.clear();
    ev_.scopes_.push_back(saved[0]);                        // globals
    if (saved.size() > 1) ev_.scopes_.push_back(saved[1]);  // template-level names (macros, sets)
    ev_.scopes_.push_back(std::move(frame));
    PStr result;
    try {
      result = ev_.render_body_to_string(def_.body);
    } catch (...) {
      ev_.scopes_ = std::move(saved);
      --ev_.call_depth;
      throw;
    }
    ev_.scopes_ = std::move(saved);
    --ev_.call_depth;
    return Value(std::move(result));
  }
  std::string describe() const override { return "macro " + def_.text; }
  const Stmt& definition() const { return def_; }

 private:
  Evaluator& ev_;
  const Stmt& def_;
  Value caller_;
};

Value Evaluator::apply_filter_chain(const Expr& chain, Value input) {
  return apply_filter_chain_impl(*this, chain, std::move(input));
}

void Evaluator::error_at(size_t offset, const std::string& what) const {
  fail(ErrorCode::kTemplate, source_position(source_, name_, offset) + ": " + what);
}

void Evaluator::check_string_size(size_t bytes, size_t offset) const {
  if (bytes > limits_.max_output_bytes) output_limit_exceeded(offset);
}

void Evaluator::output_limit_exceeded(size_t offset) const {
  error_at(offset,
           "output size limit exceeded (" + std::to_string(limits_.max_output_bytes) + " bytes)");
}

PStr Evaluator::printed(const Value& v, size_t offset) {
  charge_steps(walk_cost(v), offset);
  try {
    return to_pstr(v, limits_.max_output_bytes);
  } catch (const std::length_error&) {
    output_limit_exceeded(offset);
  }
}

bool Evaluator::equal(const Value& a, const Value& b, size_t offset) {
  charge_steps(std::min(walk_cost(a), walk_cost(b)), offset);
  return values_equal(a, b);
}

void Evaluator::charge_steps(uint64_t n, size_t offset) {
  if (n > limits_.max_steps - steps_) {
    error_at(offset, "step limit exceeded (" + std::to_string(limits_.max_steps) +
                         " steps): the template loops too long");
  }
  steps_ += n;
}

Evaluator::~Evaluator() {
  for (const DictPtr& ns : namespaces_) ns->items.clear();
}

PStr Evaluator::render(const Body& body, std::unordered_map<std::string, Value> globals) {
  install_globals(globals);
  scopes_.clear();
  scopes_.push_back(std::move(globals));
  scopes_.emplace_back();  // template-level assignments
  return render_body_to_string(body);
}

PStr Evaluator::render_body_to_string(const Body& body) {
  PStr buffer;
  PStr* saved = out_;
  out_ = &buffer;
  try {
    exec_body(body);
  } catch (...) {
    out_ = saved;
    throw;
  }
  out_ = saved;
  return buffer;
}

void Evaluator::emit(const PStr& text, size_t offset) {
  check_string_size(out_->text.size() + text.text.size(), offset);
  out_->append(text);
}

Evaluator::Flow Evaluator::exec_body(const Body& body) {
  for (const StmtPtr& s : body) {
    Flow f = exec(*s);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

Evaluator::Flow Evaluator::exec(const Stmt& s) {
  charge_steps(1, s.offset);
  switch (s.kind) {
    case StmtKind::kText:
      emit(PStr::trusted(s.text), s.offset);
      return Flow::kNormal;
    case StmtKind::kPrint:
      emit(printed(eval(*s.expr), s.offset), s.offset);
      return Flow::kNormal;
    case StmtKind::kIf:
      for (const auto& [cond, body] : s.branches) {
        if (truthy(eval(*cond))) return exec_body(body);
      }
      return exec_body(s.else_body);
    case StmtKind::kFor:
      return exec_for(s);
    case StmtKind::kSet:
      exec_set(s);
      return Flow::kNormal;
    case StmtKind::kSetBlock:
      assign(s.names[0], Value(render_body_to_string(s.body)));
      return Flow::kNormal;
    case StmtKind::kMacro:
      define_macro(s);
      return Flow::kNormal;
    case StmtKind::kCallBlock:
      exec_call_block(s);
      return Flow::kNormal;
    case StmtKind::kFilterBlock: {
      Value body_text(render_body_to_string(s.body));
      emit(printed(apply_filter_chain(*s.expr, std::move(body_text)), s.offset), s.offset);
      return Flow::kNormal;
    }
    case StmtKind::kBreak:
      return Flow::kBreak;
    case StmtKind::kContinue:
      return Flow::kContinue;
    case StmtKind::kGeneration:
      return exec_body(s.body);
  }
  return Flow::kNormal;
}

Evaluator::Flow Evaluator::exec_for(const Stmt& s) {
  List items = iterate(*this, eval(*s.expr), s.offset);
  if (s.expr2) {  // `for x in xs if cond`: filter first, so loop.* counts the kept items
    List kept;
    for (Value& item : items) {
      scopes_.emplace_back();
      assign_targets(s.names, item, s.offset);
      const bool keep = truthy(eval(*s.expr2));
      scopes_.pop_back();
      if (keep) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec_body(s.else_body);
  const auto n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    charge_steps(1, s.offset);
    auto loop = std::make_shared<Dict>();
    loop->set(PStr::trusted("index"), Value(i + 1));
    loop->set(PStr::trusted("index0"), Value(i));
    loop->set(PStr::trusted("revindex"), Value(n - i));
    loop->set(PStr::trusted("revindex0"), Value(n - i - 1));
    loop->set(PStr::trusted("first"), Value(i == 0));
    loop->set(PStr::trusted("last"), Value(i == n - 1));
    loop->set(PStr::trusted("length"), Value(n));
    loop->set(PStr::trusted("depth"), Value(1));
    loop->set(PStr::trusted("depth0"), Value(0));
    loop->set(PStr::trusted("previtem"),
              i > 0 ? items[static_cast<size_t>(i - 1)] : Value(Undefined{"loop.previtem"}));
    loop->set(PStr::trusted("nextitem"),
              i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value(Undefined{"loop.nextitem"}));
    scopes_.emplace_back();
    scopes_.back()["loop"] = Value(std::move(loop));
    assign_targets(s.names, items[static_cast<size_t>(i)], s.offset);
    Flow f;
    try {
      f = exec_body(s.body);
    } catch (...) {
      scopes_.pop_back();
      throw;
    }
    scopes_.pop_back();
    if (f == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

void Evaluator::assign_targets(const std::vector<std::string>& names, const Value& v,
                               size_t offset) {
  if (names.size() == 1) {
    assign(names[0], v);
    return;
  }
  List parts = iterate(*this, v, offset);
  if (parts.size() != names.size()) {
    error_at(offset, "cannot unpack " + std::to_string(parts.size()) + " values into " +
                         std::to_string(names.size()) + " names");
  }
  for (size_t i = 0; i < names.size(); ++i) assign(names[i], parts[i]);
}

void Evaluator::exec_set(const Stmt& s) {
  Value v = eval(*s.expr);
  if (s.text.empty()) {
    assign_targets(s.names, v, s.offset);
    return;
  }
  Value target = lookup(s.names[0]);
  if (!target.is_namespace())
    error_at(s.offset,
             "cannot assign attribute '" + s.text + "' on '" + s.names[0] + "': not a namespace");
  target.dict().set(PStr::trusted(s.text), std::move(v));
}

void Evaluator::define_macro(const Stmt& s) {
  assign(s.text, Value(CallablePtr(std::make_shared<MacroCallable>(*this, s))));
}

void Evaluator::exec_call_block(const Stmt& s) {
  // `caller` is a macro whose body is the call block's body.
  Value caller(CallablePtr(std::make_shared<MacroCallable>(*this, s)));
  const Expr& call = *s.expr;
  Value callee = eval(*call.children[0]);
  if (!callee.is_callable()) error_at(s.offset, "'call' target is not callable");
  auto* macro = dynamic_cast<MacroCallable*>(std::get<CallablePtr>(callee.v).get());
  if (!macro) error_at(s.offset, "'call' target must be a macro");
  Callable::Args args;
  for (size_t i = 1; i < call.children.size(); ++i) args.push_back(eval(*call.children[i]));
  Callable::Kwargs kwargs;
  for (const auto& [k, x] : call.kwargs) kwargs.emplace_back(k, eval(*x));
  MacroCallable with_caller(*this, macro->definition(), caller);
  emit(printed(with_caller.call(std::move(args), std::move(kwargs)), s.offset), s.offset);
}

Value Evaluator::lookup(const std::string& name) const {
  for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
    auto found = it->find(name);
    if (found != it->end()) return found->second;
  }
  return Value(Undefined{name});
}

Value Evaluator::eval(const Expr& e) {
  charge_steps(1, e.offset);
  switch (e.kind) {
    case ExprKind::kLiteral:
      return e.literal;
    case ExprKind::kName:
      return lookup(e.name);
    case ExprKind::kList:
    case ExprKind::kTuple: {
      List items;
      for (const ExprPtr& c : e.children) items.push_back(eval(*c));
      return make_list(std::move(items));
    }
    case ExprKind::kDict: {
      auto d = std::make_shared<Dict>();
      for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
        Value k = eval(*e.children[i]);
        if (!k.is_string())
          error_at(e.children[i]->offset, "dict keys must be strings in this sandbox");
        d->set(k.str(), eval(*e.children[i + 1]));
      }
      return Value(std::move(d));
    }
    case ExprKind::kGetAttr:
      return get_attr(eval(*e.children[0]), e.name, e.offset);
    case ExprKind::kGetItem:
      return get_item(eval(*e.children[0]), eval(*e.children[1]), e.offset);
    case ExprKind::kSlice:
      return eval_slice(e);
    case ExprKind::kCall:
      return eval_call(e);
    case ExprKind::kFilter: {
      if (e.name == "default" || e.name == "d") {  // must see undefined without failing
        Value in = eval(*e.children[0]);
        const bool boolean = (e.children.size() > 2 && truthy(eval(*e.children[2]))) ||
                             (!e.kwargs.empty() && e.kwargs[0].first == "boolean" &&
                              truthy(eval(*e.kwargs[0].second)));
        if (in.is_undefined() || (boolean && !truthy(in))) {
          return e.children.size() > 1 ? eval(*e.children[1]) : Value(PStr{});
        }
        return in;
      }
      Value in = eval(*e.children[0]);
      Callable::Args args;
      for (size_t i = 1; i < e.children.size(); ++i) args.push_back(eval(*e.children[i]));
      Callable::Kwargs kwargs;
      for (const auto& [k, x] : e.kwargs) kwargs.emplace_back(k, eval(*x));
      return apply_filter(e.name, std::move(in), std::move(args), std::move(kwargs), e.offset);
    }
    case ExprKind::kTest: {
      Value in = eval(*e.children[0]);
      Callable::Args args;
      for (size_t i = 1; i < e.children.size(); ++i) args.push_back(eval(*e.children[i]));
      const bool r = apply_test(e.name, in, args, e.offset);
      return Value(e.negated ? !r : r);
    }
    case ExprKind::kUnary: {
      Value v = eval(*e.children[0]);
      if (e.name == "not") return Value(!truthy(v));
      if (v.is_int() || v.is_bool()) return e.name == "-" ? Value(-as_int(v)) : Value(as_int(v));
      if (v.is_float()) return e.name == "-" ? Value(-std::get<double>(v.v)) : v;
      error_at(e.offset, "bad operand type for unary " + e.name + ": '" + type_name(v) + "'");
    }
    case ExprKind::kBinary:
      return eval_binary(e);
    case ExprKind::kCond:
      if (truthy(eval(*e.children[0]))) return eval(*e.children[1]);
      return e.children[2] ? eval(*e.children[2]) : Value(Undefined{"conditional expression"});
  }
  return Value();
}

Value Evaluator::eval_call(const Expr& e) {
  Callable::Args args;
  for (size_t i = 1; i < e.children.size(); ++i) args.push_back(eval(*e.children[i]));
  Callable::Kwargs kwargs;
  for (const auto& [k, x] : e.kwargs) kwargs.emplace_back(k, eval(*x));
  const Expr& callee = *e.children[0];
  if (callee.kind == ExprKind::kGetAttr) {
    Value obj = eval(*callee.children[0]);
    if (obj.is_string() || obj.is_list() || obj.is_dict()) {
      return call_method(obj, callee.name, std::move(args), std::move(kwargs), e.offset);
    }
    Value fn = get_attr(obj, callee.name, callee.offset);
    if (!fn.is_callable()) error_at(e.offset, "'" + callee.name + "' is not callable");
    return std::get<CallablePtr>(fn.v)->call(std::move(args), std::move(kwargs));
  }
  Value fn = eval(callee);
  if (fn.is_undefined())
    error_at(e.offset, "'" + std::get<Undefined>(fn.v).name + "' is undefined");
  if (!fn.is_callable()) error_at(e.offset, "'" + type_name(fn) + "' object is not callable");
  return std::get<CallablePtr>(fn.v)->call(std::move(args), std::move(kwargs));
}

Value Evaluator::eval_binary(const Expr& e) {
  const std::string& op = e.name;
  if (op == "and") {
    Value l = eval(*e.children[0]);
    return truthy(l) ? eval(*e.children[1]) : l;
  }
  if (op == "or") {
    Value l = eval(*e.children[0]);
    return truthy(l) ? l : eval(*e.children[1]);
  }
  Value a = eval(*e.children[0]);
  Value b = eval(*e.children[1]);
  if (op == "~") {
    PStr s = printed(a, e.offset);
    s.append(printed(b, e.offset));
    check_string_size(s.text.size(), e.offset);
    return Value(std::move(s));
  }
  if (op == "==") return Value(equal(a, b, e.offset));
  if (op == "!=") return Value(!equal(a, b, e.offset));
  if (op == "<") return Value(compare(a, b, e.offset) < 0);
  if (op == ">") return Value(compare(a, b, e.offset) > 0);
  if (op == "<=") return Value(compare(a, b, e.offset) <= 0);
  if (op == ">=") return Value(compare(a, b, e.offset) >= 0);
  if (op == "in") return Value(contains(b, a, e.offset));
  if (op == "not in") return Value(!contains(b, a, e.offset));
  return arith(op, a, b, e.offset);
}

int Evaluator::compare(const Value& a, const Value& b, size_t offset) {
  if (a.is_number() && b.is_number()) {
    if (is_integral(a) && is_integral(b))
      return as_int(a) < as_int(b) ? -1 : as_int(a) > as_int(b) ? 1 : 0;
    const double x = a.as_double(), y = b.as_double();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string())
    return a.str().text.compare(b.str().text) < 0 ? -1 : a.str().text == b.str().text ? 0 : 1;
  if (a.is_list() && b.is_list()) {
    const List& x = a.list();
    const List& y = b.list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equal(x[i], y[i], offset)) return compare(x[i], y[i], offset);
    }
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  error_at(offset, "'<' not supported between instances of '" + type_name(a) + "' and '" +
                       type_name(b) + "'");
}

bool Evaluator::contains(const Value& container, const Value& item, size_t offset) {
  if (container.is_string()) {
    if (!item.is_string())
      error_at(offset, "'in <string>' requires string as left operand, not " + type_name(item));
    return container.str().text.find(item.str().text) != std::string::npos;
  }
  if (container.is_list()) {
    for (const Value& v : container.list()) {
      if (equal(v, item, offset)) return true;
    }
    return false;
  }
  if (container.is_dict())
    return item.is_string() && container.dict().find(item.str().text) != nullptr;
  if (container.is_undefined()) return false;
  error_at(offset, "argument of type '" + type_name(container) + "' is not iterable");
}

Value Evaluator::arith(const std::string& op, const Value& a, const Value& b, size_t offset) {
  if (a.is_undefined() || b.is_undefined()) {
    error_at(offset,
             "'" + std::get<Undefined>((a.is_undefined() ? a : b).v).name + "' is undefined");
  }
  if (op == "+" && a.is_string() && b.is_string()) {
    PStr s = a.str();
    s.append(b.str());
    check_string_size(s.text.size(), offset);
    return Value(std::move(s));
  }
  if (op == "+" && a.is_list() && b.is_list()) {
    List out = a.list();
    out.insert(out.end(), b.list().begin(), b.list().end());
    charge_steps(out.size(), offset);
    return make_list(std::move(out));
  }
  if (op == "*" && (a.is_string() || a.is_list()) && is_integral(b)) {
    const int64_t n = std::max<int64_t>(0, as_int(b));
    if (a.is_string()) {
      const size_t unit = a.str().text.size();
      if (unit > 0 && static_cast<uint64_t>(n) > limits_.max_output_bytes / unit)
        output_limit_exceeded(offset);
      PStr s;
      for (int64_t i = 0; i < n; ++i) s.append(a.str());
      return Value(std::move(s));
    }
    const size_t unit = a.list().size();
    if (unit > 0 && static_cast<uint64_t>(n) > steps_left() / unit)
      charge_steps(steps_left() + 1, offset);
    List out;
    for (int64_t i = 0; i < n; ++i) out.insert(out.end(), a.list().begin(), a.list().end());
    charge_steps(out.size(), offset);
    return make_list(std::move(out));
  }
  if (!a.is_number() || !b.is_number()) {
    error_at(offset, "unsupported operand type(s) for " + op + ": '" + type_name(a) + "' and '" +
                         type_name(b) + "'");
  }
  if (is_integral(a) && is_integral(b) && op != "/") {
    const int64_t x = as_int(a), y = as_int(b);
    int64_t r = 0;
    if (op == "+" && !__builtin_add_overflow(x, y, &r)) return Value(r);
    if (op == "-" && !__builtin_sub_overflow(x, y, &r)) return Value(r);
    if (op == "*" && !__builtin_mul_overflow(x, y, &r)) return Value(r);
    if (op == "//" || op == "%") {
      if (y == 0) error_at(offset, "integer division or modulo by zero");
      if (x == INT64_MIN && y == -1) error_at(offset, "integer overflow");
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {  // Python floors toward negative infinity
        q -= 1;
        m += y;
      }
      return Value(op == "//" ? q : m);
    }
    if (op == "**" && y >= 0) {
      int64_t acc = 1;
      for (int64_t i = 0; i < y; ++i) {
        if (__builtin_mul_overflow(acc, x, &acc)) error_at(offset, "integer overflow in '**'");
        if (acc == 0 || acc == 1) break;
      }
      if (acc == -1 || (x == -1)) acc = (y % 2 == 0) ? 1 : x;
      return Value(acc);
    }
    if (op != "**") error_at(offset, "integer overflow in '" + op + "'");
  }
  const double x = a.as_double(), y = b.as_double();
  if (op == "+") return Value(x + y);
  if (op == "-") return Value(x - y);
  if (op == "*") return Value(x * y);
  if (op == "**") return Value(std::pow(x, y));
  if (y == 0.0) error_at(offset, "division by zero");
  if (op == "/") return Value(x / y);
  if (op == "//") return Value(std::floor(x / y));
  if (op == "%") {
    double m = std::fmod(x, y);
    if (m != 0.0 && ((m < 0) != (y < 0))) m += y;
    return Value(m);
  }
  error_at(offset, "unknown operator '" + op + "'");
}

Value Evaluator::eval_slice(const Expr& e) {
  Value obj = eval(*e.children[0]);
  auto part = [&](int k, bool& given) -> int64_t {
    given = false;
    if (!e.children[k]) return 0;
    Value v = eval(*e.children[k]);
    if (v.is_none()) return 0;
    if (!is_integral(v)) error_at(e.offset, "slice indices must be integers or None");
    given = true;
    return as_int(v);
  };
  bool has_start, has_stop, has_step;
  int64_t start = part(1, has_start), stop = part(2, has_stop), step = part(3, has_step);
  if (!has_step) step = 1;
  if (step == 0) error_at(e.offset, "slice step cannot be zero");
  List items;
  std::vector<std::string> chars;
  const bool is_str = obj.is_string();
  if (is_str) {
    chars = code_points(obj.str().text);
  } else if (obj.is_list()) {
    items = obj.list();
  } else {
    error_at(e.offset, "'" + type_name(obj) + "' object is not subscriptable");
  }
  const auto n = static_cast<int64_t>(is_str ? chars.size() : items.size());
  auto clamp = [&](int64_t i, bool given, int64_t def) {
    if (!given) return def;
    if (i < 0) i += n;
    if (step > 0) return std::clamp<int64_t>(i, 0, n);
    return std::clamp<int64_t>(i, -1, n - 1);
  };
  start = clamp(start, has_start, step > 0 ? 0 : n - 1);
  stop = clamp(stop, has_stop, step > 0 ? n : -1);
  std::string s;
  List out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (is_str) {
      s += chars[static_cast<size_t>(i)];
    } else {
      out.push_back(items[static_cast<size_t>(i)]);
    }
  }
  if (is_str) return Value(obj.str().derived(std::move(s)));
  return make_list(std::move(out));
}

std::vector<std::string> code_points(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t len = 1;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0xF0)
      len = 4;
    else if (c >= 0xE0)
      len = 3;
    else if (c >= 0xC0)
      len = 2;
    len = std::min(len, s.size() - i);
    out.push_back(s.substr(i, len));
    i += len;
  }
  return out;
}

List iterate(Evaluator& ev, const Value& v, size_t offset) {
  if (v.is_list()) return v.list();
  if (v.is_undefined()) return {};
  if (v.is_dict()) {
    List keys;
    for (const auto& [k, val] : v.dict().items) keys.push_back(Value(k));
    return keys;
  }
  if (v.is_string()) {
    List out;
    for (std::string& c : code_points(v.str().text))
      out.push_back(Value(v.str().derived(std::move(c))));
    return out;
  }
  ev.error_at(offset, "'" + type_name(v) + "' object is not iterable");
}

}  // namespace autoglm::jinja

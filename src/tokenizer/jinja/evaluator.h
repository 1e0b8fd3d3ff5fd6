// Tree-walking evaluator for the Jinja AST with jinja2's scoping (for-loops and macros open a
// scope; `if` does not), sandbox limits (steps, output size, call depth) and provenance-aware
// output. Filters, tests and methods live in builtins.cpp. Thread ownership: one Evaluator per
// render call, used by that thread only.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/jinja/ast.h"

namespace autoglm::jinja {

struct EvalLimits {
  uint64_t max_steps = 2'000'000;      // node evaluations + loop iterations
  size_t max_output_bytes = 8u << 20;  // rendered text, and any single string built
  size_t max_call_depth = 64;          // nested macro calls
};

class Evaluator {
 public:
  Evaluator(std::string_view name, std::string_view source, const EvalLimits& limits)
      : name_(name), source_(source), limits_(limits) {}
  ~Evaluator();
  Evaluator(const Evaluator&) = delete;
  Evaluator& operator=(const Evaluator&) = delete;

  // Renders `body` with `globals` as the outermost scope.
  PStr render(const Body& body, std::unordered_map<std::string, Value> globals);

  [[noreturn]] void error_at(size_t offset, const std::string& what) const;
  void check_string_size(size_t bytes, size_t offset) const;
  [[noreturn]] void output_limit_exceeded(size_t offset) const;
  // Python str() within the output limit, charged by the nodes it walks.
  PStr printed(const Value& v, size_t offset);
  // Python ==, charged by the nodes it may walk.
  bool equal(const Value& a, const Value& b, size_t offset);
  void charge_steps(uint64_t n, size_t offset);
  uint64_t steps_left() const { return limits_.max_steps - steps_; }

  Value eval(const Expr& e);
  PStr render_body_to_string(const Body& body);  // for macros, set blocks, filter blocks

  // builtins.cpp
  Value apply_filter(const std::string& name, Value input, Callable::Args args,
                     Callable::Kwargs kwargs, size_t offset);
  bool apply_test(const std::string& name, const Value& input, const Callable::Args& args,
                  size_t offset);
  Value get_attr(const Value& obj, const std::string& attr, size_t offset);
  Value get_item(const Value& obj, const Value& key, size_t offset);
  Value call_method(const Value& obj, const std::string& method, Callable::Args args,
                    Callable::Kwargs kwargs, size_t offset);
  void install_globals(std::unordered_map<std::string, Value>& globals);

  size_t call_depth = 0;
  const EvalLimits& limits() const { return limits_; }

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  std::string_view name_;
  std::string_view source_;
  EvalLimits limits_;
  uint64_t steps_ = 0;
  std::vector<std::unordered_map<std::string, Value>> scopes_;
  PStr* out_ = nullptr;
  // Every namespace() of this render, held and then emptied when it ends: `set ns.x = ns` (or a
  // list or another namespace holding ns) is a reference cycle that shared ownership alone would
  // never free, and holding them keeps any destruction from recursing through a chain of them.
  std::vector<DictPtr> namespaces_;

  Flow exec_body(const Body& body);
  Flow exec(const Stmt& s);
  Flow exec_for(const Stmt& s);
  void exec_set(const Stmt& s);
  void define_macro(const Stmt& s);
  void exec_call_block(const Stmt& s);
  void emit(const PStr& text, size_t offset);
  Value apply_filter_chain(const Expr& chain, Value input);

  Value lookup(const std::string& name) const;
  void assign(const std::string& name, Value v) { scopes_.back()[name] = std::move(v); }
  void assign_targets(const std::vector<std::string>& names, const Value& v, size_t offset);

  Value eval_binary(const Expr& e);
  Value eval_call(const Expr& e);
  Value eval_slice(const Expr& e);
  Value arith(const std::string& op, const Value& a, const Value& b, size_t offset);
  int compare(const Value& a, const Value& b, size_t offset);
  bool contains(const Value& container, const Value& item, size_t offset);

  friend class MacroCallable;
};

// Iterating a value as jinja2 does (lists, dict keys, string characters); undefined is empty.
List iterate(Evaluator& ev, const Value& v, size_t offset);
// Splits UTF-8 text into code points (one string each), for indexing/slicing like Python.
std::vector<std::string> code_points(const std::string& s);

}  // namespace autoglm::jinja

// AST of the Jinja subset: generic expression and statement nodes produced by the parser and
// walked by the evaluator. Each node keeps its source offset for error messages.
// Thread ownership: immutable after parsing; a compiled template may be shared read-only.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace autoglm::jinja {

enum class ExprKind {
  kLiteral,  // literal
  kName,     // name
  kList,     // children
  kTuple,    // children (evaluates to a list)
  kDict,     // children: key0, value0, key1, value1...
  kGetAttr,  // children[0].name
  kGetItem,  // children[0][children[1]]
  kSlice,    // children[0][c1:c2:c3]; missing parts are nullptr
  kCall,     // children[0](children[1..], kwargs)
  kFilter,   // children[0] | name(children[1..], kwargs)
  kTest,     // children[0] is [not] name(children[1..])
  kUnary,    // name in {"-", "+", "not"} applied to children[0]
  kBinary,   // children[0] name children[1]; name is the operator
  kCond,     // children[1] if children[0] else children[2] (nullptr: undefined)
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;
struct Expr {
  ExprKind kind;
  size_t offset = 0;
  std::string name;
  Value literal;
  std::vector<ExprPtr> children;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  bool negated = false;
};

enum class StmtKind {
  kText,         // text (trusted template text)
  kPrint,        // {{ expr }}
  kIf,           // branches (cond, body); else_body
  kFor,          // names in expr [if expr2]: body; else_body
  kSet,          // names = expr, or names[0].attr = expr when attr is not empty
  kSetBlock,     // names[0] = rendered body
  kMacro,        // name(params) body
  kCallBlock,    // expr (a call) with `caller` = body taking params
  kFilterBlock,  // expr (a filter chain applied to the rendered body; children[0] is a placeholder)
  kBreak,
  kContinue,
  kGeneration,  // body rendered as-is (transformers' AssistantTracker)
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;
struct Stmt {
  StmtKind kind;
  size_t offset = 0;
  std::string text;  // kText content, kMacro name, kSet attribute
  ExprPtr expr;
  ExprPtr expr2;
  std::vector<std::string> names;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
  std::vector<std::pair<std::string, ExprPtr>> params;  // macro/caller params with defaults
};

}  // namespace autoglm::jinja

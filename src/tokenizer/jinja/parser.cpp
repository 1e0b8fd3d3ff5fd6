// Jinja parser (see parser.h): recursive descent following jinja2's grammar and operator
// precedence (or < and < not < comparisons < + - < ~ < * / // % < ** < unary < postfix/filters).
// Thread ownership: none.
#include "tokenizer/jinja/parser.h"

#include <charconv>
#include <cstdlib>
#include <set>

#include "core/error.h"

namespace autoglm::jinja {
namespace {

class Parser {
 public:
  Parser(const LexResult& lexed, std::string_view name, const ParseLimits& limits)
      : src_(lexed.source), toks_(lexed.tokens), name_(name), limits_(limits) {}

  Body parse_all() {
    Body body = parse_body({});
    if (cur().type != TokType::kEof) error("unexpected tag");
    return body;
  }

 private:
  std::string_view src_;
  const std::vector<Token>& toks_;
  std::string_view name_;
  ParseLimits limits_;
  size_t i_ = 0;
  size_t depth_ = 0;

  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > p.limits_.max_nesting) p.error("nesting depth limit exceeded");
    }
    ~DepthGuard() { --p.depth_; }
  };

  const Token& cur() const { return toks_[i_]; }
  const Token& peek(size_t k = 1) const { return toks_[std::min(i_ + k, toks_.size() - 1)]; }
  void advance() {
    if (i_ + 1 < toks_.size()) ++i_;
  }

  [[noreturn]] void error(const std::string& what) const {
    fail(ErrorCode::kTemplate, source_position(src_, name_, cur().offset) + ": " + what);
  }
  bool is_op(std::string_view op) const { return cur().type == TokType::kOp && cur().text == op; }
  bool is_name(std::string_view n) const { return cur().type == TokType::kName && cur().text == n; }
  void expect_op(std::string_view op) {
    if (!is_op(op)) error("expected '" + std::string(op) + "', got '" + describe(cur()) + "'");
    advance();
  }
  std::string expect_name() {
    if (cur().type != TokType::kName) error("expected a name, got '" + describe(cur()) + "'");
    std::string n = cur().text;
    advance();
    return n;
  }
  void expect_block_end() {
    if (cur().type != TokType::kBlockEnd)
      error("expected end of statement block, got '" + describe(cur()) + "'");
    advance();
  }
  static std::string describe(const Token& t) {
    switch (t.type) {
      case TokType::kEof:
        return "end of template";
      case TokType::kBlockEnd:
        return "%}";
      case TokType::kVarEnd:
        return "}}";
      case TokType::kText:
        return "text";
      default:
        return t.text;
    }
  }

  ExprPtr node(ExprKind kind, size_t offset) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->offset = offset;
    return e;
  }

  // ---- statements ----
  Body parse_body(const std::set<std::string>& end_tags) {
    DepthGuard guard(*this);
    Body body;
    while (cur().type != TokType::kEof) {
      const Token& t = cur();
      if (t.type == TokType::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kText;
        s->offset = t.offset;
        s->text = t.text;
        body.push_back(std::move(s));
        advance();
      } else if (t.type == TokType::kVarBegin) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kPrint;
        s->offset = t.offset;
        advance();
        s->expr = parse_tuple_or_expr();
        if (cur().type != TokType::kVarEnd) error("expected '}}', got '" + describe(cur()) + "'");
        advance();
        body.push_back(std::move(s));
      } else {
        const Token& kw = peek();
        if (kw.type == TokType::kName && end_tags.count(kw.text)) return body;
        advance();
        body.push_back(parse_statement());
      }
    }
    if (!end_tags.empty()) error("unexpected end of template, expected one of the end tags");
    return body;
  }

  // Consumes `{% name` for an end tag the caller expects.
  std::string take_end_tag() {
    advance();  // {%
    std::string n = expect_name();
    return n;
  }

  StmtPtr parse_statement() {
    const size_t offset = cur().offset;
    const std::string kw = expect_name();
    auto s = std::make_unique<Stmt>();
    s->offset = offset;
    if (kw == "if") return parse_if(std::move(s));
    if (kw == "for") return parse_for(std::move(s));
    if (kw == "set") return parse_set(std::move(s));
    if (kw == "macro") return parse_macro(std::move(s));
    if (kw == "call") return parse_call_block(std::move(s));
    if (kw == "filter") return parse_filter_block(std::move(s));
    if (kw == "generation") {
      s->kind = StmtKind::kGeneration;
      expect_block_end();
      s->body = parse_body({"endgeneration"});
      take_end_tag();
      expect_block_end();
      return s;
    }
    if (kw == "break" || kw == "continue") {
      s->kind = kw == "break" ? StmtKind::kBreak : StmtKind::kContinue;
      expect_block_end();
      return s;
    }
    if (kw == "include" || kw == "import" || kw == "from" || kw == "extends" || kw == "block") {
      i_ -= 1;
      error("'" + kw + "' is not allowed: templates cannot load other files in the sandbox");
    }
    i_ -= 1;
    error("unknown statement '" + kw + "'");
  }

  StmtPtr parse_if(StmtPtr s) {
    s->kind = StmtKind::kIf;
    ExprPtr cond = parse_tuple_or_expr();
    expect_block_end();
    while (true) {
      Body body = parse_body({"elif", "else", "endif"});
      s->branches.emplace_back(std::move(cond), std::move(body));
      const std::string tag = take_end_tag();
      if (tag == "elif") {
        cond = parse_tuple_or_expr();
        expect_block_end();
        continue;
      }
      expect_block_end();
      if (tag == "else") {
        s->else_body = parse_body({"endif"});
        take_end_tag();
        expect_block_end();
      }
      return s;
    }
  }

  void parse_targets(std::vector<std::string>& names) {
    const bool paren = is_op("(");
    if (paren) advance();
    names.push_back(expect_name());
    while (is_op(",")) {
      advance();
      if (cur().type != TokType::kName) break;
      names.push_back(expect_name());
    }
    if (paren) expect_op(")");
  }

  StmtPtr parse_for(StmtPtr s) {
    s->kind = StmtKind::kFor;
    parse_targets(s->names);
    if (!is_name("in")) error("expected 'in' in for loop");
    advance();
    s->expr = parse_tuple_or_expr(/*allow_cond=*/false);
    if (is_name("if")) {
      advance();
      s->expr2 = parse_expression();
    }
    if (is_name("recursive")) error("recursive loops are not supported");
    expect_block_end();
    s->body = parse_body({"endfor", "else"});
    if (take_end_tag() == "else") {
      expect_block_end();
      s->else_body = parse_body({"endfor"});
      take_end_tag();
    }
    expect_block_end();
    return s;
  }

  StmtPtr parse_set(StmtPtr s) {
    s->kind = StmtKind::kSet;
    parse_targets(s->names);
    if (s->names.size() == 1 && is_op(".")) {
      advance();
      s->text = expect_name();  // ns.attr = ...
    }
    if (cur().type == TokType::kBlockEnd && s->names.size() == 1 && s->text.empty()) {
      s->kind = StmtKind::kSetBlock;
      advance();
      s->body = parse_body({"endset"});
      take_end_tag();
      expect_block_end();
      return s;
    }
    expect_op("=");
    s->expr = parse_tuple_or_expr();
    expect_block_end();
    return s;
  }

  void parse_params(std::vector<std::pair<std::string, ExprPtr>>& params) {
    expect_op("(");
    while (!is_op(")")) {
      if (!params.empty()) expect_op(",");
      if (is_op(")")) break;
      std::string pname = expect_name();
      ExprPtr def;
      if (is_op("=")) {
        advance();
        def = parse_expression();
      }
      params.emplace_back(std::move(pname), std::move(def));
    }
    advance();
  }

  StmtPtr parse_macro(StmtPtr s) {
    s->kind = StmtKind::kMacro;
    s->text = expect_name();
    parse_params(s->params);
    expect_block_end();
    s->body = parse_body({"endmacro"});
    take_end_tag();
    expect_block_end();
    return s;
  }

  StmtPtr parse_call_block(StmtPtr s) {
    s->kind = StmtKind::kCallBlock;
    if (is_op("(")) parse_params(s->params);
    s->expr = parse_expression();
    if (s->expr->kind != ExprKind::kCall) error("expected a macro call after 'call'");
    expect_block_end();
    s->body = parse_body({"endcall"});
    take_end_tag();
    expect_block_end();
    return s;
  }

  StmtPtr parse_filter_block(StmtPtr s) {
    s->kind = StmtKind::kFilterBlock;
    ExprPtr placeholder = node(ExprKind::kLiteral, cur().offset);
    s->expr = parse_filters(std::move(placeholder), /*first_without_pipe=*/true);
    expect_block_end();
    s->body = parse_body({"endfilter"});
    take_end_tag();
    expect_block_end();
    return s;
  }

  // ---- expressions ----
  ExprPtr parse_tuple_or_expr(bool allow_cond = true) {
    const size_t offset = cur().offset;
    ExprPtr first = allow_cond ? parse_expression() : parse_or();
    if (!is_op(",")) return first;
    auto tuple = node(ExprKind::kTuple, offset);
    tuple->children.push_back(std::move(first));
    while (is_op(",")) {
      advance();
      if (cur().type == TokType::kBlockEnd || cur().type == TokType::kVarEnd || is_op(")")) break;
      tuple->children.push_back(allow_cond ? parse_expression() : parse_or());
    }
    return tuple;
  }

  ExprPtr parse_expression() {
    DepthGuard guard(*this);
    const size_t offset = cur().offset;
    ExprPtr expr = parse_or();
    while (is_name("if")) {
      advance();
      auto cond = node(ExprKind::kCond, offset);
      ExprPtr test = parse_or();
      ExprPtr otherwise;
      if (is_name("else")) {
        advance();
        otherwise = parse_expression();
      }
      cond->children.push_back(std::move(test));
      cond->children.push_back(std::move(expr));
      cond->children.push_back(std::move(otherwise));
      expr = std::move(cond);
    }
    return expr;
  }

  ExprPtr binary(std::string op, ExprPtr l, ExprPtr r, size_t offset) {
    auto b = node(ExprKind::kBinary, offset);
    b->name = std::move(op);
    b->children.push_back(std::move(l));
    b->children.push_back(std::move(r));
    return b;
  }

  ExprPtr parse_or() {
    const size_t offset = cur().offset;
    ExprPtr l = parse_and();
    while (is_name("or")) {
      advance();
      l = binary("or", std::move(l), parse_and(), offset);
    }
    return l;
  }
  ExprPtr parse_and() {
    const size_t offset = cur().offset;
    ExprPtr l = parse_not();
    while (is_name("and")) {
      advance();
      l = binary("and", std::move(l), parse_not(), offset);
    }
    return l;
  }
  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      auto u = node(ExprKind::kUnary, cur().offset);
      advance();
      u->name = "not";
      u->children.push_back(parse_not());
      return u;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    const size_t offset = cur().offset;
    ExprPtr l = parse_math1();
    while (true) {
      std::string op;
      if (cur().type == TokType::kOp &&
          (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == ">" ||
           cur().text == "<=" || cur().text == ">=")) {
        op = cur().text;
        advance();
      } else if (is_name("in")) {
        op = "in";
        advance();
      } else if (is_name("not") && peek().type == TokType::kName && peek().text == "in") {
        op = "not in";
        advance();
        advance();
      } else {
        return l;
      }
      l = binary(op, std::move(l), parse_math1(), offset);
    }
  }
  ExprPtr parse_math1() {
    const size_t offset = cur().offset;
    ExprPtr l = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = cur().text;
      advance();
      l = binary(op, std::move(l), parse_concat(), offset);
    }
    return l;
  }
  ExprPtr parse_concat() {
    const size_t offset = cur().offset;
    ExprPtr l = parse_math2();
    while (is_op("~")) {
      advance();
      l = binary("~", std::move(l), parse_math2(), offset);
    }
    return l;
  }
  ExprPtr parse_math2() {
    const size_t offset = cur().offset;
    ExprPtr l = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = cur().text;
      advance();
      l = binary(op, std::move(l), parse_pow(), offset);
    }
    return l;
  }
  ExprPtr parse_pow() {
    const size_t offset = cur().offset;
    ExprPtr l = parse_unary(true);
    while (is_op("**")) {
      advance();
      l = binary("**", std::move(l), parse_unary(true), offset);
    }
    return l;
  }
  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    const size_t offset = cur().offset;
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      e = node(ExprKind::kUnary, offset);
      e->name = cur().text;
      advance();
      e->children.push_back(parse_unary(false));
    } else {
      e = parse_postfix(parse_primary());
    }
    if (with_filter) e = parse_filters(std::move(e), false);
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    const size_t offset = t.offset;
    if (t.type == TokType::kName) {
      auto e = node(ExprKind::kLiteral, offset);
      if (t.text == "true" || t.text == "True") {
        e->literal = Value(true);
      } else if (t.text == "false" || t.text == "False") {
        e->literal = Value(false);
      } else if (t.text == "none" || t.text == "None") {
        e->literal = Value(nullptr);
      } else {
        e->kind = ExprKind::kName;
        e->name = t.text;
      }
      advance();
      return e;
    }
    if (t.type == TokType::kString) {
      std::string s;
      while (cur().type == TokType::kString) {  // adjacent literals concatenate
        s += cur().text;
        advance();
      }
      auto e = node(ExprKind::kLiteral, offset);
      e->literal = Value(PStr::trusted(std::move(s)));
      return e;
    }
    if (t.type == TokType::kInt || t.type == TokType::kFloat) return parse_number();
    if (is_op("(")) {
      advance();
      if (is_op(")")) {
        advance();
        return node(ExprKind::kTuple, offset);
      }
      ExprPtr inner = parse_tuple_or_expr();
      expect_op(")");
      return inner;
    }
    if (is_op("[")) return parse_list();
    if (is_op("{")) return parse_dict();
    error("unexpected '" + describe(t) + "'");
  }

  ExprPtr parse_number() {
    const Token& t = cur();
    auto e = node(ExprKind::kLiteral, t.offset);
    if (t.type == TokType::kInt) {
      int64_t v = 0;
      auto res = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
      if (res.ec != std::errc()) error("integer literal out of range");
      e->literal = Value(v);
    } else {
      e->literal = Value(std::strtod(t.text.c_str(), nullptr));
    }
    advance();
    return e;
  }

  ExprPtr parse_list() {
    auto e = node(ExprKind::kList, cur().offset);
    advance();
    while (!is_op("]")) {
      if (!e->children.empty()) expect_op(",");
      if (is_op("]")) break;
      e->children.push_back(parse_expression());
    }
    advance();
    return e;
  }

  ExprPtr parse_dict() {
    auto e = node(ExprKind::kDict, cur().offset);
    advance();
    while (!is_op("}")) {
      if (!e->children.empty()) expect_op(",");
      if (is_op("}")) break;
      e->children.push_back(parse_expression());
      expect_op(":");
      e->children.push_back(parse_expression());
    }
    advance();
    return e;
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      const size_t offset = cur().offset;
      if (is_op(".")) {
        advance();
        auto g = node(ExprKind::kGetAttr, offset);
        if (cur().type == TokType::kInt) {
          g->kind = ExprKind::kGetItem;
          g->children.push_back(std::move(e));
          g->children.push_back(parse_number());
          e = std::move(g);
          continue;
        }
        g->name = expect_name();
        g->children.push_back(std::move(e));
        e = std::move(g);
      } else if (is_op("[")) {
        advance();
        e = parse_subscript(std::move(e), offset);
      } else if (is_op("(")) {
        e = parse_call(std::move(e), offset);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr obj, size_t offset) {
    ExprPtr parts[3];
    int idx = 0;
    bool is_slice = false;
    while (!is_op("]")) {
      if (is_op(":")) {
        is_slice = true;
        if (++idx > 2) error("too many ':' in slice");
        advance();
        continue;
      }
      if (parts[idx]) error("expected ':' or ']' in subscript");
      parts[idx] = parse_expression();
    }
    advance();
    auto e = node(is_slice ? ExprKind::kSlice : ExprKind::kGetItem, offset);
    e->children.push_back(std::move(obj));
    if (!is_slice) {
      if (!parts[0]) error("empty subscript");
      e->children.push_back(std::move(parts[0]));
    } else {
      for (auto& p : parts) e->children.push_back(std::move(p));
    }
    return e;
  }

  void parse_args(Expr& call) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) expect_op(",");
      first = false;
      if (is_op(")")) break;
      if (cur().type == TokType::kName && peek().type == TokType::kOp && peek().text == "=") {
        std::string key = cur().text;
        advance();
        advance();
        call.kwargs.emplace_back(std::move(key), parse_expression());
      } else {
        if (!call.kwargs.empty()) error("positional argument after keyword argument");
        call.children.push_back(parse_expression());
      }
    }
    advance();
  }

  ExprPtr parse_call(ExprPtr callee, size_t offset) {
    auto c = node(ExprKind::kCall, offset);
    c->children.push_back(std::move(callee));
    parse_args(*c);
    return c;
  }

  ExprPtr parse_filters(ExprPtr e, bool first_without_pipe) {
    while (true) {
      const size_t offset = cur().offset;
      if (is_op("|") || first_without_pipe) {
        if (!first_without_pipe) advance();
        first_without_pipe = false;
        auto f = node(ExprKind::kFilter, offset);
        f->name = expect_name();
        while (is_op(".")) {  // dotted filter names: keep the last part
          advance();
          f->name = expect_name();
        }
        f->children.push_back(std::move(e));
        if (is_op("(")) parse_args(*f);
        e = std::move(f);
      } else if (is_name("is")) {
        advance();
        e = parse_test(std::move(e), offset);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_test(ExprPtr operand, size_t offset) {
    auto t = node(ExprKind::kTest, offset);
    if (is_name("not")) {
      t->negated = true;
      advance();
    }
    t->name = expect_name();
    t->children.push_back(std::move(operand));
    if (is_op("(")) {
      parse_args(*t);
    } else if ((cur().type == TokType::kName || cur().type == TokType::kString ||
                cur().type == TokType::kInt || cur().type == TokType::kFloat || is_op("[") ||
                is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and") && !is_name("if") &&
               !is_name("in") && !is_name("not") && !is_name("is")) {
      t->children.push_back(parse_postfix(parse_primary()));
    }
    return t;
  }
};

}  // namespace

Body parse_template(const LexResult& lexed, std::string_view name, const ParseLimits& limits) {
  return Parser(lexed, name, limits).parse_all();
}

}  // namespace autoglm::jinja

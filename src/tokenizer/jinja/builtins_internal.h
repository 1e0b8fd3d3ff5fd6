// Text helpers shared by builtins.cpp and filters.cpp: Python-compatible strip/split/case
// mapping/replace over UTF-8, and argument lookup. Thread ownership: none (pure functions).
#pragma once

#include <string>
#include <string_view>

#include "tokenizer/jinja/evaluator.h"

namespace autoglm::jinja {

bool is_py_space(char32_t c);
std::string py_strip(const std::string& s, const Value* chars, bool left, bool right);
std::string map_case(const std::string& s, int mode);  // 0 lower, 1 upper, 2 title, 3 capitalize
List py_split(const std::string& s, const Value* sep, int64_t maxsplit, const PStr& src);
std::string replace_all(const std::string& s, const std::string& from, const std::string& to,
                        int64_t count);
const Value* kwarg(const Callable::Kwargs& kwargs, std::string_view name);
const Value* arg_or_kwarg(const Callable::Args& args, size_t i, const Callable::Kwargs& kwargs,
                          std::string_view name);
bool is_known_method(const Value& obj, const std::string& name);

}  // namespace autoglm::jinja

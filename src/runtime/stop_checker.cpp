// See stop_checker.h.
#include "runtime/stop_checker.h"

#include <algorithm>

namespace autoglm {

std::string_view finish_reason_name(FinishReason reason) {
  return reason == FinishReason::kStop ? "stop" : "length";
}

StopStringMatcher::StopStringMatcher(std::vector<std::string> stop_strings)
    : stops_(std::move(stop_strings)) {}

size_t StopStringMatcher::hold_back_length() const {
  size_t longest_stop = 0;
  for (const std::string& s : stops_) longest_stop = std::max(longest_stop, s.size());
  const size_t max_tail = std::min(held_.size(), longest_stop > 0 ? longest_stop - 1 : 0);
  for (size_t k = max_tail; k > 0; --k) {
    const std::string_view tail = std::string_view(held_).substr(held_.size() - k);
    for (const std::string& s : stops_) {
      if (std::string_view(s).starts_with(tail)) return k;
    }
  }
  return 0;
}

StopStringMatcher::Result StopStringMatcher::push(std::string_view piece) {
  Result result;
  if (matched_) return result;
  held_.append(piece);
  // Earliest occurrence wins; among stops starting at the same byte, the first listed.
  size_t best_pos = std::string::npos;
  for (size_t i = 0; i < stops_.size(); ++i) {
    const size_t pos = held_.find(stops_[i]);
    if (pos < best_pos) {
      best_pos = pos;
      result.matched_index = i;
    }
  }
  if (result.matched_index) {
    matched_ = true;
    result.text = held_.substr(0, best_pos);
    held_.clear();
    return result;
  }
  const size_t keep = hold_back_length();
  result.text = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return result;
}

std::string StopStringMatcher::flush() {
  std::string out;
  out.swap(held_);
  return out;
}

StopChecker::StopChecker(const Tokenizer& tokenizer, const StopParams& params,
                         std::span<const int64_t> eos_token_ids)
    : params_(params),
      detok_(tokenizer, /*skip_special_tokens=*/true),
      matcher_(params.stop_strings) {
  validate(params_, static_cast<int64_t>(tokenizer.vocab_size()));
  stop_ids_ = params_.stop_token_ids;
  if (!params_.ignore_eos) {
    for (const int64_t id : eos_token_ids) stop_ids_.push_back(static_cast<int32_t>(id));
  }
}

bool StopChecker::is_stop_token(int32_t id) const {
  return std::find(stop_ids_.begin(), stop_ids_.end(), id) != stop_ids_.end();
}

StopChecker::Step StopChecker::finish(Step step, FinishReason reason) {
  // Bytes the detokenizer still holds (an unfinished character) go through the matcher too,
  // then whatever the matcher held back, since no stop string can complete any more.
  StopStringMatcher::Result last = matcher_.push(detok_.finish());
  step.text += last.text;
  if (last.matched_index) {
    step.stop = params_.stop_strings[*last.matched_index];
    reason = FinishReason::kStop;
  } else {
    step.text += matcher_.flush();
  }
  step.finish = reason;
  finished_ = true;
  return step;
}

StopChecker::Step StopChecker::push(int32_t id) {
  ++tokens_;
  Step step;
  if (is_stop_token(id)) {
    step.stop = "token:" + std::to_string(id);
    return finish(std::move(step), FinishReason::kStop);
  }
  StopStringMatcher::Result r = matcher_.push(detok_.push(static_cast<uint32_t>(id)));
  step.text = std::move(r.text);
  if (r.matched_index) {
    step.stop = params_.stop_strings[*r.matched_index];
    step.finish = FinishReason::kStop;
    finished_ = true;
    return step;
  }
  if (tokens_ >= params_.max_tokens) return finish(std::move(step), FinishReason::kLength);
  return step;
}

}  // namespace autoglm

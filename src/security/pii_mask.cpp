// See pii_mask.h. The scan is hand-written instead of std::regex: libstdc++'s std::regex is
// slow, backtracks, and recurses per character, so a long hostile input (a request body of
// digits or dots) can blow the stack. Here every matcher either runs a bounded number of
// characters ahead (phone, grouped card, IPv4: at most a few dozen) or is attempted once per
// maximal digit run or once per '@', so the whole pass is linear in the input.
//
// Two passes find spans, then one pass writes the output:
//   1. e-mail addresses, anchored on each '@' (local part backwards, domain forwards);
//   2. digit-based kinds, tried only where a digit run starts (a digit not preceded by a
//      digit), so nothing matches inside a longer run of digits.
// Overlaps are resolved in favour of the span that starts first (e-mail before digits).
// Thread ownership: pure functions, any thread.
#include "security/pii_mask.h"

#include <algorithm>
#include <iterator>
#include <vector>

namespace autoglm::security {
namespace {

struct Span {
  size_t begin;
  size_t end;
  const char* placeholder;
};

constexpr size_t npos = std::string_view::npos;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_local_char(char c) {
  return is_digit(c) || is_alpha(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}
bool is_label_char(char c) {
  return is_digit(c) || is_alpha(c) || c == '-';
}

size_t digit_run_end(std::string_view t, size_t pos) {
  while (pos < t.size() && is_digit(t[pos])) ++pos;
  return pos;
}
bool digit_at(std::string_view t, size_t pos) {
  return pos < t.size() && is_digit(t[pos]);
}

// --- e-mail -------------------------------------------------------------------------------

// Domain after '@' at `at`: dot-separated labels of [A-Za-z0-9-], at least two, the last one
// alphabetic and 2+ long. Returns the end, or npos. A trailing sentence dot is not included.
size_t email_domain_end(std::string_view t, size_t at) {
  size_t pos = at + 1;
  size_t end = npos;  // end of the last complete label that makes a valid domain
  size_t labels = 0;
  while (true) {
    const size_t label_begin = pos;
    bool alphabetic = true;
    while (pos < t.size() && is_label_char(t[pos])) alphabetic &= is_alpha(t[pos++]);
    if (pos == label_begin) break;  // empty label: stop at what was valid so far
    ++labels;
    if (labels >= 2 && alphabetic && pos - label_begin >= 2) end = pos;
    if (pos + 1 < t.size() && t[pos] == '.' && is_label_char(t[pos + 1])) {
      ++pos;
      continue;
    }
    break;
  }
  return end;
}

// `scan_floor` is where the previous '@' (or a span) ended: the local part cannot reach back
// past it, which keeps the backward scans linear overall.
void find_emails(std::string_view t, std::vector<Span>* spans) {
  size_t scan_floor = 0;
  for (size_t at = t.find('@'); at != npos; at = t.find('@', at + 1)) {
    size_t begin = at;
    while (begin > scan_floor && is_local_char(t[begin - 1])) --begin;
    while (begin < at && t[begin] == '.') ++begin;  // a local part cannot start with '.'
    const size_t end = begin < at && t[at - 1] != '.' ? email_domain_end(t, at) : npos;
    scan_floor = at + 1;
    if (end == npos) continue;
    spans->push_back({begin, end, "[EMAIL]"});
    scan_floor = end;
  }
}

// --- digits -------------------------------------------------------------------------------

// 1[3-9]\d{9} at `pos`, plain or grouped 3-4-4 with one repeated ' ' or '-'; the digits must
// not continue after it. Returns the end or npos.
size_t phone_end(std::string_view t, size_t pos) {
  if (!digit_at(t, pos) || t[pos] != '1' || !digit_at(t, pos + 1) || t[pos + 1] < '3') {
    return npos;
  }
  const size_t run = digit_run_end(t, pos);
  if (run - pos == 11) return run;
  if (run - pos != 3 || run >= t.size() || (t[run] != ' ' && t[run] != '-')) return npos;
  const char sep = t[run];
  const size_t mid = digit_run_end(t, run + 1);
  if (mid - run - 1 != 4 || mid >= t.size() || t[mid] != sep) return npos;
  const size_t last = digit_run_end(t, mid + 1);
  if (last - mid - 1 != 4) return npos;
  if (last + 1 < t.size() && t[last] == sep && is_digit(t[last + 1])) return npos;
  return last;
}

// +86 / 0086 (optionally followed by one ' ' or '-') then a phone; `pos` starts the run.
// Returns the phone's end, or npos; `*begin` becomes the prefix's start ('+' included).
size_t prefixed_phone_end(std::string_view t, size_t pos, size_t* begin) {
  size_t after;
  if (pos > 0 && t[pos - 1] == '+' && t.compare(pos, 2, "86") == 0) {
    *begin = pos - 1;
    after = pos + 2;
  } else if (t.compare(pos, 4, "0086") == 0) {
    *begin = pos;
    after = pos + 4;
  } else {
    return npos;
  }
  if (after < t.size() && (t[after] == ' ' || t[after] == '-') && digit_at(t, after + 1)) {
    ++after;
  }
  return phone_end(t, after);
}

bool luhn_valid(std::string_view digits) {
  int sum = 0;
  bool double_it = false;
  for (size_t i = digits.size(); i-- > 0;) {
    int d = digits[i] - '0';
    if (double_it) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
    double_it = !double_it;
  }
  return sum % 10 == 0;
}

// Card numbers written in groups of 3-6 digits with one repeated ' ' or '-' (4-4-4-4, 4-6-5,
// 4-4-4-4-3): 13-19 digits in all, passing Luhn, and not followed by a further group.
size_t grouped_card_end(std::string_view t, size_t pos) {
  std::string digits;
  size_t end = digit_run_end(t, pos);
  if (end - pos < 3 || end - pos > 6 || end >= t.size() || (t[end] != ' ' && t[end] != '-')) {
    return npos;
  }
  const char sep = t[end];
  digits.append(t.substr(pos, end - pos));
  while (end + 1 < t.size() && t[end] == sep && is_digit(t[end + 1])) {
    const size_t group_end = digit_run_end(t, end + 1);
    const size_t len = group_end - end - 1;
    if (len < 3 || len > 6 || digits.size() + len > 19) return npos;
    digits.append(t.substr(end + 1, len));
    end = group_end;
  }
  if (digits.size() < 13 || !luhn_valid(digits)) return npos;
  return end;
}

bool plausible_birth_date(std::string_view d) {  // YYYYMMDD
  const int year = std::stoi(std::string(d.substr(0, 4)));
  const int month = std::stoi(std::string(d.substr(4, 2)));
  const int day = std::stoi(std::string(d.substr(6, 2)));
  if (year < 1900 || year > 2099 || month < 1 || month > 12 || day < 1) return false;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return day <= kDays[month - 1] + (month == 2 && leap ? 1 : 0);
}

// GB 11643-1999: 17 digits (6 region, 8 birth date, 3 sequence) and a check character.
bool resident_id_valid(std::string_view id) {
  static constexpr int kWeights[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
  static constexpr char kCheck[] = "10X98765432";
  if (id[0] == '0' || !plausible_birth_date(id.substr(6, 8))) return false;
  int sum = 0;
  for (int i = 0; i < 17; ++i) sum += (id[i] - '0') * kWeights[i];
  const char check = id[17] == 'x' ? 'X' : id[17];
  return check == kCheck[sum % 11];
}

// 0-255 dotted quad starting at `pos`; not part of a longer dotted number sequence.
size_t ipv4_end(std::string_view t, size_t pos) {
  if (pos >= 2 && t[pos - 1] == '.' && is_digit(t[pos - 2])) return npos;
  size_t p = pos;
  for (int octet = 0; octet < 4; ++octet) {
    if (octet > 0) {
      if (p >= t.size() || t[p] != '.') return npos;
      ++p;
    }
    const size_t end = digit_run_end(t, p);
    if (end == p || end - p > 3) return npos;
    if (std::stoi(std::string(t.substr(p, end - p))) > 255) return npos;
    p = end;
  }
  if (p + 1 < t.size() && t[p] == '.' && is_digit(t[p + 1])) return npos;
  return p;
}

// The digit kinds for the digit run starting at `pos` (a digit not preceded by a digit).
Span match_digits(std::string_view t, size_t pos) {
  size_t begin = pos;
  if (size_t end = ipv4_end(t, pos); end != npos) return {pos, end, "[IP]"};
  if (size_t end = prefixed_phone_end(t, pos, &begin); end != npos) return {begin, end, "[PHONE]"};
  if (size_t end = phone_end(t, pos); end != npos) return {pos, end, "[PHONE]"};
  if (size_t end = grouped_card_end(t, pos); end != npos) return {pos, end, "[CARD]"};
  const size_t run = digit_run_end(t, pos);
  const size_t len = run - pos;
  if (len == 17 && run < t.size() && (t[run] == 'X' || t[run] == 'x') && !digit_at(t, run + 1) &&
      resident_id_valid(t.substr(pos, 18))) {
    return {pos, run + 1, "[ID]"};
  }
  if (len == 18 && resident_id_valid(t.substr(pos, 18))) return {pos, run, "[ID]"};
  if (len >= 13 && len <= 19 && luhn_valid(t.substr(pos, len))) return {pos, run, "[CARD]"};
  return {pos, run, nullptr};  // no match: the caller skips the whole run
}

void find_digit_kinds(std::string_view t, const std::vector<Span>& emails,
                      std::vector<Span>* spans) {
  size_t next_email = 0;
  size_t pos = 0;
  while (pos < t.size()) {
    while (next_email < emails.size() && emails[next_email].end <= pos) ++next_email;
    if (next_email < emails.size() && emails[next_email].begin <= pos) {
      pos = emails[next_email].end;  // digits inside an address are part of that address
      continue;
    }
    if (!is_digit(t[pos]) || (pos > 0 && is_digit(t[pos - 1]))) {
      ++pos;
      continue;
    }
    const Span span = match_digits(t, pos);
    if (span.placeholder != nullptr) spans->push_back(span);
    pos = std::max(span.end, pos + 1);
  }
}

}  // namespace

std::string mask_pii(std::string_view text) {
  std::vector<Span> emails;
  find_emails(text, &emails);
  std::vector<Span> digit_kinds;
  find_digit_kinds(text, emails, &digit_kinds);
  if (emails.empty() && digit_kinds.empty()) return std::string(text);
  std::vector<Span> spans;
  std::merge(emails.begin(), emails.end(), digit_kinds.begin(), digit_kinds.end(),
             std::back_inserter(spans),
             [](const Span& a, const Span& b) { return a.begin < b.begin; });
  std::string out;
  out.reserve(text.size());
  size_t copied = 0;
  for (const Span& span : spans) {
    if (span.begin < copied) continue;  // overlaps a span already written
    out.append(text.substr(copied, span.begin - copied));
    out.append(span.placeholder);
    copied = span.end;
  }
  out.append(text.substr(copied));
  return out;
}

std::string mask_pii_excerpt(std::string_view text, size_t max_bytes) {
  // A masked item shrinks at most 4.5x (18 ID digits become "[ID]"), so output byte
  // `max_bytes` comes from within the first 4.5 * max_bytes input bytes; masking 16x that many
  // means an item cut at the window's end can never reach the excerpt.
  const size_t window = max_bytes > text.size() / 16 ? text.size() : max_bytes * 16;
  std::string out = mask_pii(text.substr(0, window));
  if (out.size() <= max_bytes) return out;
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
  out.resize(cut);
  return out;
}

}  // namespace autoglm::security

// Masks personal data in free text before it can reach a log line (debug request logging,
// error echoes): mainland-China mobile numbers, 18-digit resident ID numbers (checksum
// verified), e-mail addresses, bank card numbers (Luhn verified) and IPv4 addresses.
// Thread ownership: pure function, any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace autoglm::security {

// Returns `text` with every match replaced by a typed placeholder ("[PHONE]", "[ID]",
// "[EMAIL]", "[CARD]", "[IP]"). Near-misses (a 12-digit number that fails Luhn, an ID with a
// wrong check digit, a digit run embedded in a longer one) are left alone.
std::string mask_pii(std::string_view text);

// mask_pii for a bounded log excerpt (debug request-body logging): masks a prefix of `text`
// large enough that no item is cut before the masker sees it whole, then cuts the result to at
// most `max_bytes` on a UTF-8 character boundary.
std::string mask_pii_excerpt(std::string_view text, size_t max_bytes);

}  // namespace autoglm::security

// See sequence.h.
#include "runtime/sequence.h"

#include <utility>

namespace autoglm {

Sequence::Sequence(SequenceRequest req, uint64_t arrival_order)
    : request(std::move(req)), arrival(arrival_order), tokens(request.prompt) {}

bool served_before(const Sequence& a, const Sequence& b) {
  if (a.request.priority != b.request.priority) return a.request.priority < b.request.priority;
  return a.arrival < b.arrival;
}

}  // namespace autoglm

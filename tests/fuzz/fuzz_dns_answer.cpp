// libFuzzer target: raw DNS answers into parse_srv_answer, and whatever it accepts on into
// the SRV ordering and the connection plan. See README.md for running it under clang; the
// normal (GCC) build links it with regression_main.cpp and runs the corpus plus
// deterministic mutations as the test fuzz_dns_answer_corpus.
#include <cstddef>
#include <cstdint>
#include <span>

#include "federation/dns/answer.hpp"
#include "federation/dns/plan.hpp"
#include "federation/dns/srv.hpp"

using namespace herald::federation::dns;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const SrvResult result = parse_srv_answer(std::span<const std::uint8_t>(data, size));

  // What the rest of the server relies on.
  if (result.status == Status::ok) {
    if (result.records.empty()) __builtin_trap();
    for (const SrvRecord& record : result.records) {
      if (record.target.empty()) __builtin_trap();
    }
  } else if (!result.records.empty() || result.error.empty()) {
    __builtin_trap();
  }

  // A deterministic "random" source derived from the input, so crashes reproduce.
  std::uint64_t state = size * 0x9E3779B97F4A7C15ull + 1;
  Random random = [&state](std::uint32_t bound) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<std::uint32_t>((state >> 33) % (static_cast<std::uint64_t>(bound) + 1));
  };
  const auto ordered = order_srv(result.records, random);
  if (ordered.size() != result.records.size()) __builtin_trap();
  for (std::size_t i = 1; i < ordered.size(); ++i) {
    if (ordered[i - 1].priority > ordered[i].priority) __builtin_trap();
  }
  const ConnectionPlan plan = connection_plan("example.org", result, result, random);
  if (plan.targets.empty() && plan.reason.empty()) __builtin_trap();
  return 0;
}

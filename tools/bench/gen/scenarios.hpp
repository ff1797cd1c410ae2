// The scenarios and what they share.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "server/net/asio.hpp"
#include "tools/bench/gen/client.hpp"
#include "tools/bench/gen/report.hpp"

namespace herald::bench {

// Checks the options of the chosen scenario beyond their types; throws UsageError.
void validate_scenario(const Options& options);
// The most connections the scenario has open at once (for the file descriptor check).
std::size_t connections_needed(const Options& options);
// Runs the chosen scenario; failures are recorded in `run` (run.fail), not thrown.
awaitable<void> run_scenario(Run& run);

awaitable<void> run_login(Run& run);
awaitable<void> run_idle(Run& run);
awaitable<void> run_messages(Run& run);
awaitable<void> run_fanout(Run& run);
awaitable<void> run_roster(Run& run);

// --- shared by the scenarios ---------------------------------------------------------------

// --timeout: the limit of each login and of each step.
std::chrono::milliseconds step_timeout(const Options& options);
// Counts a connection that ended without our asking as an error of kind "disconnected".
Client::EndHandler count_disconnects(Run& run);
// The median of a few values (NaN when empty).
double median(std::vector<double> values);
// A progress line on stderr (stdout carries only the summary).
void progress(const std::string& line);

}  // namespace herald::bench

// What a scenario produces and how it is written: the JSON report, the chart (gnuplot
// data and script, rendered to PNG when gnuplot is installed) and the summary line.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "tools/bench/gen/client.hpp"
#include "tools/bench/gen/json.hpp"
#include "tools/bench/gen/options.hpp"
#include "tools/bench/gen/stats.hpp"

namespace herald::bench {

// One chart: a table of numbers written to SCENARIO.dat and a gnuplot script drawing it.
struct Chart {
  std::string title;
  std::string xlabel;
  std::string ylabel;
  std::vector<std::string> columns;         // header of the .dat file
  std::vector<std::vector<double>> rows;
  std::vector<std::string> settings;        // extra gnuplot commands (log scales, ...)
  std::string plot;                         // the plot command; DATA stands for the data file
};

// The state of one run, filled in by the scenario.
struct Run {
  Run(const Options& o, Env& e) : options(o), env(e), meter(static_cast<int>(o.integer("server-pid"))) {}

  const Options& options;
  Env& env;
  Errors errors;
  Meter meter;
  Json results = Json::object();
  Json series = Json::object();
  Chart chart;
  bool has_chart = false;
  std::string summary;  // the key figures, one or a few lines for stdout
  bool completed = true;
  std::string failure;  // why the scenario could not complete

  void fail(std::string why) {
    if (completed) failure = std::move(why);
    completed = false;
  }
};

// The whole report: scenario, label, params, results, series, errors, generator, server.
Json report_json(const Run& run, const std::string& started_at);

// Writes DIR/SCENARIO.json and, when gnuplot is available, the chart. Problems with the
// chart are warnings on stderr; an unwritable JSON file throws std::runtime_error.
void write_outputs(const Run& run, const std::string& started_at, const std::filesystem::path& dir);

std::string iso8601_now();

}  // namespace herald::bench

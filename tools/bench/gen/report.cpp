#include "tools/bench/gen/report.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <stdexcept>

extern char** environ;

namespace herald::bench {
namespace {

// Runs a program found on PATH and waits for it; returns its exit status, or -1 when it
// could not be started. `quiet` sends its output to /dev/null.
int run_program(const std::vector<std::string>& argv, bool quiet) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (quiet) {
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  }
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  std::string_view rest(path);
  while (!rest.empty()) {
    const auto colon = rest.find(':');
    const std::string dir(rest.substr(0, colon));
    if (!dir.empty() && access((dir + "/" + program).c_str(), X_OK) == 0) return true;
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return false;
}

// A gnuplot single-quoted string: a quote is written twice.
std::string gp_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw std::runtime_error(fmt::format("cannot write {}", path.string()));
}

void write_chart(const Run& run, const std::filesystem::path& dir) {
  const Chart& chart = run.chart;
  const std::string name = run.options.scenario();
  // Absolute paths, so the script can be rerun from anywhere.
  const auto abs_dir = std::filesystem::absolute(dir);
  const auto dat = abs_dir / (name + ".dat");
  const auto gp = abs_dir / (name + ".gp");
  const auto png = abs_dir / (name + ".png");

  std::string data = "#";
  for (const auto& c : chart.columns) data += " " + c;
  data += "\n";
  for (const auto& row : chart.rows) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (i) data += ' ';
      data += std::isfinite(row[i]) ? fmt::format("{}", row[i]) : std::string("NaN");
    }
    data += '\n';
  }
  write_file(dat, data);

  if (!on_path("gnuplot")) {
    std::cerr << fmt::format("warning: gnuplot is not installed; no chart ({} and {} are written)\n", dat.string(),
                             gp.string());
  }
  // pngcairo draws better; plain png is the fallback of gnuplot builds without cairo.
  const bool cairo = on_path("gnuplot") && run_program({"gnuplot", "-e", "set terminal pngcairo"}, true) == 0;
  std::string title = chart.title;
  if (!run.options.text("label").empty()) title = run.options.text("label") + ": " + title;
  std::string script;
  script += fmt::format("set terminal {} size 900,540\n", cairo ? "pngcairo" : "png");
  script += fmt::format("set output {}\n", gp_quote(png.string()));
  script += fmt::format("set title {} noenhanced\n", gp_quote(title));
  script += fmt::format("set xlabel {}\n", gp_quote(chart.xlabel));
  script += fmt::format("set ylabel {}\n", gp_quote(chart.ylabel));
  script += "set grid\nset key top left\n";
  for (const auto& s : chart.settings) script += s + "\n";
  std::string plot = chart.plot;
  for (auto pos = plot.find("DATA"); pos != std::string::npos; pos = plot.find("DATA", pos)) {
    const std::string quoted = gp_quote(dat.string());
    plot.replace(pos, 4, quoted);
    pos += quoted.size();
  }
  script += plot + "\n";
  write_file(gp, script);

  if (!on_path("gnuplot")) return;
  if (run_program({"gnuplot", gp.string()}, false) != 0) {
    std::cerr << fmt::format("warning: gnuplot failed on {}; no chart\n", gp.string());
  }
}

}  // namespace

std::string iso8601_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Json report_json(const Run& run, const std::string& started_at) {
  Json j = Json::object();
  j["scenario"] = run.options.scenario();
  j["label"] = run.options.text("label");
  j["started_at"] = started_at;
  j["completed"] = run.completed;
  if (!run.completed) j["failure"] = run.failure;
  j["params"] = run.options.params();
  j["results"] = run.results;
  j["series"] = run.series;
  j["errors"] = run.errors.to_json();
  j["generator"] = run.meter.generator_json();
  j["server"] = run.meter.server_json();
  return j;
}

void write_outputs(const Run& run, const std::string& started_at, const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot create {}: {}", dir.string(), ec.message()));
  write_file(dir / (run.options.scenario() + ".json"), report_json(run, started_at).dump());
  if (run.has_chart) {
    try {
      write_chart(run, dir);
    } catch (const std::exception& e) {
      std::cerr << "warning: " << e.what() << "; no chart\n";
    }
  }
}

}  // namespace herald::bench

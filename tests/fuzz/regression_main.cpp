// Runs a libFuzzer target without libFuzzer (for GCC builds and CI): every file of the
// corpus directory given as argv[1], then deterministic mutations of them (every
// truncation, bit flips, interesting bytes, insertions and deletions, splices) and random
// buffers. A crash or sanitizer report fails the test; the seed is fixed so a failure
// reproduces.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

using Bytes = std::vector<std::uint8_t>;

std::size_t runs = 0;

void run(const Bytes& input) {
  // A copy in its own allocation so ASan sees reads past the end.
  Bytes copy(input);
  LLVMFuzzerTestOneInput(copy.empty() ? nullptr : copy.data(), copy.size());
  ++runs;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(argv[1])) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<Bytes> corpus;
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    corpus.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (corpus.empty()) {
    std::fprintf(stderr, "no corpus files in %s\n", argv[1]);
    return 2;
  }

  std::mt19937 rng(0x5EED2782u);
  auto below = [&rng](std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng() % n); };
  const std::uint8_t interesting[] = {0x00, 0x01, 0x3F, 0x40, 0x7F, 0x80, 0xC0, 0xC1, 0xFE, 0xFF};

  for (const Bytes& seed : corpus) {
    run(seed);
    for (std::size_t n = 0; n < seed.size(); ++n) run(Bytes(seed.begin(), seed.begin() + static_cast<std::ptrdiff_t>(n)));
    if (seed.empty()) continue;
    for (int i = 0; i < 400; ++i) {  // bit flips
      Bytes m = seed;
      for (std::size_t f = 0, flips = 1 + below(8); f < flips; ++f) m[below(m.size())] ^= static_cast<std::uint8_t>(1u << below(8));
      run(m);
    }
    for (int i = 0; i < 200; ++i) {  // interesting bytes (pointer/label-type markers, extremes)
      Bytes m = seed;
      for (std::size_t f = 0, count = 1 + below(3); f < count; ++f) m[below(m.size())] = interesting[below(sizeof interesting)];
      run(m);
    }
    for (int i = 0; i < 100; ++i) {  // insert or delete a run of bytes
      Bytes m = seed;
      const std::size_t at = below(m.size() + 1);
      if (rng() & 1) {
        m.insert(m.begin() + static_cast<std::ptrdiff_t>(at), 1 + below(16), static_cast<std::uint8_t>(rng()));
      } else if (at < m.size()) {
        m.erase(m.begin() + static_cast<std::ptrdiff_t>(at),
                m.begin() + static_cast<std::ptrdiff_t>(std::min(m.size(), at + 1 + below(16))));
      }
      run(m);
    }
    for (int i = 0; i < 50; ++i) {  // splice with another corpus entry
      const Bytes& other = corpus[below(corpus.size())];
      Bytes m(seed.begin(), seed.begin() + static_cast<std::ptrdiff_t>(below(seed.size() + 1)));
      m.insert(m.end(), other.begin() + static_cast<std::ptrdiff_t>(below(other.size() + 1)), other.end());
      run(m);
    }
  }
  for (int i = 0; i < 1000; ++i) {  // random buffers, some with a plausible response header
    Bytes m(below(600));
    for (auto& b : m) b = static_cast<std::uint8_t>(rng());
    if (m.size() >= 4 && (rng() & 1)) {
      m[2] = 0x81;
      m[3] = 0x80;
    }
    run(m);
  }
  std::printf("%zu inputs from %zu corpus files: no crash\n", runs, corpus.size());
  return 0;
}

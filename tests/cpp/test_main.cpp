#include "check.hpp"

namespace pyloop::test {

std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}
int failures_in_case = 0;

}  // namespace pyloop::test

int main() {
  int passed = 0;
  int failed = 0;
  for (auto& c : pyloop::test::registry()) {
    pyloop::test::failures_in_case = 0;
    c.body();
    if (pyloop::test::failures_in_case) {
      std::fprintf(stderr, "FAIL %s\n", c.name);
      ++failed;
    } else {
      ++passed;
    }
  }
  std::printf("runtime: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

// A minimal test harness: TEST(name) registers a case, CHECK(cond) records a
// failure and keeps going. test_main.cpp runs every case and prints
// "N passed, N failed".
#pragma once

#include <cstdio>
#include <functional>
#include <vector>

namespace pyloop::test {

struct Case {
  const char* name;
  std::function<void()> body;
};

std::vector<Case>& registry();
extern int failures_in_case;

struct Register {
  Register(const char* name, std::function<void()> body) { registry().push_back({name, std::move(body)}); }
};

}  // namespace pyloop::test

#define TEST(name)                                                            \
  static void name();                                                         \
  static ::pyloop::test::Register register_##name(#name, name);              \
  static void name()

#define CHECK(cond)                                                           \
  do {                                                                        \
    if (!(cond)) {                                                            \
      std::fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
      ++::pyloop::test::failures_in_case;                                     \
    }                                                                         \
  } while (0)

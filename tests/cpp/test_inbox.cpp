// Inbox and resolver: results of native work reach the loop thread through
// the inbox, waking its parker, and outlive a loop that is gone.
#include <chrono>
#include <memory>
#include <thread>

#include "check.hpp"
#include "pyloop/rt/inbox.hpp"
#include "pyloop/rt/resolver.hpp"

using namespace pyloop::rt;

TEST(resolver_posts_result_to_inbox_and_wakes_it) {
  auto inbox = std::make_shared<Inbox>();
  ResolveRequest request;
  request.host = "127.0.0.1";
  request.port = "8080";
  request.socktype = SOCK_STREAM;
  resolve(inbox, 7, request);
  ReadyEvent ready[4];
  CompletionPtr got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!got && std::chrono::steady_clock::now() < deadline) {
    inbox->parker.park(5.0, [&] { return !inbox->empty(); }, ready);
    inbox->drain([&](CompletionPtr c) { got = std::move(c); });
  }
  CHECK(got != nullptr);
  auto* result = dynamic_cast<ResolveResult*>(got.get());
  CHECK(result != nullptr);
  if (result) {
    CHECK(result->id == 7);
    CHECK(result->gai_error == 0);
    CHECK(!result->addresses.empty());
    CHECK(result->addresses.at(0).family == AF_INET);
  }
}

TEST(resolver_reports_getaddrinfo_errors) {
  auto inbox = std::make_shared<Inbox>();
  ResolveRequest request;
  request.host = "127.0.0.1";
  request.port = "no-such-service";
  resolve(inbox, 1, request);
  CompletionPtr got;
  ReadyEvent ready[4];
  while (!got) {
    inbox->parker.park(5.0, [&] { return !inbox->empty(); }, ready);
    inbox->drain([&](CompletionPtr c) { got = std::move(c); });
  }
  auto* result = dynamic_cast<ResolveResult*>(got.get());
  CHECK(result && result->gai_error != 0 && result->addresses.empty());
}

TEST(completions_outlive_a_dropped_inbox_owner) {
  // The loop's reference goes away first; the task's keeps the inbox alive,
  // and the undrained completion is freed with it.
  auto inbox = std::make_shared<Inbox>();
  std::weak_ptr<Inbox> watch = inbox;
  ResolveRequest request;
  request.host = "127.0.0.1";
  resolve(std::move(inbox), 3, request);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!watch.expired() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(watch.expired());
}

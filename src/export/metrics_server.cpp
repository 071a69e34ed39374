#include "export/metrics_server.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>

#include <fmt/format.h>

#if TRAINMETER_WITH_HTTPLIB
#include <httplib.h>

#endif

namespace trainmeter::detail {

#if TRAINMETER_WITH_HTTPLIB

namespace {
// A scrape is one short request: two worker threads are plenty, and bounded timeouts keep a
// client that sends or reads nothing from holding one for long.
constexpr std::size_t kWorkerThreads = 2;
constexpr time_t kTimeoutS = 2;
constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";
}  // namespace

struct MetricsServer::Impl {
  httplib::Server server;
};

bool metrics_server_available() noexcept {
  return true;
}

namespace {

// "" when a socket without SO_REUSEPORT can bind address:port, else the system's reason.
std::string port_taken(const std::string& address, std::uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
  addrinfo* list = nullptr;
  const std::string service = std::to_string(port);
  if (::getaddrinfo(address.c_str(), service.c_str(), &hints, &list) != 0 || list == nullptr)
    return "";  // httplib reports a bad address itself
  std::string reason;
  const int fd = ::socket(list->ai_family, list->ai_socktype | SOCK_CLOEXEC, list->ai_protocol);
  if (fd >= 0) {
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (::bind(fd, list->ai_addr, list->ai_addrlen) != 0 && errno == EADDRINUSE)
      reason = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(list);
  return reason;
}

}  // namespace

MetricsServer::MetricsServer() : impl_(std::make_unique<Impl>()) {}

std::string MetricsServer::start(const std::string& address, std::uint16_t port) noexcept {
  try {
    httplib::Server& s = impl_->server;
    s.new_task_queue = [] { return new httplib::ThreadPool(kWorkerThreads); };
    s.set_read_timeout(kTimeoutS, 0);
    s.set_write_timeout(kTimeoutS, 0);
    s.set_keep_alive_timeout(kTimeoutS);
    s.set_payload_max_length(4096);
    // httplib's default also sets SO_REUSEPORT, which lets a second process bind a port already
    // in use (and share its scrapes): keep SO_REUSEADDR only, so a taken port is an error.
    s.set_socket_options([](socket_t sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {  // not a report key
      std::shared_ptr<const std::string> text;
      {
        std::lock_guard<std::mutex> lock(text_mutex_);
        text = text_;
      }
      scrapes_.fetch_add(1, std::memory_order_relaxed);
      if (finishing_.load(std::memory_order_relaxed))
        finish_scrapes_.fetch_add(1, std::memory_order_relaxed);
      if (!text) {
        res.status = 503;
        res.set_content("trainmeter: no sample yet\n", "text/plain");
        return;
      }
      res.set_content(*text, kContentType);
    });
    // Whether the socket options above reach the listening socket depends on how the packaged
    // library was built (Debian's compiled libcpp-httplib may still set SO_REUSEPORT): a plain
    // bind first makes a port already taken an error either way.
    if (const std::string taken = port_taken(address, port); !taken.empty())
      return fmt::format("cannot listen on {}:{}: {}", address, port, taken);
    errno = 0;
    if (!s.bind_to_port(address.c_str(), port)) {
      const int err = errno;
      return fmt::format("cannot listen on {}:{}{}", address, port,
                         err != 0 ? std::string(": ") + std::strerror(err) : std::string());
    }
    thread_ = std::thread([this] { impl_->server.listen_after_bind(); });
    // httplib's stop() is a no-op until the listening loop has started: wait for it here, so
    // that a stop() right after start() cannot leave the thread listening forever.
    for (int i = 0; i < 2000 && !s.is_running(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return "";
  } catch (const std::exception& e) {
    return fmt::format("cannot start the metrics endpoint on {}:{}: {}", address, port, e.what());
  } catch (...) {
    return fmt::format("cannot start the metrics endpoint on {}:{}", address, port);
  }
}

void MetricsServer::stop() noexcept {
  if (!thread_.joinable()) return;
  for (int i = 0; i < 2000 && !impl_->server.is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  impl_->server.stop();
  thread_.join();
}

#else  // no HTTP library in this build

struct MetricsServer::Impl {};

bool metrics_server_available() noexcept {
  return false;
}

MetricsServer::MetricsServer() = default;

std::string MetricsServer::start(const std::string&, std::uint16_t) noexcept {
  return "this build has no HTTP library (cpp-httplib was not found at configure time)";
}

void MetricsServer::stop() noexcept {}

#endif

MetricsServer::~MetricsServer() {
  stop();
}

void MetricsServer::publish(std::string text) noexcept {
  try {
    auto next = std::make_shared<const std::string>(std::move(text));
    std::lock_guard<std::mutex> lock(text_mutex_);
    text_.swap(next);  // the old text is freed after the unlock, with `next`
  } catch (...) {
    // Out of memory: scrapes keep the previous text.
  }
}

}  // namespace trainmeter::detail

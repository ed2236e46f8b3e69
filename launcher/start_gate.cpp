#include "start_gate.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "instance_output.h"
#include "ipex/affinity/user_text.h"
#include "report_link.h"

namespace ipex::launcher {
namespace {

using Clock = std::chrono::steady_clock;

// A connection that has not sent its key by then is dropped.
constexpr std::chrono::seconds kKeyTimeout{10};
constexpr int kAnswerTimeoutMs = 1000;
constexpr std::size_t kMaxKeyLine = 256;
constexpr const char* kGoWord = "go";

struct Visitor {
    int fd;
    std::string text;
    Clock::time_point since;
};

}  // namespace

struct StartGate::State {
    std::optional<ReportListener> listener;
    std::string address, key;
    int verdict[2] = {-1, -1};
    int stop[2] = {-1, -1};  // closing the write end stops the thread
    std::thread thread;

    void run(const std::function<std::string()>& check);
    void answer_ranks();
};

void StartGate::State::run(const std::function<std::string()>& check) {
    sigset_t all;  // the launcher's main thread handles the signals
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, nullptr);
    std::string reason;
    try {
        reason = check();
    } catch (const std::exception& e) {
        reason = e.what();
    }
    const std::string line = (reason.empty() ? kGoWord : affinity::one_line(reason)) + "\n";
    write_fully(verdict[1], line.data(), line.size());
    if (!reason.empty()) {
        listener.reset();  // waiting ranks see the connection closed, later ones refused
        return;
    }
    answer_ranks();
}

// Every rank that sends the key gets "go"; anything else is hung up on.
void StartGate::State::answer_ranks() {
    std::vector<Visitor> visitors;
    std::vector<pollfd> fds;
    for (;;) {
        fds.assign({pollfd{stop[0], POLLIN, 0}, pollfd{listener->fd(), POLLIN, 0}});
        for (const auto& v : visitors) fds.push_back(pollfd{v.fd, POLLIN, 0});
        if (poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR) break;
        if (fds[0].revents) break;
        const auto now = Clock::now();
        std::vector<Visitor> still;
        for (std::size_t i = 0; i < visitors.size(); ++i) {
            Visitor& v = visitors[i];
            bool done = now - v.since > kKeyTimeout;
            if (fds[i + 2].revents && !done) {
                char buffer[kMaxKeyLine];
                const ssize_t n = recv(v.fd, buffer, sizeof buffer, 0);
                if (n > 0) v.text.append(buffer, static_cast<std::size_t>(n));
                const auto end = v.text.find('\n');
                if (end != std::string::npos && v.text.compare(0, end, key) == 0)
                    send_all(v.fd, std::string(kGoWord) + "\n", kAnswerTimeoutMs);
                done = end != std::string::npos || v.text.size() >= kMaxKeyLine || n == 0 ||
                       (n < 0 && errno != EAGAIN && errno != EINTR);
            }
            if (done)
                close(v.fd);
            else
                still.push_back(v);
        }
        visitors.swap(still);
        if (fds[1].revents)
            for (int fd; (fd = accept4(listener->fd(), nullptr, nullptr,
                                       SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;)
                visitors.push_back(Visitor{fd, "", now});
    }
    for (const auto& v : visitors) close(v.fd);
}

StartGate::StartGate(const std::string& host) : state_(std::make_unique<State>()) {
    state_->listener.emplace(host);
    state_->address = join_address(host, state_->listener->port());
    state_->key = random_key();
    if (pipe2(state_->verdict, O_CLOEXEC) != 0 || pipe2(state_->stop, O_CLOEXEC) != 0)
        throw std::runtime_error(std::string("cannot open the start gate: ") +
                                 std::strerror(errno));
}

StartGate::~StartGate() {
    if (state_->stop[1] >= 0) close(state_->stop[1]);
    if (state_->thread.joinable()) state_->thread.join();
    for (int fd : {state_->verdict[0], state_->verdict[1], state_->stop[0]})
        if (fd >= 0) close(fd);
}

allocator::Environment StartGate::variables() const {
    return {{kStartGateVariable, state_->address}, {kStartKeyVariable, state_->key}};
}

void StartGate::open_when(std::function<std::string()> check) {
    if (state_->thread.joinable()) return;
    state_->thread =
        std::thread([state = state_.get(), check = std::move(check)] { state->run(check); });
}

int StartGate::verdict_fd() const {
    return state_->verdict[0];
}

std::string await_start(int timeout_ms) {
    const char* gate = std::getenv(kStartGateVariable);
    if (!gate) return "";
    const std::string address = gate;
    const char* key_value = std::getenv(kStartKeyVariable);
    const std::string key = key_value ? key_value : "";
    unsetenv(kStartGateVariable);
    unsetenv(kStartKeyVariable);
    const auto [host, port] = split_address(address);
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    const std::string why_waiting = " to learn whether this rank may start";
    const int fd = connect_within(host, port, timeout_ms);
    if (fd < 0)
        return "cannot reach the launching ipexrun at " + address + why_waiting + " (" +
               std::strerror(errno) + ")";
    std::string answer;
    bool ended = !send_all(fd, key + "\n", timeout_ms);
    while (!ended && answer.find('\n') == std::string::npos && answer.size() < kMaxKeyLine) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        pollfd p{fd, POLLIN, 0};
        if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) == 0) {
            close(fd);
            return "the launching ipexrun at " + address + " did not answer within " +
                   std::to_string(timeout_ms / 1000) + " s" + why_waiting;
        }
        char buffer[64];
        const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) ended = true;
        if (n > 0) answer.append(buffer, static_cast<std::size_t>(n));
    }
    close(fd);
    if (answer.rfind(std::string(kGoWord) + "\n", 0) == 0) return "";
    return "the launching ipexrun at " + address +
           " did not let this rank start (its pre-flight check failed, or it has ended)";
}

}  // namespace ipex::launcher

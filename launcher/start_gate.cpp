#include "start_gate.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
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

void close_all(std::vector<int>& fds) {
    for (int fd : fds) close(fd);
    fds.clear();
}

}  // namespace

struct StartGate::State {
    std::optional<ReportListener> listener;
    std::string address, key;
    int ranks = 0;
    int verdict[2] = {-1, -1};
    int stop[2] = {-1, -1};     // closing the write end stops the thread
    int checked[2] = {-1, -1};  // the check's thread writes one byte when it is done
    std::thread thread, checker;
    std::string check_result;  // the check's, once `checked` says so

    void run(std::function<std::string()> check, std::chrono::milliseconds check_delay);
};

// Ranks that sent the key wait (their connections held open) until the gate opens: when
// every rank has come (each host has run its ranks, so it answers) or when the check, started
// after `check_delay` if they have not, passes. Then every rank gets "go", later ones at once.
// A failed check closes the port and every held connection.
void StartGate::State::run(std::function<std::string()> check,
                           std::chrono::milliseconds check_delay) {
    sigset_t all;  // the launcher's main thread handles the signals
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, nullptr);
    const auto check_at = Clock::now() + check_delay;
    std::vector<Visitor> visitors;  // connected, key not read yet
    std::vector<int> waiting;       // sent the key, wait for the word
    int came = 0;
    enum { kOpen, kUndecided, kShut } state = kUndecided;
    const auto decide = [&](const std::string& reason) {
        const std::string line = (reason.empty() ? kGoWord : affinity::one_line(reason)) + "\n";
        write_fully(verdict[1], line.data(), line.size());
        state = reason.empty() ? kOpen : kShut;
        for (int fd : waiting)
            if (state == kOpen) send_all(fd, std::string(kGoWord) + "\n", kAnswerTimeoutMs);
        close_all(waiting);
    };
    std::vector<pollfd> fds;
    while (state != kShut) {
        fds.assign({pollfd{stop[0], POLLIN, 0}, pollfd{listener->fd(), POLLIN, 0},
                    pollfd{checked[0], POLLIN, 0}});
        for (const auto& v : visitors) fds.push_back(pollfd{v.fd, POLLIN, 0});
        int timeout = 1000;
        if (state == kUndecided && !checker.joinable())
            timeout = static_cast<int>(std::max<long>(
                0, std::chrono::ceil<std::chrono::milliseconds>(check_at - Clock::now()).count()));
        if (poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) break;
        if (fds[0].revents) break;
        const auto now = Clock::now();
        if (state == kUndecided && !checker.joinable() && now >= check_at)
            checker = std::thread([this, check = std::move(check)] {
                try {
                    check_result = check();
                } catch (const std::exception& e) {
                    check_result = e.what();
                }
                const char done = 1;
                while (write(checked[1], &done, 1) < 0 && errno == EINTR) {
                }
            });
        if (fds[2].revents) {
            char done;
            if (read(checked[0], &done, 1) == 1 && state == kUndecided) decide(check_result);
            close(checked[0]);
            checked[0] = -1;  // poll skips it from now on
        }
        std::vector<Visitor> still;
        for (std::size_t i = 0; i < visitors.size() && state != kShut; ++i) {
            Visitor& v = visitors[i];
            bool done = now - v.since > kKeyTimeout;
            if (fds[i + 3].revents && !done) {
                char buffer[kMaxKeyLine];
                const ssize_t n = recv(v.fd, buffer, sizeof buffer, 0);
                if (n > 0) v.text.append(buffer, static_cast<std::size_t>(n));
                const auto end = v.text.find('\n');
                if (end != std::string::npos && v.text.compare(0, end, key) == 0) {
                    if (state == kOpen) {
                        send_all(v.fd, std::string(kGoWord) + "\n", kAnswerTimeoutMs);
                    } else {
                        waiting.push_back(v.fd);
                        if (++came >= ranks) decide("");
                        continue;
                    }
                }
                done = end != std::string::npos || v.text.size() >= kMaxKeyLine || n == 0 ||
                       (n < 0 && errno != EAGAIN && errno != EINTR);
            }
            if (done)
                close(v.fd);
            else
                still.push_back(v);
        }
        if (state == kShut) break;
        visitors.swap(still);
        if (fds[1].revents)
            for (int fd; (fd = accept4(listener->fd(), nullptr, nullptr,
                                       SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;)
                visitors.push_back(Visitor{fd, "", now});
    }
    for (const auto& v : visitors) close(v.fd);
    close_all(waiting);
    listener.reset();  // ranks still to come are refused
}

StartGate::StartGate(const std::string& host, int ranks) : state_(std::make_unique<State>()) {
    state_->listener.emplace(host);
    state_->address = join_address(host, state_->listener->port());
    state_->key = random_key();
    state_->ranks = ranks;
    for (int* fds : {state_->verdict, state_->stop, state_->checked})
        if (pipe2(fds, O_CLOEXEC) != 0)
            throw std::runtime_error(std::string("cannot open the start gate: ") +
                                     std::strerror(errno));
}

StartGate::~StartGate() {
    if (state_->stop[1] >= 0) close(state_->stop[1]);
    if (state_->thread.joinable()) state_->thread.join();
    if (state_->checker.joinable()) state_->checker.join();
    for (int fd : {state_->verdict[0], state_->verdict[1], state_->stop[0], state_->checked[0],
                   state_->checked[1]})
        if (fd >= 0) close(fd);
}

allocator::Environment StartGate::variables() const {
    return {{kStartGateVariable, state_->address}, {kStartKeyVariable, state_->key}};
}

void StartGate::open_when(std::function<std::string()> check,
                          std::chrono::milliseconds check_delay) {
    if (state_->thread.joinable()) return;
    state_->thread = std::thread([state = state_.get(), check = std::move(check), check_delay] {
        state->run(check, check_delay);
    });
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
    return await_start(address, key, timeout_ms);
}

std::string await_start(const std::string& address, const std::string& key, int timeout_ms) {
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

#include "report_collector.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <stdexcept>

#include "ipex/affinity/cpu_list.h"
#include "run_summary.h"

namespace ipex::launcher {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kProgressEvery{500};

void close_fd(int& fd) {
    if (fd >= 0) close(fd);
    fd = -1;
}

}  // namespace

ReportCollector::ReportCollector(const LaunchPlan& plan, CollectorSettings settings)
    : plan_(plan), settings_(std::move(settings)) {
    local_count_ = settings_.listen_fd >= 0 ? 0 : plan.instances.size();
    sources_.resize(local_count_);
    results_.resize(local_count_);
    fates_.resize(plan.instances.size());
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0)
        throw std::runtime_error(std::string("cannot create an eventfd: ") + std::strerror(errno));
    for (auto& s : sources_) {
        int pair[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
            const int error = errno;
            for (auto& other : sources_) close_fd(other.fd), close_fd(other.child_fd);
            close_fd(wake_fd_);
            throw std::runtime_error(std::string("cannot create a report socket: ") +
                                     std::strerror(error));
        }
        s.fd = pair[0];
        s.child_fd = pair[1];
        fcntl(s.fd, F_SETFL, fcntl(s.fd, F_GETFL) | O_NONBLOCK);
    }
}

ReportCollector::~ReportCollector() {
    if (thread_.joinable()) {
        stopping_ = true;
        const std::uint64_t one = 1;
        (void)!write(wake_fd_, &one, sizeof one);
        thread_.join();
    }
    for (auto& s : sources_) close_fd(s.fd), close_fd(s.child_fd);
    close_fd(wake_fd_);
}

int ReportCollector::fd_for(std::size_t instance) {
    return sources_.at(instance).child_fd;
}

void ReportCollector::started(std::size_t instance) {
    // Only the instance holds its end now, so its exit ends the stream.
    close_fd(sources_.at(instance).child_fd);
    std::lock_guard<std::mutex> lock(fate_mutex_);
    fates_.at(instance).started = true;
}

void ReportCollector::ended(std::size_t instance, int wait_status) {
    std::lock_guard<std::mutex> lock(fate_mutex_);
    fates_.at(instance).wait_status = wait_status;
}

void ReportCollector::start() {
    thread_ = std::thread([this] {
        sigset_t all;  // signals are the supervisor's business
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, nullptr);
        loop();
    });
}

void ReportCollector::handle(std::size_t i, ReportMessage& m) {
    Source& s = sources_[i];
    InstanceResult& r = results_[i];
    using Kind = ReportMessage::Kind;
    switch (m.kind) {
        case Kind::kRecords:
            // A program that never asks for the barrier is measuring already.
            if (s.state == State::kWaiting) s.state = State::kMeasuring;
            if (!measuring_since_) measuring_since_ = Clock::now();
            r.records.insert(r.records.end(), m.records.begin(), m.records.end());
            break;
        case Kind::kWindow:
            r.window = m.window;
            break;
        case Kind::kMeta:
            r.meta[m.key] = m.value;
            break;
        case Kind::kReady:
            if (s.state == State::kWaiting || s.state == State::kMeasuring) {
                s.state = State::kReady;
                if (!first_ready_) first_ready_ = Clock::now();
            }
            break;
        case Kind::kEnd:
            r.reported_end = true;
            break;
        case Kind::kHello:
            if (s.remote) {
                s.node = m.key;
                s.rank = std::stoi(m.value);
                s.cpus = m.cpus;
            }
            break;
        case Kind::kExit:
            if (s.remote) {  // the wrapper's word on how the rank's instance ended
                s.exit_code = m.code;
                s.status = m.value;
                if (s.state == State::kWaiting || s.state == State::kReady)
                    s.state = State::kClosed;
            }
            break;
        case Kind::kMalformed:
            if (r.malformed++ == 0) {
                r.first_error = m.error;
                spdlog::warn("{}: benchmark report: {}",
                             s.remote ? "rank " + (s.rank ? std::to_string(*s.rank) : "?")
                                      : instance_name(plan_.instances[i]),
                             m.error);
            }
            break;
    }
}

bool ReportCollector::read_source(std::size_t i) {
    Source& s = sources_[i];
    char buffer[64 * 1024];
    for (;;) {
        const ssize_t n = read(s.fd, buffer, sizeof buffer);
        if (n > 0) {
            for (auto& m : s.reader.feed(buffer, static_cast<std::size_t>(n))) handle(i, m);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return true;
        if (s.reader.pending() > 0) {
            InstanceResult& r = results_[i];
            if (r.malformed++ == 0) r.first_error = "the stream ended inside a line or frame";
        }
        s.state = State::kClosed;
        close_fd(s.fd);
        return false;
    }
}

void ReportCollector::accept_ranks() {
    for (;;) {
        const int fd = accept4(settings_.listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) return;  // EAGAIN: no more waiting; anything else: try again on the next poll
        Source s;
        s.fd = fd;
        s.remote = true;
        sources_.push_back(std::move(s));
        results_.emplace_back();
    }
}

bool ReportCollector::everyone_connected() const {
    return sources_.size() >= local_count_ + settings_.remote_ranks;
}

void ReportCollector::release_barrier(bool timed_out) {
    if (timed_out)
        spdlog::warn("benchmark: not every instance was ready after {} s; the ready ones start now",
                     settings_.barrier_timeout.count());
    for (auto& s : sources_) {
        if (s.state != State::kReady) continue;
        s.state = State::kReleased;
        (void)!send(s.fd, "go\n", 3, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    measuring_since_ = Clock::now();
}

void ReportCollector::draw_progress(bool last) {
    if (!settings_.progress) return;
    if (last) {
        if (progress_drawn_) (void)!write(STDERR_FILENO, "\r\033[K", 4);
        return;
    }
    if (!measuring_since_) return;
    double samples = 0;
    for (const auto& r : results_) samples += r.samples();
    const double elapsed = std::chrono::duration<double>(Clock::now() - *measuring_since_).count();
    const std::string line =
        "\r\033[Kipexrun: benchmark: " + std::to_string(static_cast<long long>(samples)) +
        " samples, " + fmt::format("{:.1f}", elapsed > 0 ? samples / elapsed : 0.0) +
        " samples/s, " + wall_time_text(elapsed);
    (void)!write(STDERR_FILENO, line.data(), line.size());
    progress_drawn_ = true;
}

void ReportCollector::loop() {
    std::vector<pollfd> fds;
    std::vector<std::size_t> owners;
    auto next_progress = Clock::now() + kProgressEvery;
    while (!stopping_) {
        fds.assign(1, pollfd{wake_fd_, POLLIN, 0});
        if (settings_.listen_fd >= 0) fds.push_back(pollfd{settings_.listen_fd, POLLIN, 0});
        const std::size_t first_source = fds.size();
        owners.clear();
        for (std::size_t i = 0; i < sources_.size(); ++i)
            if (sources_[i].fd >= 0) {
                fds.push_back(pollfd{sources_[i].fd, POLLIN, 0});
                owners.push_back(i);
            }
        int timeout = -1;
        const auto now = Clock::now();
        if (settings_.progress)
            timeout = static_cast<int>(std::max<long>(
                0, std::chrono::duration_cast<std::chrono::milliseconds>(next_progress - now)
                       .count()));
        if (first_ready_) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                *first_ready_ + settings_.barrier_timeout - now);
            const int ms = static_cast<int>(std::max<long>(0, left.count()) + 1);
            timeout = timeout < 0 ? ms : std::min(timeout, ms);
        }
        if (poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) break;
        for (std::size_t k = 0; k < owners.size(); ++k)
            if (fds[first_source + k].revents) read_source(owners[k]);
        if (settings_.listen_fd >= 0 && fds[1].revents) accept_ranks();

        bool any_ready = false, all_settled = everyone_connected();
        for (const auto& s : sources_) {
            any_ready |= s.state == State::kReady;
            all_settled &= s.state != State::kWaiting;
        }
        if (any_ready) {
            const bool timed_out = Clock::now() >= *first_ready_ + settings_.barrier_timeout;
            if (all_settled || timed_out) release_barrier(timed_out && !all_settled);
        }
        if (Clock::now() >= next_progress) {
            draw_progress(false);
            next_progress = Clock::now() + kProgressEvery;
        }
    }
    // The instances have ended: take what they left in the sockets, without waiting for
    // helpers that may still hold an end open.
    for (std::size_t i = 0; i < sources_.size(); ++i)
        if (sources_[i].fd >= 0) read_source(i);
    draw_progress(true);
}

std::vector<InstanceResult> ReportCollector::finish() {
    if (thread_.joinable()) {
        stopping_ = true;
        const std::uint64_t one = 1;
        (void)!write(wake_fd_, &one, sizeof one);
        thread_.join();
    }
    std::vector<InstanceResult> results;
    std::lock_guard<std::mutex> lock(fate_mutex_);
    for (std::size_t i = 0; i < local_count_; ++i) {
        InstanceResult r = std::move(results_[i]);
        r.index = plan_.instances[i].index;
        r.node = settings_.node;
        r.cpus = affinity::format_id_list(plan_.instances[i].cpus);
        r.started = fates_[i].started;
        if (fates_[i].wait_status) {
            r.status = status_text(*fates_[i].wait_status);
            r.exit_code = exit_code(*fates_[i].wait_status);
        } else if (r.started) {
            r.status = "unknown";
        }
        results.push_back(std::move(r));
    }
    // Ranks in rank order; those that never said who they are, or never connected, too.
    std::vector<InstanceResult> ranks;
    std::vector<bool> seen(settings_.remote_ranks, false);
    for (std::size_t i = local_count_; i < sources_.size(); ++i) {
        const Source& s = sources_[i];
        InstanceResult r = std::move(results_[i]);
        r.index = s.rank.value_or(-1);
        r.node = s.node.empty() ? "?" : s.node;
        r.cpus = s.cpus;
        r.started = true;
        r.exit_code = s.exit_code;
        r.status = s.exit_code ? s.status : "no exit status";
        if (s.rank && *s.rank >= 0 && static_cast<std::size_t>(*s.rank) < seen.size())
            seen[*s.rank] = true;
        ranks.push_back(std::move(r));
    }
    for (std::size_t rank = 0; rank < seen.size(); ++rank)
        if (!seen[rank]) {
            InstanceResult r;
            r.index = static_cast<int>(rank);
            r.node = "?";
            r.status = "never reported";
            ranks.push_back(std::move(r));
        }
    std::stable_sort(
        ranks.begin(), ranks.end(),
        [](const InstanceResult& a, const InstanceResult& b) { return a.index < b.index; });
    results.insert(results.end(), std::make_move_iterator(ranks.begin()),
                   std::make_move_iterator(ranks.end()));
    return results;
}

}  // namespace ipex::launcher

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
#include "report_link.h"
#include "run_summary.h"

namespace ipex::launcher {
namespace {

constexpr std::chrono::milliseconds kProgressEvery{500};
// Connections that have not said hello yet, beyond the ranks expected: more are refused.
constexpr std::size_t kSpareConnections = 16;

void close_fd(int& fd) {
    if (fd >= 0) close(fd);
    fd = -1;
}

int millis_until(std::chrono::steady_clock::time_point when) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        when - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<long>(0, left.count()) + 1);
}

std::string seconds_text(std::chrono::milliseconds d) {
    return fmt::format("{:g} s", d.count() / 1000.0);
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
    return instance < local_count_ ? sources_[instance].child_fd : -1;
}

void ReportCollector::started(std::size_t instance) {
    // Only the instance holds its end now, so its exit ends the stream.
    if (instance < local_count_) close_fd(sources_[instance].child_fd);
    std::lock_guard<std::mutex> lock(fate_mutex_);
    fates_.at(instance).started = true;
}

void ReportCollector::ended(std::size_t instance, int wait_status) {
    std::lock_guard<std::mutex> lock(fate_mutex_);
    fates_.at(instance).wait_status = wait_status;
}

void ReportCollector::rank_unreachable(int rank, const std::string& node) {
    {
        std::lock_guard<std::mutex> lock(fate_mutex_);
        unreachable_.emplace(rank, node);
    }
    const std::uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
}

void ReportCollector::start() {
    thread_ = std::thread([this] {
        sigset_t all;  // signals are the supervisor's business
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, nullptr);
        loop();
    });
}

std::string ReportCollector::hello_problem(const ReportMessage& hello) const {
    if (hello.kind != ReportMessage::Kind::kHello)
        return hello.kind == ReportMessage::Kind::kMalformed ? hello.error
                                                             : "it did not start with hello";
    if (hello.job_key != settings_.rank_key) return "the job key is wrong";
    const int rank = std::stoi(hello.value);  // the parser made it a whole number
    if (static_cast<std::size_t>(rank) >= settings_.remote_ranks)
        return "rank " + hello.value + " is not in this job of " +
               std::to_string(settings_.remote_ranks) + " ranks";
    if (ranks_seen_.count(rank)) return "rank " + hello.value + " has reported already";
    return "";
}

void ReportCollector::reject(std::size_t i, const std::string& why) {
    Source& s = sources_[i];
    close_fd(s.fd);
    s.rejected = true;
    s.state = State::kClosed;
    if (rejected_++ == 0)
        spdlog::warn("benchmark: refused a connection from {} to the report port: {}",
                     s.peer.empty() ? "?" : s.peer, why);
}

void ReportCollector::handle(std::size_t i, ReportMessage& m) {
    Source& s = sources_[i];
    InstanceResult& r = results_[i];
    using Kind = ReportMessage::Kind;
    if (s.remote && !s.identified) {
        if (const std::string problem = hello_problem(m); !problem.empty())
            return reject(i, problem);
        s.identified = true;
        s.node = m.key;
        s.rank = std::stoi(m.value);
        s.cpus = m.cpus;
        ranks_seen_.insert(*s.rank);
        last_arrival_ = Clock::now();
        return;
    }
    switch (m.kind) {
        case Kind::kRecords:
            // A program that never asks for the barrier is measuring already.
            if (s.state == State::kWaiting) s.state = State::kMeasuring;
            if (!measuring_since_) measuring_since_ = Clock::now();
            r.records.insert(r.records.end(), m.records.begin(), m.records.end());
            return;
        case Kind::kWindow:
            r.window = m.window;
            return;
        case Kind::kMeta:
            r.meta[m.key] = m.value;
            return;
        case Kind::kReady:
            if (s.state == State::kWaiting || s.state == State::kMeasuring) {
                s.state = State::kReady;
                if (!first_ready_) first_ready_ = Clock::now();
            }
            return;
        case Kind::kEnd:
            r.reported_end = true;
            return;
        case Kind::kExit:
            if (!s.remote) {  // only a rank's wrapper knows how its instance ended
                m.error = "unexpected 'exit' line";
                break;
            }
            s.exit_code = m.code;
            s.status = m.value;
            if (s.state == State::kWaiting || s.state == State::kReady) s.state = State::kClosed;
            return;
        case Kind::kHello:  // only once, first, from a rank's wrapper
            m.error = "unexpected 'hello' line";
            break;
        case Kind::kMalformed:
            break;
    }
    if (r.malformed++ == 0) {
        r.first_error = m.error;
        spdlog::warn("{}: benchmark report: {}",
                     s.remote ? "rank " + std::to_string(s.rank.value_or(-1))
                              : instance_name(plan_.instances[i]),
                     m.error);
    }
}

bool ReportCollector::read_source(std::size_t i) {
    char buffer[64 * 1024];
    for (;;) {
        Source& s = sources_[i];
        const ssize_t n = read(s.fd, buffer, sizeof buffer);
        if (n > 0) {
            for (auto& m : s.reader.feed(buffer, static_cast<std::size_t>(n))) {
                handle(i, m);
                if (s.fd < 0) return false;  // refused
            }
            // Before its hello a connection gets one line's worth of memory, not a frame's.
            if (s.remote && !s.identified && s.reader.pending() > ReportReader::kMaxLine) {
                reject(i, "it sent data before saying hello");
                return false;
            }
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return true;
        if (s.remote && !s.identified) {
            reject(i, n == 0 ? "it closed without saying hello" : std::strerror(errno));
            return false;
        }
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
        sockaddr_storage peer{};
        socklen_t size = sizeof peer;
        const int fd = accept4(settings_.listen_fd, reinterpret_cast<sockaddr*>(&peer), &size,
                               SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) return;  // EAGAIN: no more waiting; anything else: try again on the next poll
        Source s;
        s.fd = fd;
        s.remote = true;
        s.peer = peer_text(peer);
        s.accepted = Clock::now();
        const std::size_t strangers = static_cast<std::size_t>(
            std::count_if(sources_.begin(), sources_.end(),
                          [](const Source& o) { return o.remote && !o.identified && o.fd >= 0; }));
        sources_.push_back(std::move(s));
        results_.emplace_back();
        if (strangers >= settings_.remote_ranks + kSpareConnections)
            reject(sources_.size() - 1, "too many connections that have not said hello");
    }
}

// While some ranks have neither connected nor said they cannot, the barrier waits for them,
// but not longer than the grace after the last arrival.
bool ReportCollector::barrier_may_wait_for_more_ranks(Clock::time_point now) {
    if (settings_.listen_fd < 0 || gave_up_on_missing_) return false;
    std::vector<int> missing;
    {
        std::lock_guard<std::mutex> lock(fate_mutex_);
        for (std::size_t rank = 0; rank < settings_.remote_ranks; ++rank)
            if (!ranks_seen_.count(static_cast<int>(rank)) &&
                !unreachable_.count(static_cast<int>(rank)))
                missing.push_back(static_cast<int>(rank));
    }
    if (missing.empty()) return false;
    const auto since = last_arrival_ ? *last_arrival_ : *first_ready_;
    if (now < since + settings_.missing_rank_grace) return true;
    gave_up_on_missing_ = true;
    spdlog::warn("benchmark: rank(s) {} did not connect within {}; the others start without them",
                 affinity::format_id_list(missing), seconds_text(settings_.missing_rank_grace));
    return false;
}

std::optional<ReportCollector::Clock::time_point> ReportCollector::next_deadline() const {
    std::optional<Clock::time_point> next;
    auto consider = [&next](Clock::time_point t) {
        if (!next || t < *next) next = t;
    };
    if (first_ready_) {
        consider(*first_ready_ + settings_.barrier_timeout);
        if (settings_.listen_fd >= 0 && !gave_up_on_missing_)
            consider((last_arrival_ ? *last_arrival_ : *first_ready_) +
                     settings_.missing_rank_grace);
    }
    for (const auto& s : sources_)
        if (s.remote && !s.identified && s.fd >= 0) consider(s.accepted + settings_.hello_timeout);
    return next;
}

void ReportCollector::release_barrier(bool timed_out) {
    if (timed_out)
        spdlog::warn("benchmark: not every instance was ready after {}; the ready ones start now",
                     seconds_text(settings_.barrier_timeout));
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
        int timeout = settings_.progress ? millis_until(next_progress) : -1;
        if (const auto deadline = next_deadline()) {
            const int ms = millis_until(*deadline);
            timeout = timeout < 0 ? ms : std::min(timeout, ms);
        }
        if (poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) break;
        if (fds[0].revents) {
            std::uint64_t count;
            (void)!read(wake_fd_, &count, sizeof count);
        }
        for (std::size_t k = 0; k < owners.size(); ++k)
            if (fds[first_source + k].revents) read_source(owners[k]);
        if (settings_.listen_fd >= 0 && fds[1].revents) accept_ranks();

        const auto now = Clock::now();
        for (std::size_t i = 0; i < sources_.size(); ++i) {
            const Source& s = sources_[i];
            if (s.remote && !s.identified && s.fd >= 0 &&
                now >= s.accepted + settings_.hello_timeout)
                reject(i, "it said nothing for " + seconds_text(settings_.hello_timeout));
        }
        bool any_ready = false, all_settled = true;
        for (const auto& s : sources_) {
            if (s.remote && !s.identified) continue;  // strangers have no say
            any_ready |= s.state == State::kReady;
            all_settled &= s.state != State::kWaiting;
        }
        if (any_ready) {
            const bool timed_out = now >= *first_ready_ + settings_.barrier_timeout;
            const bool everyone = all_settled && !barrier_may_wait_for_more_ranks(now);
            if (everyone || timed_out) release_barrier(timed_out && !everyone);
        }
        if (now >= next_progress) {
            draw_progress(false);
            next_progress = Clock::now() + kProgressEvery;
        }
    }
    // The instances have ended: take what they left in the sockets, without waiting for
    // helpers that may still hold an end open; ranks' streams may still be on the way.
    for (std::size_t i = 0; i < sources_.size(); ++i)
        if (sources_[i].fd >= 0) read_source(i);
    drain_ranks();
    draw_progress(true);
}

void ReportCollector::drain_ranks() {
    const auto deadline = Clock::now() + settings_.drain_timeout;
    for (;;) {
        std::vector<pollfd> fds;
        std::vector<std::size_t> owners;
        for (std::size_t i = 0; i < sources_.size(); ++i) {
            const Source& s = sources_[i];
            if (s.remote && s.identified && s.fd >= 0 && !s.exit_code) {
                fds.push_back(pollfd{s.fd, POLLIN, 0});
                owners.push_back(i);
            }
        }
        if (fds.empty() || Clock::now() >= deadline) return;
        if (poll(fds.data(), fds.size(), millis_until(deadline)) <= 0) continue;
        for (std::size_t k = 0; k < owners.size(); ++k)
            if (fds[k].revents) read_source(owners[k]);
    }
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
    // Ranks in rank order; those that never connected too.
    std::vector<InstanceResult> ranks;
    for (std::size_t i = local_count_; i < sources_.size(); ++i) {
        const Source& s = sources_[i];
        if (!s.identified) continue;
        InstanceResult r = std::move(results_[i]);
        r.index = *s.rank;
        r.node = s.node;
        r.cpus = s.cpus;
        r.connected_from = s.peer;
        r.started = true;
        r.exit_code = s.exit_code;
        r.lost = !s.exit_code;  // the stream ended without the wrapper's last word
        r.status = s.exit_code ? s.status : "connection lost";
        ranks.push_back(std::move(r));
    }
    for (std::size_t rank = 0; rank < settings_.remote_ranks; ++rank) {
        if (ranks_seen_.count(static_cast<int>(rank))) continue;
        InstanceResult r;
        r.index = static_cast<int>(rank);
        const auto said = unreachable_.find(r.index);
        r.node = said != unreachable_.end() && !said->second.empty() ? said->second : "?";
        r.status = said != unreachable_.end() ? "could not connect" : "never connected";
        ranks.push_back(std::move(r));
    }
    std::stable_sort(
        ranks.begin(), ranks.end(),
        [](const InstanceResult& a, const InstanceResult& b) { return a.index < b.index; });
    results.insert(results.end(), std::make_move_iterator(ranks.begin()),
                   std::make_move_iterator(ranks.end()));
    if (rejected_ > 1)
        spdlog::warn("benchmark: {} connections to the report port were refused in all", rejected_);
    return results;
}

}  // namespace ipex::launcher

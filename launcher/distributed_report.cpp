#include "distributed_report.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "benchmark_run.h"
#include "ipex/affinity/cpu_list.h"
#include "run_summary.h"

namespace ipex::launcher {
namespace {

constexpr int kConnectTimeoutMs = 10000;

// Connects within the timeout; -1 (errno set) when no address of the host answers.
int connect_to(const std::string& host, const std::string& port) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0) {
        errno = EHOSTUNREACH;
        return -1;
    }
    int fd = -1;
    for (addrinfo* a = found; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        errno = 0;
        if (fd < 0) continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno == EINPROGRESS) {
            pollfd p{fd, POLLOUT, 0};
            int error = ETIMEDOUT;
            socklen_t size = sizeof error;
            if (poll(&p, 1, kConnectTimeoutMs) == 1)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
            if (error != 0) {
                close(fd);
                fd = -1;
                errno = error;
            }
        } else if (errno != 0 && errno != EISCONN) {
            const int error = errno;
            close(fd);
            fd = -1;
            errno = error;
        }
    }
    freeaddrinfo(found);
    // The instance gets this socket as it is: blocking, as a program writing with printf
    // expects (the Python API makes its own writes non-blocking).
    if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

void send_line(int fd, const std::string& line) {
    std::size_t done = 0;
    while (done < line.size()) {
        const ssize_t n = send(fd, line.data() + done, line.size() - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += static_cast<std::size_t>(n);
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            pollfd p{fd, POLLOUT, 0};
            if (poll(&p, 1, kConnectTimeoutMs) <= 0) return;
        } else {
            return;  // the launcher is gone: nobody to tell
        }
    }
}

std::string short_host_name() {
    char name[256] = {};
    gethostname(name, sizeof name - 1);
    std::string host = name;
    return host.substr(0, host.find('.'));
}

// Hands the connection to the rank's instance, then reports how the instance ended.
class RankReportLink : public InstanceObserver {
  public:
    explicit RankReportLink(int fd) : fd_(fd) {}
    ~RankReportLink() override {
        if (fd_ >= 0) close(fd_);
    }
    int fd_for(std::size_t instance) override { return instance == 0 ? fd_ : -1; }
    void ended(std::size_t instance, int wait_status) override {
        if (instance != 0 || fd_ < 0) return;
        send_line(fd_, "exit " + std::to_string(exit_code(wait_status)) + " " +
                           status_text(wait_status) + "\n");
        close(fd_);
        fd_ = -1;
    }

  private:
    int fd_;
};

}  // namespace

ReportListener::ReportListener() {
    fd_ = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in6 any6{};
    any6.sin6_family = AF_INET6;
    any6.sin6_addr = in6addr_any;
    const int off = 0;
    if (fd_ >= 0) setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);  // IPv4 too
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&any6), sizeof any6) != 0) {
        if (fd_ >= 0) close(fd_);
        fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);  // no IPv6 here
        sockaddr_in any4{};
        any4.sin_family = AF_INET;
        any4.sin_addr.s_addr = htonl(INADDR_ANY);
        if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&any4), sizeof any4) != 0)
            throw std::runtime_error(std::string("cannot open a port for benchmark reports: ") +
                                     std::strerror(errno));
    }
    if (listen(fd_, 256) != 0)
        throw std::runtime_error(std::string("cannot listen for benchmark reports: ") +
                                 std::strerror(errno));
    sockaddr_storage bound{};
    socklen_t size = sizeof bound;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&bound), &size);
    port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(bound).sin6_port
                                              : reinterpret_cast<sockaddr_in&>(bound).sin_port);
}

ReportListener::~ReportListener() {
    if (fd_ >= 0) close(fd_);
}

int run_distributed_benchmark(const LaunchOptions& options, const affinity::Topology& topology,
                              const allocator::Environment& env,
                              const DistributedLauncher& run_distributed) {
    if (options.dry_run) return run_distributed(options, topology, env, {});
    if (const std::string problem = prepare_report_dir(options.benchmark.report_dir);
        !problem.empty()) {
        spdlog::error("{}", problem);
        return 2;
    }
    std::optional<ReportListener> listener;
    try {
        listener.emplace();
    } catch (const std::runtime_error& e) {
        spdlog::error("{}", e.what());
        return 1;
    }
    // No host: each rank connects to its MASTER_ADDR, the machine this launcher runs on.
    const std::string address = ":" + std::to_string(listener->port());
    allocator::Environment with_address = env;
    with_address[kReportAddressVariable] = address;
    setenv(kReportAddressVariable, address.c_str(), 1);  // mpiexec passes it on to the ranks
    std::vector<std::string> command = {"ipexrun"};
    command.insert(command.end(), options.option_args.begin(), options.option_args.end());
    command.push_back(options.program);
    command.insert(command.end(), options.program_args.begin(), options.program_args.end());
    const JobRunner runner = [&](const LaunchPlan& job, const SupervisorOptions& supervise,
                                 int ranks) {
        BenchmarkRun run;
        run.options = &options;
        run.topology = &topology;
        run.command = command;
        run.report_dir = options.benchmark.report_dir;
        run.progress = true;
        run.listen_fd = listener->fd();
        run.remote_ranks = static_cast<std::size_t>(ranks);
        return run_benchmark(job, supervise, run).exit_code;
    };
    return run_distributed(options, topology, with_address, runner);
}

int run_reporting_rank(const LaunchPlan& plan, const SupervisorOptions& supervise,
                       const std::string& address) {
    const InstanceLaunch* instance = plan.instances.empty() ? nullptr : &plan.instances[0];
    const auto colon = address.rfind(':');
    std::string host = colon == std::string::npos ? "" : address.substr(0, colon);
    const std::string port = colon == std::string::npos ? address : address.substr(colon + 1);
    if (host.empty() && instance && instance->env.count("MASTER_ADDR"))
        host = instance->env.at("MASTER_ADDR");
    int fd = instance ? connect_to(host, port) : -1;
    if (fd < 0) {
        spdlog::warn(
            "cannot reach the launching ipexrun at {}:{} ({}); this rank's numbers "
            "will be missing from the report",
            host, port, std::strerror(errno));
        return run_plan(plan, supervise);
    }
    const auto rank = instance->env.find("RANK");
    send_line(fd,
              "hello " + short_host_name() + " " +
                  (rank != instance->env.end() ? rank->second : std::to_string(instance->index)) +
                  " " + affinity::format_id_list(instance->cpus) + "\n");
    RankReportLink link(fd);
    SupervisorOptions with_link = supervise;
    with_link.observer = &link;
    return run_plan(plan, with_link);
}

}  // namespace ipex::launcher

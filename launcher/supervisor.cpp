#include "supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "cleanup_watchdog.h"
#include "instance_output.h"
#include "ipex/affinity/cpu_list.h"
#include "ipex/affinity/user_text.h"
#include "log_files.h"
#include "log_format.h"
#include "orphan_sweep.h"
#include "run_summary.h"
#include "signals.h"
#include "spawner.h"

namespace ipex::launcher {

namespace {

using Clock = std::chrono::steady_clock;

// How long output is still collected once every instance has ended; only helpers that left
// the instance's process group can hold a pipe open that long.
constexpr std::chrono::milliseconds kDrainTime{500};

// How long the processes an instance leaves behind get to end by themselves (multiprocessing's
// resource tracker, torch's shared-memory manager: they clean up and exit once their parent is
// gone) before they are sent SIGTERM, and SIGKILL a grace period later.
constexpr std::chrono::milliseconds kLeftoverWait{500};

// The exit code of a run whose instances all succeeded but whose output did not all reach
// the log files.
constexpr int kLostOutputExitCode = 1;

struct Instance {
    const InstanceLaunch* plan = nullptr;
    pid_t pid = -1;
    int fds[2] = {-1, -1};  // stdout, stderr read ends; -1 once closed
    std::unique_ptr<InstanceOutput> output;
    Clock::time_point started, ended;
    bool running = false;
    std::string status = "not started";
    std::optional<int> code;  // exit code as the launcher reports it (128 + signal)
    bool log_failure_reported = false;
    // Once the instance's own process has ended, while its group still has processes in it:
    std::optional<Clock::time_point> group_term_at;  // SIGTERM what is left then
    std::optional<Clock::time_point> group_kill_at;  // and SIGKILL it then
    bool group_left() const { return group_term_at || group_kill_at; }
};

// The launcher's own messages: the caller's default logger (stderr) plus, with a log
// directory, the launcher's file. `file_only` writes the plan details to the file alone.
struct LauncherLog {
    std::shared_ptr<spdlog::logger> log;
    std::shared_ptr<spdlog::logger> file_only;
    // Why writing the launcher's file failed (first failure), empty while it works. Set by
    // the loggers' error handler, which replaces spdlog's own "LOG ERROR" line.
    std::shared_ptr<std::string> file_failure = std::make_shared<std::string>();
};

// "No space left on device" from spdlog's "Failed writing to file <path>: No space ...".
std::string failure_reason(const std::string& message) {
    const auto colon = message.rfind(": ");
    return colon == std::string::npos ? message : message.substr(colon + 2);
}

LauncherLog make_launcher_log(const std::string& file_path) {
    LauncherLog result;
    auto base = spdlog::default_logger();
    std::vector<spdlog::sink_ptr> sinks;
    if (base) sinks = base->sinks();
    if (!file_path.empty()) {
        auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file_path);
        file->set_formatter(
            std::make_unique<spdlog::pattern_formatter>("[%Y-%m-%d %H:%M:%S.%e] %l: %v"));
        sinks.push_back(file);
        result.file_only = std::make_shared<spdlog::logger>("ipexrun-file", file);
        result.file_only->flush_on(spdlog::level::trace);
    }
    result.log = std::make_shared<spdlog::logger>("ipexrun", sinks.begin(), sinks.end());
    if (base) result.log->set_level(base->level());
    result.log->flush_on(spdlog::level::info);
    const auto note_failure = [failure = result.file_failure](const std::string& message) {
        if (failure->empty()) *failure = failure_reason(message);
    };
    result.log->set_error_handler(note_failure);
    if (result.file_only) result.file_only->set_error_handler(note_failure);
    return result;
}

// Whether the open file `fd` no longer has a name (its folder or itself was removed): what is
// written to it is lost with it.
bool deleted(int fd) {
    struct stat info {};
    return fd >= 0 && fstat(fd, &info) == 0 && info.st_nlink == 0;
}

// A launcher started with a closed stdin/stdout/stderr would hand those numbers to pipes
// and log files, and a child's dup2 onto them would then go wrong.
void ensure_standard_fds() {
    for (int fd = 0; fd <= 2; ++fd)
        if (fcntl(fd, F_GETFD) < 0) open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
}

class Supervision {
  public:
    Supervision(const LaunchPlan& plan, const SupervisorOptions& options, LauncherLog log,
                MemoryPolicy memory, const RunLogFiles* files)
        : plan_(plan), options_(options), log_(std::move(log)), memory_(memory), files_(files) {}

    int run();

  private:
    int supervise();
    void end_everything_now();
    void start_all();
    void stop_others(int sig);
    void on_launcher_signal(int sig);
    void end_grace_now(int sig);
    bool take_signals();
    void read_output(Instance& in, int stream);
    void end_stream(Instance& in, int stream);
    void report_log_failure(Instance& in);
    void pass_on_terminal_failure(Instance& in, OutputStream stream);
    std::vector<std::string> lost_output() const;
    void reap();
    void finished(Instance& in, int wait_status);
    void end_leftovers(Clock::time_point now);
    void close_group(Instance& in);
    bool all_ended() const;
    bool any_group_left() const;
    bool all_output_closed() const;
    int poll_timeout() const;
    std::string summary() const;
    void read_verdict();
    void log_failure(const Instance& in);

    const LaunchPlan& plan_;
    const SupervisorOptions& options_;
    LauncherLog log_;
    MemoryPolicy memory_;
    const RunLogFiles* files_;
    SignalWatch signals_;
    OrphanAdoption adoption_;
    CleanupWatchdog watchdog_;
    std::vector<Instance> instances_;
    int first_failed_ = -1;                     // index into instances_
    int launcher_signal_ = 0;                   // first of SIGINT/SIGTERM/SIGHUP received
    bool stopping_ = false;                     // the instances have been told to stop
    bool hurried_ = false;                      // a second stop signal: SIGKILL, no grace
    std::optional<Clock::time_point> kill_at_;  // SIGKILL whatever still runs
    std::optional<Clock::time_point> drain_until_;
    enum class Verdict { kNone, kAwaited, kGo, kRefused };
    Verdict verdict_ = Verdict::kNone;
    std::string verdict_text_;
    int terminal_error_[2] = {0, 0};  // errno of the first failed write to stdout, stderr
};

void Supervision::start_all() {
    SpawnSettings settings;
    settings.bind = plan_.bind;
    settings.memory = memory_;
    // Instances lead their own process groups, i.e. they are background jobs: reading the
    // terminal would stop them (SIGTTIN). Input from a file or pipe is passed on.
    settings.stdin_null = isatty(STDIN_FILENO);
    settings.signals = &signals_;
    settings.run_id = run_id_value(std::getenv(kRunIdVariable), watchdog_.run_id());

    instances_.resize(plan_.instances.size());
    for (std::size_t i = 0; i < plan_.instances.size(); ++i) {
        Instance& in = instances_[i];
        in.plan = &plan_.instances[i];
        const int log_fd = files_ ? files_->instance_fds[i] : -1;
        const std::string name =
            in.plan->label.empty() ? std::to_string(in.plan->index) : in.plan->label;
        in.output = std::make_unique<InstanceOutput>(
            in.plan->raw_output ? std::string() : "[" + name + "] ", log_fd);
        if (options_.stderr_observer) in.output->observe_stderr(options_.stderr_observer);
        if (options_.start_verdict_fd >= 0) in.output->hold();
    }
    if (options_.start_verdict_fd >= 0) verdict_ = Verdict::kAwaited;
    for (std::size_t i = 0; i < plan_.instances.size(); ++i) {
        take_signals();
        if (launcher_signal_ || (first_failed_ >= 0 && !options_.keep_going)) break;
        Instance& in = instances_[i];
        settings.report_fd = options_.observer ? options_.observer->fd_for(i) : -1;
        SpawnedInstance spawned = spawn_instance(*in.plan, settings);
        in.started = in.ended = Clock::now();
        if (spawned.pid < 0) {
            // The launcher could not even fork: nothing more will start.
            log_.log->error("{}", spawned.error);
            in.code = 1;
            in.status = "not started";
            if (first_failed_ < 0) first_failed_ = static_cast<int>(i);
            stop_others(SIGTERM);
            break;
        }
        in.pid = spawned.pid;
        if (options_.observer) options_.observer->started(i);
        watchdog_.watch(in.pid);
        in.running = true;
        in.status = "running";
        in.fds[0] = spawned.stdout_fd;
        in.fds[1] = spawned.stderr_fd;
        if (log_.file_only) log_.file_only->info("{}: pid {}", instance_name(*in.plan), in.pid);
    }
    watchdog_.start();
}

void Supervision::stop_others(int sig) {
    stopping_ = true;
    if (!kill_at_) kill_at_ = Clock::now() + options_.grace;
    for (Instance& in : instances_) {
        if (in.running) {
            signal_group(in.pid, sig);
        } else if (in.group_term_at) {  // still waiting for it to end itself
            signal_group(in.pid, sig);
            in.group_term_at.reset();
            in.group_kill_at = kill_at_;
        }
    }
}

void Supervision::on_launcher_signal(int sig) {
    if (sig == SIGTSTP) {
        // Ctrl-Z: the instances are background groups and would not see it; stop them,
        // then stop the launcher itself the way the default action would have.
        for (Instance& in : instances_)
            if (in.running) signal_group(in.pid, SIGTSTP);
        raise(SIGSTOP);
        return;
    }
    if (sig == SIGCONT) {  // `fg`/`bg` continued the launcher's group only
        for (Instance& in : instances_)
            if (in.running) signal_group(in.pid, SIGCONT);
        return;
    }
    if (launcher_signal_) {  // the user insists (a second Ctrl-C)
        end_grace_now(sig);
        return;
    }
    launcher_signal_ = sig;
    log_.log->warn("received {}; passing it on to the instances", signal_name(sig));
    stop_others(sig);
    // Stopped instances could not act on it before the grace time ends.
    for (Instance& in : instances_)
        if (in.running) signal_group(in.pid, SIGCONT);
}

// A stop signal while the instances are already being stopped for an earlier one ends the
// grace period now: whatever still runs, left-over processes included, is killed.
void Supervision::end_grace_now(int sig) {
    if (hurried_) return;
    hurried_ = true;
    log_.log->warn("received {} while stopping; killing every instance now", signal_name(sig));
    const auto now = Clock::now();
    kill_at_ = now;
    for (Instance& in : instances_)
        if (in.group_left()) {
            in.group_term_at.reset();
            in.group_kill_at = now;
        }
}

// Acts on the signals that arrived; whether the user has insisted on stopping at once.
bool Supervision::take_signals() {
    for (int sig : signals_.take())  // SIGCHLD needs nothing here: the caller reaps
        if (sig != SIGCHLD) on_launcher_signal(sig);
    return hurried_;
}

void Supervision::read_output(Instance& in, int stream) {
    if (in.fds[stream] < 0) return;  // closed meanwhile (pass_on_terminal_failure)
    char buffer[64 * 1024];
    const ssize_t n = read(in.fds[stream], buffer, sizeof buffer);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    const auto kind = static_cast<OutputStream>(stream);
    if (n > 0) {
        in.output->add(kind, buffer, static_cast<std::size_t>(n));
        report_log_failure(in);
        pass_on_terminal_failure(in, kind);
        return;
    }
    end_stream(in, stream);  // end of file, or an error that ends this stream all the same
}

// Passes on an unfinished last line and closes the stream.
void Supervision::end_stream(Instance& in, int stream) {
    const auto kind = static_cast<OutputStream>(stream);
    in.output->finish(kind);
    report_log_failure(in);
    pass_on_terminal_failure(in, kind);
    if (in.fds[stream] >= 0) close(in.fds[stream]);
    in.fds[stream] = -1;
}

// The launcher's stdout or stderr refused the instances' output: its reader went away
// (`ipexrun ... | head -1`) or the device is full. With log files that is only the live view;
// without, the output has nowhere to go, so each instance's pipe is closed and the instance
// learns it as it would have writing there itself (SIGPIPE or EPIPE): an endless program
// does not keep the launcher running for nobody.
void Supervision::pass_on_terminal_failure(Instance& in, OutputStream kind) {
    const int stream = static_cast<int>(kind);
    const int error = in.output->terminal_error(kind);
    if (error == 0 || terminal_error_[stream] != 0) return;
    terminal_error_[stream] = error;
    const char* name = kind == OutputStream::kStdout ? "stdout" : "stderr";
    if (files_) {
        log_.log->warn(
            "the instances' output can no longer be shown on {} ({}); the log files "
            "still get all of it",
            name, terminal_error_text(error));
        return;
    }
    log_.log->error("the instances' output can no longer be written to {} ({}); closing their {}",
                    name, terminal_error_text(error), name);
    for (Instance& other : instances_)
        if (other.fds[stream] >= 0) {
            close(other.fds[stream]);
            other.fds[stream] = -1;
        }
}

// Output that cannot reach its log file is lost: said at once, and the run fails at the end.
// The instance keeps running, and the terminal still gets the output.
void Supervision::report_log_failure(Instance& in) {
    if (in.log_failure_reported || !in.output->log_error()) return;
    in.log_failure_reported = true;
    const std::size_t i = static_cast<std::size_t>(&in - instances_.data());
    log_.log->error("{}: writing its log {} failed ({}); the log is incomplete",
                    instance_name(*in.plan), files_->instance_paths[i],
                    std::strerror(in.output->log_error()));
}

// Where output went missing, as parts of one message: the log files that miss some
// ("incomplete log file: <path> (<reason>)") and, without log files, a terminal stream that
// refused it ("stdout could not be written (<reason>)").
std::vector<std::string> Supervision::lost_output() const {
    std::vector<std::string> logs;
    for (std::size_t i = 0; i < instances_.size(); ++i)
        if (instances_[i].output && instances_[i].output->log_error())
            logs.push_back(files_->instance_paths[i] + " (" +
                           std::strerror(instances_[i].output->log_error()) + ")");
        else if (files_ && deleted(files_->instance_fds[i]))
            logs.push_back(files_->instance_paths[i] + " (deleted during the run)");
    if (files_ && !log_.file_failure->empty())
        logs.push_back(files_->launcher_path + " (" + *log_.file_failure + ")");
    else if (struct stat info{}; files_ && stat(files_->launcher_path.c_str(), &info) != 0)
        logs.push_back(files_->launcher_path + " (" + std::strerror(errno) + ")");
    std::vector<std::string> parts;
    if (!logs.empty()) {
        std::string list;
        for (const auto& log : logs) list += (list.empty() ? "" : ", ") + log;
        parts.push_back(std::string("incomplete log file") + (logs.size() == 1 ? "" : "s") + ": " +
                        list);
    }
    for (int stream = 0; stream < 2 && !files_; ++stream)
        if (terminal_error_[stream])
            parts.push_back(std::string(stream == 0 ? "stdout" : "stderr") +
                            " could not be written (" +
                            terminal_error_text(terminal_error_[stream]) + ")");
    return parts;
}

void Supervision::finished(Instance& in, int wait_status) {
    in.running = false;
    in.ended = Clock::now();
    in.code = exit_code(wait_status);
    in.status = status_text(wait_status);
    // Whatever the instance left behind in its group has lost its reason to live: it gets a
    // moment to end by itself, then SIGTERM, then SIGKILL (end_leftovers). When the run is
    // stopping, the group has had the stop signal already.
    const auto now = Clock::now();
    if (!stopping_)
        in.group_term_at = now + kLeftoverWait;
    else
        in.group_kill_at = kill_at_ ? *kill_at_ : now;

    const int index = static_cast<int>(&in - instances_.data());
    if (options_.observer) options_.observer->ended(static_cast<std::size_t>(index), wait_status);
    if (*in.code == 0 || first_failed_ >= 0 || launcher_signal_ || verdict_ == Verdict::kRefused) {
        if (log_.file_only) log_.file_only->info("{}: {}", instance_name(*in.plan), in.status);
        return;
    }
    first_failed_ = index;
    if (verdict_ == Verdict::kNone || verdict_ == Verdict::kGo) log_failure(in);
    if (!options_.keep_going) stop_others(SIGTERM);
}

void Supervision::log_failure(const Instance& in) {
    if (options_.keep_going)
        log_.log->warn("{} failed ({}); the others keep running", instance_name(*in.plan),
                       in.status);
    else
        log_.log->warn("{} failed ({}){}", instance_name(*in.plan), in.status,
                       instances_.size() > 1 ? "; stopping the others" : "");
}

void Supervision::read_verdict() {
    char buffer[512];
    const ssize_t n = read(options_.start_verdict_fd, buffer, sizeof buffer);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n > 0) verdict_text_.append(buffer, static_cast<std::size_t>(n));
    const auto end = verdict_text_.find('\n');
    if (end == std::string::npos && n > 0) return;
    verdict_text_ = verdict_text_.substr(0, end);
    if (verdict_text_ == "go") {
        verdict_ = Verdict::kGo;
        if (options_.on_go) options_.on_go();
        for (Instance& in : instances_) in.output->release();
        if (first_failed_ >= 0) log_failure(instances_[first_failed_]);
        return;
    }
    verdict_ = Verdict::kRefused;
    if (verdict_text_.empty()) verdict_text_ = "the run was refused before it started";
    for (Instance& in : instances_) in.output->drop();
    stop_others(SIGTERM);
}

void Supervision::reap() {
    for (;;) {
        int wait_status = 0;
        const pid_t pid = waitpid(-1, &wait_status, WNOHANG);
        if (pid < 0 && errno == EINTR) continue;
        if (pid <= 0) return;
        // Adopted orphans are reaped here too and otherwise ignored.
        for (Instance& in : instances_)
            if (in.running && in.pid == pid) finished(in, wait_status);
    }
}

// Moves the groups of ended instances along: empty ones are done, the others get SIGTERM and
// then SIGKILL when their times come.
void Supervision::end_leftovers(Clock::time_point now) {
    for (Instance& in : instances_) {
        if (!in.group_left()) continue;
        // ESRCH: nothing is left (the launcher reaps adopted zombies before it gets here).
        if (kill(-in.pid, 0) != 0 && errno == ESRCH) {
            close_group(in);
        } else if (in.group_term_at && now >= *in.group_term_at) {
            if (verdict_ != Verdict::kRefused)
                log_.log->warn("{} left processes running; sending them SIGTERM",
                               instance_name(*in.plan));
            signal_group(in.pid, SIGTERM);
            signal_group(in.pid, SIGCONT);
            in.group_term_at.reset();
            in.group_kill_at = now + options_.grace;
        } else if (in.group_kill_at && now >= *in.group_kill_at) {
            if (!launcher_signal_ && verdict_ != Verdict::kRefused)
                log_.log->warn(
                    "processes left by {} did not stop within the grace period; "
                    "killing them",
                    instance_name(*in.plan));
            signal_group(in.pid, SIGKILL);
            close_group(in);
        }
    }
}

void Supervision::close_group(Instance& in) {
    in.group_term_at.reset();
    in.group_kill_at.reset();
    watchdog_.forget(in.pid);
}

bool Supervision::any_group_left() const {
    return std::any_of(instances_.begin(), instances_.end(),
                       [](const Instance& in) { return in.group_left(); });
}

bool Supervision::all_ended() const {
    return std::none_of(instances_.begin(), instances_.end(),
                        [](const Instance& in) { return in.running; });
}

bool Supervision::all_output_closed() const {
    return std::all_of(instances_.begin(), instances_.end(),
                       [](const Instance& in) { return in.fds[0] < 0 && in.fds[1] < 0; });
}

int Supervision::poll_timeout() const {
    std::optional<Clock::time_point> next = kill_at_;
    const auto sooner = [&next](const std::optional<Clock::time_point>& t) {
        if (t && (!next || *t < *next)) next = t;
    };
    sooner(drain_until_);
    for (const Instance& in : instances_) {
        sooner(in.group_term_at);
        sooner(in.group_kill_at);
    }
    if (!next) return -1;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(*next - Clock::now());
    return static_cast<int>(std::max<long>(0, left.count()));
}

std::string Supervision::summary() const {
    std::vector<SummaryRow> rows;
    for (std::size_t i = 0; i < instances_.size(); ++i) {
        const Instance& in = instances_[i];
        SummaryRow row;
        row.index = in.plan->index;
        row.cpus = in.plan->cpus;
        row.nodes = memory_nodes_text(*in.plan, plan_.bind, memory_);
        row.status = in.status;
        if (static_cast<int>(i) == first_failed_) row.status += " (first failure)";
        if (in.output && in.output->log_error()) row.status += "; log incomplete";
        if (in.pid > 0)
            row.wall_seconds = std::chrono::duration<double>(in.ended - in.started).count();
        rows.push_back(std::move(row));
    }
    return summary_table(rows);
}

// An error in the middle of the run (out of memory, an observer that failed) ends it at once,
// and nothing it started outlives it.
int Supervision::run() {
    try {
        return supervise();
    } catch (const std::exception& e) {
        log_.log->error("{}; ending every instance now", error_text(e));
        end_everything_now();
        return 1;
    }
}

void Supervision::end_everything_now() {
    for (Instance& in : instances_)
        if (in.running || in.group_left()) signal_group(in.pid, SIGKILL);
    watchdog_.finish();  // before the sweep below, which would take it for an orphan
    end_adopted_children(std::chrono::milliseconds(0), options_.grace);
}

int Supervision::supervise() {
    start_all();
    std::vector<pollfd> fds;
    std::vector<std::pair<Instance*, int>> owners;  // fds[k + 1] belongs to owners[k]
    for (;;) {
        reap();
        take_signals();

        const auto now = Clock::now();
        if (kill_at_ && now >= *kill_at_) {
            for (Instance& in : instances_)
                if (in.running) {
                    if (verdict_ != Verdict::kRefused && !hurried_)
                        log_.log->warn("{} did not stop within the grace period; killing it",
                                       instance_name(*in.plan));
                    signal_group(in.pid, SIGKILL);
                    watchdog_.forget(in.pid);
                }
            kill_at_.reset();
        }
        end_leftovers(now);
        if (all_ended() && !any_group_left() &&
            (verdict_ != Verdict::kAwaited || launcher_signal_)) {
            kill_at_.reset();
            if (all_output_closed()) break;
            if (!drain_until_) drain_until_ = now + kDrainTime;
            if (now >= *drain_until_) break;
        }

        fds.assign(1, pollfd{signals_.fd(), POLLIN, 0});
        if (verdict_ == Verdict::kAwaited)
            fds.push_back(pollfd{options_.start_verdict_fd, POLLIN, 0});
        const std::size_t first_output = fds.size();
        owners.clear();
        for (Instance& in : instances_)
            for (int s = 0; s < 2; ++s)
                if (in.fds[s] >= 0) {
                    fds.push_back(pollfd{in.fds[s], POLLIN, 0});
                    owners.emplace_back(&in, s);
                }
        const int ready = poll(fds.data(), fds.size(), poll_timeout());
        if (ready < 0 && errno != EINTR) {
            log_.log->error("poll failed: {}", std::strerror(errno));
            break;
        }
        if (ready > 0 && first_output == 2 && fds[1].revents) read_verdict();
        for (std::size_t k = 0; ready > 0 && k < owners.size(); ++k)
            if (fds[k + first_output].revents) read_output(*owners[k].first, owners[k].second);
    }
    if (verdict_ == Verdict::kAwaited)  // interrupted before the verdict: nothing is lost
        for (Instance& in : instances_) in.output->release();

    // Output still open belongs to helpers that escaped their group; they die below.
    for (Instance& in : instances_)
        for (int s = 0; s < 2; ++s)
            if (in.fds[s] >= 0) end_stream(in, s);
    watchdog_.finish();  // before the sweep below, which would take it for an orphan
    // A stop signal meanwhile counts as it does in the loop; a second one kills at once.
    const int orphans =
        end_adopted_children(kLeftoverWait, options_.grace, [this] { return take_signals(); });
    if (verdict_ == Verdict::kRefused) {  // nothing of the user's ran: the reason is all
        log_.log->error("{}", verdict_text_);
        return 1;
    }
    if (orphans > 0)
        log_.log->warn("stopped {} process{} that had left the instances' process groups", orphans,
                       orphans == 1 ? "" : "es");
    for (Instance& in : instances_) {
        report_log_failure(in);
        for (const auto kind : {OutputStream::kStdout, OutputStream::kStderr})
            pass_on_terminal_failure(in, kind);  // held output passed on late
    }

    if (plan_.summary) {
        const std::string table = summary();
        write_to_terminal(STDERR_FILENO, table.data(), table.size());
        if (log_.file_only) log_.file_only->info("{}", table.substr(0, table.size() - 1));
    }
    const std::vector<std::string> lost = lost_output();
    if (!lost.empty()) {
        std::string text;
        for (const auto& part : lost) text += (text.empty() ? "" : "; ") + part;
        log_.log->error("output was lost: {}", text);
    }
    if (launcher_signal_) return 128 + launcher_signal_;
    if (first_failed_ < 0) return lost.empty() ? 0 : kLostOutputExitCode;
    const int code = *instances_[first_failed_].code;
    if (options_.on_failure) options_.on_failure(code);
    return code;
}

// The plan in the launcher's file; the terminal has had it from the caller already.
void log_plan(const LauncherLog& log, const LaunchPlan& plan, const RunLogFiles& files) {
    if (!log.file_only) return;
    for (const auto& warning : plan.warnings) log.file_only->warn("{}", warning);
    if (!plan.python.empty())
        log.file_only->info("Python interpreter {} ({})", plan.python, plan.python_source);
    for (std::size_t i = 0; i < plan.instances.size(); ++i) {
        const InstanceLaunch& in = plan.instances[i];
        std::string argv;
        for (const auto& arg : in.argv)
            argv += (argv.empty() ? "" : " ") + affinity::shell_quote(arg);
        std::string env;
        for (const auto& [name, value] : in.env)
            env += (env.empty() ? "" : " ") + name + "=" + affinity::shell_quote(value);
        log.file_only->info(
            "{}: CPUs {}, memory nodes {}, OMP_NUM_THREADS {}, log {}", instance_name(in),
            affinity::format_id_list(in.cpus),
            in.memory_nodes.empty() ? "-" : affinity::format_id_list(in.memory_nodes),
            in.omp_num_threads, files.instance_paths[i]);
        log.file_only->info("{}: environment: {}", instance_name(in), env.empty() ? "-" : env);
        log.file_only->info("{}: command: {}", instance_name(in), argv);
    }
}

}  // namespace

int run_plan(const LaunchPlan& plan, const SupervisorOptions& options) {
    ensure_standard_fds();
    if (plan.instances.empty()) {
        if (auto base = spdlog::default_logger()) base->error("the plan has no instances");
        return 1;
    }
    std::optional<RunLogFiles> files;
    if (!options.log_dir.empty()) {
        try {
            files = create_run_log_files(options.log_dir, options.log_prefix, plan);
        } catch (const std::exception& e) {
            if (auto base = spdlog::default_logger()) base->error("{}", e.what());
            return 1;
        }
    }
    try {
        LauncherLog log = make_launcher_log(files ? files->launcher_path : "");
        if (files) {
            log.log->info("logs: {}_*.log", files->stem);
            log_plan(log, plan, *files);
        }
        const MemoryPolicyChoice memory = choose_memory_policy(plan);
        if (!memory.warning.empty()) log.log->warn("{}", memory.warning);
        Supervision supervision(plan, options, log, memory.policy, files ? &*files : nullptr);
        return supervision.run();
    } catch (const std::exception& e) {  // set-up only: the log file, the signal pipe
        if (files) files->discard();     // a refused start leaves nothing behind
        if (auto base = spdlog::default_logger()) base->error("{}", e.what());
        return 1;
    }
}

}  // namespace ipex::launcher

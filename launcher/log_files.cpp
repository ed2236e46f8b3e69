#include "log_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "ipex/affinity/cpu_list.h"
#include "ipex/affinity/user_text.h"

namespace ipex::launcher {

namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path, int error) {
    throw std::runtime_error("cannot " + what + " " + affinity::quote_text(path) + ": " +
                             std::strerror(error));
}

// mkdir -p: every missing component is created (and recorded in `created`); an existing
// directory is fine.
void make_directories(const std::string& dir, std::vector<std::string>& created) {
    for (std::size_t pos = 1; pos <= dir.size(); ++pos) {
        if (pos != dir.size() && dir[pos] != '/') continue;
        const std::string part = dir.substr(0, pos);
        if (mkdir(part.c_str(), 0777) == 0) {
            created.push_back(part);
            continue;
        }
        if (errno == EEXIST) continue;
        fail("create the log directory", part, errno);
    }
    struct stat st {};
    if (stat(dir.c_str(), &st) != 0) fail("use the log directory", dir, errno);
    if (!S_ISDIR(st.st_mode)) fail("use the log directory", dir, ENOTDIR);
}

std::string local_timestamp() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y%m%d%H%M%S", &tm);
    return text;
}

// Exclusive creation: EEXIST is the caller's signal to choose another stem.
int create_exclusive(const std::string& path) {
    return open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
}

}  // namespace

RunLogFiles::RunLogFiles(RunLogFiles&& other) noexcept {
    *this = std::move(other);
}

RunLogFiles& RunLogFiles::operator=(RunLogFiles&& other) noexcept {
    if (this != &other) {
        for (int fd : instance_fds) close(fd);
        stem = std::move(other.stem);
        launcher_path = std::move(other.launcher_path);
        instance_paths = std::move(other.instance_paths);
        instance_fds = std::move(other.instance_fds);
        created_dirs = std::move(other.created_dirs);
        other.instance_fds.clear();
    }
    return *this;
}

RunLogFiles::~RunLogFiles() {
    for (int fd : instance_fds) close(fd);
}

void RunLogFiles::discard() {
    for (int fd : instance_fds) close(fd);
    instance_fds.clear();
    for (const auto& path : instance_paths) unlink(path.c_str());
    instance_paths.clear();
    if (!launcher_path.empty()) unlink(launcher_path.c_str());
    launcher_path.clear();
    for (auto dir = created_dirs.rbegin(); dir != created_dirs.rend(); ++dir) rmdir(dir->c_str());
    created_dirs.clear();
}

std::string instance_log_name(const InstanceLaunch& instance) {
    std::string cpus = affinity::format_id_list(instance.cpus);
    std::replace(cpus.begin(), cpus.end(), ',', '_');
    if (instance.label.empty())
        return "instance_" + std::to_string(instance.index) + "_cpus_" + cpus;
    std::string label = instance.label;  // "rank 3 n2" → "rank_3_n2"
    for (char& c : label)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') c = '_';
    return label + "_cpus_" + cpus;
}

RunLogFiles create_run_log_files(const std::string& dir, const std::string& prefix,
                                 const LaunchPlan& plan) {
    if (dir.empty()) throw std::runtime_error("the log directory name is empty");
    RunLogFiles files;  // what this call created so far, removed again on failure
    try {
        make_directories(dir, files.created_dirs);
        std::string base = dir;
        if (base.back() != '/') base += '/';
        base += prefix + "_" + local_timestamp();

        // The launcher file claims the stem: whoever creates it first owns every name under
        // it. An instance file that exists anyway (a stray file) makes us move to the next.
        for (int attempt = 1; attempt < 10000; ++attempt) {
            files.stem = attempt == 1 ? base : base + "-" + std::to_string(attempt);
            const std::string launcher_path = files.stem + "_launcher.log";
            const int launcher_fd = create_exclusive(launcher_path);
            if (launcher_fd < 0) {
                if (errno == EEXIST) continue;
                fail("create the log file", launcher_path, errno);
            }
            close(launcher_fd);
            files.launcher_path = launcher_path;

            bool taken = false;
            for (const auto& instance : plan.instances) {
                const std::string path = files.stem + "_" + instance_log_name(instance) + ".log";
                const int fd = create_exclusive(path);
                if (fd < 0) {
                    if (errno != EEXIST) fail("create the log file", path, errno);
                    taken = true;
                    break;
                }
                files.instance_paths.push_back(path);
                files.instance_fds.push_back(fd);
            }
            if (!taken) return files;
            // Give back what this attempt created; the folders stay for the next one.
            std::vector<std::string> dirs = std::move(files.created_dirs);
            files.discard();
            files.created_dirs = std::move(dirs);
        }
        fail("find a free log file name in", dir, EEXIST);
    } catch (...) {
        files.discard();
        throw;
    }
}

}  // namespace ipex::launcher

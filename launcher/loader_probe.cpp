#include "loader_probe.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

namespace ipex::launcher {

namespace {

// The program interpreter ipexrun itself was started by (its PT_INTERP): the one every
// program built for this system names too.
std::string own_loader() {
    std::string loader;
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* out) {
            for (int i = 0; i < info->dlpi_phnum; ++i)
                if (info->dlpi_phdr[i].p_type == PT_INTERP)
                    *static_cast<std::string*>(out) =
                        reinterpret_cast<const char*>(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
            return 1;  // the first object is the program itself
        },
        &loader);
    return loader;
}

// What `ld.so --list` prints (stdout; its complaints go nowhere), or nullopt if it failed.
std::optional<std::string> loader_listing(const std::string& loader, const std::string& program,
                                          const std::string& name,
                                          const allocator::Environment& env) {
    std::vector<std::string> env_text;
    for (const auto& [key, value] : env)
        if (key != "LD_PRELOAD") env_text.push_back(key + "=" + value);
    std::vector<char*> envp;
    for (auto& entry : env_text) envp.push_back(entry.data());
    envp.push_back(nullptr);
    std::vector<std::string> args = {loader, "--preload", name, "--list", program};
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);

    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) return std::nullopt;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid = -1;
    const int spawned =
        posix_spawn(&pid, loader.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    std::string text;
    if (spawned == 0) {
        char buffer[4096];
        for (ssize_t n; (n = read(out[0], buffer, sizeof buffer)) != 0;) {
            if (n > 0)
                text.append(buffer, static_cast<std::size_t>(n));
            else if (errno != EINTR)
                break;
        }
    }
    close(out[0]);
    if (spawned != 0) return std::nullopt;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
    return text;
}

}  // namespace

std::optional<bool> loader_finds(const std::string& program, const std::string& name,
                                 const allocator::Environment& env) {
    static const std::string loader = own_loader();
    if (loader.empty()) return std::nullopt;
    const auto listing = loader_listing(loader, program, name, env);
    // Only a listing that went as far as the loader itself resolved the program's libraries
    // (a static program lists nothing).
    if (!listing || listing->find("\t" + loader + " (") == std::string::npos) return std::nullopt;
    return listing->find("\t" + name + " => /") != std::string::npos;
}

}  // namespace ipex::launcher

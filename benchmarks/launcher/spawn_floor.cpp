// The least any launcher can take here: posix_spawn N copies of a program and wait for
// them, with no planning, binding or supervision. launch_overhead.sh times it next to
// ipexrun so the distance to the machine's floor is visible, not only the distance to a
// single bare exec.
//   usage: spawn_floor N program [args...]
#include <spawn.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

extern char** environ;

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: spawn_floor N program [args...]\n");
        return 2;
    }
    const int n = std::atoi(argv[1]);
    std::vector<pid_t> pids;
    for (int i = 0; i < n; ++i) {
        pid_t pid;
        if (posix_spawnp(&pid, argv[2], nullptr, nullptr, argv + 2, environ) != 0) {
            std::perror("spawn_floor: posix_spawnp");
            return 1;
        }
        pids.push_back(pid);
    }
    int failed = 0;
    for (pid_t pid : pids) {
        int status = 0;
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed = 1;
    }
    return failed;
}

#include "test_util.h"

#include <omp.h>

#include <fstream>
#include <stdexcept>

#include "ipex/runtime/pin.h"

namespace ipex::runtime::testing {

std::string allowed_list_of(int tid) {
    std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/status");
    std::string line;
    const std::string key = "Cpus_allowed_list:";
    while (std::getline(f, line))
        if (line.rfind(key, 0) == 0) {
            auto v = line.substr(key.size());
            return v.substr(v.find_first_not_of(" \t"));
        }
    throw std::runtime_error("no Cpus_allowed_list for thread " + std::to_string(tid));
}

std::vector<std::string> team_allowed_lists() {
    std::vector<std::string> out;
    for (int tid : team_thread_ids()) out.push_back(allowed_list_of(tid));
    return out;
}

void set_team_size(int n) {
    { pin settle(CPUPool::all()); }
    omp_set_num_threads(n);
}

}  // namespace ipex::runtime::testing

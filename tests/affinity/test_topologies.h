// Paths of the hwloc XML topologies the tests plan for.
#pragma once

#include <dirent.h>

#include <algorithm>
#include <string>
#include <vector>

namespace ipex::testing {

inline std::string shared_topology(const std::string& name) {
    return std::string(IPEX_SHARED_TOPOLOGIES) + "/" + name;
}
inline std::string test_topology(const std::string& name) {
    return std::string(IPEX_TEST_TOPOLOGIES) + "/" + name;
}

// Every *.xml of the shared folder and of ours.
inline std::vector<std::string> all_topologies() {
    std::vector<std::string> files;
    for (const std::string dir : {IPEX_SHARED_TOPOLOGIES, IPEX_TEST_TOPOLOGIES}) {
        if (DIR* d = opendir(dir.c_str())) {
            while (const dirent* e = readdir(d)) {
                const std::string name = e->d_name;
                if (name.size() > 4 && name.substr(name.size() - 4) == ".xml")
                    files.push_back(dir + "/" + name);
            }
            closedir(d);
        }
    }
    std::sort(files.begin(), files.end());
    return files;
}

}  // namespace ipex::testing

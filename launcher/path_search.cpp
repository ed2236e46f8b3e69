#include "path_search.h"

#include <sys/stat.h>
#include <unistd.h>

namespace ipex::launcher {

bool is_executable_file(const std::string& path) {
    struct stat st {};
    return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

std::optional<std::string> search_path(
    const std::string& path_list, const std::string& name,
    const std::function<bool(const std::string&)>& is_executable) {
    std::size_t start = 0;
    while (start <= path_list.size()) {
        std::size_t end = path_list.find(':', start);
        if (end == std::string::npos) end = path_list.size();
        const std::string dir = path_list.substr(start, end - start);
        const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
        if (is_executable(candidate)) return candidate;
        start = end + 1;
    }
    return std::nullopt;
}

}  // namespace ipex::launcher

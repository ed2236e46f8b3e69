// Finding a program the way execvp does: through the entries of a PATH list in order.
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace ipex::launcher {

// A regular file this process may execute.
bool is_executable_file(const std::string& path);

// The first `dir/name` over the ':'-separated `path_list` (an empty entry is the current
// directory) that `is_executable` accepts.
std::optional<std::string> search_path(
    const std::string& path_list, const std::string& name,
    const std::function<bool(const std::string&)>& is_executable = is_executable_file);

}  // namespace ipex::launcher

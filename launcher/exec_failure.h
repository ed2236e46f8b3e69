// Why exec refused a program, in words that name the real problem: the kernel says "No such
// file or directory" for a script whose #! interpreter is missing, and "Permission denied"
// for a folder as for a file without the execute bit.
#pragma once

#include <string>

namespace ipex::launcher {

// `path` is the file exec was given, `error` its errno.
std::string exec_failure_reason(const std::string& path, int error);

}  // namespace ipex::launcher

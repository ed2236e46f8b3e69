#include "exec_failure.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "ipex/affinity/user_text.h"

namespace ipex::launcher {

namespace {

// The interpreter of a "#!" first line, "" when the file has none.
std::string script_interpreter(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    std::string line;
    if (!std::getline(file, line) || line.rfind("#!", 0) != 0) return "";
    const std::size_t start = line.find_first_not_of(" \t", 2);
    if (start == std::string::npos) return "";
    return line.substr(start, line.find_first_of(" \t\r", start) - start);
}

}  // namespace

std::string exec_failure_reason(const std::string& path, int error) {
    const std::string plain = std::strerror(error);
    struct stat info {};
    if (path.empty() || stat(path.c_str(), &info) != 0) return plain;
    if (error == EACCES && S_ISDIR(info.st_mode)) return std::strerror(EISDIR);
    if (error == EACCES && S_ISREG(info.st_mode) && access(path.c_str(), X_OK) != 0)
        return plain + " (not executable)";
    if (error == ENOENT) {  // the file is there: what is missing is what would run it
        const std::string interpreter = script_interpreter(path);
        return interpreter.empty() ? plain + " (its program loader is missing)"
                                   : "its interpreter " + affinity::quote_text(interpreter) +
                                         " (#! line): " + plain;
    }
    return plain;
}

}  // namespace ipex::launcher

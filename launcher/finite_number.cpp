#include "finite_number.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace ipex::launcher {

std::optional<double> parse_finite_number(const std::string& text) {
    // strtod skips leading blanks itself; the whole text must be the number.
    if (text.empty() || std::isspace(static_cast<unsigned char>(text.front()))) return std::nullopt;
    char* end = nullptr;
    errno = 0;
    const double value = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(value))
        return std::nullopt;
    return value;
}

}  // namespace ipex::launcher

#include "option_checks.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "finite_number.h"
#include "ipex/affinity/user_text.h"

namespace ipex::launcher {
namespace {

// 3600 rather than 3600.000000.
std::string format_bound(double value) {
    std::ostringstream out;
    out << value;
    return out.str();
}

}  // namespace

CLI::Validator number_within(double min, double max, bool min_allowed, const std::string& unit) {
    const std::string range = (min_allowed ? "from " : "above ") + format_bound(min) +
                              (min_allowed ? " to " : ", up to ") + format_bound(max);
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            const auto value = parse_finite_number(text);
            const bool low = value && (min_allowed ? *value < min : *value <= min);
            if (!value || low || *value > max)
                return "takes " + unit + " " + range + ", not " + affinity::quote_text(text);
            return "";
        },
        "");
}

CLI::Validator decimal_integer() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            const std::size_t sign = !text.empty() && (text[0] == '-' || text[0] == '+') ? 1 : 0;
            const bool digits_only =
                text.size() > sign &&
                text.find_first_not_of("0123456789", sign) == std::string::npos;
            if (!digits_only) return "takes a whole number, not " + affinity::quote_text(text);
            const std::size_t first = text.find_first_not_of('0', sign);
            const std::string magnitude = first == std::string::npos ? "0" : text.substr(first);
            text = (text[0] == '-' && magnitude != "0" ? "-" : "") + magnitude;
            return "";
        },
        "");
}

CLI::Validator whole_number_within(long long min, long long max, const std::string& unit) {
    const std::string range = "from " + std::to_string(min) + " to " + std::to_string(max);
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            char* end = nullptr;
            errno = 0;
            const long long value = text.empty() ? 0 : std::strtoll(text.c_str(), &end, 10);
            const bool whole = !text.empty() && *end == '\0' && errno != ERANGE;
            if (!whole || value < min || value > max)
                return "takes " + unit + " " + range + ", not " + affinity::quote_text(text);
            return "";
        },
        "");
}

CLI::Validator not_blank(const std::string& example) {
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            return text.find_first_not_of(" \t") == std::string::npos
                       ? "empty value; give " + example
                       : "";
        },
        "");
}

CLI::Validator file_name_prefix() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            if (text.empty()) return "empty value; give a name such as 'run'";
            if (text.find('/') != std::string::npos)
                return "takes a name, not a path: " + affinity::quote_text(text);
            return "";
        },
        "");
}

}  // namespace ipex::launcher

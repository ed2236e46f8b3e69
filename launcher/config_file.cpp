#include "config_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "ipex/affinity/user_text.h"

namespace ipex::launcher {

namespace {

// CLI11's wording for a key that no option takes, and its name for a section's start.
constexpr char kUnknownKeyText[] = "INI was not able to parse ";
constexpr char kSectionStart[] = ".++";

bool is_binary(unsigned char c) {
    return (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f;
}

}  // namespace

CLI::Validator config_file_check() {
    return CLI::Validator(
        [](std::string& path) -> std::string {
            const auto refused = [&path](int error) {
                return "cannot read " + affinity::quote_text(path) + ": " + std::strerror(error);
            };
            struct stat info {};
            if (stat(path.c_str(), &info) != 0) return refused(errno);
            if (S_ISDIR(info.st_mode)) return refused(EISDIR);
            if (access(path.c_str(), R_OK) != 0) return refused(errno);
            return "";
        },
        "");
}

std::vector<CLI::ConfigItem> CheckedConfig::from_config(std::istream& input) const {
    std::string text(kMaxBytes + 1, '\0');
    input.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(input.gcount()));
    if (text.size() > kMaxBytes)
        throw CLI::ConfigError("is longer than " + std::to_string(kMaxBytes >> 20) +
                               " MiB: not a config file");
    if (std::any_of(text.begin(), text.end(), [](char c) { return is_binary(c); }))
        throw CLI::ConfigError("holds control characters: not a TOML or INI text");
    std::istringstream checked(text);
    std::vector<CLI::ConfigItem> items = CLI::ConfigTOML::from_config(checked);
    // Every option that takes a list takes it as one comma-separated value ("0-3,8", "5,5,6"):
    // a TOML array is that list (CLI11 would hand it over as several values and refuse them).
    for (auto& item : items)
        if (item.inputs.size() > 1) item.inputs = {CLI::detail::join(item.inputs, ",")};
    return items;
}

std::string config_error_text(const CLI::ConfigError& error, const std::string& path) {
    std::string what = error.what();
    if (what.rfind(kUnknownKeyText, 0) == 0) {
        std::string key = what.substr(std::strlen(kUnknownKeyText));
        const std::size_t section = key.size() - std::min(key.size(), std::strlen(kSectionStart));
        if (key.compare(section, std::string::npos, kSectionStart) == 0)
            key = "[" + key.substr(0, section) + "]";
        what = affinity::quote_text(key) +
               " is not an option (keys are long option names without sections, e.g. "
               "ninstances = 2)";
    }
    return "--config " + affinity::quote_text(path) + ": " + what;
}

}  // namespace ipex::launcher

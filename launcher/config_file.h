// --config files: what may be read as one, and the one-line errors when a file cannot be.
// A config file is short TOML/INI text whose every key is an option; anything else (a
// folder, a device that never ends, binary data, a key no option has) is a usage error,
// never silently skipped.
#pragma once

#include <CLI/CLI.hpp>

#include <istream>
#include <string>
#include <vector>

namespace ipex::launcher {

// Checks the --config path before it is read: it exists, is not a folder, can be read.
CLI::Validator config_file_check();

// CLI11's TOML reader that first takes in at most kMaxBytes of text and refuses control
// characters (binary data) and anything longer (/dev/zero would be read for ever).
class CheckedConfig : public CLI::ConfigTOML {
  public:
    static constexpr std::size_t kMaxBytes = 1 << 20;
    std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;
};

// The message for an error CLI11 raised while reading the config file `path`, with the file
// named and an unknown key said as such.
std::string config_error_text(const CLI::ConfigError& error, const std::string& path);

}  // namespace ipex::launcher

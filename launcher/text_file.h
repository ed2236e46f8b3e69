// Small text files the user names (a hostfile): read whole, but never a folder, and never
// more than a bound, so that a device that never ends (/dev/zero) cannot hang the launcher.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace ipex::launcher {

struct TextFileError : std::runtime_error {
    using std::runtime_error::runtime_error;  // the reason alone: "Is a directory", ...
};

constexpr std::size_t kMaxTextFileBytes = 1 << 20;

// The whole content of `path`; throws TextFileError when it cannot be read, is a folder, or
// holds more than max_bytes.
std::string read_text_file(const std::string& path, std::size_t max_bytes = kMaxTextFileBytes);

}  // namespace ipex::launcher

// The launcher's messages are one line each, whatever user text they carry.
#pragma once

#include <spdlog/formatter.h>

#include <memory>
#include <string>

namespace ipex::launcher {

// An spdlog pattern formatter whose %v writes the message with control characters escaped
// (a newline in a path or argument becomes "\n").
std::unique_ptr<spdlog::formatter> one_line_formatter(const std::string& pattern);

}  // namespace ipex::launcher

// The launcher's messages are one line each, whatever user text they carry.
#pragma once

#include <spdlog/formatter.h>

#include <exception>
#include <memory>
#include <string>

namespace ipex::launcher {

// An spdlog pattern formatter whose %v writes the message with control characters escaped
// (a newline in a path or argument becomes "\n").
std::unique_ptr<spdlog::formatter> one_line_formatter(const std::string& pattern);

// What an exception that ends the launcher's work says: "out of memory" for std::bad_alloc
// (whose what() is the type name), else what() on one line.
std::string error_text(const std::exception& error);

}  // namespace ipex::launcher

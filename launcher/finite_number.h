// Reading a number typed by a user or sent by a rank: the whole text, finite, nothing else.
#pragma once

#include <optional>
#include <string>

namespace ipex::launcher {

// A finite decimal number, the whole text; nullopt for "", "1x", " 1", "nan", "inf",
// overflow and underflow.
std::optional<double> parse_finite_number(const std::string& text);

}  // namespace ipex::launcher

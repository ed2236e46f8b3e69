// User text (option values, paths, environment values) as it appears in one-line messages.
#pragma once

#include <string>
#include <string_view>

namespace ipex::affinity {

// "'a\nb'" for a, newline, b: in single quotes, with control characters written as \n, \r,
// \t or \xNN and a quote or backslash escaped by a backslash, so a message stays one line
// and the text can be read back exactly.
std::string quote_text(std::string_view text);

// The text with control characters escaped as in quote_text(), nothing else changed: for
// messages as a whole, so that nothing can split them.
std::string one_line(std::string_view text);

// One word of a command line as a POSIX shell reads it back: as it is where no shell would
// need quotes, else in single quotes. For command lines printed for a person to paste.
std::string shell_quote(std::string_view word);

}  // namespace ipex::affinity

#include "ipex/affinity/user_text.h"

#include <cstdio>

namespace ipex::affinity {
namespace {

void append_escaped(std::string& out, unsigned char c) {
    switch (c) {
        case '\n':
            out += "\\n";
            return;
        case '\r':
            out += "\\r";
            return;
        case '\t':
            out += "\\t";
            return;
        default:
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
    }
}

bool is_control(unsigned char c) {
    return c < 0x20 || c == 0x7f;
}

}  // namespace

std::string quote_text(std::string_view text) {
    std::string out = "'";
    for (unsigned char c : text) {
        if (is_control(c))
            append_escaped(out, c);
        else if (c == '\'' || c == '\\')
            out += {'\\', static_cast<char>(c)};
        else
            out += static_cast<char>(c);
    }
    return out + "'";
}

std::string one_line(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (unsigned char c : text) {
        if (is_control(c))
            append_escaped(out, c);
        else
            out += static_cast<char>(c);
    }
    return out;
}

std::string shell_quote(std::string_view word) {
    constexpr std::string_view kSafe =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-";
    if (!word.empty() && word.find_first_not_of(kSafe) == std::string_view::npos)
        return std::string(word);
    std::string quoted = "'";
    for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return quoted + "'";
}

}  // namespace ipex::affinity

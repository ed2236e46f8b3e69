#include "plan_json.h"

#include <nlohmann/json.hpp>

#include <cctype>

namespace ipex::launcher {
namespace {

constexpr const char* kDescription =
    "ipexrun --dry-run: the instances ipexrun would start, with their CPUs, memory nodes, "
    "environment additions and command lines. Strings are UTF-8; a byte of an argument or "
    "variable that is not valid UTF-8 is written as the escape \\udc80-\\udcff (0xdc00 + the "
    "byte), as Python's 'surrogateescape' does: s.encode('utf-8', 'surrogateescape') gives "
    "back the exact bytes.";

const char* bind_name(BindMethod m) {
    switch (m) {
        case BindMethod::kDirect:
            return "direct";
        case BindMethod::kNumactl:
            return "numactl";
        case BindMethod::kTaskset:
            return "taskset";
        case BindMethod::kNone:
            return "none";
    }
    return "direct";
}

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), 0 if there is none.
std::size_t utf8_length(const std::string& s, std::size_t i) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char b = byte(i);
    if (b < 0x80) return 1;
    std::size_t length;
    unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
    if (b >= 0xc2 && b <= 0xdf) {
        length = 2;
    } else if (b >= 0xe0 && b <= 0xef) {
        length = 3;
        if (b == 0xe0) lo = 0xa0;
        if (b == 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
        length = 4;
        if (b == 0xf0) lo = 0x90;
        if (b == 0xf4) hi = 0x8f;
    } else {
        return 0;
    }
    if (i + length > s.size() || byte(i + 1) < lo || byte(i + 1) > hi) return 0;
    for (std::size_t k = 2; k < length; ++k)
        if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return 0;
    return length;
}

// Every byte that is not valid UTF-8 becomes a NUL and its two hex digits. Arguments and
// environment strings are C strings, so a NUL can only be such a mark; the JSON writer turns
// it into \u0000, which escape_marks() rewrites.
std::string mark_invalid_bytes(const std::string& s) {
    static const char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = utf8_length(s, i);
        if (n > 0) {
            out.append(s, i, n);
            i += n;
            continue;
        }
        const auto b = static_cast<unsigned char>(s[i++]);
        out += {'\0', kHex[b >> 4], kHex[b & 15]};
    }
    return out;
}

// In the written document: "\u0000" plus two hex digits becomes "\udcXX". Backslash pairs
// are skipped as a whole, so an escaped backslash followed by "u0000" is left alone.
std::string escape_marks(const std::string& json) {
    static const std::string kMark = "\\u0000";
    std::string out;
    out.reserve(json.size());
    for (std::size_t i = 0; i < json.size(); ++i) {
        if (json[i] != '\\' || i + 1 >= json.size()) {
            out += json[i];
            continue;
        }
        if (json.compare(i, kMark.size(), kMark) == 0 && i + kMark.size() + 2 <= json.size() &&
            std::isxdigit(static_cast<unsigned char>(json[i + kMark.size()])) &&
            std::isxdigit(static_cast<unsigned char>(json[i + kMark.size() + 1]))) {
            out += "\\udc";
            out.append(json, i + kMark.size(), 2);
            i += kMark.size() + 1;
            continue;
        }
        out.append(json, i, 2);  // any other escape, "\\" included
        ++i;
    }
    return out;
}

nlohmann::ordered_json text(const std::string& s) {
    return mark_invalid_bytes(s);
}

nlohmann::ordered_json texts(const std::vector<std::string>& list) {
    auto array = nlohmann::ordered_json::array();
    for (const auto& s : list) array.push_back(text(s));
    return array;
}

}  // namespace

std::string plan_to_json(const LaunchPlan& plan) {
    nlohmann::ordered_json doc;
    doc["description"] = kDescription;
    doc["instances"] = nlohmann::ordered_json::array();
    for (const auto& inst : plan.instances) {
        nlohmann::ordered_json j;
        j["index"] = inst.index;
        j["cpus"] = inst.cpus;
        j["nodes"] = inst.memory_nodes;
        j["omp_num_threads"] = inst.omp_num_threads;
        j["env"] = nlohmann::ordered_json::object();
        for (const auto& [name, value] : inst.env) j["env"][mark_invalid_bytes(name)] = text(value);
        j["argv"] = texts(inst.argv);
        doc["instances"].push_back(std::move(j));
    }
    doc["bind"] = bind_name(plan.bind);
    doc["python"] = plan.python.empty() ? nlohmann::ordered_json(nullptr)
                                        : nlohmann::ordered_json{{"path", text(plan.python)},
                                                                 {"source", plan.python_source}};
    doc["allocator"] = text(plan.allocator);
    doc["omp_runtime"] = plan.omp_runtime;
    doc["warnings"] = texts(plan.warnings);
    return escape_marks(doc.dump(2));
}

}  // namespace ipex::launcher

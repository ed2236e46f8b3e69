#include "ipex/affinity/cpu_list.h"

#include <hwloc.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <set>

namespace ipex::affinity {
namespace {

std::string trim(const std::string& s) {
    const auto first = s.find_first_not_of(" \t");
    if (first == std::string::npos) return "";
    return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

int parse_id(const std::string& raw, const std::string& whole) {
    const std::string s = trim(raw);
    if (s.empty() ||
        !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }))
        throw CpuListError("'" + whole + "' is not a list of ids like 0-3,8 ('" + trim(raw) +
                           "' is not a non-negative number)");
    if (s.size() > 7) throw CpuListError("id " + s + " in '" + whole + "' is too large");
    return std::stoi(s);
}

}  // namespace

std::vector<int> parse_id_list(const std::string& text) {
    std::vector<int> ids;
    std::set<int> seen;
    auto add = [&](int id) {
        if (!seen.insert(id).second)
            throw CpuListError("id " + std::to_string(id) + " appears twice in '" + text + "'");
        ids.push_back(id);
    };
    std::string::size_type start = 0;
    while (start <= text.size()) {
        const auto comma = text.find(',', start);
        const std::string part =
            text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        start = comma == std::string::npos ? text.size() + 1 : comma + 1;
        if (trim(part).empty()) {
            if (comma == std::string::npos && !ids.empty()) break;  // tolerate a trailing comma
            throw CpuListError("'" + text + "' has an empty entry");
        }
        const auto dash = part.find('-');
        if (dash == std::string::npos) {
            add(parse_id(part, text));
            continue;
        }
        int lo = parse_id(part.substr(0, dash), text);
        int hi = parse_id(part.substr(dash + 1), text);
        if (lo > hi) std::swap(lo, hi);
        for (int id = lo; id <= hi; ++id) add(id);
    }
    return ids;
}

std::string format_id_list(std::vector<int> ids) {
    // hwloc's list syntax is exactly the compact form we want ("0-3,8").
    std::unique_ptr<hwloc_bitmap_s, decltype(&hwloc_bitmap_free)> set(hwloc_bitmap_alloc(),
                                                                      &hwloc_bitmap_free);
    for (int id : ids) hwloc_bitmap_set(set.get(), static_cast<unsigned>(id));
    char* text = nullptr;
    hwloc_bitmap_list_asprintf(&text, set.get());
    std::string out = text ? text : "";
    free(text);
    return out;
}

}  // namespace ipex::affinity

#include "ipex/affinity/cpu_list.h"

#include <hwloc.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <memory>

#include "ipex/affinity/user_text.h"

namespace ipex::affinity {
namespace {

std::string trim(const std::string& s) {
    const auto first = s.find_first_not_of(" \t");
    if (first == std::string::npos) return "";
    return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

// A non-negative int, compared as text so that no input can overflow.
int parse_id(const std::string& raw, const std::string& whole) {
    const std::string s = trim(raw);
    if (s.empty() ||
        !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }))
        throw CpuListError(quote_text(whole) + " is not a list of ids like 0-3,8 (" +
                           quote_text(s) + " is not a non-negative number)");
    const std::string digits = s.substr(std::min(s.find_first_not_of('0'), s.size() - 1));
    const std::string limit = std::to_string(std::numeric_limits<int>::max());
    if (digits.size() > limit.size() || (digits.size() == limit.size() && digits > limit))
        throw CpuListError("id " + digits + " in " + quote_text(whole) + " is too large");
    return std::stoi(digits);
}

using Bitmap = std::unique_ptr<hwloc_bitmap_s, decltype(&hwloc_bitmap_free)>;

Bitmap new_bitmap() {
    return Bitmap(hwloc_bitmap_alloc(), &hwloc_bitmap_free);
}

}  // namespace

std::vector<int> parse_id_list(const std::string& text, int max_id) {
    std::vector<int> ids;
    const Bitmap seen = new_bitmap(), entry = new_bitmap();
    std::string::size_type start = 0;
    while (start <= text.size()) {
        const auto comma = text.find(',', start);
        const std::string part =
            text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        start = comma == std::string::npos ? text.size() + 1 : comma + 1;
        if (trim(part).empty()) {
            if (comma == std::string::npos && !ids.empty()) break;  // tolerate a trailing comma
            throw CpuListError(quote_text(text) + " has an empty entry");
        }
        const auto dash = part.find('-');
        int lo = parse_id(part.substr(0, dash), text);
        int hi = dash == std::string::npos ? lo : parse_id(part.substr(dash + 1), text);
        if (lo > hi) std::swap(lo, hi);
        if (hi > max_id && hi > lo)
            throw CpuListError("range " + trim(part) + " in " + quote_text(text) + " goes beyond " +
                               std::to_string(max_id) + ", the largest id there is");
        if (hi > max_id) {  // a single id: no bitmap that large, the caller refuses it
            ids.push_back(hi);
            continue;
        }
        hwloc_bitmap_set_range(entry.get(), static_cast<unsigned>(lo), hi);
        if (hwloc_bitmap_intersects(seen.get(), entry.get())) {
            hwloc_bitmap_and(entry.get(), entry.get(), seen.get());
            throw CpuListError("id " + std::to_string(hwloc_bitmap_first(entry.get())) +
                               " appears twice in " + quote_text(text));
        }
        hwloc_bitmap_or(seen.get(), seen.get(), entry.get());
        hwloc_bitmap_zero(entry.get());
        for (int id = lo; id <= hi; ++id) ids.push_back(id);
    }
    return ids;
}

std::string format_id_list(std::vector<int> ids) {
    // hwloc's list syntax is exactly the compact form we want ("0-3,8").
    const Bitmap set = new_bitmap();
    for (int id : ids) hwloc_bitmap_set(set.get(), static_cast<unsigned>(id));
    char* text = nullptr;
    hwloc_bitmap_list_asprintf(&text, set.get());
    std::string out = text ? text : "";
    free(text);
    return out;
}

}  // namespace ipex::affinity

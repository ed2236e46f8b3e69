// Text form of CPU and node lists: "0-3,8, 10 - 11" in, "0-3,8,10-11" out.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace ipex::affinity {

struct CpuListError : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

// Parses comma-separated ids and ranges; spaces are allowed anywhere and a reversed range
// ("7-4") means the same as "4-7". Order of first appearance is kept. A range reaching above
// max_id (refused before it is expanded), a repeated id, a negative number or any other text
// throws CpuListError naming the bad part; a single id above max_id is returned for the
// caller to report in its own terms.
// Without a topology at hand: above any id Linux gives (at most 8192 CPUs, 1024 nodes).
constexpr int kLargestPossibleId = 65535;
std::vector<int> parse_id_list(const std::string& text, int max_id = kLargestPossibleId);

// Compact text form of a set of ids: sorted, runs of consecutive ids as ranges ("0-3,8").
std::string format_id_list(std::vector<int> ids);

}  // namespace ipex::affinity

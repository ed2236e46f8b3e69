#include "slurm_nodes.h"

#include <cctype>

namespace ipex::launcher {

std::optional<std::string> first_slurm_host(const std::string& list) {
    std::string host;
    std::size_t at = 0;
    while (at < list.size() && list[at] != ',') {
        if (list[at] == ']') return std::nullopt;
        if (list[at] != '[') {
            host += list[at++];
            continue;
        }
        // "[a-b,c...]": the first number of the bracket, as written.
        const std::size_t close = list.find(']', at);
        if (close == std::string::npos) return std::nullopt;
        std::size_t digit = at + 1;
        while (digit < close && std::isdigit(static_cast<unsigned char>(list[digit]))) ++digit;
        if (digit == at + 1) return std::nullopt;
        const char after = list[digit];
        if (after != '-' && after != ',' && after != ']') return std::nullopt;
        host += list.substr(at + 1, digit - at - 1);
        at = close + 1;
    }
    if (host.empty()) return std::nullopt;
    return host;
}

std::optional<std::string> slurm_node_address(const std::string& output) {
    static const std::string kKey = "NodeAddr=";
    for (std::size_t at = output.find(kKey); at != std::string::npos;
         at = output.find(kKey, at + 1)) {
        if (at > 0 && !std::isspace(static_cast<unsigned char>(output[at - 1]))) continue;
        const std::size_t start = at + kKey.size();
        std::size_t end = start;
        while (end < output.size() && !std::isspace(static_cast<unsigned char>(output[end]))) ++end;
        if (end > start) return output.substr(start, end - start);
    }
    return std::nullopt;
}

}  // namespace ipex::launcher

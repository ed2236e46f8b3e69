#include "sweep_layouts.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "ipex/affinity/user_text.h"

namespace ipex::launcher {
namespace {

const std::set<std::string> kAllocators = {"tcmalloc", "jemalloc", "default"};

int positive_int(const std::string& text, const std::string& whole) {
    if (text.empty() || text.size() > 6 ||
        !std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); }))
        throw std::invalid_argument("layout '" + whole +
                                    "' is not NxC[+smt][:allocator], e.g. 2x4 or 1x8+smt:jemalloc");
    const int v = std::stoi(text);
    if (v < 1) throw std::invalid_argument("layout '" + whole + "' needs counts of 1 or more");
    return v;
}

// Canonical name (dashes) of an option spelling: "--ncore_per_instance" → "--ncore-per-instance".
std::string dashed(std::string name) {
    for (std::size_t i = 2; i < name.size(); ++i)
        if (name[i] == '_') name[i] = '-';
    return name;
}

bool is_integer(const std::string& s) {
    std::size_t i = !s.empty() && s[0] == '-' ? 1 : 0;
    return i < s.size() && std::all_of(s.begin() + static_cast<long>(i), s.end(),
                                       [](unsigned char c) { return std::isdigit(c) || c == ','; });
}

}  // namespace

Layout parse_layout(const std::string& text) {
    Layout l;
    std::string rest = text;
    if (const auto colon = rest.find(':'); colon != std::string::npos) {
        l.allocator = rest.substr(colon + 1);
        rest = rest.substr(0, colon);
        if (!kAllocators.count(l.allocator))
            throw std::invalid_argument("layout '" + text + "': allocator '" + l.allocator +
                                        "' is not tcmalloc, jemalloc or default");
    }
    const std::string smt_suffix = "+smt";
    if (rest.size() > smt_suffix.size() &&
        rest.compare(rest.size() - smt_suffix.size(), smt_suffix.size(), smt_suffix) == 0) {
        l.smt = true;
        rest.resize(rest.size() - smt_suffix.size());
    }
    const auto x = rest.find('x');
    if (x == std::string::npos) positive_int("", text);  // throws the format message
    l.ninstances = positive_int(rest.substr(0, x), text);
    l.cores_per_instance = positive_int(rest.substr(x + 1), text);
    return l;
}

std::vector<Layout> parse_layout_list(const std::string& text) {
    std::vector<Layout> out;
    std::string part;
    for (char c : text + ",") {
        if (c != ',') {
            if (!std::isspace(static_cast<unsigned char>(c))) part += c;
            continue;
        }
        if (!part.empty()) out.push_back(parse_layout(part));
        part.clear();
    }
    if (out.empty()) throw std::invalid_argument("--sweep-layouts needs at least one layout");
    return out;
}

std::string layout_text(const Layout& l) {
    return std::to_string(l.ninstances) + "x" + std::to_string(l.cores_per_instance) +
           (l.smt ? "+smt" : "") + (l.allocator.empty() ? "" : ":" + l.allocator);
}

std::vector<Layout> generate_layouts(const SweepMachine& m) {
    std::vector<Layout> out;
    std::vector<std::string> allocators = m.allocators;
    if (allocators.empty()) allocators.push_back("");
    for (int n = 1; n <= m.physical_cores; ++n) {
        if (m.physical_cores % n != 0) continue;
        for (int smt = 0; smt <= (m.threads_per_core > 1 ? 1 : 0); ++smt)
            for (const auto& a : allocators)
                out.push_back(Layout{n, m.physical_cores / n, smt == 1, a});
    }
    return out;
}

int cpus_per_instance(const Layout& l, const SweepMachine& m) {
    return l.smt ? l.cores_per_instance * std::max(1, m.threads_per_core) : l.cores_per_instance;
}

std::vector<SweepResult> rank_results(std::vector<SweepResult> results, double budget_ms) {
    for (auto& r : results) r.within_budget = budget_ms <= 0 || (r.ok && r.p99_ms <= budget_ms);
    auto tier = [](const SweepResult& r) { return !r.ok ? 2 : r.within_budget ? 0 : 1; };
    std::stable_sort(results.begin(), results.end(),
                     [&](const SweepResult& a, const SweepResult& b) {
                         if (tier(a) != tier(b)) return tier(a) < tier(b);
                         if (tier(a) == 0) return a.throughput > b.throughput;
                         if (tier(a) == 1) return a.p99_ms < b.p99_ms;
                         return false;
                     });
    return results;
}

std::vector<std::string> strip_layout_options(const std::vector<std::string>& args) {
    // Options a layout replaces or the sweep owns: name → takes a value.
    static const std::map<std::string, bool> kDropped = {{"--sweep", false},
                                                         {"--sweep-layouts", true},
                                                         {"--sweep-latency-budget", true},
                                                         {"--ninstances", true},
                                                         {"--ninstance", true},
                                                         {"--ncores-per-instance", true},
                                                         {"--ncore-per-instance", true},
                                                         {"--use-logical-cores", false},
                                                         {"--use-logical-core", false},
                                                         {"--memory-allocator", true},
                                                         {"--enable-tcmalloc", false},
                                                         {"--enable-jemalloc", false},
                                                         {"--use-default-allocator", false},
                                                         {"--latency-mode", false},
                                                         {"--throughput-mode", false},
                                                         {"--multi-instance", false}};
    std::vector<std::string> kept;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        const auto eq = a.find('=');
        const std::string name = dashed(a.substr(0, eq));
        const auto it = kDropped.find(name);
        if (a.rfind("--", 0) != 0 || it == kDropped.end()) {
            kept.push_back(a);
            continue;
        }
        if (!it->second || eq != std::string::npos) continue;
        ++i;  // its value
        if (name == "--ncores-per-instance" || name == "--ncore-per-instance")
            while (i + 1 < args.size() && is_integer(args[i + 1])) ++i;  // "5 5 6"
    }
    return kept;
}

std::string layout_command(const Layout& l, const SweepMachine& m,
                           const std::vector<std::string>& kept_options,
                           const std::vector<std::string>& program_and_args) {
    std::vector<std::string> words = {"ipexrun"};
    words.insert(words.end(), kept_options.begin(), kept_options.end());
    words.insert(words.end(), {"--ninstances", std::to_string(l.ninstances),
                               "--ncores-per-instance", std::to_string(cpus_per_instance(l, m))});
    if (l.smt) words.push_back("--use-logical-cores");
    if (!l.allocator.empty()) words.insert(words.end(), {"--memory-allocator", l.allocator});
    // A "--" the user wrote stays in front of the program, where it belongs.
    if (!kept_options.empty() && kept_options.back() == "--") {
        words.erase(words.begin() + static_cast<long>(kept_options.size()));
        words.push_back("--");
    }
    words.insert(words.end(), program_and_args.begin(), program_and_args.end());
    std::string out;
    for (const auto& w : words) out += (out.empty() ? "" : " ") + affinity::shell_quote(w);
    return out;
}

}  // namespace ipex::launcher

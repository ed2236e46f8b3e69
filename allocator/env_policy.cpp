#include "ipex/allocator/env_policy.h"

#include <algorithm>
#include <set>

#include "ipex/affinity/cpu_list.h"
#include "ipex/affinity/user_text.h"
#include "ipex/allocator/library_finder.h"

namespace ipex::allocator {
namespace {

const char* const kJemallocConf = "oversize_threshold:1,background_thread:true,metadata_thp:auto";
const char* const kJemallocBenchmarkConf =
    "oversize_threshold:1,background_thread:false,metadata_thp:always,dirty_decay_ms:-1,"
    "muzzy_decay_ms:-1";
// tcmalloc's counterpart of the jemalloc benchmark variant: freed memory is never handed back
// to the system, and the thread caches may hold 256 MiB in all. Returning memory costs page
// faults and TLB shootdowns on the next use, which hit every thread of a multi-stream process
// (~15% of its throughput here); one big per-thread cache keeps large activations local.
const char* const kTcmallocBenchmarkReleaseRate = "0";
const char* const kTcmallocBenchmarkThreadCacheBytes = "268435456";
const char* const kIntelAffinity = "granularity=fine,compact,1,0";

std::vector<std::string> split_preload(const std::string& value) {
    std::vector<std::string> entries;
    std::string current;
    for (char c : value) {
        if (c == ':' || c == ' ') {
            if (!current.empty()) entries.push_back(current);
            current.clear();
        } else {
            current += c;
        }
    }
    if (!current.empty()) entries.push_back(current);
    return entries;
}

std::string join_preload(const std::vector<std::string>& entries) {
    std::string out;
    for (const auto& e : entries) out += (out.empty() ? "" : ":") + e;
    return out;
}

bool preloads(const std::vector<std::string>& entries, const std::string& name) {
    return std::any_of(entries.begin(), entries.end(),
                       [&](const std::string& e) { return is_library_named(e, name); });
}

struct Choice {
    std::string allocator = "default";
    std::optional<std::string> allocator_path;
    std::string omp = "gnu";
    std::optional<std::string> omp_path;
};

Choice choose(const EnvRequest& r, const AvailableLibraries& libs,
              const std::vector<std::string>& user_preload) {
    Choice c;
    auto need = [](const std::optional<std::string>& path, const std::string& what) {
        if (!path)
            throw EnvError(what + " was asked for but lib" + what +
                           ".so* is in none of the library folders (install it, or set "
                           "$CONDA_PREFIX/$VIRTUAL_ENV)");
        return path;
    };
    switch (r.allocator) {
        case MemoryAllocator::kTcmalloc:
            c.allocator = "tcmalloc", c.allocator_path = need(libs.tcmalloc, "tcmalloc");
            break;
        case MemoryAllocator::kJemalloc:
            c.allocator = "jemalloc", c.allocator_path = need(libs.jemalloc, "jemalloc");
            break;
        case MemoryAllocator::kDefault:
            break;
        case MemoryAllocator::kAuto:
            // What the user preloads already is their choice; otherwise tcmalloc, jemalloc.
            if (preloads(user_preload, "tcmalloc"))
                c.allocator = "tcmalloc";
            else if (preloads(user_preload, "jemalloc"))
                c.allocator = "jemalloc";
            else if (libs.tcmalloc)
                c.allocator = "tcmalloc", c.allocator_path = libs.tcmalloc;
            else if (libs.jemalloc)
                c.allocator = "jemalloc", c.allocator_path = libs.jemalloc;
            break;
    }
    switch (r.omp) {
        case OmpRuntime::kIntel:
            if (!preloads(user_preload, "iomp5")) c.omp_path = need(libs.iomp, "iomp5");
            c.omp = "intel";
            break;
        case OmpRuntime::kDefault:
            break;
        case OmpRuntime::kAuto:
            if (preloads(user_preload, "iomp5") || preloads(user_preload, "omp"))
                c.omp = "intel";
            else if (libs.iomp)
                c.omp = "intel", c.omp_path = libs.iomp;
            break;
    }
    return c;
}

}  // namespace

EnvPlan plan_environment(const EnvRequest& request, const AvailableLibraries& libraries,
                         const Environment& user_env, const FileExists& exists,
                         const std::vector<std::vector<int>>& instance_cpus,
                         const LoaderFinds& loader_finds) {
    EnvPlan plan;
    std::set<std::string> warned;
    auto warn_once = [&](const std::string& key, const std::string& text) {
        if (warned.insert(key).second) plan.warnings.push_back(text);
    };
    auto user = [&](const std::string& name) -> std::optional<std::string> {
        auto it = user_env.find(name);
        if (it == user_env.end()) return std::nullopt;
        return it->second;
    };

    const std::string user_preload_text = user("LD_PRELOAD").value_or("");
    std::vector<std::string> preload;
    for (const auto& entry : split_preload(user_preload_text)) {
        // What the loader cannot load would make it print an error in every child.
        if (entry.find('/') != std::string::npos && !exists(entry)) {
            warn_once("missing:" + entry, "LD_PRELOAD entry " + affinity::quote_text(entry) +
                                              " does not exist or is not a file; dropped");
            continue;
        }
        if (entry.find('/') == std::string::npos && loader_finds && loader_finds(entry) == false) {
            warn_once("missing:" + entry, "LD_PRELOAD entry " + affinity::quote_text(entry) +
                                              " is not found by the dynamic loader; dropped");
            continue;
        }
        preload.push_back(entry);
    }

    const Choice choice = choose(request, libraries, preload);
    plan.allocator = choice.allocator;
    plan.omp_runtime = choice.omp;

    // Allocators and OpenMP runtimes other than the chosen ones must not be preloaded too.
    auto drop = [&](const std::string& name, const std::string& why) {
        auto it = std::remove_if(preload.begin(), preload.end(),
                                 [&](const std::string& e) { return is_library_named(e, name); });
        if (it != preload.end()) {
            warn_once("drop:" + name, "lib" + name + " removed from LD_PRELOAD: " + why);
            preload.erase(it, preload.end());
        }
    };
    if (choice.allocator != "tcmalloc") drop("tcmalloc", "the allocator is " + choice.allocator);
    if (choice.allocator != "jemalloc") drop("jemalloc", "the allocator is " + choice.allocator);
    if (choice.omp != "intel") {
        drop("iomp5", "the OpenMP runtime is GNU's");
        drop("omp", "the OpenMP runtime is GNU's");
    }
    auto append = [&](const std::optional<std::string>& path) {
        if (path && std::find(preload.begin(), preload.end(), *path) == preload.end())
            preload.push_back(*path);
    };
    append(choice.allocator_path);
    append(choice.omp_path);
    // The runtime library interposes omp_set_num_threads (its thread-count-change detector):
    // that only works when the loader sees it before any OpenMP runtime in LD_PRELOAD.
    if (!request.runtime_library.empty() && exists(request.runtime_library) &&
        std::find(preload.begin(), preload.end(), request.runtime_library) == preload.end()) {
        const auto first_omp =
            std::find_if(preload.begin(), preload.end(), [](const std::string& e) {
                return is_library_named(e, "iomp5") || is_library_named(e, "omp") ||
                       is_library_named(e, "gomp");
            });
        preload.insert(first_omp, request.runtime_library);
    }

    Environment common;
    const std::string merged = join_preload(preload);
    if (merged != user_preload_text) common["LD_PRELOAD"] = merged;
    if (choice.allocator == "jemalloc")
        common["MALLOC_CONF"] = request.benchmark ? kJemallocBenchmarkConf : kJemallocConf;
    if (choice.allocator == "tcmalloc" && request.benchmark) {
        common["TCMALLOC_RELEASE_RATE"] = kTcmallocBenchmarkReleaseRate;
        common["TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES"] = kTcmallocBenchmarkThreadCacheBytes;
    }
    if (choice.omp == "intel") {
        common["KMP_AFFINITY"] = kIntelAffinity;
        common["KMP_BLOCKTIME"] = "1";
    } else {
        common["OMP_SCHEDULE"] = "STATIC";
        common["OMP_PROC_BIND"] = "CLOSE";
        common["OMP_PLACES"] = "threads";
    }

    for (const auto& cpus : instance_cpus) {
        Environment env = common;
        env["OMP_NUM_THREADS"] = std::to_string(cpus.size());
        if (request.affinity_through_env) {
            const std::string list = affinity::format_id_list(cpus);
            if (choice.omp == "intel")
                env["KMP_AFFINITY"] = "granularity=fine,proclist=[" + list + "],explicit";
            else
                env["GOMP_CPU_AFFINITY"] = list;
        }
        for (auto it = env.begin(); it != env.end();) {
            const auto preset = it->first == "LD_PRELOAD" ? std::nullopt : user(it->first);
            if (preset && *preset != it->second) {
                warn_once("preset:" + it->first, it->first + "=" + *preset +
                                                     " is already set; it is kept instead of " +
                                                     it->second);
                it = env.erase(it);
            } else if (preset) {
                it = env.erase(it);  // same value: nothing to change
            } else {
                ++it;
            }
        }
        plan.instances.push_back(std::move(env));
    }
    return plan;
}

}  // namespace ipex::allocator

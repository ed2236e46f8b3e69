#include "ipex/allocator/library_finder.h"

#include <dirent.h>

#include <algorithm>
#include <cctype>

namespace ipex::allocator {
namespace {

// Version numbers of a versioned name ("libx.so.4.5.10" → {4, 5, 10}); nullopt when `file`
// is not lib<name>.so[.N...]. The unversioned name gives {}.
std::optional<std::vector<int>> version_of(const std::string& file, const std::string& name) {
    const std::string stem = "lib" + name + ".so";
    if (file.compare(0, stem.size(), stem) != 0) return std::nullopt;
    std::vector<int> version;
    std::string rest = file.substr(stem.size());
    while (!rest.empty()) {
        if (rest[0] != '.' || rest.size() < 2 || !std::isdigit(static_cast<unsigned char>(rest[1])))
            return std::nullopt;
        size_t end = 1;
        while (end < rest.size() && std::isdigit(static_cast<unsigned char>(rest[end]))) ++end;
        if (end - 1 > 6) return std::nullopt;
        version.push_back(std::stoi(rest.substr(1, end - 1)));
        rest = rest.substr(end);
    }
    return version;
}

std::string base_name(const std::string& path) {
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

DirectoryLister real_directory_lister() {
    return [](const std::string& dir) {
        std::vector<std::string> names;
        if (DIR* d = opendir(dir.c_str())) {
            while (const dirent* e = readdir(d)) names.emplace_back(e->d_name);
            closedir(d);
        }
        return names;
    };
}

std::vector<std::string> library_search_dirs(const SearchRoots& roots) {
    std::vector<std::string> dirs;
    if (!roots.conda_prefix.empty()) dirs.push_back(roots.conda_prefix + "/lib");
    if (!roots.virtual_env.empty()) dirs.push_back(roots.virtual_env + "/lib");
    if (!roots.home.empty()) dirs.push_back(roots.home + "/.local/lib");
    for (const char* d : {"/usr/local/lib", "/usr/local/lib64", "/usr/lib", "/usr/lib64"})
        dirs.emplace_back(d);
#if defined(__x86_64__)
    const std::string triplet = "x86_64-linux-gnu";
#elif defined(__aarch64__)
    const std::string triplet = "aarch64-linux-gnu";
#else
    const std::string triplet;
#endif
    if (!triplet.empty()) {
        dirs.push_back("/usr/local/lib/" + triplet);
        dirs.push_back("/usr/lib/" + triplet);
        dirs.push_back("/lib/" + triplet);
    }
    return dirs;
}

std::optional<std::string> find_library(const std::string& name,
                                        const std::vector<std::string>& dirs,
                                        const DirectoryLister& list, const FileExists& exists) {
    const std::string stem = "lib" + name + ".so";
    for (const auto& dir : dirs) {
        if (exists && exists(dir + "/" + stem)) return dir + "/" + stem;
        std::optional<std::string> best;
        std::vector<int> best_version;
        for (const auto& file : list(dir)) {
            if (file.compare(0, stem.size(), stem) != 0) continue;  // most files: cheaply out
            const auto version = version_of(file, name);
            if (!version) continue;
            // {} (unversioned) sorts as the best; otherwise the highest version wins.
            const bool better =
                !best || (!best_version.empty() && (version->empty() || *version > best_version));
            if (better) {
                best = dir + "/" + file;
                best_version = *version;
            }
        }
        if (best) return best;
    }
    return std::nullopt;
}

bool is_library_named(const std::string& path, const std::string& name) {
    return version_of(base_name(path), name).has_value();
}

}  // namespace ipex::allocator

// Finding the shared libraries ipexrun preloads (tcmalloc, jemalloc, Intel/LLVM OpenMP).
// Pure given a directory lister, so tests can describe any file system.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ipex::allocator {

// File names in a directory ({} when it does not exist).
using DirectoryLister = std::function<std::vector<std::string>(const std::string& dir)>;
DirectoryLister real_directory_lister();
// Whether `path` is a file that could be loaded (a folder of that name is not).
using FileExists = std::function<bool(const std::string& path)>;

struct SearchRoots {
    std::string conda_prefix;  // $CONDA_PREFIX
    std::string virtual_env;   // $VIRTUAL_ENV
    std::string home;          // $HOME
};

// Directories searched, in order: the user's environments first, then the system's,
// including Debian's multiarch folders.
std::vector<std::string> library_search_dirs(const SearchRoots& roots);

// The first directory holding lib<name>.so or a versioned lib<name>.so.N[.M...]; in one
// directory the unversioned name wins, else the highest version. With `exists`, a directory
// that has the unversioned name is not listed (big system folders are slow to list).
std::optional<std::string> find_library(const std::string& name,
                                        const std::vector<std::string>& dirs,
                                        const DirectoryLister& list,
                                        const FileExists& exists = nullptr);

// True when `path`'s file name is lib<name>.so or lib<name>.so.<version>.
bool is_library_named(const std::string& path, const std::string& name);

}  // namespace ipex::allocator

#include "ipex/allocator/library_finder.h"

#include <gtest/gtest.h>

#include <map>

using namespace ipex::allocator;

namespace {

// A file system of directories and file names, the way ninja's tests fake the disk.
DirectoryLister fake_fs(std::map<std::string, std::vector<std::string>> dirs) {
    return [dirs](const std::string& dir) {
        auto it = dirs.find(dir);
        return it == dirs.end() ? std::vector<std::string>{} : it->second;
    };
}

}  // namespace

TEST(LibraryFinder, FindsVersionedOnlyNames) {
    // Debian without -dev packages ships only libtcmalloc.so.4.
    auto fs =
        fake_fs({{"/usr/lib/x86_64-linux-gnu", {"libtcmalloc.so.4", "libtcmalloc.so.4.5.10"}}});
    auto found = find_library("tcmalloc", library_search_dirs({}), fs);
    ASSERT_TRUE(found);
    EXPECT_EQ(*found, "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4.5.10");
}

TEST(LibraryFinder, UnversionedNameWinsInOneDirectory) {
    auto fs = fake_fs({{"/usr/lib", {"libjemalloc.so.2", "libjemalloc.so", "libjemalloc.a"}}});
    EXPECT_EQ(*find_library("jemalloc", library_search_dirs({}), fs), "/usr/lib/libjemalloc.so");
}

TEST(LibraryFinder, UserEnvironmentsComeFirst) {
    auto fs = fake_fs({{"/opt/conda/lib", {"libiomp5.so"}}, {"/usr/lib", {"libiomp5.so"}}});
    SearchRoots roots{"/opt/conda", "/venv", "/home/u"};
    EXPECT_EQ(*find_library("iomp5", library_search_dirs(roots), fs), "/opt/conda/lib/libiomp5.so");
    const auto dirs = library_search_dirs(roots);
    EXPECT_EQ(dirs[0], "/opt/conda/lib");
    EXPECT_EQ(dirs[1], "/venv/lib");
    EXPECT_EQ(dirs[2], "/home/u/.local/lib");
}

TEST(LibraryFinder, DoesNotConfuseSimilarNames) {
    auto fs =
        fake_fs({{"/usr/lib", {"libtcmalloc_minimal.so.4", "libtcmalloc.so.x", "libomp.so.5"}}});
    EXPECT_FALSE(find_library("tcmalloc", library_search_dirs({}), fs));
    EXPECT_FALSE(find_library("iomp5", library_search_dirs({}), fs));
    EXPECT_TRUE(is_library_named("/a/b/libiomp5.so", "iomp5"));
    EXPECT_TRUE(is_library_named("libjemalloc.so.2", "jemalloc"));
    EXPECT_FALSE(is_library_named("/a/libjemalloc.so.2.bak", "jemalloc"));
}

TEST(LibraryFinder, RealDirectoryListerReadsThisMachine) {
    const auto names = real_directory_lister()("/");
    EXPECT_NE(std::find(names.begin(), names.end(), "usr"), names.end());
    EXPECT_TRUE(real_directory_lister()("/nonexistent-dir").empty());
}

TEST(LibraryFinder, UnversionedNameFoundWithoutListingItsFolder) {
    std::vector<std::string> listed;
    const DirectoryLister list = [&](const std::string& dir) {
        listed.push_back(dir);
        return dir == "/usr/lib" ? std::vector<std::string>{"libtcmalloc.so.4"}
                                 : std::vector<std::string>{};
    };
    const FileExists exists = [](const std::string& path) {
        return path == "/usr/lib/x86_64-linux-gnu/libtcmalloc.so";
    };
    // /usr/lib comes first and has only the versioned name: it is listed and wins.
    EXPECT_EQ(*find_library("tcmalloc", library_search_dirs({}), list, exists),
              "/usr/lib/libtcmalloc.so.4");
    listed.clear();
    const std::vector<std::string> dirs = {"/usr/lib/x86_64-linux-gnu", "/usr/lib"};
    EXPECT_EQ(*find_library("tcmalloc", dirs, list, exists),
              "/usr/lib/x86_64-linux-gnu/libtcmalloc.so");
    EXPECT_TRUE(listed.empty());
}

// Whether the dynamic loader finds a library given by bare name (as in LD_PRELOAD), asked of
// the loader itself (`ld.so --list`), so that its whole search counts: the program's RPATH and
// RUNPATH, LD_LIBRARY_PATH, ld.so.cache and the default folders.
#pragma once

#include <optional>
#include <string>

#include "ipex/allocator/env_policy.h"

namespace ipex::launcher {

// Whether `name` loads when preloaded into `program` (an absolute path) started with `env`;
// nullopt when the loader cannot tell: the program is no dynamically linked ELF executable
// (a script, a static binary) or ipexrun has no loader of its own to ask.
std::optional<bool> loader_finds(const std::string& program, const std::string& name,
                                 const allocator::Environment& env);

}  // namespace ipex::launcher

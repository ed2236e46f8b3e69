// This machine's host name, as the launcher prints it and matches it against host lists.
#pragma once

#include <string>

namespace ipex::launcher {

// The kernel's host name (uname's nodename); empty when it cannot be read.
std::string this_host_name();

// `name` up to its first dot: the form hostfiles and Slurm node lists usually use.
std::string short_host_name(const std::string& name);

}  // namespace ipex::launcher

#include "host_name.h"

#include <sys/utsname.h>

namespace ipex::launcher {

// uname() cannot truncate (gethostname() may, without a terminating NUL).
std::string this_host_name() {
    struct utsname names {};
    if (uname(&names) != 0) return "";
    return names.nodename;
}

std::string short_host_name(const std::string& name) {
    return name.substr(0, name.find('.'));
}

}  // namespace ipex::launcher

"""`python -m intel_extension_for_pytorch.cpu.launch [options] program [args]`: the peer's
older way to start its launcher. It hands the command line to the native ipexrun (the one
installed or built beside this package, else the first on PATH); nothing is planned here."""
import os
import pathlib
import shutil
import sys


def find_ipexrun():
    # Not resolved: the build tree links these sources into <build>/python, and the launcher
    # of that build is <build>/launcher/ipexrun; an install has <prefix>/bin/ipexrun.
    for folder in pathlib.Path(os.path.abspath(__file__)).parents:
        for candidate in (folder / "launcher" / "ipexrun", folder / "bin" / "ipexrun"):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return shutil.which("ipexrun")


def main(argv):
    ipexrun = find_ipexrun()
    if ipexrun is None:
        sys.stderr.write("ipexrun: error: the ipexrun launcher is not installed (not beside this package "
                         "and not on PATH)\n")
        return 1
    os.execv(ipexrun, [ipexrun, *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

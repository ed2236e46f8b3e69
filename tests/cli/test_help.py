"""ipexrun --help: options are listed in titled sections, like the peer launcher's help."""
import re
import subprocess

SECTIONS = ["Launch and program", "Instances and cores", "Memory allocator", "OpenMP",
            "Codeless optimisation (auto_ipex)", "Logging and supervision", "Benchmarking"]


def help_text(ipexrun):
    r = subprocess.run([ipexrun, "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def headings(text):
    return [line[:-1] for line in text.splitlines() if re.fullmatch(r"[A-Z][^:]*:", line)]


def test_sections_come_in_the_peer_order(ipexrun):
    found = headings(help_text(ipexrun))
    # Sections other helpers add (Distributed, ...) may sit between these; order must hold.
    assert [h for h in found if h in SECTIONS] == SECTIONS
    assert "Options" not in found, "an option was left outside every section"


def test_options_sit_in_their_sections(ipexrun):
    section, where = None, {}
    for line in help_text(ipexrun).splitlines():
        if re.fullmatch(r"[A-Z][^:]*:", line):
            section = line[:-1]
        elif line.startswith("  -"):
            for name in re.findall(r"--[\w-]+", line.split()[0]):
                where[name] = section
    assert where["--help"] == "Launch and program"
    assert where["--runtime-preload"] == "Launch and program"
    assert where["--cores-list"] == "Instances and cores"
    assert where["--memory-allocator"] == "Memory allocator"
    assert where["--omp-runtime"] == "OpenMP"
    assert where["--auto-ipex"] == "Codeless optimisation (auto_ipex)"
    assert where["--log-dir"] == "Logging and supervision"
    assert where["--benchmark"] == "Benchmarking"

"""Input a user can get wrong or that is merely unusual: non-UTF-8 bytes, out-of-range
numbers, empty lists, control characters. Each is a plan or one short line, never an abort."""
import json
import os
import pathlib
import resource
import shutil
import subprocess

import pytest

from project_paths import REPO

TWO_BY_28 = str(REPO / "tests" / "topologies" / "xeon-2s28c2t.xml")


def run(ipexrun, *args, env=None):
    e = {k: v for k, v in os.environb.items() if k not in (b"LD_PRELOAD", b"IPEXRUN_PYTHON")}
    e.update(env or {})
    return subprocess.run([ipexrun, *args], capture_output=True, env=e, timeout=30)


def dry_run(ipexrun, *args, env=None):
    return run(ipexrun, "--dry-run", "--topology", TWO_BY_28, *args, env=env)


def one_line_usage_error(r):
    assert r.returncode == 2, r
    assert r.stdout == b""
    lines = r.stderr.decode("utf-8", "surrogateescape").splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("ipexrun: error: ")
    return lines[0]


def test_dry_run_keeps_bytes_that_are_not_utf8(ipexrun):
    r = dry_run(ipexrun, "--no-python", "true", b"\xfe\xff", b"caf\xc3\xa9", b"x\xed\xa0\x80",
                env={b"LD_PRELOAD": b"/tmp/ipex-test-caf\xe9.so"})
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert "surrogateescape" in doc["description"]
    argv = [a.encode("utf-8", "surrogateescape") for a in doc["instances"][0]["argv"]]
    assert argv[-3:] == [b"\xfe\xff", b"caf\xc3\xa9", b"x\xed\xa0\x80"]
    warnings = [w.encode("utf-8", "surrogateescape") for w in doc["warnings"]]
    assert any(b"/tmp/ipex-test-caf\xe9.so" in w for w in warnings), warnings


def test_an_escaped_backslash_is_not_taken_for_a_mark(ipexrun):
    r = dry_run(ipexrun, "--no-python", "true", "\\u0000fe", "\\\\u0000ab")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["instances"][0]["argv"][-2:] == ["\\u0000fe", "\\\\u0000ab"]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "1e10", "1e400", "3601", "5s", ""])
def test_grace_period_outside_its_range_is_a_short_usage_error(ipexrun, value):
    line = one_line_usage_error(dry_run(ipexrun, "--grace-period", value, "--no-python", "true"))
    assert "--grace-period" in line and len(line) < 120, line


def test_grace_period_in_range_is_accepted(ipexrun):
    for value in ["0", "2.5", "3600"]:
        assert dry_run(ipexrun, "--grace-period", value, "--no-python", "true").returncode == 0


@pytest.mark.parametrize("option,value", [
    ("--benchmark-duration", "nan"), ("--benchmark-duration", "inf"),
    ("--benchmark-duration", "-1"), ("--benchmark-duration", "0"),
    ("--benchmark-duration", "1e300"), ("--benchmark-duration", "1e400"),
    ("--benchmark-iterations", "0"), ("--benchmark-iterations", "1.5"),
    ("--benchmark-iterations", "99999999999999999999"), ("--benchmark-iterations", "-3"),
    ("--sweep-latency-budget", "nan"), ("--sweep-latency-budget", "inf"),
    ("--sweep-latency-budget", "0"), ("--sweep-latency-budget", "1e30")])
def test_benchmark_numbers_outside_their_range_are_short_usage_errors(ipexrun, option, value):
    line = one_line_usage_error(dry_run(ipexrun, option, value, "--no-python", "true"))
    assert option in line and len(line) < 120, line


def test_benchmark_numbers_in_range_are_accepted(ipexrun):
    for option, value in [("--benchmark-duration", "0.5"), ("--benchmark-duration", "604800"),
                          ("--benchmark-iterations", "1"), ("--sweep-latency-budget", "2.5")]:
        r = dry_run(ipexrun, option, value, "--no-python", "true")
        assert r.returncode == 0, (option, value, r.stderr)


@pytest.mark.parametrize("option", ["--log-dir", "--python", "--topology", "--hostfile",
                                    "--master-addr", "--mpi-agent", "--benchmark-report"])
@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_path_or_name_is_a_usage_error(ipexrun, option, value):
    # An empty value is almost always a shell variable that came out empty; taking it as
    # "not given" would silently drop the logs or the report the user asked for.
    r = run(ipexrun, "--dry-run", option, value, "--no-python", "true")
    line = one_line_usage_error(r)
    assert option in line and "empty" in line, line


@pytest.mark.parametrize("option", ["--cores-list", "--nodes-list"])
@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_id_list_is_a_usage_error(ipexrun, option, value):
    line = one_line_usage_error(dry_run(ipexrun, option, value, "--no-python", "true"))
    assert option in line and "empty" in line, line


def _limit_address_space():
    # 128 MiB of address space: ample for ipexrun, far too little for a list expanded to
    # millions of ids. (ru_maxrss cannot tell: a child's peak includes its parent's memory
    # from before exec, and pytest holds torch by then.)
    resource.setrlimit(resource.RLIMIT_AS, (128 << 20, 128 << 20))


@pytest.mark.parametrize("option,value", [("--cores-list", "0-5000000"),
                                          ("--cores-list", "0-2147483647"),
                                          ("--nodes-list", "1-900000000"),
                                          ("--instance-idx", "0-2000000000")])
def test_huge_ranges_are_refused_before_they_are_expanded(ipexrun, option, value):
    result = subprocess.run([ipexrun, "--dry-run", "--topology", TWO_BY_28, option, value,
                             "--no-python", "true"], capture_output=True,
                            preexec_fn=_limit_address_space, timeout=60)
    line = one_line_usage_error(result)
    assert option in line and "largest id" in line, line


@pytest.mark.parametrize("args", [
    ["--ncores-per-instance", "1\nx", "--no-python", "true"],
    ["--cores-list", "0\n1", "--no-python", "true"],
    ["--ninstances", "2\r\nfake line", "--no-python", "true"],
    ["--bad\noption", "--no-python", "true"],
    ["missing\nprogram.py"],
    ["--python", "no\nsuch-python", "x.py"],
])
def test_user_text_in_errors_cannot_split_the_line(ipexrun, args):
    line = one_line_usage_error(dry_run(ipexrun, *args))
    assert "\\n" in line, line


@pytest.mark.parametrize("text", [
    b"ninstances = 2\nninstnaces = 3\n",   # a typo
    b"[launch]\nninstances = 2\n",          # a section no option lives in
    b"program = \"x.py\"\n",                # not an option
])
def test_a_config_key_that_is_no_option_is_a_usage_error(ipexrun, tmp_path, text):
    # Ignoring it would run a plan other than the one the file asks for.
    config = tmp_path / "run.toml"
    config.write_bytes(text)
    line = one_line_usage_error(dry_run(ipexrun, "--config", str(config), "--no-python", "true"))
    assert "run.toml" in line and ("ninstnaces" in line or "launch" in line or "program" in line), line


@pytest.mark.parametrize("content", [bytes(range(256)) * 8, b"ninstances = 2\n\0\0\0"],
                         ids=["binary", "nul-bytes"])
def test_a_config_file_that_is_not_text_is_a_usage_error(ipexrun, tmp_path, content):
    config = tmp_path / "blob.toml"
    config.write_bytes(content)
    line = one_line_usage_error(dry_run(ipexrun, "--config", str(config), "--no-python", "true"))
    assert "blob.toml" in line and len(line) < 200, line


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/urandom"])
def test_a_config_that_never_ends_is_refused_at_once(ipexrun, path):
    line = one_line_usage_error(dry_run(ipexrun, "--config", path, "--no-python", "true"))
    assert path in line, line


def test_a_config_that_is_a_folder_is_named_as_such(ipexrun, tmp_path):
    line = one_line_usage_error(dry_run(ipexrun, "--config", str(tmp_path), "--no-python", "true"))
    assert str(tmp_path) in line and "directory" in line, line


def test_shipped_configs_still_load(ipexrun):
    for config in sorted((REPO / "configs").glob("*.toml")):
        r = dry_run(ipexrun, "--config", str(config), "--no-python", "true")
        assert r.returncode == 0, (config, r.stderr)


@pytest.mark.parametrize("prefix", ["../escaped", "a/b", "/tmp/x", ""])
def test_a_log_file_prefix_that_is_not_a_plain_name_is_a_usage_error(ipexrun, tmp_path, prefix):
    # "../x" would write the logs outside --log-dir.
    logs = tmp_path / "logs"
    line = one_line_usage_error(run(ipexrun, "--log-dir", str(logs), "--log-file-prefix", prefix,
                                    "--no-python", "true"))
    assert "--log-file-prefix" in line, line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["-2", "-7"])
def test_a_negative_node_id_is_a_usage_error(ipexrun, value):
    line = one_line_usage_error(dry_run(ipexrun, "--node-id", value, "--no-python", "true"))
    assert "--node" in line, line


OTHER_MACHINE = {b"HWLOC_XMLFILE": TWO_BY_28.encode()}


@pytest.mark.parametrize("variables", [
    {b"HWLOC_XMLFILE": b"/nonexistent/ipex-topology.xml"},
    {b"HWLOC_XMLFILE": b"/dev/null"},
    {b"HWLOC_SYNTHETIC": b"no such synthetic description"},
])
def test_an_hwloc_topology_variable_that_cannot_be_used_is_an_error_naming_it(ipexrun, variables):
    # hwloc itself silently falls back to this machine: the plan would be for another one.
    r = run(ipexrun, "--dry-run", "--no-python", "true", env=variables)
    line = one_line_usage_error(r)
    name = next(iter(variables)).decode()
    assert name in line, line


def test_an_hwloc_topology_variable_plans_that_machine_in_a_dry_run(ipexrun):
    r = run(ipexrun, "--dry-run", "--ninstances", "2", "--no-python", "true", env=OTHER_MACHINE)
    assert r.returncode == 0, r.stderr
    assert [len(i["cpus"]) for i in json.loads(r.stdout)["instances"]] == [28, 28]


@pytest.mark.parametrize("variables", [OTHER_MACHINE,
                                       {b"HWLOC_SYNTHETIC": b"pack:2 core:300 pu:2"}])
def test_a_real_launch_on_another_machines_topology_is_a_usage_error(ipexrun, variables):
    # Binding to CPUs this machine does not have fails for some instances and silently
    # squeezes the others; --topology already demands --dry-run.
    r = run(ipexrun, "--ninstances", "2", "--no-python", "true", env=variables)
    line = one_line_usage_error(r)
    assert next(iter(variables)).decode() in line and "--dry-run" in line, line


def test_an_ld_preload_entry_that_is_a_folder_is_dropped_with_a_warning(ipexrun, tmp_path):
    # The loader cannot preload a folder: it would print an error in every instance.
    r = dry_run(ipexrun, "--no-python", "true", env={b"LD_PRELOAD": str(tmp_path).encode()})
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert any(str(tmp_path) in w for w in doc["warnings"]), doc["warnings"]
    assert str(tmp_path) not in doc["instances"][0]["env"].get("LD_PRELOAD", "")


def test_a_bare_ld_preload_name_the_loader_cannot_find_is_dropped_with_a_warning(ipexrun):
    # ld.so searches a name without '/' as it searches a program's libraries, and prints an
    # error in every process that cannot have it.
    missing = "libipexrun-test-no-such-library.so"
    r = dry_run(ipexrun, "--no-python", "true", env={b"LD_PRELOAD": f"libm.so.6 {missing}".encode()})
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [w for w in doc["warnings"] if "LD_PRELOAD" in w] == [
        f"LD_PRELOAD entry '{missing}' is not found by the dynamic loader; dropped"]
    preload = doc["instances"][0]["env"]["LD_PRELOAD"].split(":")
    assert "libm.so.6" in preload and missing not in preload
    # A real run: no instance meets the loader's error.
    r = run(ipexrun, "--ninstances", "1", "--no-python", "sh", "-c", "echo ok",
            env={b"LD_PRELOAD": missing.encode()})
    assert r.returncode == 0 and r.stdout == b"[0] ok\n", r
    assert not [line for line in r.stderr.splitlines() if line.startswith(b"[0]")], r.stderr


def test_a_bare_ld_preload_name_found_through_ld_library_path_is_kept(ipexrun, tmp_path):
    # Any loadable library (this Python's libm) under a name only LD_LIBRARY_PATH leads to.
    with open("/proc/self/maps") as maps:
        libm = next(line.split()[-1] for line in maps if line.rstrip().endswith("/libm.so.6"))
    shutil.copyfile(libm, tmp_path / "libipexrun-test-mine.so")
    env = {b"LD_PRELOAD": b"libipexrun-test-mine.so", b"LD_LIBRARY_PATH": bytes(tmp_path)}
    r = dry_run(ipexrun, "--no-python", "true", env=env)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert not [w for w in doc["warnings"] if "LD_PRELOAD" in w], doc["warnings"]
    # Unchanged (no allocator to add) means inherited as it was.
    preload = doc["instances"][0]["env"].get("LD_PRELOAD", "libipexrun-test-mine.so")
    assert "libipexrun-test-mine.so" in preload.split(":")
    r = dry_run(ipexrun, "--no-python", "true", env={b"LD_PRELOAD": b"libipexrun-test-mine.so"})
    assert any("libipexrun-test-mine.so" in w for w in json.loads(r.stdout)["warnings"])


@pytest.mark.parametrize("kind", ["endless", "folder"])
def test_a_hostfile_that_is_no_list_of_hosts_is_refused_at_once(ipexrun, tmp_path, kind):
    path = "/dev/zero" if kind == "endless" else str(tmp_path)
    r = run(ipexrun, "--dry-run", "--nnodes", "2", "--hostfile", path, "--no-python", "true")
    line = one_line_usage_error(r)
    assert path in line and ("MiB" in line if kind == "endless" else "directory" in line), line


@pytest.mark.parametrize("sizes", [["2147483647"], ["12345678"], ["4", "99999999999"]])
def test_a_huge_instance_size_is_named_too_large(ipexrun, sizes):
    line = one_line_usage_error(dry_run(ipexrun, "--ncores-per-instance", *sizes,
                                        "--no-python", "true"))
    assert f"--ncores-per-instance {sizes[-1]} is too large" in line, line


# argparse, which the peers use, reads "010" as ten; CLI11 alone read it as octal eight and
# "0x10" as sixteen: a silently different plan.
@pytest.mark.parametrize("option,text,expected", [
    ("--ninstances", "010", 10),
    ("--ninstances", "+02", 2),
    ("--ninstances", "00", 1),
])
def test_whole_numbers_are_read_in_decimal_even_with_leading_zeros(ipexrun, option, text,
                                                                   expected):
    r = dry_run(ipexrun, option, text, "--no-python", "true")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["instances"]) == expected


def test_benchmark_iterations_with_a_leading_zero_are_decimal(ipexrun):
    r = dry_run(ipexrun, "--benchmark-iterations", "010", "--no-python", "true")
    assert r.returncode == 0, r.stderr
    env = json.loads(r.stdout)["instances"][0]["env"]
    assert env["IPEXRUN_BENCHMARK_ITERATIONS"] == "10"


@pytest.mark.parametrize("option,text", [
    ("--ninstances", "0x10"), ("--ninstances", "0b11"), ("--ninstances", "2.0"),
    ("--ninstances", "1e1"), ("--node-id", "0x1"), ("--benchmark-iterations", "0x10"),
    ("--ninstances", "- 2"), ("--ninstances", "+"),
])
def test_numbers_in_other_notations_are_usage_errors(ipexrun, option, text):
    line = one_line_usage_error(dry_run(ipexrun, option, text, "--no-python", "true"))
    assert option.replace("-", "_") in line.replace("-", "_") and f"'{text}'" in line, line


def test_a_distributed_port_with_a_leading_zero_is_decimal(ipexrun):
    r = dry_run(ipexrun, "--nnodes", "1", "--master-port", "08080", "--no-python", "true")
    assert r.returncode == 0, r.stderr
    assert "8080" in json.dumps(json.loads(r.stdout))
    assert one_line_usage_error(dry_run(ipexrun, "--nnodes", "1", "--master-port", "0x50",
                                        "--no-python", "true"))


@pytest.mark.parametrize("kind", ["zero", "fifo", "folder", "garbage", "empty"])
def test_a_topology_file_that_is_no_export_is_refused_at_once(ipexrun, tmp_path, kind):
    # /dev/zero (and a FIFO nobody writes) kept hwloc reading for ever.
    path = {"zero": "/dev/zero", "folder": str(tmp_path)}.get(kind, str(tmp_path / "t.xml"))
    if kind == "fifo":
        os.mkfifo(path)
    elif kind in ("garbage", "empty"):
        pathlib.Path(path).write_bytes(b"<topology><object type=" if kind == "garbage" else b"")
    r = subprocess.run([ipexrun, "--dry-run", "--topology", path, "--no-python", "true"],
                       capture_output=True, timeout=20)
    line = one_line_usage_error(r)
    assert path in line, line
    assert ("regular file" in line) == (kind in ("zero", "fifo")), line

"""ipexrun's command line, checked through --dry-run plans: option spellings, errors, the
interpreter choice and the shared plan checker on every topology."""
import json
import os
import subprocess
import sys

import pytest

from project_paths import REPO, SHARED

TOPOLOGIES = REPO / "tests" / "topologies"
TWO_BY_28 = str(TOPOLOGIES / "xeon-2s28c2t.xml")


def run(ipexrun, *args, env=None):
    e = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "LD_PRELOAD", "KMP_AFFINITY", "IPEXRUN_PYTHON"):
        e.pop(name, None)
    e.update(env or {})
    return subprocess.run([ipexrun, *args], capture_output=True, text=True, env=e, timeout=60)


def plan(ipexrun, *args, env=None, topology=TWO_BY_28):
    r = run(ipexrun, "--dry-run", "--topology", topology, *args, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def cpu_lists(doc):
    return [(i["cpus"][0], i["cpus"][-1], len(i["cpus"])) for i in doc["instances"]]


def test_shared_plan_checker_passes_on_every_topology(ipexrun, shared_dir):
    r = subprocess.run([sys.executable, str(shared_dir / "checks" / "check_plans.py"), ipexrun],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "topology plans valid:" in r.stdout


def test_plan_document_has_the_promised_fields(ipexrun):
    doc = plan(ipexrun, "--ninstances", "2", "--no-python", "true")
    assert [i["index"] for i in doc["instances"]] == [0, 1]
    first = doc["instances"][0]
    assert first["cpus"] == list(range(0, 28))
    assert first["nodes"] == [0]
    assert first["omp_num_threads"] == 28
    assert first["env"]["OMP_NUM_THREADS"] == "28"
    assert first["argv"] == ["true"]


def test_the_peers_backend_word_cpu_may_come_first(ipexrun):
    args = ["--dry-run", "--topology", TWO_BY_28, "--ninstances", "2", "--no-python", "true"]
    plain, with_backend = run(ipexrun, *args), run(ipexrun, "cpu", *args)
    assert with_backend.returncode == 0, with_backend.stderr
    assert json.loads(with_backend.stdout)["instances"] == json.loads(plain.stdout)["instances"]
    xpu = run(ipexrun, "xpu", *args)
    assert xpu.returncode == 2 and xpu.stderr.count("\n") == 1 and "xpu" in xpu.stderr, xpu.stderr


def test_the_peers_python_module_entry_runs_this_launcher(ipexrun, build_dir):
    args = ["--dry-run", "--topology", TWO_BY_28, "--ninstances", "2", "--no-python", "true"]
    env = dict(os.environ, PYTHONPATH=str(build_dir / "python"))
    env.pop("LD_PRELOAD", None)
    via_module = subprocess.run(["/usr/bin/python3", "-m", "intel_extension_for_pytorch.cpu.launch", *args],
                                capture_output=True, text=True, env=env, timeout=120)
    assert via_module.returncode == 0, via_module.stderr
    assert json.loads(via_module.stdout)["instances"] == plan(ipexrun, *args[3:])["instances"]


@pytest.mark.parametrize("spelling", [
    ["--ninstances", "2", "--ncores-per-instance", "28"],
    ["--ninstance", "2", "--ncore_per_instance", "28"],
    ["--ninstances", "2", "--ncores_per_instance", "28"],
])
def test_old_and_new_spellings_give_the_same_plan(ipexrun, spelling):
    doc = plan(ipexrun, *spelling, "--no-python", "true")
    assert cpu_lists(doc) == [(0, 27, 28), (28, 55, 28)]


def test_several_sizes_before_the_program(ipexrun):
    doc = plan(ipexrun, "--ncores-per-instance", "5", "5", "6", "--no-python", "echo", "7")
    assert cpu_lists(doc) == [(0, 4, 5), (5, 9, 5), (10, 15, 6)]
    assert doc["instances"][0]["argv"] == ["echo", "7"]
    doc = plan(ipexrun, "--ncores-per-instance", "5,5,6", "--no-python", "true")
    assert len(doc["instances"]) == 3


def test_old_flags_map_to_new_behaviour(ipexrun):
    doc = plan(ipexrun, "--node_id", "1", "--use_logical_core", "--disable_numactl",
               "--enable_jemalloc", "--no_python", "true")
    inst = doc["instances"][0]
    assert inst["nodes"] == [1]
    assert inst["cpus"] == list(range(28, 56)) + list(range(84, 112))
    assert inst["argv"][:2] == ["taskset", "-c"]
    assert doc["allocator"] == "jemalloc"
    assert "MALLOC_CONF" in inst["env"]
    doc = plan(ipexrun, "--skip-cross-node-cores", "--ninstances", "3", "--core_list",
               "0-27, 28-55", "--no-python", "true")
    assert cpu_lists(doc) == [(0, 27, 28), (28, 41, 14), (42, 55, 14)]


def test_instance_idx_minus_one_is_all(ipexrun):
    assert len(plan(ipexrun, "--ninstances", "4", "--instance-idx", "-1", "--no-python", "true")["instances"]) == 4
    doc = plan(ipexrun, "--ninstances", "4", "--instance_idx", "1,3", "--no-python", "true")
    assert [i["index"] for i in doc["instances"]] == [1, 3]


def test_numactl_prefix_carries_cpus_and_nodes(ipexrun):
    doc = plan(ipexrun, "--ninstances", "3", "--multi-task-manager", "numactl", "--no-python", "true")
    assert doc["instances"][1]["argv"] == ["numactl", "-C", "18-35", "-m", "0-1", "true"]


@pytest.mark.parametrize("args, message", [
    (["--ninstances", "57"], "only 56 (CPUs 0-55) physical cores"),
    (["--ninstances", "x"], "--ninstances"),
    (["--ncores-per-instance", "100"], "at most 56"),
    (["--nodes-list", "5"], "NUMA node 5 does not exist"),
    (["--cores-list", "0-3,3"], "appears twice"),
    (["--cores-list", "200"], "CPU 200 does not exist"),
    (["--instance-idx", "9", "--ninstances", "2"], "out of range"),
    (["--latency-mode", "--throughput-mode"], "cannot be used together"),
    (["--strategy", "wide"], "--strategy"),
    (["--no-such-option"], "--no-such-option"),
])
def test_impossible_requests_are_one_line_usage_errors(ipexrun, args, message):
    r = run(ipexrun, "--dry-run", "--topology", TWO_BY_28, *args, "--no-python", "true")
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert message in lines[0]
    assert "Traceback" not in r.stderr and "terminate" not in r.stderr


def test_missing_program_and_bad_topology_are_usage_errors(ipexrun):
    r = run(ipexrun, "--ninstances", "2")
    assert r.returncode == 2 and "no program" in r.stderr
    r = run(ipexrun, "--dry-run", "--topology", "/nonexistent.xml", "--no-python", "true")
    assert r.returncode == 2 and "/nonexistent.xml" in r.stderr
    r = run(ipexrun, "--dry-run", "not_python_program")
    assert r.returncode == 2 and "--no-python" in r.stderr


def test_python_programs_use_a_torch_capable_interpreter(ipexrun, tmp_path):
    script = tmp_path / "s.py"
    script.write_text("print('hi')\n")
    doc = plan(ipexrun, str(script), "a b")
    assert doc["python"]["source"] == "found at build time"
    assert doc["instances"][0]["argv"] == [doc["python"]["path"], "-u", str(script), "a b"]
    r = subprocess.run([doc["python"]["path"], "-c", "import torch"], capture_output=True)
    assert r.returncode == 0, "the build-time interpreter cannot import torch"
    doc = plan(ipexrun, str(script), env={"IPEXRUN_PYTHON": "/usr/bin/python3"})
    assert doc["python"] == {"path": "/usr/bin/python3", "source": "$IPEXRUN_PYTHON"}
    doc = plan(ipexrun, "--python", sys.executable, str(script),
               env={"IPEXRUN_PYTHON": "/usr/bin/python3"})
    assert doc["python"] == {"path": sys.executable, "source": "--python"}
    doc = plan(ipexrun, "-m", "json.tool", "--indent", "2")
    assert doc["instances"][0]["argv"][1:] == ["-u", "-m", "json.tool", "--indent", "2"]
    r = run(ipexrun, "--dry-run", "--python", "/nonexistent/python", str(script))
    assert r.returncode == 2 and "/nonexistent/python" in r.stderr


def test_user_environment_wins_with_a_warning(ipexrun):
    doc = plan(ipexrun, "--ninstances", "2", "--omp-runtime", "default", "--no-python", "true",
               env={"OMP_PROC_BIND": "spread"})
    assert all("OMP_PROC_BIND" not in i["env"] for i in doc["instances"])
    assert sum("OMP_PROC_BIND" in w for w in doc["warnings"]) == 1


def test_config_file_presets_and_command_line_override(ipexrun):
    config = REPO / "configs" / "throughput.toml"
    doc = plan(ipexrun, "--config", str(config), "--no-python", "true")
    assert cpu_lists(doc) == [(0, 27, 28), (28, 55, 28)]
    latency = REPO / "configs" / "latency.toml"
    doc = plan(ipexrun, "--config", str(latency), "--no-python", "true")
    assert {len(i["cpus"]) for i in doc["instances"]} == {4}
    doc = plan(ipexrun, "--config", str(REPO / "configs" / "two-instances.toml"),
               "--ninstances", "4", "--no-python", "true")
    assert len(doc["instances"]) == 4


def test_multi_stream_preset_preloads_jemalloc(ipexrun):
    doc = plan(ipexrun, "--config", str(REPO / "configs" / "multi-stream.toml"), "--no-python", "true")
    assert len(doc["instances"]) == 2  # one per NUMA node of the default test topology
    for inst in doc["instances"]:
        assert "libjemalloc" in inst["env"]["LD_PRELOAD"]
        assert "MALLOC_CONF" in inst["env"]


def test_every_preset_config_plans(ipexrun):
    configs = sorted((REPO / "configs").glob("*.toml"))
    assert len(configs) >= 4
    for config in configs:
        doc = plan(ipexrun, "--config", str(config), "--no-python", "true")
        assert doc["instances"], config


def test_codeless_mode_runs_the_program_under_the_auto_ipex_runner(ipexrun, tmp_path):
    script = tmp_path / "s.py"
    script.write_text("print('hi')\n")
    argv = plan(ipexrun, "--auto_ipex", "--dtype", "bfloat16", str(script), "x")["instances"][0]["argv"]
    assert argv[1:] == ["-u", "-m", "ipex.cpu.auto_ipex", "--dtype", "bfloat16", str(script), "x"]
    argv = plan(ipexrun, "--auto-ipex", "-m", "mypkg.run")["instances"][0]["argv"]
    assert argv[-2:] == ["--module", "mypkg.run"]
    r = run(ipexrun, "--dry-run", "--auto-ipex", "--no-python", "true")
    assert r.returncode == 2 and "--no-python" in r.stderr
    r = run(ipexrun, "--dry-run", "--auto-ipex", "--dtype", "int8", str(script))
    assert r.returncode == 2 and "--dtype" in r.stderr


def test_codeless_graph_mode_options_reach_the_runner(ipexrun, tmp_path):
    script = tmp_path / "s.py"
    script.write_text("print('hi')\n")
    for spelling in ("--ipex-graph-mode", "--ipex_graph_mode"):
        result = plan(ipexrun, "--auto-ipex", spelling, str(script))
        assert result["instances"][0]["argv"][3:7] == ["ipex.cpu.auto_ipex", "--dtype", "float32",
                                                       "--ipex-graph-mode"]
        assert result["warnings"] == []
    argv = plan(ipexrun, "--auto-ipex", "--disable_ipex_graph_mode", str(script))["instances"][0]["argv"]
    assert argv[6] == "--disable-ipex-graph-mode" and "--ipex-graph-mode" not in argv
    argv = plan(ipexrun, "--auto-ipex", str(script))["instances"][0]["argv"]
    assert not any("graph-mode" in a for a in argv)
    r = run(ipexrun, "--dry-run", "--auto-ipex", "--ipex-graph-mode", "--disable-ipex-graph-mode", str(script))
    assert r.returncode == 2 and "--ipex-graph-mode" in r.stderr and r.stdout == ""
    result = plan(ipexrun, "--ipex-graph-mode", str(script))
    assert result["warnings"] == ["--ipex-graph-mode has no effect without --auto-ipex"]
    assert "ipex.cpu.auto_ipex" not in result["instances"][0]["argv"]
    help_text = run(ipexrun, "--help").stdout
    codeless = help_text.split("Codeless optimisation")[1].split("\n\n")[0]
    assert "--ipex-graph-mode" in codeless and "--disable-ipex-graph-mode" in codeless


@pytest.mark.parametrize("toml,flags", [
    ("ncores-per-instance = [2, 3, 4]", ["--ncores-per-instance", "2", "3", "4"]),
    ("cores-list = [0, 1, 5]\nninstances = 3", ["--cores-list", "0,1,5", "--ninstances", "3"]),
    ('nodes-list = [1]\nninstances = 2', ["--nodes-list", "1", "--ninstances", "2"]),
    ('instance-idx = [0, 2]\nninstances = 3', ["--instance-idx", "0,2", "--ninstances", "3"]),
])
def test_a_toml_array_in_a_config_is_the_options_list(ipexrun, tmp_path, toml, flags):
    config = tmp_path / "c.toml"
    config.write_text(toml + "\n")
    from_file = plan(ipexrun, "--config", str(config), "--no-python", "true")
    from_line = plan(ipexrun, *flags, "--no-python", "true")
    assert cpu_lists(from_file) == cpu_lists(from_line)


def test_ccl_workers_on_smt_siblings_stay_inside_the_cores_list(ipexrun):
    # CPU n's sibling is n + 56. Siblings outside --cores-list were taken all the same.
    args = ["--nnodes", "1", "--nprocs-per-node", "2", "--ccl-worker-count", "1",
            "--logical-cores-for-ccl", "--no-python", "true"]
    doc = plan(ipexrun, "--cores-list", "0-3,56,58", *args)
    ranks = doc["nodes"][0]["ranks"]
    assert [r["env"]["CCL_WORKER_AFFINITY"] for r in ranks] == ["56", "58"]
    r = run(ipexrun, "--dry-run", "--topology", TWO_BY_28, "--cores-list", "0-3", *args)
    assert r.returncode == 2 and r.stdout == "", r.stdout[:300]
    assert r.stderr.count("\n") == 1 and "in --cores-list" in r.stderr, r.stderr

"""ipexrun really launching: each instance reports what it got (CPUs, environment,
arguments), and the launcher's exit code, signal handling and clean-up are checked from
outside. The expected values come from the same command's --dry-run plan."""
import contextlib
import json
import os
import pathlib
import pty
import select
import shutil
import signal
import subprocess
import time
import uuid

import pytest

FIELDS = ("OMP_NUM_THREADS", "LD_PRELOAD", "KMP_AFFINITY", "IPEXRUN_PYTHON", "KMP_BLOCKTIME",
          "OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY", "MALLOC_CONF")


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if k not in FIELDS}
    env.update(extra or {})
    return env


def run(ipexrun, *args, env=None, timeout=60):
    return subprocess.run([ipexrun, *args], capture_output=True, text=True,
                          env=clean_env(env), timeout=timeout)


def dry_plan(ipexrun, *args, env=None):
    r = run(ipexrun, "--dry-run", *args, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["instances"]


def lines_of(stdout, index):
    prefix = f"[{index}] "
    return [line[len(prefix):] for line in stdout.splitlines() if line.startswith(prefix)]


def compact(ids):
    """0,1,2,5 -> '0-2,5', the kernel's Cpus_allowed_list form."""
    parts, start = [], None
    for i, v in enumerate(ids):
        if start is None:
            start = v
        if i + 1 == len(ids) or ids[i + 1] != v + 1:
            parts.append(str(start) if start == v else f"{start}-{v}")
            start = None
    return ",".join(parts)


def marked_processes(marker, but_not=None):
    """PIDs of live processes whose command line has the marker, leaving out those running
    the program `but_not` (the launcher and its own helper process)."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() not in (entry / "cmdline").read_bytes():
                continue
            if but_not and os.path.realpath(entry / "exe") == os.path.realpath(but_not):
                continue
            found.append(int(entry.name))
        except OSError:
            pass
    return found


def process_state(pid):
    stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


def wait_for(condition, seconds=10):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


TWO = ("--ninstances", "2", "--no-python")


def test_each_instance_runs_on_the_cpus_of_its_plan(ipexrun):
    program = ["/bin/sh", "-c", "grep Cpus_allowed_list /proc/self/status"]
    plan = dry_plan(ipexrun, *TWO, *program)
    r = run(ipexrun, *TWO, *program)
    assert r.returncode == 0, r.stderr
    assert len(plan) == 2
    cpu_sets = []
    for instance in plan:
        assert lines_of(r.stdout, instance["index"]) == [
            "Cpus_allowed_list:\t" + compact(instance["cpus"])]
        cpu_sets.append(set(instance["cpus"]))
    assert not cpu_sets[0] & cpu_sets[1]


@pytest.mark.parametrize("manager", ["numactl", "taskset", "none"])
def test_task_managers_bind_through_their_prefix_or_not_at_all(ipexrun, manager):
    if manager != "none" and not shutil.which(manager):
        pytest.skip(f"{manager} is not installed")
    program = ["--multi-task-manager", manager, *TWO, "/bin/sh", "-c",
               "grep Cpus_allowed_list /proc/self/status"]
    plan = dry_plan(ipexrun, *program)
    r = run(ipexrun, *program)
    assert r.returncode == 0, r.stderr
    for instance in plan:
        cpus = instance["cpus"] if manager != "none" else sorted(os.sched_getaffinity(0))
        assert lines_of(r.stdout, instance["index"]) == ["Cpus_allowed_list:\t" + compact(cpus)]


def test_environment_is_the_plans_on_top_of_the_callers(ipexrun):
    names = ["OMP_NUM_THREADS", "KMP_AFFINITY", "LD_PRELOAD", "IPEXRUN_INSTANCE_INDEX",
             "E2E_CALLER_VAR"]
    script = "; ".join(f'echo "{n}=${n}"' for n in names)
    program = ["/bin/sh", "-c", script]
    env = {"E2E_CALLER_VAR": "kept as is"}
    plan = dry_plan(ipexrun, *TWO, *program, env=env)
    r = run(ipexrun, *TWO, *program, env=env)
    assert r.returncode == 0, r.stderr
    for instance in plan:
        got = dict(line.split("=", 1) for line in lines_of(r.stdout, instance["index"]))
        assert got["E2E_CALLER_VAR"] == "kept as is"
        assert got["OMP_NUM_THREADS"] == str(instance["omp_num_threads"])
        for name in names[:-1]:
            assert got[name] == instance["env"].get(name, ""), name


def test_arguments_arrive_exactly_as_given(ipexrun):
    args = ["two words", "it's", "a;b", '"quoted"', "$HOME", "*", "", "x && y", "back\\slash"]
    r = run(ipexrun, *TWO, "/bin/sh", "-c", 'for a in "$@"; do printf "<%s>\\n" "$a"; done',
            "sh", *args)
    assert r.returncode == 0, r.stderr
    for index in (0, 1):
        assert lines_of(r.stdout, index) == [f"<{a}>" for a in args]


def test_first_failing_code_is_the_launchers_and_the_others_are_stopped(ipexrun, tmp_path):
    # Instance 1 fails once instance 0 has set its trap.
    script = ('if [ "$IPEXRUN_INSTANCE_INDEX" = 1 ]; then '
              'while [ ! -e "$0" ]; do sleep 0.02; done; exit 7; fi; '
              'trap "echo stopped; exit 0" TERM; : > "$0"; sleep 60 & wait')
    start = time.monotonic()
    r = run(ipexrun, *TWO, "/bin/sh", "-c", script, str(tmp_path / "ready"))
    assert r.returncode == 7, r.stderr
    assert time.monotonic() - start < 30
    assert lines_of(r.stdout, 0) == ["stopped"]
    assert "exit 7 (first failure)" in r.stderr


def test_python_program_gets_its_cpus_and_arguments(ipexrun, tmp_path):
    program = tmp_path / "prog.py"
    program.write_text("import os, sys\n"
                       "print(sorted(os.sched_getaffinity(0)), sys.argv[1:], flush=True)\n"
                       "sys.exit(int(os.environ['IPEXRUN_INSTANCE_INDEX']) * 5)\n")
    args = ("--python", "/usr/bin/python3", "--ninstances", "2", str(program), "a b", "c;d")
    plan = dry_plan(ipexrun, *args)
    r = run(ipexrun, "--keep-going", *args)
    assert r.returncode == 5, r.stderr
    for instance in plan:
        assert lines_of(r.stdout, instance["index"]) == [
            f"{instance['cpus']} ['a b', 'c;d']"]


def test_killed_instance_gives_128_plus_signal(ipexrun):
    r = run(ipexrun, "--ninstances", "1", "--no-python", "/bin/sh", "-c", "kill -ABRT $$")
    assert r.returncode == 128 + signal.SIGABRT, r.stderr
    assert "killed by SIGABRT" in r.stderr


def test_missing_program_is_127_with_one_line(ipexrun):
    r = run(ipexrun, "--ninstances", "1", "--no-python", "/nonexistent/e2e-prog")
    assert r.returncode == 127
    assert ("ipexrun: cannot execute '/nonexistent/e2e-prog': No such file or directory"
            in r.stderr), r.stderr


@pytest.mark.parametrize("kind,reason", [
    ("folder", "Is a directory"),
    ("missing interpreter", "interpreter '/nonexistent/e2e-interp'"),
    ("not executable", "not executable"),
])
def test_a_program_that_cannot_run_is_one_line_naming_why(ipexrun, tmp_path, kind, reason):
    program = tmp_path / "e2e-prog"
    if kind == "folder":
        program.mkdir()
    else:
        interpreter = "/nonexistent/e2e-interp" if kind == "missing interpreter" else "/bin/sh"
        program.write_text(f"#!{interpreter}\necho ran\n")
        program.chmod(0o755 if kind == "missing interpreter" else 0o644)
    r = run(ipexrun, "--ninstances", "1", "--no-python", str(program))
    assert r.returncode in (126, 127), r.stderr
    lines = [line for line in r.stderr.splitlines() if "cannot execute" in line]
    assert len(lines) == 1 and str(program) in lines[0] and reason in lines[0], r.stderr


def test_programs_are_found_in_path_as_execvp_would(ipexrun, tmp_path):
    """The launcher looks the program up in PATH once; what execvp does must still hold:
    PATH order, a script without #! runs under sh, a name found nowhere is 127."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "e2e-which").write_text("echo from-first\n")  # no #!: execvp runs it with sh
    (first / "e2e-which").chmod(0o755)
    (second / "e2e-which").write_text("#!/bin/sh\necho from-second\n")
    (second / "e2e-which").chmod(0o755)
    (first / "e2e-not-exec").write_text("#!/bin/sh\necho wrong\n")  # not executable: skipped
    (second / "e2e-not-exec").write_text("#!/bin/sh\necho right\n")
    (second / "e2e-not-exec").chmod(0o755)
    path = f"{first}:{second}:{os.environ['PATH']}"
    for name, expected in (("e2e-which", "from-first"), ("e2e-not-exec", "right")):
        r = run(ipexrun, "--ninstances", "1", "--no-python", name, env={"PATH": path})
        assert r.returncode == 0, r.stderr
        assert f"[0] {expected}" in r.stdout, r.stdout
    r = run(ipexrun, "--ninstances", "1", "--no-python", "e2e-nowhere", env={"PATH": path})
    assert r.returncode == 127
    assert "ipexrun: cannot execute 'e2e-nowhere': No such file or directory" in r.stderr, r.stderr


def test_log_dir_keeps_every_run(ipexrun, tmp_path):
    (tmp_path / "old.txt").write_text("earlier")
    args = ("--log-dir", str(tmp_path), "--log-file-prefix", "e2e", *TWO, "/bin/sh", "-c",
            'echo "hello from $IPEXRUN_INSTANCE_INDEX"')
    for _ in range(2):
        r = run(ipexrun, *args)
        assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert (tmp_path / "old.txt").read_text() == "earlier"
    assert len([n for n in names if n.endswith("_launcher.log")]) == 2
    for index in (0, 1):
        logs = [n for n in names if f"_instance_{index}_cpus_" in n]
        assert len(logs) == 2, names
        for name in logs:
            assert (tmp_path / name).read_text() == f"hello from {index}\n"


def default_signals():
    """Runs in the child before exec. A test that signals the launcher must not depend on how
    pytest was started: nohup or a background job leaves SIGHUP or SIGINT ignored, exec keeps
    that, and ipexrun rightly leaves an ignored signal ignored."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)


def start(ipexrun, program):
    return subprocess.Popen([ipexrun, *TWO, *program], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=clean_env(),
                            preexec_fn=default_signals)


def wait_started(proc, count):
    """Reads stdout until `count` instances said 'started'."""
    started = 0
    while started < count:
        line = proc.stdout.readline()
        assert line, "ipexrun ended early: " + proc.stderr.read()
        started += line.rstrip().endswith("started")


@contextlib.contextmanager
def two_instances_with_helpers(ipexrun):
    """Yields (launcher, marker) once both instances and the helper each started carry the
    marker; whatever still runs afterwards is killed."""
    marker = "e2e-marker-" + uuid.uuid4().hex
    script = ('/usr/bin/python3 -c "import time; time.sleep(120)" "$0" & echo started; wait')
    proc = start(ipexrun, ["/bin/sh", "-c", script, marker])
    try:
        wait_started(proc, 2)
        # 2 instances + 2 helpers (a helper in the middle of its exec may be missed once)
        wait_for(lambda: len(marked_processes(marker, ipexrun)) == 4)
        yield proc, marker
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_to_the_launcher_ends_every_instance_and_helper(ipexrun, sig):
    with two_instances_with_helpers(ipexrun) as (proc, marker):
        proc.send_signal(sig)
        proc.wait(timeout=30)
    assert proc.returncode == 128 + sig
    assert marked_processes(marker) == []


def test_sigkilled_launcher_takes_its_instances_and_their_helpers_along(ipexrun):
    with two_instances_with_helpers(ipexrun) as (proc, marker):
        proc.kill()
        proc.wait(timeout=30)
    # The death signal and the watchdog act asynchronously.
    wait_for(lambda: marked_processes(marker) == [])


def test_ctrl_c_on_the_terminal_reaches_the_instances(ipexrun):
    """A terminal's Ctrl-C goes to its foreground process group: the launcher alone, since
    every instance leads a group of its own. The launcher has to pass it on."""
    marker = "e2e-marker-" + uuid.uuid4().hex
    script = '/usr/bin/python3 -c "import time; time.sleep(120)" "$0" & echo started; wait'
    pid, terminal = pty.fork()
    if pid == 0:  # child: session leader with the pty as its controlling terminal
        try:
            default_signals()
            os.execve(ipexrun, [ipexrun, *TWO, "/bin/sh", "-c", script, marker], clean_env())
        finally:
            os._exit(127)
    output, done = b"", 0
    try:
        deadline = time.monotonic() + 30
        while output.count(b"started") < 2:
            assert time.monotonic() < deadline, output
            if select.select([terminal], [], [], 1)[0]:
                output += os.read(terminal, 4096)
        os.write(terminal, b"\x03")
        deadline = time.monotonic() + 30
        done, status = os.waitpid(pid, os.WNOHANG)
        while done == 0:
            assert time.monotonic() < deadline, output
            if select.select([terminal], [], [], 0.1)[0]:
                try:
                    output += os.read(terminal, 4096)
                except OSError:  # EIO: nobody has the terminal open any more
                    time.sleep(0.05)
            done, status = os.waitpid(pid, os.WNOHANG)
    finally:
        if done == 0:  # a failed assertion above: do not leave the launcher running
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(terminal)
    assert os.waitstatus_to_exitcode(status) == 128 + signal.SIGINT, output
    assert b"received SIGINT" in output
    assert marked_processes(marker) == []


def test_ctrl_z_stops_the_instances_and_continuing_resumes_them(ipexrun):
    marker = "e2e-marker-" + uuid.uuid4().hex
    script = 'echo started; sleep 1.5; echo finished'
    proc = start(ipexrun, ["/bin/sh", "-c", script, marker])
    try:
        wait_started(proc, 2)
        wait_for(lambda: len(marked_processes(marker, ipexrun)) == 2)
        instances = marked_processes(marker, ipexrun)
        proc.send_signal(signal.SIGTSTP)
        wait_for(lambda: process_state(proc.pid) == "T")
        wait_for(lambda: all(process_state(pid) == "T" for pid in instances))
        time.sleep(0.5)
        assert all(process_state(pid) == "T" for pid in instances)
        proc.send_signal(signal.SIGCONT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert lines_of(out, 0) == ["finished"] and lines_of(out, 1) == ["finished"]


def test_piped_input_reaches_the_instance(ipexrun):
    r = subprocess.run([ipexrun, "--ninstances", "1", "--no-python", "cat"], input="piped in\n",
                       capture_output=True, text=True, env=clean_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    assert lines_of(r.stdout, 0) == ["piped in"]


def test_terminal_input_is_not_offered_to_background_instances(ipexrun):
    """Instances lead their own process groups, so reading the terminal would stop them
    (SIGTTIN) for good; they get /dev/null instead and `cat` ends at once."""
    pid, terminal = pty.fork()
    if pid == 0:
        try:
            os.execve(ipexrun, [ipexrun, "--ninstances", "1", "--no-python", "cat"], clean_env())
        finally:
            os._exit(127)
    output, done, status = b"", 0, 0
    try:
        deadline = time.monotonic() + 30
        while done == 0:
            assert time.monotonic() < deadline, output
            if select.select([terminal], [], [], 0.1)[0]:
                try:
                    output += os.read(terminal, 4096)
                except OSError:
                    time.sleep(0.05)
            done, status = os.waitpid(pid, os.WNOHANG)
    finally:
        if done == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(terminal)
    assert os.waitstatus_to_exitcode(status) == 0, output
    assert b"exit 0" in output

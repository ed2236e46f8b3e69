"""Random `ipexrun --dry-run` plans on real and generated topologies, checked against the
invariants every plan must keep (see check_case). Used by test_plan_fuzz.py with a fixed seed;
run it by hand for many more:  python3 tests/cli/plan_fuzz.py IPEXRUN [first_seed] [nseeds]
[cases_per_seed]."""
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
SHARED_TOPOLOGIES = REPO.parent / "shared" / "topologies"
OUR_TOPOLOGIES = REPO / "tests" / "topologies"

# --- hwloc bitmaps -----------------------------------------------------------------------


def parse_bitmap(text):
    """hwloc's '0x0000ffff,0x00000001' (32-bit words, most significant first) -> set."""
    out = set()
    if not text:
        return out
    for i, word in enumerate(reversed(text.split(","))):
        if not word or word.startswith("0xf...f"):
            continue
        value = int(word, 16)
        for bit in range(32):
            if value >> bit & 1:
                out.add(i * 32 + bit)
    return out


def format_bitmap(ids):
    if not ids:
        return "0x0"
    words = [0] * (max(ids) // 32 + 1)
    for i in ids:
        words[i // 32] |= 1 << (i % 32)
    return ",".join("0x%08x" % w for w in reversed(words))


# --- what a topology holds, read independently of ipexrun ---------------------------------


class Facts:
    """PUs of an hwloc XML: os -> (core key, NUMA nodes listing it, E-core?), the allowed
    CPUs and nodes, and the NUMA nodes with their CPUs."""

    def __init__(self, path):
        root = ET.parse(path).getroot()
        machine = root.find("object")
        self.allowed = parse_bitmap(machine.get("allowed_cpuset") or machine.get("cpuset"))
        self.allowed_nodes = parse_bitmap(machine.get("allowed_nodeset") or machine.get("nodeset"))
        self.core_of, self.nodes_of, self.node_cpus = {}, {}, {}

        def walk(obj, core):
            kind = obj.get("type")
            if kind == "Core":
                core = ("core", obj.get("gp_index"))
            if kind == "NUMANode":
                self.node_cpus[int(obj.get("os_index"))] = parse_bitmap(obj.get("cpuset"))
            if kind == "PU":
                os_index = int(obj.get("os_index"))
                self.core_of[os_index] = core or ("pu", os_index)
                own_nodes[os_index] = parse_bitmap(obj.get("complete_nodeset"))
            for child in obj.findall("object"):
                walk(child, core)

        own_nodes = {}
        walk(machine, None)
        self.closest = {}  # PU -> the nodes attached nearest it (machine-wide memory is not)
        for pu in self.core_of:
            # A PU whose node is not in the topology (a container that sees only some
            # nodes) still sits in that node, as its complete nodeset says.
            listing = {n for n, cpus in self.node_cpus.items() if pu in cpus}
            self.nodes_of[pu] = listing or own_nodes[pu]
            if listing:
                nearest = min(len(self.node_cpus[n]) for n in listing)
                self.closest[pu] = {n for n in listing if len(self.node_cpus[n]) == nearest}
            else:
                self.closest[pu] = own_nodes[pu]
        kinds = []
        for k in root.findall("cpukind"):
            eff = k.get("forced_efficiency") or k.get("efficiency")
            freq = [i.get("value") for i in k.findall("info") if i.get("name") == "FrequencyMaxMHz"]
            score = int(eff) if eff is not None and int(eff) >= 0 else int(freq[0]) if freq else 0
            kinds.append((parse_bitmap(k.get("cpuset")), score))
        self.ecores = set()
        if len(kinds) > 1:
            best = max(score for _, score in kinds)
            for cpus, score in kinds:
                if score < best:
                    self.ecores |= cpus
        self.usable = {p for p in self.core_of if p in self.allowed}

    def candidates(self, logical, ecores, within=None):
        """The CPUs a plan may use: usable, P-cores unless asked, one per core unless asked."""
        pus = sorted(p for p in self.usable if within is None or p in within)
        if not ecores:  # (only E-cores usable: a refusal that names --use-e-cores)
            pus = [p for p in pus if p not in self.ecores]
        if not logical:
            seen, firsts = set(), []
            for p in pus:
                if self.core_of[p] not in seen:
                    seen.add(self.core_of[p])
                    firsts.append(p)
            pus = firsts
        return pus


# --- topologies ---------------------------------------------------------------------------


def random_synthetic(rng):
    """An hwloc synthetic description of an odd shape."""
    shape = rng.choice(["plain", "numa_in_pack", "many_numa", "machine_numa", "two_numa", "tiny",
                        "big", "smt"])
    if shape == "tiny":
        return rng.choice(["pu:1", "core:1 pu:1", "pack:1 core:1 pu:2", "core:2 pu:1"])
    if shape == "big":
        return f"pack:{rng.choice([2, 4])} [numa] l3:{rng.choice([2, 4])} core:{rng.choice([8, 16, 24])} pu:2"
    pack, core = rng.randint(1, 4), rng.randint(1, 6)
    pu = rng.choice([1, 1, 2, 2, 4, 8]) if shape == "smt" else rng.choice([1, 2])
    if shape == "plain":
        return f"pack:{pack} core:{core} pu:{pu}"
    if shape == "numa_in_pack":
        return f"pack:{pack} [numa] core:{core} pu:{pu}"
    if shape == "many_numa":
        return f"pack:{pack} group:{rng.randint(2, 4)} [numa] core:{core} pu:{pu}"
    if shape == "machine_numa":
        return f"[numa] pack:{pack} [numa] core:{core} pu:{pu}"
    if shape == "two_numa":
        return f"pack:{pack} [numa] [numa] core:{core} pu:{pu}"
    return f"numa:{pack} core:{core} pu:{pu}"


def export_synthetic(description, path):
    subprocess.run(["lstopo-no-graphics", "-i", description, "--of", "xml", "-f", str(path)],
                   check=True, capture_output=True, timeout=30)


CPU_SETS = ("cpuset", "complete_cpuset", "allowed_cpuset")
NODE_SETS = ("nodeset", "complete_nodeset", "allowed_nodeset")


def renumber(path, rng=None, cpu_map=None, node_map=None):
    """Gives the PUs and NUMA nodes of an exported topology other OS numbers (these maps, or
    else sparse and shuffled ones from `rng`), every set renumbered alike: a kernel may
    number them in any order."""
    tree = ET.parse(path)
    root = tree.getroot()
    objects = list(root.iter("object"))
    pus = sorted(int(o.get("os_index")) for o in objects if o.get("type") == "PU")
    nodes = sorted(int(o.get("os_index")) for o in objects if o.get("type") == "NUMANode")
    if cpu_map is None:
        stride = rng.choice([1, 1, 3, 37])
        cpu_map = dict(zip(pus, (i * stride for i in rng.sample(range(len(pus)), len(pus)))))
    if node_map is None:
        node_map = dict(zip(nodes, rng.sample(range(len(nodes) + rng.choice([0, 5])), len(nodes))))

    def remap(obj, names, mapping):
        for name in names:
            if obj.get(name) is not None:
                obj.set(name, format_bitmap({mapping.get(i, i) for i in parse_bitmap(obj.get(name))}))

    for o in objects:
        remap(o, CPU_SETS, cpu_map)
        remap(o, NODE_SETS, node_map)
        if o.get("type") == "PU":
            o.set("os_index", str(cpu_map.get(int(o.get("os_index")), int(o.get("os_index")))))
        if o.get("type") == "NUMANode":
            o.set("os_index", str(node_map.get(int(o.get("os_index")), int(o.get("os_index")))))
    for kind in root.findall("cpukind"):
        remap(kind, ("cpuset",), cpu_map)
    tree.write(path)


def mutate(src, dst, rng):
    """A copy of `src` with some of: disallowed CPUs and nodes, offline CPUs (gone from the
    tree but in the complete set), hybrid core kinds. Returns what was done."""
    tree = ET.parse(src)
    root = tree.getroot()
    machine = root.find("object")
    pus = sorted(int(o.get("os_index")) for o in machine.iter("object") if o.get("type") == "PU")
    nodes = sorted(int(o.get("os_index")) for o in machine.iter("object")
                   if o.get("type") == "NUMANode")
    done = []
    if rng.random() < 0.4 and len(pus) > 1:
        allowed = set(rng.sample(pus, rng.randint(1, len(pus))))
        machine.set("allowed_cpuset", format_bitmap(allowed))
        done.append("disallowed-cpus")
    if rng.random() < 0.25 and len(nodes) > 1:
        allowed = set(rng.sample(nodes, rng.randint(1, len(nodes))))
        machine.set("allowed_nodeset", format_bitmap(allowed))
        done.append("disallowed-nodes")
    if rng.random() < 0.3 and not root.findall("cpukind"):
        ecores = set(rng.sample(pus, rng.randint(1, len(pus))))
        kinds = [(set(pus) - ecores, 1), (ecores, 0)]
        if rng.random() < 0.3 and len(ecores) > 1:  # a third, lowest kind
            low = set(sorted(ecores)[: len(ecores) // 2])
            kinds = [(set(pus) - ecores, 2), (ecores - low, 1), (low, 0)]
        for cpus, eff in kinds:
            if cpus:
                kind = ET.SubElement(root, "cpukind", cpuset=format_bitmap(cpus))
                if rng.random() < 0.7:
                    kind.set("forced_efficiency", str(eff))
                else:  # hwloc ranks by frequency then
                    kind.set("forced_efficiency", "-1")
                    ET.SubElement(kind, "info", name="FrequencyMaxMHz", value=str(2000 + 1000 * eff))
        done.append("cpukinds")
    tree.write(dst)
    if rng.random() < 0.25 and len(pus) > 1:
        gone = set(rng.sample(pus, rng.randint(1, len(pus) - 1)))
        keep = format_bitmap(set(pus) - gone)
        restricted = str(dst) + ".r"
        r = subprocess.run(["lstopo-no-graphics", "-i", str(dst), "--restrict", keep, "--of", "xml",
                            "-f", restricted], capture_output=True, timeout=30)
        if r.returncode == 0:
            tree = ET.parse(restricted)
            m = tree.getroot().find("object")
            if rng.random() < 0.5:  # offline, as the kernel lists them
                m.set("complete_cpuset", format_bitmap(set(pus)))
            tree.write(dst)
            done.append("offline")
        os.unlink(restricted)
    return done


def topology_pool(rng, workdir, generated):
    """Every stored topology, plus `generated` new ones (synthetic shapes, mutated copies), as
    (what --topology gets, a name for messages, the XML to read the facts from)."""
    stored = sorted(SHARED_TOPOLOGIES.glob("*.xml")) + sorted(OUR_TOPOLOGIES.glob("*.xml"))
    pool = [(str(p), p.name, str(p)) for p in stored]
    for i in range(generated):
        base = workdir / f"gen{i}.xml"
        synthetic = None
        if rng.random() < 0.6 or not stored:
            description = random_synthetic(rng)
            export_synthetic(description, base)
            name = synthetic = description
            if rng.random() < 0.3:
                renumber(base, rng)
                name, synthetic = description + " renumbered", None
        else:
            src = rng.choice(stored)
            shutil.copy(src, base)
            name = src.name
        out = workdir / f"gen{i}m.xml"
        done = mutate(base, out, rng)
        pool.append((str(out), name + (" +" + ",".join(done) if done else ""), str(out)))
        if synthetic and not done:
            # the same shape, read by ipexrun itself from HWLOC_SYNTHETIC (no --topology)
            pool.append((SYNTHETIC_PREFIX + synthetic, SYNTHETIC_PREFIX + synthetic, str(out)))
    return pool


SYNTHETIC_PREFIX = "HWLOC_SYNTHETIC="


# --- options ------------------------------------------------------------------------------


def id_text(rng, ids):
    ids = sorted(ids)
    if not ids:
        return "0"
    if rng.random() < 0.3:
        return f"{ids[0]}-{ids[-1]}"
    return ",".join(str(i) for i in ids)


def random_flags(rng, facts):
    """A random option set (mostly sensible, sometimes not)."""
    flags = []
    usable = sorted(facts.usable) or [0]
    if rng.random() < 0.5:
        flags += ["--ninstances", str(rng.choice([0, 1, 2, 3, 4, 5, 8, 16, -1, -2, 1000]))]
    r = rng.random()
    if r < 0.3:
        flags += ["--ncores-per-instance", str(rng.choice([-1, 0, 1, 2, 3, 4, 7, 16, -5]))]
    elif r < 0.4:
        sizes = [str(rng.choice([1, 1, 2, 3, 0])) for _ in range(rng.randint(2, 4))]
        flags += ["--ncores-per-instance", *sizes]
    r = rng.random()
    if r < 0.15:
        flags += ["--cores-list", id_text(rng, rng.sample(usable, rng.randint(1, len(usable))))]
    elif r < 0.2:
        flags += ["--cores-list", str(max(facts.core_of) + rng.choice([1, 50]))]
    elif r < 0.35 and facts.node_cpus:
        nodes = sorted(facts.node_cpus)
        flags += ["--nodes-list", id_text(rng, rng.sample(nodes, rng.randint(1, len(nodes))))]
    elif r < 0.4 and facts.node_cpus:
        flags += ["--node-id", str(rng.choice(sorted(facts.node_cpus) + [-1, 99]))]
    if rng.random() < 0.1:
        flags += ["--instance-idx", rng.choice(["0", "1", "0,1", "-1", "5", "0-2"])]
    for flag, p in (("--use-logical-cores", 0.3), ("--use-e-cores", 0.2), ("--bind-numa-node", 0.25),
                    ("--skip-cross-node-cores", 0.05), ("--latency-mode", 0.08),
                    ("--throughput-mode", 0.08)):
        if rng.random() < p:
            flags.append(flag)
    if rng.random() < 0.2:
        flags += ["--strategy", rng.choice(["scatter", "close"])]
    if rng.random() < 0.1:
        flags += ["--multi-task-manager", rng.choice(["auto", "none", "numactl", "taskset"])]
    return flags


def value_of(flags, name):
    """The value(s) of the last `name` in flags (list), or None."""
    values = None
    for i, f in enumerate(flags):
        if f == name:
            values = []
            for v in flags[i + 1:]:
                if v.startswith("--"):
                    break
                values.append(v)
    return values


def ids_of(text):
    out = set()
    for part in text.split(","):
        if "-" in part[1:]:
            a, b = part.split("-", 1)
            out |= set(range(int(a), int(b) + 1))
        elif part:
            out.add(int(part))
    return out


# --- running and checking ----------------------------------------------------------------

CLEAN_ENV = ("OMP_NUM_THREADS", "LD_PRELOAD", "KMP_AFFINITY", "IPEXRUN_PYTHON", "LOCAL_RANK",
             "LOCAL_WORLD_SIZE", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE", "SLURM_JOB_ID",
             "SLURM_STEP_TASKS_PER_NODE", "OMPI_COMM_WORLD_LOCAL_RANK",
             "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS", "PMI_RANK",
             "OMPI_COMM_WORLD_RANK", "SLURM_PROCID", "HWLOC_SYNTHETIC", "HWLOC_XMLFILE")


def run(ipexrun, topology, flags, env=None, extra=()):
    """`topology`: an XML path, or SYNTHETIC_PREFIX + a description passed in the environment."""
    e = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    e.update(env or {})
    if topology.startswith(SYNTHETIC_PREFIX):
        e["HWLOC_SYNTHETIC"] = topology[len(SYNTHETIC_PREFIX):]
        topology = None
    args = [ipexrun, "--dry-run"] + (["--topology", topology] if topology else [])
    cmd = args + list(extra) + list(flags) + ["--no-python", "true"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=e)
    except subprocess.TimeoutExpired:
        return None, ["hang (30 s)"]
    return r, []


def check_error(r):
    """A refusal: exit 2 and one line 'ipexrun: error: ...', nothing on stdout."""
    problems = []
    lines = r.stderr.strip().splitlines()
    if r.returncode != 2:
        problems.append(f"exit {r.returncode}")
    if len(lines) != 1 or not lines[0].startswith("ipexrun: error: "):
        problems.append(f"stderr not one error line: {r.stderr.strip()[:300]!r}")
    if r.stdout.strip():
        problems.append("stdout on error")
    return problems


def parse_plan(r):
    """A plan: valid JSON on stdout and nothing on stderr (warnings are in the JSON)."""
    try:
        doc = json.loads(r.stdout)
    except ValueError as ex:
        return None, [f"bad JSON ({ex})"]
    return doc, [f"stderr with a plan: {r.stderr.strip()[:300]!r}"] if r.stderr.strip() else []


def plan_or_problems(ipexrun, topology, flags, env=None):
    """(plan, []) for a run that planned; (None, problems) for one that failed or refused
    (a refusal's problems are only those of its form: it may well be right)."""
    r, problems = run(ipexrun, topology, flags, env)
    if r is None:
        return None, problems
    if r.returncode != 0:
        return None, check_error(r)
    return parse_plan(r)


def check_instances(facts, flags, instances):
    problems = []
    logical = "--use-logical-cores" in flags
    ecores_ok = "--use-e-cores" in flags
    bind = "--bind-numa-node" in flags or "--skip-cross-node-cores" in flags
    presets = "--latency-mode" in flags or "--throughput-mode" in flags
    if not instances:
        problems.append("no instance")
    seen = set()
    any_p = any(p not in facts.ecores for p in facts.usable)
    cores_list = value_of(flags, "--cores-list")
    nodes_list = value_of(flags, "--nodes-list")
    node_id = value_of(flags, "--node-id")
    if node_id and not nodes_list and int(node_id[0]) >= 0:
        nodes_list = node_id
    for x in instances:
        cpus = set(x["cpus"])
        if not cpus:
            problems.append("empty instance")
        if len(cpus) != len(x["cpus"]):
            problems.append("CPU listed twice")
        if cpus & seen:
            problems.append(f"overlap {sorted(cpus & seen)[:4]}")
        seen |= cpus
        if not cpus <= facts.usable:
            problems.append(f"unusable CPUs {sorted(cpus - facts.usable)[:5]}")
        # oneCCL's workers (distributed ranks) get CPUs of their own, OpenMP the others
        ccl = {int(c) for c in x["env"].get("CCL_WORKER_AFFINITY", "").split(",") if c}
        if len(ccl) != int(x["env"].get("CCL_WORKER_COUNT", "0")) or not ccl <= cpus:
            problems.append(f"CCL workers {sorted(ccl)} not {x['env'].get('CCL_WORKER_COUNT')} of the CPUs")
        omp = cpus - ccl
        threads = x["env"].get("OMP_NUM_THREADS")
        if x["omp_num_threads"] != len(omp) or threads != str(len(omp)):
            problems.append(f"OMP_NUM_THREADS {threads}/{x['omp_num_threads']} != {len(omp)}")
        if x["env"].get("IPEXRUN_CPUS") is None or ids_of(x["env"]["IPEXRUN_CPUS"]) != cpus:
            problems.append("IPEXRUN_CPUS differs from cpus")
        argv = x["argv"]
        if argv[:2] == ["numactl", "-C"] and (ids_of(argv[2]) != cpus or (
                x["nodes"] and (argv[3] != "-m" or ids_of(argv[4]) != set(x["nodes"])))):
            problems.append(f"numactl binds otherwise: {argv[:5]}")
        if argv[:2] == ["taskset", "-c"] and ids_of(argv[2]) != cpus:
            problems.append(f"taskset binds otherwise: {argv[:3]}")
        known = [c for c in omp if c in facts.core_of]
        if not logical and len({facts.core_of[c] for c in known}) != len(known):
            problems.append("SMT siblings without --use-logical-cores")
        if not ecores_ok and any_p and cpus & facts.ecores:
            problems.append("E-cores without --use-e-cores")
        nodes = set(x["nodes"])
        if not nodes <= facts.allowed_nodes:
            problems.append(f"memory nodes {sorted(nodes)} not allowed")
        local = set().union(*[facts.closest.get(c, set()) for c in cpus]) if cpus else set()
        if not nodes <= local:
            problems.append(f"memory nodes {sorted(nodes)} not local to the CPUs ({sorted(local)})")
        if bind and not presets or "--throughput-mode" in flags:
            common = set.intersection(*[facts.nodes_of.get(c, set()) for c in cpus]) if cpus else set()
            if facts.node_cpus and not common:
                problems.append("bound instance spans NUMA nodes")
            if len(nodes) > 1:
                problems.append(f"bound instance's memory on {sorted(nodes)}")
        if cores_list and not cpus <= ids_of(cores_list[0]):
            problems.append("CPUs outside --cores-list")
        if nodes_list and not cores_list:
            wanted = ids_of(nodes_list[0])
            if any(not facts.nodes_of.get(c, set()) & wanted for c in cpus):
                problems.append("CPUs outside --nodes-list")
    ninst = value_of(flags, "--ninstances")
    sizes = value_of(flags, "--ncores-per-instance")
    idx = value_of(flags, "--instance-idx")

    def size_of(x):
        """An instance's size: its CPUs, less oneCCL workers on SMT siblings of its cores
        (--logical-cores-for-ccl adds those)."""
        ccl = {int(c) for c in x["env"].get("CCL_WORKER_AFFINITY", "").split(",") if c}
        omp_cores = {facts.core_of.get(c) for c in set(x["cpus"]) - ccl}
        return len(x["cpus"]) - len({c for c in ccl if facts.core_of.get(c) in omp_cores})

    if not presets and not idx:
        if ninst and int(ninst[0]) > 0 and len(instances) != int(ninst[0]):
            problems.append(f"{len(instances)} instances, asked {ninst[0]}")
        got = [size_of(x) for x in instances]
        if sizes and len(sizes) > 1 and got != [int(s) for s in sizes]:
            problems.append(f"sizes {got}, asked {sizes}")
        if sizes and len(sizes) == 1 and int(sizes[0]) > 0 and any(g != int(sizes[0]) for g in got):
            problems.append(f"sizes {got}, asked {sizes[0]}")
    if idx and "-1" not in idx[0].split(","):
        if [x["index"] for x in instances] != sorted(ids_of(idx[0])):
            problems.append(f"indexes {[x['index'] for x in instances]} for --instance-idx {idx[0]}")
    return problems


def must_succeed(facts, flags):
    """Requests that some plan can meet (by counting cores here): refusing them is a defect."""
    simple = {"--ninstances", "--ncores-per-instance", "--cores-list", "--use-logical-cores",
              "--use-e-cores", "--bind-numa-node", "--strategy", "--multi-task-manager"}
    if not {f for f in flags if f.startswith("--")} <= simple:
        return False
    if value_of(flags, "--multi-task-manager") not in (None, ["auto"], ["none"]):
        return False
    cores_list = value_of(flags, "--cores-list")
    within = ids_of(cores_list[0]) if cores_list else None
    if within is not None and not within <= facts.usable:
        return False
    cands = facts.candidates("--use-logical-cores" in flags, "--use-e-cores" in flags, within)
    ninst = value_of(flags, "--ninstances")
    n = int(ninst[0]) if ninst else 0
    sizes = value_of(flags, "--ncores-per-instance") or ["0"]
    if not cands or n < -1 or len(sizes) > 1 or int(sizes[0]) < -1:
        return False
    n, size = max(n, 0), int(sizes[0])
    if size <= 0:
        return max(n, 1) <= len(cands)
    if "--bind-numa-node" in flags:
        if any(len(facts.nodes_of[c]) != 1 for c in cands):
            return False
        per_node = {}
        for c in cands:
            node = min(facts.nodes_of[c])
            per_node[node] = per_node.get(node, 0) + 1
        fit = sum(count // size for count in per_node.values())
    else:
        fit = len(cands) // size
    return fit >= max(n, 1)


def check_case(ipexrun, facts, topology, flags, env=None):
    r, problems = run(ipexrun, topology, flags, env)
    if r is None:
        return problems
    if r.returncode != 0:
        problems = check_error(r)
        if must_succeed(facts, flags) and not env:
            problems.append("refused a request that fits: " + r.stderr.strip()[:200])
        return problems
    doc, problems = parse_plan(r)
    if doc is None:
        return problems
    return problems + check_instances(facts, flags, doc["instances"])


LAUNCHER_ENVS = [
    lambda i, k: {"LOCAL_RANK": str(i), "LOCAL_WORLD_SIZE": str(k)},
    lambda i, k: {"SLURM_LOCALID": str(i), "SLURM_NTASKS_PER_NODE": str(k)},
    lambda i, k: {"OMPI_COMM_WORLD_LOCAL_RANK": str(i), "OMPI_COMM_WORLD_LOCAL_SIZE": str(k)},
    lambda i, k: {"MPI_LOCALRANKID": str(i), "MPI_LOCALNRANKS": str(k)},
    lambda i, k: {"SLURM_LOCALID": str(i), "SLURM_NODEID": "1",
                  "SLURM_STEP_TASKS_PER_NODE": f"1,{k}(x2)"},
]


def check_colocated(ipexrun, facts, topology, rng):
    """k launchers started side by side: disjoint shares that together cover what one
    launcher alone would use."""
    flags = []
    if rng.random() < 0.3:
        flags.append("--use-logical-cores")
    if rng.random() < 0.2:
        flags.append("--use-e-cores")
    if rng.random() < 0.2:
        flags.append("--bind-numa-node")
    if rng.random() < 0.15 and facts.node_cpus:
        nodes = sorted(facts.node_cpus)
        flags += ["--nodes-list", id_text(rng, rng.sample(nodes, rng.randint(1, len(nodes))))]
    whole, problems = plan_or_problems(ipexrun, topology, flags)
    if whole is None:
        return flags, problems
    single = set().union(*[set(x["cpus"]) for x in whole["instances"]])
    # A single launcher with --bind-numa-node keeps to one node; side by side, the ranks
    # share out every node's CPUs.
    bind = "--bind-numa-node" in flags
    all_cpus = single
    if bind:
        r, p = run(ipexrun, topology, [f for f in flags if f != "--bind-numa-node"])
        if r is None or r.returncode != 0:
            return flags, p + ["refused without --bind-numa-node"]
        all_cpus = set().union(*[set(x["cpus"]) for x in json.loads(r.stdout)["instances"]])
    k = rng.choice([2, 2, 3, 4, 5, 8, len(all_cpus) + 1])
    family = rng.choice(LAUNCHER_ENVS)
    union, shares = set(), []
    for i in range(k):
        r, p = run(ipexrun, topology, flags, env=family(i, k))
        if r is None or r.returncode != 0:
            return flags, p + [f"local rank {i} of {k}: " + (r.stderr.strip()[:200] if r else "")]
        doc, p = parse_plan(r)
        if doc is None:
            return flags, p
        problems += [f"local rank {i} of {k}: {m}" for m in p]
        if len(doc["instances"]) != 1:
            problems.append(f"local rank {i} of {k}: {len(doc['instances'])} instances")
        cpus = set().union(*[set(x["cpus"]) for x in doc["instances"]])
        problems += [f"local rank {i} of {k}: {m}" for m in
                     check_instances(facts, flags, doc["instances"])]
        shares.append(cpus)
        union |= cpus
    if k <= len(all_cpus):
        for a in range(k):
            for b in range(a + 1, k):
                if shares[a] & shares[b]:
                    problems.append(f"local ranks {a} and {b} of {k} share {sorted(shares[a] & shares[b])[:4]}")
    nodes_used = {min(facts.nodes_of[c]) for c in all_cpus if facts.nodes_of.get(c)}
    if bind and k < len(nodes_used):
        # each rank inside one node, fewer ranks than nodes: some nodes stay unused
        if not union <= all_cpus:
            problems.append(f"{k} ranks use {sorted(union - all_cpus)[:8]}, not candidates")
    elif union != (all_cpus if bind else single):
        problems.append(f"{k} ranks cover {sorted(union)[:8]}..., one launcher {sorted(single)[:8]}...")
    return flags + [f"(x{k} co-located)"], problems


def toml_of(flags, rng):
    """The options of `flags` as a config file: flags true, numbers bare, lists as arrays or
    as strings."""
    lines, i = [], 0
    while i < len(flags):
        name, values = flags[i][2:], []
        i += 1
        while i < len(flags) and not flags[i].startswith("--"):
            values.append(flags[i])
            i += 1
        if not values:
            lines.append(f"{name} = true")
            continue
        items = [v for part in values for v in part.split(",")]
        numbers = all(v.lstrip("-").isdigit() for v in items)
        if len(items) > 1 and numbers and rng.random() < 0.6:
            lines.append(f"{name} = [{', '.join(items)}]")
        elif len(values) == 1 and values[0].lstrip("-").isdigit():
            lines.append(f"{name} = {values[0]}")
        else:
            lines.append(f'{name} = "{",".join(values)}"')
    return "\n".join(lines) + "\n"


def check_config(ipexrun, facts, topology, rng, workdir):
    """The same options from a --config file plan the same as on the command line."""
    flags = random_flags(rng, facts)
    config = workdir / f"c{rng.randrange(1 << 30)}.toml"
    config.write_text(toml_of(flags, rng))
    line, problems = run(ipexrun, topology, flags)
    from_file, more = run(ipexrun, topology, ["--config", str(config)])
    if line is None or from_file is None:
        return flags, problems + more
    if from_file.returncode != 0:
        problems = check_error(from_file)
        if line.returncode == 0:
            problems.append("config refused what the command line takes: "
                            + from_file.stderr.strip()[:200])
        return flags + ["(config)"], problems
    doc, problems = parse_plan(from_file)
    if doc is None:
        return flags + ["(config)"], problems
    problems += check_instances(facts, flags, doc["instances"])
    if line.returncode != 0:
        problems.append("config took what the command line refuses: " + line.stderr.strip()[:200])
    elif [x["cpus"] for x in json.loads(line.stdout)["instances"]] != \
            [x["cpus"] for x in doc["instances"]]:
        problems.append("config plans differently from the command line")
    return flags + ["(config)"], problems


GARBAGE = ["", "x", "-1", "1.5", "0x2", "99999999999999999999", "2147483648", "1e3", " ", "٣",
           "99999999999(x2)", "2(x0)", "(x2)", "2,"]


def check_garbage_env(ipexrun, facts, topology, rng):
    family = rng.choice(LAUNCHER_ENVS)
    env = family(0, 2)
    name = rng.choice(sorted(env))
    env[name] = rng.choice(GARBAGE + ["5", "0"])
    doc, problems = plan_or_problems(ipexrun, topology, [], env)
    if doc is None:
        return env, problems
    return env, problems + check_instances(facts, [], doc["instances"])


def check_distributed(ipexrun, facts, topology, rng):
    ppn = rng.choice([1, 2, 3, 4, 8, 0, -1])
    # what a rank's share can be shaped by (--ninstances and --instance-idx are the launch's)
    shaping = [f for f in random_flags(rng, facts) if f not in ("--latency-mode", "--throughput-mode")]
    for name in ("--ninstances", "--instance-idx", "--multi-task-manager"):
        values = value_of(shaping, name)
        if values is not None:
            at = shaping.index(name)
            del shaping[at:at + 1 + len(values)]
    flags = shaping + ["--nnodes", "1", "--nprocs-per-node", str(ppn)]
    if rng.random() < 0.3:
        flags += ["--ccl-worker-count", str(rng.choice([1, 2, 4]))]
        if rng.random() < 0.5 and "--use-logical-cores" not in flags:
            flags.append("--logical-cores-for-ccl")
    doc, problems = plan_or_problems(ipexrun, topology, flags)
    if doc is None:
        return flags, problems
    shares = []
    sizes = value_of(shaping, "--ncores-per-instance") or []
    per_rank = shaping
    if len(sizes) > 1:  # one size a local rank
        at = shaping.index("--ncores-per-instance")
        per_rank = shaping[:at] + shaping[at + 1 + len(sizes):]
    for node in doc["nodes"]:
        ranks = node["ranks"]
        if ppn > 0 and len(ranks) != ppn:
            problems.append(f"{len(ranks)} ranks, asked {ppn}")
        if len(sizes) > 1:
            for rank, want in zip(ranks, sizes):
                problems += [f"rank {rank['rank']}: {m}" for m in check_instances(
                    facts, ["--ncores-per-instance", want], [rank])
                    if m.startswith("sizes")]
            if len(ranks) != len(sizes):
                problems.append(f"{len(ranks)} ranks for {len(sizes)} sizes")
        for rank in ranks:
            problems += [f"rank {rank['rank']}: {m}" for m in
                         check_instances(facts, per_rank, [rank])]
            shares.append(set(rank["cpus"]))
    # more ranks than CPUs to choose from: they share CPUs (MPI's --oversubscribe)
    within = None
    if value_of(flags, "--cores-list"):
        within = ids_of(value_of(flags, "--cores-list")[0])
    elif value_of(flags, "--nodes-list") or value_of(flags, "--node-id"):
        nodes = ids_of((value_of(flags, "--nodes-list") or value_of(flags, "--node-id"))[0])
        within = {c for c in facts.usable if facts.nodes_of.get(c, set()) & nodes}
    single = set(facts.candidates("--use-logical-cores" in flags, "--use-e-cores" in flags, within))
    if len(shares) <= len(single):
        for a in range(len(shares)):
            for b in range(a + 1, len(shares)):
                if shares[a] & shares[b]:
                    problems.append(f"ranks {a} and {b} share CPUs")
    return flags, problems


def fuzz(ipexrun, seed, cases, generated=12):
    """Runs `cases` random cases; returns a list of 'topology | flags: problems' strings."""
    rng = random.Random(seed)
    failures = []
    keep = os.environ.get("PLAN_FUZZ_KEEP")  # keep the generated topologies to look at
    with tempfile.TemporaryDirectory(prefix=f"ipexrun-fuzz-{seed}-") as scratch:
        tmp = tempfile.mkdtemp(prefix=f"ipexrun-fuzz-{seed}-", dir=keep) if keep else scratch
        pool = topology_pool(rng, pathlib.Path(tmp), generated)
        facts = {xml: Facts(xml) for _, _, xml in pool}
        for _ in range(cases):
            path, name, xml = rng.choice(pool)
            f = facts[xml]
            kind = rng.random()
            if kind < 0.7:
                flags = random_flags(rng, f)
                problems = check_case(ipexrun, f, path, flags)
            elif kind < 0.82:
                flags, problems = check_colocated(ipexrun, f, path, rng)
            elif kind < 0.87:
                flags, problems = check_garbage_env(ipexrun, f, path, rng)
            elif kind < 0.93:
                flags, problems = check_config(ipexrun, f, path, rng, pathlib.Path(tmp))
            else:
                flags, problems = check_distributed(ipexrun, f, path, rng)
            if problems:
                failures.append(f"seed {seed} | {name} ({path}) | {flags}: "
                                + "; ".join(sorted(set(problems))))
    return failures


if __name__ == "__main__":
    exe = sys.argv[1]
    first = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    nseeds = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    cases = int(sys.argv[4]) if len(sys.argv) > 4 else 300
    total = 0
    for seed in range(first, first + nseeds):
        found = fuzz(exe, seed, cases)
        total += len(found)
        for line in found:
            print(line, flush=True)
    print(f"{nseeds} seeds x {cases} cases: {total} failing", flush=True)
    sys.exit(1 if total else 0)

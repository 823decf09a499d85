#!/usr/bin/env bash
# Device check of the GPU path (issue 11): tests, throughput, memory, determinism and the
# paper-scale projection on one GPU machine, in at most DEVICE_CHECK_BUDGET seconds (480).
#
#   bash benchmarks/device_check.sh [OUTDIR]     # OUTDIR: $1, else $OUT, else ./device_out
#
# On the device machine: `run` with carry [".whl"] (from `make wheels`), command
# `bash benchmarks/device_check.sh $OUT`, timeout_s ~540. See BUILD_NOTES.gpu.md.
# DEVICE_CHECK_SMOKE=1 shrinks everything for a CPU run (tiny sizes, no paper preset).
#
# Parts run under their own `timeout`, capped by what is left of the budget, so one hang
# cannot eat the rest; none stops the script. Raw outputs go to a work folder ($WORK,
# /tmp/device_check.*); OUTDIR gets few files (the device tool returns at most 8):
# summary.md (part, status, seconds, key figure), summary.json, progress.log,
# nvidia-smi.txt, jax_devices.txt and device_check.tar.gz (every log, junit xml, throughput json/png, members.jsonl), all
# refreshed after every part, so a run killed from outside still leaves what it got.
set -u

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUTDIR=${1:-${OUT:-$REPO/device_out}}
mkdir -p "$OUTDIR" && OUTDIR=$(cd "$OUTDIR" && pwd)
WORK=${DEVICE_CHECK_WORK:-$(mktemp -d /tmp/device_check.XXXXXX)}
mkdir -p "$WORK/status"
SMOKE=${DEVICE_CHECK_SMOKE:-0}
PY=${DEVICE_CHECK_PYTHON:-python3}
SITE=${DEVICE_CHECK_SITE:-/tmp/site}
BUDGET=${DEVICE_CHECK_BUDGET:-480}
SERIAL=${DEVICE_CHECK_SERIAL:-0} # 1: phase 1 one part at a time (a shared CPU)
RESERVE=10 # seconds kept for the summary and the tarball
T0=$(date +%s)
DEADLINE=$((T0 + BUDGET))

export PYTHONPATH="$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export MUJOCO_GL=${MUJOCO_GL:-egl}
unset JAX_DEFAULT_MATMUL_PRECISION # each part sets its own, and says so
cd "$REPO" || exit 1

# Sizes. Per-part budgets in seconds (each capped by what is left of the whole).
if [ "$SMOKE" = 1 ]; then
  TESTS=${DEVICE_CHECK_TESTS:-tests/test_tuners.py}
  PAPER_POPS="" HIGHEST_POPS="" # no paper-preset runs on a CPU
  TINY_POPS=1,2
  MEM_ENV=cartpole MEM_PRESET=tiny MEM_ROWS=2000 MEM_POPS=1,2
  TUNE_ARGS="--population=2 --trials=2 --ready_interval=1"
  B_TINY_ARGS="--steps=5 --min_seconds=0"
  B_PAPER_S=0 B_HIGHEST_S=0 B_TINY_S=${DEVICE_CHECK_B_TINY_S:-400}
  P1_S=${DEVICE_CHECK_P1_S:-900}
else
  GPU_TESTS="tests/test_envs.py tests/test_models.py tests/test_planning.py tests/test_population.py"
  TESTS=${DEVICE_CHECK_TESTS:-"$GPU_TESTS tests/test_tuners.py"}
  PAPER_POPS=${DEVICE_CHECK_PAPER_POPS:-1,8,40}
  HIGHEST_POPS=${DEVICE_CHECK_HIGHEST_POPS:-40} # the precision comparison: one compile only
  TINY_POPS=1,8,64,256
  MEM_ENV=half_cheetah MEM_PRESET=paper MEM_ROWS=300000 MEM_POPS=1,8 # 300 trials x 1000 steps
  TUNE_ARGS="--population=8 --trials=4 --ready_interval=2"
  B_TINY_ARGS="--min_seconds=0.5"
  # ~25 s install + info, 170 phase 1, 130 + 60 + 80 phase 2 (paper: ~25-35 s cold compile
  # per population size), capped by the deadline whatever these say.
  B_PAPER_S=${DEVICE_CHECK_B_PAPER_S:-130} B_HIGHEST_S=${DEVICE_CHECK_B_HIGHEST_S:-60}
  B_TINY_S=${DEVICE_CHECK_B_TINY_S:-80}
  P1_S=${DEVICE_CHECK_P1_S:-170}
fi

log() { echo "[$(date -u +%H:%M:%S) +$(($(date +%s) - T0))s] $*" | tee -a "$OUTDIR/progress.log" >&2; }

left() { echo $((DEADLINE - RESERVE - $(date +%s))); }

# part NAME BUDGET COMMAND...: runs COMMAND (a bash string) under timeout, output to
# WORK/NAME.log; writes WORK/status/NAME as "rc seconds budget". rc 124/137: timed out.
part() {
  local name=$1 budget=$2 cmd=$3 start rc l
  l=$(left)
  [ "$budget" -gt "$l" ] && budget=$l
  if [ "$budget" -lt 15 ]; then
    echo "skipped 0 $budget" >"$WORK/status/$name"
    log "$name: skipped (no time left)"
    return 0
  fi
  log "$name: start (timeout ${budget}s)"
  echo "running 0 $budget" >"$WORK/status/$name"
  start=$(date +%s)
  timeout -k 5 "$budget" bash -c "$cmd" >"$WORK/$name.log" 2>&1
  rc=$?
  echo "$rc $(($(date +%s) - start)) $budget" >"$WORK/status/$name"
  log "$name: exit $rc after $(($(date +%s) - start))s"
}

summarize() { # summary.md + summary.json from WORK; the tarball of WORK (no checkpoints)
  timeout 60 "$PY" - "$WORK" "$OUTDIR" "$SMOKE" <<'PYEOF' >>"$WORK/summarize.log" 2>&1
import json, math, os, sys
work, outdir, smoke = sys.argv[1], sys.argv[2], sys.argv[3] == "1"

def status(name):
    try:
        rc, secs, budget = open(os.path.join(work, "status", name)).read().split()
    except (OSError, ValueError):
        return None
    if rc == "0":
        word = "ok"
    elif rc in ("124", "137"):
        word = "TIMEOUT"
    elif rc in ("skipped", "running"):
        word = rc
    else:
        word = f"FAILED(rc={rc})"
    return word, secs, budget

def throughput_json(name):
    """--out=DIR writes DIR/throughput.json; the older binary wrote the file DIR itself."""
    base = os.path.join(work, name)
    for path in (os.path.join(base, "throughput.json"), base):
        if os.path.isfile(path):
            try:
                with open(path) as f:
                    return json.load(f)
            except (OSError, ValueError):
                return None
    return None

def tail(name, n=1):
    try:
        lines = [l for l in open(os.path.join(work, name + ".log")).read().splitlines() if l.strip()]
        return " / ".join(lines[-n:])[:160]
    except OSError:
        return ""

rows, facts = [], {}

def add(name, what, key):
    s = status(name)
    if s is None:
        return
    rows.append((name, what, s[0], s[1], s[2], key))
    facts[name] = dict(what=what, status=s[0], seconds=int(s[1]), budget=int(s[2]), key=key)

# setup / info
add("install", "pip install carried wheels into the temporary site", tail("install"))

devices = []
for fname in ("nvidia-smi-query.txt", "jax_devices.txt"):
    try:
        devices += open(os.path.join(work, fname)).read().strip().splitlines()
    except OSError:
        pass
add("info", "nvidia-smi, jax.devices()", " ".join(devices)[:240])

# a. tests
key = ""
try:
    import xml.etree.ElementTree as ET
    root = ET.parse(os.path.join(work, "tests.xml")).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    t = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    secs = sum(float(s.get("time", 0)) for s in suites)
    key = (f"{t['tests']} tests: {t['tests'] - t['failures'] - t['errors'] - t['skipped']} passed, "
           f"{t['failures']} failed, {t['errors']} errors, {t['skipped']} skipped ({secs:.0f} s)")
    fails = [c.get("classname", "") + "::" + c.get("name", "") for c in root.iter("testcase")
             if c.find("failure") is not None or c.find("error") is not None]
    if fails:
        key += "; failing: " + ", ".join(fails[:6])
        facts["tests_failing"] = fails
except Exception:  # no junit xml: the last log line says why
    key = tail("a_tests")
add("a_tests", "GPU-relevant tests (junit: tests.xml)", key)

# b. throughput, e. projection
def flops(x):
    return f"{x / 1e12:.2f} TFLOP/s" if x >= 1e12 else f"{x / 1e9:.1f} GFLOP/s"

def throughput_key(r):
    if r is None:
        return None
    parts = []
    for res in r.get("results", []):
        parts.append(f"N={res['population']}: {res['env_steps_per_second']:.1f} env steps/s, "
                     f"trial {res['trial_seconds']:.2f} s, planner "
                     f"{flops(res['planner']['flops_per_second'])}")
    mm = r.get("matmul", {}).get("flops_per_second")
    if mm:
        parts.append(f"matmul {flops(mm)}")
    return "; ".join(parts)

for name, what in (
    ("b_paper_tf32", "throughput half_cheetah paper, JAX_DEFAULT_MATMUL_PRECISION=tensorfloat32"),
    ("b_paper_highest", "throughput half_cheetah paper, JAX_DEFAULT_MATMUL_PRECISION=highest"),
    ("b_tiny", "throughput cartpole tiny, precision: JAX default (unset)"),
):
    r = throughput_json(name)
    add(name, what, throughput_key(r) or tail(name))
    if r is not None:
        facts[name + "_results"] = [
            {k: res.get(k) for k in ("population", "env_steps_per_second", "trial_seconds",
                                     "peak_memory", "program_memory", "compile_seconds_total")}
            for res in r.get("results", [])]

# c. memory per member
r = throughput_json("c_memory")
key = tail("c_memory")
if r is not None and len(r.get("results", [])) >= 2:
    res = sorted(r["results"], key=lambda x: x["population"])
    lo, hi = res[0], res[-1]
    n0, n1 = lo["population"], hi["population"]
    peak0, peak1 = lo["peak_memory"]["bytes"], hi["peak_memory"]["bytes"]
    per = (peak1 - peak0) / (n1 - n0)
    fixed = peak0 - n0 * per
    mem = dict(source=hi["peak_memory"]["source"], populations=[n0, n1], peak_bytes=[peak0, peak1],
               per_member_bytes=per, fixed_bytes=fixed,
               replay_rows=r.get("config", {}).get("train_rows"))
    for label, cap in (("80GB", 80e9), ("80GB_x0.75_jax_default_fraction", 0.75 * 80e9)):
        mem["max_population_" + label] = int((cap - fixed) // per) if per > 0 else None
    prog = [x.get("program_memory") for x in (lo, hi)]
    if all(prog):
        pper = (prog[1]["total_bytes"] - prog[0]["total_bytes"]) / (n1 - n0)
        mem["program_per_member_bytes"] = pper
    facts["c_memory_figures"] = mem
    key = (f"peak {peak0 / 2**30:.2f} GiB at N={n0}, {peak1 / 2**30:.2f} GiB at N={n1} "
           f"({mem['source']}): {per / 2**20:.0f} MiB per member, fixed {fixed / 2**30:.2f} GiB; "
           f"largest N on 80 GB: {mem['max_population_80GB']} "
           f"({mem['max_population_80GB_x0.75_jax_default_fraction']} at JAX's default 75%)")
add("c_memory", f"peak memory per member, replay {os.environ.get('MEM_ROWS')} rows", key)

# d. determinism
def compare(a, b):
    pa, pb = (os.path.join(work, x, "members.jsonl") for x in (a, b))
    if not (os.path.isfile(pa) and os.path.isfile(pb)):
        return None, "members.jsonl missing"
    da, db = open(pa, "rb").read(), open(pb, "rb").read()
    if da == db and da:
        return True, f"bit-identical ({len(da.splitlines())} lines)"
    la = [json.loads(l) for l in da.splitlines()]
    lb = [json.loads(l) for l in db.splitlines()]
    if len(la) != len(lb):
        return False, f"differ: {len(la)} vs {len(lb)} lines"
    diffs = [abs(x["trial_return"] - y["trial_return"]) for x, y in zip(la, lb)]
    nd = sum(1 for x, y in zip(la, lb) if x != y)
    return False, f"differ: {nd}/{len(la)} lines, max |d trial_return| {max(diffs or [0]):.3g}"

for flag, a, b in (("XLA_FLAGS=--xla_gpu_deterministic_ops=true", "d_tune_det1", "d_tune_det2"),
                   ("no XLA_FLAGS", "d_tune_nondet1", "d_tune_nondet2")):
    sa, sb = status(a), status(b)
    if sa is None and sb is None:
        continue
    same, why = compare(a, b)
    if not (sa and sb and sa[0] == sb[0] == "ok"):  # a run did not finish: no verdict
        same = None
        la = [l for l in (open(os.path.join(work, x, "members.jsonl")).read().splitlines()
                          if os.path.isfile(os.path.join(work, x, "members.jsonl")) else []
                          for x in (a, b))]
        n = min(map(len, la))
        prefix = "identical" if la[0][:n] == la[1][:n] else "different"
        why = (f"no verdict: {a} {sa and sa[0]}, {b} {sb and sb[0]}; "
               f"first {n} lines {prefix}")
    facts[f"d_{a[7:-1]}"] = dict(flags=flag, identical=same, detail=why)
    st = "ok" if sa and sb and sa[0] == sb[0] == "ok" else f"{sa and sa[0]}/{sb and sb[0]}"
    secs = max(int(sa[1]) if sa else 0, int(sb[1]) if sb else 0)
    rows.append((f"d_{a[7:-1]}", f"two identical tune runs, {flag}", st, str(secs), "", why))

# e. paper-scale projection (40 x 300 half_cheetah trials), from each run that has one
found = False
for name in ("b_paper_tf32", "b_paper_highest", "b_tiny"):
    r = throughput_json(name)
    if not (r and "paper_scale_projection" in r):
        continue
    if found and name == "b_tiny":
        break  # the tiny run's projection is a rough rescaling; only when no paper run
    found = True
    p = r["paper_scale_projection"]
    key = (f"{p['total_days']:.2f} days (planner {p['planner_seconds'] / 86400:.2f}, "
           f"train {p['train_seconds'] / 86400:.2f}, env {p['env_seconds'] / 86400:.3f} days); "
           f"rates from N={p.get('rates_from_population')}; {p.get('basis', '')}")
    rows.append((f"e_projection ({name})", "paper-scale projection, 40 x 300 half_cheetah trials",
                 "ok", "0", "", key))
    facts[f"e_projection_{name}"] = p
if not found:
    rows.append(("e_projection", "paper-scale projection", "missing", "0", "",
                 "no throughput.json with paper_scale_projection"))

info = {}
for fname in ("versions.txt",):
    try:
        info[fname] = open(os.path.join(work, fname)).read()
    except OSError:
        pass
with open(os.path.join(outdir, "summary.json"), "w") as f:
    json.dump(dict(smoke=smoke, work=work, parts=facts), f, indent=2, default=str)
with open(os.path.join(outdir, "summary.md"), "w") as f:
    f.write(f"# device_check summary{' (SMOKE: reduced sizes)' if smoke else ''}\n\n")
    f.write(f"devices: {' / '.join(devices)}\n\n")
    f.write("| part | what | status | seconds (budget) | key figure |\n|---|---|---|---|---|\n")
    for name, what, st, secs, budget, key in rows:
        key = str(key).replace("|", "/")
        f.write(f"| {name} | {what} | {st} | {secs}{f' ({budget})' if budget else ''} | {key} |\n")
    if "versions.txt" in info:
        f.write("\n## versions\n\n```\n" + info["versions.txt"].strip() + "\n```\n")
    f.write(f"\nRaw outputs: device_check.tar.gz (work folder {work}).\n")
PYEOF
  tar -czf "$OUTDIR/device_check.tar.gz.tmp" -C "$WORK" --exclude=checkpoints --exclude='cache*' . \
    2>>"$WORK/summarize.log" && mv "$OUTDIR/device_check.tar.gz.tmp" "$OUTDIR/device_check.tar.gz"
  for f in nvidia-smi.txt jax_devices.txt; do # also loose, beside the summary (6 files in all)
    [ -f "$WORK/$f" ] && cp -f "$WORK/$f" "$OUTDIR/$f"
  done
}

export MEM_ROWS # for the summary
if [ "${DEVICE_CHECK_SUMMARY_ONLY:-0}" = 1 ]; then # re-summarize an existing $DEVICE_CHECK_WORK
  summarize
  cat "$OUTDIR/summary.md"
  exit 0
fi

log "device_check: repo $REPO, out $OUTDIR, work $WORK, budget ${BUDGET}s, smoke=$SMOKE"

# --- setup: carried wheels into a temporary site ---------------------------------------
if ls "$REPO"/.whl/*.whl >/dev/null 2>&1; then
  part install 90 "$PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target '$SITE' '$REPO'/.whl/*.whl && echo installed: \$(ls '$SITE' | \
    sed -n 's/\\.dist-info\$//p' | tr '\\n' ' ')"
else
  log "install: no .whl/ here, using the installed packages"
fi
part info 60 "nvidia-smi >'$WORK/nvidia-smi.txt' 2>&1; \
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
    >'$WORK/nvidia-smi-query.txt' 2>/dev/null || rm -f '$WORK/nvidia-smi-query.txt'; \
  $PY -m pip list 2>/dev/null | grep -iE '^(jax|jaxlib|jax-cuda.*|flax|optax|chex|orbax-checkpoint|numpy|scipy|etils|mujoco|mujoco-mjx|gymnasium|trimesh|glfw|pyopengl|websockets|pytest|pytest-xdist) ' \
    >'$WORK/versions.txt'; \
  $PY -c 'import sys, jax; print(sys.version.split()[0], jax.__version__, jax.default_backend(), jax.devices())' \
    >'$WORK/jax_devices.txt' 2>'$WORK/jax_devices.err'; \
  $PY -c 'import mujoco, mujoco.mjx, importlib.util as u; print(\"mujoco\", mujoco.__version__, \"gymnasium assets\", u.find_spec(\"gymnasium\").origin)' \
    2>&1 | grep -vi warp >>'$WORK/jax_devices.txt'; cat '$WORK/jax_devices.txt'"
summarize

# --- phase 1, in parallel (correctness and memory; timings not taken here) --------------
# a. tests; c. peak memory per member; d. determinism (4 tune runs, each its own empty
# compilation cache, so each compiles as a fresh session would).
P1_ENV="XLA_PYTHON_CLIENT_PREALLOCATE=false"
XDIST=""
if [ "$SMOKE" != 1 ] && $PY -c 'import xdist' 2>/dev/null; then
  XDIST="-n ${DEVICE_CHECK_XDIST:-4}"
fi
p1() { if [ "$SERIAL" = 1 ]; then "$@"; else "$@" & fi; }
p1 part a_tests "$P1_S" "$P1_ENV JAXMBRL_CACHE_DIR='$WORK/cache_tests' $PY -m pytest -q \
  -p no:cacheprovider $XDIST --junitxml='$WORK/tests.xml' $TESTS"
p1 part c_memory "$P1_S" "$P1_ENV JAXMBRL_CACHE_DIR='$WORK/cache_c' $PY -m benchmarks.throughput \
  --env=$MEM_ENV --preset=$MEM_PRESET --population=$MEM_POPS --steps=2 --train_rows=$MEM_ROWS \
  --min_seconds=0 --member_batch=1000 --out='$WORK/c_memory'"
for run in det1 det2 nondet1 nondet2; do
  case $run in det*) xf="XLA_FLAGS=--xla_gpu_deterministic_ops=true" ;; *) xf="" ;; esac
  p1 part "d_tune_$run" "$P1_S" "$P1_ENV $xf JAXMBRL_CACHE_DIR='$WORK/cache_$run' \
    $PY -m benchmarks.tune --env=cartpole --tuner=pbt $TUNE_ARGS --space=planning \
    --preset=tiny --noresume --out='$WORK/d_tune_$run'"
done
wait
summarize

# --- phase 2, one at a time (timings) ---------------------------------------------------
# --member_batch=1000 >= every population: all members in one vmap.
if [ -n "$PAPER_POPS" ]; then
  part b_paper_tf32 "$B_PAPER_S" "JAX_DEFAULT_MATMUL_PRECISION=tensorfloat32 \
    JAXMBRL_CACHE_DIR='$WORK/cache_b_paper_tf32' $PY -m benchmarks.throughput \
    --env=half_cheetah --preset=paper --population=$PAPER_POPS --steps=2 --min_seconds=0.5 \
    --member_batch=1000 --out='$WORK/b_paper_tf32'"
  summarize
fi
if [ -n "$HIGHEST_POPS" ]; then
  part b_paper_highest "$B_HIGHEST_S" "JAX_DEFAULT_MATMUL_PRECISION=highest \
    JAXMBRL_CACHE_DIR='$WORK/cache_b_paper_highest' $PY -m benchmarks.throughput \
    --env=half_cheetah --preset=paper --population=$HIGHEST_POPS --steps=2 --min_seconds=0.5 \
    --member_batch=1000 --out='$WORK/b_paper_highest'"
  summarize
fi
part b_tiny "$B_TINY_S" "JAXMBRL_CACHE_DIR='$WORK/cache_b_tiny' $PY -m benchmarks.throughput \
  --env=cartpole --preset=tiny --population=$TINY_POPS $B_TINY_ARGS --member_batch=1000 \
  --out='$WORK/b_tiny'"
summarize
log "done in $(($(date +%s) - T0))s; summary: $OUTDIR/summary.md"
cat "$OUTDIR/summary.md"

#!/usr/bin/env python3
"""make bench, hostile-gate row: airlock's peak RSS while a gate floods for 30 s, and the
artifacts' sizes against the policy's caps (issue 10). The raw engine doing the same work is
`docker run` of the same flood with its output discarded: the row reports the bytes the gate
printed there (what airlock had to bound) beside what airlock kept.

Pass: the task ends at its timeout, peak RSS under 64 MiB, every artifact under its cap
(log_bytes per log, the event cap), and no container of the run (airlock's or the raw
baseline's) is left on the engine afterwards.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AIRLOCK = os.environ.get("AIRLOCK_BIN", os.path.join(ROOT, "target/release/airlock"))
IMAGE = "airlock/sandbox-test:latest"
SECONDS = int(os.environ.get("BENCH_FLOOD_S", "30"))
FLOOD = 'i=0; while :; do echo "f$i.py:$i:1: E302 expected 2 blank lines $i"; i=$((i+1)); done'
RSS_LIMIT_KB = 64 * 1024
LOG_CAP = 1 << 20          # policies/L2.toml log_bytes
EVENT_CAP = 5000           # policies/L2.toml [output] events


def containers(*filters):
    """Names of every container (running or not) matching all `filters` (docker ps -a)."""
    args = ["docker", "ps", "-a", "--format", "{{.Names}}"]
    for f in filters:
        args += ["--filter", f]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return sorted(n for n in out.split() if n)


def make_repo(path):
    work = path + "-work"
    os.makedirs(work)
    with open(os.path.join(work, "a.txt"), "w") as f:
        f.write("a\n")
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@b")
    for args in (["init", "-q", "-b", "main", work], ["-C", work, "add", "-A"], ["-C", work, "commit", "-qm", "i"],
                 ["clone", "-q", "--bare", work, path]):
        subprocess.run(["git"] + args, check=True, env=env, stdout=subprocess.DEVNULL)


def raw_bytes():
    """The raw engine running the same flood for the same time, output counted and dropped.

    `timeout` would kill only the docker CLI and leave the container flooding the engine's log
    file: the container is named, keeps no engine log (`--log-driver none`; attach still streams)
    and is removed whatever happens."""
    name = "airlock-bench-flood-%d" % os.getpid()
    p = subprocess.Popen(["docker", "run", "--rm", "--name", name, "--log-driver", "none",
                          "--network", "none", IMAGE, "sh", "-c", FLOOD],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    n = 0
    until = time.monotonic() + SECONDS
    try:
        while time.monotonic() < until:
            b = p.stdout.read(1 << 20)
            if not b:
                break
            n += len(b)
    finally:
        subprocess.run(["docker", "rm", "-f", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        p.kill()
        p.wait()
    return n


def airlock_run(tmp):
    repo = os.path.join(tmp, "src.git")
    make_repo(repo)
    spec = os.path.join(tmp, "flood.toml")
    with open(spec, "w") as f:
        f.write(f'title = "flood"\nlevel = "L2"\n[repo]\nurl = "{repo}"\nbase = "main"\n[issue]\ntext = "x"\n'
                f'[agent]\nimage = "{IMAGE}"\ncommand = ["true"]\n[gate]\ncommands = [["sh", "-c", {json.dumps(FLOOD)}]]\n'
                f'[limits]\ntimeout = "{SECONDS}s"\nattempts = 1\n')
    art = os.path.join(tmp, "art")
    p = subprocess.Popen([AIRLOCK, "run", spec, "--json", "--artifacts", art, "--state-dir", os.path.join(tmp, "state")],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    peak = 0
    while p.poll() is None:
        try:
            with open(f"/proc/{p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.1)
    summary = json.loads(p.stdout.read() or b"{}")
    return peak, summary, os.path.join(art, summary.get("task_id", ""))


def main():
    raw_name = "name=airlock-bench-flood-%d" % os.getpid()
    with tempfile.TemporaryDirectory() as tmp:
        raw = raw_bytes()
        peak, summary, art = airlock_run(tmp)
        task = summary.get("task_id", "?")
        left = containers(raw_name) + containers("label=airlock.task=" + task)
        # (other runs on a shared engine have airlock containers too: only this run's count)
        # sizes are read before the temp dir goes
        sizes = {}
        for dirpath, _, files in os.walk(art):
            for name in files:
                p = os.path.join(dirpath, name)
                sizes[os.path.relpath(p, art)] = os.path.getsize(p)
        events = sum(1 for _ in open(os.path.join(art, "events.jsonl"))) if os.path.exists(os.path.join(art, "events.jsonl")) else 0
    print(f"\n== hostile gate: {SECONDS}s flood of unique lint lines (issue 10)")
    print(f"raw engine: the gate printed {raw / 1e6:.1f} MB in {SECONDS}s")
    print(f"airlock: state {summary.get('state')} ({summary.get('reason')}), peak RSS {peak / 1024:.1f} MiB (limit 64 MiB)")
    total = sum(sizes.values())
    print(f"artifacts: {total / 1e6:.2f} MB in all, kept/printed ratio {total / max(raw, 1):.4f}")
    ok = peak < RSS_LIMIT_KB and summary.get("reason") == "timeout"
    for name, size in sorted(sizes.items()):
        cap = LOG_CAP + 4096 if name.startswith("logs/") else None
        flag = "" if cap is None or size <= cap else "  OVER CAP"
        ok &= not flag
        print(f"  {name:28} {size:>10} bytes" + (f"  (cap {cap})" if cap else "") + flag)
    print(f"  events: {events} (cap {EVENT_CAP} + final)")
    ok &= events <= EVENT_CAP + 10
    print(f"containers left on the engine: {len(left)}" + (f" {left}  LEFT BEHIND" if left else ""))
    ok &= not left
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

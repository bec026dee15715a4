#!/usr/bin/env python3
"""make bench: airlock vs the raw engine doing the same work, interleaved in one run.

Each row runs N trivial tasks (agent `true`, gate `true`) through `airlock run` and, alternating
with them, the raw equivalent: clone + chown + two `docker run --rm` with the same image and
hardening flags + `git diff`. It prints the median wall time per task of each and the ratio.
Row 2 repeats with a 20k-file repository: preparing a checkout should not grow with repo size.
Row 3 is row 1 on Podman (airlock with DOCKER_HOST at Podman's socket vs `podman run`), when
Podman's service answers (`make engine ENGINE=podman`).
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AIRLOCK = os.environ.get("AIRLOCK_BIN", os.path.join(ROOT, "target/release/airlock"))
IMAGE = "airlock/sandbox-test:latest"
PODMAN_HOST = os.environ.get("PODMAN_HOST", "unix:///run/podman/podman.sock")
N = int(os.environ.get("BENCH_N", "10"))
HARDENING = [
    "--network", "none", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
    "--user", "1000:1000", "--init", "--pids-limit", "512", "--memory", "2g", "--memory-swap", "2g",
    "--cpus", "2", "--ulimit", "core=0", "--ulimit", "nofile=8192", "--ulimit", "nproc=16384",
    "--shm-size", "64m", "--ipc", "private", "--cgroupns", "private", "-e", "HOME=/home/agent",
]
TMPFS = [
    "--tmpfs", "/tmp:rw,noexec,nosuid,nodev,size=268435456,nr_inodes=16384,mode=1777",
    "--tmpfs", "/home/agent:rw,noexec,nosuid,nodev,size=268435456,nr_inodes=16384,mode=0700,uid=1000,gid=1000",
]
# Podman takes no nr_inodes=/uid= tmpfs options (airlock binds host-side tmpfs instead).
PODMAN_TMPFS = [
    "--tmpfs", "/tmp:rw,noexec,nosuid,nodev,size=268435456,mode=1777",
    "--tmpfs", "/home/agent:rw,noexec,nosuid,nodev,size=268435456,mode=0700",
]


def sh(*args, **kw):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def make_repo(path, files):
    work = path + "-work"
    os.makedirs(work)
    for i in range(files):
        d = os.path.join(work, "src", f"d{i // 500}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}.txt"), "w") as f:
            f.write(f"file {i}\n")
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@b")
    sh("git", "init", "-q", "-b", "main", work)
    sh("git", "-C", work, "add", "-A")
    sh("git", "-C", work, "commit", "-qm", "init", env=env)
    sh("git", "clone", "-q", "--bare", work, path)
    shutil.rmtree(work)


def spec(dirpath, repo):
    p = os.path.join(dirpath, "bench.toml")
    with open(p, "w") as f:
        f.write(f'title = "bench"\nlevel = "L2"\n[repo]\nurl = "{repo}"\nbase = "main"\n'
                f'[issue]\ntext = "nothing"\n[agent]\nimage = "{IMAGE}"\ncommand = ["true"]\n'
                f'[gate]\ncommands = [["true"]]\n')
    return p


def run_airlock(task, art, state, engine):
    env = dict(os.environ)
    if engine == "podman":
        env["DOCKER_HOST"] = PODMAN_HOST
    t = time.monotonic()
    r = subprocess.run([AIRLOCK, "run", task, "--artifacts", art, "--state-dir", state],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    if r.returncode != 0:
        sys.exit(f"airlock run failed ({r.returncode}): {r.stderr.decode()}")
    return time.monotonic() - t


def run_raw(repo, scratch, engine):
    t = time.monotonic()
    work = os.path.join(scratch, "raw-work")
    sh("git", "clone", "-q", "--no-local", repo, work)
    sh("chown", "-R", "1000:1000", work)
    tmpfs = PODMAN_TMPFS if engine == "podman" else TMPFS
    for _ in ("agent", "gate"):
        sh(engine, "run", "--rm", *HARDENING, *tmpfs, "-v", f"{work}:/workspace", "-w", "/workspace", IMAGE, "true")
    sh("git", "-c", "safe.directory=*", "-C", work, "diff", "--binary")
    shutil.rmtree(work)
    return time.monotonic() - t


def row(label, files, scratch, engine="docker"):
    repo = os.path.join(scratch, f"repo-{engine}-{files}.git")
    make_repo(repo, files)
    task = spec(scratch, repo)
    art, state = os.path.join(scratch, "art"), os.path.join(scratch, "state")
    run_airlock(task, art, state, engine)  # warm-up: first clone and pristine tree (a cache)
    run_raw(repo, scratch, engine)
    a, r = [], []
    for _ in range(N):
        a.append(run_airlock(task, art, state, engine))
        r.append(run_raw(repo, scratch, engine))
    ma, mr = statistics.median(a), statistics.median(r)
    print(f"{label:<22} {N:>3} {ma * 1000:>12.0f} {mr * 1000:>10.0f} {ma / mr:>7.2f}", flush=True)
    return ma / mr


def podman_answers():
    if not shutil.which("podman"):
        return False
    r = subprocess.run(["docker", "-H", PODMAN_HOST, "version"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return r.returncode == 0


def main():
    if not os.path.exists(AIRLOCK):
        sys.exit(f"{AIRLOCK} missing: run `make build`")
    scratch = tempfile.mkdtemp(prefix="airlock-bench-")
    try:
        print(f"{'row':<22} {'N':>3} {'airlock ms':>12} {'raw ms':>10} {'ratio':>7}   (median wall time per task; goal ratio <= 1.25)")
        row("small repo (10 files)", 10, scratch)
        row("20k-file repo", 20000, scratch)
        if podman_answers():
            row("podman, small repo", 10, scratch, "podman")
        else:
            print("podman row skipped: no Podman service at " + PODMAN_HOST +
                  " (`make engine ENGINE=podman`)", flush=True)
    finally:
        subprocess.run(["umount", "-R", scratch], stderr=subprocess.DEVNULL)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

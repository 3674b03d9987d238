"""The first process of the sandbox, as the source ``python -I -B -c`` runs (never imported)."""

# The first process of the sandbox: it enters the namespaces, makes the file system read-only
# but for the working folder, sets the limits and runs the program as PID 1 of a new PID
# namespace, so every process the program starts dies with it. It is a separate, fresh Python
# process (single-threaded, as unshare(CLONE_NEWUSER) requires), never a preexec_fn of ours.
BOOTSTRAP = r"""
import ctypes, fcntl, json, os, resource, signal, sys
cfg = json.loads(sys.argv[1])
work = cfg["work"]
sys.stdin.buffer.read(1)  # wait until the parent has put this process in its cgroup
files = {name: open(os.path.join(work, name), "rb").read() for name in os.listdir(work)}
libc = ctypes.CDLL(None, use_errno=True)
def fail(what):
    sys.stderr.write(f"SANDBOX-UNAVAILABLE {what}: {os.strerror(ctypes.get_errno())}\n")
    os._exit(97)
if cfg["isolate"]:
    uid, gid = os.getuid(), os.getgid()
    # user | mount | ipc | pid | net namespaces
    if libc.unshare(0x10000000 | 0x00020000 | 0x08000000 | 0x20000000 | 0x40000000) != 0:
        fail("unshare")
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open("/proc/self/" + name, "w") as f:
            f.write(text)
    MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
    MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
    def mount(src, dst, fstype, flags, data, what):
        if libc.mount(src, dst.encode(), fstype, flags, data) != 0:
            fail(f"{what} {dst!r}")
    mount(None, "/", None, MS_REC | MS_PRIVATE, None, "mount")
    # A new root of only what Python needs, bound read-only: no /root, /home, /work, /tmp or
    # /proc of the host; its own /dev, procfs and size-capped work folder.
    root = cfg["root"]
    mount(b"tmpfs", root, b"tmpfs", MS_NOSUID | MS_NODEV, b"size=1m,mode=755", "tmpfs")
    for path in cfg["binds"]:
        inside = root + path
        if os.path.islink(path):
            os.makedirs(os.path.dirname(inside), exist_ok=True)
            os.symlink(os.readlink(path), inside)
        elif os.path.isdir(path):
            os.makedirs(inside, exist_ok=True)
            mount(path.encode(), inside, None, MS_BIND | MS_REC, None, "mount")
    os.makedirs(root + "/dev")
    mount(b"tmpfs", root + "/dev", b"tmpfs", MS_NOSUID | MS_NOEXEC, b"size=64k,mode=755", "tmpfs")
    # A /dev of four harmless devices: no disks, loop devices, kmsg or terminals to write to.
    for name in ("null", "zero", "random", "urandom"):
        open(root + "/dev/" + name, "w").close()
        mount(b"/dev/" + name.encode(), root + "/dev/" + name, None, MS_BIND, None, "mount")
    os.makedirs(root + "/proc")
    os.makedirs(root + work)
    # mount_setattr(root, AT_RECURSIVE, {MOUNT_ATTR_RDONLY}): every mount read-only.
    attr = (ctypes.c_uint64 * 4)(1, 0, 0, 0)
    # 442: mount_setattr, the same number on every architecture (a syscall added in 5.12).
    if libc.syscall(442, -100, root.encode(), 0x8000, ctypes.byref(attr), ctypes.sizeof(attr)):
        fail("read-only mounts")
    # The one writable folder: a tmpfs capped in size, so no answer can fill the host's disk.
    size = f"size={cfg['work_mb']}m,mode=700".encode()
    mount(b"tmpfs", root + work, b"tmpfs", MS_NOSUID | MS_NODEV, size, "tmpfs")
    if libc.chroot(root.encode()) != 0:
        fail("chroot")
    os.chdir(work)
    for name, data in files.items():
        with open(name, "wb") as f:
            f.write(data)
# The harness's private channels, at 3 (the token, read once) and 4 (the verdict).
fds = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in cfg["fds"]]
for fd in cfg["fds"]:
    os.close(fd)
for number, fd in enumerate(fds, 3):
    os.dup2(fd, number)
    os.close(fd)
pid = os.fork()
if pid == 0:
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the bootstrap
    os.chdir(work)
    if cfg["isolate"]:
        # The procfs of its own PID namespace: only its own processes. Where the kernel refuses
        # a new procfs (a container masking parts of its /proc), there is no /proc at all.
        libc.mount(b"proc", b"/proc", b"proc", 1 | 2 | 4 | 8, None)
    mb = 1024 * 1024
    for res, value in (
        (resource.RLIMIT_CPU, cfg["cpu_s"]),
        (resource.RLIMIT_AS, cfg["memory_mb"] * mb),
        (resource.RLIMIT_DATA, cfg["memory_mb"] * mb),
        (resource.RLIMIT_NPROC, cfg["processes"]),
        (resource.RLIMIT_FSIZE, cfg["file_size_mb"] * mb),
        (resource.RLIMIT_NOFILE, 64),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(res, (value, value))
    if cfg["isolate"]:
        # The program must not hold the capabilities of its namespace's root: with them it
        # could make a read-only mount (or a bind mount of one) writable again. Securebits
        # NOROOT (locked): uid 0 gains nothing at exec; the bounding set emptied; no new privs.
        if libc.prctl(28, 0x2F, 0, 0, 0) != 0:  # PR_SET_SECUREBITS
            fail("securebits")
        for cap in range(64):
            libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP (fails past the last capability)
        libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    os.execve(cfg["python"], [cfg["python"], "-I", "-B", "program.py"], cfg["env"])
for number in range(3, 3 + len(fds)):
    os.close(number)
_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
sys.exit(code % 256 if code >= 0 else 128 - code)
"""

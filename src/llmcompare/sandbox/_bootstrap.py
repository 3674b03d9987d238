"""The first process of the sandbox, as the source ``python -I -B -c`` runs (never imported)."""

# The first process of the sandbox: it enters the namespaces, makes the file system read-only
# but for the working folder, sets the limits and runs the program as PID 1 of a new PID
# namespace, so every process the program starts dies with it. It is a separate, fresh Python
# process (single-threaded, as unshare(CLONE_NEWUSER) requires), never a preexec_fn of ours.
#
# It does not rely on its parent to end it: it dies with its parent (a death signal; it then
# kills the program and removes the run's folder, which its parent can no longer do) and ends
# the program itself shortly after the timeout (an alarm of its own), so a killed, stopped or
# hung parent leaves nothing running. As root, where RLIMIT_NPROC does not bind, the program
# runs as the unprivileged ``cfg["uid"]``, which a helper forked before unshare maps into the
# user namespace (only a process outside a namespace may map more than its own id).
BOOTSTRAP = r"""
import ctypes, fcntl, json, os, resource, select, signal, sys
cfg = json.loads(sys.argv[1])
work, outer, drop = cfg["work"], cfg["outer"], cfg["uid"]
libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1
# The folder holding the run's folder, kept open: after the chroot, the only way back to it.
# Above the descriptors the program is given (3 and 4), which are put in place later.
opened = os.open(os.path.dirname(outer), os.O_RDONLY | os.O_DIRECTORY)
above = fcntl.fcntl(opened, fcntl.F_DUPFD_CLOEXEC, 64)
os.close(opened)
child = 0
rooted = False  # chrooted into a root of its own: "/" is then the sandbox's tmpfs
def fail(what, why=None):
    why = why or os.strerror(ctypes.get_errno())
    sys.stderr.write(f"SANDBOX-UNAVAILABLE {what}: {why}\n")
    os._exit(97)
def remove(name, parent):
    # Remove a file or a folder tree below the descriptor parent, never following a link.
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    except OSError:
        try:
            os.unlink(name, dir_fd=parent)
        except OSError:
            pass
        return
    try:
        for entry in os.listdir(fd):
            remove(entry, fd)
    finally:
        os.close(fd)
    try:
        os.rmdir(name, dir_fd=parent)
    except OSError:
        pass
def orphaned(*_):
    # The parent died (the death signal): it cannot end the program or remove the folder.
    if child:
        os.kill(child, signal.SIGKILL)  # PID 1 of its namespace: all its processes die
    if os.getppid() != cfg["parent"]:
        if rooted:
            # The root tmpfs sits on the folder's "root": detached, that is a folder again.
            libc.umount2(b"/", 2)  # MNT_DETACH
        remove(os.path.basename(outer), above)
    os.killpg(0, signal.SIGKILL)  # what is left of the group (without namespaces), this too
expired = False
def alarm(*_):
    # The time is up and the parent has not ended the run (stopped, or hung).
    global expired
    expired = True
    if not child:
        os._exit(98)
    os.kill(child, signal.SIGKILL)
def watch_parent():
    # PR_SET_PDEATHSIG, then a look at the parent: it may have died before the signal was set.
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != cfg["parent"]:
        orphaned()
signal.signal(signal.SIGTERM, orphaned)
signal.signal(signal.SIGALRM, alarm)
watch_parent()
signal.setitimer(signal.ITIMER_REAL, cfg["alarm_s"])
files = {name: open(os.path.join(work, name), "rb").read() for name in os.listdir(work)}
if cfg["isolate"]:
    uid, gid = os.getuid(), os.getgid()
    me = os.getpid()
    if drop is not None:
        ready, go = os.pipe()
        helper = os.fork()
        if helper == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.close(go)
            if os.read(ready, 1) != b"g":
                os._exit(0)  # the bootstrap failed before it needed the map
            for name, own in (("uid_map", uid), ("gid_map", gid)):
                try:
                    with open(f"/proc/{me}/{name}", "w") as f:
                        f.write(f"0 {own} 1\n{drop} {drop} 1\n")
                except OSError as exc:
                    fail(f"uid {drop} {name}", exc.strerror)
            os._exit(0)
        os.close(ready)
    # user | mount | ipc | pid | net namespaces
    if libc.unshare(0x10000000 | 0x00020000 | 0x08000000 | 0x20000000 | 0x40000000) != 0:
        fail("unshare")
    if drop is None:
        maps = (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1"))
        for name, text in maps:
            with open("/proc/self/" + name, "w") as f:
                f.write(text)
    else:
        os.write(go, b"g")
        os.close(go)
        if os.waitpid(helper, 0)[1] != 0:
            fail(f"uid {drop} map", "not written")  # (after the helper's own reason)
    watch_parent()  # new credentials: the death signal set again
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
    rooted = True
    os.chdir(work)
    for name, data in files.items():
        with open(name, "wb") as f:
            f.write(data)
    if drop is not None:
        # The program's own folder, as the unprivileged user it runs as.
        for name in [".", *files]:
            os.chown(name, drop, drop)
# The harness's private channels, at 3 (the token, read once) and 4 (the verdict).
fds = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in cfg["fds"]]
for fd in cfg["fds"]:
    os.close(fd)
for number, fd in enumerate(fds, 3):
    os.dup2(fd, number)
    os.close(fd)
alive, alive_w = os.pipe()  # EOF once this process is gone
child = os.fork()
if child == 0:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    os.close(alive_w)
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
    if cfg["isolate"] or drop is not None:
        # The program must not hold the capabilities of its namespace's root: with them it
        # could make a read-only mount (or a bind mount of one) writable again. Securebits
        # NOROOT (locked): uid 0 gains nothing at exec; NO_SETUID_FIXUP locked off: a change to
        # another user clears them; the bounding set emptied; no new privileges.
        if libc.prctl(28, 0x2B, 0, 0, 0) != 0:  # PR_SET_SECUREBITS
            fail("securebits")
        for cap in range(64):
            libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP (fails past the last capability)
        libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    if drop is not None:
        # Root: RLIMIT_NPROC counts the real uid and binds any but root.
        try:
            if cfg["isolate"]:
                os.setgroups([])
                os.setresgid(drop, drop, drop)
                os.setresuid(drop, drop, drop)  # which clears its capabilities
            else:
                # No root of its own here, only the host's files: it keeps root's access to them
                # (effective uid 0, no capabilities) under a real uid the limit binds.
                os.setresuid(drop, 0, 0)
        except OSError as exc:
            fail(f"uid {drop} setuid", exc.strerror)
        if cfg["isolate"] and not os.access(cfg["python"], os.X_OK):
            fail(f"uid {drop} {cfg['python']}", "Permission denied")
    # Die with the bootstrap (set last: a change of user clears it), unless it is gone already.
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if select.select([alive], [], [], 0)[0]:
        os._exit(1)
    os.execve(cfg["python"], [cfg["python"], "-I", "-B", "program.py"], cfg["env"])
os.close(alive)
for number in range(3, 3 + len(fds)):
    os.close(number)
# Until it is reaped, the child's PID is its own (a zombie): the handlers may still signal it.
os.waitid(os.P_PID, child, os.WEXITED | os.WNOWAIT)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGALRM})
_, status = os.waitpid(child, 0)
code = os.waitstatus_to_exitcode(status)
sys.exit(98 if expired else code % 256 if code >= 0 else 128 - code)
"""

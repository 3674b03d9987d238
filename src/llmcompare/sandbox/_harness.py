"""The program :class:`~llmcompare.sandbox.UnitTests` runs in the sandbox (its source)."""

# The program UnitTests runs: a harness of ours that runs the answer, then the tests, and
# reports a pass only by writing a per-run token to a descriptor the answer is not told about.
# Exiting early (sys.exit(0), os._exit(0), an atexit hook), printing anything or redefining
# names cannot produce the token; the tests run with the builtins as they were before the
# answer ran. The token is read, once, from a pipe before the answer runs and kept only in
# this function's locals: forging it means walking the stack or the interpreter's memory.
HARNESS = r"""
def _harness():
    import builtins, os, sys
    # Everything the harness uses after the answer ran, taken before: the answer may replace
    # any builtin or module attribute.
    read, write, remove, exit_now, close = os.read, os.write, os.remove, os._exit, os.close
    run, build, copy, base = exec, compile, dict, BaseException
    settrace, setprofile, frames = sys.settrace, sys.setprofile, sys._current_frames
    stdout, stderr = sys.stdout, sys.stderr
    token = read(3, 256)
    close(3)
    sources = []
    for name in ("answer.py", "tests.py"):
        with open(name, encoding="utf-8") as f:
            sources.append((name, f.read()))
        remove(name)  # neither the answer nor the tests are left on disk to read
    pristine = copy(vars(builtins))
    namespace = {"__name__": "__main__", "__builtins__": copy(pristine)}
    passed = False
    try:
        answer, tests = sources
        run(build(answer[1], answer[0], "exec"), namespace)
        if len(frames()) > 1:
            raise RuntimeError("the answer left threads running")
        # Whatever the answer did to the builtins or the hooks is undone for the tests.
        settrace(None)
        setprofile(None)
        namespace["__builtins__"] = copy(pristine)
        run(build(tests[1], tests[0], "exec"), namespace)
        passed = True
    except base as exc:
        write(2, ("%s: %s\n" % (type(exc).__name__, exc)).encode("utf-8", "replace"))
    for stream in (stdout, stderr):
        try:
            stream.flush()
        except base:
            pass
    if passed:
        write(4, token)
    exit_now(0 if passed else 1)


_harness()
"""

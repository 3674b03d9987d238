"""The program :class:`~llmcompare.sandbox.UnitTests` runs in the sandbox (its source)."""

# The program UnitTests runs: a harness of ours in two processes. The first holds the per-run
# token (descriptor 3) and the channel a pass is reported on (descriptor 4); it cannot be read
# or traced by any other process (not dumpable), and it reads the token only once the second
# has ended. The second, forked before the answer runs and without those descriptors, runs the
# answer's code, then the item's tests (with the builtins as they were before the answer ran),
# and reports only by its exit status: a pass is one status, drawn per run by the first process
# and read from a pipe only after the tests returned, so no early exit (sys.exit(0),
# os._exit(0), an atexit hook, a thread) and nothing the answer finds on the stack is a pass.
#
# The tests are rewritten before the answer runs: a comparison (==, !=, <, <=, >, >=, in, not
# in) of anything but plain values (None, bool, int, float, complex, str, bytes, and list,
# tuple, set, frozenset, dict and range of plain values; exactly those types, as a subclass may
# redefine its comparisons) fails the tests, unless both sides have the same type (the test
# expects that type); and the value an assert tests must be plain. So a result "equal to
# everything" (or true, or less than anything) is no pass.
HARNESS = r"""
def _guarded(tree):
    # The tests, with each comparison and each truth an assert takes through the guards.
    import ast
    def call(name, *args):
        return ast.Call(ast.Name(name, ast.Load()), list(args), [])
    def tested(node):
        if isinstance(node, ast.BoolOp):
            node.values = [tested(value) for value in node.values]
            return node
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            node.operand = tested(node.operand)
            return node
        return call("__llmcompare_truth__", node)
    class Guard(ast.NodeTransformer):
        def visit_Compare(self, node):
            self.generic_visit(node)
            ops = ast.Constant(" ".join(type(op).__name__ for op in node.ops))
            guarded = call("__llmcompare_compare__", node.left, ops, *node.comparators)
            return ast.copy_location(guarded, node)
        def visit_Assert(self, node):
            self.generic_visit(node)
            node.test = tested(node.test)
            return node
    return ast.fix_missing_locations(Guard().visit(tree))


def _guards():
    # The comparisons the guarded tests call. Everything they use is bound here, before the
    # answer runs; the methods of the exact built-in types they call cannot be replaced.
    kind, ident, length, numbered = type, id, len, enumerate
    name_of = vars(type)["__name__"].__get__  # a class's own name, whatever its metaclass says
    atoms = {type(None), bool, int, float, complex, str, bytes, range}
    holders = {list, tuple, set, frozenset, dict}
    relations = {
        "Eq": lambda a, b: a == b, "NotEq": lambda a, b: a != b,
        "Lt": lambda a, b: a < b, "LtE": lambda a, b: a <= b,
        "Gt": lambda a, b: a > b, "GtE": lambda a, b: a >= b,
        "In": lambda a, b: a in b, "NotIn": lambda a, b: a not in b,
        "Is": lambda a, b: a is b, "IsNot": lambda a, b: a is not b,
    }
    class Refused(BaseException):
        # Not an Exception: no `except Exception` in the tests takes it for a failed check.
        pass
    def foreign(value):
        # The types other than plain ones in a value (inside the built-in containers too), by id.
        found, stack, seen = {}, [value], {}
        while stack:
            item = stack.pop()
            of = kind(item)
            if of in atoms:
                continue
            if of not in holders:
                found[ident(of)] = of
            elif ident(item) not in seen:
                seen[ident(item)] = item  # held, so that no other object takes its id
                stack.extend(item.items() if of is dict else item)
        return found
    def named(found):
        return ", ".join(name_of(of) for of in found.values())
    def compare(left, ops, *rights):
        names, last, result = ops.split(), length(rights) - 1, True
        for index, right in numbered(rights):
            op = names[index]
            if op not in ("Is", "IsNot"):
                theirs, ours = foreign(left), foreign(right)
                if theirs.keys() != ours.keys():
                    raise Refused(
                        f"the tests compared ({op}) {named(theirs) or 'plain values'} with "
                        f"{named(ours) or 'plain values'}: beyond plain values (None, bool, "
                        "numbers, str, bytes and containers of them), both sides must hold "
                        "the same types"
                    )
            result = relations[op](left, right)
            if index < last and not result:
                return result
            left = right
        return result
    def truth(value):
        found = foreign(value)
        if found:
            raise Refused(f"an assert tested the truth of a value holding {named(found)}")
        return value
    return compare, truth


def _harness():
    import ast, builtins, ctypes, os, sys
    # Everything the harness uses after the answer ran, taken before: the answer may replace
    # any builtin or module attribute.
    read, write, exit_now, close = os.read, os.write, os._exit, os.close
    run, copy, base, kind, length, error = exec, dict, BaseException, type, len, RuntimeError
    settrace, setprofile, frames = sys.settrace, sys.setprofile, sys._current_frames
    stdout, stderr = sys.stdout, sys.stderr
    name_of = vars(type)["__name__"].__get__
    def say(exc):
        write(2, ("%s: %s\n" % (name_of(kind(exc)), exc)).encode("utf-8", "replace"))
    # No other process, the tests' one included, may read this one's memory or descriptors.
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE: 0
    sources = {}
    for name in ("answer.py", "tests.py"):
        with open(name, encoding="utf-8") as f:
            sources[name] = f.read()
        os.remove(name)  # neither the answer nor the tests are left on disk to read
    try:
        answer = compile(sources["answer.py"], "answer.py", "exec")
        tree = _guarded(ast.parse(sources["tests.py"], "tests.py"))
        tests = compile(tree, "tests.py", "exec")
        verdict, verdict_w = os.pipe()
        tester = os.fork()
    except base as exc:
        say(exc)
        exit_now(1)
    if tester == 0:
        close(3)
        close(4)
        close(verdict_w)
        compare, truth = _guards()
        pristine = copy(vars(builtins))
        namespace = {"__name__": "__main__", "__builtins__": copy(pristine)}
        passed = False
        try:
            run(answer, namespace)
            if length(frames()) > 1:
                raise error("the answer left threads running")
            # Whatever the answer did to the builtins or the hooks is undone for the tests.
            settrace(None)
            setprofile(None)
            namespace["__builtins__"] = copy(pristine)
            namespace["__llmcompare_compare__"] = compare
            namespace["__llmcompare_truth__"] = truth
            run(tests, namespace)
            passed = True
        except base as exc:
            say(exc)
        for stream in (stdout, stderr):
            try:
                stream.flush()
            except base:
                pass
        status = read(verdict, 1) if passed else b""
        exit_now(status[0] if status else 1)
    close(verdict)
    status = 3 + os.urandom(1)[0] % 250  # drawn after the fork: never in the tests' memory
    write(verdict_w, bytes((status,)))
    close(verdict_w)
    _, ended = os.waitpid(tester, 0)
    if os.WIFEXITED(ended) and os.WEXITSTATUS(ended) == status:
        write(4, read(3, 256))
        exit_now(0)
    exit_now(1)


_harness()
"""

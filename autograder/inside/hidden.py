"""Keep hidden-test text out of reach of the student's later cells in the kernel.

A test cell runs without history (no `In`/`_ih`/`_i*`/history database entry); `BEFORE_TEST`
snapshots the kernel's user namespace, `Out` and linecache, and `AFTER_TEST` puts them back:
names the test created are deleted, names it rebound get their old object, `Out`/`_oh`/`_N`
lose what it displayed, its linecache entries (the cell's source) go, and nothing keeps its
frames or source (sys.last_*, the last execution result). Both snippets run outside the
history too. Code the student installed BEFORE the test to watch it run (audit hooks, tracers,
input transformers) sees the test while it runs: that is why the hidden blocks never reach this
kernel (autograder/execute.py strips them; their points come from the trusted verdict), and the
test cells run here are the visible ones only.
"""

from __future__ import annotations

import textwrap

BEFORE_TEST = textwrap.dedent('''
    def _autograder_snapshot():
        import linecache, sys
        ip = get_ipython()
        ns = ip.user_ns
        names = {k: v for k, v in ns.items() if k != "_autograder_snapshot"}
        sys.modules["__autograder_snapshot__"] = (names, dict(ns.get("_oh") or {}), set(linecache.cache))
    _autograder_snapshot()
    del _autograder_snapshot
''')

AFTER_TEST = textwrap.dedent('''
    def _autograder_wipe():
        import linecache, sys
        ip = get_ipython()
        ns = ip.user_ns
        before, out_before, lines_before = sys.modules.pop("__autograder_snapshot__")
        for name in list(ns):
            if name not in before:
                del ns[name]  # this function's own name too: it is gone when the snippet ends
        for name, value in before.items():
            if ns.get(name, ns) is not value:
                ns[name] = value
        out = ns.get("_oh")
        if isinstance(out, dict):
            out.clear()
            out.update(out_before)
        for name in list(linecache.cache):
            if name not in lines_before:
                del linecache.cache[name]
        for name in ("last_type", "last_value", "last_traceback", "last_exc"):
            if hasattr(sys, name):
                setattr(sys, name, None)
        ip.last_execution_result = None
        for tb_holder, attr in ((ip.InteractiveTB, "tb"), (ip.SyntaxTB, "last_syntax_error")):
            if getattr(tb_holder, attr, None) is not None:
                setattr(tb_holder, attr, None)
    _autograder_wipe()
''')

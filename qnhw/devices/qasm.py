"""The OpenQASM 2 subset of the QPU contract: a pure parser (text in, instructions out).

The subset (OpenQASM 2.0, Cross et al., arXiv:1707.03429):

* ``OPENQASM 2.0;`` first, then statements ending in ``;``; ``//`` comments.
* ``include "qelib1.inc";`` (the only include) makes the qelib1 gates available:
  ``id x y z h s sdg t tdg sx sxdg rx ry rz p u1 u2 u3 u cx cy cz swap ccx``. The built-ins
  ``U(theta, phi, lambda)`` and ``CX`` are always available (as ``u`` and ``cx``).
* ``qreg name[n];`` and ``creg name[n];``, any number; registers are laid out in declaration
  order, so the first qubit of the second ``qreg`` follows the last of the first.
* Gate applications ``name(params) a, b, ...;`` where an argument is ``reg[i]`` or a whole
  register ``reg`` (the gate is applied to each index; whole registers must be equally long).
* ``measure q[i] -> c[j];`` and ``measure q -> c;``, ``reset q[i];`` / ``reset q;``,
  ``barrier a, b, ...;`` (one instruction over all the named qubits).
* Parameters are expressions of numbers (``1``, ``0.5``, ``1e-3``), ``pi``, ``+ - * /``,
  unary minus and parentheses; angles in radians. Nothing is ever ``eval``-ed.
* Not in the subset (refused with an error): ``gate`` and ``opaque`` definitions, ``if``,
  other includes, the functions ``sin cos tan exp ln sqrt`` and ``^``.

Errors are :class:`qnhw.BadParams` whose message and details name the line and column.
The result, :class:`Program`, holds :class:`Instruction` tuples ``(name, qubits, params,
clbits)`` with flat qubit and clbit indices, the form the emulator's QPU core runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from qnhw.errors import BadParams

#: qelib1.inc gates of the subset: name -> (number of qubits, number of parameters).
QELIB1_GATES: dict[str, tuple[int, int]] = {
    "id": (1, 0), "x": (1, 0), "y": (1, 0), "z": (1, 0), "h": (1, 0),
    "s": (1, 0), "sdg": (1, 0), "t": (1, 0), "tdg": (1, 0), "sx": (1, 0), "sxdg": (1, 0),
    "rx": (1, 1), "ry": (1, 1), "rz": (1, 1), "p": (1, 1), "u1": (1, 1), "u2": (1, 2),
    "u3": (1, 3), "u": (1, 3),
    "cx": (2, 0), "cy": (2, 0), "cz": (2, 0), "swap": (2, 0), "ccx": (3, 0),
}  # fmt: skip
#: Built-in gates of OpenQASM 2 and the qelib1 names they map to.
BUILTINS: dict[str, str] = {"U": "u", "CX": "cx"}
#: Non-gate instructions of the subset.
DIRECTIVES: tuple[str, ...] = ("measure", "reset", "barrier")
#: Bounds a parsed program must stay within.
MAX_QUBITS = 4096
MAX_INSTRUCTIONS = 1_000_000


class Instruction(NamedTuple):
    """One instruction: gate/``measure``/``reset``/``barrier`` name, flat qubit indices,
    parameters (radians) and flat clbit indices (``measure`` only)."""

    name: str
    qubits: tuple[int, ...]
    params: tuple[float, ...] = ()
    clbits: tuple[int, ...] = ()


@dataclass(frozen=True)
class Program:
    """A parsed circuit. ``qregs``/``cregs``: ``(name, size)`` in declaration order;
    ``lines``: the source line of each instruction."""

    n_qubits: int
    n_clbits: int
    qregs: tuple[tuple[str, int], ...]
    cregs: tuple[tuple[str, int], ...]
    instructions: tuple[Instruction, ...]
    lines: tuple[int, ...]

    @property
    def gates(self) -> frozenset[str]:
        """Names of the gates used (without measure, reset and barrier)."""
        return frozenset(i.name for i in self.instructions if i.name not in DIRECTIVES)

    def check_target(self, n_qubits: int, gates: Iterable[str] | None = None,
                     coupling: Iterable[Iterable[int]] | None = None) -> None:
        """Raise :class:`BadParams` unless the program fits a device.

        ``n_qubits``: qubits of the device. ``gates``: its native gate names (``None``: any of
        the subset). ``coupling``: qubit pairs on which two-qubit gates are allowed, either
        direction (``None``: all-to-all).
        """
        if self.n_qubits > n_qubits:
            raise BadParams(f"circuit declares {self.n_qubits} qubits; the device has "
                            f"{n_qubits}", {"param": "circuit", "qubits": self.n_qubits})
        allowed = None if gates is None else set(gates)
        pairs = None if coupling is None else {frozenset(p) for p in coupling}
        for ins, line in zip(self.instructions, self.lines, strict=True):
            if ins.name in DIRECTIVES:
                continue
            if allowed is not None and ins.name not in allowed:
                raise BadParams(f"line {line}: gate {ins.name!r} is not native on this device "
                                f"(native: {' '.join(sorted(allowed))})",
                                {"param": "circuit", "line": line, "gate": ins.name})
            if pairs is not None and len(ins.qubits) == 2 and frozenset(ins.qubits) not in pairs:
                raise BadParams(f"line {line}: qubits {list(ins.qubits)} are not coupled",
                                {"param": "circuit", "line": line, "qubits": list(ins.qubits)})


_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\f\v]+) | (?P<nl>\n) | (?P<comment>//[^\n]*)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<string>"[^"\n]*")
  | (?P<arrow>->) | (?P<eq>==)
  | (?P<sym>[;,\[\](){}+\-*/^])
""", re.VERBOSE)


class _Tok(NamedTuple):
    kind: str
    text: str
    line: int
    col: int


def _error(line: int, col: int, message: str) -> BadParams:
    return BadParams(f"line {line}, column {col}: {message}",
                     {"param": "circuit", "line": line, "column": col})


def _tokenize(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    line, line_start, pos = 1, 0, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise _error(line, pos - line_start + 1, f"unexpected character {text[pos]!r}")
        kind = m.lastgroup
        assert kind is not None
        if kind == "nl":
            line, line_start = line + 1, m.end()
        elif kind not in ("ws", "comment"):
            out.append(_Tok(kind, m.group(), line, pos - line_start + 1))
        pos = m.end()
    out.append(_Tok("eof", "", line, pos - line_start + 1))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokenize(text)
        self.i = 0
        self.qregs: dict[str, tuple[int, int]] = {}  # name -> (offset, size)
        self.cregs: dict[str, tuple[int, int]] = {}
        self.n_qubits = 0
        self.n_clbits = 0
        self.gates: dict[str, tuple[int, int]] = {}
        self.instructions: list[Instruction] = []
        self.lines: list[int] = []

    # --- token helpers --------------------------------------------------------------------

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        t = self.toks[self.i]
        if t.kind != "eof":
            self.i += 1
        return t

    def fail(self, message: str, tok: _Tok | None = None) -> BadParams:
        t = tok or self.tok
        return _error(t.line, t.col, message)

    def expect(self, text: str) -> _Tok:
        t = self.tok
        if t.text != text or t.kind in ("string", "eof"):
            found = "end of input" if t.kind == "eof" else repr(t.text)
            raise self.fail(f"expected {text!r}, found {found}")
        return self.next()

    def expect_kind(self, kind: str, what: str) -> _Tok:
        t = self.tok
        if t.kind != kind:
            found = "end of input" if t.kind == "eof" else repr(t.text)
            raise self.fail(f"expected {what}, found {found}")
        return self.next()

    # --- grammar --------------------------------------------------------------------------

    def program(self) -> Program:
        head = self.tok
        if head.text != "OPENQASM":
            raise self.fail("a program must start with 'OPENQASM 2.0;'")
        self.next()
        version = self.expect_kind("number", "a version number")
        if version.text not in ("2", "2.0"):
            raise self.fail(f"only OpenQASM 2.0 is supported, not {version.text}", version)
        self.expect(";")
        self.gates = {name: (QELIB1_GATES[q][0], QELIB1_GATES[q][1])
                      for name, q in BUILTINS.items()}
        while self.tok.kind != "eof":
            self.statement()
        return Program(self.n_qubits, self.n_clbits,
                       tuple((n, s) for n, (_, s) in self.qregs.items()),
                       tuple((n, s) for n, (_, s) in self.cregs.items()),
                       tuple(self.instructions), tuple(self.lines))

    def statement(self) -> None:
        t = self.tok
        if t.kind != "id":
            raise self.fail(f"expected a statement, found {t.text!r}")
        word = t.text
        if word == "include":
            self.next()
            name = self.expect_kind("string", "a file name in double quotes")
            if name.text != '"qelib1.inc"':
                raise self.fail(f"only \"qelib1.inc\" can be included, not {name.text}", name)
            self.expect(";")
            self.gates.update(QELIB1_GATES)
        elif word in ("qreg", "creg"):
            self.declaration(word)
        elif word == "measure":
            self.measure()
        elif word == "reset":
            self.next()
            for q in self.argument(quantum=True):
                self.emit(Instruction("reset", (q,)), t)
            self.expect(";")
        elif word == "barrier":
            self.next()
            qubits: list[int] = []
            for arg in self.arguments(quantum=True):
                qubits.extend(q for q in arg if q not in qubits)
            self.expect(";")
            self.emit(Instruction("barrier", tuple(qubits)), t)
        elif word in ("gate", "opaque", "if"):
            raise self.fail(f"'{word}' is not part of the qnhw OpenQASM 2 subset")
        elif word == "OPENQASM":
            raise self.fail("'OPENQASM' may appear only once, at the start")
        else:
            self.gate_application()

    def declaration(self, kind: str) -> None:
        self.next()
        name = self.expect_kind("id", "a register name")
        self.expect("[")
        size_tok = self.expect_kind("number", "a register size")
        if not size_tok.text.isdigit() or int(size_tok.text) < 1:
            raise self.fail("a register size must be a positive integer", size_tok)
        self.expect("]")
        self.expect(";")
        size = int(size_tok.text)
        if name.text in self.qregs or name.text in self.cregs:
            raise self.fail(f"register {name.text!r} is already declared", name)
        if name.text in ("pi", *self.gates, *DIRECTIVES):
            raise self.fail(f"{name.text!r} cannot name a register", name)
        if kind == "qreg":
            if self.n_qubits + size > MAX_QUBITS:
                raise self.fail(f"more than {MAX_QUBITS} qubits", size_tok)
            self.qregs[name.text] = (self.n_qubits, size)
            self.n_qubits += size
        else:
            if self.n_clbits + size > MAX_QUBITS:
                raise self.fail(f"more than {MAX_QUBITS} classical bits", size_tok)
            self.cregs[name.text] = (self.n_clbits, size)
            self.n_clbits += size

    def argument(self, quantum: bool) -> list[int]:
        """``reg`` or ``reg[i]`` -> the flat indices it names."""
        name = self.expect_kind("id", "a register")
        regs, other = (self.qregs, self.cregs) if quantum else (self.cregs, self.qregs)
        if name.text not in regs:
            if name.text in other:
                kind = "classical" if quantum else "quantum"
                raise self.fail(f"{name.text!r} is a {kind} register here", name)
            raise self.fail(f"undeclared register {name.text!r}", name)
        offset, size = regs[name.text]
        if self.tok.text != "[":
            return list(range(offset, offset + size))
        self.next()
        idx = self.expect_kind("number", "an index")
        if not idx.text.isdigit():
            raise self.fail("an index must be a non-negative integer", idx)
        self.expect("]")
        i = int(idx.text)
        if i >= size:
            raise self.fail(f"index {i} out of range for {name.text}[{size}]", idx)
        return [offset + i]

    def arguments(self, quantum: bool) -> list[list[int]]:
        args = [self.argument(quantum)]
        while self.tok.text == ",":
            self.next()
            args.append(self.argument(quantum))
        return args

    def measure(self) -> None:
        t = self.next()
        q = self.argument(quantum=True)
        self.expect("->")
        arrow = self.toks[self.i - 1]
        c = self.argument(quantum=False)
        self.expect(";")
        if len(q) != len(c):
            raise self.fail(f"measure maps {len(q)} qubits to {len(c)} bits", arrow)
        for qi, ci in zip(q, c, strict=True):
            self.emit(Instruction("measure", (qi,), (), (ci,)), t)

    def gate_application(self) -> None:
        t = self.next()
        if t.text not in self.gates:
            hint = " (missing include \"qelib1.inc\"?)" if t.text in QELIB1_GATES else ""
            raise self.fail(f"unknown gate {t.text!r}{hint}", t)
        n_qubits, n_params = self.gates[t.text]
        name = BUILTINS.get(t.text, t.text)
        params: list[float] = []
        if self.tok.text == "(":
            self.next()
            if self.tok.text != ")":
                params.append(self.expr())
                while self.tok.text == ",":
                    self.next()
                    params.append(self.expr())
            self.expect(")")
        if len(params) != n_params:
            raise self.fail(f"gate {t.text!r} takes {n_params} parameters, got {len(params)}", t)
        args = self.arguments(quantum=True)
        self.expect(";")
        if len(args) != n_qubits:
            raise self.fail(f"gate {t.text!r} acts on {n_qubits} qubits, got {len(args)}", t)
        sizes = {len(a) for a in args if len(a) > 1}
        if len(sizes) > 1:
            raise self.fail(f"registers of different sizes {sorted(sizes)} in one gate", t)
        width = sizes.pop() if sizes else 1
        for k in range(width):
            qubits = tuple(a[k] if len(a) > 1 else a[0] for a in args)
            if len(set(qubits)) != len(qubits):
                raise self.fail(f"gate {t.text!r} uses a qubit twice", t)
            self.emit(Instruction(name, qubits, tuple(params)), t)

    def emit(self, ins: Instruction, tok: _Tok) -> None:
        if len(self.instructions) >= MAX_INSTRUCTIONS:
            raise self.fail(f"more than {MAX_INSTRUCTIONS} instructions", tok)
        self.instructions.append(ins)
        self.lines.append(tok.line)

    # --- expressions ----------------------------------------------------------------------

    def expr(self) -> float:
        start = self.tok
        value = self.sum()
        if not math.isfinite(value):
            raise self.fail("parameter is not finite", start)
        return value

    def sum(self) -> float:
        value = self.product()
        while self.tok.text in ("+", "-") and self.tok.kind == "sym":
            op = self.next().text
            rhs = self.product()
            value = value + rhs if op == "+" else value - rhs
        return value

    def product(self) -> float:
        value = self.unary()
        while self.tok.text in ("*", "/") and self.tok.kind == "sym":
            op = self.next()
            rhs = self.unary()
            if op.text == "*":
                value *= rhs
            elif rhs == 0:
                raise self.fail("division by zero", op)
            else:
                value /= rhs
        return value

    def unary(self) -> float:
        if self.tok.text in ("+", "-") and self.tok.kind == "sym":
            op = self.next().text
            value = self.unary()
            return -value if op == "-" else value
        return self.primary()

    def primary(self) -> float:
        t = self.tok
        if t.kind == "number":
            self.next()
            return float(t.text)
        if t.kind == "id" and t.text == "pi":
            self.next()
            return math.pi
        if t.text == "(":
            self.next()
            value = self.sum()
            self.expect(")")
            return value
        if t.text == "^" or t.text in ("sin", "cos", "tan", "exp", "ln", "sqrt"):
            raise self.fail(f"{t.text!r} is not part of the qnhw OpenQASM 2 subset")
        found = "end of input" if t.kind == "eof" else repr(t.text)
        raise self.fail(f"expected a number, 'pi' or '(', found {found}")


def parse(text: str) -> Program:
    """Parse OpenQASM 2 ``text`` in the qnhw subset. Raises :class:`BadParams` naming the line
    and column of the first error."""
    if not isinstance(text, str):
        raise BadParams("a circuit must be OpenQASM 2 text", {"param": "circuit"})
    return _Parser(text).program()


__all__ = ["BUILTINS", "DIRECTIVES", "MAX_INSTRUCTIONS", "MAX_QUBITS", "QELIB1_GATES",
           "Instruction", "Program", "parse"]

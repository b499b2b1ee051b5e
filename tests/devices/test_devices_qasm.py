"""The QPU contract's OpenQASM 2 subset parser."""

from __future__ import annotations

import math

import pytest

from qnhw import BadParams
from qnhw.devices.qasm import QELIB1_GATES, Instruction, parse

HEAD = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'


def test_full_subset() -> None:
    prog = parse(HEAD + """
        // two quantum and two classical registers
        qreg q[2]; qreg r[1];
        creg c[2]; creg d[1];
        h q;                      // broadcast over the register
        cx q[0], r[0];
        u3(pi/2, -(pi + 1) * 2, 1e-3) q[1];
        U(0, 0, .5) q[0];
        CX q[1], r[0];
        rz(-pi/4) r;
        barrier q, r;
        reset r[0];
        measure q -> c;
        measure r[0] -> d[0];
    """)
    assert (prog.n_qubits, prog.n_clbits) == (3, 3)
    assert prog.qregs == (("q", 2), ("r", 1)) and prog.cregs == (("c", 2), ("d", 1))
    ins = prog.instructions
    assert ins[0] == Instruction("h", (0,)) and ins[1] == Instruction("h", (1,))
    assert ins[2] == Instruction("cx", (0, 2))
    assert ins[3].params == pytest.approx((math.pi / 2, -(math.pi + 1) * 2, 1e-3))
    assert ins[4] == Instruction("u", (0,), (0.0, 0.0, 0.5))
    assert ins[5] == Instruction("cx", (1, 2))
    assert ins[6].params == pytest.approx((-math.pi / 4,))
    assert ins[7] == Instruction("barrier", (0, 1, 2))
    assert ins[8] == Instruction("reset", (2,))
    assert ins[9:] == (Instruction("measure", (0,), (), (0,)),
                       Instruction("measure", (1,), (), (1,)),
                       Instruction("measure", (2,), (), (2,)))
    assert prog.lines[2] == 8 and len(prog.lines) == len(ins)  # the cx line
    assert prog.gates == {"h", "cx", "u3", "u", "rz"}
    # instructions are the (name, qubits, params, clbits) tuples the physics core runs
    assert tuple(ins[9]) == ("measure", (0,), (), (0,))


def test_every_qelib1_gate_parses() -> None:
    lines = []
    for g, (nq, npar) in QELIB1_GATES.items():
        args = f"({', '.join(['0.1'] * npar)})" if npar else ""
        lines.append(f"{g}{args} {', '.join(f'q[{i}]' for i in range(nq))};")
    prog = parse(HEAD + "qreg q[3];\n" + "\n".join(lines))
    assert [i.name for i in prog.instructions] == list(QELIB1_GATES)


def test_expression_precedence() -> None:
    prog = parse(HEAD + "qreg q[1]; rx(1 + 2 * 3 - -4 / 2) q[0]; rx(-(1 + 2) * 3) q[0];")
    assert [i.params[0] for i in prog.instructions] == [9.0, -9.0]


@pytest.mark.parametrize(("text", "line", "col", "match"), [
    ("qreg q[1];", 1, 1, "must start with 'OPENQASM 2.0;'"),
    ("OPENQASM 3.0;", 1, 10, "only OpenQASM 2.0"),
    ("OPENQASM 2.0;\nqreg q[1];\nh q[0];", 3, 1, 'missing include "qelib1.inc"'),
    (HEAD + "qreg q[2];\ncx q[0], q[0];", 4, 1, "uses a qubit twice"),
    (HEAD + "qreg q[1];\nrx(1/0) q[0];", 4, 5, "division by zero"),
    (HEAD + "qreg q[1];\nrx(sin(1)) q[0];", 4, 4, "'sin' is not part"),
    (HEAD + "gate foo a { x a; }", 3, 1, "'gate' is not part"),
    (HEAD + "qreg q[1];\nif (c == 1) x q[0];", 4, 1, "'if' is not part"),
    (HEAD + "qreg q[1];\nu3(1, 2) q[0];", 4, 1, "takes 3 parameters, got 2"),
    (HEAD + "qreg q[1];\nx q[1];", 4, 5, r"index 1 out of range for q\[1\]"),
    (HEAD + "qreg q[1];\nx q[0]", 4, 7, "expected ';', found end of input"),
    (HEAD + "qreg q[2];\ncreg c[1];\nmeasure q -> c;", 5, 11, "maps 2 qubits to 1 bits"),
    (HEAD + "qreg q[1];\nfoo q[0];", 4, 1, "unknown gate 'foo'"),
    (HEAD + "qreg q[1];\nx c[0];", 4, 3, "undeclared register 'c'"),
    (HEAD + "qreg q[1];\nqreg q[2];", 4, 6, "already declared"),
    (HEAD + "qreg q[1];\nx q[0]; $", 4, 9, "unexpected character '\\$'"),
    ('OPENQASM 2.0;\ninclude "other.inc";', 2, 9, "only \"qelib1.inc\""),
    (HEAD + "qreg q[2]; qreg r[3];\ncx q, r;", 4, 1, "different sizes"),
    (HEAD + "qreg q[0];", 3, 8, "positive integer"),
])
def test_errors_name_line_and_column(text: str, line: int, col: int, match: str) -> None:
    with pytest.raises(BadParams, match=match) as err:
        parse(text)
    assert err.value.details == {"param": "circuit", "line": line, "column": col}
    assert f"line {line}, column {col}" in err.value.message


def test_check_target() -> None:
    prog = parse(HEAD + "qreg q[3];\nh q[0];\ncx q[0], q[2];\nmeasure q[0] -> c[0];"
                 .replace("measure q[0] -> c[0];", ""))
    prog.check_target(3)
    prog.check_target(3, ["h", "cx"], [[2, 0], [0, 1]])
    with pytest.raises(BadParams, match="declares 3 qubits"):
        prog.check_target(2)
    with pytest.raises(BadParams, match="line 4: gate 'h' is not native"):
        prog.check_target(3, ["cx"])
    with pytest.raises(BadParams, match=r"line 5: qubits \[0, 2\] are not coupled"):
        prog.check_target(3, None, [[0, 1], [1, 2]])
    with pytest.raises(BadParams):
        parse(5)  # type: ignore[arg-type]

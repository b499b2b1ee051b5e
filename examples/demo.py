"""qnhw in one screen: device servers and typed drivers talking through the protocol.

Starts two endpoints on loopback tcp -- a quantum memory and a QPU (the in-memory reference
implementations of their contracts) -- then drives them exactly as a lab script drives real
hardware: handshake and contract check, capabilities, typed calls, a typed remote error, a
lossless stream and an OpenQASM circuit. Run: ``make demo`` or ``python examples/demo.py``.
"""

from __future__ import annotations

import asyncio
import time

from qnhw import BadParams
from qnhw.devices import QPU, QuantumMemory
from qnhw.testing.reference import reference_server

BELL = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
creg c[2];
h q[0];
cx q[0], q[1];
measure q -> c;
"""


def say(text: str = "") -> None:
    print(text, flush=True)


async def main() -> None:
    say("qnhw demo: two device endpoints, two drivers, one protocol\n")
    async with reference_server(QuantumMemory, "tcp://127.0.0.1:0") as mem_srv, \
            reference_server(QPU, "tcp://127.0.0.1:0") as qpu_srv:
        say(f"  memory endpoint  {mem_srv.address}")
        say(f"  QPU endpoint     {qpu_srv.address}\n")

        async with QuantumMemory.connect(mem_srv.address) as mem:
            welcome = mem.client.welcome
            assert welcome is not None
            say(f"connected to {welcome.device!r}: contract {welcome.contract}, "
                f"protocol {'.'.join(map(str, welcome.version))}")
            caps = mem.capabilities
            say(f"  capabilities: {', '.join(f'{k}={v}' for k, v in list(caps.items())[:5])}")

            t0 = time.perf_counter()
            n = 200
            for _ in range(n):
                await mem.status()
            say(f"  {n} status calls: {(time.perf_counter() - t0) / n * 1e6:.0f} us per round "
                "trip")

            async with mem.state_changes(mode="lossless") as changes:
                await mem.initialize(qubit=0)
                await mem.gate("x", [0])
                result = await mem.measure(qubit=0)
                say(f"  initialize, x gate, measure -> {result}")
                ev = await asyncio.wait_for(anext(changes), 5)
                say(f"  stream 'state_changes' seq={ev.seq} t={ev.ts_ps} ps "
                    f"[{ev.domain}] gap={ev.gap}: {ev.payload}")

            try:
                await mem.initialize(qubit=10_000)
            except BadParams as err:
                say(f"  bad input is refused before it is sent, typed: {err}")
            try:
                await mem.initialize(qubit=7)  # within the contract, beyond this device
            except BadParams as err:
                say(f"  the device checks its own limits (code {int(err.code)}): {err}")
            status = await mem.status()
            say(f"  the connection is still fine: qubit 0 is {status['qubits'][0]['state']}\n")

        async with QPU.connect(qpu_srv.address) as qpu:
            say(f"QPU {qpu.client.device!r}: {qpu.capabilities.get('n_qubits')} qubits")
            res = await qpu.run(BELL, shots=1000)
            say(f"  Bell circuit, 1000 shots -> counts {res.counts}")
    say("\nall endpoints stopped, sockets closed")


if __name__ == "__main__":
    asyncio.run(main())

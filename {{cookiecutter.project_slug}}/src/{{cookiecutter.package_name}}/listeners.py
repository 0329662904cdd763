"""Disposability (IX): a stopping web process hands over its listen backlog.

Closing a listening socket resets the connections the kernel has completed
but the server has not accepted yet: their clients saw the connection accepted
and lose the request. So on a full stop the server first makes its listening
sockets ignore new connection requests (a client whose SYN goes unanswered
retries, then sees its connection refused once the socket is closed), keeps
accepting and answering until the backlog is empty, and closes them then, in
the same step.

Mainline Linux lets any process attach the socket filter that drops new
connection requests; some kernel builds want CAP_NET_ADMIN for it on TCP
sockets, which a container lacks. There the backlog shrinks to one connection
instead: while one waits, the kernel drops new SYNs. That is not airtight: a
handshake the kernel answered while the backlog was empty, whose last ACK then
found it full, stays half-open (without a trace where a SYN cookie answered it)
until the client resends, and is reset if that comes after the close. Clients
that keep connecting through the stop lose a few in 100,000 connections; a
platform that stops routing to the process before signalling it loses none.

Worker processes share their supervisor's listening socket, and platforms
signal the whole process group: each worker starts its stop at the moment
its supervisor does. A worker that stopped accepting before the supervisor
made the socket refuse new connections would leave the backlog that fills
meanwhile to be reset. So a stopping worker keeps accepting until the socket
refuses new connections and its backlog is empty (`handover_pending`).

Both steps need Linux. Elsewhere they do nothing: the server stops as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import socket
import struct
import sys
from collections.abc import Iterable

# Longest wait for the backlog (and uvicorn's fresh connections) before stopping anyway,
# within GRACEFUL_TIMEOUT: it empties in milliseconds unless a client stalls.
HANDOVER_TIMEOUT = 5.0
SO_ATTACH_FILTER = 26  # <asm-generic/socket.h>; the socket module does not define it
SO_GET_FILTER = SO_ATTACH_FILTER  # the same number, read back: the filter's length
# Classic BPF: drop pure SYNs, pass everything else, so no new connection starts while
# handshakes under way complete and land in the backlog. Offsets count from the TCP header.
DROP_NEW_CONNECTIONS = (
    (0x30, 0, 0, 13),  # ldb [13]: the flags byte
    (0x54, 0, 0, 0x12),  # and #(SYN | ACK)
    (0x15, 0, 1, 0x02),  # jeq #SYN: drop, else pass
    (0x06, 0, 0, 0),  # drop: ret #0
    (0x06, 0, 0, 0xFFFFFFFF),  # pass: ret #(whole packet)
)
# Offset of tcpi_unacked in struct tcp_info: 8 one-byte fields, then 4 u32 fields.
TCPI_UNACKED = 24
# For a listening socket, tcpi_sacked is the longest its accept queue may grow.
TCPI_SACKED = 28


def refuse_new_connections(listener: socket.socket) -> bool:
    """Make `listener` drop new connection requests; False where only fewer are let in."""
    if sys.platform != "linux":
        return False
    program = b"".join(struct.pack("HBBI", *instruction) for instruction in DROP_NEW_CONNECTIONS)
    instructions = ctypes.create_string_buffer(program)  # the kernel copies it
    sock_fprog = struct.pack("HP", len(DROP_NEW_CONNECTIONS), ctypes.addressof(instructions))
    try:
        listener.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, sock_fprog)
    except OSError:  # EPERM where the kernel wants CAP_NET_ADMIN; no socket filters
        with contextlib.suppress(OSError):  # not a listening socket
            # listen() again only sets the backlog's length: a full backlog drops SYNs.
            listener.listen(0)
        return False
    return True


def backlog(listeners: Iterable[socket.socket]) -> int:
    """Connections the kernel has completed on `listeners` that wait to be accepted.

    0 where this is unknown. For a listening socket, TCP_INFO's tcpi_unacked is the
    length of its accept queue.
    """
    if sys.platform != "linux":
        return 0
    waiting = 0
    for listener in listeners:
        try:
            info = listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCPI_UNACKED + 4)
        except OSError:  # not a TCP socket
            continue
        waiting += struct.unpack_from("I", info, TCPI_UNACKED)[0]
    return waiting


def takes_new_connections(listener: socket.socket) -> bool:
    """Whether `listener` still takes new connections: no process sharing it refused them.

    False where this is unknown. What refuse_new_connections changes, the filter
    or the backlog's length, belongs to the socket: every process holding it sees it.
    """
    if sys.platform != "linux":
        return False
    length = ctypes.c_uint32(0)  # 0: ask for the filter's length alone, copy nothing
    getsockopt = ctypes.CDLL(None).getsockopt  # the socket module's would copy the filter
    if getsockopt(listener.fileno(), socket.SOL_SOCKET, SO_GET_FILTER, None, ctypes.byref(length)):
        return False  # not a socket
    if length.value:
        return False
    try:
        info = listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCPI_SACKED + 4)
    except OSError:  # not a TCP socket
        return False
    return bool(struct.unpack_from("I", info, TCPI_SACKED)[0])


def handover_pending(listeners: Iterable[socket.socket]) -> bool:
    """Whether a stopping process must go on accepting on `listeners`.

    True while they take new connections (the full stop that makes them
    refuse may be a moment behind) or while connections wait in their backlog.
    """
    listeners = list(listeners)
    return any(map(takes_new_connections, listeners)) or backlog(listeners) > 0

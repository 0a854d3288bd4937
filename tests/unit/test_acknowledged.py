"""The core's request-then-acknowledge exchange (`device_servers.core.acknowledged`) against a
small scripted instrument on a real socket: the bytes on the wire, NAK, garbage, silence, and
two threads that never get each other's answers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from device_servers.core.acknowledged import PFEIFFER, NotAcknowledged
from device_servers.core.errors import GarbledReply, InstrumentError, LinkError
from device_servers.core.framing import Lines
from device_servers.core.link import SerialLink

Answer = Callable[[bytes], bytes | None]  # a request (a line, or ENQ) -> what the peer sends back


class Peer:
    """An instrument that answers each request as `answer` says, and records every byte."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.received = bytearray()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            connection, _ = self.listener.accept()
        except OSError:
            return
        buffer = b""
        with connection:
            while data := connection.recv(4096):
                self.received += data
                buffer += data
                while buffer:
                    if buffer[:1] == b"\x05":
                        request, buffer = b"\x05", buffer[1:]
                    elif b"\r\n" in buffer:
                        request, _, buffer = buffer.partition(b"\r\n")
                    else:
                        break
                    reply = self.answer(request)
                    if reply:
                        connection.sendall(reply)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def connect() -> Iterator[Callable[[Answer], tuple[Peer, SerialLink]]]:
    opened: list[tuple[Peer, SerialLink]] = []

    def make(answer: Answer) -> tuple[Peer, SerialLink]:
        peer = Peer(answer)
        link = SerialLink(peer.url, framing=Lines(b"\r\n"), timeout=0.5)
        link.open()
        opened.append((peer, link))
        return peer, link

    yield make
    for peer, link in opened:
        link.close()
        peer.close()


def gauge(request: bytes) -> bytes | None:
    """A TPG that knows PR1 only."""
    if request == b"PR1":
        return b"\x06\r\n"
    if request == b"\x05":
        return b"0,1.0000E-03\r\n"
    return b"\x15\r\n"


def test_request_acknowledged_then_enquired(connect):
    peer, link = connect(gauge)
    assert PFEIFFER.query(link, b"PR1\r\n") == b"0,1.0000E-03"
    assert bytes(peer.received) == b"PR1\r\n\x05"


def test_nak_names_the_request_and_sends_no_enquiry(connect):
    peer, link = connect(gauge)
    with pytest.raises(NotAcknowledged, match=r"b'XYZ' was not acknowledged \(NAK\)") as refusal:
        PFEIFFER.query(link, b"XYZ\r\n")
    assert isinstance(refusal.value, InstrumentError)
    assert refusal.value.request == b"XYZ\r\n"
    assert bytes(peer.received) == b"XYZ\r\n"
    assert link.is_open, "a NAK is an answer: the line stays usable"
    assert PFEIFFER.query(link, b"PR1\r\n") == b"0,1.0000E-03"


def test_a_command_is_only_acknowledged(connect):
    peer, link = connect(gauge)
    PFEIFFER.command(link, b"PR1\r\n")
    assert bytes(peer.received) == b"PR1\r\n"


def test_garbage_where_the_acknowledgement_belongs(connect):
    _, link = connect(lambda request: b"\xfe\xa7!\r\n")
    with pytest.raises(GarbledReply, match=r"expected ACK or NAK to b'PR1', got b'\\xfe\\xa7!'"):
        PFEIFFER.query(link, b"PR1\r\n")


def test_silence_after_the_acknowledgement_is_a_lost_link(connect):
    _, link = connect(lambda request: b"\x06\r\n" if request == b"PR1" else None)
    with pytest.raises(LinkError, match=r"no reply to b'\\x05' within 0.5 s"):
        PFEIFFER.query(link, b"PR1\r\n")
    assert not link.is_open


def test_two_threads_never_get_each_others_answers(connect):
    state = {"last": b""}

    def echo(request: bytes) -> bytes:
        if request == b"\x05":
            return state["last"] + b"\r\n"
        state["last"] = request
        return b"\x06\r\n"

    _, link = connect(echo)
    wrong: list[tuple[bytes, bytes]] = []

    def ask(name: bytes) -> None:
        for _ in range(100):
            answer = PFEIFFER.query(link, name + b"\r\n")
            if answer != name:
                wrong.append((name, answer))

    threads = [threading.Thread(target=ask, args=(name,)) for name in (b"PR1", b"TID", b"UNI")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert wrong == []

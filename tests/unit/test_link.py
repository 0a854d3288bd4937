"""`SerialLink` framing, unasked frames and failure modes, against small scripted instruments on
real sockets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from device_servers.core.errors import LinkError
from device_servers.core.framing import FixedLength, FramingError, LengthInHeader, Lines
from device_servers.core.link import SerialLink

Script = Callable[["Peer", socket.socket, int], None]  # (peer, connection, index of the connection)

TIMEOUT = 0.3  # the link's own deadline in the timeout tests
SLACK = 1.5  # generous: a loaded 2-core machine may be slow to wake a thread


class Peer:
    """A scripted instrument: accepts connections one after another and runs `script` on each."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self.listener.getsockname()[1]}"
        self.received = bytearray()
        self.release = threading.Event()  # lets a script that holds its reply go on
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        for index in range(100):
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)
            try:
                self.script(self, connection, index)
            except OSError:
                pass
            finally:
                connection.close()

    def read_until(self, connection: socket.socket, terminator: bytes) -> bytes:
        """One request from the link, terminator included; b'' when the link hung up."""
        data = b""
        while not data.endswith(terminator):
            chunk = connection.recv(1)
            if not chunk:
                return b""
            data += chunk
        self.received += data
        return data

    def close(self) -> None:
        self.release.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        for connection in self.connections:
            connection.close()
        self.thread.join(5)


@pytest.fixture
def peer() -> Iterator[Callable[[Script], Peer]]:
    peers: list[Peer] = []

    def start(script: Script) -> Peer:
        peers.append(Peer(script))
        return peers[-1]

    yield start
    for started in peers:
        started.close()


@pytest.fixture
def links() -> Iterator[Callable[..., SerialLink]]:
    opened: list[SerialLink] = []

    def make(url: str, **options: object) -> SerialLink:
        opened.append(SerialLink(url, **options))
        return opened[-1]

    yield make
    for link in opened:
        link.close()


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def echo(terminator: bytes, reply_terminator: bytes) -> Script:
    """A script answering every request `R` with `got R`."""

    def script(peer: Peer, connection: socket.socket, _index: int) -> None:
        while request := peer.read_until(connection, terminator):
            connection.sendall(b"got " + request[: -len(terminator)] + reply_terminator)

    return script


@pytest.mark.parametrize(
    ("write_terminator", "read_terminator"), [(b"\n", b"\n"), (b"\r", b"\r\n"), (b"\r\n", b"\x03")]
)
def test_query_frames_lines_with_the_terminators(peer, links, write_terminator, read_terminator):
    instrument = peer(echo(write_terminator, read_terminator))
    link = links(instrument.url, write_terminator=write_terminator, framing=Lines(read_terminator))
    link.open()

    assert link.query("*IDN?") == "got *IDN?"
    assert link.query("INPUT? A") == "got INPUT? A"
    assert bytes(instrument.received) == b"*IDN?" + write_terminator + b"INPUT? A" + write_terminator


def test_write_line_sends_one_terminated_line_and_reads_nothing(peer, links):
    def script(instrument: Peer, connection: socket.socket, _index: int) -> None:
        while request := instrument.read_until(connection, b"\n"):
            if request.endswith(b"?\n"):  # like most instruments, answer queries only
                connection.sendall(b"ON\n")

    instrument = peer(script)
    link = links(instrument.url)
    link.open()

    link.write_line("CONTROL")
    assert link.query("CONTROL?") == "ON"
    assert bytes(instrument.received) == b"CONTROL\nCONTROL?\n"


def test_a_fixed_length_transaction_reads_exactly_one_frame(peer, links):
    def script(instrument: Peer, connection: socket.socket, _index: int) -> None:
        connection.recv(3)
        connection.sendall(b"\x01\x02")
        connection.sendall(b"\x03\x04\x05")
        connection.sendall(b"\xaa\xbb")
        instrument.release.wait(10)

    instrument = peer(script)
    link = links(instrument.url, framing=FixedLength(5))
    link.open()

    assert link.transaction(b"\x10\x20\x30") == b"\x01\x02\x03\x04\x05"
    assert link.read_frame(framing=FixedLength(2)) == b"\xaa\xbb"  # what followed stays for the next read


def apt_data_length(header: bytes) -> int:
    """Thorlabs APT: bit 7 of the destination byte says a data block follows, its length in bytes 2-3."""
    return int.from_bytes(header[2:4], "little") if header[4] & 0x80 else 0


def test_a_header_with_the_length_frames_short_and_long_messages(peer, links):
    status_request = bytes.fromhex("80 04 00 00 50 01")  # APT MGMSG_MOT_REQ_STATUSUPDATE
    move_to_1mm = bytes.fromhex("53 04 06 00 d0 01 01 00 00 64 00 00")  # APT MOVE_ABSOLUTE, 6 data bytes

    def script(instrument: Peer, connection: socket.socket, _index: int) -> None:
        connection.recv(6)
        connection.sendall(move_to_1mm[:7])  # the frame arrives in two pieces
        time.sleep(0.05)
        connection.sendall(move_to_1mm[7:] + status_request)
        instrument.release.wait(10)

    instrument = peer(script)
    link = links(instrument.url, framing=LengthInHeader(6, apt_data_length))
    link.open()

    assert link.transaction(status_request) == move_to_1mm
    assert link.read_frame() == status_request


def test_a_short_binary_reply_times_out_within_the_deadline(peer, links):
    def script(instrument: Peer, connection: socket.socket, _index: int) -> None:
        connection.recv(1)
        connection.sendall(b"\x01\x02")
        instrument.release.wait(10)

    instrument = peer(script)
    link = links(instrument.url, timeout=TIMEOUT, framing=FixedLength(5))
    link.open()

    started = time.monotonic()
    with pytest.raises(LinkError, match=r"no reply to b'\\x00' within 0.3 s, got b'\\x01\\x02' so far"):
        link.transaction(b"\x00")
    assert TIMEOUT * 0.9 <= time.monotonic() - started < TIMEOUT + SLACK
    assert not link.is_open  # the framing is lost: the link starts afresh


def test_a_silent_instrument_times_out_within_the_deadline(peer, links):
    def script(instrument: Peer, connection: socket.socket, _index: int) -> None:
        instrument.read_until(connection, b"\n")
        connection.sendall(b"partial")
        instrument.release.wait(10)

    instrument = peer(script)
    link = links(instrument.url, timeout=TIMEOUT)
    link.open()

    started = time.monotonic()
    with pytest.raises(LinkError, match=r"no reply to b'LOOP 1:SETPT\?\\n' within 0.3 s, got b'partial'"):
        link.query("LOOP 1:SETPT?")
    assert TIMEOUT * 0.9 <= time.monotonic() - started < TIMEOUT + SLACK
    assert not link.is_open


def test_a_long_request_and_garbage_are_shown_short_and_escaped(peer, links):
    def script(instrument: Peer, connection: socket.socket, _index: int) -> None:
        instrument.read_until(connection, b"\n")
        connection.sendall(bytes(range(0x80, 0xFF)) * 4)
        instrument.release.wait(10)

    instrument = peer(script)
    link = links(instrument.url, timeout=TIMEOUT)
    link.open()

    with pytest.raises(LinkError) as failure:
        link.query("INP? A,B,C,D;:CONT?" + ";:LOOP 1:SETP?;TYPE?;RANG?" * 20)
    message = str(failure.value)
    assert len(message) < 250, message
    assert "\\x80\\x81" in message and "...(+" in message and message.isascii()  # escaped, cut, ASCII


def test_a_line_that_never_ends_is_a_framing_error_not_a_hang(peer, links):
    def script(instrument: Peer, connection: socket.socket, _index: int) -> None:
        instrument.read_until(connection, b"\n")
        connection.sendall(b"x" * 5000)
        instrument.release.wait(10)

    instrument = peer(script)
    link = links(instrument.url, framing=Lines(b"\n", max_length=1000))
    link.open()

    with pytest.raises(FramingError, match="no line end in"):
        link.query("STREAM?")
    assert not link.is_open


def test_frames_sent_unasked_go_to_the_driver_and_the_reply_to_its_query(peer, links):
    def script(instrument: Peer, connection: socket.socket, _index: int) -> None:
        instrument.release.wait(10)  # pyserial empties the input once more at the end of open()
        connection.sendall(b"MOVED 1\n")  # before any request
        while request := instrument.read_until(connection, b"\n"):
            connection.sendall(b"MOVED 2\n" + b"answer to " + request)  # one more before the reply

    instrument = peer(script)
    link = links(instrument.url)
    unasked: list[bytes] = []
    link.listen("test", unasked.append)
    link.open()
    instrument.release.set()
    wait_until(lambda: link._port.in_waiting)  # the first one has arrived (a private peek)

    reply = link.transaction(b"POS?\n", accept=lambda frame: frame.startswith(b"answer"))
    assert reply == b"answer to POS?"
    assert unasked == [b"MOVED 1", b"MOVED 2"]


def test_frames_waiting_are_routed_without_a_request(peer, links):
    def script(instrument: Peer, connection: socket.socket, _index: int) -> None:
        instrument.release.wait(10)
        connection.sendall(b"\x01\x02\x03\x04\x05\x06" b"\x01\x02\x03")
        time.sleep(0.05)
        connection.sendall(b"\x04\x05\x06")
        instrument.release.wait(10)

    instrument = peer(script)
    link = links(instrument.url, framing=FixedLength(6))
    unasked: list[bytes] = []
    link.listen("test", unasked.append)
    link.open()
    instrument.release.set()
    wait_until(lambda: link.route_waiting() or len(unasked) >= 2)

    assert unasked == [bytes(range(1, 7))] * 2  # the second, cut in two on the wire, is whole


def test_a_late_reply_never_answers_the_next_query(peer, links):
    def script(instrument: Peer, connection: socket.socket, index: int) -> None:
        request = instrument.read_until(connection, b"\n")
        if index == 0:
            instrument.release.wait(10)
            connection.sendall(b"late answer to " + request)
            return
        connection.sendall(b"answer to " + request)

    instrument = peer(script)
    link = links(instrument.url, timeout=TIMEOUT)
    link.open()
    with pytest.raises(LinkError):
        link.query("SLOW?")
    instrument.release.set()

    link.open()
    assert link.query("FAST?") == "answer to FAST?"


def test_a_refused_connection_raises_link_error():
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]  # free once closed: nothing listens there
    link = SerialLink(f"socket://127.0.0.1:{port}")

    with pytest.raises(LinkError, match=f"cannot open socket://127.0.0.1:{port}"):
        link.open()
    assert not link.is_open


def test_a_dropped_connection_raises_link_error_and_closes_the_link(peer, links):
    def hang_up(instrument: Peer, connection: socket.socket, _index: int) -> None:
        connection.shutdown(socket.SHUT_RDWR)

    instrument = peer(hang_up)
    link = links(instrument.url, timeout=5.0)
    link.open()

    started = time.monotonic()
    with pytest.raises(LinkError):
        link.query("*IDN?")
    assert time.monotonic() - started < 5.0  # noticed at once, not at the deadline
    assert not link.is_open
    with pytest.raises(LinkError, match="not connected"):
        link.query("*IDN?")


def test_the_link_reopens_after_a_drop(peer, links):
    def script(instrument: Peer, connection: socket.socket, index: int) -> None:
        if index == 0:
            connection.shutdown(socket.SHUT_RDWR)
            return
        while request := instrument.read_until(connection, b"\n"):
            connection.sendall(b"answer to " + request)

    instrument = peer(script)
    link = links(instrument.url)
    link.open()
    with pytest.raises(LinkError):
        link.query("*IDN?")

    link.open()
    assert link.query("*IDN?") == "answer to *IDN?"

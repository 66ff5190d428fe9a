"""A three-node MariaDB Galera cluster on 127.0.0.1, started and stopped by a test.

Each node is a real ``mariadbd`` with the galera-4 provider, its own data directory,
and its own MySQL, group-communication, IST and SST ports. Node 1 is initialised
with ``mariadb-install-db`` and bootstraps the cluster (``--wsrep-new-cluster``);
nodes 2 and 3 start empty and receive node 1's state by rsync SST. The nodes run
as ``mysql`` (the joiner's rsync daemon runs as the server's user and must be able
to write the data directory), so the cluster lives in a world-traversable
directory of its own under the system temp directory, not in pytest's 0700 tmp.
Buffers are tiny: the machine has two cores and other suites run beside it.
Every wait is bounded; the nodes are stopped (then killed) on exit.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

GALERA_PROVIDER = Path("/usr/lib/galera/libgalera_smm.so")
MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
NODE_USER = "mysql"


def galera_missing() -> str | None:
    """Why a cluster cannot start on this machine, or None when it can."""
    for path in (GALERA_PROVIDER, Path(MARIADBD), Path(INSTALL_DB)):
        if not path.exists():
            return f"{path} is not installed (Debian packages galera-4, mariadb-server)"
    if shutil.which("rsync") is None:
        return "rsync is not installed (Galera's rsync SST needs it)"
    try:
        pwd.getpwnam(NODE_USER)
    except KeyError:
        return f"no {NODE_USER!r} user to run the nodes as"
    if os.geteuid() != 0:
        return "the nodes run as the mysql user: the test must run as root"
    return None


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class Node:
    index: int
    directory: Path
    mysql_port: int
    group_port: int
    ist_port: int
    sst_port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def config(self) -> Path:
        return self.directory / "my.cnf"

    @property
    def error_log(self) -> Path:
        return self.directory / "error.log"

    def url(self, database: str) -> str:
        return f"mysql+asyncmy://root@127.0.0.1:{self.mysql_port}/{database}?charset=utf8mb4"


@dataclass
class GaleraCluster:
    nodes: list[Node]

    def client(self, node: Node, sql: str) -> str:
        finished = subprocess.run(
            ["mariadb", "-uroot", "-h127.0.0.1", f"-P{node.mysql_port}", "-N", "-B", "-e", sql],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return finished.stdout

    def status(self, node: Node, name: str) -> str:
        line = self.client(node, f"SHOW GLOBAL STATUS LIKE '{name}'").strip()
        return line.split("\t")[1] if "\t" in line else ""


def _write_config(node: Node, nodes: list[Node], name: str) -> None:
    members = ",".join(f"127.0.0.1:{n.group_port}" for n in nodes)
    data = node.directory / "data"
    node.config.write_text(
        f"""[mysqld]
user={NODE_USER}
datadir={data}
socket={node.directory}/mysqld.sock
pid-file={node.directory}/mysqld.pid
log-error={node.error_log}
port={node.mysql_port}
bind-address=127.0.0.1
skip-name-resolve
performance_schema=OFF
innodb_buffer_pool_size=32M
innodb_log_file_size=16M
# Durability is not what this cluster tests; the disk is shared with other suites.
innodb_flush_log_at_trx_commit=0
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2
max_connections=200
wsrep_on=ON
wsrep_provider={GALERA_PROVIDER}
wsrep_cluster_name={name}
wsrep_cluster_address=gcomm://{members}
wsrep_node_address=127.0.0.1:{node.group_port}
wsrep_node_name=node{node.index}
wsrep_provider_options="gmcast.listen_addr=tcp://127.0.0.1:{node.group_port};ist.recv_addr=127.0.0.1:{node.ist_port};gcache.size=16M"
wsrep_sst_method=rsync
wsrep_sst_receive_address=127.0.0.1:{node.sst_port}
wsrep_slave_threads=2
""",
        encoding="utf-8",
    )


def _start(node: Node, *extra: str) -> None:
    with (node.directory / "stdout.log").open("ab") as out:
        node.process = subprocess.Popen(
            [MARIADBD, f"--defaults-file={node.config}", *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_synced(cluster: GaleraCluster, node: Node, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.process is not None and node.process.poll() is not None:
            raise RuntimeError(f"node{node.index} exited:\n{_tail(node.error_log)}")
        with suppress(subprocess.SubprocessError):
            if cluster.status(node, "wsrep_local_state_comment") == "Synced":
                return
        time.sleep(0.2)
    raise RuntimeError(f"node{node.index} not Synced within {timeout} s:\n{_tail(node.error_log)}")


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _stop(node: Node) -> None:
    process, node.process = node.process, None
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def galera_cluster(size: int = 3, *, start_timeout: float = 90.0) -> Iterator[GaleraCluster]:
    """Start ``size`` nodes, each Synced before the next joins; stop them all on exit."""
    base = Path(tempfile.mkdtemp(prefix="authgate-galera-"))
    mysql = pwd.getpwnam(NODE_USER)
    ports = _free_ports(4 * size)
    nodes = [
        Node(
            index=i + 1,
            directory=base / f"node{i + 1}",
            mysql_port=ports[4 * i],
            group_port=ports[4 * i + 1],
            ist_port=ports[4 * i + 2],
            sst_port=ports[4 * i + 3],
        )
        for i in range(size)
    ]
    cluster = GaleraCluster(nodes)
    try:
        base.chmod(0o755)
        for node in nodes:
            (node.directory / "data").mkdir(parents=True)
            _write_config(node, nodes, name=base.name)
            for path in (node.directory, node.directory / "data"):
                os.chown(path, mysql.pw_uid, mysql.pw_gid)
        subprocess.run(
            [
                INSTALL_DB,
                f"--defaults-file={nodes[0].config}",
                f"--user={NODE_USER}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )
        _start(nodes[0], "--wsrep-new-cluster")
        _wait_synced(cluster, nodes[0], timeout=start_timeout)
        for node in nodes[1:]:
            _start(node)
            _wait_synced(cluster, node, timeout=start_timeout)
        size_seen = cluster.status(nodes[-1], "wsrep_cluster_size")
        if size_seen != str(size):
            raise RuntimeError(f"cluster size {size_seen!r}, expected {size}")
        yield cluster
    finally:
        # Joiners first: stopping the bootstrap node first would make the others
        # elect again for nothing.
        for node in reversed(nodes):
            _stop(node)
        shutil.rmtree(base, ignore_errors=True)

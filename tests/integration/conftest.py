"""Fixtures for Gregor's integration tests.

`cluster` gives a test a Cluster to start nodes in; every node it starts is
stopped (by pid) when the test ends, pass or fail.  `module_cluster` is the
same for all the tests of one module that ask for it (starting a cluster
takes seconds; tests that only add topics of their own can share one); its
nodes stop when the module's last test is done; `shared` is that cluster
with one controller and one broker started, and `single` is the test's own
`cluster` with one controller and one broker started.  `broker` is one
started broker.  When a test fails, the log tails of its nodes are attached
to the failure report.
"""

import faulthandler
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import gregor  # noqa: E402

# Last-resort guard: every wait in the tests has its own timeout, but should
# something hang anyway, dump the stacks and exit rather than hang forever.
# Nodes die with the runner (see gregor._die_with_parent).
TEST_TIMEOUT = float(os.environ.get("GREGOR_TEST_TIMEOUT", "180"))

_nodes_key = pytest.StashKey()


def pytest_configure(config):
    # Nodes inherit the limit, and some tests hold thousands of connections.
    gregor.raise_nofile_limit()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    faulthandler.dump_traceback_later(TEST_TIMEOUT, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    cluster = item.stash.get(_nodes_key, None) or item.funcargs.get("module_cluster")
    if cluster is not None and rep.failed and cluster.nodes:
        rep.sections.append(("gregor node logs", cluster.log_tails()))


def _stop_and_check(c):
    c.stop_all()
    crashed = [n for n in c.nodes if n.died_unexpectedly]
    if crashed:
        pytest.fail("node(s) exited on their own during the test: "
                    + ", ".join(f"{n.role} {n.node_id} (status {n.returncode})" for n in crashed)
                    + "\n" + "\n".join(n.log_tail() for n in crashed), pytrace=False)


@pytest.fixture
def cluster(request, tmp_path):
    c = gregor.Cluster(tmp_path)
    request.node.stash[_nodes_key] = c
    yield c
    _stop_and_check(c)


@pytest.fixture(scope="module")
def module_cluster(tmp_path_factory):
    c = gregor.Cluster(tmp_path_factory.mktemp("module-cluster"))
    yield c
    _stop_and_check(c)


@pytest.fixture
def broker(cluster):
    return cluster.broker()


@pytest.fixture
def single(cluster):
    """One controller and one broker of this test's own (for tests that stop
    or kill the broker, or need a fresh cluster)."""
    cluster.start(controllers=1, brokers=1)
    return cluster


@pytest.fixture
def shared(module_cluster):
    if not module_cluster.nodes:
        module_cluster.start(controllers=1, brokers=1)
    return module_cluster

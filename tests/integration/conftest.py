"""
conftest.py - fixtures of moat's integration suite (see docs/testing.md).

    make_backend(handler=None, name=..., host=...) -> Backend   (stopped at teardown)
    backend                                        -> Backend "app" answering info()
    make_moat(backends=(), config=None, ...)       -> Moat, started and ready
    moat                                           -> moat in front of `backend`

Every moat started here is stopped by its PID at teardown; the test fails
(as a teardown error) when moat died during the test, exited non-zero on
SIGTERM at teardown, or left a sanitizer report ("ERROR: AddressSanitizer",
"runtime error:", exit code 86) in its error output.

The classes behind the fixtures live in harness.py.
"""

import pytest

from harness import ASAN, MOAT_BIN, Backend, Moat, free_port, make_config, split_listen, to_yaml


def pytest_report_header(config):
    return f"moat: MOAT_BIN={MOAT_BIN} MOAT_ASAN={'1' if ASAN else '0'}"


@pytest.fixture
def make_backend():
    created = []

    def make(handler=None, name=None, host="127.0.0.1"):
        b = Backend(handler, name=name or f"b{len(created) + 1}", host=host)
        created.append(b)
        return b

    yield make
    for b in created:
        b.stop()


@pytest.fixture
def backend(make_backend):
    return make_backend(name="app")


@pytest.fixture
def make_moat(tmp_path, make_backend):
    """make_moat(backends=(), config=None, text=None, argv=None, ready=True,
    error_log=None, env=None, listens=None) -> Moat

    config: dict merged over harness.DEFAULT_CONFIG (see make_config).
    text:   a YAML document used as is ("@PORT@" replaced by a free port).
    argv:   arguments after MOAT_BIN instead of "-c moat.yaml" (one-line
            mode); give listens=[(host, port)] to wait for.
    """
    created = []

    def make(backends=(), config=None, text=None, argv=None, ready=True, error_log=None,
             env=None, listens=None):
        name = f"moat{len(created) + 1}"
        workdir = tmp_path
        config_path = workdir / f"{name}.yaml"
        if argv is not None:
            full_argv = list(argv)
            listens = listens or []
        else:
            if text is None:
                cfg = make_config(backends, config)
                text = to_yaml(cfg)
                if listens is None:
                    listens = [split_listen(l["listen"]) for l in cfg["listeners"]]
            else:
                if "@PORT@" in text:
                    port = free_port()
                    text = text.replace("@PORT@", str(port))
                    listens = listens or [("127.0.0.1", port)]
            config_path.write_text(text)
            full_argv = ["-c", str(config_path)]
        m = Moat(workdir, [MOAT_BIN] + full_argv, config_path=config_path, listens=listens or [],
                 error_log=error_log, env=env, name=name)
        created.append(m)
        m.start(ready=ready)
        return m

    yield make
    problems = []
    for m in created:
        problems += m.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def moat(backend, make_moat):
    return make_moat([backend])

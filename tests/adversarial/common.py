"""Shared set-up for the adversarial scripts: one moat (MOAT_BIN, default
build/asan/moat) in front of one recording harness.Backend, in a temp dir.
Everything is stopped by PID in stop()."""

import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
os.environ.setdefault("MOAT_BIN", str(HERE.parents[1] / "build" / "asan" / "moat"))

import harness  # noqa: E402
from harness import Backend, Moat, make_config, split_listen, to_yaml  # noqa: E402,F401


class Rig:
    def __init__(self, config=None, handler=None, backend=None, env=None):
        self.tmp = tempfile.TemporaryDirectory(prefix="moat-adv-")
        self.backend = backend or Backend(handler, name="app")
        cfg = make_config([self.backend], config)
        text = to_yaml(cfg)
        path = Path(self.tmp.name) / "moat.yaml"
        path.write_text(text)
        listens = [split_listen(l["listen"]) for l in cfg["listeners"]]
        env = dict({"ASAN_OPTIONS": os.environ.get("ADV_ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=86"),
                    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}, **(env or {}))
        self.moat = Moat(self.tmp.name, [harness.MOAT_BIN, "-c", str(path)], config_path=path,
                         listens=listens, env=env)
        self.moat.start()
        self.port = self.moat.port

    def problems(self):
        return harness.sanitizer_problems(self.moat.stderr, None) + (
            [] if self.moat.alive() else [f"moat died rc={self.moat.proc.poll()}"])

    def stop(self):
        probs = self.moat.finish()
        self.backend.stop()
        return probs

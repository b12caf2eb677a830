"""A short soak (`make soak` runs the long one): a few passes over a fleet with random faults of every kind,
If-Match ignored in some passes and a foreign writer; nothing lost, no overlap, no traceback, converges."""

from __future__ import annotations

import pytest

from tests.soak import parse_args, soak


@pytest.mark.slow
def test_short_soak(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("AMLFW_LOCK_DIR", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "IDENTITY_ENDPOINT", "IDENTITY_HEADER",
                 "AMLFW_ARM_ENDPOINT"):
        monkeypatch.setenv(name, "")  # soak() overwrites them in os.environ; monkeypatch restores them after
    figures, ok = soak(parse_args(["--passes", "3", "--policies", "2", "--op-min", "0.3", "--op-max", "1.0",
                                   "--seed", "3"]))
    report = capsys.readouterr().out
    assert ok, report
    assert figures.lost == figures.overlaps == figures.tracebacks == figures.untyped == 0, report
    assert figures.passes == 3 and figures.foreign_edits > 0, report
